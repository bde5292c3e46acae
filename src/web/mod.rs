//! The browser shell's building blocks: the clock, fetch, owned DOM listeners, listener sets.
//! Everything here is I/O; decisions stay in `core`.

pub mod fetch;
pub mod options;
pub mod tabs;

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::core::error::Code;
use crate::core::session::{Origin, Raw, RawSession, Session, SessionError};
use crate::core::text::cat;
use crate::core::token::{self, Claims, JwtError};

#[wasm_bindgen(inline_js = r#"
export function aw_listen(set, fn) {
  set.add(fn);
  let live = true;
  return () => { if (live) { live = false; set.delete(fn); } };
}
export function aw_emit(set, value) {
  for (const fn of Array.from(set)) {
    try { fn(value); } catch (e) {
      if (typeof reportError === "function") reportError(e); else setTimeout(() => { throw e; });
    }
  }
}
// Array.isArray and a URL's href, which throw for a revoked Proxy (or a Proxy of a URL): a throw
// from an import not marked `catch` would unwind through wasm.
export function aw_is_array(v) {
  try { return Array.isArray(v); } catch (e) { return false; }
}
// A value's kind for web::raw, in one call: 0 undefined, 1 null, 2 a string, 3 a number, 4 true,
// 5 false, 6 a function, 7 an array, 8 a BigInt, 9 a symbol, 10 another object.
export function aw_kind(v) {
  if (v === undefined) return 0;
  if (v === null) return 1;
  switch (typeof v) {
    case "string": return 2;
    case "number": return 3;
    case "boolean": return v ? 4 : 5;
    case "function": return 6;
    case "bigint": return 8;
    case "symbol": return 9;
  }
  return aw_is_array(v) ? 7 : 10;
}
// A string holding a lone UTF-16 surrogate (in a u-mode pattern a well-formed pair is one code
// point, never a surrogate).
export function aw_lone(v) {
  return typeof v === "string" && /\p{Surrogate}/u.test(v);
}
export function aw_href(v) {
  try { return String(v.href); } catch (e) { return undefined; }
}
// A URL as the browser reads it, alone (no base URL): [protocol, has a user name or password,
// hostname, port, path + query + fragment], or null where the browser cannot parse it.
export function aw_url(s) {
  try {
    const u = new URL(s);
    return [u.protocol, u.username !== "" || u.password !== "", u.hostname, u.port, u.pathname + u.search + u.hash];
  } catch {
    return null;
  }
}
export function aw_later(f) {
  queueMicrotask(f);
}
export function aw_settled(p, done) {
  Promise.resolve(p).then((v) => done(true, v), (e) => done(false, e));
}
// The token sources' transport (web::fetch) is here too, not in a snippet of its own: with a fifth
// snippet module, a wasm-bindgen-test-runner (0.2.130) test page never finished loading (Chromium
// idle at "Loading scripts..." until chromedriver's 300 s timeout) in 6 of 8 test runs; with four,
// in none of the 22 since.
export function aw_fetch(url, method, headers, body, signal, errorHeader) {
  // One planned request: headers [name, value, ...]; body fields [name, value, ...] sent as a JSON
  // object, or undefined. A header value the browser refuses is left out (what the core plans is
  // valid; an app's apiKey with a line break is not sent). A promise of [status, json, errorCode]
  // once the whole body is in (json: undefined when the body is not JSON; errorCode: the
  // errorHeader's value, null when absent or not exposed cross-origin); rejected when there is no
  // answer (an unparsable URL, network failure, abort).
  const h = new Headers();
  const put = (k, v) => {
    try { h.set(k, v); } catch {}
  };
  for (let i = 0; i < headers.length; i += 2) put(headers[i], headers[i + 1]);
  let text;
  if (body) {
    const o = {};
    for (let i = 0; i < body.length; i += 2) o[body[i]] = body[i + 1];
    text = JSON.stringify(o);
    put("Content-Type", "application/json;charset=UTF-8");
  }
  return fetch(url, { method, headers: h, body: text, signal }).then((r) =>
    r.text().then((text) => {
      let json;
      try {
        json = JSON.parse(text);
      } catch {}
      return [r.status, json, r.headers.get(errorHeader)];
    }),
  );
}
// The page's window (undefined in a worker), and the origin of the page or worker: one import
// each, where web_sys::window() and js_sys::global() import four global lookups and a type check.
export function aw_window() {
  return typeof window === "object" && window !== null ? window : undefined;
}
export function aw_origin() {
  try {
    const o = globalThis.location?.origin;
    return typeof o === "string" ? o : undefined;
  } catch {
    return undefined;
  }
}
export function aw_quiet(p) {
  // Settled when p is, never rejected, with undefined.
  return p.then(
    () => undefined,
    () => undefined,
  );
}
"#)]
extern "C" {
    /// One request (`web::fetch`): a promise of `[status, json, errorCode]`.
    pub fn aw_fetch(
        url: &str,
        method: &str,
        headers: &js_sys::Array,
        body: Option<js_sys::Array>,
        signal: Option<web_sys::AbortSignal>,
        error_header: &str,
    ) -> js_sys::Promise;
    /// The page's `window`; `None` in a worker.
    #[wasm_bindgen(js_name = aw_window)]
    pub fn window() -> Option<web_sys::Window>;
    /// `location.origin` of the page or worker; `None` where there is none.
    #[wasm_bindgen(js_name = aw_origin)]
    pub fn page_origin() -> Option<String>;
    /// Settled when `p` is, never rejected, with `undefined`.
    pub fn aw_quiet(p: &js_sys::Promise) -> js_sys::Promise;
    fn aw_later(f: &JsValue);
    fn aw_settled(p: &JsValue, done: &JsValue);
    /// `Array.isArray`, false when it throws (a revoked Proxy).
    pub fn aw_is_array(v: &JsValue) -> bool;
    fn aw_kind(v: &JsValue) -> u32;
    fn aw_lone(v: &JsValue) -> bool;
    /// A `URL`'s `href`; `None` when reading it throws.
    pub fn aw_href(v: &JsValue) -> Option<String>;
    /// `[protocol, credentials, hostname, port, rest]` as the browser's `URL` reads `s`; `None`
    /// when it cannot.
    pub fn aw_url(s: &str) -> Option<js_sys::Array>;
    /// Adds `f` to `set`; returns a function removing it (idempotent).
    pub fn aw_listen(set: &js_sys::Set, f: &Function) -> Function;
    /// Calls every function in `set` with `value`; a throwing listener is reported, not propagated.
    pub fn aw_emit(set: &js_sys::Set, value: &JsValue);
}

/// Adds `listener` to `set` and returns the function removing it. A listener that is not a
/// function is refused here (`invalid_argument`), not each time an event would call it.
pub fn listen(set: &js_sys::Set, listener: &JsValue, method: &str) -> Result<Function, JsValue> {
    match listener.is_function() {
        true => Ok(aw_listen(set, listener.unchecked_ref())),
        false => Err(error(
            Code::InvalidArgument,
            &cat(&[method, " takes a function, got ", raw(listener).type_name()]),
        )),
    }
}

/// Runs `f` on a microtask of its own (a callback, not a future: the wasm links no async runtime).
pub fn later(f: impl FnOnce() + 'static) {
    later_boxed(Box::new(f));
}

// The closures handed to JS are made in functions that are not generic, from a box: one closure
// type, so one set of wasm-bindgen shims, whatever the callers (a set per caller otherwise).
fn later_boxed(f: Box<dyn FnOnce()>) {
    aw_later(&Closure::once_into_js(move || f()));
}

fn settled_boxed(p: &JsValue, f: Box<dyn FnOnce(Result<JsValue, JsValue>)>) {
    aw_settled(
        p,
        &Closure::once_into_js(move |ok: bool, v: JsValue| f(if ok { Ok(v) } else { Err(v) })),
    );
}

/// A timer calling `f` once after `ms` (cancelled when dropped).
pub fn timeout(ms: u32, f: impl FnOnce() + 'static) -> gloo_timers::callback::Timeout {
    timeout_boxed(ms, Box::new(f))
}

fn timeout_boxed(ms: u32, f: Box<dyn FnOnce()>) -> gloo_timers::callback::Timeout {
    gloo_timers::callback::Timeout::new(ms, move || f())
}

/// Calls `f` with the value `p` resolves to, or the reason it rejects with, when it settles (a
/// value that is not a promise: on the next microtask). The SDK's one way of waiting for JS: no
/// futures, so no async runtime in the wasm.
pub fn on_settled(p: &JsValue, f: impl FnOnce(Result<JsValue, JsValue>) + 'static) {
    settled_boxed(p, Box::new(f));
}

/// Milliseconds since the epoch, local clock.
pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// A JS `Error` with a stable `code` property; the message never contains a token.
pub fn error(code: Code, message: &str) -> JsValue {
    let e = js_sys::Error::new(&cat(&["authwire: ", message, " [", code.as_str(), "]"]));
    e.set_name("AuthwireError");
    let _ = Reflect::set(&e, &"code".into(), &code.as_str().into());
    e.into()
}

/// An error for `code` with its standard description.
pub fn code_error(code: Code) -> JsValue {
    error(code, code.describe())
}

/// A frozen plain object with these properties, in this order (snapshots, events).
pub fn frozen(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = js_sys::Object::new();
    for (k, v) in pairs {
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    js_sys::Object::freeze(&o).into()
}

/// Reads a property; `undefined` when the target is not an object or the read throws.
pub fn get(obj: &JsValue, key: &str) -> JsValue {
    if obj.is_object() || obj.is_function() {
        Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

/// Classifies a JS value for validation in the core.
pub fn raw(v: &JsValue) -> Raw {
    match aw_kind(v) {
        0 => Raw::Missing,
        1 => Raw::Null,
        2 => Raw::Str(v.as_string().unwrap_or_default()),
        3 => Raw::Num(v.as_f64().unwrap_or(f64::NAN)),
        4 => Raw::Bool(true),
        5 => Raw::Bool(false),
        k => Raw::Other(match k {
            6 => "function",
            7 => "array",
            8 => "bigint",
            9 => "symbol",
            _ => "object",
        }),
    }
}

/// Reads a JWT's claims with the browser's `JSON.parse` (the core decides: [`token::payload_text`]
/// and [`token::claims_of`]), so the wasm carries no JSON parser of its own.
pub fn read_claims(jwt: &str) -> Result<Claims, JwtError> {
    let text = token::payload_text(jwt)?;
    let v = js_sys::JSON::parse(&text).map_err(|_| JwtError::BadPayload)?;
    // A JSON object: not null, not an array (JSON.parse makes nothing else an object).
    if !v.is_object() || aw_is_array(&v) {
        return Err(JwtError::BadPayload);
    }
    // Own properties only, as the core's parser reads them (never an inherited `exp`); through the
    // property descriptor, which a payload cannot shadow (a `hasOwnProperty` key) and every engine
    // has (`Object.hasOwn` is ES2022).
    let own = |k: &str| {
        Reflect::get_own_property_descriptor(v.unchecked_ref::<js_sys::Object>(), &JsValue::from_str(k))
            .ok()
            .filter(|d| !d.is_undefined())
            .map(|d| get(&d, "value"))
    };
    // A `sub` with a lone surrogate would reach Rust with U+FFFD in its place (another user id):
    // refused as the core's parser refuses it.
    if own("sub").is_some_and(|s| aw_lone(&s)) {
        return Err(JwtError::BadPayload);
    }
    token::claims_of(|k| own(k).map_or(Raw::Missing, |x| raw(&x)))
}

/// A raw session read into a [`Session`], its JWT read by [`read_claims`].
pub fn session(raw: &RawSession, now_ms: u64, origin: Origin) -> Result<Session, SessionError> {
    Session::from_raw_with(raw, now_ms, origin, read_claims)
}

/// Reads a Supabase `Session` object (or a bare JWT string) into a [`RawSession`].
pub fn raw_session(v: &JsValue) -> RawSession {
    if let Some(s) = v.as_string() {
        return RawSession::bare(&s);
    }
    if !v.is_object() {
        // Not an object: report it as the access token's problem (the value's type is what matters).
        return RawSession {
            access_token: raw(v),
            ..Default::default()
        };
    }
    RawSession {
        access_token: raw(&get(v, "access_token")),
        refresh_token: raw(&get(v, "refresh_token")),
        expires_at: raw(&get(v, "expires_at")),
        expires_in: raw(&get(v, "expires_in")),
        token_type: raw(&get(v, "token_type")),
        user_id: raw(&get(&get(v, "user"), "id")),
    }
}

/// An event listener on a DOM target, removed when dropped.
pub struct DomListener {
    target: web_sys::EventTarget,
    kind: &'static str,
    closure: Closure<dyn FnMut(web_sys::Event)>,
}

impl DomListener {
    /// Listens for `kind` on `target`.
    pub fn new(
        target: &web_sys::EventTarget,
        kind: &'static str,
        f: impl FnMut(web_sys::Event) + 'static,
    ) -> Option<Self> {
        Self::boxed(target, kind, Box::new(f))
    }

    fn boxed(target: &web_sys::EventTarget, kind: &'static str, f: Box<dyn FnMut(web_sys::Event)>) -> Option<Self> {
        let closure = Closure::<dyn FnMut(web_sys::Event)>::wrap(f);
        target
            .add_event_listener_with_callback(kind, closure.as_ref().unchecked_ref())
            .ok()?;
        Some(DomListener {
            target: target.clone(),
            kind,
            closure,
        })
    }
}

impl Drop for DomListener {
    fn drop(&mut self) {
        let _ = self
            .target
            .remove_event_listener_with_callback(self.kind, self.closure.as_ref().unchecked_ref());
    }
}

/// Installs the wake-up listeners (page visible, window focus, back online) that call `wake`.
/// Outside a window (a worker) there is nothing to listen to and the list is empty.
pub fn wake_listeners(wake: Rc<dyn Fn(crate::core::auth_machine::Wake)>) -> Vec<DomListener> {
    use crate::core::auth_machine::Wake;
    let mut out = Vec::new();
    let Some(window) = window() else { return out };
    if let Some(doc) = window.document() {
        let w = wake.clone();
        let d = doc.clone();
        out.extend(DomListener::new(&doc, "visibilitychange", move |_| {
            if d.visibility_state() == web_sys::VisibilityState::Visible {
                w(Wake::Visible)
            }
        }));
    }
    let w = wake.clone();
    out.extend(DomListener::new(&window, "focus", move |_| w(Wake::Focus)));
    out.extend(DomListener::new(&window, "online", move |_| wake(Wake::Online)));
    out
}

/// `console.debug` of a message and one value (numbers pass as numbers: no float formatting in wasm).
pub fn debug(msg: &str, value: &JsValue) {
    web_sys::console::debug_2(&JsValue::from_str(msg), value);
}

/// A slot for the JS functions of pending promises.
pub type Settlers = Rc<RefCell<Vec<(Function, Function)>>>;
