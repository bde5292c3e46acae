//! The chat socket state machine: connection events, server frames, token changes and app calls
//! in; connect, write, ping, ask for a token, set a timer out. Generic over the payload `P` the
//! shell queues (a JS value in the browser, a string in tests).
//!
//! Guarantees it keeps:
//! - a chat frame is stamped when it is written, never when queued, and written only while the
//!   token is usable (the shell passes `token_ok` with every input); otherwise it waits;
//! - frames go out in `send()` order; in ack mode every unacknowledged frame is re-sent, with its
//!   `message_id`, after a reconnect, so a server that de-duplicates by id sees each exactly once;
//! - a token rejection forces one refresh, then reconnects at once; repeated rejections right
//!   after fresh tokens close the socket (`auth_rejected`) instead of looping;
//! - reconnects back off with jitter, reset after a healthy open; none after `close()` or sign-out;
//! - with a connect-time token (`connect_token`), a connection is only opened with a token usable
//!   for the transit margin at that moment, on every connect and reconnect (never a cached one);
//! - credentials the SDK does not own (handshake types other than `bearer_token`) are never
//!   refreshed or retried: `auth_failed` / `auth_expired` become events and a coded close.

use std::collections::VecDeque;

use super::error::Code;
use super::policy::{Backoff, Rng, Timer};
use super::protocol::{classify, AuthType, Incoming, Meaning, Protocol, AUTH_CLOSE_CODES};
use super::text;

/// What `getSnapshot().status` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Created, not started.
    Idle,
    /// Opening the WebSocket.
    Connecting,
    /// Open; the handshake auth frame is sent and `auth_configured` awaited.
    Authenticating,
    /// Ready: frames flow.
    Open,
    /// Waiting to reconnect (backoff, or the refresh after a rejection).
    Reconnecting,
    /// Closed for good (`close()`, sign-out, too many rejections, retries exhausted).
    Closed,
}

impl Status {
    /// The string JS sees.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Idle => "idle",
            Status::Connecting => "connecting",
            Status::Authenticating => "authenticating",
            Status::Open => "open",
            Status::Reconnecting => "reconnecting",
            Status::Closed => "closed",
        }
    }
}

/// Settings of one socket.
#[derive(Debug, Clone)]
pub struct Config {
    /// Which protocol.
    pub protocol: Protocol,
    /// The handshake's auth type (ignored for token-per-message).
    pub auth_type: AuthType,
    /// Ask the server to acknowledge each frame by `message_id`.
    pub ack: bool,
    /// Most frames held (queued plus unacknowledged); `send()` beyond it fails with `queue_full`.
    pub max_queued: usize,
    /// Reconnect backoff; `None` never reconnects.
    pub reconnect: Option<Backoff>,
    /// Most reconnect attempts in a row; `None` is unlimited.
    pub max_retries: Option<u32>,
    /// Ping period; 0 disables the heartbeat.
    pub heartbeat_ms: u64,
    /// How long opening (and the handshake) may take before the attempt is abandoned.
    pub connect_timeout_ms: u64,
    /// An open lasting this long resets the reconnect backoff.
    pub healthy_after_ms: u64,
    /// Token rejections in a row (each after a fresh refresh) before giving up.
    pub max_auth_rejections: u32,
    /// Prefix of generated message ids (unique per socket).
    pub client_id: String,
    /// Jitter seed.
    pub seed: u64,
    /// The chat session id stamped on frames (`sessionId`), until a server frame or the app changes it.
    pub session_id: Option<String>,
    /// Frame types whose session id field the socket adopts (`sessionIdFrom`); empty: never.
    pub session_from: Vec<String>,
    /// Connect URLs carry `?session_id=` when the socket has one (`resumeSession`).
    pub resume: bool,
    /// `sessionIdField`: the field of a server frame the session id is read from.
    pub session_field: String,
    /// Where the token goes at connect time (`connectToken`, opt-in): the socket then connects
    /// only with a token usable for the transit margin, read at that moment.
    pub connect_token: Option<TokenPlace>,
    /// Answer a server's `{ type: "ping" }` with `{ type: "pong" }` (else it is only passed on).
    pub answer_pings: bool,
}

impl Config {
    /// Defaults in the range of reconnecting-websocket and realtime-js.
    pub fn new(protocol: Protocol, client_id: String, seed: u64) -> Self {
        Config {
            protocol,
            auth_type: AuthType::BearerToken,
            ack: false,
            max_queued: 1_000,
            reconnect: Some(Backoff {
                base_ms: 1_000,
                factor_pct: 130,
                max_ms: 10_000,
            }),
            max_retries: None,
            heartbeat_ms: 0,
            connect_timeout_ms: 10_000,
            healthy_after_ms: 5_000,
            max_auth_rejections: 3,
            client_id,
            seed,
            session_id: None,
            session_from: Vec::new(),
            resume: false,
            session_field: "session_id".to_owned(),
            connect_token: None,
            answer_pings: true,
        }
    }
}

/// Where a connect-time token goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenPlace {
    /// The connect URL's query parameter of this name.
    Query(String),
    /// `Sec-WebSocket-Protocol` as `[name, token]` (the server selects `name`).
    Protocol(String),
}

/// What the socket tells the app through `onEvent` (besides the snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketEvent {
    /// The server refused the handshake credentials (`auth_failed`).
    AuthFailed,
    /// The server cleared the credentials (`auth_expired`).
    AuthExpired,
    /// The socket sent `logout` (on `logout()` or the session's sign-out).
    LoggedOut,
    /// The socket adopted a session id from a server frame.
    SessionId,
}

impl SocketEvent {
    /// The event's `type` in JS.
    pub fn as_str(self) -> &'static str {
        match self {
            SocketEvent::AuthFailed => "auth_failed",
            SocketEvent::AuthExpired => "auth_expired",
            SocketEvent::LoggedOut => "logged_out",
            SocketEvent::SessionId => "session_id",
        }
    }
}

/// A chat frame on its way.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame<P> {
    /// Order of `send()` calls.
    pub seq: u64,
    /// The id the server acknowledges (ack mode), or the one the app put in its message.
    pub message_id: Option<String>,
    /// The app's message.
    pub payload: P,
}

/// Inputs besides `send()`.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Begin connecting.
    Start,
    /// The WebSocket opened.
    Opened,
    /// A frame arrived (the fields the core classifies by).
    Received(Incoming),
    /// The WebSocket closed (not by us) with this code.
    Closed(u16),
    /// The timer fired.
    Timer,
    /// The browser came back online: reconnect now if waiting.
    Online,
    /// The AuthSession has a new token (refreshed or signed in).
    TokenChanged,
    /// A refresh failed (the session is still there and keeps trying while this socket waits).
    RefreshFailed(Code),
    /// The session answered the socket's need with a failure: no token will come without an app
    /// action (a new session). The socket stops waiting and records the code.
    TokenUnavailable(Code),
    /// The AuthSession signed out: stop for good.
    SessionEnded,
    /// `close()`.
    Close,
    /// `logout()`: sign the handshake out on the server (`{ type: "logout" }`), then close.
    Logout,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action<P> {
    /// Open a new WebSocket.
    Connect,
    /// Close the current WebSocket with this code and forget it (no events from it arrive afterwards).
    Disconnect(u16),
    /// Write the handshake's auth frame (with the current token for `bearer_token`).
    WriteAuth,
    /// Stamp and write this chat frame.
    Write(Frame<P>),
    /// Write a heartbeat ping.
    Ping,
    /// Answer the server's ping: `{ type: "pong" }`, never stamped.
    Pong,
    /// Write the handshake protocol's `{ type: "logout" }`.
    WriteLogout,
    /// Tell the app (`onEvent`); the shell adds the server frame that caused it, if any.
    Emit(SocketEvent),
    /// Get a usable token from the AuthSession (refreshing if needed); report `TokenChanged`, or
    /// `TokenUnavailable` when the session answers that none can come. The need stays registered
    /// with the session (which keeps retrying for it) until a token arrives or `ReleaseToken`.
    NeedToken,
    /// The socket no longer waits for a token (closed): withdraw its need from the session.
    ReleaseToken,
    /// The server rejected the token: force a refresh; report `TokenChanged` or `RefreshFailed`.
    ForceRefresh,
    /// (Re)arm the timer.
    WakeAt(u64),
    /// Disarm the timer.
    CancelWake,
    /// The snapshot changed.
    Changed,
}

/// The chat socket state machine.
#[derive(Debug)]
pub struct SocketMachine<P> {
    cfg: Config,
    rng: Rng,
    status: Status,
    live: bool,
    queue: VecDeque<Frame<P>>,
    unacked: VecDeque<Frame<P>>,
    recent: VecDeque<Frame<P>>,
    seq: u64,
    attempts: u32,
    opened_at: Option<u64>,
    reconnect_at: u64,
    deadline: u64,
    last_rx: u64,
    next_ping: u64,
    awaiting_refresh: bool,
    waiting_token: bool,
    auth_written: bool,
    rejections: u32,
    ever_opened: bool,
    pending_connect: bool,
    session_id: Option<String>,
    timer: Timer,
    /// Frames written (re-sends included).
    pub sent: u64,
    /// Frames received.
    pub received: u64,
    /// Frames acknowledged.
    pub acked: u64,
    /// Successful re-opens after the first.
    pub reconnects: u64,
    /// The last problem.
    pub last_error: Option<Code>,
}

/// How many frames with an id are remembered (without acks) so a rejection naming one can re-send it.
const RECENT: usize = 64;

impl<P: Clone> SocketMachine<P> {
    /// A machine in `Idle`.
    pub fn new(cfg: Config) -> Self {
        let rng = Rng::new(cfg.seed);
        let session_id = cfg.session_id.clone();
        SocketMachine {
            cfg,
            rng,
            status: Status::Idle,
            live: false,
            queue: VecDeque::new(),
            unacked: VecDeque::new(),
            recent: VecDeque::new(),
            seq: 0,
            attempts: 0,
            opened_at: None,
            reconnect_at: 0,
            deadline: 0,
            last_rx: 0,
            next_ping: 0,
            awaiting_refresh: false,
            waiting_token: false,
            auth_written: false,
            rejections: 0,
            ever_opened: false,
            pending_connect: false,
            session_id,
            timer: Timer::default(),
            sent: 0,
            received: 0,
            acked: 0,
            reconnects: 0,
            last_error: None,
        }
    }

    /// The status.
    pub fn status(&self) -> Status {
        self.status
    }
    /// Frames waiting to be written.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
    /// Frames written and not yet acknowledged (ack mode).
    pub fn unacked(&self) -> usize {
        self.unacked.len()
    }
    /// The settings.
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    /// The chat session id stamped on frames.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }
    /// `setSessionId()`: the app manages the session id (`None` removes it).
    pub fn set_session_id(&mut self, id: Option<String>, out: &mut Vec<Action<P>>) {
        if self.session_id != id {
            self.session_id = id;
            out.push(Action::Changed);
        }
    }
    /// What the connection being opened carries: the session id to resume in its URL (with
    /// `resume`), and where the token goes (with `connect_token`; the machine only connects when
    /// the token is usable).
    pub fn connect_query(&self) -> (Option<&str>, Option<&TokenPlace>) {
        let resume = if self.cfg.resume { self.session_id() } else { None };
        (resume, self.cfg.connect_token.as_ref())
    }
    /// The field of a server frame a session id would be adopted from, when adoption is on.
    pub fn session_field(&self) -> Option<&str> {
        (!self.cfg.session_from.is_empty()).then_some(self.cfg.session_field.as_str())
    }
    /// When the timer should fire, if armed.
    pub fn wake_at(&self) -> Option<u64> {
        self.timer.at()
    }

    fn writable(&self) -> bool {
        self.status == Status::Open
    }

    fn needs_token_per_frame(&self) -> bool {
        self.cfg.protocol == Protocol::TokenPerMessage
    }

    /// `send()`: queues (or writes at once) a message; `user_id` is a `message_id` the app set.
    pub fn send(
        &mut self,
        now: u64,
        payload: P,
        user_id: Option<String>,
        token_ok: bool,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), Code> {
        if self.status == Status::Closed {
            return Err(Code::SocketClosed);
        }
        if self.queue.len() + self.unacked.len() >= self.cfg.max_queued {
            return Err(Code::QueueFull);
        }
        self.seq += 1;
        let message_id = if self.cfg.ack {
            Some(text::cat(&[&self.cfg.client_id, "-", &text::dec(self.seq)]))
        } else {
            user_id
        };
        let frame = Frame {
            seq: self.seq,
            message_id,
            payload,
        };
        if self.writable() && self.queue.is_empty() && (token_ok || !self.needs_token_per_frame()) {
            self.write(frame, out);
        } else {
            self.queue.push_back(frame);
            self.flush(token_ok, out);
        }
        out.push(Action::Changed);
        let _ = now;
        Ok(())
    }

    /// Whether a plain message (no `message_id`) may be written at once by the shell's fast path,
    /// given a usable token: open, nothing queued, no acks, token-per-message. The shell then calls
    /// [`SocketMachine::wrote_fast`]; anything else goes through [`SocketMachine::send`].
    pub fn fast_path_open(&self) -> bool {
        self.writable() && self.queue.is_empty() && !self.cfg.ack && self.needs_token_per_frame()
    }

    /// Counts a frame written by the fast path (what `send` + `Write` would have done).
    pub fn wrote_fast(&mut self) {
        self.seq += 1;
        self.sent += 1;
    }

    fn write(&mut self, frame: Frame<P>, out: &mut Vec<Action<P>>) {
        self.sent += 1;
        if self.cfg.ack {
            self.unacked.push_back(frame.clone());
        } else if frame.message_id.is_some() {
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(frame.clone());
        }
        out.push(Action::Write(frame));
    }

    fn flush(&mut self, token_ok: bool, out: &mut Vec<Action<P>>) {
        if !self.writable() || self.queue.is_empty() {
            return;
        }
        if self.needs_token_per_frame() && !token_ok {
            if !self.waiting_token {
                self.waiting_token = true;
                out.push(Action::NeedToken);
            }
            return;
        }
        self.stop_waiting(out);
        while let Some(f) = self.queue.pop_front() {
            self.write(f, out);
        }
    }

    fn set_status(&mut self, s: Status, out: &mut Vec<Action<P>>) {
        if self.status != s {
            self.status = s;
            out.push(Action::Changed);
        }
    }

    fn connect(&mut self, now: u64, token_ok: bool, out: &mut Vec<Action<P>>) {
        self.deadline = now.saturating_add(self.cfg.connect_timeout_ms);
        if self.cfg.connect_token.is_some() && !token_ok {
            // The token goes into the URL: wait for one usable for the transit margin, never
            // connect with a cached one (the deadline still holds).
            self.pending_connect = true;
            self.set_status(Status::Connecting, out);
            if !self.waiting_token {
                self.waiting_token = true;
                out.push(Action::NeedToken);
            }
            return;
        }
        self.pending_connect = false;
        self.stop_waiting(out);
        self.live = true;
        self.auth_written = false;
        self.recent.clear();
        self.set_status(Status::Connecting, out);
        out.push(Action::Connect);
    }

    fn drop_connection(&mut self, code: u16, out: &mut Vec<Action<P>>) {
        if self.live {
            self.live = false;
            out.push(Action::Disconnect(code));
        }
        // Unacknowledged frames go back to the front of the queue, in order, with their ids.
        while let Some(f) = self.unacked.pop_back() {
            self.queue.push_front(f);
        }
    }

    fn send_auth(&mut self, token_ok: bool, out: &mut Vec<Action<P>>) {
        if self.cfg.auth_type.uses_token() && !token_ok {
            if !self.waiting_token {
                self.waiting_token = true;
                out.push(Action::NeedToken);
            }
            return;
        }
        self.stop_waiting(out);
        self.auth_written = true;
        out.push(Action::WriteAuth);
    }

    /// The token came (or is not needed any more): withdraw the need registered with the session.
    fn stop_waiting(&mut self, out: &mut Vec<Action<P>>) {
        if self.waiting_token {
            self.waiting_token = false;
            out.push(Action::ReleaseToken);
        }
    }

    fn became_open(&mut self, now: u64, token_ok: bool, out: &mut Vec<Action<P>>) {
        self.set_status(Status::Open, out);
        self.next_ping = now.saturating_add(self.cfg.heartbeat_ms);
        self.flush(token_ok, out);
    }

    fn schedule_reconnect(&mut self, now: u64, code: Code, out: &mut Vec<Action<P>>) {
        self.last_error = Some(code);
        if self
            .opened_at
            .take()
            .is_some_and(|t| now.saturating_sub(t) >= self.cfg.healthy_after_ms)
        {
            self.attempts = 0;
        }
        let Some(backoff) = self.cfg.reconnect else {
            self.finish(None, out);
            return;
        };
        self.attempts = self.attempts.saturating_add(1);
        if self.cfg.max_retries.is_some_and(|m| self.attempts > m) {
            self.finish(Some(Code::RetriesExhausted), out);
            return;
        }
        self.reconnect_at = now.saturating_add(backoff.delay_ms(self.attempts, self.rng.next_u32()));
        self.set_status(Status::Reconnecting, out);
    }

    fn finish(&mut self, code: Option<Code>, out: &mut Vec<Action<P>>) {
        self.drop_connection(1000, out);
        self.stop_waiting(out);
        if code.is_some() {
            self.last_error = code;
        }
        self.awaiting_refresh = false;
        self.pending_connect = false;
        self.set_status(Status::Closed, out);
        out.push(Action::Changed);
    }

    fn rejected(&mut self, now: u64, named: Option<String>, out: &mut Vec<Action<P>>) {
        if !self.cfg.ack {
            // Without acks, re-send the frame the server named and everything written after it
            // (the server closes on a rejection, so those were not processed either).
            if let Some(pos) = named.and_then(|id| {
                self.recent
                    .iter()
                    .position(|f| f.message_id.as_deref() == Some(id.as_str()))
            }) {
                let again: Vec<Frame<P>> = self.recent.drain(pos..).collect();
                for f in again.into_iter().rev() {
                    self.queue.push_front(f);
                }
            }
        }
        if self.awaiting_refresh || self.status == Status::Closed {
            return;
        }
        self.drop_connection(4000, out);
        self.opened_at = None;
        self.last_error = Some(Code::AuthRejected);
        self.rejections += 1;
        if self.rejections > self.cfg.max_auth_rejections {
            self.finish(Some(Code::AuthRejected), out);
            return;
        }
        self.awaiting_refresh = true;
        self.set_status(Status::Reconnecting, out);
        out.push(Action::ForceRefresh);
        let _ = now;
    }

    /// Whether the handshake's credentials are the session's token (refreshed by the SDK); always
    /// so in token-per-message.
    fn sdk_owns_credentials(&self) -> bool {
        self.cfg.protocol == Protocol::TokenPerMessage || self.cfg.auth_type.uses_token()
    }

    /// Takes the session id of a frame whose type the app named (`sessionIdFrom`).
    fn adopt_session(&mut self, frame: &Incoming, out: &mut Vec<Action<P>>) {
        let (Some(kind), Some(id)) = (&frame.kind, &frame.session) else {
            return;
        };
        if id.is_empty() || self.session_id.as_deref() == Some(id.as_str()) {
            return;
        }
        if self.cfg.session_from.iter().any(|t| t == kind) {
            self.session_id = Some(id.clone());
            out.push(Action::Emit(SocketEvent::SessionId));
        }
    }

    /// Signs the handshake out on the server when one is configured on the open connection:
    /// `{ type: "logout" }` goes out before the close (same ordered stream).
    fn logout(&mut self, out: &mut Vec<Action<P>>) {
        if self.cfg.protocol == Protocol::AuthHandshake && self.live && self.auth_written {
            out.push(Action::WriteLogout);
            out.push(Action::Emit(SocketEvent::LoggedOut));
        }
    }

    /// Feeds one input. `token_ok`: the AuthSession's token is usable now.
    pub fn handle(&mut self, now: u64, input: Input, token_ok: bool, out: &mut Vec<Action<P>>) {
        if self.status == Status::Closed {
            return;
        }
        match input {
            Input::Start => {
                if self.status == Status::Idle {
                    self.connect(now, token_ok, out);
                }
            }
            Input::Opened => {
                if self.status != Status::Connecting {
                    return;
                }
                self.opened_at = Some(now);
                self.last_rx = now;
                if self.ever_opened {
                    self.reconnects += 1;
                }
                self.ever_opened = true;
                if self.cfg.protocol == Protocol::AuthHandshake {
                    self.set_status(Status::Authenticating, out);
                    self.send_auth(token_ok, out);
                } else {
                    self.became_open(now, token_ok, out);
                }
            }
            Input::Received(frame) => {
                self.received += 1;
                self.last_rx = now;
                out.push(Action::Changed);
                self.adopt_session(&frame, out);
                let mut meaning = classify(&frame);
                if meaning == Meaning::Other
                    && self.status == Status::Authenticating
                    && frame.kind.as_deref() == Some("error")
                {
                    // Nothing but the auth frame is out yet: a plain error answers it (autolangchat's
                    // "SSO is not enabled", "Unknown auth type", "Invalid credentials provided").
                    meaning = Meaning::AuthFailed;
                }
                match meaning {
                    Meaning::Ack(id) => {
                        if let Some(pos) = self
                            .unacked
                            .iter()
                            .position(|f| f.message_id.as_deref() == Some(id.as_str()))
                        {
                            self.unacked.remove(pos);
                            self.acked += 1;
                        }
                        self.rejections = 0;
                    }
                    Meaning::AuthConfigured => {
                        if self.status == Status::Authenticating {
                            self.became_open(now, token_ok, out);
                        }
                    }
                    Meaning::AuthRejected(named) => self.rejected(now, named, out),
                    Meaning::AuthFailed | Meaning::AuthExpired => {
                        let expired = classify(&frame) == Meaning::AuthExpired;
                        let (event, code) = if expired {
                            (SocketEvent::AuthExpired, Code::AuthExpired)
                        } else {
                            (SocketEvent::AuthFailed, Code::AuthFailed)
                        };
                        out.push(Action::Emit(event));
                        if self.sdk_owns_credentials() {
                            // The session's token: one forced refresh, then a new connection.
                            self.rejected(now, frame.message_id, out);
                        } else if expired || self.status == Status::Authenticating {
                            // Credentials the app owns: no retry loop. Nothing can flow until the
                            // app supplies new ones (a new socket), so close with the code.
                            self.finish(Some(code), out);
                        } else {
                            // A new auth frame failed mid-connection: the server keeps the old one.
                            self.last_error = Some(code);
                        }
                    }
                    Meaning::LogoutSuccess => out.push(Action::Emit(SocketEvent::LoggedOut)),
                    Meaning::Ping => {
                        if self.cfg.answer_pings && self.live {
                            out.push(Action::Pong);
                        }
                    }
                    Meaning::Other => {
                        if frame.kind.as_deref() != Some("error") {
                            self.rejections = 0;
                        }
                    }
                }
            }
            Input::Closed(code) => {
                if !self.live {
                    return;
                }
                self.live = false;
                self.drop_connection(code, out);
                if AUTH_CLOSE_CODES.contains(&code) {
                    self.rejected(now, None, out);
                } else if self.status != Status::Reconnecting {
                    self.schedule_reconnect(now, Code::ConnectionLost, out);
                }
            }
            Input::Timer => {
                self.timer.fired();
                match self.status {
                    Status::Reconnecting if !self.awaiting_refresh && now >= self.reconnect_at => {
                        self.connect(now, token_ok, out)
                    }
                    Status::Connecting | Status::Authenticating if now >= self.deadline => {
                        self.pending_connect = false;
                        self.stop_waiting(out);
                        self.drop_connection(4000, out);
                        self.schedule_reconnect(now, Code::ConnectionLost, out);
                    }
                    Status::Open if self.cfg.heartbeat_ms > 0 => {
                        if now >= self.last_rx.saturating_add(self.cfg.heartbeat_ms.saturating_mul(2)) {
                            self.drop_connection(4000, out);
                            self.schedule_reconnect(now, Code::HeartbeatTimeout, out);
                        } else if now >= self.next_ping {
                            if token_ok || !self.needs_token_per_frame() {
                                out.push(Action::Ping);
                            }
                            self.next_ping = now.saturating_add(self.cfg.heartbeat_ms);
                        }
                    }
                    _ => {}
                }
            }
            Input::Online => {
                if self.status == Status::Reconnecting && !self.awaiting_refresh {
                    self.connect(now, token_ok, out);
                }
            }
            Input::TokenChanged => {
                self.waiting_token = false;
                if self.awaiting_refresh {
                    self.awaiting_refresh = false;
                    self.connect(now, token_ok, out);
                } else if self.pending_connect {
                    self.connect(now, token_ok, out);
                } else {
                    match self.status {
                        Status::Authenticating if !self.auth_written => self.send_auth(token_ok, out),
                        Status::Open
                            if self.cfg.protocol == Protocol::AuthHandshake && self.cfg.auth_type.uses_token() =>
                        {
                            out.push(Action::WriteAuth)
                        }
                        _ => self.flush(token_ok, out),
                    }
                }
            }
            Input::TokenUnavailable(code) => {
                self.waiting_token = false;
                self.last_error = Some(code);
                out.push(Action::Changed);
            }
            Input::RefreshFailed(code) => {
                if self.waiting_token {
                    self.last_error = Some(code);
                    out.push(Action::Changed);
                }
                if self.awaiting_refresh {
                    self.awaiting_refresh = false;
                    self.schedule_reconnect(now, Code::AuthRejected, out);
                }
            }
            Input::SessionEnded => {
                self.logout(out);
                self.finish(Some(Code::SignedOut), out)
            }
            Input::Close => self.finish(None, out),
            Input::Logout => {
                self.logout(out);
                self.finish(None, out)
            }
        }
        self.schedule(out);
    }

    fn schedule(&mut self, out: &mut Vec<Action<P>>) {
        let next = match self.status {
            Status::Reconnecting if !self.awaiting_refresh => Some(self.reconnect_at),
            Status::Connecting | Status::Authenticating => Some(self.deadline),
            Status::Open if self.cfg.heartbeat_ms > 0 => Some(
                self.next_ping
                    .min(self.last_rx.saturating_add(self.cfg.heartbeat_ms.saturating_mul(2))),
            ),
            _ => None,
        };
        self.timer
            .set(next, out, |at| at.map_or(Action::CancelWake, Action::WakeAt));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type M = SocketMachine<&'static str>;
    type Out = Vec<Action<&'static str>>;

    fn machine(protocol: Protocol, ack: bool) -> M {
        let mut cfg = Config::new(protocol, "c1".into(), 7);
        cfg.ack = ack;
        SocketMachine::new(cfg)
    }

    fn writes(out: &Out) -> Vec<(&'static str, Option<String>)> {
        out.iter()
            .filter_map(|a| match a {
                Action::Write(f) => Some((f.payload, f.message_id.clone())),
                _ => None,
            })
            .collect()
    }

    fn open(m: &mut M, now: u64) -> Out {
        let mut out = vec![];
        m.handle(now, Input::Start, true, &mut out);
        m.handle(now, Input::Opened, true, &mut out);
        out
    }

    #[test]
    fn start_connects_and_open_flushes_in_order() {
        let mut m = machine(Protocol::TokenPerMessage, false);
        let mut out = vec![];
        m.send(0, "a", None, true, &mut out).unwrap();
        m.send(0, "b", None, true, &mut out).unwrap();
        assert!(writes(&out).is_empty(), "idle: queued");
        assert_eq!(m.queued(), 2);
        m.handle(0, Input::Start, true, &mut out);
        assert!(out.contains(&Action::Connect));
        assert_eq!(m.status(), Status::Connecting);
        let mut out = vec![];
        m.handle(5, Input::Opened, true, &mut out);
        assert_eq!(writes(&out), vec![("a", None), ("b", None)]);
        assert_eq!(m.status(), Status::Open);
        let mut out = vec![];
        m.send(6, "c", None, true, &mut out).unwrap();
        assert_eq!(writes(&out), vec![("c", None)], "open and empty queue: written at once");
        assert_eq!(m.sent, 3);
    }

    #[test]
    fn frames_wait_for_a_usable_token_and_ask_for_one_once() {
        let mut m = machine(Protocol::TokenPerMessage, false);
        open(&mut m, 0);
        let mut out = vec![];
        m.send(1, "a", None, false, &mut out).unwrap();
        m.send(1, "b", None, false, &mut out).unwrap();
        assert!(writes(&out).is_empty());
        assert_eq!(out.iter().filter(|a| **a == Action::NeedToken).count(), 1);
        let mut out = vec![];
        m.send(2, "c", None, true, &mut out).unwrap();
        assert_eq!(
            writes(&out),
            vec![("a", None), ("b", None), ("c", None)],
            "order kept once the token is back"
        );
    }

    /// Defect 6: a failed answer to the socket's need left it marked as waiting, so it never asked
    /// again and its queue stalled; the shell wrote `last_error` behind the machine's back.
    #[test]
    fn a_failed_need_is_recorded_by_the_machine_and_the_next_frame_asks_again() {
        let mut m = machine(Protocol::TokenPerMessage, false);
        open(&mut m, 0);
        let mut out = vec![];
        m.send(1, "a", None, false, &mut out).unwrap();
        assert!(out.contains(&Action::NeedToken));
        let mut out = vec![];
        m.handle(2, Input::TokenUnavailable(Code::SessionExpired), false, &mut out);
        assert_eq!(m.last_error, Some(Code::SessionExpired));
        assert!(out.contains(&Action::Changed));
        let mut out = vec![];
        m.send(3, "b", None, false, &mut out).unwrap();
        assert!(out.contains(&Action::NeedToken), "asks again instead of stalling");
        let mut out = vec![];
        m.handle(4, Input::TokenChanged, true, &mut out);
        assert_eq!(writes(&out), vec![("a", None), ("b", None)]);
    }

    #[test]
    fn a_refresh_failure_keeps_the_need_registered_and_close_withdraws_it() {
        let mut m = machine(Protocol::TokenPerMessage, false);
        open(&mut m, 0);
        let mut out = vec![];
        m.send(1, "a", None, false, &mut out).unwrap();
        let mut out = vec![];
        m.handle(2, Input::RefreshFailed(Code::ServerError), false, &mut out);
        assert_eq!(m.last_error, Some(Code::ServerError));
        assert!(!out.contains(&Action::ReleaseToken), "the session keeps trying for it");
        let mut out = vec![];
        m.send(3, "b", None, false, &mut out).unwrap();
        assert!(!out.contains(&Action::NeedToken), "one need at a time");
        let mut out = vec![];
        m.handle(4, Input::Close, false, &mut out);
        assert!(out.contains(&Action::ReleaseToken));
        // A flush that finds the token usable withdraws the need as well.
        let mut m = machine(Protocol::TokenPerMessage, false);
        open(&mut m, 0);
        let mut out = vec![];
        m.send(1, "a", None, false, &mut out).unwrap();
        let mut out = vec![];
        m.send(2, "b", None, true, &mut out).unwrap();
        assert!(out.contains(&Action::ReleaseToken));
        assert_eq!(writes(&out), vec![("a", None), ("b", None)]);
    }

    #[test]
    fn a_token_change_flushes_what_waited() {
        let mut m = machine(Protocol::TokenPerMessage, false);
        open(&mut m, 0);
        let mut out = vec![];
        m.send(1, "a", None, false, &mut out).unwrap();
        let mut out = vec![];
        m.handle(2, Input::TokenChanged, true, &mut out);
        assert_eq!(writes(&out), vec![("a", None)]);
    }

    #[test]
    fn ack_mode_resends_unacknowledged_frames_with_their_ids_after_a_drop() {
        let mut m = machine(Protocol::TokenPerMessage, true);
        open(&mut m, 0);
        let mut out = vec![];
        for p in ["a", "b", "c"] {
            m.send(1, p, None, true, &mut out).unwrap();
        }
        assert_eq!(
            writes(&out),
            vec![
                ("a", Some("c1-1".into())),
                ("b", Some("c1-2".into())),
                ("c", Some("c1-3".into()))
            ]
        );
        let ack = |id: &str| {
            Input::Received(Incoming {
                kind: Some("ack".into()),
                code: None,
                message_id: Some(id.into()),
                session: None,
            })
        };
        m.handle(2, ack("c1-1"), true, &mut out);
        assert_eq!((m.unacked(), m.acked), (2, 1));
        m.handle(3, Input::Closed(1006), true, &mut out);
        assert_eq!(m.status(), Status::Reconnecting);
        assert_eq!(m.last_error, Some(Code::ConnectionLost));
        m.send(4, "d", None, true, &mut out).unwrap();
        assert_eq!(m.queued(), 3, "b, c back in the queue, d behind them");
        let at = m.wake_at().unwrap();
        assert!((503..=1003).contains(&at), "first reconnect after 0.5-1 s: {at}");
        let mut out = vec![];
        m.handle(at, Input::Timer, true, &mut out);
        assert!(out.contains(&Action::Connect));
        m.handle(at + 10, Input::Opened, true, &mut out);
        assert_eq!(
            writes(&out),
            vec![
                ("b", Some("c1-2".into())),
                ("c", Some("c1-3".into())),
                ("d", Some("c1-4".into()))
            ]
        );
        assert_eq!(m.reconnects, 1);
    }

    #[test]
    fn reconnect_backoff_grows_and_resets_after_a_healthy_open() {
        let mut m = machine(Protocol::TokenPerMessage, false);
        open(&mut m, 0);
        let mut now = 1;
        let mut delays = vec![];
        for _ in 0..12 {
            let mut out = vec![];
            m.handle(now, Input::Closed(1006), true, &mut out);
            let at = m.wake_at().unwrap();
            delays.push(at - now);
            now = at;
            m.handle(now, Input::Timer, true, &mut out);
            m.handle(now, Input::Opened, true, &mut out);
        }
        assert!(
            delays[0] <= 1_000 && delays[11] >= 5_000 && delays.iter().all(|d| *d <= 10_000),
            "{delays:?}"
        );
        // Up for 5 s: the next drop starts over at about 1 s.
        now += 5_000;
        let mut out = vec![];
        m.handle(now, Input::Closed(1006), true, &mut out);
        assert!(m.wake_at().unwrap() - now <= 1_000);
    }

    #[test]
    fn online_skips_the_backoff() {
        let mut m = machine(Protocol::TokenPerMessage, false);
        open(&mut m, 0);
        let mut out = vec![];
        m.handle(10, Input::Closed(1006), true, &mut out);
        let mut out = vec![];
        m.handle(20, Input::Online, true, &mut out);
        assert!(out.contains(&Action::Connect));
        assert_eq!(m.status(), Status::Connecting);
    }

    #[test]
    fn a_rejected_token_forces_one_refresh_then_reconnects_at_once() {
        let mut m = machine(Protocol::TokenPerMessage, true);
        open(&mut m, 0);
        let mut out = vec![];
        m.send(1, "a", None, true, &mut out).unwrap();
        let mut out = vec![];
        let reject = Input::Received(Incoming {
            kind: Some("error".into()),
            code: Some("token_expired".into()),
            message_id: Some("c1-1".into()),
            session: None,
        });
        m.handle(2, reject, true, &mut out);
        assert!(out.contains(&Action::ForceRefresh));
        assert!(out.contains(&Action::Disconnect(4000)));
        assert_eq!(m.status(), Status::Reconnecting);
        assert_eq!(m.wake_at(), None, "waits for the refresh, not a timer");
        // The server's close after its error frame does not count twice.
        let mut out = vec![];
        m.handle(3, Input::Closed(4001), true, &mut out);
        assert!(!out.contains(&Action::ForceRefresh));
        let mut out = vec![];
        m.handle(4, Input::TokenChanged, true, &mut out);
        assert!(out.contains(&Action::Connect));
        m.handle(5, Input::Opened, true, &mut out);
        assert_eq!(writes(&out), vec![("a", Some("c1-1".into()))]);
    }

    #[test]
    fn close_code_4001_is_a_rejection_too() {
        for code in AUTH_CLOSE_CODES {
            let mut m = machine(Protocol::TokenPerMessage, false);
            open(&mut m, 0);
            let mut out = vec![];
            m.handle(1, Input::Closed(code), true, &mut out);
            assert!(out.contains(&Action::ForceRefresh), "{code}");
            assert!(
                !out.iter().any(|a| matches!(a, Action::Disconnect(_))),
                "already closed by the server"
            );
        }
    }

    #[test]
    fn without_acks_the_named_frame_and_those_after_it_are_resent() {
        let mut m = machine(Protocol::TokenPerMessage, false);
        open(&mut m, 0);
        let mut out = vec![];
        m.send(1, "a", Some("u-1".into()), true, &mut out).unwrap();
        m.send(1, "b", Some("u-2".into()), true, &mut out).unwrap();
        m.send(1, "c", Some("u-3".into()), true, &mut out).unwrap();
        let reject = Input::Received(Incoming {
            kind: Some("error".into()),
            code: Some("invalid_token".into()),
            message_id: Some("u-2".into()),
            session: None,
        });
        m.handle(2, reject, true, &mut out);
        assert_eq!(m.queued(), 2);
        let mut out = vec![];
        m.handle(3, Input::TokenChanged, true, &mut out);
        m.handle(4, Input::Opened, true, &mut out);
        assert_eq!(writes(&out), vec![("b", Some("u-2".into())), ("c", Some("u-3".into()))]);
    }

    #[test]
    fn repeated_rejections_after_fresh_tokens_close_instead_of_looping() {
        let mut m = machine(Protocol::TokenPerMessage, false);
        open(&mut m, 0);
        let mut refreshes = 0;
        for t in 1..20 {
            let mut out = vec![];
            m.handle(t * 10, Input::Closed(4001), true, &mut out);
            refreshes += out.iter().filter(|a| **a == Action::ForceRefresh).count();
            m.handle(t * 10 + 1, Input::TokenChanged, true, &mut out);
            m.handle(t * 10 + 2, Input::Opened, true, &mut out);
        }
        assert_eq!(refreshes, 3);
        assert_eq!(m.status(), Status::Closed);
        assert_eq!(m.last_error, Some(Code::AuthRejected));
        let mut out = vec![];
        assert_eq!(m.send(500, "x", None, true, &mut out), Err(Code::SocketClosed));
    }

    #[test]
    fn a_reply_resets_the_rejection_count() {
        let mut m = machine(Protocol::TokenPerMessage, false);
        open(&mut m, 0);
        for t in 1..10 {
            let mut out = vec![];
            m.handle(t * 10, Input::Closed(4001), true, &mut out);
            m.handle(t * 10 + 1, Input::TokenChanged, true, &mut out);
            m.handle(t * 10 + 2, Input::Opened, true, &mut out);
            m.handle(
                t * 10 + 3,
                Input::Received(Incoming {
                    kind: Some("ai_response".into()),
                    ..Default::default()
                }),
                true,
                &mut out,
            );
        }
        assert_eq!(m.status(), Status::Open);
    }

    #[test]
    fn a_failed_forced_refresh_reconnects_with_backoff_and_sign_out_closes() {
        let mut m = machine(Protocol::TokenPerMessage, false);
        open(&mut m, 0);
        let mut out = vec![];
        m.handle(1, Input::Closed(4401), true, &mut out);
        m.handle(2, Input::RefreshFailed(Code::ServerError), true, &mut out);
        assert_eq!(m.status(), Status::Reconnecting);
        assert!(m.wake_at().is_some());
        let mut out = vec![];
        m.handle(3, Input::SessionEnded, false, &mut out);
        assert_eq!(m.status(), Status::Closed);
        assert_eq!(m.last_error, Some(Code::SignedOut));
        assert_eq!(m.wake_at(), None);
        let mut out = vec![];
        m.handle(10_000, Input::Timer, true, &mut out);
        m.handle(10_000, Input::Online, true, &mut out);
        assert!(out.is_empty(), "nothing after the end: {out:?}");
    }

    #[test]
    fn close_stops_everything() {
        let mut m = machine(Protocol::TokenPerMessage, false);
        open(&mut m, 0);
        let mut out = vec![];
        m.handle(1, Input::Close, true, &mut out);
        assert!(out.contains(&Action::Disconnect(1000)));
        assert_eq!(m.status(), Status::Closed);
        let mut out = vec![];
        m.handle(2, Input::Closed(1006), true, &mut out);
        m.handle(3, Input::Online, true, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_timer_that_fires_early_by_this_clock_is_armed_again() {
        // Timers run on the browser's monotonic clock, the machine on `Date.now()`, which Firefox
        // rounds with jitter: a timer set for `at` may find the clock at `at - 1`.
        let mut m = machine(Protocol::TokenPerMessage, true);
        open(&mut m, 0);
        let mut out = vec![];
        m.handle(10, Input::Closed(1006), true, &mut out);
        let at = m.wake_at().unwrap();
        let mut out = vec![];
        m.handle(at - 1, Input::Timer, true, &mut out);
        assert_eq!(out, vec![Action::WakeAt(at)], "not due yet: armed again, not forgotten");
        let mut out = vec![];
        m.handle(at, Input::Timer, true, &mut out);
        assert!(out.contains(&Action::Connect), "{out:?}");
        // The connect deadline and the heartbeat alike.
        let deadline = m.wake_at().unwrap();
        let mut out = vec![];
        m.handle(deadline - 1, Input::Timer, true, &mut out);
        assert_eq!(out, vec![Action::WakeAt(deadline)]);
    }

    #[test]
    fn retries_can_be_bounded_or_disabled() {
        let mut cfg = Config::new(Protocol::TokenPerMessage, "c".into(), 1);
        cfg.max_retries = Some(2);
        let mut m: M = SocketMachine::new(cfg);
        open(&mut m, 0);
        let mut now = 1;
        for _ in 0..3 {
            let mut out = vec![];
            m.handle(now, Input::Closed(1006), true, &mut out);
            if let Some(at) = m.wake_at() {
                now = at;
                m.handle(now, Input::Timer, true, &mut out);
                m.handle(now, Input::Closed(1006), true, &mut out);
            }
        }
        assert_eq!(m.status(), Status::Closed);
        assert_eq!(m.last_error, Some(Code::RetriesExhausted));

        let mut cfg = Config::new(Protocol::TokenPerMessage, "c".into(), 1);
        cfg.reconnect = None;
        let mut m: M = SocketMachine::new(cfg);
        open(&mut m, 0);
        let mut out = vec![];
        m.handle(1, Input::Closed(1006), true, &mut out);
        assert_eq!(m.status(), Status::Closed);
        assert_eq!(m.last_error, Some(Code::ConnectionLost));
    }

    #[test]
    fn a_connect_that_hangs_is_abandoned_and_retried() {
        let mut m = machine(Protocol::TokenPerMessage, false);
        let mut out = vec![];
        m.handle(0, Input::Start, true, &mut out);
        assert_eq!(m.wake_at(), Some(10_000));
        let mut out = vec![];
        m.handle(10_000, Input::Timer, true, &mut out);
        assert!(out.contains(&Action::Disconnect(4000)));
        assert_eq!(m.status(), Status::Reconnecting);
    }

    #[test]
    fn the_heartbeat_pings_and_replaces_a_silent_connection() {
        let mut cfg = Config::new(Protocol::TokenPerMessage, "c".into(), 1);
        cfg.heartbeat_ms = 1_000;
        let mut m: M = SocketMachine::new(cfg);
        open(&mut m, 0);
        assert_eq!(m.wake_at(), Some(1_000));
        let mut out = vec![];
        m.handle(1_000, Input::Timer, true, &mut out);
        assert!(out.contains(&Action::Ping));
        m.handle(
            1_500,
            Input::Received(Incoming {
                kind: Some("pong".into()),
                ..Default::default()
            }),
            true,
            &mut out,
        );
        m.handle(2_000, Input::Timer, true, &mut out);
        assert_eq!(m.status(), Status::Open, "alive: it answered");
        let mut out = vec![];
        m.handle(3_500, Input::Timer, true, &mut out);
        assert!(
            out.contains(&Action::Disconnect(4000)),
            "silent for two periods: {out:?}"
        );
        assert_eq!(m.last_error, Some(Code::HeartbeatTimeout));
        assert_eq!(m.status(), Status::Reconnecting);
    }

    #[test]
    fn handshake_waits_for_auth_configured_and_reauths_after_refresh() {
        let mut m = machine(Protocol::AuthHandshake, false);
        let mut out = vec![];
        m.send(0, "early", None, false, &mut out).unwrap();
        m.handle(0, Input::Start, true, &mut out);
        let mut out = vec![];
        m.handle(1, Input::Opened, true, &mut out);
        assert_eq!(m.status(), Status::Authenticating);
        assert!(out.contains(&Action::WriteAuth));
        assert!(writes(&out).is_empty(), "nothing before auth_configured");
        let mut out = vec![];
        m.handle(
            2,
            Input::Received(Incoming {
                kind: Some("auth_configured".into()),
                ..Default::default()
            }),
            false,
            &mut out,
        );
        assert_eq!(
            writes(&out),
            vec![("early", None)],
            "chat frames do not need a per-frame token"
        );
        let mut out = vec![];
        m.handle(3, Input::TokenChanged, true, &mut out);
        assert_eq!(out, vec![Action::WriteAuth]);
    }

    #[test]
    fn handshake_with_bearer_waits_for_a_token_before_the_auth_frame() {
        let mut m = machine(Protocol::AuthHandshake, false);
        let mut out = vec![];
        m.handle(0, Input::Start, true, &mut out);
        m.handle(1, Input::Opened, false, &mut out);
        assert!(out.contains(&Action::NeedToken) && !out.contains(&Action::WriteAuth));
        let mut out = vec![];
        m.handle(2, Input::TokenChanged, true, &mut out);
        assert!(out.contains(&Action::WriteAuth));
        let mut cfg = Config::new(Protocol::AuthHandshake, "c".into(), 1);
        cfg.auth_type = AuthType::ApiKey;
        let mut m: M = SocketMachine::new(cfg);
        let mut out = vec![];
        m.handle(0, Input::Start, false, &mut out);
        m.handle(1, Input::Opened, false, &mut out);
        assert!(out.contains(&Action::WriteAuth), "api_key needs no session token");
        let mut out = vec![];
        m.handle(2, Input::TokenChanged, true, &mut out);
        assert!(
            !out.contains(&Action::WriteAuth),
            "no re-auth for credentials that do not change"
        );
    }

    #[test]
    fn the_fast_path_is_open_only_when_send_would_write_at_once_without_bookkeeping() {
        let mut m = machine(Protocol::TokenPerMessage, false);
        assert!(!m.fast_path_open(), "not connected");
        open(&mut m, 0);
        assert!(m.fast_path_open());
        let mut out = vec![];
        m.send(1, "a", None, false, &mut out).unwrap();
        assert!(!m.fast_path_open(), "something is queued: order first");
        m.handle(2, Input::TokenChanged, true, &mut out);
        assert!(m.fast_path_open());
        m.wrote_fast();
        assert_eq!(m.sent, 2);
        let mut acked = machine(Protocol::TokenPerMessage, true);
        open(&mut acked, 0);
        assert!(!acked.fast_path_open(), "ack mode keeps every frame for re-sending");
        let mut hs = machine(Protocol::AuthHandshake, false);
        open(&mut hs, 0);
        assert!(!hs.fast_path_open());
    }

    #[test]
    fn a_full_queue_refuses_instead_of_dropping() {
        let mut cfg = Config::new(Protocol::TokenPerMessage, "c".into(), 1);
        cfg.max_queued = 3;
        cfg.ack = true;
        let mut m: M = SocketMachine::new(cfg);
        let mut out = vec![];
        for p in ["a", "b", "c"] {
            m.send(0, p, None, true, &mut out).unwrap();
        }
        assert_eq!(m.send(0, "d", None, true, &mut out), Err(Code::QueueFull));
        m.handle(0, Input::Start, true, &mut out);
        m.handle(1, Input::Opened, true, &mut out);
        assert_eq!(m.unacked(), 3);
        assert_eq!(
            m.send(2, "d", None, true, &mut out),
            Err(Code::QueueFull),
            "unacknowledged frames count"
        );
        m.handle(
            3,
            Input::Received(Incoming {
                kind: Some("ack".into()),
                code: None,
                message_id: Some("c-1".into()),
                session: None,
            }),
            true,
            &mut out,
        );
        assert!(m.send(4, "d", None, true, &mut out).is_ok());
    }

    #[test]
    fn events_of_a_closed_connection_are_ignored() {
        let mut m = machine(Protocol::TokenPerMessage, false);
        open(&mut m, 0);
        let mut out = vec![];
        m.handle(1, Input::Closed(1006), true, &mut out);
        let mut out = vec![];
        m.handle(2, Input::Closed(1006), true, &mut out);
        m.handle(2, Input::Opened, true, &mut out);
        assert!(
            out.iter().all(|a| !matches!(a, Action::Connect | Action::Write(_))),
            "{out:?}"
        );
    }

    fn frame(kind: &str) -> Input {
        Input::Received(Incoming {
            kind: Some(kind.into()),
            ..Default::default()
        })
    }

    fn handshake(t: AuthType) -> M {
        let mut cfg = Config::new(Protocol::AuthHandshake, "c".into(), 1);
        cfg.auth_type = t;
        SocketMachine::new(cfg)
    }

    #[test]
    fn a_connect_time_token_is_fresh_on_every_connect_or_the_socket_waits() {
        let mut cfg = Config::new(Protocol::TokenPerMessage, "c".into(), 1);
        cfg.connect_token = Some(TokenPlace::Query("token".into()));
        let mut m: M = SocketMachine::new(cfg);
        let mut out = vec![];
        m.handle(0, Input::Start, false, &mut out);
        assert!(
            out.contains(&Action::NeedToken) && !out.contains(&Action::Connect),
            "{out:?}"
        );
        assert_eq!(m.status(), Status::Connecting);
        assert_eq!(m.connect_query(), (None, Some(&TokenPlace::Query("token".into()))));
        let mut out = vec![];
        m.handle(5, Input::TokenChanged, true, &mut out);
        assert!(out.contains(&Action::Connect));
        m.handle(6, Input::Opened, true, &mut out);
        // The line drops while the token is near expiry: the reconnect waits for a fresh one.
        let mut out = vec![];
        m.handle(10, Input::Closed(1006), false, &mut out);
        let at = m.wake_at().unwrap();
        let mut out = vec![];
        m.handle(at, Input::Timer, false, &mut out);
        assert!(
            out.contains(&Action::NeedToken) && !out.contains(&Action::Connect),
            "{out:?}"
        );
        // No token before the deadline: the need is withdrawn and the socket backs off.
        let deadline = m.wake_at().unwrap();
        let mut out = vec![];
        m.handle(deadline, Input::Timer, false, &mut out);
        assert!(out.contains(&Action::ReleaseToken) && !out.contains(&Action::Connect));
        assert_eq!(m.status(), Status::Reconnecting);
        let again = m.wake_at().unwrap();
        let mut out = vec![];
        m.handle(again, Input::Timer, true, &mut out);
        assert!(out.contains(&Action::Connect), "a usable token: connect at once");
        // A 4001 at the upgrade is a rejection: one refresh, then a connect with the new token.
        let mut out = vec![];
        m.handle(again + 1, Input::Closed(4001), true, &mut out);
        assert!(out.contains(&Action::ForceRefresh) && !out.contains(&Action::Connect));
        let mut out = vec![];
        m.handle(again + 2, Input::TokenChanged, true, &mut out);
        assert!(out.contains(&Action::Connect));
    }

    #[test]
    fn credentials_the_sdk_does_not_own_are_never_retried() {
        for t in [
            AuthType::ApiKey,
            AuthType::OAuth2ClientCredentials,
            AuthType::Sso,
            AuthType::Other,
        ] {
            let mut m = handshake(t);
            let mut out = vec![];
            m.send(0, "early", None, true, &mut out).unwrap();
            m.handle(0, Input::Start, true, &mut out);
            m.handle(1, Input::Opened, true, &mut out);
            let mut out = vec![];
            m.handle(2, frame("auth_failed"), true, &mut out);
            assert!(out.contains(&Action::Emit(SocketEvent::AuthFailed)), "{t:?}");
            assert!(!out.contains(&Action::ForceRefresh) && !out.contains(&Action::Connect));
            assert_eq!((m.status(), m.last_error), (Status::Closed, Some(Code::AuthFailed)));
        }
        // Mid-connection, a failed new auth frame leaves the server's old credentials: still open.
        let mut m = handshake(AuthType::BasicAuth);
        let mut out = vec![];
        m.handle(0, Input::Start, true, &mut out);
        m.handle(1, Input::Opened, true, &mut out);
        m.handle(2, frame("auth_configured"), true, &mut out);
        let mut out = vec![];
        m.handle(3, frame("auth_failed"), true, &mut out);
        assert_eq!((m.status(), m.last_error), (Status::Open, Some(Code::AuthFailed)));
        // auth_expired (SSO): the server cleared them; close with the code, no loop.
        let mut m = handshake(AuthType::Sso);
        let mut out = vec![];
        m.handle(0, Input::Start, true, &mut out);
        m.handle(1, Input::Opened, true, &mut out);
        m.handle(2, frame("auth_configured"), true, &mut out);
        let mut out = vec![];
        m.handle(3, frame("auth_expired"), true, &mut out);
        assert!(out.contains(&Action::Emit(SocketEvent::AuthExpired)));
        assert_eq!((m.status(), m.last_error), (Status::Closed, Some(Code::AuthExpired)));
        // The session's own token: one forced refresh, then a new connection.
        let mut m = handshake(AuthType::BearerToken);
        let mut out = vec![];
        m.handle(0, Input::Start, true, &mut out);
        m.handle(1, Input::Opened, true, &mut out);
        let mut out = vec![];
        m.handle(2, frame("auth_failed"), true, &mut out);
        assert!(out.contains(&Action::ForceRefresh) && out.contains(&Action::Emit(SocketEvent::AuthFailed)));
        assert_eq!(m.status(), Status::Reconnecting);
    }

    #[test]
    fn logout_goes_out_before_the_close_in_the_handshake_protocol_only() {
        for input in [Input::Logout, Input::SessionEnded] {
            let mut m = handshake(AuthType::BearerToken);
            let mut out = vec![];
            m.handle(0, Input::Start, true, &mut out);
            m.handle(1, Input::Opened, true, &mut out);
            m.handle(2, frame("auth_configured"), true, &mut out);
            let mut out = vec![];
            m.handle(3, input.clone(), true, &mut out);
            let logout = out
                .iter()
                .position(|a| *a == Action::WriteLogout)
                .expect("logout written");
            let close = out.iter().position(|a| *a == Action::Disconnect(1000)).unwrap();
            assert!(logout < close && out.contains(&Action::Emit(SocketEvent::LoggedOut)));
            assert_eq!(m.status(), Status::Closed);
        }
        let mut m = machine(Protocol::TokenPerMessage, false);
        open(&mut m, 0);
        let mut out = vec![];
        m.handle(1, Input::Logout, true, &mut out);
        assert!(
            !out.contains(&Action::WriteLogout),
            "token-per-message has no logout frame"
        );
        let mut m = handshake(AuthType::BearerToken);
        let mut out = vec![];
        m.handle(0, Input::Start, true, &mut out);
        let mut out = vec![];
        m.handle(1, Input::SessionEnded, false, &mut out);
        assert!(
            !out.contains(&Action::WriteLogout),
            "nothing to sign out of before the auth frame"
        );
    }

    #[test]
    fn the_session_id_is_adopted_from_the_frames_the_app_names_and_resumed() {
        let mut cfg = Config::new(Protocol::TokenPerMessage, "c".into(), 1);
        cfg.session_from = vec!["session_created".into(), "session_init".into()];
        cfg.resume = true;
        cfg.session_id = Some("app".into());
        let mut m: M = SocketMachine::new(cfg);
        assert_eq!(m.connect_query(), (Some("app"), None));
        open(&mut m, 0);
        let with_session = |kind: &str, id: &str| {
            Input::Received(Incoming {
                kind: Some(kind.into()),
                session: Some(id.into()),
                ..Default::default()
            })
        };
        let mut out = vec![];
        m.handle(1, with_session("ai_response", "other"), true, &mut out);
        assert_eq!(m.session_id(), Some("app"), "not a frame type the app named");
        m.handle(2, with_session("session_created", ""), true, &mut out);
        assert_eq!(m.session_id(), Some("app"), "an empty id is not one");
        let mut out = vec![];
        m.handle(3, with_session("session_created", "srv-1"), true, &mut out);
        assert_eq!(m.session_id(), Some("srv-1"));
        assert!(out.contains(&Action::Emit(SocketEvent::SessionId)));
        let mut out = vec![];
        m.handle(4, with_session("session_init", "srv-1"), true, &mut out);
        assert!(
            !out.contains(&Action::Emit(SocketEvent::SessionId)),
            "unchanged: no event"
        );
        assert_eq!(m.connect_query(), (Some("srv-1"), None));
        let mut out = vec![];
        m.set_session_id(Some("mine".into()), &mut out);
        assert_eq!((m.session_id(), out), (Some("mine"), vec![Action::Changed]));
        let mut plain = machine(Protocol::TokenPerMessage, false);
        open(&mut plain, 0);
        let mut out = vec![];
        plain.handle(1, with_session("session_created", "srv"), true, &mut out);
        assert_eq!(plain.session_id(), None, "adoption is opt-in");
    }

    #[test]
    fn server_pings_are_answered_without_touching_the_queue() {
        let mut m = machine(Protocol::TokenPerMessage, false);
        let mut out = vec![];
        m.send(0, "queued", None, false, &mut out).unwrap();
        m.handle(0, Input::Start, false, &mut out);
        m.handle(1, Input::Opened, false, &mut out);
        assert_eq!(m.queued(), 1, "waits for a token");
        let mut out = vec![];
        m.handle(2, frame("ping"), false, &mut out);
        assert!(out.contains(&Action::Pong), "a pong carries no token: answered at once");
        assert!(writes(&out).is_empty());
        assert_eq!(m.queued(), 1);
        let mut cfg = Config::new(Protocol::TokenPerMessage, "c".into(), 1);
        cfg.answer_pings = false;
        let mut m: M = SocketMachine::new(cfg);
        open(&mut m, 0);
        let mut out = vec![];
        m.handle(1, frame("ping"), true, &mut out);
        assert!(!out.contains(&Action::Pong));
    }

    #[test]
    fn a_plain_error_while_authenticating_is_an_auth_failure() {
        let mut m = handshake(AuthType::Sso);
        let mut out = vec![];
        m.handle(0, Input::Start, true, &mut out);
        m.handle(1, Input::Opened, true, &mut out);
        let mut out = vec![];
        m.handle(2, frame("error"), true, &mut out);
        assert!(out.contains(&Action::Emit(SocketEvent::AuthFailed)));
        assert_eq!((m.status(), m.last_error), (Status::Closed, Some(Code::AuthFailed)));
        // Once open, a plain error is the app's business (a bad message, a tool failure).
        let mut m = handshake(AuthType::ApiKey);
        let mut out = vec![];
        m.handle(0, Input::Start, true, &mut out);
        m.handle(1, Input::Opened, true, &mut out);
        m.handle(2, frame("auth_configured"), true, &mut out);
        m.handle(3, frame("error"), true, &mut out);
        assert_eq!((m.status(), m.last_error), (Status::Open, None));
    }
}
