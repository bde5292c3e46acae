//! Transport for the token sources: performs the steps `core::source` plans (HTTP requests, the
//! app's callback) and reads their answers into the core's [`Answer`]. What to ask and what an
//! answer means is decided in the core.

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{AbortSignal, Request};

use super::{aw_fetch, aw_quiet, get, later, now_ms, on_settled, raw};
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

/// What a refresh attempt ends with: the new session, or why not.
pub type Done = Box<dyn FnOnce(Result<Fetched, Failure>)>;

/// A refresh attempt between its steps.
struct Attempt {
    source: Source,
    /// The access token held when it started.
    current: Option<Secret>,
    signal: Option<AbortSignal>,
    /// The step being performed (0 for the first).
    n: u32,
    done: Done,
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
    /// started. `done` gets the outcome, always later (never from within this call).
    pub fn refresh(&self, present: Option<Secret>, current: Option<Secret>, signal: Option<AbortSignal>, done: Done) {
        let attempt = Attempt {
            source: self.clone(),
            current,
            signal,
            n: 0,
            done,
        };
        match source::first_step(&self.spec, present.as_ref()) {
            Ok(step) => run(attempt, step),
            Err(failure) => later(move || (attempt.done)(Err(failure))),
        }
    }

    /// Asks a broker for its health: `done(healthy)`; never for other sources.
    pub fn health(&self, done: impl FnOnce(bool) + 'static) {
        let Some(call) = source::health_call(&self.spec) else {
            return;
        };
        on_settled(&send(&call, None), move |answer| {
            let answer = answer.ok().map(|a| {
                let a: &Array = a.unchecked_ref();
                (a.get(0).as_f64().unwrap_or(0.0) as u16, raw(&get(&a.get(1), "status")))
            });
            done(source::healthy(answer.as_ref().map(|(s, r)| (*s, r))));
        });
    }

    /// Revokes the session on the server, best effort (GoTrue sources only): a promise settled
    /// (never rejected) when the request is answered or fails.
    pub fn logout(&self, access: &Secret) -> Option<Promise> {
        let call = source::logout_call(&self.spec, access)?;
        Some(aw_quiet(&send(&call, None)))
    }
}

/// Performs one step of an attempt; its answer arrives in a callback, which decides what next.
fn run(attempt: Attempt, step: Step) {
    let sent_at = now_ms();
    match step {
        Step::Http(call) => {
            on_settled(&send(&call, attempt.signal.clone()), move |answer| match answer {
                Ok(a) => {
                    let a: &Array = a.unchecked_ref();
                    let status = a.get(0).as_f64().unwrap_or(0.0) as u16;
                    answered(attempt, sent_at, status, a.get(1), a.get(2).as_string());
                }
                Err(_) => (attempt.done)(Err(Failure::Network)),
            });
        }
        Step::Callback(rt) => {
            let Some(f) = attempt.source.callback.clone() else {
                return later(move || (attempt.done)(Err(Failure::Callback { gone: false })));
            };
            let rt = rt.map_or(JsValue::UNDEFINED, |t| JsValue::from_str(t.expose()));
            // A throw and a rejected promise read alike (`status`, `code`).
            let called = f
                .call1(&JsValue::UNDEFINED, &rt)
                .unwrap_or_else(|e| Promise::reject(&e).into());
            on_settled(&called, move |result| match result {
                Ok(v) => answered(attempt, sent_at, source::CALLBACK_STATUS, v, None),
                Err(e) => {
                    let failure = source::callback_failure(&raw(&get(&e, "status")), &raw(&get(&e, "code")));
                    (attempt.done)(Err(failure));
                }
            });
        }
    }
}

/// What the answer to step `attempt.n` means: the outcome, or the next step (at most 4 in all:
/// the core plans at most two, a broker's refresh after its read; the bound guards against a plan
/// that never ends).
fn answered(mut attempt: Attempt, sent_at: u64, status: u16, value: JsValue, error_header: Option<String>) {
    let answer = read_answer(status, &value, error_header);
    match source::answered(&attempt.source.spec, attempt.n, &answer, attempt.current.as_ref()) {
        Next::Done(Ok(normalised)) => (attempt.done)(accept(&normalised, &value, sent_at)),
        Next::Done(Err(failure)) => (attempt.done)(Err(failure)),
        Next::Then(next) if attempt.n < 3 => {
            attempt.n += 1;
            run(attempt, next);
        }
        Next::Then(_) => (attempt.done)(Err(Failure::BadResponse)),
    }
}

/// Sends one planned call: a promise of `[status, json, errorCode]`, rejected when there is no
/// answer (the whole request is made in one JS call: `aw_fetch`).
fn send(call: &HttpCall, signal: Option<AbortSignal>) -> Promise {
    let headers = Array::new();
    if let Some(k) = &call.api_key {
        pair(&headers, "apikey", k.expose());
    }
    pair(
        &headers,
        "X-Client-Info",
        concat!("authwire/", env!("CARGO_PKG_VERSION")),
    );
    for (k, v) in call.headers {
        pair(&headers, k, v);
    }
    if let Some(b) = &call.bearer {
        pair(
            &headers,
            "Authorization",
            &crate::core::text::cat(&["Bearer ", b.expose()]),
        );
    }
    let body = call.body.as_ref().map(|fields| {
        let a = Array::new();
        for (k, v) in fields {
            pair(&a, k, v.expose());
        }
        a
    });
    aw_fetch(
        &call.url,
        call.method,
        &headers,
        body,
        signal,
        source::ERROR_CODE_HEADER,
    )
}

fn pair(a: &Array, k: &str, v: &str) {
    a.push(&JsValue::from_str(k));
    a.push(&JsValue::from_str(v));
}
