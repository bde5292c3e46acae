//! The chat WebSockets: `/ws/chat` (token-per-message) and `/bedrock-chat/ws` (auth-handshake),
//! with acknowledgements, de-duplication by `message_id`, fault switches and counters per chat
//! `session_id`, so tests can prove nothing was lost, duplicated or sent with a stale token.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use std::sync::Arc;

use crate::jwt::Invalid;
use crate::tokens::Tokens;
use crate::util::{chance, now_s, Rng};

/// What the server saw for one chat session id.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ChatStats {
    /// WebSocket connections that carried this session id.
    pub connections: u64,
    /// Frames received (all kinds).
    pub frames: u64,
    /// Chat messages accepted (first time each).
    pub accepted: u64,
    /// Messages received again with a `message_id` already accepted.
    pub duplicates: u64,
    /// Frames whose token had expired.
    pub stale_tokens: u64,
    /// Frames without a token.
    pub missing_tokens: u64,
    /// Frames whose token is not one of ours (bad signature, revoked).
    pub bad_tokens: u64,
    /// Tokens rejected on purpose by the `reject_next_token` switch.
    pub forced_rejections: u64,
    /// Connections dropped on purpose by the `drop_after_frames` switch.
    pub forced_drops: u64,
    /// Handshakes accepted / refused.
    pub auths_ok: u64,
    /// Handshakes refused.
    pub auths_failed: u64,
    /// Pings answered.
    pub pings: u64,
    /// The accepted messages' text, in arrival order.
    pub messages: Vec<String>,
    #[serde(skip)]
    ids: HashSet<String>,
}

/// Fault switches for one chat session id.
#[derive(Debug, Default, Clone)]
struct Faults {
    drop_after_frames: Option<u64>,
    reject_next_token: bool,
    reply_delay_ms: u64,
    drop_probability: f64,
    reject_probability: f64,
    reply_delay_max_ms: u64,
    /// Seeded source for the random faults and delays, so a soak can replay them.
    rng: Option<Rng>,
}

/// Chat state shared by all connections.
#[derive(Default)]
pub struct ChatState {
    stats: Mutex<HashMap<String, ChatStats>>,
    faults: Mutex<HashMap<String, Faults>>,
}

impl ChatState {
    fn stat(&self, sid: &str, f: impl FnOnce(&mut ChatStats)) {
        let mut m = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        f(m.entry(sid.to_owned()).or_default());
    }
    fn faults(&self, sid: &str) -> Faults {
        self.faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sid)
            .cloned()
            .unwrap_or_default()
    }
    /// A uniform number in [0, 1) for a fault decision on `sid`: from its seeded source if it has one.
    fn chance(&self, sid: &str) -> f64 {
        let mut m = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        match m.get_mut(sid).and_then(|f| f.rng.as_mut()) {
            Some(rng) => rng.next_f64(),
            None => chance(),
        }
    }
    fn update_faults(&self, sid: &str, f: impl FnOnce(&mut Faults)) {
        let mut m = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        f(m.entry(sid.to_owned()).or_default());
    }
}

/// Credentials the handshake route accepts (documented in the README).
pub const BASIC_USER: &str = "agent";
/// Password for `basic_auth`.
pub const BASIC_PASSWORD: &str = "authwire-basic";
/// Key for `api_key`.
pub const API_KEY: &str = "ak-authwire-demo";
/// Client for `oauth2`.
pub const OAUTH_CLIENT_ID: &str = "authwire-client";
/// Secret for `oauth2`.
pub const OAUTH_CLIENT_SECRET: &str = "authwire-secret";
/// Header and value `custom` must carry.
pub const CUSTOM_HEADER: (&str, &str) = ("X-Custom-Auth", "authwire-custom");

#[derive(Deserialize)]
pub struct ChatQuery {
    token_field: Option<String>,
}

/// `GET /ws/chat`: token-per-message.
pub async fn ws_chat(
    State(tokens): State<Arc<Tokens>>,
    State(chat): State<Arc<ChatState>>,
    Query(q): Query<ChatQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let field = q.token_field.unwrap_or_else(|| "auth_token".into());
    ws.on_upgrade(move |socket| run(tokens, chat, socket, Mode::PerMessage { field }))
}

/// `GET /ws/sink`: reads and drops every frame (the bench measures the sender, not the server).
pub async fn ws_sink(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(|mut socket| async move { while let Some(Ok(_)) = socket.recv().await {} })
}

/// `GET /bedrock-chat/ws`: auth-handshake.
pub async fn ws_bedrock(
    State(tokens): State<Arc<Tokens>>,
    State(chat): State<Arc<ChatState>>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.on_upgrade(move |socket| run(tokens, chat, socket, Mode::Handshake))
}

enum Mode {
    PerMessage { field: String },
    Handshake,
}

enum Out {
    Text(String),
    Close(u16, &'static str),
}

fn text(v: Value) -> Out {
    Out::Text(v.to_string())
}

/// What the handshake established.
struct Authed {
    auth_type: String,
    /// Expiry of the bearer token, seconds.
    token_exp: Option<u64>,
}

async fn run(app: Arc<Tokens>, chat: Arc<ChatState>, socket: WebSocket, mode: Mode) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
    let writer = tokio::spawn(async move {
        while let Some(o) = rx.recv().await {
            let msg = match o {
                Out::Text(t) => Message::Text(Utf8Bytes::from(t)),
                Out::Close(code, reason) => {
                    let _ = sink
                        .send(Message::Close(Some(CloseFrame {
                            code,
                            reason: Utf8Bytes::from_static(reason),
                        })))
                        .await;
                    break;
                }
            };
            if sink.send(msg).await.is_err() {
                break;
            }
        }
    });
    let chat = &*chat;
    let mut conn_frames: u64 = 0;
    let mut seen_sessions: HashSet<String> = HashSet::new();
    let mut authed: Option<Authed> = None;
    while let Some(Ok(msg)) = stream.next().await {
        let Message::Text(t) = msg else {
            if matches!(msg, Message::Close(_)) {
                break;
            }
            continue;
        };
        let Ok(frame) = serde_json::from_str::<Value>(t.as_str()) else {
            let _ = tx.send(text(
                json!({"type": "error", "code": "bad_request", "message": "frames must be JSON objects"}),
            ));
            continue;
        };
        let sid = frame.get("session_id").and_then(Value::as_str).unwrap_or("").to_owned();
        let message_id = frame.get("message_id").and_then(Value::as_str).map(str::to_owned);
        if seen_sessions.insert(sid.clone()) {
            chat.stat(&sid, |s| s.connections += 1);
        }
        chat.stat(&sid, |s| s.frames += 1);
        conn_frames += 1;
        let faults = chat.faults(&sid);
        let random_drop = faults.drop_probability > 0.0 && chat.chance(&sid) < faults.drop_probability;
        if random_drop || faults.drop_after_frames.is_some_and(|n| conn_frames > n) {
            if !random_drop {
                chat.update_faults(&sid, |f| f.drop_after_frames = None);
            }
            chat.stat(&sid, |s| s.forced_drops += 1);
            if !random_drop {
                println!("[chat] session={sid}: dropping the connection on purpose");
            }
            break; // no close frame: the client sees an abnormal closure (1006)
        }
        let kind = frame.get("type").and_then(Value::as_str).unwrap_or("");
        let reject = |code: &'static str| {
            let _ = tx.send(text(
                json!({"type": "error", "code": code, "message": "token rejected", "message_id": message_id}),
            ));
            let _ = tx.send(Out::Close(4001, "token rejected"));
        };
        // The token check, per protocol.
        let token_ok = match &mode {
            Mode::PerMessage { field } => match frame.get(field.as_str()).and_then(Value::as_str) {
                None => {
                    chat.stat(&sid, |s| s.missing_tokens += 1);
                    reject("missing_token");
                    false
                }
                Some(tok) => match app.verify(tok) {
                    Err(Invalid::Expired) => {
                        chat.stat(&sid, |s| s.stale_tokens += 1);
                        println!("[chat] session={sid}: STALE token refused");
                        reject("token_expired");
                        false
                    }
                    Err(Invalid::Bad | Invalid::Revoked) => {
                        chat.stat(&sid, |s| s.bad_tokens += 1);
                        reject("invalid_token");
                        false
                    }
                    Ok(_) => true,
                },
            },
            Mode::Handshake if kind == "auth" => {
                match check_handshake(&app, &frame) {
                    Ok(a) => {
                        chat.stat(&sid, |s| s.auths_ok += 1);
                        let _ = tx.send(text(json!({"type": "auth_configured", "auth_type": a.auth_type})));
                        authed = Some(a);
                    }
                    Err(why) => {
                        chat.stat(&sid, |s| s.auths_failed += 1);
                        println!("[chat] session={sid}: handshake refused: {why}");
                        let _ = tx.send(text(json!({"type": "error", "code": "auth_failed", "message": why})));
                        let _ = tx.send(Out::Close(4001, "auth failed"));
                    }
                }
                continue;
            }
            Mode::Handshake => match &authed {
                None => {
                    reject("auth_required");
                    false
                }
                Some(a) if a.token_exp.is_some_and(|e| now_s() >= e) => {
                    chat.stat(&sid, |s| s.stale_tokens += 1);
                    println!("[chat] session={sid}: STALE handshake token");
                    reject("token_expired");
                    false
                }
                Some(_) => true,
            },
        };
        if !token_ok {
            break;
        }
        let random_reject = faults.reject_probability > 0.0 && chat.chance(&sid) < faults.reject_probability;
        if faults.reject_next_token || random_reject {
            chat.update_faults(&sid, |f| f.reject_next_token = false);
            chat.stat(&sid, |s| s.forced_rejections += 1);
            reject("token_expired");
            break;
        }
        if kind == "ping" {
            chat.stat(&sid, |s| s.pings += 1);
            let _ = tx.send(text(json!({"type": "pong"})));
            continue;
        }
        let body = frame
            .get("prompt")
            .or_else(|| frame.get("message"))
            .cloned()
            .unwrap_or(Value::Null);
        let body_text = match &body {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if body_text == "say-raw" {
            let _ = tx.send(Out::Text("plain text, not JSON".into()));
        }
        let mut duplicate = false;
        chat.stat(&sid, |s| {
            if let Some(id) = &message_id {
                if !s.ids.insert(id.clone()) {
                    duplicate = true;
                    s.duplicates += 1;
                    return;
                }
            }
            s.accepted += 1;
            s.messages.push(body_text.clone());
        });
        if let Some(id) = &message_id {
            let _ = tx.send(text(json!({"type": "ack", "message_id": id})));
        }
        if duplicate {
            continue;
        }
        let reply = json!({"type": "ai_response", "message": format!("echo: {body_text}"), "session_id": sid, "message_id": message_id});
        let jitter = if faults.reply_delay_max_ms > 0 {
            (chat.chance(&sid) * faults.reply_delay_max_ms as f64) as u64
        } else {
            0
        };
        let delay = faults.reply_delay_ms + jitter;
        if delay > 0 {
            let tx = tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let _ = tx.send(text(reply));
            });
        } else {
            let _ = tx.send(text(reply));
        }
    }
    drop(tx);
    let _ = writer.await;
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn check_handshake(app: &Tokens, f: &Value) -> Result<Authed, &'static str> {
    let auth_type = s(f, "auth_type").ok_or("auth_type is missing")?;
    let mut token_exp = None;
    match auth_type {
        "bearer_token" => {
            let tok = s(f, "token").ok_or("token is missing")?;
            let claims = app.verify(tok).map_err(|e| {
                if e == Invalid::Expired {
                    "token expired"
                } else {
                    "invalid token"
                }
            })?;
            token_exp = claims.get("exp").and_then(Value::as_u64);
        }
        "basic_auth" => {
            if s(f, "username") != Some(BASIC_USER) || s(f, "password") != Some(BASIC_PASSWORD) {
                return Err("wrong username or password");
            }
        }
        "api_key" => {
            if s(f, "api_key") != Some(API_KEY) {
                return Err("wrong api_key");
            }
            if f.get("api_key_header")
                .is_some_and(|h| h.as_str().is_none_or(str::is_empty))
            {
                return Err("api_key_header must be a header name");
            }
        }
        "oauth2" => {
            if s(f, "client_id") != Some(OAUTH_CLIENT_ID)
                || s(f, "client_secret") != Some(OAUTH_CLIENT_SECRET)
                || s(f, "token_url").is_none()
            {
                return Err("wrong oauth2 client");
            }
        }
        "custom" => {
            let ok = f
                .get("custom_headers")
                .and_then(|h| h.get(CUSTOM_HEADER.0))
                .and_then(Value::as_str)
                == Some(CUSTOM_HEADER.1);
            if !ok {
                return Err("custom_headers lack the expected header");
            }
        }
        _ => return Err("unknown auth_type"),
    }
    Ok(Authed {
        auth_type: auth_type.to_owned(),
        token_exp,
    })
}

#[derive(Deserialize)]
pub struct SessionQuery {
    session_id: String,
}

/// `GET /__test/chat?session_id=`: what the server saw.
pub async fn stats(State(chat): State<Arc<ChatState>>, Query(q): Query<SessionQuery>) -> Response {
    let m = chat.stats.lock().unwrap_or_else(|p| p.into_inner());
    Json(m.get(&q.session_id).cloned().unwrap_or_default()).into_response()
}

#[derive(Deserialize)]
pub struct ChatControl {
    session_id: String,
    drop_after_frames: Option<u64>,
    reject_next_token: Option<bool>,
    reply_delay_ms: Option<u64>,
    drop_probability: Option<f64>,
    reject_probability: Option<f64>,
    reply_delay_max_ms: Option<u64>,
    fault_seed: Option<u64>,
}

/// `POST /__test/chat-control {session_id, drop_after_frames?, reject_next_token?, reply_delay_ms?,
/// drop_probability?, reject_probability?, reply_delay_max_ms?, fault_seed?}`
pub async fn control(State(chat): State<Arc<ChatState>>, Json(c): Json<ChatControl>) -> Response {
    chat.update_faults(&c.session_id, |f| {
        if c.drop_after_frames.is_some() {
            f.drop_after_frames = c.drop_after_frames;
        }
        if let Some(r) = c.reject_next_token {
            f.reject_next_token = r;
        }
        if let Some(d) = c.reply_delay_ms {
            f.reply_delay_ms = d;
        }
        if let Some(p) = c.drop_probability {
            f.drop_probability = p;
        }
        if let Some(p) = c.reject_probability {
            f.reject_probability = p;
        }
        if let Some(d) = c.reply_delay_max_ms {
            f.reply_delay_max_ms = d;
        }
        if let Some(seed) = c.fault_seed {
            f.rng = Some(Rng::new(seed));
        }
    });
    StatusCode::NO_CONTENT.into_response()
}
