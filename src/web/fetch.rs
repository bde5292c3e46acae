//! Talking to token sources: GoTrue's refresh and password grants, a plain login URL, a token
//! broker, and the app's own callback. Every answer is normalised to the Supabase session shape.

use js_sys::{Function, Object, Promise, Reflect, JSON};
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
    pub fn global_fetch(req: &Request) -> Promise;
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
    /// Email and password: GoTrue's password grant (then its refresh grant), or a plain login URL
    /// answering a token (signed in again whenever a new token is needed).
    Password {
        /// The GoTrue project URL, or the plain login URL.
        url: String,
        /// Sent as `apikey` to GoTrue.
        api_key: String,
        /// The account.
        email: String,
        /// Its password.
        password: String,
        /// `url` is a plain login endpoint, not GoTrue.
        plain: bool,
    },
    /// A token broker: `GET {url}/api/tokens/{scope}?user_id=`, `POST {url}/api/tokens/refresh/{scope}`.
    Broker {
        /// The broker's base URL.
        url: String,
        /// The token scope.
        scope: String,
        /// The user the tokens are for.
        user_id: String,
    },
    /// The app's async function returning a session (or a bare JWT), or null when the session is over.
    /// It is called with the current refresh token, if there is one.
    Callback(Function),
}

/// A new session with what came along with it.
pub struct Fetched {
    /// The validated session.
    pub session: Session,
    /// The object it came as, normalised to the Supabase shape (persisted, broadcast to other tabs).
    pub raw: JsValue,
    /// Extra headers the source wants on authenticated requests (a CSRF token), or `undefined`.
    pub headers: JsValue,
}

fn set(o: &Object, k: &str, v: &JsValue) {
    let _ = Reflect::set(o, &JsValue::from_str(k), v);
}

fn json_body(pairs: &[(&str, &str)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        set(&o, k, &JsValue::from_str(v));
    }
    JSON::stringify(&o).map(JsValue::from).unwrap_or(JsValue::UNDEFINED)
}

/// `expires_on` as brokers send it: epoch seconds (number or numeric string) or an ISO date.
fn seconds_from(v: &JsValue) -> JsValue {
    if let Some(n) = v.as_f64() {
        return JsValue::from_f64(n);
    }
    match v.as_string() {
        Some(s) => {
            let n = s
                .trim()
                .parse::<u64>()
                .ok()
                .map(|n| n as f64)
                .unwrap_or_else(|| js_sys::Date::parse(&s) / 1000.0);
            if n.is_finite() {
                JsValue::from_f64(n.floor())
            } else {
                JsValue::UNDEFINED
            }
        }
        None => JsValue::UNDEFINED,
    }
}

/// Normalises a token answer (`access_token` or `token`; `expires_at`, `expires_in` or
/// `expires_on`) to the Supabase session shape, keeping `refresh_token` and `user`.
fn normalise(v: &JsValue) -> JsValue {
    if v.is_string() {
        return v.clone();
    }
    let o = Object::new();
    let token = get(v, "access_token");
    set(
        &o,
        "access_token",
        &if token.is_undefined() { get(v, "token") } else { token },
    );
    for k in ["refresh_token", "expires_in", "token_type", "user"] {
        let x = get(v, k);
        if !x.is_undefined() {
            set(&o, k, &x);
        }
    }
    let at = get(v, "expires_at");
    let at = if at.is_undefined() {
        seconds_from(&get(v, "expires_on"))
    } else {
        at
    };
    if !at.is_undefined() {
        set(&o, "expires_at", &at);
    }
    o.into()
}

fn accept(v: &JsValue) -> Result<Fetched, Failure> {
    let raw = normalise(v);
    let session = Session::from_raw(&raw_session(&raw), now_ms(), Origin::Issued).map_err(|_| Failure::BadResponse)?;
    Ok(Fetched {
        session,
        raw,
        headers: get(v, "headers"),
    })
}

fn http_failure(status: u16, json: &JsValue) -> Failure {
    // GoTrue has answered `error`, `error_code` and `code` over its versions: keep them all.
    let errors = ["error_code", "code", "error"]
        .iter()
        .filter_map(|k| get(json, k).as_string())
        .collect();
    Failure::Http { status, errors }
}

impl Source {
    /// Whether refreshing needs a refresh token.
    pub fn needs_refresh_token(&self) -> bool {
        matches!(self, Source::Supabase { .. })
    }

    /// Whether it can sign in with no session at all.
    pub fn bootstraps(&self) -> bool {
        !self.needs_refresh_token()
    }

    /// The URL supabase-js would derive its storage key from, when there is one.
    pub fn gotrue_url(&self) -> Option<&str> {
        match self {
            Source::Supabase { url, .. } | Source::Password { url, plain: false, .. } => Some(url),
            _ => None,
        }
    }

    /// Gets a new session. `refresh_token` and `current` (access token) describe the one held now.
    pub async fn refresh(
        &self,
        refresh_token: Option<String>,
        current: Option<String>,
        signal: Option<AbortSignal>,
    ) -> Result<Fetched, Failure> {
        match self {
            Source::Supabase { url, api_key } => {
                let rt = refresh_token.ok_or(Failure::Http {
                    status: 400,
                    errors: vec!["refresh_token_not_found".into()],
                })?;
                gotrue_refresh(url, api_key, &rt, signal).await
            }
            Source::Password {
                url,
                api_key,
                email,
                password,
                plain,
            } => {
                if let (false, Some(rt)) = (plain, &refresh_token) {
                    return gotrue_refresh(url, api_key, rt, signal).await;
                }
                let endpoint = if *plain {
                    url.clone()
                } else {
                    format!("{url}/auth/v1/token?grant_type=password")
                };
                let body = json_body(&[("email", email), ("password", password)]);
                let (status, json) = request("POST", &endpoint, Some(api_key), None, &body, signal).await?;
                if (200..300).contains(&status) {
                    accept(&json)
                } else {
                    Err(http_failure(status, &json))
                }
            }
            Source::Broker { url, scope, user_id } => {
                let user = js_sys::encode_uri_component(user_id);
                let scope = js_sys::encode_uri_component(scope);
                let get_url = format!("{url}/api/tokens/{scope}?user_id={user}");
                let (status, json) = request("GET", &get_url, None, None, &JsValue::UNDEFINED, signal.clone()).await?;
                if !(200..300).contains(&status) {
                    return Err(http_failure(status, &json));
                }
                let got = accept(&json)?;
                if current.as_deref() != Some(got.session.access.expose()) {
                    return Ok(got);
                }
                // The broker handed back the token we hold: ask it to refresh.
                let post_url = format!("{url}/api/tokens/refresh/{scope}?user_id={user}");
                let (status, json) = request("POST", &post_url, None, None, &JsValue::UNDEFINED, signal).await?;
                if (200..300).contains(&status) {
                    accept(&json)
                } else {
                    Err(http_failure(status, &json))
                }
            }
            Source::Callback(f) => {
                // The current refresh token is passed along (a followed supabase-js client needs it).
                let rt = refresh_token.map_or(JsValue::UNDEFINED, |t| JsValue::from_str(&t));
                let called = f.call1(&JsValue::UNDEFINED, &rt).map_err(|e| callback_failure(&e))?;
                let v = JsFuture::from(Promise::resolve(&called))
                    .await
                    .map_err(|e| callback_failure(&e))?;
                if v.is_null() || v.is_undefined() {
                    return Err(Failure::Callback { gone: true });
                }
                accept(&v)
            }
        }
    }

    /// `GET {url}/api/tokens/health` for a broker: `Some(healthy)`; `None` for other sources.
    pub async fn health(&self) -> Option<bool> {
        let Source::Broker { url, .. } = self else { return None };
        match request(
            "GET",
            &format!("{url}/api/tokens/health"),
            None,
            None,
            &JsValue::UNDEFINED,
            None,
        )
        .await
        {
            Ok((status, json)) => Some(
                (200..300).contains(&status)
                    && get(&json, "status")
                        .as_string()
                        .is_none_or(|s| s == "ok" || s == "healthy"),
            ),
            Err(_) => Some(false),
        }
    }
}

async fn gotrue_refresh(url: &str, api_key: &str, rt: &str, signal: Option<AbortSignal>) -> Result<Fetched, Failure> {
    let endpoint = format!("{url}/auth/v1/token?grant_type=refresh_token");
    let (status, json) = request(
        "POST",
        &endpoint,
        Some(api_key),
        None,
        &json_body(&[("refresh_token", rt)]),
        signal,
    )
    .await?;
    if (200..300).contains(&status) {
        accept(&json)
    } else {
        Err(http_failure(status, &json))
    }
}

/// A callback that throws an error with `status` 400/401 or `code` `invalid_grant`/`signed_out`
/// says the session is over; anything else is worth a retry.
fn callback_failure(e: &JsValue) -> Failure {
    let gone = matches!(raw(&get(e, "status")), Raw::Num(s) if s == 400.0 || s == 401.0)
        || matches!(
            get(e, "code").as_string().as_deref(),
            Some("invalid_grant" | "signed_out" | "refresh_token_already_used" | "refresh_token_not_found")
        );
    Failure::Callback { gone }
}

/// Sends a request (JSON text body or none; `apikey` and bearer headers when given); returns the
/// status and the parsed JSON body (`undefined` when it is not JSON). Tokens travel in headers and
/// bodies, never in URLs.
pub async fn request(
    method: &str,
    url: &str,
    api_key: Option<&str>,
    bearer: Option<&str>,
    body: &JsValue,
    signal: Option<AbortSignal>,
) -> Result<(u16, JsValue), Failure> {
    let init = RequestInit::new();
    init.set_method(method);
    let headers = Headers::new().map_err(|_| Failure::Network)?;
    if let Some(k) = api_key.filter(|k| !k.is_empty()) {
        let _ = headers.set("apikey", k);
    }
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
    let resp: Response = JsFuture::from(global_fetch(&req))
        .await
        .map_err(|_| Failure::Network)?
        .unchecked_into();
    let status = resp.status();
    let text = match resp.text() {
        Ok(p) => JsFuture::from(p).await.map_err(|_| Failure::Network)?,
        Err(_) => return Err(Failure::Network),
    };
    let json = text
        .as_string()
        .and_then(|t| JSON::parse(&t).ok())
        .unwrap_or(JsValue::UNDEFINED);
    Ok((status, json))
}
