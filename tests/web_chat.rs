//! Browser tests of `ChatSocket` in headless Chromium against the dev server's chat WebSockets.
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
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn chat(auth: Option<&AuthSession>, path: &str, session_id: &str, extra: &[(&str, JsValue)]) -> ChatSocket {
    try_chat(auth, path, session_id, extra).unwrap()
}

fn try_chat(
    auth: Option<&AuthSession>,
    path: &str,
    session_id: &str,
    extra: &[(&str, JsValue)],
) -> Result<ChatSocket, JsValue> {
    let mut pairs = vec![
        ("url", JsValue::from_str(&ws_url(path))),
        ("sessionId", JsValue::from_str(session_id)),
    ];
    if let Some(a) = auth {
        // The JS object of the AuthSession, as an app would pass it.
        pairs.push(("auth", auth_object(a)));
    }
    pairs.extend(extra.iter().cloned());
    ChatSocket::new(obj(&pairs))
}

/// The AuthSession as JS sees it: an object whose hidden id getter names it.
fn auth_object(a: &AuthSession) -> JsValue {
    let o = Object::new();
    let id = a.authwire_id();
    Reflect::set(&o, &"__authwireId".into(), &id.into()).unwrap();
    o.into()
}

fn status(c: &ChatSocket) -> String {
    get(&c.get_snapshot(), "status").as_string().unwrap()
}

fn received(c: &ChatSocket) -> Rc<RefCell<Vec<JsValue>>> {
    collect(|f| {
        c.on_message(f).unwrap();
    })
}

/// Every status the socket reports, in order, as its subscribers see them (no polling: a short
/// state such as `reconnecting` cannot slip between two samples).
fn statuses(c: &Rc<ChatSocket>) -> Rc<RefCell<Vec<String>>> {
    let log = Rc::new(RefCell::new(vec![status(c)]));
    let (l, weak) = (log.clone(), Rc::downgrade(c));
    let f = Closure::<dyn FnMut()>::new(move || {
        if let Some(c) = weak.upgrade() {
            let s = status(&c);
            if l.borrow().last() != Some(&s) {
                l.borrow_mut().push(s);
            }
        }
    });
    c.subscribe(f.as_ref().unchecked_ref()).unwrap();
    f.forget(); // test-only: lives as long as the test page
    log
}

fn replies(log: &Rc<RefCell<Vec<JsValue>>>) -> usize {
    log.borrow().iter().filter(|m| get(m, "type") == "ai_response").count()
}

async fn signed_in(tag: &str, ttl: u32) -> (String, AuthSession) {
    let email = unique(tag);
    let s = sign_in(&email, ttl).await;
    (email, auth(&s))
}

#[wasm_bindgen_test]
async fn a_stream_across_several_refreshes_never_carries_a_stale_token() {
    let (_, a) = signed_in("stream", 3).await;
    let sid = unique("s-stream");
    let c = chat(Some(&a), "/ws/chat", &sid, &[]);
    let log = received(&c);
    let sent: Vec<String> = (0..160).map(|i| format!("m{i}")).collect();
    for m in &sent {
        c.send(JsValue::from_str(m)).unwrap();
        sleep(50).await; // 8 s of chat: about five refreshes of 3-second tokens
    }
    eventually("every message accepted", 30_000, || async {
        chat_stat(&sid, "accepted").await == 160
    })
    .await;
    assert_eq!(chat_messages(&sid).await, sent, "once each, in order");
    assert!(get(&a.get_snapshot(), "refreshCount").as_f64().unwrap() >= 4.0);
    let stats = chat_stats(&sid).await;
    for counter in ["stale_tokens", "missing_tokens", "bad_tokens", "duplicates"] {
        assert_eq!(get(&stats, counter), 0, "{counter}");
    }
    wait_for("all replies", 15_000, || replies(&log) == 160).await;
    assert_eq!(get(&c.get_snapshot(), "sent"), 160);
}

#[wasm_bindgen_test]
async fn a_dropped_connection_loses_nothing_in_ack_mode() {
    let (_, a) = signed_in("drop", 60).await;
    let sid = unique("s-drop");
    chat_control(&sid, &[("drop_after_frames", 15.into())]).await;
    let c = chat(
        Some(&a),
        "/ws/chat",
        &sid,
        &[("ack", true.into()), ("reconnect", obj(&[("minDelayMs", 100.into())]))],
    );
    let sent: Vec<String> = (0..50).map(|i| format!("d{i}")).collect();
    for m in &sent {
        c.send(JsValue::from_str(m)).unwrap(); // queued while connecting, then a burst
    }
    eventually("every message accepted", 20_000, || async {
        chat_stat(&sid, "accepted").await == 50
    })
    .await;
    wait_for("every ack", 15_000, || get(&c.get_snapshot(), "acked") == 50).await;
    assert_eq!(chat_messages(&sid).await, sent, "every message once, in order");
    let snap = c.get_snapshot();
    assert_eq!(get(&snap, "reconnects"), 1);
    assert_eq!((get(&snap, "queued"), get(&snap, "unacked")), (0.into(), 0.into()));
    assert_eq!(chat_stat(&sid, "forced_drops").await, 1);
    assert_eq!(chat_stat(&sid, "connections").await, 2);
}

#[wasm_bindgen_test]
async fn messages_sent_while_disconnected_wait_and_go_out_in_order() {
    let (_, a) = signed_in("offline", 60).await;
    let sid = unique("s-offline");
    let c = Rc::new(chat(
        Some(&a),
        "/ws/chat",
        &sid,
        &[("reconnect", obj(&[("minDelayMs", 400.into())]))],
    ));
    wait_for("open", 10_000, || status(&c) == "open").await;
    c.send("before".into()).unwrap();
    eventually("the first message", 10_000, || async {
        chat_stat(&sid, "accepted").await == 1
    })
    .await;
    let seen = statuses(&c);
    // The app sends the moment it is told the connection is gone (however short the
    // reconnect delay, and however late a poll would look).
    let queued_then: Rc<RefCell<Option<JsValue>>> = Rc::new(RefCell::new(None));
    let (q, weak) = (queued_then.clone(), Rc::downgrade(&c));
    let on_change = Closure::<dyn FnMut()>::new(move || {
        let Some(c) = weak.upgrade() else { return };
        if status(&c) == "reconnecting" && q.borrow().is_none() {
            for m in ["q1", "q2", "q3"] {
                c.send(m.into()).unwrap();
            }
            *q.borrow_mut() = Some(get(&c.get_snapshot(), "queued"));
        }
    });
    c.subscribe(on_change.as_ref().unchecked_ref()).unwrap();
    chat_control(&sid, &[("drop_after_frames", 0.into())]).await;
    c.send("trigger".into()).unwrap(); // the server drops the connection on this one (no ack mode: lost)
    wait_for("the sends while reconnecting", 15_000, || {
        queued_then.borrow().is_some()
    })
    .await;
    assert_eq!(
        queued_then.borrow().clone().unwrap(),
        3,
        "sent while disconnected: they wait in the queue"
    );
    eventually("the queued messages", 20_000, || async {
        chat_stat(&sid, "accepted").await == 4
    })
    .await;
    assert_eq!(chat_messages(&sid).await, ["before", "q1", "q2", "q3"]);
    wait_for("open again", 10_000, || status(&c) == "open").await;
    let seen = seen.borrow().clone();
    let at = seen.iter().position(|s| s == "reconnecting");
    assert!(
        at.is_some_and(|i| seen[i..].iter().any(|s| s == "open")),
        "reconnecting, then open again: {seen:?}"
    );
    let snap = c.get_snapshot();
    assert!(
        Object::is(&snap, &c.get_snapshot()),
        "the same snapshot until something changes"
    );
    assert!(Object::is_frozen::<JsValue>(snap.unchecked_ref()));
    assert_eq!((get(&snap, "queued"), get(&snap, "reconnects")), (0.into(), 1.into()));
    drop(on_change);
}

#[wasm_bindgen_test]
async fn a_rejected_token_is_refreshed_and_the_message_resent() {
    let (email, a) = signed_in("reject", 60).await;
    let sid = unique("s-reject");
    let c = chat(Some(&a), "/ws/chat", &sid, &[("ack", true.into())]);
    c.send("one".into()).unwrap();
    eventually("the first message", 10_000, || async {
        chat_stat(&sid, "accepted").await == 1
    })
    .await;
    chat_control(&sid, &[("reject_next_token", true.into())]).await;
    c.send("two".into()).unwrap();
    c.send("three".into()).unwrap();
    eventually("the re-sent messages", 20_000, || async {
        chat_stat(&sid, "accepted").await == 3
    })
    .await;
    assert_eq!(chat_messages(&sid).await, ["one", "two", "three"]);
    assert_eq!(chat_stat(&sid, "forced_rejections").await, 1);
    assert_eq!(stat(&email, "refresh_ok").await, 1, "one forced refresh");
    assert_eq!(get(&a.get_snapshot(), "refreshCount"), 1);
    assert_eq!(status(&c), "open");
}

#[wasm_bindgen_test]
async fn without_acks_the_frame_the_rejection_names_is_resent() {
    let (_, a) = signed_in("named", 60).await;
    let sid = unique("s-named");
    let c = chat(Some(&a), "/ws/chat", &sid, &[]);
    let msg = |p: &str, id: &str| obj(&[("prompt", p.into()), ("message_id", id.into())]);
    c.send(msg("first", "u-1")).unwrap();
    eventually("the first message", 10_000, || async {
        chat_stat(&sid, "accepted").await == 1
    })
    .await;
    chat_control(&sid, &[("reject_next_token", true.into())]).await;
    c.send(msg("second", "u-2")).unwrap();
    eventually("the named frame re-sent", 20_000, || async {
        chat_stat(&sid, "accepted").await == 2
    })
    .await;
    assert_eq!(chat_messages(&sid).await, ["first", "second"]);
}

#[wasm_bindgen_test]
async fn the_callers_object_is_copied_never_mutated() {
    let (_, a) = signed_in("copy", 60).await;
    let sid = unique("s-copy");
    let c = chat(Some(&a), "/ws/chat", &sid, &[]);
    let message = obj(&[("prompt", "hello".into()), ("model", "small".into())]);
    c.send(message.clone()).unwrap(); // queued (still connecting): copied
    Reflect::set(&message, &"prompt".into(), &"changed later".into()).unwrap();
    let log = received(&c);
    wait_for("the reply", 10_000, || replies(&log) == 1).await;
    assert_eq!(chat_messages(&sid).await, ["hello"]);
    let keys: Vec<String> = Object::keys::<JsValue>(message.unchecked_ref())
        .iter()
        .map(|k| k.as_string().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["prompt", "model"],
        "no session_id or auth_token added to the caller's object"
    );
    let reply = log.borrow()[0].clone();
    assert_eq!(get(&reply, "message"), "echo: hello");
    assert_eq!(get(&reply, "session_id"), JsValue::from_str(&sid));
}

#[wasm_bindgen_test]
async fn frames_that_are_not_json_reach_the_app_as_text() {
    let (_, a) = signed_in("raw", 60).await;
    let sid = unique("s-raw");
    let c = chat(Some(&a), "/ws/chat", &sid, &[]);
    let log = received(&c);
    c.send("say-raw".into()).unwrap();
    wait_for("the raw frame and the reply", 10_000, || log.borrow().len() >= 2).await;
    assert_eq!(log.borrow().len(), 2);
    assert_eq!(log.borrow()[0], "plain text, not JSON");
    assert_eq!(get(&log.borrow()[1], "type"), "ai_response");
    assert_eq!(status(&c), "open");
}

#[cfg(feature = "full")]
#[wasm_bindgen_test]
async fn the_handshake_works_with_each_auth_type() {
    let (_, a) = signed_in("handshake", 60).await;
    let cases: Vec<(&str, JsValue)> = vec![
        ("bearer_token", obj(&[("auth_type", "bearer_token".into())])),
        (
            "basic_auth",
            obj(&[
                ("auth_type", "basic_auth".into()),
                ("username", "agent".into()),
                ("password", "authwire-basic".into()),
            ]),
        ),
        (
            "api_key",
            obj(&[
                ("auth_type", "api_key".into()),
                ("api_key", "ak-authwire-demo".into()),
                ("api_key_header", "X-API-Key".into()),
            ]),
        ),
        (
            "oauth2",
            obj(&[
                ("auth_type", "oauth2".into()),
                ("client_id", "authwire-client".into()),
                ("client_secret", "authwire-secret".into()),
                ("token_url", "https://auth.example.com/oauth/token".into()),
                ("scope", "chat".into()),
            ]),
        ),
        (
            "custom",
            obj(&[
                ("auth_type", "custom".into()),
                ("custom_headers", obj(&[("X-Custom-Auth", "authwire-custom".into())])),
            ]),
        ),
        // autolangchat's name for it today: the server calls token_url with the client's credentials.
        (
            "oauth2_client_credentials",
            obj(&[
                ("auth_type", "oauth2_client_credentials".into()),
                ("client_id", "authwire-client".into()),
                ("client_secret", "authwire-secret".into()),
                ("token_url", "https://auth.example.com/oauth/token".into()),
                ("scope", "chat".into()),
            ]),
        ),
        (
            "sso",
            obj(&[
                ("auth_type", "sso".into()),
                ("session_token", "sso-authwire-demo".into()),
            ]),
        ),
    ];
    for (name, handshake) in cases {
        let sid = unique(&format!("s-hs-{name}"));
        let auth = (name == "bearer_token").then_some(&a);
        let c = chat(
            auth,
            "/bedrock-chat/ws",
            &sid,
            &[("protocol", "auth-handshake".into()), ("handshake", handshake)],
        );
        let log = received(&c);
        c.send(format!("hello {name}").into()).unwrap();
        wait_for(&format!("the {name} reply"), 10_000, || replies(&log) == 1).await;
        let kinds: Vec<String> = log.borrow().iter().filter_map(|m| get(m, "type").as_string()).collect();
        assert_eq!(
            kinds,
            ["connection_established", "auth_configured", "typing", "ai_response"],
            "{name}: the server's order"
        );
        assert!(
            get(&log.borrow()[1], "display_name").is_string(),
            "{name}: a verifying server names the user"
        );
        assert_eq!(chat_messages(&sid).await, [format!("hello {name}")]);
        assert_eq!(chat_stat(&sid, "auths_ok").await, 1, "{name}");
    }
}

#[wasm_bindgen_test]
async fn the_handshake_is_resent_after_every_refresh() {
    let (email, a) = signed_in("reauth", 3).await;
    let sid = unique("s-reauth");
    let c = chat(
        Some(&a),
        "/bedrock-chat/ws",
        &sid,
        &[("protocol", "auth-handshake".into())],
    );
    let sent: Vec<String> = (0..70).map(|i| format!("h{i}")).collect();
    for m in &sent {
        c.send(JsValue::from_str(m)).unwrap();
        sleep(100).await; // 7 s: several 3-second tokens
    }
    eventually("every message", 20_000, || async {
        chat_stat(&sid, "accepted").await == 70
    })
    .await;
    assert_eq!(chat_messages(&sid).await, sent);
    assert_eq!(chat_stat(&sid, "stale_tokens").await, 0);
    // Counts are compared at a quiet moment: the next token lives a minute, so once the session
    // holds it no refresh (and no auth frame) is on its way.
    control(&email, &[("ttl_seconds", 60.into())]).await;
    wait_for("a long-lived token", 15_000, || {
        get(&a.get_snapshot(), "expiresAt").as_f64().unwrap_or(0.0) > js_sys::Date::now() + 20_000.0
    })
    .await;
    let refreshes = get(&a.get_snapshot(), "refreshCount").as_f64().unwrap() as u32;
    assert!(refreshes >= 3, "several refreshes: {refreshes}");
    eventually("one auth frame per token", 10_000, || async {
        chat_stat(&sid, "auths_ok").await == refreshes + 1
    })
    .await;
    assert_eq!(
        get(&a.get_snapshot(), "refreshCount"),
        refreshes,
        "no refresh while counting"
    );
    assert_eq!(chat_stat(&sid, "connections").await, 1, "re-authenticated in place");
}

#[cfg(feature = "full")]
#[wasm_bindgen_test]
async fn wrong_handshake_credentials_end_in_auth_failed_not_a_loop() {
    let sid = unique("s-wrong");
    let c = chat(
        None,
        "/bedrock-chat/ws",
        &sid,
        &[
            ("protocol", "auth-handshake".into()),
            (
                "handshake",
                obj(&[("auth_type", "api_key".into()), ("api_key", "wrong".into())]),
            ),
            (
                "reconnect",
                obj(&[("minDelayMs", 50.into()), ("maxDelayMs", 100.into())]),
            ),
        ],
    );
    let events = collect(|f| {
        c.on_event(f).unwrap();
    });
    wait_for("closed", 20_000, || status(&c) == "closed").await;
    assert_eq!(get(&c.get_snapshot(), "lastError"), "auth_failed");
    assert_eq!(types(&events), ["auth_failed"]);
    assert_eq!(get(&get(&events.borrow()[0], "frame"), "type"), "auth_failed");
    sleep(1_500).await; // several times the reconnect delay
    assert_eq!(
        chat_stat(&sid, "auths_failed").await,
        1,
        "credentials the SDK does not own are tried once"
    );
}

fn handshake_opts(extra: &[(&'static str, JsValue)]) -> Vec<(&'static str, JsValue)> {
    let mut v = vec![("protocol", JsValue::from_str("auth-handshake"))];
    v.extend(extra.iter().cloned());
    v
}

#[cfg(feature = "full")]
#[wasm_bindgen_test]
async fn auth_expired_is_an_event_with_the_redirect_and_no_retry() {
    let sid = unique("s-sso");
    let c = chat(
        None,
        "/bedrock-chat/ws",
        &sid,
        &handshake_opts(&[(
            "handshake",
            obj(&[
                ("auth_type", "sso".into()),
                ("session_token", "sso-authwire-demo".into()),
            ]),
        )]),
    );
    let log = received(&c);
    let events = collect(|f| {
        c.on_event(f).unwrap();
    });
    c.send("before".into()).unwrap();
    wait_for("the reply", 10_000, || replies(&log) == 1).await;
    chat_control(&sid, &[("expire_sso", true.into())]).await;
    c.send("after".into()).unwrap();
    wait_for("closed", 10_000, || status(&c) == "closed").await;
    assert_eq!(get(&c.get_snapshot(), "lastError"), "auth_expired");
    assert_eq!(types(&events), ["auth_expired"]);
    assert_eq!(
        get(&get(&events.borrow()[0], "frame"), "redirect_url"),
        "/bedrock-chat/auth/sso/login"
    );
    sleep(1_500).await;
    assert_eq!(chat_stat(&sid, "auths_expired").await, 1);
    assert_eq!(chat_stat(&sid, "auths_ok").await, 1, "no re-auth loop");
    assert_eq!(chat_messages(&sid).await, ["before"]);
}

#[wasm_bindgen_test]
async fn logout_and_sign_out_send_logout_before_closing() {
    let (_, a) = signed_in("logout", 60).await;
    for via_sign_out in [false, true] {
        let sid = unique("s-logout");
        let c = chat(
            Some(&a),
            "/bedrock-chat/ws",
            &sid,
            &handshake_opts(&[("sessionIdFrom", JsValue::TRUE)]),
        );
        let events = collect(|f| {
            c.on_event(f).unwrap();
        });
        wait_for("open", 10_000, || status(&c) == "open").await;
        let server_sid = get(&c.get_snapshot(), "sessionId").as_string().unwrap();
        assert!(
            server_sid.starts_with("bc-"),
            "adopted from connection_established: {server_sid}"
        );
        if via_sign_out {
            wasm_bindgen_futures::JsFuture::from(a.sign_out()).await.unwrap();
            assert_eq!(get(&c.get_snapshot(), "lastError"), "signed_out");
        } else {
            c.logout();
            assert_eq!(get(&c.get_snapshot(), "lastError"), JsValue::NULL);
        }
        assert_eq!(status(&c), "closed");
        assert_eq!(types(&events), ["session_id", "logged_out"]);
        eventually("the server's logout", 10_000, || async {
            chat_stat(&server_sid, "logouts").await == 1
        })
        .await;
    }
}

#[wasm_bindgen_test]
async fn a_reconnect_resumes_the_servers_session() {
    let (_, a) = signed_in("resume", 60).await;
    let c = chat(
        Some(&a),
        "/bedrock-chat/ws",
        "",
        &handshake_opts(&[
            ("sessionIdFrom", JsValue::TRUE),
            ("resumeSession", JsValue::TRUE),
            (
                "reconnect",
                obj(&[("minDelayMs", 100.into()), ("maxDelayMs", 300.into())]),
            ),
        ]),
    );
    wait_for("open", 10_000, || status(&c) == "open").await;
    let server_sid = get(&c.get_snapshot(), "sessionId").as_string().unwrap();
    chat_control(&server_sid, &[("drop_after_frames", 2.into())]).await;
    let log = received(&c);
    for i in 0..4 {
        c.send(format!("r{i}").into()).unwrap();
        sleep(300).await;
    }
    wait_for("replies after the drop", 15_000, || replies(&log) >= 3).await;
    assert!(get(&c.get_snapshot(), "reconnects").as_f64().unwrap() >= 1.0);
    assert_eq!(
        get(&c.get_snapshot(), "sessionId"),
        server_sid.as_str(),
        "the same session"
    );
    let stats = chat_stats(&server_sid).await;
    assert!(
        get(&stats, "resumed").as_f64().unwrap() >= 1.0,
        "reconnected with ?session_id="
    );
    assert_eq!(
        get(&stats, "established").as_f64().unwrap(),
        get(&stats, "resumed").as_f64().unwrap() + 1.0,
        "one new session, then only resumes"
    );
}

#[wasm_bindgen_test]
async fn a_url_token_is_fresh_on_every_reconnect_across_refreshes() {
    let (_, a) = signed_in("url-token", 3).await;
    let sid = unique("s-agent");
    let tag = unique("agent");
    chat_control(&sid, &[("drop_probability", 0.08.into()), ("fault_seed", 13.into())]).await;
    let c = chat(
        Some(&a),
        &format!("/agent/ws/chat?tag={tag}"),
        &sid,
        &[
            ("connectToken", obj(&[("query", "token".into())])),
            ("ack", true.into()),
            (
                "reconnect",
                obj(&[("minDelayMs", 100.into()), ("maxDelayMs", 300.into())]),
            ),
        ],
    );
    let sent: Vec<String> = (0..100).map(|i| format!("u{i}")).collect();
    for m in &sent {
        c.send(JsValue::from_str(m)).unwrap();
        sleep(100).await; // 10 s: several 3-second tokens, a drop every dozen frames or so
    }
    eventually("every message", 30_000, || async {
        chat_stat(&sid, "accepted").await == 100
    })
    .await;
    assert_eq!(chat_messages(&sid).await, sent, "once each, in order");
    let by_url = chat_stats(&tag).await;
    assert_eq!(
        get(&by_url, "url_refused_stale"),
        0,
        "no connection refused for a stale URL token"
    );
    assert_eq!(get(&by_url, "url_refused_bad"), 0);
    assert!(
        get(&by_url, "url_connects").as_f64().unwrap() >= 3.0,
        "reconnected several times"
    );
    assert!(
        get(&by_url, "pongs").as_f64().unwrap() >= 1.0,
        "the server's pings answered"
    );
    let stats = chat_stats(&sid).await;
    for counter in ["stale_tokens", "missing_tokens", "bad_tokens", "duplicates"] {
        assert_eq!(get(&stats, counter), 0, "{counter}");
    }
    assert!(get(&a.get_snapshot(), "refreshCount").as_f64().unwrap() >= 2.0);
}

#[wasm_bindgen_test]
async fn a_subprotocol_token_is_fresh_on_every_reconnect_and_stays_out_of_urls() {
    let (_, a) = signed_in("proto-token", 3).await;
    let sid = unique("s-proto");
    let tag = unique("agent-proto");
    chat_control(&sid, &[("drop_probability", 0.1.into()), ("fault_seed", 5.into())]).await;
    let c = chat(
        Some(&a),
        &format!("/agent/ws/chat?tag={tag}"),
        &sid,
        &[
            ("connectToken", obj(&[("protocol", "bearer".into())])),
            ("ack", true.into()),
            (
                "reconnect",
                obj(&[("minDelayMs", 100.into()), ("maxDelayMs", 300.into())]),
            ),
        ],
    );
    let sent: Vec<String> = (0..50).map(|i| format!("p{i}")).collect();
    for m in &sent {
        c.send(JsValue::from_str(m)).unwrap();
        sleep(100).await; // 5 s: past a 3-second token
    }
    eventually("every message", 30_000, || async {
        chat_stat(&sid, "accepted").await == 50
    })
    .await;
    assert_eq!(chat_messages(&sid).await, sent);
    let by_tag = chat_stats(&tag).await;
    assert_eq!(get(&by_tag, "url_refused_stale"), 0);
    assert_eq!(get(&by_tag, "url_refused_bad"), 0);
    let connects = get(&by_tag, "url_connects").as_f64().unwrap();
    assert!(connects >= 2.0, "reconnected: {connects}");
    assert_eq!(
        get(&by_tag, "header_tokens").as_f64().unwrap(),
        connects,
        "every token in the header"
    );
    assert_eq!(chat_stat(&sid, "stale_tokens").await, 0);
}

#[wasm_bindgen_test]
async fn the_agent_session_id_is_adopted_or_set_by_the_app() {
    let (_, a) = signed_in("agent-sid", 60).await;
    let tag = unique("agent");
    let c = chat(
        Some(&a),
        &format!("/agent/ws/chat?tag={tag}"),
        "",
        &[
            ("connectToken", obj(&[("query", "token".into())])),
            ("sessionIdFrom", JsValue::TRUE),
        ],
    );
    let events = collect(|f| {
        c.on_event(f).unwrap();
    });
    let log = received(&c);
    wait_for("session_created", 10_000, || {
        get(&c.get_snapshot(), "sessionId")
            .as_string()
            .is_some_and(|s| s.starts_with("ag-"))
    })
    .await;
    let server_sid = get(&c.get_snapshot(), "sessionId").as_string().unwrap();
    assert_eq!(types(&events), ["session_id"]);
    c.send("hi".into()).unwrap();
    wait_for("the reply", 10_000, || replies(&log) == 1).await;
    assert_eq!(chat_messages(&server_sid).await, ["hi"]);
    assert!(log.borrow().iter().any(|m| get(m, "type") == "session_init"));
    let mine = unique("s-mine");
    c.set_session_id(JsValue::from_str(&mine)).unwrap();
    c.send("mine".into()).unwrap();
    eventually("under the app's id", 10_000, || async {
        chat_messages(&mine).await == ["mine"]
    })
    .await;
    assert!(chat_stat(&tag, "pongs").await >= 1);
    assert!(c.set_session_id(JsValue::from_f64(1.0)).is_err());
}

#[wasm_bindgen_test]
async fn a_bad_url_token_is_refused_at_the_upgrade_with_4001() {
    // Without connectToken the SDK never puts the token in the URL: the server refuses (4001),
    // which reads as a rejection: a few refreshes, then auth_rejected, not a loop.
    let (_, a) = signed_in("agent-bad", 60).await;
    let tag = unique("agent-bad");
    let c = chat(Some(&a), &format!("/agent/ws/chat?tag={tag}"), "s", &[]);
    wait_for("closed", 20_000, || status(&c) == "closed").await;
    assert_eq!(get(&c.get_snapshot(), "lastError"), "auth_rejected");
    assert_eq!(
        chat_stat(&tag, "url_refused_bad").await,
        4,
        "the first try and three more"
    );
    assert_eq!(chat_stat(&tag, "url_connects").await, 0);
}

#[wasm_bindgen_test]
async fn sign_out_closes_the_socket_for_good() {
    let (_, a) = signed_in("chat-out", 60).await;
    let sid = unique("s-out");
    let c = chat(Some(&a), "/ws/chat", &sid, &[]);
    wait_for("open", 10_000, || status(&c) == "open").await;
    wasm_bindgen_futures::JsFuture::from(a.sign_out()).await.unwrap();
    assert_eq!(status(&c), "closed");
    assert_eq!(get(&c.get_snapshot(), "lastError"), "signed_out");
    let e = c.send("after".into()).unwrap_err();
    assert_eq!(get(&e, "code"), "socket_closed");
}

#[wasm_bindgen_test]
async fn the_heartbeat_pings_the_server() {
    let (_, a) = signed_in("ping", 60).await;
    let sid = unique("s-ping");
    // A generous period: a connection is replaced after two silent periods, and a loaded machine
    // can hold a pong back for a few hundred milliseconds.
    let c = chat(Some(&a), "/ws/chat", &sid, &[("heartbeatMs", 1_000.into())]);
    eventually("three pings", 20_000, || async { chat_stat(&sid, "pings").await >= 3 }).await;
    assert_eq!(status(&c), "open", "pongs keep it alive");
    assert_eq!(chat_stat(&sid, "connections").await, 1);
}

fn code(r: Result<impl Sized, JsValue>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => get(&e, "code").as_string().unwrap(),
    }
}

#[cfg(feature = "full")]
#[wasm_bindgen_test]
async fn bad_input_gets_coded_errors() {
    let (_, a) = signed_in("chat-bad", 60).await;
    let ao = auth_object(&a);
    let with = |pairs: &[(&str, JsValue)]| {
        let mut v = vec![("auth", ao.clone())];
        v.extend(pairs.iter().cloned());
        ChatSocket::new(obj(&v))
    };
    assert_eq!(code(with(&[("url", "not a url".into())])), "invalid_url");
    assert_eq!(code(with(&[("url", "https://example.com/ws".into())])), "invalid_url");
    assert_eq!(
        code(with(&[("url", "ws://chat.example.com/ws".into())])),
        "insecure_url"
    );
    assert_eq!(
        code(ChatSocket::new(obj(&[("url", ws_url("/ws/chat").into())]))),
        "invalid_options"
    );
    assert_eq!(
        code(with(&[("url", ws_url("/ws/chat").into()), ("protocol", "sse".into())])),
        "invalid_options"
    );
    assert_eq!(
        code(with(&[
            ("url", ws_url("/bedrock-chat/ws").into()),
            ("protocol", "auth-handshake".into()),
            ("handshake", obj(&[("auth_type", "basic_auth".into())]))
        ])),
        "invalid_options"
    );
    let sid = unique("s-bad");
    let c = chat(Some(&a), "/ws/chat", &sid, &[("maxQueued", 2.into())]);
    for bad in [
        JsValue::from(5),
        js_sys::Array::new().into(),
        js_sys::Date::new_0().into(),
        JsValue::NULL,
    ] {
        assert_eq!(code(c.send(bad)), "invalid_message");
    }
    c.send("a".into()).unwrap();
    c.send("b".into()).unwrap();
    assert_eq!(code(c.send("c".into())), "queue_full", "nothing is dropped silently");
    c.close();
    assert_eq!(status(&c), "closed");
    assert_eq!(code(c.send("d".into())), "socket_closed");
    drop(a);
    assert_eq!(code(try_chat(None, "/ws/chat", &sid, &[("auth", ao)])), "freed");
}

/// Option values are checked in the core (`core::options`), read once through `web::options::JsObj`.
#[cfg(feature = "full")]
#[wasm_bindgen_test]
async fn option_values_are_bounded_and_getters_that_throw_are_named() {
    let (_, a) = signed_in("chat-opts", 60).await;
    let ao = auth_object(&a);
    let refused = |pairs: &[(&str, JsValue)]| {
        let mut v = vec![("url", JsValue::from_str(&ws_url("/ws/chat"))), ("auth", ao.clone())];
        v.extend(pairs.iter().cloned());
        let e = ChatSocket::new(obj(&v)).err().expect("refused");
        (
            get(&e, "code").as_string().unwrap(),
            get(&e, "message").as_string().unwrap(),
        )
    };
    let cases: Vec<(&str, JsValue, &str)> = vec![
        (
            "reconnect",
            obj(&[("minDelayMs", f64::NAN.into())]),
            "options.reconnect.minDelayMs",
        ),
        (
            "reconnect",
            obj(&[("minDelayMs", 8.6e9.into())]),
            "options.reconnect.minDelayMs",
        ),
        (
            "reconnect",
            obj(&[("maxRetries", (-1).into())]),
            "options.reconnect.maxRetries",
        ),
        ("heartbeatMs", f64::INFINITY.into(), "options.heartbeatMs"),
        ("heartbeatMs", "5000".into(), "options.heartbeatMs"),
        ("maxQueued", 1e300.into(), "options.maxQueued"),
        ("connectTimeoutMs", (-1).into(), "options.connectTimeoutMs"),
    ];
    for (key, value, field) in cases {
        let (code, message) = refused(&[(key, value)]);
        assert_eq!(code, "invalid_options", "{message}");
        assert!(message.contains(&format!("{field} must be")), "{message}");
    }
    let getters = |body: &str| Function::new_no_args(body).call0(&JsValue::UNDEFINED).unwrap();
    let o = getters("return { get marginSeconds() { throw new Error('boom'); } }");
    let e = AuthSession::new(o).err().expect("refused");
    assert_eq!(get(&e, "code"), "invalid_options");
    assert!(get(&e, "message")
        .as_string()
        .unwrap()
        .contains("options.marginSeconds could not be read"));
    let o = getters("return { reconnect: { get factor() { throw new Error('boom'); } } }");
    Reflect::set(&o, &"url".into(), &ws_url("/ws/chat").into()).unwrap();
    Reflect::set(&o, &"auth".into(), &ao).unwrap();
    let e = ChatSocket::new(o).err().expect("refused");
    assert!(get(&e, "message")
        .as_string()
        .unwrap()
        .contains("options.reconnect.factor"));
    // A secret in the wrong field is never echoed.
    let refresh = obj(&[
        ("kind", "supabase".into()),
        ("url", server().into()),
        ("apiKey", "sk-SECRET-1".into()),
    ]);
    let e = AuthSession::new(obj(&[("refresh", refresh), ("storage", "sk-SECRET-1".into())]))
        .err()
        .expect("refused");
    let message = get(&e, "message").as_string().unwrap();
    assert!(
        message.contains("options.storage") && !message.contains("SECRET"),
        "{message}"
    );
    // In range: accepted (Infinity retries is unlimited).
    let sid = unique("s-opts");
    let c = chat(
        Some(&a),
        "/ws/chat",
        &sid,
        &[
            ("heartbeatMs", 600_000.into()),
            (
                "reconnect",
                obj(&[("minDelayMs", 3_600_000.into()), ("maxRetries", f64::INFINITY.into())]),
            ),
        ],
    );
    c.close();
}

#[wasm_bindgen_test]
async fn free_leaves_no_listener_timer_or_connection() {
    let (_, a) = signed_in("chat-free", 60).await;
    let sid = unique("s-free");
    chat_control(&sid, &[("drop_after_frames", 1.into())]).await;
    // Reconnect after 1.5-3 s (equal jitter on 3 s): a window no poll can miss.
    let c = chat(
        Some(&a),
        "/ws/chat",
        &sid,
        &[
            ("heartbeatMs", 1_000.into()),
            (
                "reconnect",
                obj(&[("minDelayMs", 3_000.into()), ("maxDelayMs", 3_000.into())]),
            ),
        ],
    );
    let calls = Rc::new(RefCell::new(0));
    let k = calls.clone();
    let f = Closure::<dyn FnMut(JsValue)>::new(move |_| *k.borrow_mut() += 1);
    let fun: &Function = f.as_ref().unchecked_ref();
    c.on_message(fun).unwrap();
    c.subscribe(fun).unwrap();
    c.send("one".into()).unwrap();
    c.send("two".into()).unwrap(); // the server drops the connection here
    wait_for("reconnecting", 10_000, || status(&c) == "reconnecting").await;
    drop(c); // free() while a reconnect is pending
    let before = *calls.borrow();
    let window = web_sys::window().unwrap();
    window.dispatch_event(&web_sys::Event::new("online").unwrap()).unwrap();
    sleep(4_000).await; // past the pending reconnect (at most 3 s) and several heartbeat periods
    assert_eq!(*calls.borrow(), before, "no listener called after free");
    assert_eq!(chat_stat(&sid, "connections").await, 1, "no reconnect after free");
    drop(f);
}
