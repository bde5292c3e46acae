//! Hostile input at every JS entry (issue 11): numbers that are not numbers, Proxy and frozen
//! objects, getters that throw or call back into the SDK, URL objects, a 1 MB token, lone
//! surrogates, a 10 MB server frame, sessions expiring in 1970 or the year 3000, listeners that are
//! not functions. Each answer is a coded error or the right behaviour, and afterwards nothing is
//! lost, no promise is left pending and no socket is dead.
#![cfg(target_arch = "wasm32")]
// The lite build (no `full` feature) runs the tests of what it contains; helpers of the others idle.
#![cfg_attr(not(feature = "full"), allow(dead_code, unused_imports))]

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use authwire::{AuthSession, ChatSocket};
use common::*;
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Evaluates a JS function body with the given named arguments.
fn js(args: &str, body: &str, values: &[JsValue]) -> JsValue {
    let f = Function::new_with_args(args, body);
    let arr: js_sys::Array = values.iter().collect();
    f.apply(&JsValue::UNDEFINED, &arr).unwrap()
}

fn code(e: &JsValue) -> String {
    get(e, "code")
        .as_string()
        .unwrap_or_else(|| format!("not coded: {e:?}"))
}

fn message(e: &JsValue) -> String {
    get(e, "message").as_string().unwrap_or_default()
}

/// Awaits `p`, failing the test if it has not settled within `ms` (a pending promise is a hang).
async fn settle(p: Promise, ms: u32) -> Result<JsValue, JsValue> {
    let timeout = js(
        "p, ms",
        "return Promise.race([p.then((v) => ({ v }), (e) => ({ e })), new Promise((r) => setTimeout(() => r({ hung: true }), ms))]);",
        &[p.into(), ms.into()],
    );
    let out = JsFuture::from(Promise::from(timeout)).await.unwrap();
    assert!(
        get(&out, "hung").is_undefined(),
        "the promise did not settle within {ms} ms"
    );
    let e = get(&out, "e");
    if Reflect::has(&out, &"e".into()).unwrap() {
        Err(e)
    } else {
        Ok(get(&out, "v"))
    }
}

async fn token_of(a: &AuthSession) -> Result<String, String> {
    settle(a.access_token(), 15_000)
        .await
        .map(|v| v.as_string().unwrap())
        .map_err(|e| code(&e))
}

fn session_options(session: &JsValue) -> JsValue {
    obj(&[("session", session.clone()), ("refresh", supabase_source())])
}

fn auth_object(a: &AuthSession) -> JsValue {
    obj(&[("__authwireId", a.authwire_id().into())])
}

fn chat_options(a: &AuthSession, sid: &str, extra: &[(&str, JsValue)]) -> JsValue {
    let mut v = vec![
        ("url", JsValue::from_str(&ws_url("/ws/chat"))),
        ("auth", auth_object(a)),
        ("sessionId", sid.into()),
    ];
    v.extend(extra.iter().cloned());
    obj(&v)
}

/// A socket that has delivered one message (so it is open), and what the server accepted.
async fn open_chat(a: &AuthSession, sid: &str, extra: &[(&str, JsValue)]) -> ChatSocket {
    let c = ChatSocket::new(chat_options(a, sid, extra)).unwrap();
    c.send("first".into()).unwrap();
    eventually("the first message", 10_000, || async {
        chat_stat(sid, "accepted").await == 1
    })
    .await;
    c
}

#[wasm_bindgen_test]
async fn every_number_option_refuses_nan_infinity_negative_huge_and_numeric_strings() {
    let email = unique("hostile-numbers");
    let s = sign_in(&email, 60).await;
    let a = auth(&s);
    let bad: Vec<(JsValue, &str)> = vec![
        (f64::NAN.into(), "NaN"),
        (f64::INFINITY.into(), "Infinity"),
        (f64::NEG_INFINITY.into(), "-Infinity"),
        ((-1.0).into(), "-1"),
        (1e300.into(), "1e300"),
        ("5000".into(), "a string"),
    ];
    // (is the option AuthSession's, its path, does it accept Infinity)
    let options: [(bool, &str, bool); 9] = [
        (true, "marginSeconds", false),
        (true, "refreshTimeoutMs", false),
        (false, "heartbeatMs", false),
        (false, "connectTimeoutMs", false),
        (false, "maxQueued", false),
        (false, "reconnect.minDelayMs", false),
        (false, "reconnect.maxDelayMs", false),
        (false, "reconnect.factor", false),
        (false, "reconnect.maxRetries", true),
    ];
    let mut checked = 0;
    for (is_auth, path, infinity_ok) in options {
        for (value, what) in &bad {
            if infinity_ok && *what == "Infinity" {
                continue;
            }
            let pair = match path.split_once('.') {
                Some((outer, inner)) => (outer, obj(&[(inner, value.clone())])),
                None => (path, value.clone()),
            };
            let e = if is_auth {
                let o = session_options(&s);
                Reflect::set(&o, &pair.0.into(), &pair.1).unwrap();
                AuthSession::new(o).err()
            } else {
                ChatSocket::new(chat_options(&a, "never-used", &[pair])).err()
            }
            .unwrap_or_else(|| panic!("{path} = {what} was accepted"));
            assert_eq!(code(&e), "invalid_options", "{path} = {what}");
            assert!(
                message(&e).contains(&format!("options.{path} must be")),
                "{path} = {what}: {}",
                message(&e)
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 53);
    // Nothing was left behind: the session still serves, and a socket with defaults works.
    assert_eq!(token_of(&a).await.map(|t| t.len() > 20), Ok(true));
    let sid = unique("s-numbers");
    let c = open_chat(&a, &sid, &[]).await;
    c.close();
}

#[wasm_bindgen_test]
async fn proxies_frozen_objects_and_throwing_traps() {
    let email = unique("hostile-proxy");
    let s = sign_in(&email, 60).await;
    let frozen_session: Object = Object::freeze(&Object::assign(&Object::new(), s.unchecked_ref()));
    let frozen_source: Object = Object::freeze(supabase_source().unchecked_ref());
    // Options behind a forwarding Proxy, everything frozen: accepted and working.
    let options = obj(&[("session", frozen_session.into()), ("refresh", frozen_source.into())]);
    let proxied = js("o", "return new Proxy(Object.freeze(o), {});", &[options]);
    let a = AuthSession::new(proxied).expect("a Proxy of frozen options is accepted");
    assert!(settle(a.refresh(), 15_000).await.is_ok(), "refreshes");
    assert_eq!(stat(&email, "refresh_ok").await, 1);
    // A revoked Proxy, a trap that throws: refused with a code naming what could not be read.
    let revoked = js(
        "",
        "const r = Proxy.revocable({}, {}); r.revoke(); return r.proxy;",
        &[],
    );
    let e = AuthSession::new(revoked).err().expect("refused");
    assert_eq!(code(&e), "invalid_options");
    let throwing = js(
        "o",
        "return new Proxy(o, { get(t, k) { if (k === 'refresh') throw new Error('trap'); return t[k]; } });",
        &[session_options(&s)],
    );
    let e = AuthSession::new(throwing).err().expect("refused");
    assert_eq!(code(&e), "invalid_options");
    assert!(
        message(&e).contains("options.refresh could not be read"),
        "{}",
        message(&e)
    );
    // A session whose getter throws: refused as a session, the old one kept.
    let bad = js(
        "s",
        "return new Proxy(s, { get(t, k) { if (k === 'access_token') throw new Error('trap'); return t[k]; } });",
        &[s.clone()],
    );
    let before = token_of(&a).await.unwrap();
    let e = a.set_session(bad).err().expect("refused");
    assert_eq!(code(&e), "invalid_session");
    assert_eq!(token_of(&a).await.unwrap(), before, "the old session is kept");
    // The socket's options: frozen and proxied are fine; a throwing trap names the field.
    let sid = unique("s-proxy");
    let o = js(
        "o",
        "return new Proxy(Object.freeze(o), {});",
        &[chat_options(&a, &sid, &[])],
    );
    let c = ChatSocket::new(o).expect("accepted");
    c.send("through a proxy".into()).unwrap();
    eventually("the message", 10_000, || async {
        chat_stat(&sid, "accepted").await == 1
    })
    .await;
    c.close();
    let o = js(
        "o",
        "return new Proxy(o, { get(t, k) { if (k === 'url') throw new Error('trap'); return t[k]; } });",
        &[chat_options(&a, &sid, &[])],
    );
    let e = ChatSocket::new(o).err().expect("refused");
    assert_eq!(code(&e), "invalid_options");
    assert!(message(&e).contains("options.url"), "{}", message(&e));
}

#[wasm_bindgen_test]
async fn getters_that_call_back_into_the_sdk_while_it_reads_them() {
    let email = unique("hostile-reenter");
    let s1 = sign_in(&email, 60).await;
    let s2 = sign_in(&email, 60).await;
    let t2 = get(&s2, "access_token").as_string().unwrap();
    let a = Rc::new(auth(&s1));
    // setSession(s) where reading s.access_token sets another session, then signs out and in again.
    let inner_calls = Rc::new(RefCell::new(Vec::<String>::new()));
    let reenter = {
        let (a, calls, s2) = (a.clone(), inner_calls.clone(), s2.clone());
        Closure::<dyn Fn() -> JsValue>::new(move || {
            let r = a.set_session(s2.clone());
            calls.borrow_mut().push(format!("setSession: {}", r.is_ok()));
            let _ = a.sign_out();
            calls
                .borrow_mut()
                .push(format!("snapshot: {:?}", get(&a.get_snapshot(), "status").as_string()));
            JsValue::from_str(&get(&s2, "access_token").as_string().unwrap())
        })
    };
    let session = Object::assign(&Object::new(), s2.unchecked_ref());
    let descriptor = obj(&[("get", reenter.as_ref().clone()), ("enumerable", true.into())]);
    Object::define_property(&session, &"access_token".into(), descriptor.unchecked_ref());
    let outer = a.set_session(session.into());
    assert!(outer.is_ok(), "{:?}", outer.err().map(|e| message(&e)));
    assert!(!inner_calls.borrow().is_empty(), "the getter ran");
    // The outer call came last: its session (s2) stands, whatever the getter did meanwhile.
    assert_eq!(token_of(&a).await, Ok(t2.clone()));
    // Options whose getter builds, uses and frees another session while this one is built.
    let nested = {
        let s1 = s1.clone();
        Closure::<dyn Fn() -> JsValue>::new(move || {
            let other = auth(&s1);
            let _ = other.access_token();
            drop(other);
            JsValue::from_f64(30.0)
        })
    };
    let o = session_options(&s2);
    let descriptor = obj(&[("get", nested.as_ref().clone()), ("enumerable", true.into())]);
    Object::define_property(
        o.unchecked_ref::<Object>(),
        &"marginSeconds".into(),
        descriptor.unchecked_ref(),
    );
    let b = AuthSession::new(o).expect("accepted");
    assert_eq!(token_of(&b).await, Ok(t2));
}

#[cfg(feature = "full")]
#[wasm_bindgen_test]
async fn url_objects_wherever_a_url_is_taken() {
    let email = unique("hostile-url");
    let s = sign_in(&email, 60).await;
    let url = |u: &str| JsValue::from(web_sys::Url::new(u).unwrap());
    let source = obj(&[
        ("kind", "supabase".into()),
        ("url", url(server())),
        ("apiKey", "anon-key".into()),
    ]);
    let a = AuthSession::new(obj(&[("session", s), ("refresh", source)])).expect("a URL object as refresh.url");
    assert!(settle(a.refresh(), 15_000).await.is_ok());
    assert_eq!(
        stat(&email, "refresh_ok").await,
        1,
        "the refresh went to the URL object's server"
    );
    let sid = unique("s-url");
    let c = ChatSocket::new(chat_options(&a, &sid, &[("url", url(&ws_url("/ws/chat")))])).expect("a URL object as url");
    c.send("hello".into()).unwrap();
    eventually("the message", 10_000, || async {
        chat_stat(&sid, "accepted").await == 1
    })
    .await;
    c.close();
    // The bypass written as a URL object is refused as the string is.
    let e = ChatSocket::new(chat_options(&a, &sid, &[("url", url("ws://evil.com\\@127.0.0.1/ws"))]))
        .err()
        .expect("refused");
    assert_eq!(code(&e), "insecure_url");
    // fetch takes a URL object and a Request.
    let echo = format!("{}/api/echo", server());
    let r = settle(a.fetch(url(&echo), JsValue::UNDEFINED), 15_000)
        .await
        .expect("fetched");
    assert_eq!(r.unchecked_ref::<web_sys::Response>().status(), 200);
    let request = web_sys::Request::new_with_str(&echo).unwrap();
    let r = settle(a.fetch(request.into(), JsValue::UNDEFINED), 15_000)
        .await
        .expect("fetched");
    assert_eq!(r.unchecked_ref::<web_sys::Response>().status(), 200);
}

#[cfg(feature = "full")]
#[wasm_bindgen_test]
async fn a_megabyte_token_and_lone_surrogates_are_refused_with_a_code() {
    let email = unique("hostile-token");
    let s = sign_in(&email, 60).await;
    let big = js("", "return 'eyJ' + 'a'.repeat(1 << 20);", &[]);
    let lone = js(
        "",
        "return 'eyJhbGciOiJIUzI1NiJ9.e30' + String.fromCharCode(0xD800) + '.x';",
        &[],
    );
    for (field, value) in [
        ("access_token", &big),
        ("refresh_token", &big),
        ("access_token", &lone),
        ("refresh_token", &lone),
    ] {
        let bad = Object::assign(&Object::new(), s.unchecked_ref());
        Reflect::set(&bad, &field.into(), value).unwrap();
        let e = AuthSession::new(session_options(&bad.into())).err().expect("refused");
        assert_eq!(code(&e), "invalid_session", "{field}");
        assert!(message(&e).contains(&format!("session.{field}")), "{}", message(&e));
        assert!(message(&e).len() < 300, "the token is not echoed");
    }
    // setSession refuses them too and keeps the session it has.
    let a = auth(&s);
    let before = token_of(&a).await.unwrap();
    let e = a.set_session(big.clone()).err().expect("refused");
    assert_eq!(code(&e), "invalid_session");
    assert_eq!(token_of(&a).await, Ok(before));
    // A token endpoint (here a callback) answering a megabyte token: refused as a response, and
    // the next answer is taken.
    let fresh = sign_in(&email, 60).await;
    let answers = js(
        "big, fresh",
        "const f = () => (f.calls++ === 0 ? { access_token: big, expires_in: 60 } : fresh); f.calls = 0; return f;",
        &[big, fresh.clone()],
    );
    let answers_calls = answers.clone();
    let b = AuthSession::new(obj(&[(
        "refresh",
        obj(&[("kind", "callback".into()), ("fn", answers)]),
    )]))
    .unwrap();
    assert_eq!(token_of(&b).await, Err("invalid_response".into()));
    // Backing off, callers are answered at once; once it has passed, the next request is made.
    let want = get(&fresh, "access_token").as_string().unwrap();
    let mut waited = 0;
    loop {
        match token_of(&b).await {
            Ok(t) => break assert_eq!(t, want),
            Err(c) => assert_eq!(c, "invalid_response"),
        }
        assert!(waited < 15_000, "the source was never asked again");
        sleep(200).await;
        waited += 200;
    }
    assert_eq!(
        js("f", "return f.calls;", &[answers_calls.clone()]).as_f64(),
        Some(2.0),
        "asked twice in all"
    );
}

#[wasm_bindgen_test]
async fn messages_that_cannot_be_sent_are_refused_and_the_rest_arrive_once() {
    let email = unique("hostile-send");
    let s = sign_in(&email, 60).await;
    let a = Rc::new(auth(&s));
    let sid = unique("s-send");
    let c = Rc::new(ChatSocket::new(chat_options(&a, &sid, &[])).unwrap());
    let hostile = js(
        "",
        r#"const cyclic = { prompt: "c" }; cyclic.self = cyclic;
        return [
          { prompt: "b", n: 10n },
          cyclic,
          { prompt: "g", get boom() { throw new Error("getter"); } },
          { prompt: "t", toJSON() { throw new Error("toJSON"); } },
          new Proxy({ prompt: "p" }, { getPrototypeOf() { throw new Error("trap"); } }),
          new Proxy({ prompt: "p" }, { ownKeys() { throw new Error("trap"); } }),
          Symbol("s"), () => 1, [1, 2], 42, null, undefined, new Date(), new Map(),
        ];"#,
        &[],
    );
    let good = js(
        "",
        r#"return [
          "plain",
          "lone " + String.fromCharCode(0xD800) + " surrogate",
          Object.freeze({ prompt: "frozen" }),
          new Proxy({ prompt: "proxied" }, {}),
          { prompt: "obj lone " + String.fromCharCode(0xDC00) },
          { prompt: "\\ud800 is text, not a surrogate" },
          { toJSON() { return { prompt: "from toJSON" }; } },
        ];"#,
        &[],
    );
    let expected = [
        "plain",
        "lone \u{FFFD} surrogate",
        "frozen",
        "proxied",
        "obj lone \u{FFFD}",
        "\\ud800 is text, not a surrogate",
        "from toJSON",
    ];
    let send_all = |c: &ChatSocket| {
        for m in js_sys::Array::from(&hostile).iter() {
            let e = c.send(m).err().expect("refused");
            assert_eq!(code(&e), "invalid_message", "{}", message(&e));
        }
        for m in js_sys::Array::from(&good).iter() {
            c.send(m).expect("accepted");
        }
    };
    // While connecting (queued: the slow path), then open (the fast path).
    send_all(&c);
    eventually("the queued messages", 10_000, || async {
        chat_stat(&sid, "accepted").await == expected.len() as u32
    })
    .await;
    send_all(&c);
    eventually("the messages sent open", 10_000, || async {
        chat_stat(&sid, "accepted").await == 2 * expected.len() as u32
    })
    .await;
    // A getter that sends (re-entering the socket) while its own message is being sent.
    let inner = {
        let c = c.clone();
        Closure::<dyn Fn() -> JsValue>::new(move || {
            c.send("inner".into()).unwrap();
            JsValue::from_str("outer")
        })
    };
    let m = Object::new();
    let descriptor = obj(&[("get", inner.as_ref().clone()), ("enumerable", true.into())]);
    Object::define_property(&m, &"prompt".into(), descriptor.unchecked_ref());
    c.send(m.into()).unwrap();
    c.send("last".into()).unwrap();
    eventually("every message", 10_000, || async {
        chat_stat(&sid, "accepted").await == 2 * expected.len() as u32 + 3
    })
    .await;
    let mut want: Vec<String> = expected.iter().chain(expected.iter()).map(|s| s.to_string()).collect();
    want.extend(["inner".into(), "outer".into(), "last".into()]);
    assert_eq!(
        chat_messages(&sid).await,
        want,
        "each once, in order, lone surrogates as U+FFFD"
    );
    assert_eq!(get(&c.get_snapshot(), "status"), "open");
    c.close();
}

#[wasm_bindgen_test]
async fn a_ten_megabyte_server_frame_reaches_the_app_and_the_socket_lives_on() {
    let email = unique("hostile-big");
    let s = sign_in(&email, 60).await;
    let a = auth(&s);
    let sid = unique("s-big");
    let c = open_chat(&a, &sid, &[]).await;
    let sizes: Rc<RefCell<Vec<f64>>> = Rc::default();
    let on = {
        let sizes = sizes.clone();
        Closure::<dyn Fn(JsValue)>::new(move |m: JsValue| {
            let text = get(&m, "message");
            if let Some(n) = text.dyn_ref::<js_sys::JsString>().map(|t| t.length()) {
                sizes.borrow_mut().push(n as f64);
            }
        })
    };
    let _off = c.on_message(on.as_ref()).unwrap();
    let memory = || {
        wasm_bindgen::memory()
            .unchecked_into::<js_sys::WebAssembly::Memory>()
            .buffer()
            .unchecked_into::<js_sys::ArrayBuffer>()
            .byte_length()
    };
    let big = js("", "return 'x'.repeat(10 * 1024 * 1024);", &[]);
    let before = memory();
    c.send(big).unwrap(); // the server answers "echo: " + the prompt: a 10 MB frame
    wait_for("the 10 MB frame", 30_000, || {
        sizes.borrow().iter().any(|&n| n == (10 * 1024 * 1024 + 6) as f64)
    })
    .await;
    let grown = memory() - before;
    assert!(
        grown < 1 << 20,
        "the frame stayed in JS: wasm memory grew {grown} bytes"
    );
    c.send("after".into()).unwrap();
    eventually("a message after it", 10_000, || async {
        chat_stat(&sid, "accepted").await == 3
    })
    .await;
    assert_eq!(get(&c.get_snapshot(), "status"), "open");
    c.close();
}

#[wasm_bindgen_test]
async fn sessions_expiring_in_1970_or_the_year_3000() {
    let email = unique("hostile-expiry");
    let s = sign_in(&email, 3).await;
    let with = |at: f64| {
        let copy = Object::assign(&Object::new(), s.unchecked_ref());
        Reflect::set(&copy, &"expires_at".into(), &at.into()).unwrap();
        Reflect::delete_property(&copy, &"expires_in".into()).unwrap();
        JsValue::from(copy)
    };
    // 1970-01-01T00:00:01Z: long expired, refreshed at once.
    let a = AuthSession::new(session_options(&with(1.0))).expect("accepted");
    let t = token_of(&a).await.unwrap();
    assert_ne!(Some(t), get(&s, "access_token").as_string(), "a fresh token");
    assert_eq!(stat(&email, "refresh_ok").await, 1);
    // 0 is no expiry at all: refused.
    let e = AuthSession::new(session_options(&with(0.0))).err().expect("refused");
    assert_eq!(code(&e), "invalid_session");
    // The year 3000 for a JWT that lives 3 s: the JWT's exp decides, so the token is refreshed
    // before it expires and the stale one never comes back.
    let s3000 = sign_in(&email, 3).await;
    let copy = Object::assign(&Object::new(), s3000.unchecked_ref());
    Reflect::set(&copy, &"expires_at".into(), &32_503_680_000.0.into()).unwrap();
    Reflect::delete_property(&copy, &"expires_in".into()).unwrap();
    let b = AuthSession::new(session_options(&copy.into())).expect("accepted");
    let expires = get(&b.get_snapshot(), "expiresAt").as_f64().unwrap();
    assert!(
        expires < js_sys::Date::now() + 4_000.0,
        "the JWT's exp, not the year 3000"
    );
    sleep(3_500).await;
    let old = get(&s3000, "access_token").as_string().unwrap();
    let t = token_of(&b).await.unwrap();
    assert_ne!(t, old, "never the expired token");
    // An opaque token said to live until 1e300 seconds: no timer fires early (a refresh with its
    // made-up refresh token would sign it out), nothing storms.
    let opaque = obj(&[
        ("access_token", "opaque-token".into()),
        ("refresh_token", "r".into()),
        ("expires_at", 1e300.into()),
    ]);
    let c = AuthSession::new(session_options(&opaque)).expect("accepted");
    sleep(500).await;
    assert_eq!(token_of(&c).await, Ok("opaque-token".into()));
    let snap = c.get_snapshot();
    assert_eq!(get(&snap, "status"), "signed_in");
    assert_eq!(get(&snap, "lastError"), JsValue::NULL, "no refresh was attempted");
}

#[wasm_bindgen_test]
async fn listeners_and_clients_that_are_not_what_they_should_be() {
    let email = unique("hostile-listeners");
    let s = sign_in(&email, 60).await;
    let a = auth(&s);
    let sid = unique("s-listeners");
    let c = open_chat(&a, &sid, &[]).await;
    let junk: Vec<JsValue> = vec![
        42.into(),
        JsValue::NULL,
        JsValue::UNDEFINED,
        "f".into(),
        Object::new().into(),
    ];
    for j in &junk {
        for e in [
            a.subscribe(j).err(),
            a.on_event(j).err(),
            c.on_message(j).err(),
            c.subscribe(j).err(),
        ] {
            let e = e.expect("refused");
            assert_eq!(code(&e), "invalid_argument", "{}", message(&e));
        }
    }
    for client in [
        JsValue::NULL,
        obj(&[]),
        obj(&[("auth", obj(&[]))]),
        js(
            "",
            "return { auth: { onAuthStateChange() { throw new Error('client'); } } };",
            &[],
        ),
    ] {
        let e = a.follow_supabase(client).err().expect("refused");
        assert_eq!(code(&e), "invalid_argument", "{}", message(&e));
    }
    // Real listeners still hear everything.
    let events = record_events(&a);
    assert!(settle(a.refresh(), 15_000).await.is_ok());
    wait_for("TOKEN_REFRESHED", 5_000, || {
        types(&events).contains(&"TOKEN_REFRESHED".to_string())
    })
    .await;
    c.send("still here".into()).unwrap();
    eventually("the message", 10_000, || async {
        chat_stat(&sid, "accepted").await == 2
    })
    .await;
    c.close();
}

#[cfg(feature = "full")]
#[wasm_bindgen_test]
async fn fetch_with_inputs_and_inits_no_request_can_be_made_from() {
    let email = unique("hostile-fetch");
    let s = sign_in(&email, 60).await;
    let a = auth(&s);
    let echo = format!("{}/api/echo", server());
    let before = stat(&email, "echo_requests").await;
    let cases: Vec<(JsValue, JsValue, &str)> = vec![
        (42.into(), JsValue::UNDEFINED, "invalid_url"),
        (
            js(
                "",
                "const r = Proxy.revocable({}, {}); r.revoke(); return r.proxy;",
                &[],
            ),
            JsValue::UNDEFINED,
            "invalid_url",
        ),
        (
            js("", "return { get href() { throw new Error('href'); } };", &[]),
            JsValue::UNDEFINED,
            "invalid_url",
        ),
        ("http://[::1".into(), JsValue::UNDEFINED, "invalid_url"),
        (
            echo.as_str().into(),
            js("", "return { get headers() { throw new Error('init'); } };", &[]),
            "invalid_argument",
        ),
        (
            echo.as_str().into(),
            obj(&[("method", "GET".into()), ("body", "x".into())]),
            "invalid_argument",
        ),
        (
            echo.as_str().into(),
            obj(&[("headers", obj(&[("bad header", "v".into())]))]),
            "invalid_argument",
        ),
        (
            web_sys::Request::new_with_str(&echo).unwrap().into(),
            obj(&[("method", "GET".into()), ("body", "x".into())]),
            "invalid_argument",
        ),
    ];
    for (input, init, want) in cases {
        let got = settle(a.fetch(input, init), 15_000).await;
        assert_eq!(got.map_err(|e| code(&e)).err().as_deref(), Some(want));
    }
    assert_eq!(stat(&email, "echo_requests").await, before, "no request left the page");
    let r = settle(a.fetch(echo.as_str().into(), JsValue::UNDEFINED), 15_000)
        .await
        .expect("fetched");
    assert_eq!(r.unchecked_ref::<web_sys::Response>().status(), 200);
}
