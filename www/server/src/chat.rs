//! The chat WebSockets: `/ws/chat` (token-per-message) and `/bedrock-chat/ws` (auth-handshake),
//! with acknowledgements, de-duplication by `message_id`, fault switches and counters per chat
//! `session_id`, so tests can prove nothing was lost, duplicated or sent with a stale token.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
    /// Messages received again with a `message_id` already accepted, except those in
    /// `resent_after_drop`: the client re-sent a message whose ack it had received.
    pub duplicates: u64,
    /// Messages received again whose first copy was accepted and acked on a connection the server
    /// dropped on purpose (no close frame) within `ACK_LOSS_WINDOW_MS` of it: that ack may have
    /// died with the connection. A drop with frames still unread on the server's socket closes it
    /// with a TCP reset, and the reset discards whatever the browser had not yet read from its own
    /// socket, the ack included. Re-sending it is the at-least-once contract, and the server
    /// deduplicates it by id. (Firefox 153 showed it in `a_url_token_is_fresh_on_every_reconnect_across_refreshes`:
    /// message ids acked, then their connection dropped 0 ms later, re-sent on the next connection.)
    pub resent_after_drop: u64,
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
    /// Handshake route, by the server's session id: `connection_established` sent with it.
    pub established: u64,
    /// ... of which resumed it (`?session_id=` on the connect URL).
    pub resumed: u64,
    /// `logout` frames handled (credentials cleared, `logout_success` sent).
    pub logouts: u64,
    /// `auth_expired` sent (SSO session ended by the `expire_sso` switch).
    pub auths_expired: u64,
    /// `typing` frames sent before replies (handshake route).
    pub typing: u64,
    /// Agent route, by its `tag`: upgrades whose URL token was accepted.
    pub url_connects: u64,
    /// ... refused (close 4001) because the URL token had expired.
    pub url_refused_stale: u64,
    /// ... refused because the URL token was missing or not ours.
    pub url_refused_bad: u64,
    /// `pong` frames received (answers to the agent route's pings).
    pub pongs: u64,
    /// Agent route upgrades whose token came in `Sec-WebSocket-Protocol: bearer, <token>`.
    pub header_tokens: u64,
    /// The accepted messages' text, in arrival order.
    pub messages: Vec<String>,
    /// Accepted message ids: the connection that accepted each, and when.
    #[serde(skip)]
    ids: HashMap<String, (u64, Instant)>,
    /// Connections dropped on purpose, and when.
    #[serde(skip)]
    dropped: HashMap<u64, Instant>,
}

/// How long after a message's ack a drop of its connection may have lost that ack (see
/// `ChatStats::resent_after_drop`).
const ACK_LOSS_WINDOW_MS: u128 = 1_000;

/// Numbers the chat connections (for `ChatStats::ids`).
static CONNECTIONS: AtomicU64 = AtomicU64::new(0);

/// Fault switches for one chat session id.
#[derive(Debug, Default, Clone)]
struct Faults {
    drop_after_frames: Option<u64>,
    reject_next_token: bool,
    reply_delay_ms: u64,
    drop_probability: f64,
    reject_probability: f64,
    reply_delay_max_ms: u64,
    /// The next chat frame of an SSO-authenticated connection finds its SSO session gone.
    expire_sso: bool,
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
/// The SSO session token `sso` accepts (the real server reads it from the frame or its cookie).
pub const SSO_SESSION_TOKEN: &str = "sso-authwire-demo";
/// The agent route (SlarOps' `/ws/chat`): the token in the URL at the upgrade, then on every frame.
pub const AGENT_PATH: &str = "/agent/ws/chat";

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

#[derive(Deserialize)]
pub struct BedrockQuery {
    session_id: Option<String>,
}

fn new_session_id(prefix: &str) -> String {
    format!("{prefix}-{}", crate::util::random_token(8))
}

/// `GET /bedrock-chat/ws[?session_id=]`: auth-handshake, as autolangchat runs it: a
/// `connection_established` with the server's session id first (the one asked for resumes).
pub async fn ws_bedrock(
    State(tokens): State<Arc<Tokens>>,
    State(chat): State<Arc<ChatState>>,
    Query(q): Query<BedrockQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let resumed = q.session_id.filter(|s| !s.is_empty() && s.len() <= 128);
    let server_sid = resumed.clone().unwrap_or_else(|| new_session_id("bc"));
    chat.stat(&server_sid, |s| {
        s.established += 1;
        if resumed.is_some() {
            s.resumed += 1;
        }
    });
    ws.on_upgrade(move |socket| run(tokens, chat, socket, Mode::Handshake { server_sid }))
}

#[derive(Deserialize)]
pub struct AgentQuery {
    token: Option<String>,
    tag: Option<String>,
}

/// `GET /agent/ws/chat?token=[&tag=]`: the agent server (SlarOps): the token in the URL is checked
/// at the upgrade (refused: close 4001 "Unauthorized"), then `session_created`, a `ping`, and the
/// per-frame token of token-per-message; `session_init` after the first prompt. `tag` keys the
/// URL-token counters for tests. The token may come as `Sec-WebSocket-Protocol: bearer, <token>`
/// instead (the server selects `bearer`), as some servers read it.
pub async fn ws_agent(
    State(tokens): State<Arc<Tokens>>,
    State(chat): State<Arc<ChatState>>,
    Query(q): Query<AgentQuery>,
    headers: axum::http::HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let tag = q.tag.unwrap_or_else(|| "agent".into());
    let offered = headers
        .get("sec-websocket-protocol")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let mut offered = offered.split(',').map(str::trim);
    let header_token = match (offered.next(), offered.next()) {
        (Some("bearer"), Some(t)) => Some(t.to_owned()),
        _ => None,
    };
    if header_token.is_some() {
        chat.stat(&tag, |s| s.header_tokens += 1);
    }
    let ws = ws.protocols(["bearer"]);
    let verdict = match q.token.or(header_token).as_deref().map(|t| tokens.verify(t)) {
        Some(Ok(_)) => Ok(()),
        Some(Err(Invalid::Expired)) => Err(true),
        _ => Err(false),
    };
    match verdict {
        Ok(()) => chat.stat(&tag, |s| s.url_connects += 1),
        Err(true) => {
            println!("[chat] agent {tag}: STALE URL token refused (4001)");
            chat.stat(&tag, |s| s.url_refused_stale += 1)
        }
        Err(false) => chat.stat(&tag, |s| s.url_refused_bad += 1),
    }
    ws.on_upgrade(move |mut socket| async move {
        if verdict.is_err() {
            // Starlette closes before accepting (uvicorn answers 403, a browser sees 1006); this
            // emulation accepts and closes with the code the server names, so the client sees 4001.
            let _ = socket
                .send(Message::Close(Some(CloseFrame {
                    code: 4001,
                    reason: Utf8Bytes::from_static("Unauthorized"),
                })))
                .await;
            return;
        }
        let server_sid = new_session_id("ag");
        run(
            tokens,
            chat,
            socket,
            Mode::Agent {
                field: "auth_token".into(),
                server_sid,
                tag,
            },
        )
        .await
    })
}

enum Mode {
    PerMessage {
        field: String,
    },
    Agent {
        field: String,
        server_sid: String,
        tag: String,
    },
    Handshake {
        server_sid: String,
    },
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
    /// Who the credentials name (`display_name` of `auth_configured`).
    display_name: Option<String>,
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
    let conn = CONNECTIONS.fetch_add(1, Ordering::Relaxed);
    let mut seen_sessions: HashSet<String> = HashSet::new();
    let mut authed: Option<Authed> = None;
    let mut session_init_sent = false;
    match &mode {
        Mode::Handshake { server_sid } => {
            let _ = tx.send(text(
                json!({"type": "connection_established", "session_id": server_sid, "message": "Connected"}),
            ));
        }
        Mode::Agent { server_sid, .. } => {
            let _ = tx.send(text(json!({"type": "session_created", "session_id": server_sid,
                "message": "WebSocket session established. Use this session_id for interrupts."})));
            // SlarOps' heartbeat pings; the client's pong is read and dropped before anything else.
            let _ = tx.send(text(json!({"type": "ping", "timestamp": now_s()})));
        }
        Mode::PerMessage { .. } => {}
    }
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
        let kind = frame.get("type").and_then(Value::as_str).unwrap_or("");
        if let Mode::Agent { tag, .. } = &mode {
            if kind == "pong" {
                chat.stat(tag, |s| s.pongs += 1);
                continue;
            }
        }
        if let Mode::Handshake { server_sid } = &mode {
            // autolangchat answers these whatever the credentials.
            match kind {
                "ping" => {
                    chat.stat(server_sid, |s| s.pings += 1);
                    let _ = tx.send(text(json!({"type": "pong", "timestamp": now_s()})));
                    continue;
                }
                "logout" => {
                    authed = None;
                    chat.stat(server_sid, |s| s.logouts += 1);
                    println!("[chat] session={server_sid}: logged out (credentials cleared)");
                    let _ = tx.send(text(
                        json!({"type": "logout_success", "message": "Successfully logged out"}),
                    ));
                    continue;
                }
                _ => {}
            }
        }
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
            chat.stat(&sid, |s| {
                s.forced_drops += 1;
                s.dropped.insert(conn, Instant::now());
            });
            if !random_drop {
                println!("[chat] session={sid}: dropping the connection on purpose");
            }
            break; // no close frame: the client sees an abnormal closure (1006)
        }
        let reject = |code: &'static str| {
            let _ = tx.send(text(
                json!({"type": "error", "code": code, "message": "token rejected", "message_id": message_id}),
            ));
            let _ = tx.send(Out::Close(4001, "token rejected"));
        };
        // The token check, per protocol.
        let token_ok = match &mode {
            Mode::PerMessage { field } | Mode::Agent { field, .. } => {
                match frame.get(field.as_str()).and_then(Value::as_str) {
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
                }
            }
            Mode::Handshake { .. } if kind == "auth" => {
                // A new auth frame replaces the credentials; a failed one leaves the old ones.
                match check_handshake(&app, &frame) {
                    Ok(a) => {
                        chat.stat(&sid, |s| s.auths_ok += 1);
                        let mut reply = json!({"type": "auth_configured", "auth_type": a.auth_type,
                            "message": format!("Authentication configured: {}", a.auth_type)});
                        // This server verifies (like a configured verification endpoint): it names the user.
                        if let Some(name) = &a.display_name {
                            reply["display_name"] = json!(name);
                            reply["message"] = json!(format!("Authenticated as {name}"));
                        }
                        let _ = tx.send(text(reply));
                        authed = Some(a);
                    }
                    Err(HandshakeError::Missing(why)) => {
                        // autolangchat: a plain error with no code; the connection stays.
                        println!("[chat] session={sid}: auth frame incomplete: {why}");
                        let _ = tx.send(text(json!({"type": "error", "message": why})));
                    }
                    Err(HandshakeError::Failed(why)) => {
                        chat.stat(&sid, |s| s.auths_failed += 1);
                        println!("[chat] session={sid}: handshake refused: {why}");
                        let auth_type = frame.get("auth_type").and_then(Value::as_str).unwrap_or("bearer_token");
                        let _ = tx.send(text(
                            json!({"type": "auth_failed", "message": why, "auth_type": auth_type}),
                        ));
                    }
                }
                continue;
            }
            Mode::Handshake { .. } => match &authed {
                None => {
                    let _ = tx.send(text(json!({"type": "error",
                        "message": "Authentication is required before sending messages. Please authenticate first."})));
                    continue;
                }
                Some(a) if a.auth_type == "sso" && faults.expire_sso => {
                    chat.update_faults(&sid, |f| f.expire_sso = false);
                    chat.stat(&sid, |s| s.auths_expired += 1);
                    authed = None;
                    let _ = tx.send(text(json!({"type": "auth_expired",
                        "message": "Your SSO session has expired. Please log in again.",
                        "redirect_url": "/bedrock-chat/auth/sso/login"})));
                    continue;
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
            // Token-per-message routes: the heartbeat ping, stamped like any frame.
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
                if let Some(&(first_conn, first_at)) = s.ids.get(id) {
                    duplicate = true;
                    let dropped_after = s
                        .dropped
                        .get(&first_conn)
                        .map(|d| d.duration_since(first_at).as_millis());
                    if dropped_after.is_some_and(|ms| ms < ACK_LOSS_WINDOW_MS) {
                        s.resent_after_drop += 1;
                    } else {
                        s.duplicates += 1;
                    }
                    println!(
                        "[chat] session={sid}: message {id} again (first accepted on connection {first_conn}, {})",
                        match dropped_after {
                            Some(ms) => format!("dropped on purpose {ms} ms later"),
                            None => "not dropped".to_owned(),
                        }
                    );
                    return;
                }
                s.ids.insert(id.clone(), (conn, Instant::now()));
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
        if let Mode::Agent { server_sid, .. } = &mode {
            if !session_init_sent {
                session_init_sent = true;
                let _ = tx.send(text(json!({"type": "session_init", "session_id": server_sid,
                    "conversation_id": new_session_id("conv")})));
            }
        }
        if matches!(mode, Mode::Handshake { .. }) {
            chat.stat(&sid, |s| s.typing += 1);
            let _ = tx.send(text(json!({"type": "typing", "message": "AI is thinking..."})));
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

/// Why an auth frame did not configure credentials.
enum HandshakeError {
    /// A required field is missing: autolangchat's plain `{ type: "error", message }`.
    Missing(&'static str),
    /// Verification failed: `{ type: "auth_failed" }`.
    Failed(&'static str),
}

fn check_handshake(app: &Tokens, f: &Value) -> Result<Authed, HandshakeError> {
    use HandshakeError::{Failed, Missing};
    let auth_type = f
        .get("auth_type")
        .and_then(Value::as_str)
        .unwrap_or("bearer_token")
        .to_ascii_lowercase();
    let mut token_exp = None;
    let display_name;
    match auth_type.as_str() {
        "bearer_token" => {
            let tok = s(f, "token").ok_or(Missing("Bearer token required"))?;
            let claims = app.verify(tok).map_err(|e| {
                Failed(if e == Invalid::Expired {
                    "token expired"
                } else {
                    "invalid token"
                })
            })?;
            token_exp = claims.get("exp").and_then(Value::as_u64);
            display_name = claims.get("email").and_then(Value::as_str).map(str::to_owned);
        }
        "basic_auth" => {
            if s(f, "username").is_none() || s(f, "password").is_none() {
                return Err(Missing("Username and password required for basic auth"));
            }
            if s(f, "username") != Some(BASIC_USER) || s(f, "password") != Some(BASIC_PASSWORD) {
                return Err(Failed("wrong username or password"));
            }
            display_name = Some(BASIC_USER.to_owned());
        }
        "api_key" => {
            if s(f, "api_key").is_none() {
                return Err(Missing("API key required"));
            }
            if s(f, "api_key") != Some(API_KEY) {
                return Err(Failed("wrong api_key"));
            }
            if f.get("api_key_header")
                .is_some_and(|h| h.as_str().is_none_or(str::is_empty))
            {
                return Err(Failed("api_key_header must be a header name"));
            }
            display_name = Some("api-key-client".to_owned());
        }
        "oauth2" | "oauth2_client_credentials" => {
            if s(f, "client_id").is_none() || s(f, "client_secret").is_none() || s(f, "token_url").is_none() {
                return Err(Missing("client_id, client_secret, and token_url required for OAuth2"));
            }
            // The real server fetches a token from token_url with these; the emulation knows one client.
            if s(f, "client_id") != Some(OAUTH_CLIENT_ID) || s(f, "client_secret") != Some(OAUTH_CLIENT_SECRET) {
                return Err(Failed("wrong oauth2 client"));
            }
            display_name = Some(OAUTH_CLIENT_ID.to_owned());
        }
        "sso" => {
            let token = s(f, "session_token").ok_or(Missing("session_token required for SSO auth"))?;
            if token != SSO_SESSION_TOKEN {
                return Err(Failed("invalid SSO session"));
            }
            display_name = Some("sso-user".to_owned());
        }
        "custom" => {
            let ok = f
                .get("custom_headers")
                .and_then(|h| h.get(CUSTOM_HEADER.0))
                .and_then(Value::as_str)
                == Some(CUSTOM_HEADER.1);
            if !ok {
                return Err(Failed("custom_headers lack the expected header"));
            }
            display_name = Some("custom-client".to_owned());
        }
        _ => return Err(Missing("Unknown auth type")),
    }
    Ok(Authed {
        auth_type,
        token_exp,
        display_name,
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
    expire_sso: Option<bool>,
}

/// `POST /__test/chat-control {session_id, drop_after_frames?, reject_next_token?, reply_delay_ms?,
/// drop_probability?, reject_probability?, reply_delay_max_ms?, fault_seed?, expire_sso?}`
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
        if let Some(e) = c.expire_sso {
            f.expire_sso = e;
        }
        if let Some(seed) = c.fault_seed {
            f.rng = Some(Rng::new(seed));
        }
    });
    StatusCode::NO_CONTENT.into_response()
}
