//! The cross-tab protocol as a pure state machine: which tab may present a refresh token, when,
//! and what the others do meanwhile. It sits between the [`AuthMachine`]'s `Fetch` and the real
//! request: the shell feeds it the `Fetch` as [`Input::Want`] and performs [`Action::Fetch`] only
//! when this machine says so. Each action is one call of the shell (one Web Locks request, one
//! `postMessage`, one `fetch`, one machine input), and each answer comes back as one input.
//!
//! Two ways to agree, chosen by the shell ([`Mode`]):
//! - **Web Locks** (`navigator.locks`): refresh under the lock `authwire-refresh:<key>`; inside it,
//!   ask the spent marker whether another tab already presented this refresh token.
//! - **Claims** (BroadcastChannel only): post `Claim{token, at, tab}`, wait `claim_window_ms`; the
//!   smallest `(at, tab)` among the live claims for that token wins, the others withdraw.
//!
//! Rules it keeps (the simulation in `tests/sim` checks them over thousands of seeded worlds):
//! 1. **A refresh token is presented at most once across all tabs.** Claims are per refresh-token
//!    fingerprint. A token known spent (this tab's own success, a peer's `Spent`, the shared
//!    marker) is never presented again. While this tab's request for a token is outstanding, a
//!    new attempt for the same token joins it instead of sending another one, and a request that
//!    was sent is never cancelled because its attempt was superseded: only its answer decides.
//! 2. **A tab that lost the claim for token X does not claim X again while that claim is live**:
//!    it waits for a session newer than X (the winner publishes it) until the attempt deadline,
//!    then the attempt fails as retryable and the AuthMachine backs off. A claim stops being live
//!    when its winner spends the token (`Spent`), withdraws it (`Unclaim`: its request failed
//!    without rotating, it was frozen through its window, or its page closed), or after
//!    [`Config::claim_ttl_ms`], which outlasts anything its winner can still present: a winner
//!    presents only within `claim_window_ms + claim_grace_ms` of its claim and abandons its request
//!    at `hold_cap_ms`. A tab that hears a claim for a token it holds a smaller live claim on (or
//!    knows spent) says so again: a tab that opened after the first claim was posted never heard
//!    it. Safety of claims assumes a message round trip between live tabs fits in the window (the
//!    BroadcastChannel delivers in microseconds to milliseconds; the window is 150 ms).
//! 3. **A lock is only ever waited for with a deadline** (`lock_timeout_ms`, never past the attempt
//!    deadline). On acquire timeout the tab does *not* refresh without the lock: it re-reads what
//!    other tabs stored, adopts it when newer, and otherwise fails the attempt with a retryable
//!    `Failure::LockTimeout` (the AuthMachine backs off and tries again).
//! 4. **The lock is released on every path**: after the answer (success, failure, hold cap), when
//!    the token turns out spent, when a grant arrives for an attempt that is gone. A tab that
//!    closes while holding it loses it to the lock manager, and the others proceed.
//! 5. **A late success is used, never thrown away**: the server already rotated the token. It is
//!    delivered to the attempt now in flight (`RefreshOk`), or, if none, as `Refreshed` while the
//!    tab still holds the session it rotated; the shell then stores and publishes it as usual.
//!    The lock is held until the answer (at most `hold_cap_ms`, then the request is abandoned: the
//!    one case where the token's fate is unknown, so it is not marked spent).
//! 6. **Newer-session rule**: a peer's (or stored) session is adopted only if it is newer by a
//!    strict order: later expiry; at the same expiry, a refresh token not known spent over one that
//!    is; then the larger access fingerprint (we have none: any). Strict, so that tabs converge: with
//!    "differs and expires no earlier", two same-expiry sessions were adopted back and forth forever.
//!    Published sessions must carry their expiry on the browser clock (all tabs share it), not the
//!    server's `expires_at`: see `tests/sim`.
//! 7. On a success the order is: mark spent, post `Spent`, deliver (the shell stores and posts the
//!    session), release the lock: the next lock holder finds the marker and the stored session.
//! 8. `Hello`: a new tab asks; any tab with a session answers with it.
//!
//! [`AuthMachine`]: super::auth_machine::AuthMachine

use std::fmt;

use super::text;

use super::auth_machine::{Class, Failure};
// Only the full build has other tabs to agree with. The lite build's sessions are alone (a
// supabase-js app leaves storage and cross-tab to supabase-js): there the mode is always
// `Mode::Alone`, the inputs only other tabs, locks and spent markers give are ignored (`if FULL`),
// and the compiler leaves their code out of the lite wasm.
use super::options::FULL;
use super::policy::Timer;
use super::session::Session;
use super::token::Secret;

/// A short, non-reversible fingerprint of a token (FNV-1a 64): what markers, claims and messages
/// carry instead of the token. Shown as 16 hex digits (the spent markers' format).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fp(pub u64);

impl Fp {
    /// The fingerprint of a token's text.
    pub fn of_str(token: &str) -> Fp {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in token.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Fp(h)
    }
    /// The fingerprint of a secret.
    pub fn of(token: &Secret) -> Fp {
        Fp::of_str(token.expose())
    }
    /// The 16 hex digits.
    pub fn hex(self) -> String {
        text::hex(self.0, 16)
    }
}

impl fmt::Display for Fp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Fp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&text::cat(&["Fp(", &self.hex(), ")"]))
    }
}

/// What the protocol needs to know of a session: fingerprints and expiry (local clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// The access token's fingerprint.
    pub access: Fp,
    /// The refresh token's fingerprint.
    pub refresh: Option<Fp>,
    /// When the access token expires, ms since the epoch, local clock.
    pub expires_at_ms: u64,
}

impl Summary {
    /// The summary of a session.
    pub fn of(s: &Session) -> Summary {
        Summary {
            access: Fp::of(&s.access),
            refresh: s.refresh.as_ref().map(Fp::of),
            expires_at_ms: s.expires_at_ms,
        }
    }
    /// The newer-session rule: take this session instead of `current`? A later expiry wins; at the
    /// same expiry (sessions stored with whole-second `expires_at`) the larger access fingerprint
    /// wins, so two tabs holding two such sessions converge instead of adopting each other's
    /// forever (a storm the simulation found with `>=`).
    pub fn newer_than(&self, current: Option<&Summary>) -> bool {
        current.is_none_or(|c| {
            self.expires_at_ms > c.expires_at_ms || (self.expires_at_ms == c.expires_at_ms && self.access > c.access)
        })
    }
}

/// How the tabs agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No other tabs (cross-tab off): fetch at once (a retry still joins an outstanding request).
    Alone,
    /// Web Locks and lock-held spent markers.
    Locks,
    /// Claims on the BroadcastChannel, spent markers in localStorage.
    Claims,
}

/// Settings. Durations in ms.
#[derive(Debug, Clone)]
pub struct Config {
    /// How the tabs agree.
    pub mode: Mode,
    /// The session key: the lock is `authwire-refresh:<key>`.
    pub key: String,
    /// This tab's id (unique among the tabs; breaks claim ties).
    pub tab: u64,
    /// Longest wait for the lock (Clerk aborts its lock after 4999 ms).
    pub lock_timeout_ms: u64,
    /// How long a claim waits for competing claims.
    pub claim_window_ms: u64,
    /// How late past its window a claim may still be acted on. A hidden tab's timers are
    /// throttled (Firefox, Chromium and WebKit fire none sooner than 1 s after it was set, and
    /// Chromium aligns them on whole seconds), so a 150 ms window ends up to 2 s late there while
    /// the tab still hears every message at once: that is a slow timer, and the claim stands.
    /// Later than this the tab may have been frozen (no task ran, messages may wait behind the
    /// timer), so it withdraws and claims again. With 100 ms, seen in Firefox: a background tab's
    /// every claim was late, it re-claimed forever, and the tabs waiting on it let the token expire.
    pub claim_grace_ms: u64,
    /// How long a sent request is waited for before it is abandoned (its fate then unknown).
    pub hold_cap_ms: u64,
}

impl Config {
    /// Defaults: 5 s lock wait, 150 ms claim window (2.5 s grace), 30 s hold cap.
    pub fn new(mode: Mode, key: impl Into<String>, tab: u64) -> Self {
        Config {
            mode,
            key: key.into(),
            tab,
            lock_timeout_ms: 5_000,
            claim_window_ms: 150,
            claim_grace_ms: 2_500,
            hold_cap_ms: 30_000,
        }
    }
    /// How long a heard claim is live unless spent or withdrawn.
    pub fn claim_ttl_ms(&self) -> u64 {
        2 * self.claim_window_ms + self.claim_grace_ms + self.hold_cap_ms
    }
    /// The lock's name.
    pub fn lock_name(&self) -> String {
        text::cat(&["authwire-refresh:", &self.key])
    }
}

/// A session another tab published or stored: its summary (for the newer-session rule) and the
/// value the shell adopts.
#[derive(Debug, Clone, PartialEq)]
pub struct Published<S> {
    /// Fingerprints and expiry.
    pub summary: Summary,
    /// The session itself (a JS object in the browser).
    pub session: S,
}

/// A message from another tab.
#[derive(Debug, Clone, PartialEq)]
pub enum Peer<S> {
    /// A tab has a (new) session.
    Session(Published<S>),
    /// A tab signed out: all do.
    SignOut,
    /// A tab opened without a session: whoever has one, send it.
    Hello,
    /// A tab wants to present `token` (claims mode).
    Claim {
        /// The refresh token's fingerprint.
        token: Fp,
        /// When it claimed (ms, the shared browser clock).
        at: u64,
        /// Its tab id.
        tab: u64,
    },
    /// A tab withdraws its claim on `token`.
    Unclaim {
        /// The refresh token's fingerprint.
        token: Fp,
        /// Its tab id.
        tab: u64,
    },
    /// `token` was presented and rotated: never present it again; its successor is on its way.
    Spent {
        /// The refresh token's fingerprint.
        token: Fp,
    },
}

/// A message for the other tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Post {
    /// This tab's current session (the shell posts what it holds).
    MySession,
    /// Ask the others for their session.
    Hello,
    /// Claim `token` (see [`Peer::Claim`]).
    Claim {
        /// The refresh token's fingerprint.
        token: Fp,
        /// Now.
        at: u64,
        /// This tab.
        tab: u64,
    },
    /// Withdraw this tab's claim on `token`.
    Unclaim {
        /// The refresh token's fingerprint.
        token: Fp,
        /// This tab.
        tab: u64,
    },
    /// `token` is spent.
    Spent {
        /// The refresh token's fingerprint.
        token: Fp,
    },
}

/// Inputs. `now` and this tab's current session summary come with every input.
#[derive(Debug, Clone, PartialEq)]
pub enum Input<S> {
    /// The AuthMachine's `Fetch`: refresh attempt `attempt` wants to present `present`.
    Want {
        /// The AuthMachine's attempt id.
        attempt: u64,
        /// The refresh token to present (`None`: the source needs none).
        present: Option<Secret>,
        /// The attempt's deadline (the AuthMachine abandons it then).
        deadline_ms: u64,
    },
    /// The AuthMachine's `Abort`: the attempt is superseded or abandoned.
    Abort {
        /// The attempt.
        attempt: u64,
    },
    /// Lock request `id` was granted.
    LockGranted {
        /// From [`Action::AcquireLock`].
        id: u64,
    },
    /// Lock request `id` reached its deadline without a grant (its signal aborted it).
    LockTimedOut {
        /// From [`Action::AcquireLock`].
        id: u64,
    },
    /// The answer to [`Action::QuerySpent`].
    SpentAnswer {
        /// From the query.
        id: u64,
        /// Whether the marker says spent.
        spent: bool,
    },
    /// The answer to [`Action::ReadStored`] (or a storage event): the stored session, if any.
    Stored(Option<Published<S>>),
    /// A message from another tab.
    Peer(Peer<S>),
    /// The timer fired.
    Timer,
    /// Request `id` answered.
    Fetched {
        /// From [`Action::Fetch`].
        id: u64,
        /// The new session, or how it failed.
        result: Result<S, Failure>,
    },
    /// The page is going away (`pagehide`): withdraw claims, release the lock.
    Closing,
}

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action<S> {
    /// Request the Web Lock `name`, aborting the request at `deadline_ms`; report
    /// [`Input::LockGranted`] or [`Input::LockTimedOut`] with `id`. Hold it until `ReleaseLock`.
    AcquireLock {
        /// Names this request.
        id: u64,
        /// The lock's name.
        name: String,
        /// Abort the request at this time.
        deadline_ms: u64,
    },
    /// Release the lock granted to request `id`.
    ReleaseLock {
        /// The request.
        id: u64,
    },
    /// Ask the spent marker about `token`; answer with [`Input::SpentAnswer`].
    QuerySpent {
        /// Echo this.
        id: u64,
        /// The refresh token's fingerprint.
        token: Fp,
    },
    /// Set the spent marker of `token`.
    MarkSpent {
        /// The refresh token's fingerprint.
        token: Fp,
    },
    /// Read the stored session; answer with [`Input::Stored`].
    ReadStored,
    /// Post a message to the other tabs.
    Post(Post),
    /// Send the refresh request presenting `present`; report [`Input::Fetched`] with `id`.
    /// Never cancel it except on [`Action::CancelFetch`].
    Fetch {
        /// Names this request.
        id: u64,
        /// The refresh token to present.
        present: Option<Secret>,
    },
    /// Abandon request `id` (no answer within the hold cap); its answer is ignored.
    CancelFetch {
        /// The request.
        id: u64,
    },
    /// Feed the AuthMachine `RefreshOk { attempt, session }`.
    RefreshOk {
        /// The attempt.
        attempt: u64,
        /// The new session.
        session: S,
    },
    /// Feed the AuthMachine `Refreshed(session)`: a late success of a superseded attempt.
    Refreshed(S),
    /// Feed the AuthMachine `RefreshErr { attempt, failure }`.
    RefreshErr {
        /// The attempt.
        attempt: u64,
        /// How it failed.
        failure: Failure,
    },
    /// Adopt this session (feed the AuthMachine `SetSession`, without publishing it again).
    Adopt(S),
    /// A peer signed out: feed the AuthMachine `SignOut` (without publishing it again).
    SignOut,
    /// Attempt `attempt` waits for a session from another tab (for the snapshot, debug).
    Waiting {
        /// The attempt.
        attempt: u64,
    },
    /// (Re)arm the timer.
    WakeAt(u64),
    /// Disarm the timer.
    CancelWake,
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    /// Waiting for the lock.
    Locking,
    /// Holding the lock (Locks) or having won (Claims), the spent marker asked.
    Checking,
    /// Claimed at `at`; the window is open.
    Claiming { at: u64 },
    /// This attempt's request, or one it joined, is outstanding.
    Fetching,
    /// A request for another token is outstanding: wait for it to finish.
    Blocked,
    /// Reading the stored session; then fail with this failure, or wait.
    Rereading(Option<Failure>),
    /// Waiting for a newer session from another tab, until the AuthMachine's deadline.
    Waiting,
}

#[derive(Debug, Clone)]
struct Attempt {
    id: u64,
    present: Option<Secret>,
    token: Option<Fp>,
    deadline_ms: u64,
    phase: Phase,
    helloed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lock {
    Free,
    Requested(u64),
    Held(u64),
}

#[derive(Debug, Clone, Copy)]
struct Request {
    id: u64,
    token: Option<Fp>,
    started: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Claim {
    token: Fp,
    at: u64,
    tab: u64,
}

/// How many spent fingerprints are remembered.
const SPENT_KEPT: usize = 32;

/// The cross-tab protocol of one tab. `S` is the shell's session value (a JS object, or a
/// [`Session`] in native tests).
#[derive(Debug)]
pub struct TabsMachine<S> {
    cfg: Config,
    attempt: Option<Attempt>,
    lock: Lock,
    request: Option<Request>,
    claims: Vec<Claim>,
    spent: Vec<Fp>,
    /// A token the server declared dead after its attempt was gone, and how.
    dead: Option<(Fp, Failure)>,
    seq: u64,
    timer: Timer,
    _s: std::marker::PhantomData<S>,
}

impl<S: Clone> TabsMachine<S> {
    /// A machine with nothing in flight.
    pub fn new(cfg: Config) -> Self {
        TabsMachine {
            cfg,
            attempt: None,
            lock: Lock::Free,
            request: None,
            claims: Vec::new(),
            spent: Vec::new(),
            dead: None,
            seq: 0,
            timer: Timer::default(),
            _s: std::marker::PhantomData,
        }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    /// Whether this tab holds (or waits for) the refresh lock.
    pub fn holds_lock(&self) -> bool {
        matches!(self.lock, Lock::Held(_))
    }
    /// Whether a request is outstanding, and the fingerprint it presented.
    pub fn outstanding(&self) -> Option<Option<Fp>> {
        self.request.map(|r| r.token)
    }
    /// Whether the current attempt waits for another tab's session.
    pub fn waiting_for_peer(&self) -> bool {
        self.attempt.as_ref().is_some_and(|a| a.phase == Phase::Waiting)
    }
    /// Whether `token` is known spent.
    pub fn is_spent(&self, token: Fp) -> bool {
        self.spent.contains(&token)
    }
    /// When the timer should fire, if armed.
    pub fn wake_at(&self) -> Option<u64> {
        self.timer.at()
    }

    fn next_id(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn note_spent(&mut self, token: Fp) {
        if !self.spent.contains(&token) {
            if self.spent.len() == SPENT_KEPT {
                self.spent.remove(0); // the oldest: a few words move (a VecDeque is more code)
            }
            self.spent.push(token);
        }
        if FULL {
            self.claims.retain(|c| c.token != token);
        }
    }

    fn live_claims(&mut self, now: u64) {
        if !FULL {
            return; // alone: no claims are ever made
        }
        let ttl = self.cfg.claim_ttl_ms();
        self.claims.retain(|c| c.at.saturating_add(ttl) > now);
    }

    fn best_claim(&self, token: Fp) -> Option<Claim> {
        self.claims
            .iter()
            .filter(|c| c.token == token)
            .min_by_key(|c| (c.at, c.tab))
            .copied()
    }

    fn withdraw_claim(&mut self, token: Fp, out: &mut Vec<Action<S>>) {
        if !FULL {
            return;
        }
        let me = self.cfg.tab;
        let before = self.claims.len();
        self.claims.retain(|c| !(c.token == token && c.tab == me));
        if self.claims.len() != before {
            out.push(Action::Post(Post::Unclaim { token, tab: me }));
        }
    }

    fn release_lock(&mut self, out: &mut Vec<Action<S>>) {
        if let Lock::Held(id) = self.lock {
            self.lock = Lock::Free;
            out.push(Action::ReleaseLock { id });
        }
    }

    /// Releases the lock unless a request or a check of the current attempt still needs it.
    fn release_if_idle(&mut self, out: &mut Vec<Action<S>>) {
        let checking = self.attempt.as_ref().is_some_and(|a| a.phase == Phase::Checking);
        if self.request.is_none() && !checking {
            self.release_lock(out);
        }
    }

    /// How the tabs agree: always `Alone` in a build without other tabs ([`FULL`]).
    fn mode(&self) -> Mode {
        if FULL {
            self.cfg.mode
        } else {
            Mode::Alone
        }
    }

    /// Feeds one input. `local`: this tab's current session.
    pub fn handle(&mut self, now: u64, local: Option<&Summary>, input: Input<S>, out: &mut Vec<Action<S>>) {
        self.live_claims(now);
        match input {
            Input::Want {
                attempt,
                present,
                deadline_ms,
            } => {
                if let Some(old) = self.attempt.take() {
                    if old.id != attempt {
                        self.detach(old, out);
                    }
                }
                let token = present.as_ref().map(Fp::of);
                if let (Some(t), Some((dead, failure))) = (token, &self.dead) {
                    if *dead == t {
                        out.push(Action::RefreshErr {
                            attempt,
                            failure: failure.clone(),
                        });
                        self.schedule(out);
                        return;
                    }
                }
                self.attempt = Some(Attempt {
                    id: attempt,
                    present,
                    token,
                    deadline_ms,
                    phase: Phase::Blocked,
                    helloed: false,
                });
                self.advance(now, local, out);
            }
            Input::Abort { attempt } => {
                if let Some(a) = self.attempt.take_if(|a| a.id == attempt) {
                    self.detach(a, out);
                }
            }
            Input::LockGranted { id } if FULL => {
                if self.lock != Lock::Requested(id) {
                    // Not (or no longer) ours to hold.
                    out.push(Action::ReleaseLock { id });
                } else {
                    self.lock = Lock::Held(id);
                    match self.attempt.as_ref().map(|a| (a.phase.clone(), a.token)) {
                        Some((Phase::Locking, Some(token))) => self.check_spent(token, out),
                        _ => self.release_lock(out),
                    }
                }
            }
            Input::LockTimedOut { id } if FULL => {
                if self.lock == Lock::Requested(id) {
                    self.lock = Lock::Free;
                    if let Some(a) = self.attempt.as_mut().filter(|a| a.phase == Phase::Locking) {
                        a.phase = Phase::Rereading(Some(Failure::LockTimeout));
                        out.push(Action::ReadStored);
                    }
                }
            }
            Input::SpentAnswer { id, spent } if FULL => {
                let current = self
                    .attempt
                    .as_ref()
                    .filter(|a| a.id == id && a.phase == Phase::Checking);
                match current.map(|a| a.token) {
                    Some(Some(token)) if spent => {
                        self.note_spent(token);
                        self.release_lock(out);
                        self.reread_then_wait(out);
                    }
                    Some(_) => self.start_request(now, out),
                    None => self.release_if_idle(out),
                }
            }
            Input::Stored(p) => {
                if let Some(p) = p {
                    self.offer(&p, local, out);
                }
                let then = match self.attempt.as_ref().map(|a| &a.phase) {
                    Some(Phase::Rereading(then)) => Some(then.clone()),
                    _ => None,
                };
                match then {
                    Some(Some(failure)) => {
                        let attempt = self.attempt.take().map_or(0, |a| a.id);
                        out.push(Action::RefreshErr { attempt, failure });
                    }
                    Some(None) => {
                        if let Some(a) = self.attempt.as_mut() {
                            a.phase = Phase::Waiting;
                            out.push(Action::Waiting { attempt: a.id });
                            if !a.helloed {
                                a.helloed = true;
                                out.push(Action::Post(Post::Hello));
                            }
                        }
                    }
                    None => {}
                }
            }
            Input::Peer(m) if FULL => self.peer(now, local, m, out),
            Input::Timer => {
                self.timer.fired();
                self.timer(now, local, out)
            }
            Input::Fetched { id, result } => {
                if let Some(r) = self.request.take_if(|r| r.id == id) {
                    self.answered(now, local, r, result, out);
                }
            }
            Input::Closing if FULL => {
                let mine: Vec<Fp> = self
                    .claims
                    .iter()
                    .filter(|c| c.tab == self.cfg.tab)
                    .map(|c| c.token)
                    .collect();
                for t in mine {
                    self.withdraw_claim(t, out);
                }
                self.release_lock(out);
            }
            // Only other tabs, locks and spent markers give these; a tab alone holds nothing to
            // give up on closing. Compiled away where tabs are always alone ([`FULL`]).
            Input::LockGranted { .. }
            | Input::LockTimedOut { .. }
            | Input::SpentAnswer { .. }
            | Input::Peer(_)
            | Input::Closing => {}
        }
        self.schedule(out);
    }

    /// The attempt is gone (aborted or replaced): whatever it started that others rely on is
    /// kept (an outstanding request, with the lock it holds), the rest undone.
    fn detach(&mut self, a: Attempt, out: &mut Vec<Action<S>>) {
        if let (Phase::Claiming { .. }, Some(t)) = (&a.phase, a.token) {
            self.withdraw_claim(t, out);
        }
        if self.request.is_none() {
            self.release_lock(out);
        }
    }

    /// Decides what the current attempt does next, from scratch.
    fn advance(&mut self, now: u64, local: Option<&Summary>, out: &mut Vec<Action<S>>) {
        let Some(a) = self.attempt.as_ref() else { return };
        let (token, attempt_deadline) = (a.token, a.deadline_ms);
        if let Some(r) = self.request {
            let Some(a) = self.attempt.as_mut() else { return };
            a.phase = if r.token == token {
                Phase::Fetching
            } else {
                Phase::Blocked
            };
            return;
        }
        let Some(token) = token.filter(|_| self.mode() != Mode::Alone) else {
            self.start_request(now, out);
            return;
        };
        if self.spent.contains(&token) {
            self.reread_then_wait(out);
            return;
        }
        match self.mode() {
            // Filtered out above: alone, every attempt starts its request at once.
            Mode::Alone => self.start_request(now, out),
            Mode::Locks => match self.lock {
                Lock::Held(_) => self.check_spent(token, out),
                Lock::Requested(_) => self.set_phase(Phase::Locking),
                Lock::Free => {
                    let id = self.next_id();
                    let deadline_ms = attempt_deadline.min(now.saturating_add(self.cfg.lock_timeout_ms));
                    self.lock = Lock::Requested(id);
                    out.push(Action::AcquireLock {
                        id,
                        name: self.cfg.lock_name(),
                        deadline_ms,
                    });
                    self.set_phase(Phase::Locking);
                }
            },
            Mode::Claims => {
                let me = self.cfg.tab;
                if self.claims.iter().any(|c| c.token == token && c.tab != me) {
                    // Someone else's claim on this token is live: never compete with it.
                    self.reread_then_wait(out);
                    return;
                }
                self.claims.retain(|c| !(c.token == token && c.tab == me));
                self.claims.push(Claim {
                    token,
                    at: now,
                    tab: me,
                });
                out.push(Action::Post(Post::Claim {
                    token,
                    at: now,
                    tab: me,
                }));
                self.set_phase(Phase::Claiming { at: now });
            }
        }
        let _ = local;
    }

    fn set_phase(&mut self, p: Phase) {
        if let Some(a) = self.attempt.as_mut() {
            a.phase = p;
        }
    }

    fn check_spent(&mut self, token: Fp, out: &mut Vec<Action<S>>) {
        if self.spent.contains(&token) {
            self.release_lock(out);
            self.reread_then_wait(out);
            return;
        }
        let Some(a) = self.attempt.as_mut() else { return };
        a.phase = Phase::Checking;
        out.push(Action::QuerySpent { id: a.id, token });
    }

    fn reread_then_wait(&mut self, out: &mut Vec<Action<S>>) {
        if let Some(a) = self.attempt.as_mut() {
            a.phase = Phase::Rereading(None);
            out.push(Action::ReadStored);
        }
    }

    fn start_request(&mut self, now: u64, out: &mut Vec<Action<S>>) {
        let Some(a) = self.attempt.as_mut() else { return };
        debug_assert!(self.request.is_none());
        a.phase = Phase::Fetching;
        let present = a.present.clone();
        let token = a.token;
        self.seq += 1;
        let id = self.seq;
        self.request = Some(Request {
            id,
            token,
            started: now,
        });
        out.push(Action::Fetch { id, present });
    }

    /// The newer-session rule, with what this tab knows of spent tokens: later expiry first; at the
    /// same expiry a session whose refresh token is not known spent, then the larger access
    /// fingerprint. A strict order, so tabs converge instead of adopting each other's sessions.
    fn newer(&self, p: &Summary, local: Option<&Summary>) -> bool {
        let key = |s: &Summary| {
            let unspent = s.refresh.is_some_and(|r| !self.spent.contains(&r));
            (s.expires_at_ms, unspent, s.access)
        };
        local.is_none_or(|l| key(p) > key(l))
    }

    fn offer(&mut self, p: &Published<S>, local: Option<&Summary>, out: &mut Vec<Action<S>>) {
        if self.newer(&p.summary, local) {
            out.push(Action::Adopt(p.session.clone()));
        }
    }

    fn peer(&mut self, now: u64, local: Option<&Summary>, m: Peer<S>, out: &mut Vec<Action<S>>) {
        match m {
            Peer::Session(p) => self.offer(&p, local, out),
            Peer::SignOut => {
                if local.is_some() {
                    out.push(Action::SignOut);
                }
            }
            Peer::Hello => {
                if local.is_some() {
                    out.push(Action::Post(Post::MySession));
                }
            }
            Peer::Claim { token, at, tab } => {
                if tab == self.cfg.tab {
                    return;
                }
                if self.spent.contains(&token) {
                    // A tab that missed the news (it opened after it was posted) claims a spent token.
                    out.push(Action::Post(Post::Spent { token }));
                    return;
                }
                let mine = self
                    .claims
                    .iter()
                    .find(|c| c.token == token && c.tab == self.cfg.tab)
                    .copied();
                if let Some(m) = mine.filter(|m| (m.at, m.tab) < (at, tab)) {
                    // It did not hear this live, smaller claim (it opened after it was posted):
                    // say it again, it arrives within its window.
                    out.push(Action::Post(Post::Claim {
                        token,
                        at: m.at,
                        tab: m.tab,
                    }));
                }
                self.claims.retain(|c| !(c.token == token && c.tab == tab));
                if at.saturating_add(self.cfg.claim_ttl_ms()) <= now {
                    return;
                }
                self.claims.push(Claim { token, at, tab });
                let lost = match self.attempt.as_ref() {
                    Some(a) if a.token == Some(token) => match a.phase {
                        Phase::Claiming { at: mine } => (at, tab) < (mine, self.cfg.tab),
                        // Won the window but not yet sent: a smaller claim arriving this late still wins.
                        Phase::Checking if self.mode() == Mode::Claims => self
                            .claims
                            .iter()
                            .any(|c| c.token == token && c.tab == self.cfg.tab && (at, tab) < (c.at, c.tab)),
                        _ => false,
                    },
                    _ => false,
                };
                if lost {
                    self.withdraw_claim(token, out);
                    self.reread_then_wait(out);
                }
            }
            Peer::Unclaim { token, tab } => {
                if tab == self.cfg.tab {
                    return;
                }
                self.claims.retain(|c| !(c.token == token && c.tab == tab));
                let retry = self
                    .attempt
                    .as_ref()
                    .is_some_and(|a| a.token == Some(token) && a.phase == Phase::Waiting);
                if retry && self.mode() == Mode::Claims {
                    self.advance(now, local, out);
                }
            }
            Peer::Spent { token } => {
                self.note_spent(token);
                let affected = self.attempt.as_ref().is_some_and(|a| {
                    a.token == Some(token)
                        && matches!(a.phase, Phase::Locking | Phase::Claiming { .. } | Phase::Checking)
                });
                if affected {
                    // Spent by another tab: its session is stored or on its way. A pending lock
                    // request is kept: a grant without an attempt in `Locking` is released at once.
                    self.reread_then_wait(out);
                    if self.request.is_none() {
                        self.release_lock(out);
                    }
                }
            }
        }
    }

    fn timer(&mut self, now: u64, local: Option<&Summary>, out: &mut Vec<Action<S>>) {
        if let Some(r) = self
            .request
            .filter(|r| now >= r.started.saturating_add(self.cfg.hold_cap_ms))
        {
            // No answer within the hold cap: abandon it. Its fate is unknown, so not marked spent.
            out.push(Action::CancelFetch { id: r.id });
            self.request = None;
            self.answered(now, local, r, Err(Failure::Timeout), out);
        }
        let claiming = self.attempt.as_ref().and_then(|a| match (a.phase.clone(), a.token) {
            (Phase::Claiming { at }, Some(t)) if FULL => Some((at, t)),
            _ => None,
        });
        if let Some((at, token)) = claiming {
            let end = at.saturating_add(self.cfg.claim_window_ms);
            if now >= end {
                if now > end.saturating_add(self.cfg.claim_grace_ms) {
                    // Frozen through the window: others may have given up on this claim. Again.
                    self.withdraw_claim(token, out);
                    self.advance(now, local, out);
                } else if self.best_claim(token).is_some_and(|c| c.tab == self.cfg.tab) {
                    self.check_spent(token, out);
                } else {
                    self.withdraw_claim(token, out);
                    self.reread_then_wait(out);
                }
            }
        }
    }

    fn answered(
        &mut self,
        now: u64,
        local: Option<&Summary>,
        r: Request,
        result: Result<S, Failure>,
        out: &mut Vec<Action<S>>,
    ) {
        let joined = self
            .attempt
            .as_ref()
            .filter(|a| a.token == r.token && a.phase == Phase::Fetching)
            .map(|a| a.id);
        match result {
            Ok(session) => {
                if let Some(t) = r.token {
                    if self.mode() != Mode::Alone {
                        out.push(Action::MarkSpent { token: t });
                        out.push(Action::Post(Post::Spent { token: t }));
                    }
                    self.note_spent(t);
                }
                if let Some(attempt) = joined {
                    self.attempt = None;
                    out.push(Action::RefreshOk { attempt, session });
                } else if r.token.is_some() && local.and_then(|l| l.refresh) == r.token {
                    // Late, but the server rotated the token we hold: use it.
                    out.push(Action::Refreshed(session));
                }
                self.release_lock(out);
            }
            Err(failure) => {
                if let Some(t) = r.token {
                    self.withdraw_claim(t, out);
                }
                self.release_lock(out);
                let gone = failure.classify().0 == Class::Gone;
                match joined {
                    Some(_) if gone => {
                        // "Already used" or revoked: first look at what the other tabs stored.
                        self.set_phase(Phase::Rereading(Some(failure)));
                        out.push(Action::ReadStored);
                    }
                    Some(attempt) => {
                        self.attempt = None;
                        out.push(Action::RefreshErr { attempt, failure });
                    }
                    None => {
                        if let (Some(t), true) = (r.token, gone) {
                            self.dead = Some((t, failure));
                        }
                    }
                }
            }
        }
        // An attempt that waited for this request (another token) goes on.
        if self.attempt.as_ref().is_some_and(|a| a.phase == Phase::Blocked) {
            self.advance(now, local, out);
        }
    }

    fn schedule(&mut self, out: &mut Vec<Action<S>>) {
        let mut next = self.request.map(|r| r.started.saturating_add(self.cfg.hold_cap_ms));
        if let Some(Phase::Claiming { at }) = self.attempt.as_ref().map(|a| a.phase.clone()) {
            let end = at.saturating_add(self.cfg.claim_window_ms);
            next = Some(next.map_or(end, |n| n.min(end)));
        }
        self.timer
            .set(next, out, |at| at.map_or(Action::CancelWake, Action::WakeAt));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type M = TabsMachine<&'static str>;
    type A = Action<&'static str>;

    const X: &str = "refresh-x";

    fn fp(s: &str) -> Fp {
        Fp::of_str(s)
    }

    fn local(refresh: &str, expires: u64) -> Summary {
        Summary {
            access: fp(&format!("access-of-{refresh}")),
            refresh: Some(fp(refresh)),
            expires_at_ms: expires,
        }
    }

    fn want(attempt: u64, token: &str, deadline_ms: u64) -> Input<&'static str> {
        Input::Want {
            attempt,
            present: Some(Secret::new(token)),
            deadline_ms,
        }
    }

    fn run(m: &mut M, now: u64, l: Option<&Summary>, input: Input<&'static str>) -> Vec<A> {
        let mut out = vec![];
        m.handle(now, l, input, &mut out);
        out.retain(|a| !matches!(a, Action::WakeAt(_) | Action::CancelWake));
        out
    }

    fn fetch_id(out: &[A]) -> Option<u64> {
        out.iter().find_map(|a| match a {
            Action::Fetch { id, .. } => Some(*id),
            _ => None,
        })
    }

    fn lock_id(out: &[A]) -> Option<u64> {
        out.iter().find_map(|a| match a {
            Action::AcquireLock { id, .. } => Some(*id),
            _ => None,
        })
    }

    fn posts(out: &[A]) -> Vec<Post> {
        out.iter()
            .filter_map(|a| match a {
                Action::Post(p) => Some(*p),
                _ => None,
            })
            .collect()
    }

    fn locks() -> M {
        TabsMachine::new(Config::new(Mode::Locks, "k", 1))
    }

    #[test]
    fn fingerprints_are_fnv1a_in_the_marker_format_and_never_the_token() {
        assert_eq!(Fp::of_str("").to_string(), "cbf29ce484222325");
        assert_eq!(Fp::of_str("a").to_string(), "af63dc4c8601ec8c");
        let shown = format!("{:?}", Fp::of(&Secret::new("very-secret")));
        assert!(!shown.contains("very-secret") && shown.len() == 20, "{shown}");
    }

    #[test]
    #[cfg(feature = "full")] // across tabs: not in the lite build
    fn under_the_lock_a_fresh_token_is_presented_and_the_success_is_marked_published_then_released() {
        let mut m = locks();
        let l = local(X, 100_000);
        let out = run(&mut m, 0, Some(&l), want(7, X, 10_000));
        assert_eq!(
            out,
            vec![Action::AcquireLock {
                id: 1,
                name: "authwire-refresh:k".into(),
                deadline_ms: 5_000
            }]
        );
        let out = run(&mut m, 10, Some(&l), Input::LockGranted { id: 1 });
        assert_eq!(out, vec![Action::QuerySpent { id: 7, token: fp(X) }]);
        let out = run(&mut m, 20, Some(&l), Input::SpentAnswer { id: 7, spent: false });
        assert_eq!(
            out,
            vec![Action::Fetch {
                id: 2,
                present: Some(Secret::new(X))
            }]
        );
        let out = run(
            &mut m,
            300,
            Some(&l),
            Input::Fetched {
                id: 2,
                result: Ok("s2"),
            },
        );
        assert_eq!(
            out,
            vec![
                Action::MarkSpent { token: fp(X) },
                Action::Post(Post::Spent { token: fp(X) }),
                Action::RefreshOk {
                    attempt: 7,
                    session: "s2"
                },
                Action::ReleaseLock { id: 1 },
            ]
        );
        assert!(m.is_spent(fp(X)) && !m.holds_lock());
    }

    #[test]
    #[cfg(feature = "full")] // across tabs: not in the lite build
    fn on_lock_timeout_it_rereads_and_fails_retryably_without_refreshing() {
        let mut m = locks();
        let l = local(X, 100_000);
        let id = lock_id(&run(&mut m, 0, Some(&l), want(1, X, 3_000))).unwrap();
        let out = run(&mut m, 3_000, Some(&l), Input::LockTimedOut { id });
        assert_eq!(out, vec![Action::ReadStored]);
        let out = run(&mut m, 3_000, Some(&l), Input::Stored(None));
        assert_eq!(
            out,
            vec![Action::RefreshErr {
                attempt: 1,
                failure: Failure::LockTimeout
            }]
        );
        // A grant that arrives after all is given back.
        assert_eq!(
            run(&mut m, 3_001, Some(&l), Input::LockGranted { id }),
            vec![Action::ReleaseLock { id }]
        );
        // With a newer stored session, it is adopted.
        let mut m = locks();
        let id = lock_id(&run(&mut m, 0, Some(&l), want(1, X, 10_000))).unwrap();
        run(&mut m, 5_000, Some(&l), Input::LockTimedOut { id });
        let newer = Published {
            summary: local("refresh-y", 200_000),
            session: "sy",
        };
        let out = run(&mut m, 5_000, Some(&l), Input::Stored(Some(newer)));
        assert_eq!(out[0], Action::Adopt("sy"));
        assert!(fetch_id(&out).is_none());
    }

    #[test]
    #[cfg(feature = "full")] // across tabs: not in the lite build
    fn a_spent_token_is_not_presented_the_tab_waits_for_the_winner_and_releases_the_lock() {
        let mut m = locks();
        let l = local(X, 100_000);
        let id = lock_id(&run(&mut m, 0, Some(&l), want(1, X, 10_000))).unwrap();
        run(&mut m, 1, Some(&l), Input::LockGranted { id });
        let out = run(&mut m, 2, Some(&l), Input::SpentAnswer { id: 1, spent: true });
        assert_eq!(out, vec![Action::ReleaseLock { id }, Action::ReadStored]);
        let out = run(&mut m, 2, Some(&l), Input::Stored(None));
        assert_eq!(out, vec![Action::Waiting { attempt: 1 }, Action::Post(Post::Hello)]);
        assert!(m.waiting_for_peer());
        // The winner's session arrives: adopted (the AuthMachine then aborts the attempt).
        let s = Published {
            summary: local("refresh-y", 100_000),
            session: "sy",
        };
        assert_eq!(
            run(&mut m, 50, Some(&l), Input::Peer(Peer::Session(s))),
            vec![Action::Adopt("sy")]
        );
        // The next attempt with the same token: no lock, no request, just waiting.
        run(&mut m, 60, Some(&l), Input::Abort { attempt: 1 });
        let out = run(&mut m, 70, Some(&l), want(2, X, 10_070));
        assert_eq!(out, vec![Action::ReadStored]);
    }

    #[test]
    fn a_late_success_is_used_and_a_retry_joins_the_outstanding_request() {
        let mut m = TabsMachine::new(Config::new(Mode::Alone, "k", 1));
        let l = local(X, 100_000);
        let id = fetch_id(&run(&mut m, 0, Some(&l), want(1, X, 10_000))).unwrap();
        // The AuthMachine gives up at its deadline and retries later with the same token.
        assert!(run(&mut m, 10_000, Some(&l), Input::Abort { attempt: 1 }).is_empty());
        let out = run(&mut m, 10_300, Some(&l), want(2, X, 20_300));
        assert!(
            fetch_id(&out).is_none(),
            "never a second request with the same token: {out:?}"
        );
        let out = run(&mut m, 12_000, Some(&l), Input::Fetched { id, result: Ok("late") });
        assert_eq!(
            out,
            vec![Action::RefreshOk {
                attempt: 2,
                session: "late"
            }]
        );
        // No attempt in flight at all: delivered as Refreshed, while the tab holds that token.
        let id = fetch_id(&run(&mut m, 20_000, Some(&l), want(3, "refresh-z", 30_000))).unwrap();
        run(&mut m, 30_000, Some(&l), Input::Abort { attempt: 3 });
        let lz = local("refresh-z", 100_000);
        let out = run(&mut m, 31_000, Some(&lz), Input::Fetched { id, result: Ok("z2") });
        assert_eq!(out, vec![Action::Refreshed("z2")]);
        // The tab moved on to another session meanwhile: the late answer is not used.
        let id = fetch_id(&run(&mut m, 40_000, Some(&l), want(4, "refresh-w", 50_000))).unwrap();
        run(&mut m, 40_001, Some(&l), Input::Abort { attempt: 4 });
        let out = run(&mut m, 41_000, Some(&lz), Input::Fetched { id, result: Ok("w2") });
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    #[cfg(feature = "full")] // across tabs: not in the lite build
    fn the_lock_is_held_until_the_answer_and_released_at_the_hold_cap() {
        let mut m = locks();
        let l = local(X, 100_000);
        let lid = lock_id(&run(&mut m, 0, Some(&l), want(1, X, 10_000))).unwrap();
        run(&mut m, 1, Some(&l), Input::LockGranted { id: lid });
        let id = fetch_id(&run(&mut m, 2, Some(&l), Input::SpentAnswer { id: 1, spent: false })).unwrap();
        assert!(run(&mut m, 10_000, Some(&l), Input::Abort { attempt: 1 }).is_empty());
        assert!(
            m.holds_lock(),
            "the request is outstanding: its answer decides the token's fate"
        );
        assert_eq!(m.wake_at(), Some(30_002));
        let out = run(&mut m, 30_002, Some(&l), Input::Timer);
        assert_eq!(out, vec![Action::CancelFetch { id }, Action::ReleaseLock { id: lid }]);
        assert!(!m.is_spent(fp(X)), "unknown fate: not marked spent");
        assert!(run(&mut m, 31_000, Some(&l), Input::Fetched { id, result: Ok("s") }).is_empty());
    }

    #[test]
    fn a_gone_answer_rereads_before_signing_out() {
        let mut m = TabsMachine::new(Config::new(Mode::Alone, "k", 1));
        let l = local(X, 100_000);
        let gone = Failure::Http {
            status: 400,
            errors: vec!["refresh_token_already_used".into()],
        };
        let id = fetch_id(&run(&mut m, 0, Some(&l), want(1, X, 10_000))).unwrap();
        let out = run(
            &mut m,
            100,
            Some(&l),
            Input::Fetched {
                id,
                result: Err(gone.clone()),
            },
        );
        assert_eq!(out, vec![Action::ReadStored]);
        let out = run(&mut m, 100, Some(&l), Input::Stored(None));
        assert_eq!(
            out,
            vec![Action::RefreshErr {
                attempt: 1,
                failure: gone
            }]
        );
        // A retryable failure goes straight back.
        let id = fetch_id(&run(&mut m, 200, Some(&l), want(2, X, 10_200))).unwrap();
        let out = run(
            &mut m,
            300,
            Some(&l),
            Input::Fetched {
                id,
                result: Err(Failure::Network),
            },
        );
        assert_eq!(
            out,
            vec![Action::RefreshErr {
                attempt: 2,
                failure: Failure::Network
            }]
        );
    }

    #[test]
    #[cfg(feature = "full")] // across tabs: not in the lite build
    fn newer_session_rule() {
        let cur = local(X, 100_000);
        assert!(local("y", 100_001).newer_than(Some(&cur)), "expires later");
        assert!(!local("y", 99_999).newer_than(Some(&cur)), "expires earlier");
        let (a, b) = (local("y", 100_000), local("z", 100_000));
        assert!(
            a.newer_than(Some(&b)) != b.newer_than(Some(&a)),
            "same expiry: exactly one way, never back and forth"
        );
        assert!(!cur.newer_than(Some(&cur)), "the same token");
        assert!(cur.newer_than(None));
        let mut m = locks();
        let old = Published {
            summary: local("y", 50_000),
            session: "old",
        };
        assert!(run(&mut m, 0, Some(&cur), Input::Peer(Peer::Session(old))).is_empty());
        assert_eq!(
            run(&mut m, 0, Some(&cur), Input::Peer(Peer::Hello)),
            vec![Action::Post(Post::MySession)]
        );
        assert!(run(&mut m, 0, None, Input::Peer(Peer::Hello)).is_empty());
        assert_eq!(
            run(&mut m, 0, Some(&cur), Input::Peer(Peer::SignOut)),
            vec![Action::SignOut]
        );
    }

    #[test]
    #[cfg(feature = "full")] // across tabs: not in the lite build
    fn at_the_same_expiry_a_live_refresh_token_beats_a_spent_one_and_nothing_flips_back() {
        let mut m = locks();
        let mine = local(X, 100_000);
        let theirs = Published {
            summary: Summary {
                access: Fp(0), // the smallest fingerprint: the plain order would keep ours
                refresh: Some(fp("refresh-y")),
                expires_at_ms: 100_000,
            },
            session: "sy",
        };
        assert!(run(&mut m, 0, Some(&mine), Input::Peer(Peer::Session(theirs.clone()))).is_empty());
        run(&mut m, 1, Some(&mine), Input::Peer(Peer::Spent { token: fp(X) }));
        assert_eq!(
            run(&mut m, 2, Some(&mine), Input::Peer(Peer::Session(theirs.clone()))),
            vec![Action::Adopt("sy")],
            "ours is spent: theirs is the one that can be refreshed"
        );
        let back = Published {
            summary: mine,
            session: "sx",
        };
        assert!(run(&mut m, 3, Some(&theirs.summary), Input::Peer(Peer::Session(back))).is_empty());
    }

    /// Two tabs on a channel that delivers at once: whoever claims, exactly one presents.
    #[test]
    #[cfg(feature = "full")] // across tabs: not in the lite build
    fn claims_let_exactly_one_tab_present_a_token() {
        for (ta, tb) in [(0, 0), (0, 40), (40, 0), (0, 149)] {
            let mut a: M = TabsMachine::new(Config::new(Mode::Claims, "k", 1));
            let mut b: M = TabsMachine::new(Config::new(Mode::Claims, "k", 2));
            let l = local(X, 100_000);
            let oa = run(&mut a, ta, Some(&l), want(1, X, 10_000));
            let ob = run(&mut b, tb, Some(&l), want(1, X, 10_000));
            for p in posts(&oa) {
                if let Post::Claim { token, at, tab } = p {
                    run(
                        &mut b,
                        tb.max(ta),
                        Some(&l),
                        Input::Peer(Peer::Claim { token, at, tab }),
                    );
                }
            }
            for p in posts(&ob) {
                if let Post::Claim { token, at, tab } = p {
                    run(
                        &mut a,
                        tb.max(ta),
                        Some(&l),
                        Input::Peer(Peer::Claim { token, at, tab }),
                    );
                }
            }
            let mut fetched = 0;
            for m in [&mut a, &mut b] {
                let t = m.wake_at().unwrap_or(200);
                let out = run(m, t, Some(&l), Input::Timer);
                if out.contains(&Action::QuerySpent { id: 1, token: fp(X) }) {
                    let out = run(m, t, Some(&l), Input::SpentAnswer { id: 1, spent: false });
                    fetched += usize::from(fetch_id(&out).is_some());
                }
            }
            assert_eq!(fetched, 1, "{ta} {tb}");
        }
    }

    #[test]
    #[cfg(feature = "full")] // across tabs: not in the lite build
    fn a_loser_does_not_claim_again_while_the_claim_is_live_but_after_it_is_withdrawn() {
        let mut b: M = TabsMachine::new(Config::new(Mode::Claims, "k", 2));
        let l = local(X, 100_000);
        let claim = Peer::Claim {
            token: fp(X),
            at: 0,
            tab: 1,
        };
        run(&mut b, 5, Some(&l), Input::Peer(claim));
        let out = run(&mut b, 10, Some(&l), want(1, X, 10_010));
        assert_eq!(out, vec![Action::ReadStored], "a live claim by another tab: wait");
        run(&mut b, 10, Some(&l), Input::Stored(None));
        run(&mut b, 10_010, Some(&l), Input::Abort { attempt: 1 });
        let out = run(&mut b, 10_500, Some(&l), want(2, X, 20_500));
        assert!(posts(&out).is_empty(), "still live: {out:?}");
        run(&mut b, 10_500, Some(&l), Input::Stored(None));
        // The winner's request failed without rotating: it withdraws, and the waiter claims at once.
        let out = run(
            &mut b,
            11_000,
            Some(&l),
            Input::Peer(Peer::Unclaim { token: fp(X), tab: 1 }),
        );
        assert_eq!(
            posts(&out),
            vec![Post::Claim {
                token: fp(X),
                at: 11_000,
                tab: 2
            }]
        );
        // A claim that outlived its TTL (its tab crashed) is not live either.
        let mut c: M = TabsMachine::new(Config::new(Mode::Claims, "k", 3));
        run(&mut c, 0, Some(&l), Input::Peer(claim_of(1, 0)));
        let ttl = c.config().claim_ttl_ms();
        let out = run(&mut c, ttl, Some(&l), want(1, X, ttl + 10_000));
        assert!(matches!(posts(&out)[..], [Post::Claim { .. }]), "{out:?}");
    }

    fn claim_of(tab: u64, at: u64) -> Peer<&'static str> {
        Peer::Claim { token: fp(X), at, tab }
    }

    #[test]
    #[cfg(feature = "full")] // across tabs: not in the lite build
    fn a_claim_frozen_through_its_window_is_made_again_not_acted_on() {
        let mut a: M = TabsMachine::new(Config::new(Mode::Claims, "k", 1));
        let l = local(X, 100_000);
        run(&mut a, 0, Some(&l), want(1, X, 10_000));
        let out = run(&mut a, 5_000, Some(&l), Input::Timer);
        assert_eq!(
            posts(&out),
            vec![
                Post::Unclaim { token: fp(X), tab: 1 },
                Post::Claim {
                    token: fp(X),
                    at: 5_000,
                    tab: 1
                }
            ]
        );
        assert!(fetch_id(&out).is_none());
        // Within the window plus grace: it won.
        let out = run(&mut a, 5_200, Some(&l), Input::Timer);
        assert_eq!(out, vec![Action::QuerySpent { id: 1, token: fp(X) }]);
        // A smaller claim arriving before the request is sent still wins.
        let out = run(&mut a, 5_201, Some(&l), Input::Peer(claim_of(0, 4_999)));
        assert_eq!(
            out,
            vec![Action::Post(Post::Unclaim { token: fp(X), tab: 1 }), Action::ReadStored]
        );
        assert!(fetch_id(&run(
            &mut a,
            5_202,
            Some(&l),
            Input::SpentAnswer { id: 1, spent: false }
        ))
        .is_none());
    }

    #[test]
    #[cfg(feature = "full")] // across tabs: not in the lite build
    fn a_hidden_tab_s_throttled_timer_still_acts_on_its_claim() {
        // Firefox and Chromium fire a hidden tab's 150 ms timer after 1 to 2 s: a slow timer, not a
        // frozen tab (messages arrived meanwhile), so the claim it made stands.
        let mut a: M = TabsMachine::new(Config::new(Mode::Claims, "k", 1));
        let l = local(X, 100_000);
        run(&mut a, 0, Some(&l), want(1, X, 10_000));
        let out = run(&mut a, 1_999, Some(&l), Input::Timer);
        assert_eq!(out, vec![Action::QuerySpent { id: 1, token: fp(X) }]);
        let out = run(&mut a, 2_000, Some(&l), Input::SpentAnswer { id: 1, spent: false });
        assert!(fetch_id(&out).is_some(), "{out:?}");
        // A smaller claim heard while the timer was late still won.
        let mut b: M = TabsMachine::new(Config::new(Mode::Claims, "k", 2));
        run(&mut b, 0, Some(&l), want(1, X, 10_000));
        run(&mut b, 900, Some(&l), Input::Peer(claim_of(1, 0)));
        let out = run(&mut b, 1_999, Some(&l), Input::Timer);
        assert!(
            fetch_id(&out).is_none() && !out.contains(&Action::QuerySpent { id: 1, token: fp(X) }),
            "{out:?}"
        );
    }

    #[test]
    #[cfg(feature = "full")] // across tabs: not in the lite build
    fn a_claim_window_that_ends_early_by_this_clock_is_waited_out() {
        // Firefox rounds `Date.now()` with jitter: the window's timer may find the clock 1 ms short.
        let mut a: M = TabsMachine::new(Config::new(Mode::Claims, "k", 1));
        let l = local(X, 100_000);
        run(&mut a, 0, Some(&l), want(1, X, 10_000));
        let end = a.wake_at().unwrap();
        let mut out = vec![];
        a.handle(end - 1, Some(&l), Input::Timer, &mut out);
        assert_eq!(
            out,
            vec![Action::WakeAt(end)],
            "not over yet: armed again, not forgotten"
        );
        let out = run(&mut a, end, Some(&l), Input::Timer);
        assert_eq!(out, vec![Action::QuerySpent { id: 1, token: fp(X) }]);
    }

    #[test]
    #[cfg(feature = "full")] // across tabs: not in the lite build
    fn a_spent_message_stops_a_claim_and_closing_withdraws_it() {
        let mut a: M = TabsMachine::new(Config::new(Mode::Claims, "k", 1));
        let l = local(X, 100_000);
        run(&mut a, 0, Some(&l), want(1, X, 10_000));
        let out = run(&mut a, 50, Some(&l), Input::Peer(Peer::Spent { token: fp(X) }));
        assert_eq!(out, vec![Action::ReadStored]);
        let mut b: M = TabsMachine::new(Config::new(Mode::Claims, "k", 2));
        run(&mut b, 0, Some(&l), want(1, X, 10_000));
        let out = run(&mut b, 10, Some(&l), Input::Closing);
        assert_eq!(posts(&out), vec![Post::Unclaim { token: fp(X), tab: 2 }]);
    }

    #[test]
    fn sign_in_without_a_token_needs_no_agreement() {
        let mut m = locks();
        let out = run(
            &mut m,
            0,
            None,
            Input::Want {
                attempt: 1,
                present: None,
                deadline_ms: 10_000,
            },
        );
        assert_eq!(out, vec![Action::Fetch { id: 1, present: None }]);
        run(&mut m, 10_000, None, Input::Abort { attempt: 1 });
        assert!(
            run(&mut m, 10_001, None, Input::Fetched { id: 1, result: Ok("s") }).is_empty(),
            "a late sign-in is not forced on a tab that gave up (it may have signed out)"
        );
    }

    /// The lite build has no other tabs: whatever mode it is given, the token is presented at
    /// once, and what only other tabs, locks or spent markers could say is ignored.
    #[test]
    #[cfg(not(feature = "full"))]
    fn the_lite_build_presents_at_once_and_hears_no_other_tab() {
        let mut m = locks();
        let l = local(X, 10_000);
        let out = run(&mut m, 0, Some(&l), want(1, X, 10_000));
        assert_eq!(
            out,
            vec![Action::Fetch {
                id: 1,
                present: Some(Secret::new(X))
            }]
        );
        for input in [
            Input::LockGranted { id: 1 },
            Input::LockTimedOut { id: 1 },
            Input::SpentAnswer { id: 1, spent: true },
            Input::Peer(claim_of(2, 0)),
            Input::Peer(Peer::Spent { token: fp(X) }),
            Input::Peer(Peer::SignOut),
        ] {
            assert!(run(&mut m, 1, Some(&l), input).is_empty());
        }
        assert_eq!(
            run(&mut m, 2, Some(&l), Input::Fetched { id: 1, result: Ok("s") }),
            vec![Action::RefreshOk {
                attempt: 1,
                session: "s"
            }]
        );
    }
}
