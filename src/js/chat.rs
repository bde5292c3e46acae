//! `ChatSocket`: the chat WebSocket that stamps a valid token on every frame.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use gloo_timers::callback::Timeout;
use js_sys::{Function, Object, Reflect, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::WebSocket;

use super::auth::{self, Shared as AuthShared};
use crate::core::auth_machine::{Answer, Event, EventKind};
use crate::core::error::Code;
use crate::core::options::{Build, ChatOptions};
use crate::core::protocol::{Incoming, Protocol, CODE_FIELDS, MAX_FIELD_CHARS};
use crate::core::socket_machine::{Action, Input, SocketEvent, SocketMachine, TokenPlace};
use crate::core::url::with_query;
use crate::web::options;
use crate::web::{aw_emit, code_error, error, frozen, get, listen, now_ms, DomListener};

#[wasm_bindgen(inline_js = r#"
// Lone UTF-16 surrogates escaped by JSON.stringify (\udXXX; well-formed pairs are written raw, so
// every such escape is a lone one) become U+FFFD, as the browser does for text it sends itself
// (WebSocket.send, TextEncoder): strict JSON readers refuse the escapes.
const LONE = /(?<!\\)((?:\\\\)*)\\ud[89a-f][0-9a-f]{2}/g;
function aw_text(f) {
  const t = JSON.stringify(f);
  return t.includes("\\ud") ? t.replace(LONE, (_, even) => even + "\ufffd") : t;
}
// A message as the data it stands for, taken now: a string as it is; a plain object as a copy of
// its JSON (its toJSON applied, getters and Proxy traps run once, here). Else 1 (not a string or
// plain object) or 4 (it cannot be serialised: a BigInt, a cycle, a getter or toJSON that threw).
// A plain object: not null, an array, a class instance or a function (reading the prototype may
// throw, for a Proxy: callers catch).
function plain(msg) {
  if (msg === null || typeof msg !== "object") return false;
  const p = Object.getPrototypeOf(msg);
  return p === Object.prototype || p === null;
}
export function aw_message(msg) {
  if (typeof msg === "string") return msg;
  try {
    if (!plain(msg)) return 1;
    const c = JSON.parse(JSON.stringify(msg));
    return c !== null && typeof c === "object" && !Array.isArray(c) ? c : 1;
  } catch (e) {
    return 4;
  }
}
// An incoming frame: JSON text parsed (an object or array), anything else handed on as it came.
export function aw_parse(data) {
  if (typeof data !== "string") return data;
  try {
    const v = JSON.parse(data);
    return v !== null && typeof v === "object" ? v : data;
  } catch (e) {
    return data;
  }
}
// A field the machine reads (type, code, message_id, session id): a string of at most `max`
// characters, else undefined (a huge field is never copied into wasm).
export function aw_short(v, max) {
  return typeof v === "string" && v.length <= max ? v : undefined;
}
export function aw_send(ws, msg, sessionId, field, token, messageId, chat) {
  let f;
  if (chat) f = typeof msg === "string" ? { type: "chat", message: msg } : Object.assign({ type: "chat" }, msg);
  else f = typeof msg === "string" ? { prompt: msg } : Object.assign({}, msg);
  if (sessionId !== undefined) f.session_id = sessionId;
  if (token !== undefined) f[field] = token;
  if (messageId !== undefined) f.message_id = messageId;
  ws.send(aw_text(f));
}
// One WebSocket, its three handlers one callback: on(0) opened, on(1, data) a frame, on(2, code)
// closed. Undefined when the constructor throws (a URL or subprotocol the browser refuses).
export function aw_ws(url, protocols, on) {
  let ws;
  try {
    ws = protocols ? new WebSocket(url, protocols) : new WebSocket(url);
  } catch (e) {
    return undefined;
  }
  ws.binaryType = "arraybuffer";
  ws.onopen = () => on(0, undefined);
  ws.onmessage = (e) => on(1, e.data);
  ws.onclose = (e) => on(2, e.code);
  return ws;
}
// Closes with `code` unless already closing or closed; `detach`: no handler runs afterwards.
export function aw_ws_close(ws, code, detach) {
  if (detach) ws.onopen = ws.onmessage = ws.onclose = null;
  try {
    if (ws.readyState <= 1) ws.close(code);
  } catch (e) {}
}
// The hot path: one call that checks, copies, stamps, stringifies and sends. 0: sent; 1: not a
// plain object or string, or one with its own toJSON (the slow path applies it before stamping);
// 2: the token is too close to expiry; 3: the message carries a message_id; 4: it cannot be
// serialised (nothing was sent).
export function aw_fast_send(ws, msg, sessionId, field, token, until) {
  let t;
  try {
    let f;
    if (typeof msg === "string") f = { prompt: msg };
    else {
      if (!plain(msg) || typeof msg.toJSON === "function") return 1;
      if (msg.message_id !== undefined) return 3;
      f = { ...msg };
    }
    if (Date.now() >= until) return 2;
    if (sessionId !== undefined) f.session_id = sessionId;
    f[field] = token;
    t = aw_text(f);
  } catch (e) {
    return 4;
  }
  ws.send(t);
  return 0;
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    fn aw_send(
        ws: &WebSocket,
        msg: &JsValue,
        session_id: &JsValue,
        field: &JsValue,
        token: &JsValue,
        message_id: &JsValue,
        chat: bool,
    ) -> Result<(), JsValue>;
    fn aw_message(v: &JsValue) -> JsValue;
    fn aw_ws(url: &str, protocols: Option<js_sys::Array>, on: &JsValue) -> Option<WebSocket>;
    fn aw_ws_close(ws: &WebSocket, code: u16, detach: bool);
    fn aw_parse(data: &JsValue) -> JsValue;
    fn aw_short(v: &JsValue, max: u32) -> Option<String>;
    fn aw_fast_send(
        ws: &WebSocket,
        msg: &JsValue,
        session_id: &JsValue,
        field: &JsValue,
        token: &JsValue,
        until: f64,
    ) -> u32;
}

/// What the fast path did.
enum Fast {
    Sent,
    /// Not for the fast path: the slow path decides.
    Declined,
    /// The message cannot be serialised; nothing was sent.
    Unserialisable,
}

fn unserialisable() -> JsValue {
    error(
        Code::InvalidMessage,
        "send(): the message cannot be serialised as JSON (a BigInt, a cycle, or a getter or toJSON that threw)",
    )
}

/// One WebSocket and its handlers; dropping it detaches them and closes the socket.
struct Conn {
    ws: WebSocket,
    /// The socket's events, one callback (`aw_ws`): released after the handlers are detached.
    _on: Closure<dyn FnMut(u32, JsValue)>,
}

impl Conn {
    /// Closes with `code` and detaches the handlers (no event of this socket arrives afterwards).
    fn shut(self, code: u16) {
        aw_ws_close(&self.ws, code, false);
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        aw_ws_close(&self.ws, 1000, true);
    }
}

struct Inner {
    machine: SocketMachine<JsValue>,
    auth: Option<AuthShared>,
    url: String,
    /// The machine's session id as a JS string (refreshed when it changes).
    session_id: JsValue,
    /// The server frame being handled (what an event names), undefined otherwise.
    current_frame: JsValue,
    events: js_sys::Set,
    token_field: JsValue,
    handshake: Option<Object>,
    conn: Option<Conn>,
    generation: u64,
    timer: Option<Timeout>,
    messages: js_sys::Set,
    subscribers: js_sys::Set,
    snapshot: Option<JsValue>,
    notify_pending: bool,
    online: Option<DomListener>,
    watch: Option<u64>,
    freed: bool,
}

type Shared = Rc<RefCell<Inner>>;

/// Deferred work: runs with no borrow of the socket held (it calls into the AuthSession, whose
/// events call back into the socket).
enum Later {
    NeedToken,
    ReleaseToken,
    ForceRefresh,
    Input(Input),
    Notify,
    /// An `onEvent` event, built under the borrow, delivered with none held.
    Emit(js_sys::Set, JsValue),
}

fn token_ok(shared: &Shared) -> bool {
    let auth = match shared.try_borrow() {
        Ok(i) => i.auth.clone(),
        Err(_) => return false,
    };
    // Protocols that carry no session token are always "ok".
    auth.as_ref().map_or(true, auth::usable)
}

fn drive<R>(
    shared: &Shared,
    f: impl FnOnce(&mut SocketMachine<JsValue>, u64, bool, &mut Vec<Action<JsValue>>) -> R,
) -> Option<R> {
    let ok = token_ok(shared);
    let mut out = Vec::new();
    let r = {
        let mut inner = shared.try_borrow_mut().ok()?;
        if inner.freed {
            return None;
        }
        f(&mut inner.machine, now_ms(), ok, &mut out)
    };
    let later = perform(shared, out);
    run_later(shared, later);
    Some(r)
}

/// A write prepared under a short borrow and sent with none held: stringifying runs the app's
/// `toJSON` and getters, which may call back into this socket or its session.
enum Pending {
    Frame {
        ws: WebSocket,
        payload: JsValue,
        session_id: JsValue,
        field: JsValue,
        token: JsValue,
        id: JsValue,
        chat: bool,
    },
    Auth {
        ws: WebSocket,
        frame: Object,
    },
    Text {
        ws: WebSocket,
        text: &'static str,
    },
}

impl Pending {
    fn send(self) {
        match self {
            Pending::Frame {
                ws,
                payload,
                session_id,
                field,
                token,
                id,
                chat,
            } => {
                let _ = aw_send(&ws, &payload, &session_id, &field, &token, &id, chat);
            }
            Pending::Text { ws, text } => {
                let _ = ws.send_with_str(text);
            }
            Pending::Auth { ws, frame } => {
                if let Ok(text) = JSON::stringify(&frame) {
                    let _ = ws.send_with_str(&String::from(text));
                }
            }
        }
    }
}

fn perform(shared: &Shared, actions: Vec<Action<JsValue>>) -> Vec<Later> {
    let mut later = Vec::new();
    for a in actions {
        let pending = {
            let Ok(mut inner) = shared.try_borrow_mut() else {
                return later;
            };
            match a {
                Action::Connect => {
                    if let Some(c) = inner.conn.take() {
                        c.shut(1000);
                    }
                    inner.generation += 1;
                    let (resume, place) = inner.machine.connect_query();
                    let mut params: Vec<(&str, String)> = Vec::new();
                    if let Some(id) = resume {
                        params.push(("session_id", id.to_owned()));
                    }
                    // The machine connects only with a usable token; read it now, never cached.
                    let token = place.map(|p| (p, inner.auth.as_ref().and_then(auth::url_token)));
                    let mut protocols = None;
                    let mut missing = false;
                    match token {
                        Some((TokenPlace::Query(name), Some(t))) => params.push((name, t)),
                        Some((TokenPlace::Protocol(name), Some(t))) => protocols = Some((name.clone(), t)),
                        Some((_, None)) => missing = true,
                        None => {}
                    }
                    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    let url = with_query(&inner.url, &pairs);
                    let conn = if missing {
                        None
                    } else {
                        open(shared, &url, protocols, inner.generation)
                    };
                    match conn {
                        Some(c) => inner.conn = Some(c),
                        // The browser refused to even start: treat it as a dropped connection.
                        None => later.push(Later::Input(Input::Closed(1006))),
                    }
                    None
                }
                Action::Disconnect(code) => {
                    if let Some(c) = inner.conn.take() {
                        c.shut(code);
                    }
                    None
                }
                Action::WriteAuth => match (&inner.handshake, &inner.conn) {
                    (Some(template), Some(c)) => {
                        let frame = Object::assign(&Object::new(), template);
                        if let Some(t) = inner.auth.as_ref().and_then(auth::token_js) {
                            let _ = Reflect::set(&frame, &"token".into(), &t);
                        }
                        if !inner.session_id.is_undefined() {
                            let _ = Reflect::set(&frame, &"session_id".into(), &inner.session_id);
                        }
                        Some(Pending::Auth {
                            ws: c.ws.clone(),
                            frame,
                        })
                    }
                    _ => None,
                },
                Action::Write(frame) => {
                    let chat = inner.machine.config().protocol == Protocol::AuthHandshake;
                    prepare(&inner, frame.payload, frame.message_id.as_deref(), chat)
                }
                // A ping is stamped like any frame in token-per-message; the server answers "pong".
                Action::Ping => prepare(&inner, frozen(&[("type", "ping".into())]), None, false),
                // Unstamped: a pong never carries a token (SlarOps reads it before anything else).
                Action::Pong => inner.conn.as_ref().map(|c| Pending::Text {
                    ws: c.ws.clone(),
                    text: r#"{"type":"pong"}"#,
                }),
                Action::WriteLogout => inner.conn.as_ref().map(|c| Pending::Text {
                    ws: c.ws.clone(),
                    text: r#"{"type":"logout"}"#,
                }),
                Action::Emit(ev) => {
                    if ev == SocketEvent::SessionId {
                        inner.session_id = inner.machine.session_id().map_or(JsValue::UNDEFINED, JsValue::from_str);
                    }
                    let mut pairs = vec![("type", JsValue::from_str(ev.as_str()))];
                    if ev == SocketEvent::SessionId {
                        pairs.push(("sessionId", inner.session_id.clone()));
                    }
                    if !inner.current_frame.is_undefined() {
                        pairs.push(("frame", inner.current_frame.clone()));
                    }
                    later.push(Later::Emit(inner.events.clone(), frozen(&pairs)));
                    None
                }
                Action::NeedToken => {
                    later.push(Later::NeedToken);
                    None
                }
                Action::ReleaseToken => {
                    later.push(Later::ReleaseToken);
                    None
                }
                Action::ForceRefresh => {
                    later.push(Later::ForceRefresh);
                    None
                }
                Action::WakeAt(at) => {
                    let delay = at.saturating_sub(now_ms()).min(i32::MAX as u64) as u32;
                    let weak = Rc::downgrade(shared);
                    inner.timer = Some(crate::web::timeout(delay, move || feed(&weak, Input::Timer)));
                    None
                }
                Action::CancelWake => {
                    inner.timer = None;
                    None
                }
                Action::Changed => {
                    inner.snapshot = None;
                    if !inner.notify_pending {
                        inner.notify_pending = true;
                        later.push(Later::Notify);
                    }
                    None
                }
            }
        };
        if let Some(p) = pending {
            p.send();
        }
    }
    later
}

/// Prepares one frame: `payload` with the session id, the token (token-per-message only, read now:
/// stamped when written, never when queued) and the message id; `as_chat` wraps it as the
/// handshake protocol's `{ type: "chat", ... }`.
fn prepare(inner: &Inner, payload: JsValue, message_id: Option<&str>, as_chat: bool) -> Option<Pending> {
    let c = inner.conn.as_ref()?;
    let per_message = inner.machine.config().protocol == Protocol::TokenPerMessage;
    let token = if per_message {
        inner.auth.as_ref().and_then(auth::token_js)
    } else {
        None
    };
    Some(Pending::Frame {
        ws: c.ws.clone(),
        payload,
        session_id: inner.session_id.clone(),
        field: inner.token_field.clone(),
        token: token.unwrap_or(JsValue::UNDEFINED),
        id: message_id.map_or(JsValue::UNDEFINED, JsValue::from_str),
        chat: as_chat,
    })
}

fn run_later(shared: &Shared, later: Vec<Later>) {
    for l in later {
        match l {
            Later::NeedToken => {
                let (auth, holder) = match shared.try_borrow() {
                    Ok(i) => (i.auth.clone(), i.watch.unwrap_or(0)),
                    Err(_) => continue,
                };
                let Some(auth) = auth else { continue };
                let input = match auth::need_token(&auth, holder) {
                    Answer::Ready => Input::TokenChanged,
                    // The session keeps trying for us; its SIGNED_IN / TOKEN_REFRESHED reaches the watcher.
                    Answer::Wait => continue,
                    Answer::Fail(code) => Input::TokenUnavailable(code),
                };
                drive(shared, |m, now, ok, out| m.handle(now, input, ok, out));
            }
            Later::ReleaseToken => {
                let (auth, holder) = match shared.try_borrow() {
                    Ok(i) => (i.auth.clone(), i.watch.unwrap_or(0)),
                    Err(_) => continue,
                };
                if let Some(auth) = auth {
                    auth::release_token(&auth, holder);
                }
            }
            Later::ForceRefresh => {
                let auth = shared.try_borrow().ok().and_then(|i| i.auth.clone());
                let result = match auth {
                    Some(a) => auth::force_refresh(&a),
                    None => Err(Code::NoRefreshSource),
                };
                match result {
                    Ok(()) => {}
                    Err(Code::SignedOut | Code::Freed) => {
                        drive(shared, |m, now, ok, out| m.handle(now, Input::SessionEnded, ok, out));
                    }
                    Err(code) => {
                        drive(shared, |m, now, ok, out| {
                            m.handle(now, Input::RefreshFailed(code), ok, out)
                        });
                    }
                }
            }
            Later::Input(i) => {
                drive(shared, |m, now, ok, out| m.handle(now, i, ok, out));
            }
            Later::Emit(listeners, event) => aw_emit(&listeners, &event),
            Later::Notify => {
                // Batched: one notification per microtask, however many changes (10,000 sends in a
                // loop notify once).
                let weak = Rc::downgrade(shared);
                crate::web::later(move || {
                    let Some(shared) = weak.upgrade() else { return };
                    let subs = match shared.try_borrow_mut() {
                        Ok(mut i) if !i.freed => {
                            i.notify_pending = false;
                            i.subscribers.clone()
                        }
                        _ => return,
                    };
                    aw_emit(&subs, &JsValue::UNDEFINED);
                });
            }
        }
    }
}

fn feed(weak: &Weak<RefCell<Inner>>, input: Input) {
    if let Some(shared) = weak.upgrade() {
        drive(&shared, |m, now, ok, out| m.handle(now, input, ok, out));
    }
}

/// Opens a WebSocket; `protocols` (`connectToken.protocol`) asks for `[name, token]` as
/// `Sec-WebSocket-Protocol` (the server selects `name`).
fn open(shared: &Shared, url: &str, protocols: Option<(String, String)>, generation: u64) -> Option<Conn> {
    let current = move |weak: &Weak<RefCell<Inner>>| -> Option<Shared> {
        let s = weak.upgrade()?;
        let same = s.try_borrow().is_ok_and(|i| i.generation == generation && !i.freed);
        same.then_some(s)
    };
    let w = Rc::downgrade(shared);
    let on = Closure::<dyn FnMut(u32, JsValue)>::new(move |kind: u32, v: JsValue| {
        let Some(s) = current(&w) else { return };
        let input = match kind {
            0 => Input::Opened,
            1 => return received(&s, v),
            _ => Input::Closed(v.as_f64().map_or(1006, |c| c as u16)),
        };
        drive(&s, |m, now, ok, out| m.handle(now, input, ok, out));
    });
    let list = protocols.map(|(name, token)| js_sys::Array::of2(&JsValue::from_str(&name), &JsValue::from_str(&token)));
    let ws = aw_ws(url, list, on.as_ref())?;
    Some(Conn { ws, _on: on })
}

/// A frame from the current connection.
fn received(s: &Shared, data: JsValue) {
    // Parsed by the browser, never copied into wasm memory (a 10 MB frame stays in JS); only the
    // short fields the machine reads cross over.
    let value = aw_parse(&data);
    let incoming = if value.is_object() {
        let pick = |k: &str| aw_short(&get(&value, k), MAX_FIELD_CHARS);
        let mut i = Incoming::read(pick("type"), CODE_FIELDS.map(pick), pick("message_id"));
        if let Ok(inner) = s.try_borrow() {
            if let Some(field) = inner.machine.session_field() {
                i.session = pick(field);
            }
        }
        i
    } else {
        Incoming::default()
    };
    if let Ok(mut inner) = s.try_borrow_mut() {
        inner.current_frame = value.clone();
    }
    drive(s, |m, now, ok, out| m.handle(now, Input::Received(incoming), ok, out));
    if let Ok(mut inner) = s.try_borrow_mut() {
        inner.current_frame = JsValue::UNDEFINED;
    }
    let listeners = s.try_borrow().ok().filter(|i| !i.freed).map(|i| i.messages.clone());
    if let Some(l) = listeners {
        aw_emit(&l, &value);
    }
}

fn opt_error(msg: &str) -> JsValue {
    error(Code::InvalidOptions, msg)
}

fn random_id() -> String {
    const A: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..8)
        .map(|_| A[(js_sys::Math::random() * 36.0) as usize % 36] as char)
        .collect()
}

/// The handshake frame template: `{ type: "auth", ...handshake, auth_type }` (the core checked
/// that `handshake` carries what a known `auth_type` needs; an unknown one passes through).
fn handshake_frame(v: &JsValue, auth_type: &str) -> Object {
    let frame = Object::new();
    let _ = Reflect::set(&frame, &"type".into(), &"auth".into());
    let frame = if v.is_object() {
        Object::assign(&frame, v.unchecked_ref())
    } else {
        frame
    };
    let _ = Reflect::set(&frame, &"type".into(), &"auth".into());
    let _ = Reflect::set(&frame, &"auth_type".into(), &auth_type.into());
    frame
}

/// A chat WebSocket that stamps a valid `auth_token` (and `session_id`) on every outgoing frame,
/// queues while connecting or refreshing, reconnects, and re-authenticates when the server rejects
/// a token, without losing or duplicating a message.
#[wasm_bindgen]
pub struct ChatSocket {
    shared: Shared,
}

#[wasm_bindgen]
impl ChatSocket {
    /// Opens the socket. Throws `invalid_options`, `invalid_url`, `insecure_url` or `freed`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "ChatSocketOptions")] options: JsValue,
    ) -> Result<ChatSocket, JsValue> {
        let seed = (js_sys::Math::random() * 9e15) as u64;
        let read = ChatOptions::read_in(options::field(options.clone()), random_id(), seed, Build::THIS)
            .map_err(|e| options::option_error(&e))?;
        let handshake = read
            .handshake
            .then(|| handshake_frame(&get(&options, "handshake"), &read.auth_type_name));
        let auth = if read.has_auth {
            Some(auth::lookup(&get(&options, "auth")).map_err(|c| match c {
                Code::Freed => error(Code::Freed, "options.auth was freed"),
                _ => opt_error("options.auth must be an AuthSession"),
            })?)
        } else {
            None
        };
        let session_id = read.session_id.map_or(JsValue::UNDEFINED, |s| JsValue::from_str(&s));
        let token_field = JsValue::from_str(&read.token_field);
        let (url, cfg) = (read.url, read.config);
        let shared: Shared = Rc::new(RefCell::new(Inner {
            machine: SocketMachine::new(cfg),
            auth: auth.clone(),
            url,
            session_id,
            current_frame: JsValue::UNDEFINED,
            events: js_sys::Set::new(&JsValue::UNDEFINED),
            token_field,
            handshake,
            conn: None,
            generation: 0,
            timer: None,
            messages: js_sys::Set::new(&JsValue::UNDEFINED),
            subscribers: js_sys::Set::new(&JsValue::UNDEFINED),
            snapshot: None,
            notify_pending: false,
            online: None,
            watch: None,
            freed: false,
        }));
        if let Some(a) = &auth {
            let weak = Rc::downgrade(&shared);
            let id = auth::watch(
                a,
                Rc::new(move |ev: &Event| {
                    let input = match ev.kind {
                        EventKind::TokenRefreshed | EventKind::SignedIn => Input::TokenChanged,
                        EventKind::RefreshFailed => Input::RefreshFailed(ev.code.unwrap_or(Code::NetworkError)),
                        EventKind::SignedOut => Input::SessionEnded,
                        EventKind::SessionExpired => return,
                    };
                    feed(&weak, input);
                }),
            );
            if let Ok(mut i) = shared.try_borrow_mut() {
                i.watch = id;
            }
        }
        if let Some(window) = crate::web::window() {
            let weak = Rc::downgrade(&shared);
            let l = DomListener::new(&window, "online", move |_| feed(&weak, Input::Online));
            if let Ok(mut i) = shared.try_borrow_mut() {
                i.online = l;
            }
        }
        drive(&shared, |m, now, ok, out| m.handle(now, Input::Start, ok, out));
        Ok(ChatSocket { shared })
    }

    /// Sends a message: a string becomes `{ prompt, session_id, auth_token }` (`{ type: "chat",
    /// message, session_id }` in auth-handshake); an object gets `session_id` and `auth_token` added
    /// to a copy. Stamped when written, never with an expired token. Throws `invalid_message`,
    /// `queue_full`, `socket_closed` or `freed`.
    pub fn send(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | Record<string, unknown>")] message: JsValue,
    ) -> Result<(), JsValue> {
        match self.fast_send(&message) {
            Fast::Sent => return Ok(()),
            Fast::Unserialisable => return Err(unserialisable()),
            Fast::Declined => {}
        }
        // Taken now, as data: later changes by the caller, getters and toJSON cannot alter (or
        // fail) what is written, however long it waits in the queue.
        let payload = aw_message(&message);
        match payload.as_f64() {
            Some(n) if n == 4.0 => return Err(unserialisable()),
            Some(_) => return Err(code_error(Code::InvalidMessage)),
            None => {}
        }
        let user_id = if payload.is_string() {
            None
        } else {
            get(&payload, "message_id").as_string()
        };
        match drive(&self.shared, |m, now, ok, out| m.send(now, payload, user_id, ok, out)) {
            Some(Ok(())) => Ok(()),
            Some(Err(code)) => Err(code_error(code)),
            None => Err(code_error(Code::Freed)),
        }
    }

    /// The open-socket fast path: when the machine says a frame would be written at once with no
    /// bookkeeping, one JS call stamps and sends it (the same frame `Write` produces). Anything it
    /// cannot decide (not a plain message, a `message_id`, a `toJSON`, a token near expiry) goes
    /// the slow path.
    fn fast_send(&self, message: &JsValue) -> Fast {
        // Everything is copied out first: the send stringifies the app's object with no borrow held.
        let (ws, session_id, field, auth) = {
            let Ok(inner) = self.shared.try_borrow() else {
                return Fast::Declined;
            };
            if inner.freed || !inner.machine.fast_path_open() {
                return Fast::Declined;
            }
            let (Some(auth), Some(conn)) = (&inner.auth, &inner.conn) else {
                return Fast::Declined;
            };
            (
                conn.ws.clone(),
                inner.session_id.clone(),
                inner.token_field.clone(),
                auth.clone(),
            )
        };
        let Some((token, until)) = auth::write_token(&auth) else {
            return Fast::Declined;
        };
        match aw_fast_send(&ws, message, &session_id, &field, &token, until) {
            0 => {}
            4 => return Fast::Unserialisable,
            _ => return Fast::Declined,
        }
        let notify = match self.shared.try_borrow_mut() {
            Ok(mut i) => {
                i.machine.wrote_fast();
                i.snapshot = None;
                !std::mem::replace(&mut i.notify_pending, true)
            }
            Err(_) => false,
        };
        if notify {
            run_later(&self.shared, vec![Later::Notify]);
        }
        Fast::Sent
    }

    /// Calls `listener` with every incoming frame: parsed JSON, or the text when it is not JSON.
    /// Returns the function that unsubscribes.
    #[wasm_bindgen(js_name = onMessage, unchecked_return_type = "() => void")]
    pub fn on_message(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(message: ServerMessage) => void")] listener: &JsValue,
    ) -> Result<Function, JsValue> {
        let i = self.shared.try_borrow().map_err(|_| code_error(Code::Freed))?;
        listen(&i.messages, listener, "onMessage")
    }

    /// Calls `listener` when the snapshot changes (batched: at most once per microtask).
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn subscribe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "() => void")] listener: &JsValue,
    ) -> Result<Function, JsValue> {
        let i = self.shared.try_borrow().map_err(|_| code_error(Code::Freed))?;
        listen(&i.subscribers, listener, "subscribe")
    }

    /// `{ status, queued, unacked, sent, received, acked, reconnects, lastError }`: the same frozen
    /// object until something changes.
    #[wasm_bindgen(js_name = getSnapshot, unchecked_return_type = "ChatSnapshot")]
    pub fn get_snapshot(&self) -> JsValue {
        let Ok(mut inner) = self.shared.try_borrow_mut() else {
            return JsValue::UNDEFINED;
        };
        if let Some(s) = &inner.snapshot {
            return s.clone();
        }
        let m = &inner.machine;
        let n = |v: u64| JsValue::from_f64(v as f64);
        let snap = frozen(&[
            ("status", m.status().as_str().into()),
            ("queued", n(m.queued() as u64)),
            ("unacked", n(m.unacked() as u64)),
            ("sent", n(m.sent)),
            ("received", n(m.received)),
            ("acked", n(m.acked)),
            ("reconnects", n(m.reconnects)),
            ("lastError", m.last_error.map_or(JsValue::NULL, |c| c.as_str().into())),
            ("sessionId", m.session_id().map_or(JsValue::NULL, JsValue::from_str)),
        ]);
        inner.snapshot = Some(snap.clone());
        snap
    }

    /// Closes the socket for good: no reconnect, nothing more is sent.
    pub fn close(&self) {
        drive(&self.shared, |m, now, ok, out| m.handle(now, Input::Close, ok, out));
    }

    /// Signs out of the chat server and closes: in auth-handshake, `{ type: "logout" }` is written
    /// (the server clears the credentials) before the close, and `onEvent` gets `logged_out`; in
    /// token-per-message it is `close()`. The AuthSession's sign-out does the same.
    pub fn logout(&self) {
        drive(&self.shared, |m, now, ok, out| m.handle(now, Input::Logout, ok, out));
    }

    /// Sets the chat `session_id` stamped on later frames (and resumed with `resumeSession`);
    /// `null` removes it. For apps that manage the id themselves. Throws `invalid_argument`.
    #[wasm_bindgen(js_name = setSessionId)]
    pub fn set_session_id(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | null")] id: JsValue,
    ) -> Result<(), JsValue> {
        let id = match id.as_string() {
            Some(s) if !s.is_empty() => Some(s),
            _ if id.is_null() || id.is_undefined() => None,
            _ => {
                return Err(error(
                    Code::InvalidArgument,
                    "setSessionId() takes a non-empty string or null",
                ))
            }
        };
        let js = id.as_deref().map_or(JsValue::UNDEFINED, JsValue::from_str);
        drive(&self.shared, |m, _, _, out| m.set_session_id(id, out)).ok_or_else(|| code_error(Code::Freed))?;
        if let Ok(mut i) = self.shared.try_borrow_mut() {
            i.session_id = js;
        }
        Ok(())
    }

    /// Calls `listener` with the socket's events: `{ type: "auth_failed" | "auth_expired",
    /// frame }` (the server's frame, e.g. its `redirect_url`), `{ type: "logged_out" }`,
    /// `{ type: "session_id", sessionId, frame }`. Returns the function that unsubscribes.
    #[wasm_bindgen(js_name = onEvent, unchecked_return_type = "() => void")]
    pub fn on_event(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(event: ChatEvent) => void")] listener: &JsValue,
    ) -> Result<Function, JsValue> {
        let i = self.shared.try_borrow().map_err(|_| code_error(Code::Freed))?;
        listen(&i.events, listener, "onEvent")
    }
}

impl Drop for ChatSocket {
    /// `free()`: closes the socket, stops the timer, removes every listener.
    fn drop(&mut self) {
        drive(&self.shared, |m, now, ok, out| m.handle(now, Input::Close, ok, out));
        let (auth, watch) = {
            let Ok(mut i) = self.shared.try_borrow_mut() else {
                return;
            };
            i.freed = true;
            i.timer = None;
            i.online = None;
            if let Some(c) = i.conn.take() {
                c.shut(1000);
            }
            i.messages.clear();
            i.subscribers.clear();
            i.events.clear();
            (i.auth.take(), i.watch.take())
        };
        if let (Some(a), Some(id)) = (auth, watch) {
            auth::unwatch(&a, id);
        }
    }
}
