//! Browser tests of `AuthSession` in headless Chromium against the real dev server.
//!
//! `scripts/test.sh` starts `authwire-devserver --port 0` and exports its URL as
//! `AUTHWIRE_SERVER_URL` before compiling these tests (as gloo-net's tests do with their echo server).
#![cfg(target_arch = "wasm32")]
// The lite build (no `full` feature) runs the tests of what it contains; helpers of the others idle.
#![cfg_attr(not(feature = "full"), allow(dead_code, unused_imports))]

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use authwire::AuthSession;
use common::*;
use js_sys::{Array, Function, Object, Promise, Reflect, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Every snapshot the session publishes, with the time it was seen: `(refreshCount, expiresAt, now)`.
fn record_snapshots(a: &Rc<AuthSession>) -> Rc<RefCell<Vec<(f64, f64, f64)>>> {
    let log = Rc::new(RefCell::new(Vec::new()));
    let (l, weak) = (log.clone(), Rc::downgrade(a));
    let f = Closure::<dyn FnMut()>::new(move || {
        if let Some(a) = weak.upgrade() {
            let snap = a.get_snapshot();
            let n = |k: &str| get(&snap, k).as_f64().unwrap_or(f64::NAN);
            l.borrow_mut()
                .push((n("refreshCount"), n("expiresAt"), js_sys::Date::now()));
        }
    });
    a.subscribe(f.as_ref().unchecked_ref()).unwrap();
    f.forget(); // test-only: lives as long as the test page
    log
}

/// The server's `refresh_ok` lies between the refreshes the client had completed before the
/// read and one more (a refresh the server answered whose answer is still on its way) after it.
async fn refreshes_agree(email: &str, a: &AuthSession) {
    let count = || get(&a.get_snapshot(), "refreshCount").as_f64().unwrap() as u32;
    let before = count();
    let served = stat(email, "refresh_ok").await;
    let after = count();
    assert!(
        before <= served && served <= after + 1,
        "server refreshes {served}, client {before}..{after}"
    );
}

#[wasm_bindgen_test]
async fn refreshes_over_http_before_expiry_and_rotates_the_refresh_token() {
    let email = unique("refresh");
    let s = sign_in(&email, 4).await;
    let first = get(&s, "access_token").as_string().unwrap();
    let a = Rc::new(auth(&s));
    let events = record_events(&a);
    let snapshots = record_snapshots(&a);
    assert_eq!(get(&a.get_snapshot(), "status"), "signed_in");
    assert_eq!(token(&a).await.unwrap(), first, "a fresh token is served as is");
    // Lead for a 4 s token is 1.5 s (50% of the 3 s counted): the refresh happens about 1.5 s in.
    wait_for("TOKEN_REFRESHED", 15_000, || {
        types(&events).contains(&"TOKEN_REFRESHED".to_string())
    })
    .await;
    let second = token(&a).await.unwrap();
    assert_ne!(second, first);
    refreshes_agree(&email, &a).await;
    assert_eq!(stat(&email, "refresh_reused").await, 0);
    assert!(get(&a.get_snapshot(), "refreshCount").as_f64().unwrap() >= 1.0);
    // When the first refresh landed, the new expiry lay a whole new lifetime ahead.
    let landed = snapshots
        .borrow()
        .iter()
        .find(|(count, _, _)| *count == 1.0)
        .copied()
        .expect("a snapshot after the first refresh");
    assert!(
        landed.1 > landed.2 + 2_000.0,
        "expiresAt {} ms ahead when the refresh landed",
        landed.1 - landed.2
    );
    // Keeps going: the rotated refresh token works for the next round.
    wait_for("a second refresh", 15_000, || {
        get(&a.get_snapshot(), "refreshCount").as_f64().unwrap() >= 2.0
    })
    .await;
    refreshes_agree(&email, &a).await;
    assert_eq!(stat(&email, "refresh_reused").await, 0);
}

#[wasm_bindgen_test]
async fn a_hundred_concurrent_callers_share_one_refresh_request() {
    let email = unique("flight");
    let s = sign_in(&email, 60).await;
    let a = auth(&expired_copy(&s));
    let calls = Array::new();
    for _ in 0..100 {
        calls.push(&a.access_token());
    }
    let tokens: Array = JsFuture::from(Promise::all(&calls)).await.unwrap().unchecked_into();
    let first = tokens.get(0).as_string().unwrap();
    assert_ne!(
        first,
        get(&s, "access_token").as_string().unwrap(),
        "the expired token is never handed out"
    );
    assert!(tokens.iter().all(|t| t.as_string().as_deref() == Some(first.as_str())));
    assert_eq!(stat(&email, "refresh_requests").await, 1, "one request for 100 callers");
    assert_eq!(get(&a.get_snapshot(), "refreshCount"), 1);
}

#[wasm_bindgen_test]
async fn a_reused_refresh_token_ends_in_signed_out_without_retrying() {
    let email = unique("reuse");
    // Strict rotation for this user: inside GoTrue's reuse interval the reuse would be answered.
    control(&email, &[("refresh_token_reuse_interval", 0.into())]).await;
    let s = sign_in(&email, 60).await;
    // Another client rotates the refresh token first.
    let (status, _) = http(
        "POST",
        "/auth/v1/token?grant_type=refresh_token",
        Some(obj(&[("refresh_token", get(&s, "refresh_token"))])),
    )
    .await;
    assert_eq!(status, 200);
    let a = auth(&expired_copy(&s));
    let events = record_events(&a);
    assert_eq!(token(&a).await, Err("invalid_grant".to_string()));
    assert_eq!(types(&events), vec!["REFRESH_FAILED", "SIGNED_OUT"]);
    assert_eq!(get(&events.borrow()[1], "code"), "invalid_grant");
    assert_eq!(get(&a.get_snapshot(), "status"), "signed_out");
    assert_eq!(stat(&email, "refresh_reused").await, 1);
    sleep(1_500).await;
    assert_eq!(
        stat(&email, "refresh_requests").await,
        2,
        "no retry loop after invalid_grant"
    );
    assert_eq!(token(&a).await, Err("signed_out".to_string()));
}

#[wasm_bindgen_test]
async fn a_server_error_is_retried_with_backoff_then_succeeds() {
    let email = unique("retry");
    let s = sign_in(&email, 4).await;
    control(&email, &[("fail_refreshes", 1.into()), ("fail_status", 503.into())]).await;
    let a = auth(&s);
    let events = record_events(&a);
    wait_for("TOKEN_REFRESHED", 15_000, || {
        types(&events).contains(&"TOKEN_REFRESHED".to_string())
    })
    .await;
    assert_eq!(
        types(&events)[..2],
        ["REFRESH_FAILED".to_string(), "TOKEN_REFRESHED".to_string()]
    );
    let failed = &events.borrow()[0];
    assert_eq!(get(failed, "code"), "server_error");
    assert_eq!(get(failed, "willRetry"), true);
    let delay = get(failed, "retryInMs").as_f64().unwrap();
    assert!(
        (100.0..=200.0).contains(&delay),
        "first backoff 100-200 ms, got {delay}"
    );
    assert_eq!(stat(&email, "refresh_faults").await, 1);
    refreshes_agree(&email, &a).await;
    assert_eq!(
        get(&a.get_snapshot(), "lastError"),
        JsValue::NULL,
        "cleared by the success"
    );
}

#[wasm_bindgen_test]
async fn coming_back_online_retries_an_expired_session_at_once_unless_freed() {
    // Two sessions in the same state: expired, and their one refresh attempt failed with 502.
    let (email, freed_email) = (unique("online"), unique("online-freed"));
    let mut sessions = vec![];
    for e in [&email, &freed_email] {
        let s = sign_in(e, 60).await;
        control(e, &[("fail_refreshes", 1.into()), ("fail_status", 502.into())]).await;
        let a = auth(&expired_copy(&s));
        assert_eq!(token(&a).await, Err("server_error".to_string()));
        assert_eq!(get(&a.get_snapshot(), "status"), "expired");
        sessions.push(a);
    }
    drop(sessions.pop()); // free() the second one: its window listeners must be gone
    let a = sessions.pop().unwrap();
    sleep(600).await;
    assert_eq!(
        stat(&email, "refresh_requests").await,
        1,
        "an expired token is not retried by timer"
    );
    let online = web_sys::Event::new("online").unwrap();
    web_sys::window().unwrap().dispatch_event(&online).unwrap();
    wait_for("the refresh after online", 10_000, || {
        get(&a.get_snapshot(), "status") == "signed_in"
    })
    .await;
    assert_eq!(stat(&email, "refresh_requests").await, 2);
    assert!(token(&a).await.is_ok());
    sleep(1_000).await;
    assert_eq!(
        stat(&freed_email, "refresh_requests").await,
        1,
        "the freed session did not wake up"
    );
}

fn code_of(r: Result<AuthSession, JsValue>) -> (String, String) {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => (
            get(&e, "code").as_string().unwrap(),
            get(&e, "message").as_string().unwrap(),
        ),
    }
}

#[cfg(feature = "full")]
#[wasm_bindgen_test]
async fn bad_input_throws_coded_errors_naming_the_field_never_the_token() {
    let email = unique("bad");
    let s = sign_in(&email, 60).await;
    let secret = get(&s, "access_token").as_string().unwrap();
    let with = |k: &str, v: JsValue| {
        let c = Object::assign(&Object::new(), s.unchecked_ref());
        Reflect::set(&c, &k.into(), &v).unwrap();
        JsValue::from(c)
    };
    let session_only = |sess: JsValue| AuthSession::new(obj(&[("session", sess)]));
    let cases: Vec<(Result<AuthSession, JsValue>, &str, &str)> = vec![
        (
            session_only(with("access_token", JsValue::UNDEFINED)),
            "invalid_session",
            "session.access_token is missing",
        ),
        (
            session_only(with("access_token", 42.into())),
            "invalid_session",
            "session.access_token must be a string, got number",
        ),
        (
            session_only(with("expires_at", "tomorrow".into())),
            "invalid_session",
            "session.expires_at must be a number, got string",
        ),
        (
            session_only(with("refresh_token", Object::new().into())),
            "invalid_session",
            "session.refresh_token must be a string, got object",
        ),
        (
            session_only("not-a-jwt".into()),
            "invalid_session",
            "session.access_token is not a JWT",
        ),
        (
            session_only(7.into()),
            "invalid_session",
            "session.access_token must be a string, got number",
        ),
        (session_only(expired_copy(&s)), "session_expired", "no refresh source"),
        (
            AuthSession::new("nope".into()),
            "invalid_options",
            "options must be an object",
        ),
        (
            AuthSession::new(obj(&[("marginSeconds", (-1).into())])),
            "invalid_options",
            "options.marginSeconds",
        ),
        (
            AuthSession::new(obj(&[("refresh", obj(&[("kind", "magic".into())]))])),
            "invalid_options",
            "options.refresh.kind",
        ),
        (
            AuthSession::new(obj(&[("storage", "cookie".into())])),
            "invalid_options",
            "options.storage",
        ),
        (
            AuthSession::new(obj(&[(
                "refresh",
                obj(&[("kind", "supabase".into()), ("url", server().into())]),
            )])),
            "invalid_options",
            "options.refresh.apiKey",
        ),
        (
            AuthSession::new(obj(&[(
                "refresh",
                obj(&[
                    ("kind", "supabase".into()),
                    ("url", "http://auth.example.com".into()),
                    ("apiKey", "k".into()),
                ]),
            )])),
            "insecure_url",
            "options.refresh.url",
        ),
        (
            AuthSession::new(obj(&[(
                "refresh",
                obj(&[
                    ("kind", "supabase".into()),
                    ("url", "not a url".into()),
                    ("apiKey", "k".into()),
                ]),
            )])),
            "invalid_url",
            "options.refresh.url",
        ),
    ];
    for (result, code, text) in cases {
        let (c, msg) = code_of(result);
        assert_eq!(c, code, "{msg}");
        assert!(msg.contains(text), "{msg:?} should contain {text:?}");
        assert!(
            !msg.contains(&secret) && !msg.contains("not-a-jwt"),
            "the token leaked into {msg:?}"
        );
    }
    // A refused setSession keeps the session that was there.
    let a = auth(&s);
    let e = a.set_session(with("expires_in", (-5).into())).unwrap_err();
    assert_eq!(get(&e, "code"), "invalid_session");
    assert_eq!(get(&e, "name"), "AuthwireError");
    assert_eq!(token(&a).await.unwrap(), secret);
}

#[wasm_bindgen_test]
async fn snapshots_keep_their_identity_until_something_changes() {
    let email = unique("snap");
    let s = sign_in(&email, 60).await;
    let a = auth(&s);
    let one = a.get_snapshot();
    assert!(Object::is(&one, &a.get_snapshot()));
    assert!(Object::is_frozen::<JsValue>(one.unchecked_ref()));
    let keys: Vec<String> = Object::keys::<JsValue>(one.unchecked_ref())
        .iter()
        .map(|k| k.as_string().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "status",
            "expiresAt",
            "userId",
            "refreshCount",
            "lastError",
            "sourceHealth"
        ]
    );
    assert_eq!(get(&one, "userId"), get(&get(&s, "user"), "id"));
    let calls = Rc::new(RefCell::new(0));
    let c = calls.clone();
    let f = Closure::<dyn FnMut()>::new(move || *c.borrow_mut() += 1);
    let unsubscribe: Function = a.subscribe(f.as_ref().unchecked_ref()).unwrap();
    JsFuture::from(a.refresh()).await.unwrap();
    assert!(*calls.borrow() >= 1);
    let two = a.get_snapshot();
    assert!(!Object::is(&one, &two));
    assert_eq!(get(&two, "refreshCount"), 1);
    unsubscribe.call0(&JsValue::NULL).unwrap();
    unsubscribe.call0(&JsValue::NULL).unwrap(); // idempotent
    let before = *calls.borrow();
    JsFuture::from(a.refresh()).await.unwrap();
    assert_eq!(*calls.borrow(), before, "no calls after unsubscribe");
    drop(f);
    // Nothing in the snapshot or the events is a token.
    let text = JSON::stringify(&a.get_snapshot()).unwrap().as_string().unwrap();
    assert!(!text.contains("eyJ"), "{text}");
}

#[wasm_bindgen_test]
async fn sign_out_ends_the_session_here_and_on_the_server() {
    let email = unique("logout");
    let s = sign_in(&email, 60).await;
    let a = auth(&s);
    let events = record_events(&a);
    JsFuture::from(a.sign_out()).await.unwrap();
    assert_eq!(types(&events), vec!["SIGNED_OUT"]);
    assert_eq!(get(&a.get_snapshot(), "status"), "signed_out");
    assert_eq!(stat(&email, "logouts").await, 1);
    assert_eq!(token(&a).await, Err("signed_out".to_string()));
    // The server revoked the refresh token too: GoTrue's answer to a signed-out session's token.
    let (status, body) = http(
        "POST",
        "/auth/v1/token?grant_type=refresh_token",
        Some(obj(&[("refresh_token", get(&s, "refresh_token"))])),
    )
    .await;
    assert_eq!(
        (status, get(&body, "error_code").as_string().unwrap()),
        (400, "refresh_token_not_found".to_string())
    );
    // Signing in again through setSession.
    let again = sign_in(&email, 60).await;
    a.set_session(again.clone()).unwrap();
    assert_eq!(types(&events), vec!["SIGNED_OUT", "SIGNED_IN"]);
    assert_eq!(
        token(&a).await.unwrap(),
        get(&again, "access_token").as_string().unwrap()
    );
}

#[cfg(feature = "full")]
#[wasm_bindgen_test]
async fn a_callback_source_supplies_new_sessions() {
    let email = unique("callback");
    let s = sign_in(&email, 60).await;
    let calls = Rc::new(RefCell::new(0u32));
    let c = calls.clone();
    let em = email.clone();
    let f = Closure::<dyn FnMut() -> Promise>::new(move || {
        *c.borrow_mut() += 1;
        let em = em.clone();
        wasm_bindgen_futures::future_to_promise(async move { Ok(sign_in(&em, 60).await) })
    });
    let source = obj(&[("kind", "callback".into()), ("fn", f.as_ref().clone())]);
    let bare = get(&s, "access_token"); // a bare JWT: expiry from its exp claim
    let a = AuthSession::new(obj(&[("session", bare), ("refresh", source)])).unwrap();
    JsFuture::from(a.refresh()).await.unwrap();
    assert_eq!(*calls.borrow(), 1);
    assert_eq!(get(&a.get_snapshot(), "refreshCount"), 1);
    assert_eq!(stat(&email, "password_grants").await, 2);
    // A callback answering null ends the session.
    let ends = Closure::<dyn FnMut() -> JsValue>::new(|| JsValue::NULL);
    let b = AuthSession::new(obj(&[
        ("session", s),
        (
            "refresh",
            obj(&[("kind", "callback".into()), ("fn", ends.as_ref().clone())]),
        ),
    ]))
    .unwrap();
    let r = JsFuture::from(b.refresh()).await.unwrap_err();
    assert_eq!(get(&r, "code"), "invalid_grant");
    assert_eq!(get(&b.get_snapshot(), "status"), "signed_out");
    drop((a, b, f, ends));
}

#[cfg(feature = "full")]
#[wasm_bindgen_test]
async fn after_free_no_timer_listener_or_request_fires() {
    let email = unique("free");
    let s = sign_in(&email, 2).await;
    let a = auth(&s);
    let calls = Rc::new(RefCell::new(0));
    let c = calls.clone();
    let f = Closure::<dyn FnMut(JsValue)>::new(move |_| *c.borrow_mut() += 1);
    a.subscribe(f.as_ref().unchecked_ref()).unwrap();
    a.on_event(f.as_ref().unchecked_ref()).unwrap();
    drop(a); // what free() does
             // A pending promise is rejected by free(): a callback source that never answers.
    let never = Closure::<dyn FnMut() -> Promise>::new(|| Promise::new(&mut |_, _| {}));
    let b = AuthSession::new(obj(&[
        ("session", s.clone()),
        (
            "refresh",
            obj(&[("kind", "callback".into()), ("fn", never.as_ref().clone())]),
        ),
    ]))
    .unwrap();
    let pending = JsFuture::from(b.refresh());
    drop(b);
    let e = pending.await.unwrap_err();
    assert_eq!(get(&e, "code"), "freed");
    sleep(2_500).await; // past the refresh time and the expiry of the 2 s token
    assert_eq!(*calls.borrow(), 0, "no listener called after free");
    assert_eq!(stat(&email, "refresh_requests").await, 0, "no refresh after free");
    drop((f, never));
}
