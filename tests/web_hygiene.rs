//! Secret hygiene: with `debug: true`, through refreshes, failures, rejections and bad input, no
//! access or refresh token appears in console output, thrown errors, events or snapshots.
#![cfg(target_arch = "wasm32")]

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use authwire::{AuthSession, ChatSocket};
use common::*;
use js_sys::{Array, Function, Object, Reflect, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Wraps console.* to record what is printed, and fetch to record every token the server hands out.
fn install_recorders() -> (Array, Array) {
    let printed = Array::new();
    let issued = Array::new();
    let install = Function::new_with_args(
        "printed, issued",
        r#"
        for (const level of ["log", "debug", "info", "warn", "error"]) {
          const original = console[level].bind(console);
          console[level] = (...args) => {
            printed.push(args.map((a) => { try { return typeof a === "string" ? a : (a instanceof Error ? a.message + " " + a.stack : JSON.stringify(a)); } catch { return String(a); } }).join(" "));
            original(...args);
          };
        }
        const realFetch = window.fetch.bind(window);
        window.fetch = async (...args) => {
          const res = await realFetch(...args);
          try {
            const body = await res.clone().json();
            for (const k of ["access_token", "refresh_token", "token"]) if (typeof body[k] === "string") issued.push(body[k]);
          } catch {}
          return res;
        };
        "#,
    );
    install.call2(&JsValue::NULL, &printed, &issued).unwrap();
    (printed, issued)
}

fn text(v: &JsValue) -> String {
    if let Some(s) = v.as_string() {
        return s;
    }
    if let Some(e) = v.dyn_ref::<js_sys::Error>() {
        return format!(
            "{} {}",
            String::from(e.message()),
            get(v, "code").as_string().unwrap_or_default()
        );
    }
    JSON::stringify(v).map(String::from).unwrap_or_default()
}

#[wasm_bindgen_test]
async fn no_token_appears_in_console_errors_events_or_snapshots() {
    let (printed, issued) = install_recorders();
    let seen: Rc<RefCell<Vec<String>>> = Rc::new(RefCell::new(Vec::new()));
    let email = unique("hygiene");
    let s = sign_in(&email, 3).await;
    issued.push(&get(&s, "access_token"));
    issued.push(&get(&s, "refresh_token"));
    let opts = obj(&[
        ("session", s.clone()),
        ("refresh", supabase_source()),
        ("debug", true.into()),
    ]);
    let a = AuthSession::new(opts).unwrap();
    let record = |seen: &Rc<RefCell<Vec<String>>>| {
        let seen = seen.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |v: JsValue| seen.borrow_mut().push(text(&v)))
    };
    let on_event = record(&seen);
    a.on_event(on_event.as_ref().unchecked_ref()).unwrap();
    let snapshots = seen.clone();
    let a_snap = Rc::new(a);
    let a2 = a_snap.clone();
    let on_change = Closure::<dyn FnMut()>::new(move || snapshots.borrow_mut().push(text(&a2.get_snapshot())));
    a_snap.subscribe(on_change.as_ref().unchecked_ref()).unwrap();
    let a = a_snap;

    // A chat that gets a token rejected, in ack mode.
    let sid = unique("s-hygiene");
    let auth_ref = obj(&[("__authwireId", a.authwire_id().into())]);
    let chat = ChatSocket::new(obj(&[
        ("url", ws_url("/ws/chat").into()),
        ("auth", auth_ref),
        ("sessionId", sid.as_str().into()),
        ("ack", true.into()),
    ]))
    .unwrap();
    let on_message = record(&seen);
    chat.on_message(on_message.as_ref().unchecked_ref()).unwrap();
    chat.send("one".into()).unwrap();
    chat_control(&sid, &[("reject_next_token", true.into())]).await;
    chat.send("two".into()).unwrap();
    // Refreshes, then a refresh that fails with 503 and is retried.
    sleep(2_500).await;
    control(&email, &[("fail_refreshes", 1.into()), ("fail_status", 503.into())]).await;
    wait_for("the failed refresh", 15_000, || {
        seen.borrow().iter().any(|t| t.contains("REFRESH_FAILED"))
    })
    .await;
    wait_for("the retry after the failure", 15_000, || {
        let seen = seen.borrow();
        let failed = seen.iter().position(|t| t.contains("REFRESH_FAILED"));
        failed.is_some_and(|i| seen[i..].iter().any(|t| t.contains("TOKEN_REFRESHED")))
    })
    .await;
    seen.borrow_mut().push(text(&chat.get_snapshot()));

    // Bad input that carries a real token in other fields.
    let bad = Object::assign(&Object::new(), s.unchecked_ref());
    Reflect::set(&bad, &"expires_in".into(), &get(&s, "refresh_token")).unwrap();
    seen.borrow_mut().push(text(&a.set_session(bad.into()).unwrap_err()));
    seen.borrow_mut().push(text(&chat.send(JsValue::from(7)).unwrap_err()));
    // A reused refresh token: REFRESH_FAILED, SIGNED_OUT, rejected promises.
    let reuser = unique("hygiene-reuse");
    // Strict rotation for this user, so the reuse is refused whatever the server's interval.
    control(&reuser, &[("refresh_token_reuse_interval", 0.into())]).await;
    let other = sign_in(&reuser, 60).await;
    issued.push(&get(&other, "access_token"));
    issued.push(&get(&other, "refresh_token"));
    http(
        "POST",
        "/auth/v1/token?grant_type=refresh_token",
        Some(obj(&[("refresh_token", get(&other, "refresh_token"))])),
    )
    .await;
    let copy = Object::assign(&Object::new(), other.unchecked_ref());
    Reflect::set(
        &copy,
        &"expires_at".into(),
        &((js_sys::Date::now() / 1000.0).floor() - 1.0).into(),
    )
    .unwrap();
    let b = AuthSession::new(obj(&[
        ("session", copy.into()),
        ("refresh", supabase_source()),
        ("debug", true.into()),
    ]))
    .unwrap();
    let on_event_b = record(&seen);
    b.on_event(on_event_b.as_ref().unchecked_ref()).unwrap();
    let rejected = JsFuture::from(b.access_token()).await.unwrap_err();
    seen.borrow_mut().push(text(&rejected));
    seen.borrow_mut().push(text(&b.get_snapshot()));

    let tokens: Vec<String> = issued
        .iter()
        .filter_map(|t| t.as_string())
        .filter(|t| t.len() >= 8)
        .collect();
    assert!(
        tokens.len() >= 6,
        "the recorder saw the tokens handed out: {}",
        tokens.len()
    );
    let mut texts: Vec<String> = seen.borrow().clone();
    texts.extend(printed.iter().filter_map(|p| p.as_string()));
    assert!(printed.length() > 10, "debug output was produced");
    assert!(
        seen.borrow().iter().any(|t| t.contains("REFRESH_FAILED")),
        "failures were exercised"
    );
    for t in &texts {
        for token in &tokens {
            assert!(
                !t.contains(token.as_str()),
                "a token leaked into: {}",
                t.chars().take(120).collect::<String>()
            );
        }
        assert!(
            !t.contains("eyJhbGciOi"),
            "a JWT leaked into: {}",
            t.chars().take(120).collect::<String>()
        );
    }
    drop((on_event, on_change, on_message, on_event_b, chat, b));
}
