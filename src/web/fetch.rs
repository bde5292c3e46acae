//! Transport for the token sources: performs the steps `core::source` plans (HTTP requests, the
//! app's callback) and reads their answers into the core's [`Answer`]. What to ask and what an
//! answer means is decided in the core.

use js_sys::{Function, Object, Promise, Reflect, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Headers, Request, RequestInit, Response};

use super::{get, now_ms, raw};
use crate::core::auth_machine::Failure;
use crate::core::options::SourceSpec;
use crate::core::session::{Origin, Raw, RawSession, Session};
use crate::core::source::{self, Answer, HttpCall, Next, Step, ERROR_FIELDS};
use crate::core::token::Secret;

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`, in windows and workers alike.
    #[wasm_bindgen(js_name = fetch)]
    pub fn global_fetch(req: &Request) -> Promise;
}

/// Where new tokens come from: the checked spec, and the app's function for a callback source.
#[derive(Clone)]
pub struct Source {
    /// What the core knows of the source.
    pub spec: SourceSpec,
    /// The function of a callback source (or a followed supabase-js client's refresher).
    pub callback: Option<Function>,
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

fn raw_value(r: &Raw) -> JsValue {
    match r {
        Raw::Str(s) => JsValue::from_str(s),
        Raw::Num(n) => JsValue::from_f64(*n),
        Raw::Bool(b) => JsValue::from_bool(*b),
        Raw::Null => JsValue::NULL,
        _ => JsValue::UNDEFINED,
    }
}

/// Reads a JS answer into the fields the core understands.
fn read_answer(status: u16, v: &JsValue, error_header: Option<String>) -> Answer {
    if let Some(jwt) = v.as_string() {
        return Answer {
            status,
            bare: Some(jwt),
            ..Default::default()
        };
    }
    let field = |k: &str| raw(&get(v, k));
    Answer {
        status,
        empty: v.is_null() || v.is_undefined(),
        bare: None,
        access_token: field("access_token"),
        token: field("token"),
        refresh_token: field("refresh_token"),
        expires_at: field("expires_at"),
        expires_in: field("expires_in"),
        expires_on: field("expires_on"),
        token_type: field("token_type"),
        user_id: raw(&get(&get(v, "user"), "id")),
        error_fields: ERROR_FIELDS.iter().map(|k| raw(&get(v, k))).collect(),
        error_header,
    }
}

/// Validates the core's normalised session and builds the Supabase-shaped object to store.
/// `sent_at`: when the request that got this answer was sent. `expires_in` is counted from then,
/// not from arrival: an answer that hung or a tab that slept in between must not stretch the
/// token's life (the simulation's seed 17 wrote frames with tokens 6 s past expiry).
fn accept(normalised: &RawSession, v: &JsValue, sent_at: u64) -> Result<Fetched, Failure> {
    let session = super::session(normalised, sent_at, Origin::Issued).map_err(|_| Failure::BadResponse)?;
    let normalised = &source::to_publish(normalised, &session);
    // Always the Supabase shape (a bare JWT answer too), with this tab's expiry.
    let o = Object::new();
    set(&o, "access_token", &raw_value(&normalised.access_token));
    for (k, r) in [
        ("refresh_token", &normalised.refresh_token),
        ("expires_in", &normalised.expires_in),
        ("expires_at", &normalised.expires_at),
        ("token_type", &normalised.token_type),
    ] {
        if !r.is_absent() {
            set(&o, k, &raw_value(r));
        }
    }
    let user = get(v, "user");
    if !user.is_undefined() {
        set(&o, "user", &user);
    }
    let shaped: JsValue = o.into();
    Ok(Fetched {
        session,
        raw: shaped,
        headers: get(v, "headers"),
    })
}

impl Source {
    /// Whether refreshing needs a refresh token.
    pub fn needs_refresh_token(&self) -> bool {
        self.spec.needs_refresh_token()
    }

    /// Whether it can sign in with no session at all.
    pub fn bootstraps(&self) -> bool {
        self.spec.bootstraps()
    }

    /// Runs one refresh attempt presenting `present`; `current` is the access token held when it
    /// started.
    pub async fn refresh(
        &self,
        present: Option<Secret>,
        current: Option<Secret>,
        signal: Option<AbortSignal>,
    ) -> Result<Fetched, Failure> {
        let mut step = source::first_step(&self.spec, present.as_ref())?;
        // The core plans at most two steps (a broker's refresh after its read); the bound is a
        // guard against a plan that never ends, not a rule.
        for n in 0..4 {
            let sent_at = now_ms();
            let (status, value, error_header) = match step {
                Step::Http(call) => perform(&call, signal.clone()).await?,
                Step::Callback(rt) => (source::CALLBACK_STATUS, self.call_back(rt).await?, None),
            };
            let answer = read_answer(status, &value, error_header);
            match source::answered(&self.spec, n, &answer, current.as_ref()) {
                Next::Done(Ok(normalised)) => return accept(&normalised, &value, sent_at),
                Next::Done(Err(failure)) => return Err(failure),
                Next::Then(next) => step = next,
            }
        }
        Err(Failure::BadResponse)
    }

    async fn call_back(&self, rt: Option<Secret>) -> Result<JsValue, Failure> {
        let f = self.callback.as_ref().ok_or(Failure::Callback { gone: false })?;
        let thrown = |e: JsValue| source::callback_failure(&raw(&get(&e, "status")), &raw(&get(&e, "code")));
        let rt = rt.map_or(JsValue::UNDEFINED, |t| JsValue::from_str(t.expose()));
        let called = f.call1(&JsValue::UNDEFINED, &rt).map_err(thrown)?;
        JsFuture::from(Promise::resolve(&called)).await.map_err(thrown)
    }

    /// Asks a broker for its health: `Some(healthy)`; `None` for other sources.
    pub async fn health(&self) -> Option<bool> {
        let call = source::health_call(&self.spec)?;
        let answer = perform(&call, None)
            .await
            .ok()
            .map(|(s, json, _)| (s, raw(&get(&json, "status"))));
        Some(source::healthy(answer.as_ref().map(|(s, r)| (*s, r))))
    }

    /// Revokes the session on the server, best effort (GoTrue sources only).
    pub async fn logout(&self, access: &Secret) {
        if let Some(call) = source::logout_call(&self.spec, access) {
            let _ = perform(&call, None).await;
        }
    }
}

/// Performs one planned request; returns the status, the parsed JSON body (`undefined` when it is
/// not JSON) and the `x-sb-error-code` header (readable cross-origin only when the server exposes it).
pub async fn perform(call: &HttpCall, signal: Option<AbortSignal>) -> Result<(u16, JsValue, Option<String>), Failure> {
    let init = RequestInit::new();
    init.set_method(call.method);
    let headers = Headers::new().map_err(|_| Failure::Network)?;
    if let Some(k) = &call.api_key {
        let _ = headers.set("apikey", k.expose());
    }
    let _ = headers.set("X-Client-Info", concat!("authwire/", env!("CARGO_PKG_VERSION")));
    for (k, v) in call.headers {
        let _ = headers.set(k, v);
    }
    if let Some(fields) = &call.body {
        let o = Object::new();
        for (k, v) in fields {
            set(&o, k, &JsValue::from_str(v.expose()));
        }
        let body = JSON::stringify(&o).map(JsValue::from).map_err(|_| Failure::Network)?;
        let _ = headers.set("Content-Type", "application/json;charset=UTF-8");
        init.set_body(&body);
    }
    if let Some(b) = &call.bearer {
        let _ = headers.set("Authorization", &crate::core::text::cat(&["Bearer ", b.expose()]));
    }
    init.set_headers(&headers);
    init.set_signal(signal.as_ref());
    let req = Request::new_with_str_and_init(&call.url, &init).map_err(|_| Failure::Network)?;
    let resp: Response = JsFuture::from(global_fetch(&req))
        .await
        .map_err(|_| Failure::Network)?
        .unchecked_into();
    let status = resp.status();
    let error_header = resp.headers().get(source::ERROR_CODE_HEADER).ok().flatten();
    let text = match resp.text() {
        Ok(p) => JsFuture::from(p).await.map_err(|_| Failure::Network)?,
        Err(_) => return Err(Failure::Network),
    };
    let json = text
        .as_string()
        .and_then(|t| JSON::parse(&t).ok())
        .unwrap_or(JsValue::UNDEFINED);
    Ok((status, json, error_header))
}
