//! Talking to token sources: the Supabase (GoTrue) refresh grant and the app's own callback.

use js_sys::{Function, Promise, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Headers, Request, RequestInit, Response};

use super::{get, now_ms, raw, raw_session};
use crate::core::auth_machine::Failure;
use crate::core::session::{Origin, Raw, Session};

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`, in windows and workers alike.
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(req: &Request) -> Promise;
}

/// Where new tokens come from.
#[derive(Clone)]
pub enum Source {
    /// GoTrue: `POST {url}/auth/v1/token?grant_type=refresh_token` with the `apikey` header.
    Supabase {
        /// The project URL, without trailing slash.
        url: String,
        /// The anon (publishable) key.
        api_key: String,
    },
    /// The app's async function returning a session (or a bare JWT), or null when the session is over.
    /// It is called with the current refresh token, if there is one.
    Callback(Function),
}

impl Source {
    /// Whether refreshing needs a refresh token.
    pub fn needs_refresh_token(&self) -> bool {
        matches!(self, Source::Supabase { .. })
    }

    /// Gets a new session. `refresh_token` is the current one (Supabase needs it).
    pub async fn refresh(&self, refresh_token: Option<String>, signal: Option<AbortSignal>) -> Result<Session, Failure> {
        match self {
            Source::Supabase { url, api_key } => {
                let rt = refresh_token.ok_or(Failure::Http { status: 400, errors: vec!["refresh_token_not_found".into()] })?;
                let body = js_sys::Object::new();
                let _ = js_sys::Reflect::set(&body, &"refresh_token".into(), &rt.into());
                let body = JSON::stringify(&body).map_err(|_| Failure::BadResponse)?;
                let endpoint = format!("{url}/auth/v1/token?grant_type=refresh_token");
                let (status, json) = post_json(&endpoint, api_key, None, &body.into(), signal).await?;
                if (200..300).contains(&status) {
                    Session::from_raw(&raw_session(&json), now_ms(), Origin::Issued).map_err(|_| Failure::BadResponse)
                } else {
                    // GoTrue has answered `error`, `error_code` and `code` over its versions: keep them all.
                    let errors = ["error_code", "code", "error"].iter().filter_map(|k| get(&json, k).as_string()).collect();
                    Err(Failure::Http { status, errors })
                }
            }
            Source::Callback(f) => {
                // The current refresh token is passed along (a followed supabase-js client needs it).
                let rt = refresh_token.map_or(JsValue::UNDEFINED, |t| JsValue::from_str(&t));
                let called = f.call1(&JsValue::UNDEFINED, &rt).map_err(|e| callback_failure(&e))?;
                let v = JsFuture::from(Promise::resolve(&called)).await.map_err(|e| callback_failure(&e))?;
                if v.is_null() || v.is_undefined() {
                    return Err(Failure::Callback { gone: true });
                }
                Session::from_raw(&raw_session(&v), now_ms(), Origin::Issued).map_err(|_| Failure::BadResponse)
            }
        }
    }
}

/// A callback that throws an error with `status` 400/401 or `code` `invalid_grant`/`signed_out`
/// says the session is over; anything else is worth a retry.
fn callback_failure(e: &JsValue) -> Failure {
    let gone = matches!(raw(&get(e, "status")), Raw::Num(s) if s == 400.0 || s == 401.0)
        || matches!(get(e, "code").as_string().as_deref(), Some("invalid_grant" | "signed_out"));
    Failure::Callback { gone }
}

/// POSTs `body` (JSON text, or nothing) with `apikey` and an optional bearer token; returns the
/// status and the parsed JSON body (`undefined` when the body is not JSON).
pub async fn post_json(
    url: &str,
    api_key: &str,
    bearer: Option<&str>,
    body: &JsValue,
    signal: Option<AbortSignal>,
) -> Result<(u16, JsValue), Failure> {
    let init = RequestInit::new();
    init.set_method("POST");
    let headers = Headers::new().map_err(|_| Failure::Network)?;
    let _ = headers.set("apikey", api_key);
    let _ = headers.set("X-Client-Info", concat!("authwire/", env!("CARGO_PKG_VERSION")));
    if !body.is_undefined() {
        let _ = headers.set("Content-Type", "application/json;charset=UTF-8");
        init.set_body(body);
    }
    if let Some(b) = bearer {
        let _ = headers.set("Authorization", &format!("Bearer {b}"));
    }
    init.set_headers(&headers);
    init.set_signal(signal.as_ref());
    let req = Request::new_with_str_and_init(url, &init).map_err(|_| Failure::Network)?;
    let resp: Response = JsFuture::from(global_fetch(&req)).await.map_err(|_| Failure::Network)?.unchecked_into();
    let status = resp.status();
    let text = match resp.text() {
        Ok(p) => JsFuture::from(p).await.map_err(|_| Failure::Network)?,
        Err(_) => return Err(Failure::Network),
    };
    let json = text.as_string().and_then(|t| JSON::parse(&t).ok()).unwrap_or(JsValue::UNDEFINED);
    Ok((status, json))
}
