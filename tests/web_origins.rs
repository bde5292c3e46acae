//! Browser tests of the fetch origin rule (`core::origins`): `auth.fetch` sends credentials only to
//! the page's origin, the refresh source's origin and `fetchOrigins`, and refuses anything else
//! before a token is asked for or a request leaves the page. The dev server counts requests per
//! `Host` header (`/__test/hosts`): `http://localhost:PORT` is the same server as
//! `http://127.0.0.1:PORT` under a second origin, so a refused request shows as a count that does
//! not move. The test page itself is served by wasm-bindgen-test-runner from a third origin.
// auth.fetch is in the full build only.
#![cfg(feature = "full")]
#![cfg(target_arch = "wasm32")]

mod common;

use authwire::AuthSession;
use common::*;
use js_sys::{Array, Function, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The dev server under its second origin.
fn localhost() -> String {
    server().replacen("127.0.0.1", "localhost", 1)
}

/// `localhost:PORT`, as the Host header says it.
fn localhost_host() -> String {
    localhost().trim_start_matches("http://").to_owned()
}

/// Requests the dev server received with `Host: localhost:PORT`.
async fn localhost_count() -> u32 {
    let (status, counts) = http("GET", "/__test/hosts", None).await;
    assert_eq!(status, 200);
    get(&counts, &localhost_host()).as_f64().unwrap_or(0.0) as u32
}

fn list(items: &[&str]) -> JsValue {
    items.iter().map(|s| JsValue::from_str(s)).collect::<Array>().into()
}

fn new_url(text: &str) -> JsValue {
    let ctor: Function = Reflect::get(&js_sys::global(), &"URL".into()).unwrap().unchecked_into();
    Reflect::construct(&ctor, &Array::of1(&text.into())).unwrap()
}

/// `auth.fetch(input, init)`: the response's status, or the error's code.
async fn fetch(a: &AuthSession, input: JsValue, init: JsValue) -> Result<u16, String> {
    match JsFuture::from(a.fetch(input, init)).await {
        Ok(r) => Ok(r.unchecked_into::<web_sys::Response>().status()),
        Err(e) => Err(get(&e, "code").as_string().unwrap_or_else(|| format!("{e:?}"))),
    }
}

/// A session with the dev server (127.0.0.1) as its Supabase source, plus `extra` options.
fn session_with(s: &JsValue, extra: &[(&str, JsValue)]) -> AuthSession {
    let mut pairs = vec![("session", s.clone()), ("refresh", supabase_source())];
    pairs.extend(extra.iter().cloned());
    AuthSession::new(obj(&pairs)).unwrap()
}

#[wasm_bindgen_test]
async fn an_origin_not_listed_is_refused_and_no_request_leaves() {
    let email = unique("origin-refused");
    let s = sign_in(&email, 60).await;
    let a = session_with(&s, &[]);
    let before = localhost_count().await;
    let echo = format!("{}/api/echo", localhost());
    assert_eq!(
        fetch(&a, echo.as_str().into(), JsValue::UNDEFINED).await,
        Err("origin_not_allowed".into())
    );
    let post = obj(&[("method", "POST".into()), ("body", "payload".into())]);
    assert_eq!(
        fetch(&a, echo.as_str().into(), post).await,
        Err("origin_not_allowed".into())
    );
    // A Request object and a URL object, read as the browser reads them.
    let request = web_sys::Request::new_with_str(&echo).unwrap();
    assert_eq!(
        fetch(&a, request.into(), JsValue::UNDEFINED).await,
        Err("origin_not_allowed".into())
    );
    assert_eq!(
        fetch(&a, new_url(&echo), JsValue::UNDEFINED).await,
        Err("origin_not_allowed".into())
    );
    // `\` is `/` to the browser: the host is localhost, whatever follows the `@`.
    let disguised = format!("{}\\@{}/api/echo", localhost(), server().trim_start_matches("http://"));
    assert_eq!(
        fetch(&a, disguised.as_str().into(), JsValue::UNDEFINED).await,
        Err("origin_not_allowed".into())
    );
    // An https origin nobody listed.
    assert_eq!(
        fetch(&a, "https://api.example.com/me".into(), JsValue::UNDEFINED).await,
        Err("origin_not_allowed".into())
    );
    sleep(200).await;
    assert_eq!(localhost_count().await, before, "no request reached localhost");
    assert_eq!(stat(&email, "echo_requests").await, 0);
    assert_eq!(stat(&email, "refresh_requests").await, 0, "no refresh either");
}

/// The check comes before the token: a session with no token rejects `signed_out` when its token
/// is asked for, so a refused origin answering `origin_not_allowed` was never asked for one.
#[wasm_bindgen_test]
async fn the_origin_is_checked_before_any_token_is_asked_for() {
    let a = AuthSession::new(obj(&[("refresh", supabase_source())])).unwrap();
    let echo = format!("{}/api/echo", localhost());
    assert_eq!(
        fetch(&a, echo.as_str().into(), JsValue::UNDEFINED).await,
        Err("origin_not_allowed".into())
    );
    // An allowed origin gets as far as asking for the token.
    assert_eq!(
        fetch(&a, format!("{}/api/echo", server()).into(), JsValue::UNDEFINED).await,
        Err("signed_out".into())
    );
}

#[wasm_bindgen_test]
async fn a_listed_origin_is_allowed_and_the_request_arrives() {
    let email = unique("origin-listed");
    let s = sign_in(&email, 60).await;
    let a = session_with(&s, &[("fetchOrigins", list(&[&localhost()]))]);
    let before = localhost_count().await;
    let echo = format!("{}/api/echo", localhost());
    assert_eq!(fetch(&a, echo.as_str().into(), JsValue::UNDEFINED).await, Ok(200));
    let request = web_sys::Request::new_with_str(&echo).unwrap();
    let post = obj(&[("method", "POST".into()), ("body", "payload".into())]);
    assert_eq!(fetch(&a, request.into(), post).await, Ok(200), "a Request with init");
    assert_eq!(fetch(&a, new_url(&echo), JsValue::UNDEFINED).await, Ok(200), "a URL");
    assert!(localhost_count().await >= before + 3, "the requests reached localhost");
    assert_eq!(stat(&email, "echo_requests").await, 3);
    // Written differently, the same origin.
    let upper = format!("{}/api/echo", localhost().replacen("localhost", "LOCALHOST", 1));
    assert_eq!(fetch(&a, upper.as_str().into(), JsValue::UNDEFINED).await, Ok(200));
}

#[wasm_bindgen_test]
async fn a_pattern_allows_subdomains_of_localhost() {
    let s = sign_in(&unique("origin-pattern"), 60).await;
    let port = server().rsplit(':').next().unwrap().to_owned();
    let a = session_with(&s, &[("fetchOrigins", list(&[&format!("http://*.localhost:{port}")]))]);
    // `*.localhost` is not `localhost` itself.
    assert_eq!(
        fetch(&a, format!("{}/api/echo", localhost()).into(), JsValue::UNDEFINED).await,
        Err("origin_not_allowed".into())
    );
    // Chromium resolves `*.localhost` to loopback itself: the same dev server answers.
    let sub = format!("http://app.localhost:{port}/api/echo");
    assert_eq!(fetch(&a, sub.as_str().into(), JsValue::UNDEFINED).await, Ok(200));
}

#[wasm_bindgen_test]
async fn the_refresh_source_origin_is_allowed_and_a_callback_source_has_none() {
    let email = unique("origin-source");
    let s = sign_in(&email, 60).await;
    let a = session_with(&s, &[]);
    let echo = format!("{}/api/echo", server());
    assert_eq!(fetch(&a, echo.as_str().into(), JsValue::UNDEFINED).await, Ok(200));
    // A callback source has no URL: the same request is refused unless listed.
    let token = get(&s, "access_token");
    let f = Closure::<dyn FnMut() -> JsValue>::new(move || token.clone());
    let callback = obj(&[("kind", "callback".into()), ("fn", f.as_ref().clone())]);
    let b = AuthSession::new(obj(&[("session", s.clone()), ("refresh", callback.clone())])).unwrap();
    assert_eq!(
        fetch(&b, echo.as_str().into(), JsValue::UNDEFINED).await,
        Err("origin_not_allowed".into())
    );
    let c = AuthSession::new(obj(&[
        ("session", s.clone()),
        ("refresh", callback),
        ("fetchOrigins", list(&[server()])),
    ]))
    .unwrap();
    assert_eq!(fetch(&c, echo.as_str().into(), JsValue::UNDEFINED).await, Ok(200));
    drop((a, b, c, f));
}

#[wasm_bindgen_test]
async fn the_page_origin_is_allowed() {
    // The test runner serves this page from its own port; relative URLs resolve against it.
    let page = get(&get(&js_sys::global(), "location"), "origin").as_string().unwrap();
    assert_ne!(page, server(), "the page is another origin than the dev server");
    let s = sign_in(&unique("origin-page"), 60).await;
    // A static token: no source origin, no list; only the page's origin is allowed.
    let a = AuthSession::new(obj(&[("session", s.clone())])).unwrap();
    assert!(fetch(&a, "/authwire-origin-probe".into(), JsValue::UNDEFINED)
        .await
        .is_ok());
    let absolute = format!("{page}/authwire-origin-probe");
    assert!(fetch(&a, absolute.as_str().into(), JsValue::UNDEFINED).await.is_ok());
    assert!(fetch(&a, new_url(&absolute), JsValue::UNDEFINED).await.is_ok());
    assert_eq!(
        fetch(&a, format!("{}/api/echo", server()).into(), JsValue::UNDEFINED).await,
        Err("origin_not_allowed".into())
    );
}

#[wasm_bindgen_test]
async fn the_retry_after_a_401_goes_to_a_listed_origin() {
    let email = unique("origin-retry");
    let s = sign_in(&email, 60).await;
    let a = session_with(&s, &[("fetchOrigins", list(&[&localhost()]))]);
    let key = unique("first");
    let url = format!("{}/api/echo?reject_first={key}", localhost());
    assert_eq!(fetch(&a, url.as_str().into(), JsValue::UNDEFINED).await, Ok(200));
    assert_eq!(stat(&email, "echo_unauthorized").await, 1);
    assert_eq!(stat(&email, "echo_requests").await, 2, "the 401, then the retry");
    assert_eq!(stat(&email, "refresh_ok").await, 1);
}

#[wasm_bindgen_test]
async fn fetch_origins_are_checked_at_construction() {
    let make = |origins: JsValue, insecure: bool| {
        AuthSession::new(obj(&[("fetchOrigins", origins), ("allowInsecure", insecure.into())]))
    };
    let code = |r: Result<AuthSession, JsValue>| r.err().map(|e| (get(&e, "code"), get(&e, "message")));
    let (c, m) = code(make(list(&["http://example.com"]), false)).unwrap();
    assert_eq!(c, "insecure_url");
    assert!(m.as_string().unwrap().contains("options.fetchOrigins[0]"), "{m:?}");
    assert!(make(list(&["http://example.com"]), true).is_ok(), "with allowInsecure");
    for bad in [
        list(&["https://ok.example.com", "https://api.example.com/v1"]),
        list(&["https://ok.example.com", "https://*.com"]),
        list(&["https://ok.example.com", "https://user:pw@api.example.com"]),
        Array::of2(&"https://ok.example.com".into(), &42.into()).into(),
    ] {
        let (c, m) = code(make(bad, false)).unwrap();
        assert_eq!(c, "invalid_options");
        assert!(m.as_string().unwrap().contains("options.fetchOrigins[1] "), "{m:?}");
    }
    let (c, m) = code(make("https://api.example.com".into(), false)).unwrap();
    assert_eq!(c, "invalid_options");
    assert!(m.as_string().unwrap().contains("must be an array"), "{m:?}");
    assert!(make(list(&["https://api.example.com", "https://*.example.com"]), false).is_ok());
}

/// `followSupabase(client)`: the client's project URL (`supabaseUrl`) is the source's origin.
#[wasm_bindgen_test]
async fn following_supabase_allows_the_clients_project_origin() {
    let email = unique("origin-follow");
    let s = sign_in(&email, 60).await;
    let a = AuthSession::new(obj(&[("session", s.clone())])).unwrap();
    let echo = format!("{}/api/echo", localhost());
    assert_eq!(
        fetch(&a, echo.as_str().into(), JsValue::UNDEFINED).await,
        Err("origin_not_allowed".into())
    );
    let client = Function::new_with_args(
        "url",
        "return { supabaseUrl: url, auth: { onAuthStateChange() { return { data: { subscription: { unsubscribe() {} } } }; }, getSession: async () => ({ data: { session: null } }) } };",
    )
    .call1(&JsValue::UNDEFINED, &new_url(&localhost()))
    .unwrap();
    let _stop = a.follow_supabase(client).unwrap();
    let before = localhost_count().await;
    assert_eq!(fetch(&a, echo.as_str().into(), JsValue::UNDEFINED).await, Ok(200));
    assert!(localhost_count().await > before, "the request arrived");
}
