//! Helpers shared by the browser test suites: the dev server's URL, HTTP to it, sign-in,
//! its counters and switches, waiting.
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;

use authwire::AuthSession;
use gloo_timers::future::TimeoutFuture;
use js_sys::{Object, Reflect, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

pub fn server() -> &'static str {
    option_env!("AUTHWIRE_SERVER_URL")
        .expect("AUTHWIRE_SERVER_URL must name the dev server when these tests are compiled (scripts/test.sh does it)")
}

pub fn get(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &k.into()).unwrap()
}

pub fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &(*k).into(), v).unwrap();
    }
    o.into()
}

/// The anon key the dev server accepts on `/auth/v1/*` (its `--anon-key` default).
pub const ANON_KEY: &str = "anon-key";

pub async fn http(method: &str, path: &str, body: Option<JsValue>) -> (u16, JsValue) {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let h = web_sys::Headers::new().unwrap();
    h.set("apikey", ANON_KEY).unwrap();
    if let Some(b) = body {
        init.set_body(&JSON::stringify(&b).unwrap().into());
        h.set("content-type", "application/json").unwrap();
    }
    init.set_headers(&h);
    let window = web_sys::window().unwrap();
    let resp: web_sys::Response = JsFuture::from(window.fetch_with_str_and_init(&format!("{}{path}", server()), &init))
        .await
        .unwrap()
        .unchecked_into();
    let text = JsFuture::from(resp.text().unwrap()).await.unwrap().as_string().unwrap();
    (resp.status(), JSON::parse(&text).unwrap_or(JsValue::NULL))
}

pub fn unique(tag: &str) -> String {
    format!("{tag}-{}@test.authwire.dev", (js_sys::Math::random() * 1e12) as u64)
}

/// Sets the user's token lifetime and signs in with the password grant.
pub async fn sign_in(email: &str, ttl: u32) -> JsValue {
    control(email, &[("ttl_seconds", ttl.into())]).await;
    let (status, session) = http(
        "POST",
        "/auth/v1/token?grant_type=password",
        Some(obj(&[("email", email.into()), ("password", "authwire-demo".into())])),
    )
    .await;
    assert_eq!(status, 200, "sign-in failed");
    session
}

pub async fn control(email: &str, settings: &[(&str, JsValue)]) {
    let mut pairs = vec![("email", JsValue::from_str(email))];
    pairs.extend(settings.iter().cloned());
    let (status, _) = http("POST", "/__test/control", Some(obj(&pairs))).await;
    assert_eq!(status, 204);
}

pub async fn stat(email: &str, counter: &str) -> u32 {
    let (_, s) = http("GET", &format!("/__test/stats?email={email}"), None).await;
    get(&s, counter).as_f64().unwrap() as u32
}

pub fn supabase_source() -> JsValue {
    obj(&[
        ("kind", "supabase".into()),
        ("url", server().into()),
        ("apiKey", ANON_KEY.into()),
    ])
}

pub fn auth(session: &JsValue) -> AuthSession {
    AuthSession::new(obj(&[("session", session.clone()), ("refresh", supabase_source())])).unwrap()
}

/// The session as handed over long after it was issued: its access token already expired.
pub fn expired_copy(session: &JsValue) -> JsValue {
    let copy = Object::assign(&Object::new(), session.unchecked_ref());
    let past = (js_sys::Date::now() / 1000.0).floor() - 1.0;
    Reflect::set(&copy, &"expires_at".into(), &past.into()).unwrap();
    copy.into()
}

pub async fn sleep(ms: u32) {
    TimeoutFuture::new(ms).await;
}

/// Collects every value passed to a listener that `register` installs.
pub fn collect(register: impl FnOnce(&js_sys::Function)) -> Rc<RefCell<Vec<JsValue>>> {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let f = Closure::<dyn FnMut(JsValue)>::new(move |v: JsValue| l.borrow_mut().push(v));
    register(f.as_ref().unchecked_ref());
    f.forget(); // test-only: lives as long as the test page
    log
}

/// Collects every event of a session.
pub fn record_events(a: &AuthSession) -> Rc<RefCell<Vec<JsValue>>> {
    collect(|f| {
        a.on_event(f).unwrap();
    })
}

pub fn types(log: &Rc<RefCell<Vec<JsValue>>>) -> Vec<String> {
    log.borrow()
        .iter()
        .map(|e| get(e, "type").as_string().unwrap())
        .collect()
}

pub async fn wait_for(what: &str, timeout_ms: u32, mut cond: impl FnMut() -> bool) {
    let mut waited = 0;
    while !cond() {
        assert!(waited < timeout_ms, "timed out waiting for {what}");
        sleep(20).await;
        waited += 20;
    }
}

pub async fn token(a: &AuthSession) -> Result<String, String> {
    match JsFuture::from(a.access_token()).await {
        Ok(t) => Ok(t.as_string().unwrap()),
        Err(e) => Err(get(&e, "code").as_string().unwrap()),
    }
}

/// The dev server's WebSocket URL for `path`.
pub fn ws_url(path: &str) -> String {
    format!("{}{path}", server().replacen("http://", "ws://", 1))
}

/// What the chat server saw for `session_id`.
pub async fn chat_stats(session_id: &str) -> JsValue {
    http("GET", &format!("/__test/chat?session_id={session_id}"), None)
        .await
        .1
}

/// A chat counter as a number.
pub async fn chat_stat(session_id: &str, counter: &str) -> u32 {
    get(&chat_stats(session_id).await, counter).as_f64().unwrap() as u32
}

/// The messages the chat server accepted, in order.
pub async fn chat_messages(session_id: &str) -> Vec<String> {
    let s = chat_stats(session_id).await;
    js_sys::Array::from(&get(&s, "messages"))
        .iter()
        .map(|m| m.as_string().unwrap())
        .collect()
}

/// Sets chat fault switches for `session_id`.
pub async fn chat_control(session_id: &str, settings: &[(&str, JsValue)]) {
    let mut pairs = vec![("session_id", JsValue::from_str(session_id))];
    pairs.extend(settings.iter().cloned());
    let (status, _) = http("POST", "/__test/chat-control", Some(obj(&pairs))).await;
    assert_eq!(status, 204);
}

/// Polls an async condition (e.g. a server counter) until it holds.
pub async fn eventually<F, Fut>(what: &str, timeout_ms: u32, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut waited = 0;
    while !cond().await {
        assert!(waited < timeout_ms, "timed out waiting for {what}");
        sleep(50).await;
        waited += 50;
    }
}
