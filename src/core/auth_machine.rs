//! The session state machine: inputs (time passing, wake-ups, refresh results, app calls) in,
//! actions (fetch, set a timer, settle waiters, emit events) out. No I/O, no clock: `now` is
//! passed with every input, so hours of behaviour are simulated in microseconds.
//!
//! Rules it keeps:
//! - a refresh starts `lead` before expiry (see [`Policy::lead_ms`]), and only one is ever in flight;
//! - expiry is an absolute time: every input re-checks it, a timer is only a hint;
//! - every attempt has a deadline (`attempt_timeout_ms`); past it the attempt is abandoned
//!   (`Abort`), counted as a retryable failure (`refresh_timeout`), and its late answer dropped;
//! - every `Fetch` names the refresh token it presents, taken when the attempt starts: an answer
//!   or a request of a superseded attempt is never used (the attempt id travels with both);
//! - network errors, timeouts, 5xx and 429 retry with backoff while the token is still valid;
//! - the liveness rule: while anything waits on a token (a socket holding a need, an
//!   `accessToken()` caller, a `refresh()` caller), the machine keeps trying with capped, jittered
//!   backoff, also after expiry; with nothing waiting, an expired session tries once and then
//!   only on a demand or a wake-up (visible, focus, online), so a dead network sees no storm;
//! - `invalid_grant` ends the session (`SIGNED_OUT`); any other 4xx stops automatic refreshes
//!   until the app asks again or hands over a new session (a waiting socket retries it at the
//!   longest backoff).

use super::error::Code;
use super::policy::{Policy, Rng, Timer};
use super::session::Session;
use super::token::Secret;

/// What the app sees in `getSnapshot().status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// No session.
    SignedOut,
    /// A session whose access token is valid.
    SignedIn,
    /// A refresh request is in flight (the current token may still be valid).
    Refreshing,
    /// The access token has expired and no refresh is running.
    Expired,
}

impl Status {
    /// The string JS sees.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::SignedOut => "signed_out",
            Status::SignedIn => "signed_in",
            Status::Refreshing => "refreshing",
            Status::Expired => "expired",
        }
    }
}

/// The kinds of event `onEvent` listeners receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A session was handed over where there was none (or for another user).
    SignedIn,
    /// A new access token is in place.
    TokenRefreshed,
    /// A refresh attempt failed (`code`, `willRetry`, `retryInMs` tell more).
    RefreshFailed,
    /// The session ended (`code` is `invalid_grant` when the server revoked it).
    SignedOut,
    /// The access token expired without a replacement.
    SessionExpired,
}

impl EventKind {
    /// The event's `type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SignedIn => "SIGNED_IN",
            EventKind::TokenRefreshed => "TOKEN_REFRESHED",
            EventKind::RefreshFailed => "REFRESH_FAILED",
            EventKind::SignedOut => "SIGNED_OUT",
            EventKind::SessionExpired => "SESSION_EXPIRED",
        }
    }
}

/// An event for the app. Carries no token.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// When, ms since the epoch.
    pub at_ms: u64,
    /// The new expiry (SIGNED_IN, TOKEN_REFRESHED).
    pub expires_at_ms: Option<u64>,
    /// The error (REFRESH_FAILED, SIGNED_OUT after a revoked grant).
    pub code: Option<Code>,
    /// REFRESH_FAILED: whether a retry is scheduled.
    pub will_retry: bool,
    /// REFRESH_FAILED: delay until that retry.
    pub retry_in_ms: Option<u64>,
}

impl Event {
    fn new(kind: EventKind, at_ms: u64) -> Self {
        Event {
            kind,
            at_ms,
            expires_at_ms: None,
            code: None,
            will_retry: false,
            retry_in_ms: None,
        }
    }
}

/// Why a wake-up happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The machine's own timer fired.
    Timer,
    /// The page became visible.
    Visible,
    /// The window gained focus.
    Focus,
    /// The browser came back online: retry at once, whatever the backoff said.
    Online,
}

/// How a refresh attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// No response (offline, DNS, CORS, abort).
    Network,
    /// An HTTP error status, with the error strings of the body.
    Http {
        /// The status code.
        status: u16,
        /// `error_code`, `code`, `error` from the JSON body (GoTrue has used each over its versions).
        errors: Vec<String>,
    },
    /// 2xx, but the body is not a usable session.
    BadResponse,
    /// The refresh callback threw; `gone` when it said the session is over.
    Callback {
        /// The callback reported the session as ended (returned null, or threw with status 400/401).
        gone: bool,
    },
    /// No answer before the attempt's deadline.
    Timeout,
    /// The cross-tab refresh lock was not granted before its deadline.
    LockTimeout,
}

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The session is over.
    Gone,
    /// Worth retrying later.
    Retry,
    /// Retrying cannot help until something changes.
    Final,
}

/// GoTrue's error strings that mean the refresh token is dead.
const GONE_ERRORS: [&str; 5] = [
    "invalid_grant",
    "refresh_token_not_found",
    "refresh_token_already_used",
    "session_not_found",
    "session_expired",
];

impl Failure {
    /// How to treat it, and its code.
    pub fn classify(&self) -> (Class, Code) {
        match self {
            Failure::Network => (Class::Retry, Code::NetworkError),
            Failure::Timeout => (Class::Retry, Code::RefreshTimeout),
            Failure::LockTimeout => (Class::Retry, Code::LockTimeout),
            Failure::BadResponse => (Class::Retry, Code::InvalidResponse),
            Failure::Callback { gone: true } => (Class::Gone, Code::InvalidGrant),
            Failure::Callback { gone: false } => (Class::Retry, Code::CallbackFailed),
            Failure::Http { status, errors } => match status {
                429 => (Class::Retry, Code::RateLimited),
                408 | 500..=599 => (Class::Retry, Code::ServerError),
                // Wrong email or password (the password source): no session can be had with these.
                400 if errors.first().is_some_and(|e| e == "invalid_credentials") => {
                    (Class::Gone, Code::InvalidCredentials)
                }
                400 | 401 | 403 if errors.iter().any(|e| GONE_ERRORS.contains(&e.as_str())) => {
                    (Class::Gone, Code::InvalidGrant)
                }
                404 if errors.iter().any(|e| e == "token_not_found") => (Class::Final, Code::TokenNotFound),
                _ => (Class::Final, Code::RefreshRejected),
            },
        }
    }
}

/// The answer to `accessToken()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The current token is good to use now: read it with [`AuthMachine::access_token`].
    Ready,
    /// Wait: the caller was counted as a token waiter and is settled by a later action.
    Wait,
    /// Fail now with this code.
    Fail(Code),
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send refresh request number `attempt` to the source. Report back with the same number.
    Fetch {
        /// Matches the result to the request; results of superseded attempts are ignored.
        attempt: u64,
        /// The machine abandons the attempt at this time (a `Timer` wake at or after it).
        deadline_ms: u64,
        /// The refresh token to present (`None`: the source needs none, or signs in from nothing).
        /// The shell presents exactly this one, never whatever the session holds later.
        present: Option<Secret>,
    },
    /// Attempt `attempt` is superseded or abandoned: cancel its request if it still runs, and never
    /// send it if it has not started (its answer is ignored anyway).
    Abort {
        /// The attempt to cancel.
        attempt: u64,
    },
    /// (Re)arm the single timer to fire [`Wake::Timer`] at this time.
    WakeAt(u64),
    /// Disarm the timer.
    CancelWake,
    /// Resolve every pending `accessToken()` with the current token.
    ResolveTokenWaiters,
    /// Reject every pending `accessToken()` with this code.
    RejectTokenWaiters(Code),
    /// Settle every pending `refresh()`: `None` resolves, a code rejects.
    SettleRefreshWaiters(Option<Code>),
    /// Deliver an event to `onEvent` listeners.
    Emit(Event),
    /// The snapshot changed: notify `subscribe` listeners (once per batch is enough).
    Changed,
}

/// Inputs besides `accessToken()` (which answers synchronously, see [`AuthMachine::want_token`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The class was created: a source that signs in from nothing (password, broker, callback)
    /// starts now. Unlike `Refresh`, it does not undo a `signOut()` made in the meantime.
    Start,
    /// The app handed over a (new) session.
    SetSession(Session),
    /// A wake-up: timer, visibility, focus, online.
    Wake(Wake),
    /// `refresh()`: refresh now, whatever the schedule.
    Refresh,
    /// A refresh attempt succeeded.
    RefreshOk {
        /// The attempt number from [`Action::Fetch`].
        attempt: u64,
        /// The new session.
        session: Session,
    },
    /// A new session obtained by a refresh someone else ran (a followed supabase-js client): it
    /// completes the attempt in flight, if any, and counts as a refresh.
    Refreshed(Session),
    /// A refresh attempt failed.
    RefreshErr {
        /// The attempt number from [`Action::Fetch`].
        attempt: u64,
        /// How.
        failure: Failure,
    },
    /// `signOut()`.
    SignOut,
}

/// The session state machine.
#[derive(Debug)]
pub struct AuthMachine {
    policy: Policy,
    rng: Rng,
    has_source: bool,
    needs_refresh_token: bool,
    session: Option<Session>,
    status: Status,
    inflight: Option<u64>,
    deadline_ms: u64,
    attempts: u64,
    failures: u32,
    not_before_ms: u64,
    stalled: bool,
    token_waiters: usize,
    refresh_waiters: usize,
    holders: Vec<u64>,
    owed: bool,
    /// When the promise callers waiting now (`accessToken()`, `refresh()`) are settled at the
    /// latest: one attempt's timeout after the first of them came, whatever attempts follow.
    waiters_deadline: Option<u64>,
    timer: Timer,
    refresh_count: u64,
    last_error: Option<Code>,
    expired_noted: bool,
    bootstrap: bool,
    bootstrap_on: bool,
}

impl AuthMachine {
    /// A machine with no session. `has_source`: a refresh source is configured;
    /// `needs_refresh_token`: that source works only with a refresh token (Supabase);
    /// `seed`: randomness for the backoff jitter.
    pub fn new(policy: Policy, has_source: bool, needs_refresh_token: bool, seed: u64) -> Self {
        AuthMachine {
            policy,
            rng: Rng::new(seed),
            has_source,
            needs_refresh_token,
            session: None,
            status: Status::SignedOut,
            inflight: None,
            deadline_ms: 0,
            attempts: 0,
            failures: 0,
            not_before_ms: 0,
            stalled: false,
            token_waiters: 0,
            refresh_waiters: 0,
            holders: Vec::new(),
            owed: false,
            waiters_deadline: None,
            timer: Timer::default(),
            refresh_count: 0,
            last_error: None,
            expired_noted: false,
            bootstrap: false,
            bootstrap_on: true,
        }
    }

    /// Lets the source sign in from nothing (a password, a token broker, a callback): with no
    /// session, a demand (`accessToken()`, `refresh()`) fetches one. An explicit sign-out turns this
    /// off until `refresh()` or a new session.
    pub fn with_bootstrap(mut self, bootstrap: bool) -> Self {
        self.bootstrap = bootstrap;
        self
    }

    fn can_bootstrap(&self) -> bool {
        self.session.is_none() && self.bootstrap && self.bootstrap_on && self.has_source && !self.stalled
    }

    /// The status for the snapshot.
    pub fn status(&self) -> Status {
        self.status
    }
    /// The current session, if any.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }
    /// The current access token, if any.
    pub fn access_token(&self) -> Option<&Secret> {
        self.session.as_ref().map(|s| &s.access)
    }
    /// The current refresh token, if any.
    pub fn refresh_token(&self) -> Option<&Secret> {
        self.session.as_ref().and_then(|s| s.refresh.as_ref())
    }
    /// Successful refreshes so far.
    pub fn refresh_count(&self) -> u64 {
        self.refresh_count
    }
    /// The code of the last failure, cleared by a success or a new session.
    pub fn last_error(&self) -> Option<Code> {
        self.last_error
    }
    /// When the timer should fire next, if armed.
    pub fn wake_at(&self) -> Option<u64> {
        self.timer.at()
    }
    /// The refresh attempt in flight, if any.
    pub fn inflight(&self) -> Option<u64> {
        self.inflight
    }
    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Changes the refresh source (e.g. when following a supabase-js client, which then refreshes).
    pub fn set_source(
        &mut self,
        has_source: bool,
        needs_refresh_token: bool,
        bootstrap: bool,
        now: u64,
        out: &mut Vec<Action>,
    ) {
        self.has_source = has_source;
        self.needs_refresh_token = needs_refresh_token;
        self.bootstrap = bootstrap;
        self.stalled = false;
        self.step(now, false, out);
    }

    fn can_refresh_with(&self, s: Option<&Session>) -> bool {
        self.has_source && (!self.needs_refresh_token || s.is_some_and(|s| s.refresh.is_some()))
    }

    fn can_refresh(&self) -> bool {
        self.can_refresh_with(self.session.as_ref())
    }

    /// Whether `s` can be taken at `now`: refused when it has expired and cannot be refreshed.
    pub fn check(&self, s: &Session, now: u64) -> Result<(), Code> {
        if now >= s.expires_at_ms && !self.can_refresh_with(Some(s)) {
            Err(Code::SessionExpired)
        } else {
            Ok(())
        }
    }

    /// Whether a handed-over session is taken: `Ok(false)` when it carries the access token held
    /// now (nothing changes), `Err` when it has expired and cannot be refreshed.
    pub fn accepts(&self, s: &Session, now: u64) -> Result<bool, Code> {
        if self.session.as_ref().is_some_and(|cur| cur.access == s.access) {
            return Ok(false);
        }
        self.check(s, now).map(|()| true)
    }

    /// Whether the current token may be handed out or written into a frame at `now`:
    /// it outlives the transit margin.
    pub fn usable(&self, now: u64) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| now.saturating_add(self.policy.transit_ms(s.lifetime_ms)) < s.expires_at_ms)
    }

    /// `accessToken()`: answers at once, starting a refresh when one is due.
    pub fn want_token(&mut self, now: u64, out: &mut Vec<Action>) -> Answer {
        if self.session.is_none() {
            if !self.can_bootstrap() {
                return Answer::Fail(Code::SignedOut);
            }
            if self.inflight.is_none() && now < self.not_before_ms {
                return Answer::Fail(self.last_error.unwrap_or(Code::SignedOut));
            }
            self.token_waiters += 1;
            self.note_waiter(now);
            self.step(now, false, out);
            return Answer::Wait;
        }
        let answer = if self.usable(now) {
            Answer::Ready
        } else if !self.can_refresh() {
            Answer::Fail(Code::SessionExpired)
        } else if self.stalled || (self.inflight.is_none() && now < self.not_before_ms) {
            // A refresh just failed and backing off (or cannot succeed): answer now, not in 30 s.
            Answer::Fail(self.last_error.unwrap_or(Code::SessionExpired))
        } else {
            self.token_waiters += 1;
            self.note_waiter(now);
            Answer::Wait
        };
        self.step(now, false, out);
        answer
    }

    /// A socket (or any long-lived holder) waits for a usable token. `Ready`: it is usable now.
    /// `Wait`: the holder is registered until a usable token arrives (the `SIGNED_IN` /
    /// `TOKEN_REFRESHED` event tells it); while any holder waits, refreshes keep being retried with
    /// backoff, also after expiry. `Fail`: there is no session, or nothing can renew it.
    pub fn need(&mut self, holder: u64, now: u64, out: &mut Vec<Action>) -> Answer {
        if self.usable(now) {
            self.step(now, false, out);
            return Answer::Ready;
        }
        if self.session.is_none() && !self.can_bootstrap() {
            return Answer::Fail(Code::SignedOut);
        }
        if self.session.is_some() && !self.can_refresh() {
            return Answer::Fail(Code::SessionExpired);
        }
        if !self.holders.contains(&holder) {
            self.holders.push(holder);
        }
        self.step(now, true, out);
        Answer::Wait
    }

    /// The holder no longer waits (its socket closed, was freed, or got its token another way).
    pub fn release(&mut self, holder: u64, now: u64, out: &mut Vec<Action>) {
        let before = self.holders.len();
        self.holders.retain(|h| *h != holder);
        if self.holders.len() != before {
            self.step(now, false, out);
        }
    }

    /// Holders waiting for a usable token.
    pub fn holders(&self) -> usize {
        self.holders.len()
    }

    /// When the attempt in flight is abandoned, if one is.
    pub fn deadline(&self) -> Option<u64> {
        self.inflight.map(|_| self.deadline_ms)
    }

    /// `refresh()`: counts the caller as a refresh waiter, or fails at once.
    pub fn want_refresh(&mut self, now: u64, out: &mut Vec<Action>) -> Result<(), Code> {
        if self.session.is_none() && !(self.bootstrap && self.has_source) {
            return Err(Code::SignedOut);
        }
        if self.session.is_some() && !self.can_refresh() {
            return Err(Code::NoRefreshSource);
        }
        self.refresh_waiters += 1;
        self.note_waiter(now);
        self.handle(now, Input::Refresh, out);
        Ok(())
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: u64, input: Input, out: &mut Vec<Action>) {
        match input {
            // A demand, for a source that signs in from nothing; `bootstrap_on` stays as it is.
            Input::Start => self.step(now, true, out),
            Input::SetSession(s) => {
                self.bootstrap_on = true;
                let kind = match &self.session {
                    Some(old) if old.user_id == s.user_id => EventKind::TokenRefreshed,
                    _ => EventKind::SignedIn,
                };
                let mut ev = Event::new(kind, now);
                ev.expires_at_ms = Some(s.expires_at_ms);
                self.session = Some(s);
                self.reset_after_new_session(out);
                out.push(Action::Emit(ev));
                out.push(Action::Changed);
                if self.usable(now) {
                    // Every holder hears of the usable token through the event just emitted.
                    self.holders.clear();
                    self.settle_token_waiters(None, out);
                }
                self.settle_refresh_waiters(None, out);
                self.step(now, false, out);
            }
            Input::Wake(w) => {
                if w == Wake::Timer {
                    self.timer.fired();
                }
                if let Some(attempt) = self.inflight.filter(|_| now >= self.deadline_ms) {
                    // A timer is a hint, the deadline the truth: any wake-up past it abandons the attempt.
                    out.push(Action::Abort { attempt });
                    self.handle(
                        now,
                        Input::RefreshErr {
                            attempt,
                            failure: Failure::Timeout,
                        },
                        out,
                    );
                    if w == Wake::Timer {
                        return;
                    }
                }
                if w == Wake::Online {
                    self.not_before_ms = now;
                }
                let expired = self.session.as_ref().is_some_and(|s| now >= s.expires_at_ms);
                self.step(now, w != Wake::Timer && expired, out);
            }
            Input::Refresh => {
                self.bootstrap_on = true;
                self.stalled = false;
                self.not_before_ms = now;
                self.step(now, true, out);
            }
            Input::RefreshOk { attempt, session } => {
                if self.inflight == Some(attempt) {
                    self.refreshed(now, session, out);
                }
            }
            Input::Refreshed(session) => self.refreshed(now, session, out),
            Input::RefreshErr { attempt, failure } => {
                if self.inflight != Some(attempt) {
                    return;
                }
                self.inflight = None;
                let (class, code) = failure.classify();
                self.last_error = Some(code);
                out.push(Action::Changed);
                let mut ev = Event::new(EventKind::RefreshFailed, now);
                ev.code = Some(code);
                match class {
                    Class::Gone if self.session.is_some() => {
                        out.push(Action::Emit(ev));
                        self.end_session(now, Some(code), out);
                        return;
                    }
                    Class::Gone => self.stalled = true,
                    Class::Retry => {
                        self.failures = self.failures.saturating_add(1);
                        let delay = self.policy.backoff_ms(self.failures, self.rng.next_u32());
                        self.not_before_ms = now.saturating_add(delay);
                        let expires = self.session.as_ref().map_or(0, |s| s.expires_at_ms);
                        ev.will_retry = self.not_before_ms < expires || !self.holders.is_empty();
                        ev.retry_in_ms = ev.will_retry.then_some(delay);
                    }
                    Class::Final => {
                        self.stalled = true;
                        // Only a waiting socket retries a final answer, and only at the longest backoff.
                        let delay = self.policy.backoff_ms(u32::MAX, self.rng.next_u32());
                        self.not_before_ms = now.saturating_add(delay);
                        ev.will_retry = !self.holders.is_empty() && self.session.is_some();
                        ev.retry_in_ms = ev.will_retry.then_some(delay);
                    }
                }
                out.push(Action::Emit(ev));
                self.settle_refresh_waiters(Some(code), out);
                let usable = self.usable(now);
                self.settle_token_waiters(if usable { None } else { Some(code) }, out);
                self.step(now, false, out);
            }
            Input::SignOut => {
                self.bootstrap_on = false;
                if self.session.is_some() {
                    self.end_session(now, None, out);
                } else if let Some(attempt) = self.inflight.take() {
                    out.push(Action::Abort { attempt });
                    self.holders.clear();
                    self.settle_token_waiters(Some(Code::SignedOut), out);
                    self.settle_refresh_waiters(Some(Code::SignedOut), out);
                    self.step(now, false, out);
                }
            }
        }
    }

    fn refreshed(&mut self, now: u64, session: Session, out: &mut Vec<Action>) {
        self.inflight = None;
        let mut s = session;
        let had_session = self.session.is_some();
        if s.refresh.is_none() {
            // A source that does not rotate keeps the refresh token it had.
            s.refresh = self.session.take().and_then(|old| old.refresh);
        }
        // From nothing (a password or broker source signing in), it is a sign-in, not a refresh.
        let mut ev = Event::new(
            if had_session {
                EventKind::TokenRefreshed
            } else {
                EventKind::SignedIn
            },
            now,
        );
        ev.expires_at_ms = Some(s.expires_at_ms);
        self.session = Some(s);
        if had_session {
            self.refresh_count += 1;
        }
        self.reset_after_new_session(out);
        out.push(Action::Emit(ev));
        out.push(Action::Changed);
        let token = if self.session.as_ref().is_some_and(|s| now < s.expires_at_ms) {
            None
        } else {
            Some(Code::InvalidResponse)
        };
        if self.usable(now) {
            self.holders.clear();
        }
        self.settle_token_waiters(token, out);
        self.settle_refresh_waiters(None, out);
        self.step(now, false, out);
    }

    fn reset_after_new_session(&mut self, out: &mut Vec<Action>) {
        if let Some(attempt) = self.inflight.take() {
            out.push(Action::Abort { attempt });
        }
        self.failures = 0;
        self.not_before_ms = 0;
        self.stalled = false;
        self.expired_noted = false;
        self.last_error = None;
    }

    fn end_session(&mut self, now: u64, code: Option<Code>, out: &mut Vec<Action>) {
        self.session = None;
        self.holders.clear();
        if let Some(attempt) = self.inflight.take() {
            out.push(Action::Abort { attempt });
        }
        let mut ev = Event::new(EventKind::SignedOut, now);
        ev.code = code;
        out.push(Action::Emit(ev));
        out.push(Action::Changed);
        let code = code.unwrap_or(Code::SignedOut);
        self.settle_token_waiters(Some(code), out);
        self.settle_refresh_waiters(Some(code), out);
        self.step(now, false, out);
    }

    fn note_waiter(&mut self, now: u64) {
        if self.waiters_deadline.is_none() {
            self.waiters_deadline = Some(now.saturating_add(self.policy.attempt_timeout_ms.max(1)));
        }
    }

    /// Settles the promise callers whose deadline passed (a new attempt does not extend it).
    fn expire_waiters(&mut self, now: u64, out: &mut Vec<Action>) {
        if self.waiters_deadline.is_some_and(|d| now >= d) {
            self.settle_token_waiters(Some(Code::RefreshTimeout), out);
            self.settle_refresh_waiters(Some(Code::RefreshTimeout), out);
        }
    }

    fn settle_token_waiters(&mut self, error: Option<Code>, out: &mut Vec<Action>) {
        if self.token_waiters > 0 {
            self.token_waiters = 0;
            out.push(error.map_or(Action::ResolveTokenWaiters, Action::RejectTokenWaiters));
        }
        if self.refresh_waiters == 0 {
            self.waiters_deadline = None;
        }
    }

    fn settle_refresh_waiters(&mut self, error: Option<Code>, out: &mut Vec<Action>) {
        if self.refresh_waiters > 0 {
            self.refresh_waiters = 0;
            out.push(Action::SettleRefreshWaiters(error));
        }
        if self.token_waiters == 0 {
            self.waiters_deadline = None;
        }
    }

    fn set_status(&mut self, s: Status, out: &mut Vec<Action>) {
        if self.status != s {
            self.status = s;
            out.push(Action::Changed);
        }
    }

    fn set_wake(&mut self, at: Option<u64>, out: &mut Vec<Action>) {
        self.timer
            .set(at, out, |at| at.map_or(Action::CancelWake, Action::WakeAt));
    }

    fn start_attempt(&mut self, now: u64, out: &mut Vec<Action>) {
        self.owed = false;
        self.attempts += 1;
        self.inflight = Some(self.attempts);
        self.deadline_ms = now.saturating_add(self.policy.attempt_timeout_ms.max(1));
        out.push(Action::Fetch {
            attempt: self.attempts,
            deadline_ms: self.deadline_ms,
            present: self.refresh_token().cloned(),
        });
    }

    /// Re-evaluates everything against `now`: expiry, whether to refresh, the next wake-up.
    /// `demand`: someone asked (a waiter, `refresh()`, a wake-up after expiry).
    fn step(&mut self, now: u64, demand: bool, out: &mut Vec<Action>) {
        self.expire_waiters(now, out);
        let Some(s) = &self.session else {
            let demand = demand || self.token_waiters > 0 || self.refresh_waiters > 0;
            let mut wake = None;
            if self.can_bootstrap() && self.inflight.is_none() && demand {
                if now >= self.not_before_ms {
                    self.start_attempt(now, out);
                } else {
                    wake = Some(self.not_before_ms);
                }
            }
            if self.inflight.is_some() {
                wake = Some(self.deadline_ms);
            }
            self.set_status(
                if self.inflight.is_some() {
                    Status::Refreshing
                } else {
                    Status::SignedOut
                },
                out,
            );
            let wake = earliest(wake, self.waiters_deadline);
            self.set_wake(wake, out);
            return;
        };
        let (expires_at, lead) = (s.expires_at_ms, self.policy.lead_ms(s.lifetime_ms));
        let refresh_at = expires_at.saturating_sub(lead);
        let expired = now >= expires_at;
        if expired && !self.expired_noted {
            self.expired_noted = true;
            out.push(Action::Emit(Event::new(EventKind::SessionExpired, now)));
        }
        // A holder's need is a demand that outlives failures: it is what keeps a waiting socket live.
        let held = !self.holders.is_empty();
        let can = self.can_refresh() && (!self.stalled || held);
        let demand = demand || held || self.owed || self.token_waiters > 0 || self.refresh_waiters > 0;
        // A demand that arrives during a backoff is owed an attempt when the backoff ends.
        self.owed = demand && can && self.inflight.is_none() && now < self.not_before_ms;
        // Automatic attempts: when due, and after expiry only the first (later ones need a demand).
        let auto = now >= refresh_at && (!expired || self.failures == 0);
        if can && self.inflight.is_none() && now >= self.not_before_ms && (auto || demand) {
            self.start_attempt(now, out);
        }
        let status = match (self.inflight.is_some(), expired) {
            (true, _) => Status::Refreshing,
            (false, true) => Status::Expired,
            (false, false) => Status::SignedIn,
        };
        self.set_status(status, out);
        let mut next: Option<u64> = (!expired).then_some(expires_at);
        if self.inflight.is_some() {
            next = Some(next.map_or(self.deadline_ms, |n| n.min(self.deadline_ms)));
        }
        if can && self.inflight.is_none() {
            let retry_pending = now < self.not_before_ms && (!expired || demand);
            let candidate = if now < refresh_at {
                Some(refresh_at.max(self.not_before_ms))
            } else if retry_pending {
                Some(self.not_before_ms)
            } else {
                None
            };
            next = match (next, candidate) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let next = earliest(next, self.waiters_deadline);
        self.set_wake(next, out);
    }
}

fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::session::{Origin, Raw, RawSession};

    const T0: u64 = 1_763_900_000_000;
    const HOUR: u64 = 3_600_000;

    fn session(now: u64, lifetime_ms: u64, n: u32) -> Session {
        let raw = RawSession {
            access_token: Raw::Str(format!("access-{n}")),
            refresh_token: Raw::Str(format!("refresh-{n}")),
            // One second more than the lifetime wanted: whole-second expires_in is counted one short.
            expires_in: Raw::Num((lifetime_ms + crate::core::session::ROUNDING_MS) as f64 / 1000.0),
            user_id: Raw::Str("user-1".into()),
            ..Default::default()
        };
        Session::from_raw(&raw, now, Origin::Issued).unwrap()
    }

    /// A simulated shell: a clock, a timer, a token server that answers as told.
    struct Sim {
        m: AuthMachine,
        now: u64,
        log: Vec<Action>,
        fetches: u32,
        served: u32,
        events: Vec<Event>,
        resolved: usize,
        rejected: Vec<Code>,
    }

    impl Sim {
        fn new(lifetime: u64) -> Sim {
            let mut sim = Sim {
                m: AuthMachine::new(Policy::default(), true, true, 42),
                now: T0,
                log: vec![],
                fetches: 0,
                served: 0,
                events: vec![],
                resolved: 0,
                rejected: vec![],
            };
            let s = session(T0, lifetime, 0);
            sim.feed(Input::SetSession(s));
            sim
        }
        fn take(&mut self, out: Vec<Action>) {
            for a in &out {
                match a {
                    Action::Fetch { .. } => self.fetches += 1,
                    Action::Emit(e) => self.events.push(e.clone()),
                    Action::ResolveTokenWaiters => self.resolved += 1,
                    Action::RejectTokenWaiters(c) => self.rejected.push(*c),
                    _ => {}
                }
            }
            self.log.extend(out);
        }
        fn feed(&mut self, i: Input) {
            let mut out = vec![];
            self.m.handle(self.now, i, &mut out);
            self.take(out);
        }
        fn pending_fetch(&self) -> Option<u64> {
            self.m.inflight
        }
        /// Answers the pending fetch with a fresh session of `lifetime`.
        fn serve_ok(&mut self, lifetime: u64) {
            let attempt = self.pending_fetch().expect("a fetch is pending");
            self.served += 1;
            let s = session(self.now, lifetime, self.served);
            self.feed(Input::RefreshOk { attempt, session: s });
        }
        fn serve_err(&mut self, failure: Failure) {
            let attempt = self.pending_fetch().expect("a fetch is pending");
            self.feed(Input::RefreshErr { attempt, failure });
        }
        /// Lets time pass to `until`, firing the timer when it is due (a perfect timer).
        fn run_until(&mut self, until: u64, mut on_fetch: impl FnMut(&mut Sim)) {
            loop {
                if self.pending_fetch().is_some() {
                    on_fetch(self);
                    if self.pending_fetch().is_some() {
                        return;
                    }
                    continue;
                }
                match self.m.wake_at() {
                    Some(t) if t <= until => {
                        self.now = self.now.max(t);
                        self.feed(Input::Wake(Wake::Timer));
                    }
                    _ => {
                        self.now = until;
                        return;
                    }
                }
            }
        }
        fn kinds(&self) -> Vec<EventKind> {
            self.events.iter().map(|e| e.kind).collect()
        }
    }

    #[test]
    fn hourly_tokens_refresh_six_minutes_before_expiry_for_a_day() {
        let mut sim = Sim::new(HOUR);
        let mut refreshed_at = vec![];
        sim.run_until(T0 + 24 * HOUR, |s| {
            refreshed_at.push(s.now);
            s.serve_ok(HOUR);
        });
        assert_eq!(sim.fetches, 26, "24 h / 54 min");
        assert_eq!(
            refreshed_at[0],
            T0 + HOUR - 360_000,
            "lead: 10% of an hour beats the 60 s margin"
        );
        for w in refreshed_at.windows(2) {
            assert_eq!(w[1] - w[0], HOUR - 360_000);
        }
        assert_eq!(sim.m.refresh_count(), 26);
        assert!(!sim.kinds().contains(&EventKind::SessionExpired));
        assert_eq!(sim.m.status(), Status::SignedIn);
    }

    #[test]
    fn twenty_second_tokens_refresh_at_half_life() {
        let mut sim = Sim::new(20_000);
        let mut at = vec![];
        sim.run_until(T0 + 60_000, |s| {
            at.push(s.now - T0);
            s.serve_ok(20_000);
        });
        assert_eq!(at, vec![10_000, 20_000, 30_000, 40_000, 50_000, 60_000]);
    }

    #[test]
    fn many_callers_share_one_refresh() {
        let mut sim = Sim::new(HOUR);
        sim.now = T0 + HOUR - 1_000; // inside the transit margin: the token is not usable
        let mut out = vec![];
        let answers: Vec<Answer> = (0..100).map(|_| sim.m.want_token(sim.now, &mut out)).collect();
        sim.take(out);
        assert!(answers.iter().all(|a| *a == Answer::Wait));
        assert_eq!(sim.fetches, 1);
        sim.serve_ok(HOUR);
        assert_eq!(sim.resolved, 1, "one action resolves every waiter");
        assert_eq!(sim.m.access_token().unwrap().expose(), "access-1");
        let mut out = vec![];
        assert_eq!(sim.m.want_token(sim.now, &mut out), Answer::Ready);
        assert!(out.iter().all(|a| !matches!(a, Action::Fetch { .. })));
    }

    #[test]
    fn a_token_inside_the_lead_is_still_handed_out_while_it_refreshes() {
        let mut sim = Sim::new(HOUR);
        sim.now = T0 + HOUR - 300_000;
        let mut out = vec![];
        assert_eq!(sim.m.want_token(sim.now, &mut out), Answer::Ready);
        sim.take(out);
        assert_eq!(sim.fetches, 1, "the due refresh started");
        assert_eq!(sim.m.status(), Status::Refreshing);
    }

    #[test]
    fn server_errors_retry_with_backoff_while_the_token_is_valid() {
        let mut sim = Sim::new(20_000);
        let mut fails = 0;
        let mut attempt_times = vec![];
        sim.run_until(T0 + 15_000, |s| {
            attempt_times.push(s.now);
            if fails < 3 {
                fails += 1;
                s.serve_err(Failure::Http {
                    status: 503,
                    errors: vec![],
                });
            } else {
                s.serve_ok(20_000);
            }
        });
        assert_eq!(sim.fetches, 4);
        let gaps: Vec<u64> = attempt_times.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            (100..=200).contains(&gaps[0]) && (200..=400).contains(&gaps[1]) && (400..=800).contains(&gaps[2]),
            "{gaps:?}"
        );
        let failed: Vec<&Event> = sim
            .events
            .iter()
            .filter(|e| e.kind == EventKind::RefreshFailed)
            .collect();
        assert_eq!(failed.len(), 3);
        assert!(failed.iter().all(|e| e.will_retry && e.code == Some(Code::ServerError)));
        assert_eq!(sim.m.last_error(), None, "cleared by the success");
        assert_eq!(sim.m.refresh_count(), 1);
    }

    #[test]
    fn retries_stop_at_expiry_and_resume_on_demand_or_wake() {
        let mut sim = Sim::new(20_000);
        sim.run_until(T0 + 60_000, |s| s.serve_err(Failure::Network));
        let n = sim.fetches;
        assert!(n > 3 && n < 40, "bounded retries: {n}");
        assert_eq!(sim.m.status(), Status::Expired);
        assert!(sim.kinds().contains(&EventKind::SessionExpired));
        assert_eq!(sim.m.wake_at(), None, "no timer loops after expiry");
        assert_eq!(sim.m.last_error(), Some(Code::NetworkError));
        // The browser comes back online: one attempt at once.
        sim.feed(Input::Wake(Wake::Online));
        assert_eq!(sim.fetches, n + 1);
        sim.serve_ok(20_000);
        assert_eq!(sim.m.status(), Status::SignedIn);
        assert_eq!(*sim.kinds().last().unwrap(), EventKind::TokenRefreshed);
    }

    #[test]
    fn invalid_grant_signs_out_without_retrying() {
        let mut sim = Sim::new(20_000);
        sim.now = T0 + 19_000;
        let mut out = vec![];
        assert_eq!(sim.m.want_token(sim.now, &mut out), Answer::Wait);
        sim.take(out);
        sim.serve_err(Failure::Http {
            status: 400,
            errors: vec!["refresh_token_already_used".into()],
        });
        assert_eq!(sim.m.status(), Status::SignedOut);
        assert_eq!(sim.rejected, vec![Code::InvalidGrant]);
        let last = sim.events.last().unwrap();
        assert_eq!((last.kind, last.code), (EventKind::SignedOut, Some(Code::InvalidGrant)));
        sim.run_until(T0 + HOUR, |_| panic!("no refresh after sign-out"));
        assert_eq!(sim.fetches, 1);
        let mut out = vec![];
        assert_eq!(sim.m.want_token(sim.now, &mut out), Answer::Fail(Code::SignedOut));
    }

    #[test]
    fn refused_credentials_say_so_and_the_first_code_decides() {
        let f = |errors: &[&str]| Failure::Http {
            status: 400,
            errors: errors.iter().map(|e| e.to_string()).collect(),
        };
        assert_eq!(
            f(&["invalid_credentials"]).classify(),
            (Class::Gone, Code::InvalidCredentials)
        );
        // The header named a refresh-token error; the body's older OAuth word agrees it is over.
        assert_eq!(
            f(&["refresh_token_not_found", "invalid_grant"]).classify(),
            (Class::Gone, Code::InvalidGrant)
        );
        assert_eq!(f(&["session_expired"]).classify(), (Class::Gone, Code::InvalidGrant));
        assert_eq!(
            f(&["validation_failed"]).classify(),
            (Class::Final, Code::RefreshRejected)
        );
        // The gateway's 401 without a key names nothing.
        let no_key = Failure::Http {
            status: 401,
            errors: vec![],
        };
        assert_eq!(no_key.classify(), (Class::Final, Code::RefreshRejected));
    }

    #[test]
    fn other_client_errors_stop_automatic_refreshes_until_asked() {
        let mut sim = Sim::new(20_000);
        sim.run_until(T0 + 60_000, |s| {
            s.serve_err(Failure::Http {
                status: 401,
                errors: vec!["no_api_key".into()],
            })
        });
        assert_eq!(sim.fetches, 1);
        assert_eq!(sim.m.status(), Status::Expired);
        assert_eq!(sim.m.last_error(), Some(Code::RefreshRejected));
        let mut out = vec![];
        assert_eq!(sim.m.want_token(sim.now, &mut out), Answer::Fail(Code::RefreshRejected));
        sim.take(out);
        let mut out = vec![];
        sim.m.want_refresh(sim.now, &mut out).unwrap();
        sim.take(out);
        assert_eq!(sim.fetches, 2, "refresh() tries again");
    }

    #[test]
    fn a_sleeping_machine_refreshes_on_wake_even_if_the_timer_never_fired() {
        let mut sim = Sim::new(HOUR);
        // The laptop sleeps for 5 hours; the timer did not fire.
        sim.now = T0 + 5 * HOUR;
        sim.feed(Input::Wake(Wake::Visible));
        assert!(sim.kinds().contains(&EventKind::SessionExpired));
        assert_eq!(sim.fetches, 1, "the first attempt after expiry is automatic");
        sim.serve_ok(HOUR);
        assert_eq!(sim.m.status(), Status::SignedIn);
        assert_eq!(sim.m.wake_at(), Some(sim.now + HOUR - 360_000));
    }

    #[test]
    fn a_throttled_timer_firing_late_is_caught_by_the_token_request() {
        let mut sim = Sim::new(300_000);
        // The timer was due at T0+240 s but a background tab throttled it; the app asks at T0+299.9 s.
        sim.now = T0 + 299_900;
        let mut out = vec![];
        assert_eq!(
            sim.m.want_token(sim.now, &mut out),
            Answer::Wait,
            "never hands out a token about to expire"
        );
        sim.take(out);
        sim.serve_ok(300_000);
        assert_eq!(sim.resolved, 1);
    }

    #[test]
    fn wake_ups_before_the_lead_do_not_refresh_early() {
        let mut sim = Sim::new(HOUR);
        for k in 1..50 {
            sim.now = T0 + k * 60_000;
            sim.feed(Input::Wake(if k % 2 == 0 { Wake::Focus } else { Wake::Online }));
        }
        assert_eq!(sim.fetches, 0);
    }

    #[test]
    fn focus_storms_after_expiry_respect_the_backoff() {
        let mut sim = Sim::new(20_000);
        sim.run_until(T0 + 30_000, |s| s.serve_err(Failure::Network));
        let n = sim.fetches;
        for k in 0..100 {
            sim.now = T0 + 30_000 + k * 10;
            sim.feed(Input::Wake(Wake::Focus));
            if sim.pending_fetch().is_some() {
                sim.serve_err(Failure::Network);
            }
        }
        assert!(
            sim.fetches - n <= 3,
            "{} attempts in one second of focus events",
            sim.fetches - n
        );
    }

    #[test]
    fn results_of_superseded_attempts_are_ignored() {
        let mut sim = Sim::new(20_000);
        sim.now = T0 + 10_000;
        sim.feed(Input::Wake(Wake::Timer));
        let stale = sim.pending_fetch().unwrap();
        // The app hands over a new session while the request runs.
        sim.feed(Input::SetSession(session(sim.now, 20_000, 7)));
        assert!(sim.log.iter().any(|a| matches!(a, Action::Abort { .. })));
        sim.feed(Input::RefreshOk {
            attempt: stale,
            session: session(sim.now, 20_000, 8),
        });
        assert_eq!(sim.m.access_token().unwrap().expose(), "access-7");
        sim.feed(Input::RefreshErr {
            attempt: stale,
            failure: Failure::Http {
                status: 400,
                errors: vec!["invalid_grant".into()],
            },
        });
        assert_eq!(sim.m.status(), Status::SignedIn);
    }

    #[test]
    fn a_refresh_reported_by_a_followed_client_completes_the_attempt_in_flight() {
        let mut sim = Sim::new(20_000);
        sim.now = T0 + 10_000;
        sim.feed(Input::Wake(Wake::Timer));
        let attempt = sim.pending_fetch().unwrap();
        // supabase-js announces TOKEN_REFRESHED before its refreshSession() promise resolves.
        sim.feed(Input::Refreshed(session(sim.now, 20_000, 5)));
        assert_eq!(sim.m.refresh_count(), 1);
        assert!(
            !sim.log.iter().any(|a| matches!(a, Action::Abort { .. })),
            "the running refresh is the one that finished"
        );
        sim.feed(Input::RefreshOk {
            attempt,
            session: session(sim.now, 20_000, 5),
        });
        assert_eq!(sim.m.refresh_count(), 1, "counted once");
        assert_eq!(sim.m.wake_at(), Some(sim.now + 10_000));
    }

    #[test]
    fn a_source_that_can_sign_in_bootstraps_on_demand_and_not_after_sign_out() {
        let mut m = AuthMachine::new(Policy::default(), true, false, 3).with_bootstrap(true);
        let mut out = vec![];
        assert_eq!(m.want_token(T0, &mut out), Answer::Wait);
        assert_eq!(m.want_token(T0, &mut out), Answer::Wait);
        assert_eq!(
            out.iter().filter(|a| matches!(a, Action::Fetch { .. })).count(),
            1,
            "one sign-in for both"
        );
        assert_eq!(m.status(), Status::Refreshing);
        let mut out = vec![];
        m.handle(
            T0 + 5,
            Input::RefreshOk {
                attempt: 1,
                session: session(T0, HOUR, 1),
            },
            &mut out,
        );
        assert!(out.contains(&Action::ResolveTokenWaiters));
        assert!(out
            .iter()
            .any(|a| matches!(a, Action::Emit(e) if e.kind == EventKind::SignedIn)));
        assert_eq!(m.refresh_count(), 0, "a sign-in is not a refresh");
        m.handle(T0 + 10, Input::SignOut, &mut out);
        let mut out = vec![];
        assert_eq!(
            m.want_token(T0 + 20, &mut out),
            Answer::Fail(Code::SignedOut),
            "no silent sign-in after sign-out"
        );
        assert!(out.is_empty());
        m.want_refresh(T0 + 30, &mut out).unwrap();
        assert!(
            out.iter().any(|a| matches!(a, Action::Fetch { .. })),
            "refresh() signs in again"
        );
        // A source without a session that says 404 / invalid stops until asked again.
        let attempt = m.inflight.unwrap();
        let mut out = vec![];
        m.handle(
            T0 + 40,
            Input::RefreshErr {
                attempt,
                failure: Failure::Http {
                    status: 404,
                    errors: vec!["token_not_found".into()],
                },
            },
            &mut out,
        );
        assert_eq!(m.status(), Status::SignedOut);
        assert_eq!(m.last_error(), Some(Code::TokenNotFound));
        assert_eq!(m.want_token(T0 + 50, &mut out), Answer::Fail(Code::SignedOut));
    }

    #[test]
    fn sign_out_rejects_waiters_and_stops_everything() {
        let mut sim = Sim::new(20_000);
        sim.now = T0 + 19_990;
        let mut out = vec![];
        sim.m.want_token(sim.now, &mut out);
        sim.m.want_refresh(sim.now, &mut out).unwrap();
        sim.take(out);
        sim.feed(Input::SignOut);
        assert!(sim.log.contains(&Action::SettleRefreshWaiters(Some(Code::SignedOut))));
        assert_eq!(sim.rejected, vec![Code::SignedOut]);
        assert_eq!(sim.m.wake_at(), None);
        assert_eq!(sim.m.status(), Status::SignedOut);
        assert_eq!(*sim.kinds().last().unwrap(), EventKind::SignedOut);
    }

    #[test]
    fn a_timer_that_fires_early_by_this_clock_is_armed_again() {
        // Firefox rounds `Date.now()` with jitter: the refresh timer may find the clock 1 ms short.
        let mut sim = Sim::new(HOUR);
        let at = sim.m.wake_at().unwrap();
        let mut out = vec![];
        sim.m.handle(at - 1, Input::Wake(Wake::Timer), &mut out);
        assert_eq!(out, vec![Action::WakeAt(at)], "not due yet: armed again, not forgotten");
        sim.now = at;
        sim.feed(Input::Wake(Wake::Timer));
        assert_eq!(sim.fetches, 1, "refreshed when due");
    }

    #[test]
    fn a_static_token_is_served_until_it_expires_then_never() {
        let mut m = AuthMachine::new(Policy::default(), false, false, 1);
        let s = session(T0, 20_000, 0);
        assert_eq!(m.check(&s, T0 + 20_000), Err(Code::SessionExpired));
        let mut out = vec![];
        m.handle(T0, Input::SetSession(s), &mut out);
        assert_eq!(m.want_token(T0 + 17_000, &mut out), Answer::Ready);
        assert_eq!(
            m.want_token(T0 + 18_500, &mut out),
            Answer::Fail(Code::SessionExpired),
            "inside the 2 s transit margin"
        );
        assert_eq!(m.want_refresh(T0, &mut out), Err(Code::NoRefreshSource));
        out.clear();
        m.handle(T0 + 20_000, Input::Wake(Wake::Timer), &mut out);
        assert!(out
            .iter()
            .any(|a| matches!(a, Action::Emit(e) if e.kind == EventKind::SessionExpired)));
        assert_eq!(m.status(), Status::Expired);
        assert_eq!(m.wake_at(), None);
    }

    #[test]
    fn a_session_without_refresh_token_cannot_refresh_by_grant() {
        let m = AuthMachine::new(Policy::default(), true, true, 1);
        let raw = RawSession {
            expires_in: Raw::Num(0.0),
            ..RawSession::bare("opaque")
        };
        let s = Session::from_raw(&raw, T0, Origin::Issued).unwrap();
        assert_eq!(m.check(&s, T0), Err(Code::SessionExpired));
    }

    #[test]
    fn clock_skewed_sessions_refresh_on_schedule() {
        // The local clock runs 2 hours ahead of the server. Each refresh response is Issued:
        // its expires_in from receipt is trusted, so the schedule stays at half-life.
        let ahead = 2 * HOUR;
        let mut sim = Sim::new(20_000);
        sim.now += ahead;
        sim.feed(Input::Wake(Wake::Visible));
        assert_eq!(sim.fetches, 1, "looks expired: refreshed at once");
        let raw = RawSession {
            access_token: Raw::Str("access-s".into()),
            refresh_token: Raw::Str("refresh-s".into()),
            expires_at: Raw::Num(((T0 + 20_000) / 1000) as f64), // server time
            expires_in: Raw::Num(21.0),
            ..Default::default()
        };
        let s = Session::from_raw(&raw, sim.now, Origin::Issued).unwrap();
        let attempt = sim.pending_fetch().unwrap();
        sim.feed(Input::RefreshOk { attempt, session: s });
        assert_eq!(sim.m.status(), Status::SignedIn);
        assert_eq!(sim.m.wake_at(), Some(sim.now + 10_000));
    }

    #[test]
    fn snapshot_changes_are_reported_and_quiet_inputs_report_nothing() {
        let mut sim = Sim::new(HOUR);
        let mut out = vec![];
        sim.m.handle(T0 + 1_000, Input::Wake(Wake::Focus), &mut out);
        assert!(out.is_empty(), "nothing changed: {out:?}");
        sim.m.handle(T0 + HOUR - 360_000, Input::Wake(Wake::Timer), &mut out);
        assert!(out.contains(&Action::Changed), "status moved to refreshing");
    }

    #[test]
    fn events_never_carry_tokens() {
        let mut sim = Sim::new(20_000);
        sim.run_until(T0 + 100_000, |s| {
            if s.fetches % 3 == 0 {
                s.serve_err(Failure::Http {
                    status: 500,
                    errors: vec!["boom".into()],
                })
            } else {
                s.serve_ok(20_000)
            }
        });
        let shown = format!("{:?} {:?}", sim.events, sim.log);
        assert!(!shown.contains("access-") && !shown.contains("refresh-"), "{shown}");
        let shown = format!("{:?}", sim.m);
        assert!(!shown.contains("access-") && !shown.contains("refresh-"));
    }

    fn fetch_actions(log: &[Action]) -> Vec<(u64, u64, Option<String>)> {
        log.iter()
            .filter_map(|a| match a {
                Action::Fetch {
                    attempt,
                    deadline_ms,
                    present,
                } => Some((*attempt, *deadline_ms, present.as_ref().map(|p| p.expose().to_owned()))),
                _ => None,
            })
            .collect()
    }

    /// Defect 1: a refresh that never answers hung `accessToken()`, `refresh()` and the status.
    #[test]
    fn a_hung_refresh_is_abandoned_at_its_deadline_and_retried() {
        let mut sim = Sim::new(20_000);
        sim.now = T0 + 19_000; // the token is inside its transit margin
        let mut out = vec![];
        assert_eq!(sim.m.want_token(sim.now, &mut out), Answer::Wait);
        sim.take(out);
        let (attempt, deadline, _) = fetch_actions(&sim.log)[0].clone();
        assert_eq!(deadline, sim.now + 10_000);
        assert_eq!(sim.m.wake_at(), Some(T0 + 20_000), "expiry first, then the deadline");
        sim.now = T0 + 20_000;
        sim.feed(Input::Wake(Wake::Timer));
        assert_eq!(sim.m.status(), Status::Refreshing);
        assert_eq!(sim.m.wake_at(), Some(deadline), "the deadline is always scheduled");
        // The endpoint never answers. The timer fires at the deadline.
        sim.now = deadline;
        sim.feed(Input::Wake(Wake::Timer));
        assert!(sim.log.contains(&Action::Abort { attempt }));
        assert_eq!(
            sim.rejected,
            vec![Code::RefreshTimeout],
            "the waiter is settled, not left pending"
        );
        assert_eq!(sim.m.last_error(), Some(Code::RefreshTimeout));
        assert_ne!(sim.m.status(), Status::Refreshing);
        // The late answer of the abandoned attempt is dropped.
        let late = session(sim.now, 20_000, 99);
        sim.feed(Input::RefreshOk { attempt, session: late });
        assert_ne!(sim.m.access_token().unwrap().expose(), "access-99");
    }

    /// A throttled timer: any later wake-up past the deadline abandons the attempt too.
    #[test]
    fn a_wake_up_after_a_frozen_timer_abandons_the_attempt_past_its_deadline() {
        let mut sim = Sim::new(20_000);
        sim.run_until(T0 + 10_000, |_| {});
        let attempt = sim.m.inflight().expect("the due refresh started");
        sim.now = T0 + 60_000; // the tab was frozen for 50 s
        sim.feed(Input::Wake(Wake::Focus));
        assert!(sim.log.contains(&Action::Abort { attempt }));
        assert_eq!(sim.m.last_error(), Some(Code::RefreshTimeout));
        // The focus after expiry is a demand: it is owed an attempt when the short backoff ends.
        let at = sim.m.wake_at().expect("the owed attempt is scheduled");
        assert!(at <= sim.now + 200);
        sim.now = at;
        sim.feed(Input::Wake(Wake::Timer));
        let next = sim.m.inflight().expect("the owed attempt started");
        assert!(next > attempt);
    }

    /// Defect 2: `refresh(); setSession(s2)` in one tick. Each attempt names the refresh token it
    /// presents, fixed when it starts, and a superseded attempt is aborted by id.
    #[test]
    fn each_attempt_names_its_refresh_token_and_a_new_session_aborts_it() {
        let mut sim = Sim::new(HOUR);
        let mut out = vec![];
        sim.m.want_refresh(sim.now, &mut out).unwrap();
        let s2 = session(sim.now, HOUR, 2);
        sim.m.handle(sim.now, Input::SetSession(s2), &mut out);
        sim.take(out);
        let fetches = fetch_actions(&sim.log);
        assert_eq!(fetches.len(), 1);
        assert_eq!(
            fetches[0].2.as_deref(),
            Some("refresh-0"),
            "the token of the session it started with"
        );
        assert!(sim.log.contains(&Action::Abort { attempt: fetches[0].0 }));
        assert_eq!(
            sim.m.inflight(),
            None,
            "nothing presents refresh-2 behind the app's back"
        );
        // The next refresh presents refresh-2.
        sim.log.clear();
        let mut out = vec![];
        sim.m.want_refresh(sim.now, &mut out).unwrap();
        sim.take(out);
        assert_eq!(fetch_actions(&sim.log)[0].2.as_deref(), Some("refresh-2"));
    }

    /// Defect 2 (sign-in sources): the constructor's start must not undo a sign-out made in the
    /// same tick, as `Refresh` (which re-enables sign-in) did.
    #[test]
    fn start_after_sign_out_does_not_sign_in_again() {
        let mut m = AuthMachine::new(Policy::default(), true, false, 1).with_bootstrap(true);
        let mut out = vec![];
        m.handle(T0, Input::SignOut, &mut out);
        m.handle(T0, Input::Start, &mut out);
        assert!(!out.iter().any(|a| matches!(a, Action::Fetch { .. })));
        assert_eq!(m.want_token(T0, &mut out), Answer::Fail(Code::SignedOut));
        // Without the sign-out, a demand signs in.
        let mut m = AuthMachine::new(Policy::default(), true, false, 1).with_bootstrap(true);
        let mut out = vec![];
        m.handle(T0, Input::Start, &mut out);
        assert_eq!(m.want_token(T0, &mut out), Answer::Wait);
        assert_eq!(fetch_actions(&out)[0].2, None, "signs in from nothing");
    }

    /// The liveness rule (the soak's stall): a socket waits while every refresh fails until past
    /// expiry; the machine keeps retrying for it, and delivers as soon as the endpoint recovers.
    #[test]
    fn a_waiting_holder_keeps_refreshes_going_after_expiry_until_the_endpoint_recovers() {
        let mut sim = Sim::new(20_000);
        let recover_at = T0 + 23_000; // ~3 s past expiry
        let mut attempts = vec![];
        let mut serve = |s: &mut Sim| {
            attempts.push(s.now);
            if s.now < recover_at {
                s.serve_err(Failure::Http {
                    status: 500,
                    errors: vec![],
                });
            } else {
                s.serve_ok(20_000);
            }
        };
        sim.run_until(T0 + 18_500, &mut serve);
        // The socket's frame is queued and the token is inside its transit margin: it needs one.
        let mut out = vec![];
        assert_ne!(sim.m.need(7, sim.now, &mut out), Answer::Ready);
        sim.take(out);
        sim.run_until(T0 + 90_000, &mut serve);
        assert!(
            attempts.iter().any(|t| *t >= recover_at),
            "retried after expiry: {attempts:?}"
        );
        assert!(sim.m.usable(sim.now) || sim.m.status() == Status::Refreshing);
        let first_ok = attempts.iter().find(|t| **t >= recover_at).unwrap();
        // Bound: the longest backoff (30 s) + one attempt deadline.
        assert!(*first_ok <= recover_at + 30_000 + 10_000);
        assert_eq!(sim.m.holders(), 0, "the holder was released by the new token");
        assert!(sim.kinds().contains(&EventKind::TokenRefreshed));
    }

    /// Only a new session restarts the backoff (as auth-js restarts it at each refresh): an `online`
    /// wake-up skips the wait once but keeps the count, so the retries presenting one refresh
    /// token keep doubling (what the sim's storm bound counts, seed 270496).
    #[test]
    fn only_a_new_session_restarts_the_backoff() {
        let retries = |sim: &Sim| -> Vec<u64> {
            sim.events
                .iter()
                .filter(|e| e.kind == EventKind::RefreshFailed)
                .filter_map(|e| e.retry_in_ms)
                .collect()
        };
        let bracket = |k: u32| 100u64 << (k - 1)..=200u64 << (k - 1);
        let mut sim = Sim::new(20_000);
        sim.run_until(T0 + 12_000, |s| s.serve_err(Failure::Network));
        let before = retries(&sim);
        assert!(before.len() >= 3, "{before:?}");
        for (k, d) in before.iter().enumerate() {
            assert!(bracket(k as u32 + 1).contains(d), "retry {}: {d} ms", k + 1);
        }
        // Back online: one attempt at once, whose failure backs off from where the count was.
        let n = sim.fetches;
        sim.feed(Input::Wake(Wake::Online));
        assert_eq!(sim.fetches, n + 1);
        sim.serve_err(Failure::Network);
        let k = before.len() as u32 + 1;
        assert!(
            bracket(k).contains(retries(&sim).last().unwrap()),
            "{:?}",
            retries(&sim)
        );
        // Online again, and this time the refresh succeeds: the next session starts afresh.
        sim.feed(Input::Wake(Wake::Online));
        sim.serve_ok(20_000);
        let n = retries(&sim).len();
        sim.run_until(sim.now + 11_000, |s| s.serve_err(Failure::Network));
        assert!(bracket(1).contains(&retries(&sim)[n]), "{:?}", retries(&sim));
    }

    /// With nothing waiting, an expired session on a dead network does not loop.
    #[test]
    fn with_nothing_waiting_an_expired_session_does_not_retry_in_a_loop() {
        let mut sim = Sim::new(20_000);
        sim.run_until(T0 + 3_600_000, |s| s.serve_err(Failure::Network));
        // Retries while valid (10 s of backoff from 200 ms), one attempt after expiry, then silence.
        assert!(sim.fetches <= 12, "{} requests in an hour", sim.fetches);
        assert_eq!(sim.m.status(), Status::Expired);
        assert_eq!(sim.m.wake_at(), None, "no timer left running");
        // A holder wakes it up again.
        let mut out = vec![];
        assert_eq!(sim.m.need(1, sim.now, &mut out), Answer::Wait);
        sim.take(out);
        assert!(sim.m.inflight().is_some());
    }

    /// A final refusal (403) is not retried for nobody, but a waiting socket retries it at the
    /// longest backoff rather than staying stuck.
    #[test]
    fn a_final_refusal_is_retried_only_for_a_waiting_holder_at_the_longest_backoff() {
        let mut sim = Sim::new(20_000);
        sim.now = T0 + 19_500;
        let mut out = vec![];
        assert_eq!(sim.m.need(3, sim.now, &mut out), Answer::Wait);
        sim.take(out);
        let t0 = sim.now;
        sim.serve_err(Failure::Http {
            status: 403,
            errors: vec![],
        });
        let ev = sim.events.last().unwrap().clone();
        assert_eq!(ev.code, Some(Code::RefreshRejected));
        assert!(ev.will_retry);
        let mut retried_at = None;
        sim.run_until(t0 + 60_000, |s| {
            retried_at.get_or_insert(s.now);
            s.serve_ok(20_000);
        });
        let retried_at = retried_at.expect("a way out is scheduled");
        assert!((t0 + 15_000..=t0 + 30_000).contains(&retried_at), "{}", retried_at - t0);
        assert_eq!(sim.m.holders(), 0);
        // Released holders do not keep an expired session busy.
        let mut sim = Sim::new(20_000);
        sim.now = T0 + 19_500;
        let mut out = vec![];
        sim.m.need(3, sim.now, &mut out);
        sim.m.release(3, sim.now, &mut out);
        sim.take(out);
        sim.serve_err(Failure::Http {
            status: 403,
            errors: vec![],
        });
        assert!(!sim.events.last().unwrap().will_retry);
        sim.run_until(T0 + 600_000, |_| {
            panic!("no request after a final refusal with nothing waiting")
        });
    }

    #[test]
    fn holders_fail_at_once_without_a_session_and_are_dropped_on_sign_out() {
        let mut m = AuthMachine::new(Policy::default(), true, true, 1);
        let mut out = vec![];
        assert_eq!(m.need(1, T0, &mut out), Answer::Fail(Code::SignedOut));
        let mut sim = Sim::new(20_000);
        sim.now = T0 + 19_500;
        let mut out = vec![];
        sim.m.need(1, sim.now, &mut out);
        sim.m.handle(sim.now, Input::SignOut, &mut out);
        sim.take(out);
        assert_eq!(sim.m.holders(), 0);
    }

    /// A session that arrives already unusable supersedes the attempt; the new attempt must not
    /// extend the deadline of the callers already waiting (the sim's seed 201).
    #[test]
    fn waiters_are_settled_by_their_own_deadline_whatever_attempts_follow() {
        let mut sim = Sim::new(20_000);
        sim.now = T0 + 19_000;
        let mut out = vec![];
        assert_eq!(sim.m.want_token(sim.now, &mut out), Answer::Wait);
        sim.take(out);
        let first_deadline = sim.now + 10_000;
        // 6 s later another tab's session arrives, valid but inside its transit margin already.
        sim.now += 6_000;
        let stale = session(sim.now - 19_800, 20_000, 7);
        sim.feed(Input::SetSession(stale));
        assert!(
            sim.m.inflight().is_some(),
            "a new attempt started, with a later deadline"
        );
        assert!(sim.m.deadline().unwrap() > first_deadline);
        assert!(sim.rejected.is_empty() && sim.resolved == 0);
        // The endpoint hangs: only timers fire.
        while let Some(t) = sim.m.wake_at().filter(|t| *t <= first_deadline) {
            sim.now = t;
            sim.feed(Input::Wake(Wake::Timer));
        }
        assert_eq!(sim.now, first_deadline, "the waiters' own deadline is scheduled");
        assert_eq!(
            sim.rejected,
            vec![Code::RefreshTimeout],
            "settled by their own deadline"
        );
    }
}
