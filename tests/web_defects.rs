//! Browser regressions of the defects that lived in the shell (issue 10), each against the dev
//! server: a hung refresh, a refresh superseded in the same tick, `fetch(URL)`, a socket whose
//! session failed past expiry, and the app's callbacks re-entering the SDK. Each failed on the
//! code before the core took these decisions.
#![cfg(target_arch = "wasm32")]
// The lite build (no `full` feature) runs the tests of what it contains; helpers of the others idle.
#![cfg_attr(not(feature = "full"), allow(dead_code, unused_imports))]

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use authwire::{AuthSession, ChatSocket};
use common::*;
use js_sys::{Function, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn error_code(e: &JsValue) -> String {
    get(e, "code").as_string().unwrap_or_default()
}

/// Defect 1: a refresh endpoint that never answers left `accessToken()` pending forever and the
/// status stuck at `refreshing`. Now the attempt has a deadline: the caller is settled with
/// `refresh_timeout`, and the session retries and recovers when the endpoint does.
#[wasm_bindgen_test]
async fn a_hung_refresh_settles_callers_at_its_deadline_and_recovers() {
    let email = unique("hung");
    let s = sign_in(&email, 60).await;
    control(&email, &[("refresh_delay_ms", 600_000.into())]).await;
    let a = AuthSession::new(obj(&[
        ("session", expired_copy(&s)),
        ("refresh", supabase_source()),
        ("refreshTimeoutMs", 1_000.into()),
    ]))
    .unwrap();
    let started = js_sys::Date::now();
    let r = JsFuture::from(a.access_token()).await;
    let waited = js_sys::Date::now() - started;
    assert_eq!(error_code(&r.unwrap_err()), "refresh_timeout");
    assert!(
        waited < 30_000.0,
        "settled by the deadline, not left pending ({waited} ms)"
    );
    assert_ne!(get(&a.get_snapshot(), "status"), "refreshing");
    // The endpoint recovers: a demand gets a token once the hung request is abandoned (it is held
    // up to 30 s: its token may have been rotated by the server, so it is not presented again
    // before then).
    control(&email, &[("refresh_delay_ms", 0.into())]).await;
    eventually("a token after the endpoint recovered", 60_000, || async {
        JsFuture::from(a.access_token()).await.is_ok()
    })
    .await;
    assert_eq!(stat(&email, "refresh_reused").await, 0);
}

/// Defect 2: `refresh(); setSession(s2)` in one tick made the stale refresh task present s2's
/// refresh token and drop the answer; the next refresh then presented a spent token and the user
/// was signed out. Now the superseded attempt is never sent and s2 keeps refreshing.
#[wasm_bindgen_test]
async fn a_refresh_superseded_in_the_same_tick_never_spends_the_new_sessions_token() {
    let email = unique("supersede");
    let s1 = sign_in(&email, 60).await;
    let s2 = sign_in(&email, 60).await;
    let a = auth(&s1);
    let superseded = a.refresh();
    a.set_session(s2).unwrap();
    // The superseded refresh() is settled (resolved by the new session), not left pending.
    let _ = JsFuture::from(superseded).await;
    JsFuture::from(a.refresh())
        .await
        .expect("s2's refresh token is still good");
    assert_eq!(
        stat(&email, "refresh_reused").await,
        0,
        "no refresh token presented twice"
    );
    assert_eq!(get(&a.get_snapshot(), "status"), "signed_in");
}

/// Defect 2 (sign-in sources): a password source signing in at construction and `signOut()` in the
/// same tick signed the user in again.
#[cfg(feature = "full")]
#[wasm_bindgen_test]
async fn sign_out_right_after_construction_stays_signed_out() {
    let email = unique("pw-out");
    control(&email, &[("ttl_seconds", 60.into())]).await;
    let a = AuthSession::new(obj(&[(
        "refresh",
        obj(&[
            ("kind", "password".into()),
            ("url", server().into()),
            ("apiKey", "anon-key".into()),
            ("email", email.as_str().into()),
            ("password", "authwire-demo".into()),
        ]),
    )]))
    .unwrap();
    let _ = JsFuture::from(a.sign_out()).await;
    sleep(1_500).await;
    assert_eq!(get(&a.get_snapshot(), "status"), "signed_out");
    assert_eq!(
        stat(&email, "password_grants").await,
        0,
        "no sign-in request after the sign-out"
    );
}

/// Defect 3: `auth.fetch(new URL(...))` never settled. URL objects are accepted; a value that is no
/// URL at all is refused with a code.
#[cfg(feature = "full")]
#[wasm_bindgen_test]
async fn fetch_accepts_a_url_object_and_refuses_junk_with_a_code() {
    let email = unique("fetch-url");
    let s = sign_in(&email, 60).await;
    let a = auth(&s);
    let ctor: Function = Reflect::get(&js_sys::global(), &"URL".into()).unwrap().unchecked_into();
    let url = Reflect::construct(&ctor, &js_sys::Array::of1(&format!("{}/api/echo", server()).into())).unwrap();
    let resp: web_sys::Response = JsFuture::from(a.fetch(url, JsValue::UNDEFINED))
        .await
        .expect("a URL object is fetched")
        .unchecked_into();
    assert_eq!(resp.status(), 200);
    let e = JsFuture::from(a.fetch(JsValue::from_f64(42.0), JsValue::UNDEFINED))
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "invalid_url");
}

/// The soak's stall (liveness): every refresh fails from before expiry until past it, then the
/// endpoint recovers. The socket's queued messages are a demand the session keeps retrying for,
/// so they are delivered without any app call, wake-up or focus.
#[wasm_bindgen_test]
async fn queued_messages_go_out_after_refreshes_failed_past_expiry() {
    let email = unique("outage");
    let s = sign_in(&email, 3).await;
    let a = auth(&s);
    let sid = unique("s-outage");
    let auth_obj = Object::new();
    Reflect::set(&auth_obj, &"__authwireId".into(), &a.authwire_id().into()).unwrap();
    let c = ChatSocket::new(obj(&[
        ("url", ws_url("/ws/chat").into()),
        ("auth", auth_obj.into()),
        ("sessionId", sid.as_str().into()),
        ("ack", true.into()),
    ]))
    .unwrap();
    // Refreshes fail (500) from now until ~3 s past the token's expiry (3-second tokens are
    // counted as 2 s: GoTrue rounds `exp` down).
    let until = js_sys::Date::now() + 5_000.0;
    control(&email, &[("fail_until_ms", until.into())]).await;
    let sent: Vec<String> = (0..8).map(|i| format!("o{i}")).collect();
    for m in &sent[..4] {
        c.send(JsValue::from_str(m)).unwrap();
    }
    let expires_at = get(&a.get_snapshot(), "expiresAt").as_f64().unwrap();
    sleep((expires_at - js_sys::Date::now() + 300.0).max(0.0) as u32).await;
    // Sent during the outage, after expiry; then nothing more happens on the page: no send, no
    // accessToken(), no focus. Only the socket's queue waits for a token.
    for m in &sent[4..] {
        c.send(JsValue::from_str(m)).unwrap();
    }
    eventually("every message after the outage", 45_000, || async {
        chat_stat(&sid, "accepted").await == 8
    })
    .await;
    assert_eq!(chat_messages(&sid).await, sent, "once each, in order");
    assert_eq!(chat_stat(&sid, "stale_tokens").await, 0);
    assert_eq!(stat(&email, "refresh_reused").await, 0);
}

/// A `toJSON` that first calls `probe` (a Rust closure re-entering the SDK), then returns a plain
/// copy of its object.
fn to_json_calling(probe: &Closure<dyn Fn()>) -> JsValue {
    let make = Function::new_with_args(
        "probe",
        "return function () { probe(); const c = Object.assign({}, this); delete c.toJSON; return c; };",
    );
    make.call1(&JsValue::UNDEFINED, probe.as_ref()).unwrap()
}

/// Defect 7: the app's session object and messages were stringified (and posted to other tabs)
/// while the SDK held a borrow: a `toJSON` calling back into the SDK saw an `undefined` snapshot.
/// Now no borrow is held while app code runs.
#[cfg(feature = "full")]
#[wasm_bindgen_test]
async fn to_json_may_call_back_into_the_sdk() {
    let email = unique("reenter");
    let s = sign_in(&email, 60).await;
    let key = unique("reenter-key");
    let a = Rc::new(
        AuthSession::new(obj(&[
            ("refresh", supabase_source()),
            ("storage", "local".into()),
            ("storageKey", key.as_str().into()),
        ]))
        .unwrap(),
    );
    let seen: Rc<RefCell<Vec<JsValue>>> = Rc::default();
    let probe = {
        let (a, seen) = (a.clone(), seen.clone());
        Closure::<dyn Fn()>::new(move || seen.borrow_mut().push(a.get_snapshot()))
    };
    // The session is stored as JSON: its toJSON runs and reads the session's snapshot.
    let session = Object::assign(&Object::new(), s.unchecked_ref());
    Reflect::set(&session, &"toJSON".into(), &to_json_calling(&probe)).unwrap();
    a.set_session(session.into()).unwrap();
    assert!(!seen.borrow().is_empty(), "toJSON ran (the session was stored)");
    for snap in seen.borrow().iter() {
        assert!(snap.is_object(), "a snapshot, not undefined");
    }
    // A message is stringified when written: its toJSON reads the socket's snapshot.
    let sid = unique("s-reenter");
    let auth_obj = Object::new();
    Reflect::set(&auth_obj, &"__authwireId".into(), &a.authwire_id().into()).unwrap();
    let c = Rc::new(
        ChatSocket::new(obj(&[
            ("url", ws_url("/ws/chat").into()),
            ("auth", auth_obj.into()),
            ("sessionId", sid.as_str().into()),
        ]))
        .unwrap(),
    );
    let chat_seen: Rc<RefCell<Vec<JsValue>>> = Rc::default();
    let chat_probe = {
        let (c, seen) = (c.clone(), chat_seen.clone());
        Closure::<dyn Fn()>::new(move || seen.borrow_mut().push(c.get_snapshot()))
    };
    let msg = obj(&[("prompt", "hi".into())]);
    Reflect::set(&msg, &"toJSON".into(), &to_json_calling(&chat_probe)).unwrap();
    c.send(msg.clone()).unwrap(); // queued while connecting: written by the machine's flush
    eventually("the first message", 10_000, || async {
        chat_stat(&sid, "accepted").await == 1
    })
    .await;
    c.send(msg).unwrap(); // open: the one-call fast path
    eventually("the second message", 10_000, || async {
        chat_stat(&sid, "accepted").await == 2
    })
    .await;
    assert!(chat_seen.borrow().len() >= 2, "toJSON ran for both");
    for snap in chat_seen.borrow().iter() {
        assert!(snap.is_object(), "the socket's snapshot, not undefined");
    }
}

/// Defect 7, the other callbacks: a refresh callback and a session getter that call back into the
/// session while it works (snapshot, `accessToken()`), and event listeners that do the same.
#[cfg(feature = "full")]
#[wasm_bindgen_test]
async fn callbacks_and_getters_may_call_back_into_the_sdk() {
    let email = unique("reenter-cb");
    let s = sign_in(&email, 60).await;
    let slot: Rc<RefCell<Option<Rc<AuthSession>>>> = Rc::default();
    let seen: Rc<RefCell<Vec<JsValue>>> = Rc::default();
    // The callback source reads the snapshot and asks for a token (it joins the refresh in flight:
    // not awaited here, it must settle once the callback's session arrives).
    let pending: Rc<RefCell<Vec<js_sys::Promise>>> = Rc::default();
    let fresh = sign_in(&email, 60).await;
    let callback = {
        let (slot, seen, pending, fresh) = (slot.clone(), seen.clone(), pending.clone(), fresh.clone());
        Closure::<dyn Fn(JsValue) -> JsValue>::new(move |_rt: JsValue| {
            if let Some(a) = slot.borrow().as_ref() {
                seen.borrow_mut().push(a.get_snapshot());
                pending.borrow_mut().push(a.access_token());
            }
            js_sys::Promise::resolve(&fresh).into()
        })
    };
    // A session whose `access_token` is a getter reading the snapshot.
    let session = Object::assign(&Object::new(), s.unchecked_ref());
    let getter = {
        let (slot, seen) = (slot.clone(), seen.clone());
        Closure::<dyn Fn() -> JsValue>::new(move || {
            if let Some(a) = slot.borrow().as_ref() {
                seen.borrow_mut().push(a.get_snapshot());
            }
            JsValue::from_str("eyJhbGciOiJIUzI1NiJ9.e30.x")
        })
    };
    let a = Rc::new(
        AuthSession::new(obj(&[(
            "refresh",
            obj(&[("kind", "callback".into()), ("fn", callback.as_ref().clone())]),
        )]))
        .unwrap(),
    );
    *slot.borrow_mut() = Some(a.clone());
    // Listeners re-enter too.
    let listener = {
        let (slot, seen) = (slot.clone(), seen.clone());
        Closure::<dyn Fn(JsValue)>::new(move |_e: JsValue| {
            if let Some(a) = slot.borrow().as_ref() {
                seen.borrow_mut().push(a.get_snapshot());
            }
        })
    };
    let _off = a.on_event(listener.as_ref().unchecked_ref()).unwrap();
    let descriptor = obj(&[("get", getter.as_ref().clone()), ("enumerable", true.into())]);
    Reflect::set(&session, &"expires_in".into(), &3600.into()).unwrap();
    Object::define_property(&session, &"access_token".into(), descriptor.unchecked_ref());
    a.set_session(session.into()).unwrap();
    JsFuture::from(a.refresh()).await.expect("the callback's session");
    for p in pending.borrow_mut().drain(..) {
        JsFuture::from(p)
            .await
            .expect("a token asked for from inside the callback settles");
    }
    assert!(
        seen.borrow().len() >= 3,
        "the getter, the callback and the listeners ran"
    );
    for snap in seen.borrow().iter() {
        assert!(snap.is_object(), "a snapshot, not undefined");
    }
    assert_eq!(get(&a.get_snapshot(), "status"), "signed_in");
}
