//! One simulated world: N tabs (each an AuthMachine, a TabsMachine and a chat SocketMachine, glued
//! the way `src/js` glues them), GoTrue, the lock manager, the BroadcastChannel, storage, the chat
//! server, one clock, and faults drawn from the seed. Time advances from event to event.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::fmt::Write as _;

use authwire::core::auth_machine::{self as am, Answer, AuthMachine, EventKind, Failure, Wake};
use authwire::core::error::Code;
use authwire::core::policy::Policy;
use authwire::core::protocol::{Incoming, Protocol};
use authwire::core::session::{Origin, Raw, RawSession, Session};
use authwire::core::socket_machine::{self as sm, SocketMachine};
use authwire::core::tabs::{self as tb, Fp, Mode, Peer, Post, Published, Summary, TabsMachine};

use super::servers::{Conn, GoTrue, Issued, LockManager, Refusal, Rng};

pub const MIN: u64 = 60_000;
/// The simulated browser clock starts here (ms since the epoch).
pub const T0: u64 = 1_763_900_000_000;

/// The liveness bound: once faults stop, every queued message is delivered and every waiter
/// settled within this. Its parts: a refresh answer sent just before the faults stopped may take
/// until the hold cap (30 s; the sim's slowest answer is 150 ms + 8 s slow + 20 s hang + 150 ms);
/// the longest refresh backoff 30 s; one attempt 10 s (its lock wait of 5 s inside it); the
/// longest reconnect backoff 10 s; one connect timeout 10 s; round trips and jitter 5 s.
pub const BOUND_MS: u64 = 30_000 + 30_000 + 10_000 + 10_000 + 10_000 + 5_000;

/// A run that needs more events than this is looping (a typical hour needs 5,000).
pub const MAX_EVENTS: u64 = 2_000_000;

/// The longest the refresh lock may be held: the hold cap (30 s) and a second.
pub const LOCK_HOLD_MAX_MS: u64 = 31_000;

/// Refresh requests one tab may send in any 60 s of one backoff run, i.e. presenting the same
/// refresh token (the backoff from 200 ms doubling allows ~10, `online` wake-ups a few more). A new
/// session (a success, or one adopted from another tab) rightly restarts the backoff, as auth-js
/// restarts it at every refresh: with 20 s tokens a minute can hold three runs of ~7 requests each
/// (seed 270496), so the runs are counted apart.
pub const MAX_REQUESTS_PER_MIN: usize = 20;

/// Refresh requests one tab may send in any 60 s whatever they present: the backstop for a loop of
/// refreshes that succeed (each restarting the backoff). The shortest tokens (20 s, refreshed with
/// their lead) give a minute at most four sessions; seed 270496's three runs of 7 made 21.
pub const MAX_ALL_REQUESTS_PER_MIN: usize = 40;

/// Knobs of a run besides the seed.
#[derive(Clone, Debug)]
pub struct Opts {
    /// Simulated duration.
    pub duration_ms: u64,
    /// Faults stop at this fraction of the duration (then the calm phase checks liveness).
    pub calm_at_ms: u64,
    /// Parse a refresh answer's `expires_in` from the time the request was sent (the fix), not
    /// from when the answer was read (what `src/web/fetch.rs` did).
    pub parse_at_send: bool,
    /// Keep a trace of the run (printed on failure when replaying).
    pub trace: bool,
    /// Hold every `accessToken()` waiter to `call + attempt_timeout_ms`, even when a new but
    /// unusable session (a peer's answer that hung past its token's life) superseded the attempt
    /// and the AuthMachine carried the waiter over to a fresh attempt with a fresh deadline.
    pub strict_waiters: bool,
    /// Publish and store GoTrue's JSON as received (what `src/js` does: `inner.raw`), parsed by
    /// the receiving tab when it adopts it, instead of the session with its expiry on the shared
    /// browser clock.
    pub publish_raw: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            duration_ms: 60 * MIN,
            calm_at_ms: 45 * MIN,
            parse_at_send: true,
            trace: false,
            strict_waiters: true,
            publish_raw: false,
        }
    }
}

/// The world's shape and its faults, all drawn from the seed.
#[derive(Clone, Debug)]
pub struct Params {
    pub tabs: usize,
    pub mode: Mode,
    pub ack: bool,
    pub storage: bool,
    pub lifetime_s: u64,
    pub reuse_interval_ms: u64,
    pub skew_ms: i64,
    pub msg_mean_ms: u64,
    pub token_call_mean_ms: u64,
    pub p_5xx: f64,
    pub p_429: f64,
    pub p_slow: f64,
    pub p_hang: f64,
    pub p_reject: f64,
    pub p_connect_fail: f64,
    pub p_connect_hang: f64,
    pub drop_mean_ms: u64,
    pub offline: Vec<(u64, u64)>,
    pub freezes: Vec<(usize, u64, u64)>,
    pub sleeps: Vec<(u64, u64)>,
    pub closes: Vec<u64>,
    pub opens: Vec<u64>,
    /// The socket puts the token in its connect URL (`connectToken`): the server checks it at the upgrade.
    pub connect_token: bool,
    /// Tabs in the background (bit i: tab i), whose timers the browser throttles: none fires
    /// sooner than 1 s after it was set, and each fires on a whole second of the clock (Firefox
    /// and Chromium clamp hidden tabs' timers so; WebKit likewise). Messages still arrive at once.
    pub background: u64,
    /// How early a timer may fire by the tab's clock: the browser runs timers on a monotonic clock,
    /// the shell reads `Date.now()`, and the two disagree by a millisecond or so (Firefox rounds
    /// `Date.now()` with jitter; a wall clock can step back). A timer set for `at` fires when the
    /// tab reads `at - early_ms` (never sooner than 1 ms after it was set).
    pub early_ms: u64,
}

impl Params {
    pub fn draw(seed: u64, o: &Opts) -> Params {
        let mut r = Rng::new(seed.wrapping_mul(0x9E37_79B9).wrapping_add(17));
        let tabs = r.pick(&[1, 2, 2, 3, 3, 4]);
        let mode = if tabs == 1 && r.chance(0.3) {
            Mode::Alone
        } else if r.chance(0.65) {
            Mode::Locks
        } else {
            Mode::Claims
        };
        let calm = o.calm_at_ms;
        let faulty = !r.chance(0.1);
        let f = |r: &mut Rng, p: f64| {
            if faulty && r.chance(0.6) {
                p * (r.range(1, 100) as f64 / 50.0)
            } else {
                0.0
            }
        };
        let spells = |r: &mut Rng, max_n: u64, lo: u64, hi: u64| -> Vec<(u64, u64)> {
            if !faulty {
                return vec![];
            }
            let n = r.range(0, max_n);
            (0..n)
                .map(|_| {
                    let d = r.range(lo, hi);
                    (r.range(0, calm.saturating_sub(d)), d)
                })
                .collect()
        };
        let offline = spells(&mut r, 3, 5_000, 3 * MIN);
        let sleeps = if r.chance(0.3) {
            spells(&mut r, 1, MIN, 20 * MIN)
        } else {
            vec![]
        };
        let freezes = spells(&mut r, 3, 10_000, 5 * MIN)
            .into_iter()
            .map(|(s, d)| (r.range(0, tabs as u64 - 1) as usize, s, d))
            .collect();
        let churn = faulty && tabs > 1 && r.chance(0.3);
        let closes = if churn {
            (0..r.range(1, 2)).map(|_| r.range(0, calm)).collect()
        } else {
            vec![]
        };
        let opens = if mode != Mode::Alone && (churn || r.chance(0.15)) {
            (0..r.range(1, 2)).map(|_| r.range(0, calm)).collect()
        } else {
            vec![]
        };
        Params {
            tabs,
            mode,
            ack: r.chance(0.6),
            storage: r.chance(0.8),
            lifetime_s: r.pick(&[3600, 600, 300, 300, 120, 60, 60, 20]),
            reuse_interval_ms: if r.chance(0.2) { 10_000 } else { 0 },
            skew_ms: r.range(0, 600_000) as i64 - 300_000,
            msg_mean_ms: r.pick(&[5_000, 20_000, 60_000, 120_000]),
            token_call_mean_ms: r.pick(&[30_000, 120_000, 600_000]),
            p_5xx: f(&mut r, 0.05),
            p_429: f(&mut r, 0.02),
            p_slow: f(&mut r, 0.05),
            p_hang: f(&mut r, 0.03),
            p_reject: f(&mut r, 0.003),
            p_connect_fail: f(&mut r, 0.05),
            p_connect_hang: f(&mut r, 0.02),
            drop_mean_ms: if faulty && r.chance(0.6) {
                r.pick(&[2 * MIN, 10 * MIN, 30 * MIN])
            } else {
                0
            },
            offline,
            freezes,
            sleeps,
            closes,
            opens,
            // Drawn last: the draws of every earlier parameter (and the named seeds) stay as they were.
            connect_token: r.chance(0.3),
            background: if r.chance(0.5) { r.range(0, 15) } else { 0 },
            early_ms: if r.chance(0.3) { r.range(1, 3) } else { 0 },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Auth = 0,
    Tabs = 1,
    Sock = 2,
}

#[derive(Debug)]
enum Ev {
    Timer {
        tab: usize,
        which: Which,
        gen: u64,
    },
    LockDeadline {
        tab: usize,
        id: u64,
    },
    LockGrant {
        tab: usize,
        id: u64,
    },
    SpentAnswer {
        tab: usize,
        id: u64,
        spent: bool,
    },
    Msg {
        tab: usize,
        msg: Peer<Session>,
    },
    HttpArrive {
        tab: usize,
        req: u64,
        present: Option<String>,
        sent_at: u64,
    },
    HttpProcess {
        tab: usize,
        req: u64,
        present: String,
        sent_at: u64,
        hang: bool,
    },
    HttpAnswer {
        tab: usize,
        req: u64,
        result: Result<Issued, Option<Refusal>>,
        sent_at: u64,
    },
    WsOpened {
        tab: usize,
        conn: u64,
    },
    WsClosed {
        tab: usize,
        conn: u64,
        code: u16,
    },
    WsToServer {
        conn: u64,
        token: String,
        n: u64,
        id: Option<String>,
    },
    WsToClient {
        tab: usize,
        conn: u64,
        frame: Incoming,
    },
    WsServerClose {
        conn: u64,
    },
    AppSend {
        tab: usize,
    },
    AppToken {
        tab: usize,
    },
    OpenTab,
    CloseTab,
    FreezeStart {
        tab: usize,
        dur: u64,
    },
    FreezeEnd {
        tab: usize,
    },
    SleepStart {
        dur: u64,
    },
    SleepEnd,
    OfflineStart {
        dur: u64,
    },
    OfflineEnd,
    DropConn {
        tab: usize,
    },
}

impl Ev {
    fn tab(&self) -> Option<usize> {
        match self {
            Ev::Timer { tab, .. }
            | Ev::LockDeadline { tab, .. }
            | Ev::LockGrant { tab, .. }
            | Ev::SpentAnswer { tab, .. }
            | Ev::Msg { tab, .. }
            | Ev::HttpAnswer { tab, .. }
            | Ev::WsOpened { tab, .. }
            | Ev::WsClosed { tab, .. }
            | Ev::WsToClient { tab, .. }
            | Ev::AppSend { tab }
            | Ev::AppToken { tab }
            | Ev::FreezeStart { tab, .. }
            | Ev::FreezeEnd { tab }
            | Ev::DropConn { tab } => Some(*tab),
            _ => None,
        }
    }
    /// Runs on the tab's own timers (held back while the tab is frozen).
    fn is_timer(&self) -> bool {
        matches!(self, Ev::Timer { .. } | Ev::LockDeadline { .. })
    }
}

struct Sched {
    at: u64,
    seq: u64,
    ev: Ev,
}
impl PartialEq for Sched {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Sched {}
impl PartialOrd for Sched {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Sched {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

struct Waiter {
    deadline: u64,
    excused: bool,
}

struct Tab {
    auth: AuthMachine,
    tabs: TabsMachine<Session>,
    sock: SocketMachine<u64>,
    timers: [(Option<u64>, u64); 3],
    frozen_until: u64,
    adopting: bool,
    conn: Option<u64>,
    waiters: Vec<Waiter>,
    next_msg: u64,
    /// Sent chat messages: (number, time sent).
    sent: Vec<(u64, u64)>,
    /// Messages whose frame a fault before the calm lost: it reached the server on a connection
    /// that fault had closed (or was the frame whose token the server rejected). Without acks the
    /// SDK cannot know, so only these are excused from delivery.
    lost_to_faults: std::collections::HashSet<u64>,
    /// Outstanding HTTP requests: id -> (time sent, the refresh token presented).
    http: HashMap<u64, (u64, Option<String>)>,
    cancelled: Vec<u64>,
    /// Times of the refresh requests of the current backoff run (for the rate check).
    request_times: VecDeque<u64>,
    /// Times of all refresh requests in the last minute (for the backstop).
    all_request_times: VecDeque<u64>,
    /// The refresh token the current backoff run presents.
    run_token: Option<String>,
}

/// What a run measured.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub events: u64,
    pub rotations: usize,
    pub requests: u64,
    pub frames: u64,
    pub messages: u64,
    pub delivered: u64,
    pub lock_timeouts: u64,
    pub peer_waits: u64,
    pub late_successes: u64,
    pub max_calm_latency_ms: u64,
    pub max_requests_per_min: usize,
    pub max_all_requests_per_min: usize,
    pub calm_rotations: usize,
    pub reuses_allowed: usize,
    pub waiter_extensions: u64,
    /// A tab closed with its refresh on the wire and its successor session was lost with it; a
    /// later reuse beyond GoTrue's reuse interval then ended the session (inherent, not a bug).
    pub orphan_loss: bool,
    pub orphan_reuses: u64,
    pub closed_holding_lock: u64,
    pub longest_lock_hold_ms: u64,
    pub signed_out: bool,
}

pub struct World {
    pub seed: u64,
    pub p: Params,
    o: Opts,
    now: u64,
    seq: u64,
    q: BinaryHeap<Reverse<Sched>>,
    rng: Rng,
    tabs: Vec<Option<Tab>>,
    gotrue: GoTrue,
    locks: LockManager,
    markers: VecDeque<Fp>,
    stored: Option<Session>,
    last_msg: HashMap<(usize, usize), u64>,
    conns: BTreeMap<u64, Conn>,
    next_conn: u64,
    next_req: u64,
    /// Per tab: message numbers the chat server delivered, in order, with the time.
    delivered: HashMap<usize, Vec<(u64, u64)>>,
    seen_ids: HashMap<String, u64>,
    offline_until: u64,
    asleep_until: u64,
    calm_at: u64,
    end: u64,
    pub report: Report,
    pub trace: Vec<String>,
    pending_violation: Option<String>,
    /// Refresh tokens whose presentation was on the wire when its tab closed.
    orphaned: Vec<String>,
}

type Out<T> = Vec<T>;

impl World {
    pub fn new(seed: u64, o: Opts) -> World {
        let p = Params::draw(seed, &o);
        let mut w = World {
            seed,
            gotrue: GoTrue::new(p.lifetime_s, p.reuse_interval_ms),
            p,
            now: T0,
            seq: 0,
            q: BinaryHeap::new(),
            rng: Rng::new(seed),
            tabs: Vec::new(),
            locks: LockManager::default(),
            markers: VecDeque::new(),
            stored: None,
            last_msg: HashMap::new(),
            conns: BTreeMap::new(),
            next_conn: 0,
            next_req: 0,
            delivered: HashMap::new(),
            seen_ids: HashMap::new(),
            offline_until: 0,
            asleep_until: 0,
            calm_at: T0 + o.calm_at_ms,
            end: T0 + o.duration_ms,
            report: Report::default(),
            trace: Vec::new(),
            pending_violation: None,
            orphaned: Vec::new(),
            o,
        };
        w.setup();
        w
    }

    fn server_now(&self) -> u64 {
        (self.now as i64 + self.p.skew_ms) as u64
    }

    fn faulty(&self) -> bool {
        self.now < self.calm_at
    }

    fn at(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.q.push(Reverse(Sched {
            at: at.max(self.now),
            seq: self.seq,
            ev,
        }));
    }

    fn log(&mut self, f: impl FnOnce() -> String) {
        if self.o.trace {
            let line = format!("{:>9.3} {}", (self.now - T0) as f64 / 1000.0, f());
            self.trace.push(line);
        }
    }

    fn fail(&self, what: String) -> String {
        format!("seed {}: {what}\n  params: {:?}", self.seed, self.p)
    }

    fn setup(&mut self) {
        let issued = self.gotrue.sign_in(self.server_now());
        let raw = RawSession {
            access_token: Raw::Str(issued.access.clone()),
            refresh_token: Raw::Str(issued.refresh.clone()),
            expires_at: Raw::Num(issued.expires_at as f64),
            expires_in: Raw::Num(issued.expires_in as f64),
            user_id: Raw::Str("user-1".into()),
            ..Default::default()
        };
        let first = Session::from_raw(&raw, self.now, Origin::HandedOver).expect("valid session");
        for i in 0..self.p.tabs {
            self.open_tab(if i == 0 { Some(first.clone()) } else { None });
        }
        let p = self.p.clone();
        for &(s, d) in &p.offline {
            self.at(T0 + s, Ev::OfflineStart { dur: d });
        }
        for &(s, d) in &p.sleeps {
            self.at(T0 + s, Ev::SleepStart { dur: d });
        }
        for &(t, s, d) in &p.freezes {
            self.at(T0 + s, Ev::FreezeStart { tab: t, dur: d });
        }
        for &s in &p.closes {
            self.at(T0 + s, Ev::CloseTab);
        }
        for &s in &p.opens {
            self.at(T0 + s, Ev::OpenTab);
        }
    }

    fn open_tab(&mut self, handed: Option<Session>) {
        let i = self.tabs.len();
        let seed = self.rng.u64();
        let mode = self.p.mode;
        let mut cfg = sm::Config::new(Protocol::TokenPerMessage, format!("t{i}"), seed);
        cfg.ack = self.p.ack;
        if self.p.connect_token {
            cfg.connect_token = Some(sm::TokenPlace::Query("token".into()));
        }
        let tab = Tab {
            auth: AuthMachine::new(Policy::default(), true, true, seed ^ 1),
            tabs: TabsMachine::new(tb::Config::new(mode, "sb-sim-auth-token", i as u64 + 1)),
            sock: SocketMachine::new(cfg),
            timers: [(None, 0); 3],
            frozen_until: 0,
            adopting: false,
            conn: None,
            waiters: Vec::new(),
            next_msg: 0,
            sent: Vec::new(),
            lost_to_faults: Default::default(),
            http: HashMap::new(),
            cancelled: Vec::new(),
            request_times: VecDeque::new(),
            all_request_times: VecDeque::new(),
            run_token: None,
        };
        self.tabs.push(Some(tab));
        self.log(|| format!("tab {i} opens"));
        // The constructor: the app's session, else the stored one, else ask the other tabs.
        let initial = handed.or_else(|| if self.p.storage { self.stored.clone() } else { None });
        match initial {
            Some(s) => {
                let s = if i == 0 { s } else { self.as_received(s).session };
                self.auth_input(i, am::Input::SetSession(s))
            }
            None => self.broadcast(i, Peer::Hello),
        }
        let ok = self.usable(i);
        let mut out = vec![];
        let now = self.now;
        self.tab(i).sock.handle(now, sm::Input::Start, ok, &mut out);
        self.perform_sock(i, out);
        let d = self.rng.exp(self.p.msg_mean_ms);
        self.at(self.now + d, Ev::AppSend { tab: i });
        let d = self.rng.exp(self.p.token_call_mean_ms);
        self.at(self.now + d, Ev::AppToken { tab: i });
        if self.p.drop_mean_ms > 0 {
            let d = self.rng.exp(self.p.drop_mean_ms);
            self.at(self.now + d, Ev::DropConn { tab: i });
        }
    }

    fn tab(&mut self, i: usize) -> &mut Tab {
        self.tabs[i].as_mut().expect("open tab")
    }

    fn is_open(&self, i: usize) -> bool {
        self.tabs.get(i).is_some_and(|t| t.is_some())
    }

    fn usable(&mut self, i: usize) -> bool {
        let now = self.now;
        self.tab(i).auth.usable(now)
    }

    fn open_tabs(&self) -> Vec<usize> {
        (0..self.tabs.len()).filter(|i| self.is_open(*i)).collect()
    }

    // ---------------------------------------------------------------- the shell glue

    /// When a timer of tab `i` set now for `at` fires: on time, or, in a hidden tab, at least 1 s
    /// from now and on a whole second; either `early_ms` sooner by the tab's clock (never sooner than
    /// 1 ms after it was set).
    fn fires_at(&self, i: usize, at: u64) -> u64 {
        let due = if self.p.background & (1 << i.min(63)) == 0 {
            at
        } else {
            let at = at.max(self.now + 1_000);
            T0 + (at - T0).div_ceil(1_000) * 1_000
        };
        if due > self.now {
            due.saturating_sub(self.p.early_ms).max(self.now + 1)
        } else {
            due
        }
    }

    fn set_timer(&mut self, i: usize, which: Which, at: Option<u64>) {
        let t = self.tab(i);
        let slot = &mut t.timers[which as usize];
        slot.1 += 1;
        slot.0 = at;
        let gen = slot.1;
        if let Some(at) = at {
            let at = self.fires_at(i, at);
            self.at(at, Ev::Timer { tab: i, which, gen });
        }
    }

    fn auth_input(&mut self, i: usize, input: am::Input) {
        let now = self.now;
        let mut out = vec![];
        let shown = if self.o.trace {
            format!("{input:?}")
        } else {
            String::new()
        };
        self.tab(i).auth.handle(now, input, &mut out);
        self.log(|| format!("tab {i} auth <- {shown} -> {out:?}"));
        self.perform_auth(i, out);
    }

    /// `src/js/auth.rs` `perform`: each action one call; events reach the socket after the batch.
    fn perform_auth(&mut self, i: usize, out: Out<am::Action>) {
        let mut events = vec![];
        // A new session that supersedes the attempt in flight without being usable itself carries
        // the waiters over to the attempt it starts (a new deadline): see `Opts::strict_waiters`.
        if !self.o.strict_waiters && !self.tab(i).waiters.is_empty() {
            let renewed = out.iter().any(|a| {
                matches!(a, am::Action::Emit(e) if matches!(e.kind, EventKind::TokenRefreshed | EventKind::SignedIn))
            });
            let next = out.iter().find_map(|a| match a {
                am::Action::Fetch { deadline_ms, .. } => Some(*deadline_ms),
                _ => None,
            });
            if let (true, Some(d)) = (renewed, next) {
                self.report.waiter_extensions += 1;
                for w in &mut self.tab(i).waiters {
                    w.deadline = w.deadline.max(d);
                }
            }
        }
        for a in out {
            if !self.is_open(i) {
                return;
            }
            match a {
                am::Action::Fetch {
                    attempt,
                    deadline_ms,
                    present,
                } => self.tabs_input(
                    i,
                    tb::Input::Want {
                        attempt,
                        present,
                        deadline_ms,
                    },
                ),
                am::Action::Abort { attempt } => self.tabs_input(i, tb::Input::Abort { attempt }),
                am::Action::WakeAt(at) => self.set_timer(i, Which::Auth, Some(at)),
                am::Action::CancelWake => self.set_timer(i, Which::Auth, None),
                am::Action::ResolveTokenWaiters => {
                    let n = self.tab(i).waiters.len();
                    if n > 0 {
                        self.check_token_in_use(i, "accessToken() resolved");
                        self.tab(i).waiters.clear();
                    }
                }
                am::Action::RejectTokenWaiters(_) => self.tab(i).waiters.clear(),
                am::Action::SettleRefreshWaiters(_) => {}
                am::Action::Emit(ev) => {
                    if !self.tab(i).adopting {
                        self.share(i, ev.kind);
                    }
                    if ev.kind == EventKind::SignedOut {
                        self.report.signed_out = true;
                    }
                    events.push(ev);
                }
                am::Action::Changed => {}
            }
        }
        for ev in events {
            if !self.is_open(i) {
                return;
            }
            let input = match ev.kind {
                EventKind::TokenRefreshed | EventKind::SignedIn => sm::Input::TokenChanged,
                EventKind::RefreshFailed => sm::Input::RefreshFailed(ev.code.unwrap_or(Code::NetworkError)),
                EventKind::SignedOut => sm::Input::SessionEnded,
                EventKind::SessionExpired => continue,
            };
            self.sock_input(i, input);
        }
    }

    /// `share`: store and announce a change made here (not one adopted from another tab).
    fn share(&mut self, i: usize, kind: EventKind) {
        match kind {
            EventKind::SignedIn | EventKind::TokenRefreshed => {
                let s = self.tab(i).auth.session().cloned();
                if let Some(s) = s {
                    if self.p.storage {
                        self.stored = Some(s.clone());
                    }
                    if self.p.mode != Mode::Alone {
                        self.broadcast(
                            i,
                            Peer::Session(Published {
                                summary: Summary::of(&s),
                                session: s,
                            }),
                        );
                    }
                }
            }
            EventKind::SignedOut => {
                self.stored = None;
                self.broadcast(i, Peer::SignOut);
            }
            _ => {}
        }
    }

    fn broadcast(&mut self, from: usize, msg: Peer<Session>) {
        if self.p.mode == Mode::Alone {
            return;
        }
        for to in self.open_tabs() {
            if to == from {
                continue;
            }
            // Per-pair order; usually sub-millisecond, sometimes tens of ms (well inside the claim window).
            let d = if self.rng.chance(0.1) {
                self.rng.range(5, 60)
            } else {
                self.rng.range(0, 2)
            };
            let last = self.last_msg.entry((from, to)).or_insert(0);
            let t = (self.now + d).max(*last);
            *last = t;
            self.at(
                t,
                Ev::Msg {
                    tab: to,
                    msg: msg.clone(),
                },
            );
        }
    }

    fn tabs_input(&mut self, i: usize, input: tb::Input<Session>) {
        let now = self.now;
        let shown = if self.o.trace {
            format!("{input:?}")
        } else {
            String::new()
        };
        let t = self.tab(i);
        let local = t.auth.session().map(Summary::of);
        let mut out = vec![];
        t.tabs.handle(now, local.as_ref(), input, &mut out);
        self.log(|| format!("tab {i} tabs <- {shown} -> {out:?}"));
        self.perform_tabs(i, out);
    }

    fn perform_tabs(&mut self, i: usize, out: Out<tb::Action<Session>>) {
        for a in out {
            if !self.is_open(i) {
                return;
            }
            match a {
                tb::Action::AcquireLock { id, deadline_ms, .. } => {
                    let most = self.now + self.tab(i).tabs.config().lock_timeout_ms;
                    if deadline_ms > most {
                        self.pending_violation.get_or_insert_with(|| {
                            format!("tab {i} waits for the lock until {deadline_ms}, past {most}")
                        });
                    }
                    if self.locks.request(i, id, self.now) {
                        self.at(self.now, Ev::LockGrant { tab: i, id });
                    }
                    self.at(deadline_ms, Ev::LockDeadline { tab: i, id });
                }
                tb::Action::ReleaseLock { id } => {
                    if let Some((t, id)) = self.locks.release(i, id, self.now) {
                        self.at(self.now, Ev::LockGrant { tab: t, id });
                    }
                }
                tb::Action::QuerySpent { id, token } => {
                    let spent = self.markers.contains(&token);
                    self.at(self.now + 1, Ev::SpentAnswer { tab: i, id, spent });
                }
                tb::Action::MarkSpent { token } => {
                    if self.markers.len() == 16 {
                        self.markers.pop_front();
                    }
                    self.markers.push_back(token);
                }
                tb::Action::ReadStored => {
                    let s = self.stored.clone().map(|s| self.as_received(s));
                    self.tabs_input(i, tb::Input::Stored(s));
                }
                tb::Action::Post(p) => {
                    let msg = match p {
                        Post::MySession => match self.tab(i).auth.session().cloned() {
                            Some(s) => Peer::Session(Published {
                                summary: Summary::of(&s),
                                session: s,
                            }),
                            None => continue,
                        },
                        Post::Hello => Peer::Hello,
                        Post::Claim { token, at, tab } => Peer::Claim { token, at, tab },
                        Post::Unclaim { token, tab } => Peer::Unclaim { token, tab },
                        Post::Spent { token } => Peer::Spent { token },
                    };
                    self.broadcast(i, msg);
                }
                tb::Action::Fetch { id, present } => self.http_send(i, id, present.map(|s| s.expose().to_owned())),
                tb::Action::CancelFetch { id } => {
                    let t = self.tab(i);
                    t.http.remove(&id);
                    t.cancelled.push(id);
                }
                tb::Action::RefreshOk { attempt, session } => {
                    self.auth_input(i, am::Input::RefreshOk { attempt, session })
                }
                tb::Action::Refreshed(s) => {
                    self.report.late_successes += 1;
                    self.auth_input(i, am::Input::Refreshed(s))
                }
                tb::Action::RefreshErr { attempt, failure } => {
                    if failure == Failure::LockTimeout {
                        self.report.lock_timeouts += 1;
                    }
                    self.auth_input(i, am::Input::RefreshErr { attempt, failure })
                }
                tb::Action::Adopt(s) => {
                    let now = self.now;
                    if self.tab(i).auth.check(&s, now).is_ok() {
                        self.tab(i).adopting = true;
                        self.auth_input(i, am::Input::SetSession(s));
                        if self.is_open(i) {
                            self.tab(i).adopting = false;
                        }
                    }
                }
                tb::Action::SignOut => {
                    self.tab(i).adopting = true;
                    self.auth_input(i, am::Input::SignOut);
                    if self.is_open(i) {
                        self.tab(i).adopting = false;
                    }
                }
                tb::Action::Waiting { .. } => self.report.peer_waits += 1,
                tb::Action::WakeAt(at) => self.set_timer(i, Which::Tabs, Some(at)),
                tb::Action::CancelWake => self.set_timer(i, Which::Tabs, None),
            }
        }
    }

    fn sock_input(&mut self, i: usize, input: sm::Input) {
        let now = self.now;
        let ok = self.usable(i);
        let mut out = vec![];
        self.tab(i).sock.handle(now, input, ok, &mut out);
        self.perform_sock(i, out);
    }

    /// `src/js/chat.rs`: writes now, token requests after the batch (`run_later`).
    fn perform_sock(&mut self, i: usize, out: Out<sm::Action<u64>>) {
        #[derive(PartialEq)]
        enum Later {
            Need,
            Release,
            Force,
        }
        let mut later = vec![];
        for a in out {
            match a {
                sm::Action::Connect => self.ws_connect(i),
                sm::Action::Disconnect(_) => {
                    if let Some(conn) = self.tab(i).conn.take() {
                        let t = self.conns.get(&conn).map_or(self.now, |c| c.last_up.max(self.now));
                        self.at(t + 1, Ev::WsServerClose { conn });
                    }
                }
                sm::Action::WriteAuth
                | sm::Action::Ping
                | sm::Action::Pong
                | sm::Action::WriteLogout
                | sm::Action::Emit(_) => {}
                sm::Action::Write(frame) => self.ws_write(i, frame),
                sm::Action::NeedToken => later.push(Later::Need),
                sm::Action::ReleaseToken => later.push(Later::Release),
                sm::Action::ForceRefresh => later.push(Later::Force),
                sm::Action::WakeAt(at) => self.set_timer(i, Which::Sock, Some(at)),
                sm::Action::CancelWake => self.set_timer(i, Which::Sock, None),
                sm::Action::Changed => {}
            }
        }
        for l in later {
            if !self.is_open(i) {
                return;
            }
            let now = self.now;
            match l {
                Later::Need => {
                    let mut out = vec![];
                    let answer = self.tab(i).auth.need(1, now, &mut out);
                    self.perform_auth(i, out);
                    match answer {
                        Answer::Ready => self.sock_input(i, sm::Input::TokenChanged),
                        Answer::Wait => {}
                        Answer::Fail(code) => self.sock_input(i, sm::Input::TokenUnavailable(code)),
                    }
                }
                Later::Release => {
                    let mut out = vec![];
                    self.tab(i).auth.release(1, now, &mut out);
                    self.perform_auth(i, out);
                }
                Later::Force => {
                    let mut out = vec![];
                    let r = self.tab(i).auth.want_refresh(now, &mut out);
                    self.perform_auth(i, out);
                    match r {
                        Ok(()) => {}
                        Err(Code::SignedOut | Code::Freed) => self.sock_input(i, sm::Input::SessionEnded),
                        Err(code) => self.sock_input(i, sm::Input::RefreshFailed(code)),
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------- network

    fn offline(&self) -> bool {
        self.now < self.offline_until
    }

    fn http_send(&mut self, i: usize, id: u64, present: Option<String>) {
        let now = self.now;
        let t = self.tab(i);
        t.http.insert(id, (now, present.clone()));
        if t.run_token != present {
            // Another refresh token: a new session came in between, and the backoff restarted.
            t.run_token.clone_from(&present);
            t.request_times.clear();
        }
        t.request_times.push_back(now);
        while t.request_times.front().is_some_and(|x| *x + MIN <= now) {
            t.request_times.pop_front();
        }
        let in_min = t.request_times.len();
        t.all_request_times.push_back(now);
        while t.all_request_times.front().is_some_and(|x| *x + MIN <= now) {
            t.all_request_times.pop_front();
        }
        let all_in_min = t.all_request_times.len();
        self.report.requests += 1;
        self.report.max_requests_per_min = self.report.max_requests_per_min.max(in_min);
        self.report.max_all_requests_per_min = self.report.max_all_requests_per_min.max(all_in_min);
        self.log(|| format!("tab {i} POST /token (request {id})"));
        if self.offline() {
            let d = self.rng.range(1, 50);
            self.at(
                now + d,
                Ev::HttpAnswer {
                    tab: i,
                    req: id,
                    result: Err(None),
                    sent_at: now,
                },
            );
            return;
        }
        self.next_req += 1;
        let d = self.rng.range(10, 150);
        self.at(
            now + d,
            Ev::HttpArrive {
                tab: i,
                req: id,
                present,
                sent_at: now,
            },
        );
    }

    fn ws_connect(&mut self, i: usize) {
        let url_token = if self.p.connect_token {
            // What the shell puts in the URL: the token of this moment (never a cached URL).
            Some(
                self.tab(i)
                    .auth
                    .access_token()
                    .map(|t| t.expose().to_owned())
                    .unwrap_or_default(),
            )
        } else {
            None
        };
        self.next_conn += 1;
        let conn = self.next_conn;
        self.tab(i).conn = Some(conn);
        let now = self.now;
        if self.offline() || (self.faulty() && self.rng.chance(self.p.p_connect_fail)) {
            let d = self.rng.range(5, 200);
            self.at(
                now + d,
                Ev::WsClosed {
                    tab: i,
                    conn,
                    code: 1006,
                },
            );
        } else if self.faulty() && self.rng.chance(self.p.p_connect_hang) {
            // Never answers: the socket's connect timeout gives up on it.
        } else {
            let d = self.rng.range(20, 300);
            let url_token = url_token.map(|t| (t, self.server_now() + d));
            self.conns.insert(
                conn,
                Conn {
                    tab: i,
                    open: true,
                    last_up: now + d,
                    last_down: now + d,
                    url_token,
                    fault_closed_at: None,
                },
            );
            self.at(now + d, Ev::WsOpened { tab: i, conn });
        }
    }

    fn ws_write(&mut self, i: usize, frame: sm::Frame<u64>) {
        self.report.frames += 1;
        let Some(conn) = self.tab(i).conn else { return };
        let token = self
            .tab(i)
            .auth
            .access_token()
            .map(|t| t.expose().to_owned())
            .unwrap_or_default();
        let d = self.rng.range(5, 120);
        let now = self.now;
        let Some(c) = self.conns.get_mut(&conn) else { return };
        let t = (now + d).max(c.last_up);
        c.last_up = t;
        let n = frame.payload;
        self.log(|| {
            format!(
                "tab {i} writes message {n} on connection {conn} (the server reads it at {:.3})",
                (t - T0) as f64 / 1000.0
            )
        });
        self.at(
            t,
            Ev::WsToServer {
                conn,
                token,
                n: frame.payload,
                id: frame.message_id,
            },
        );
    }

    /// A fault closes the connection from the server's side; the tab hears of it one transit later.
    fn server_close(&mut self, conn: u64, code: u16) {
        let now = self.now;
        let Some(c) = self.conns.get_mut(&conn) else { return };
        if !c.open {
            return;
        }
        c.open = false;
        c.fault_closed_at = Some(now);
        let tab = c.tab;
        let t = (self.now + self.rng.range(5, 100)).max(self.conns[&conn].last_down);
        self.log(|| {
            format!(
                "the server closes connection {conn} of tab {tab} ({code}); the tab hears it at {:.3}",
                (t - T0) as f64 / 1000.0
            )
        });
        self.at(t, Ev::WsClosed { tab, conn, code });
    }

    fn server_reply(&mut self, conn: u64, frame: Incoming) {
        let d = self.rng.range(5, 120);
        let now = self.now;
        let Some(c) = self.conns.get_mut(&conn) else { return };
        let t = (now + d).max(c.last_down);
        c.last_down = t;
        let tab = c.tab;
        self.at(t, Ev::WsToClient { tab, conn, frame });
    }

    /// The chat server reads a frame: the token must not have expired *now*, by the server's clock.
    fn server_read(&mut self, conn: u64, token: String, n: u64, id: Option<String>) -> Result<(), String> {
        let Some(c) = self.conns.get(&conn) else { return Ok(()) };
        if !c.open {
            let (tab, fault) = (c.tab, c.fault_closed_at);
            self.log(|| format!("chat server: message {n} of tab {tab} arrives on closed connection {conn}, lost"));
            if fault.is_some_and(|at| at < self.calm_at) {
                self.lose_to_fault(tab, n);
            }
            return Ok(());
        }
        let tab = c.tab;
        let server_now = self.server_now();
        match self.gotrue.access_exp.get(&token) {
            Some(exp) if server_now < *exp => {}
            exp => {
                return Err(self.fail(format!(
                    "tab {tab} wrote message {n} with a token that is expired when the server reads it \
                     (expired {} ms ago by the server's clock)",
                    exp.map_or(-1, |e| server_now as i64 - *e as i64)
                )));
            }
        }
        if self.faulty() && self.rng.chance(self.p.p_reject) {
            self.log(|| format!("chat server rejects the token of tab {tab} (4001)"));
            self.server_close(conn, 4001);
            self.lose_to_fault(tab, n);
            return Ok(());
        }
        let fresh = match &id {
            Some(id) => self.seen_ids.insert(id.clone(), n).is_none(),
            None => true,
        };
        if fresh {
            let now = self.now;
            let list = self.delivered.entry(tab).or_default();
            let last = list.last().map_or(0, |x| x.0);
            if self.p.ack && n != last + 1 {
                return Err(self.fail(format!(
                    "ack mode: tab {tab}'s message {n} delivered after message {last} (lost, twice or out of order)"
                )));
            }
            if !self.p.ack && n <= last {
                return Err(self.fail(format!(
                    "tab {tab}'s message {n} delivered after message {last} (twice or out of order)"
                )));
            }
            list.push((n, now));
            self.report.delivered += 1;
        }
        let kind = if self.p.ack { "ack" } else { "ai_response" };
        self.server_reply(
            conn,
            Incoming {
                kind: Some(kind.into()),
                code: None,
                message_id: id,
                session: None,
            },
        );
        Ok(())
    }

    fn lose_to_fault(&mut self, tab: usize, n: u64) {
        if let Some(t) = self.tabs[tab].as_mut() {
            t.lost_to_faults.insert(n);
        }
    }

    fn check_token_in_use(&mut self, i: usize, what: &str) {
        // Not an invariant failure path of its own: an accessToken() answer must not be expired.
        let token = self.tab(i).auth.access_token().map(|t| t.expose().to_owned());
        if let Some(t) = token {
            let server_now = self.server_now();
            if self.gotrue.access_exp.get(&t).is_some_and(|e| *e <= server_now) {
                self.pending_violation
                    .get_or_insert_with(|| format!("tab {i}: {what} with an expired token"));
            }
        }
    }

    // ---------------------------------------------------------------- the run

    pub fn run(mut self) -> Result<Report, String> {
        self.run_inner()?;
        self.finish()
    }

    fn run_inner(&mut self) -> Result<(), String> {
        while let Some(Reverse(s)) = self.q.pop() {
            if s.at > self.end {
                break;
            }
            self.now = s.at;
            let ev = s.ev;
            if matches!(ev, Ev::OpenTab | Ev::CloseTab) && self.now < self.asleep_until {
                let at = self.asleep_until;
                self.at(at, ev);
                continue;
            }
            if let Some(t) = ev.tab() {
                if !self.is_open(t) {
                    continue;
                }
                // A sleeping laptop runs no page; a frozen tab runs no timers.
                if self.now < self.asleep_until {
                    let at = self.asleep_until;
                    self.at(at, ev);
                    continue;
                }
                if ev.is_timer() && self.now < self.tabs[t].as_ref().unwrap().frozen_until {
                    let at = self.tabs[t].as_ref().unwrap().frozen_until;
                    self.at(at, ev);
                    continue;
                }
            }
            self.report.events += 1;
            if self.report.events > MAX_EVENTS {
                return Err(self.fail(format!("more than {MAX_EVENTS} events: a message or timer storm")));
            }
            self.step(ev)?;
            if let Some(v) = self.pending_violation.take() {
                return Err(self.fail(v));
            }
            self.check_waiters()?;
            self.check_lock()?;
        }
        self.now = self.end;
        Ok(())
    }

    fn step(&mut self, ev: Ev) -> Result<(), String> {
        match ev {
            Ev::Timer { tab, which, gen } => {
                let slot = self.tab(tab).timers[which as usize];
                if slot.1 != gen || slot.0.is_none() {
                    return Ok(());
                }
                self.tab(tab).timers[which as usize].0 = None;
                match which {
                    Which::Auth => self.auth_input(tab, am::Input::Wake(Wake::Timer)),
                    Which::Tabs => self.tabs_input(tab, tb::Input::Timer),
                    Which::Sock => self.sock_input(tab, sm::Input::Timer),
                }
            }
            Ev::LockDeadline { tab, id } => {
                if self.locks.abort(tab, id) {
                    self.tabs_input(tab, tb::Input::LockTimedOut { id });
                }
            }
            Ev::LockGrant { tab, id } => {
                if self.locks.holder == Some((tab, id)) {
                    self.log(|| format!("tab {tab} holds the lock ({id})"));
                    self.tabs_input(tab, tb::Input::LockGranted { id });
                }
            }
            Ev::SpentAnswer { tab, id, spent } => self.tabs_input(tab, tb::Input::SpentAnswer { id, spent }),
            Ev::Msg { tab, msg } => {
                let msg = match msg {
                    Peer::Session(p) => Peer::Session(self.as_received(p.session)),
                    m => m,
                };
                self.tabs_input(tab, tb::Input::Peer(msg))
            }
            Ev::HttpArrive {
                tab,
                req,
                present,
                sent_at,
            } => {
                let d = self.rng.range(10, 150);
                let faulty = self.faulty();
                if faulty && self.rng.chance(self.p.p_5xx) {
                    let r = Refusal {
                        status: 503,
                        error: "unavailable",
                    };
                    self.at(
                        self.now + d,
                        Ev::HttpAnswer {
                            tab,
                            req,
                            result: Err(Some(r)),
                            sent_at,
                        },
                    );
                } else if faulty && self.rng.chance(self.p.p_429) {
                    let r = Refusal {
                        status: 429,
                        error: "over_request_rate_limit",
                    };
                    self.at(
                        self.now + d,
                        Ev::HttpAnswer {
                            tab,
                            req,
                            result: Err(Some(r)),
                            sent_at,
                        },
                    );
                } else {
                    let Some(present) = present else {
                        unreachable!("every tab has a refresh token to present")
                    };
                    let slow = if faulty && self.rng.chance(self.p.p_slow) {
                        self.rng.range(500, 8_000)
                    } else {
                        0
                    };
                    let hang = faulty && self.rng.chance(self.p.p_hang);
                    self.at(
                        self.now + slow,
                        Ev::HttpProcess {
                            tab,
                            req,
                            present,
                            sent_at,
                            hang,
                        },
                    );
                }
            }
            Ev::HttpProcess {
                tab,
                req,
                present,
                sent_at,
                hang,
            } => {
                let server_now = self.server_now();
                let orphan = self.orphaned.contains(&present);
                if orphan && self.gotrue.is_used(&present) {
                    self.report.orphan_reuses += 1;
                }
                if self.gotrue.reuse_interval_ms == 0 && self.gotrue.is_used(&present) && !orphan {
                    return Err(self.fail(format!(
                        "a refresh token was presented twice (tab {tab}, request {req}): GoTrue sees a reuse"
                    )));
                }
                let result = self.gotrue.refresh(&present, server_now).map_err(Some);
                if orphan && result.is_err() {
                    self.report.orphan_loss = true;
                }
                self.log(|| format!("GoTrue answers request {req} of tab {tab}: ok={}", result.is_ok()));
                let d = if hang {
                    self.rng.range(10_000, 20_000)
                } else {
                    self.rng.range(10, 150)
                };
                self.at(
                    self.now + d,
                    Ev::HttpAnswer {
                        tab,
                        req,
                        result,
                        sent_at,
                    },
                );
            }
            Ev::HttpAnswer {
                tab,
                req,
                result,
                sent_at,
            } => {
                if self.tab(tab).http.remove(&req).is_none() {
                    return Ok(());
                }
                let parse_at = if self.o.parse_at_send { sent_at } else { self.now };
                let result = match result {
                    Ok(issued) => {
                        let raw = RawSession {
                            access_token: Raw::Str(issued.access),
                            refresh_token: Raw::Str(issued.refresh),
                            expires_at: Raw::Num(issued.expires_at as f64),
                            expires_in: Raw::Num(issued.expires_in as f64),
                            user_id: Raw::Str("user-1".into()),
                            ..Default::default()
                        };
                        Session::from_raw(&raw, parse_at, Origin::Issued).map_err(|_| Failure::BadResponse)
                    }
                    Err(None) => Err(Failure::Network),
                    Err(Some(r)) => Err(Failure::Http {
                        status: r.status,
                        errors: vec![r.error.to_owned()],
                    }),
                };
                self.tabs_input(tab, tb::Input::Fetched { id: req, result });
            }
            Ev::WsOpened { tab, conn } => {
                // The upgrade reads the URL token: it must not have expired by the server's clock.
                if let Some((token, server_now)) = self.conns.get(&conn).and_then(|c| c.url_token.clone()) {
                    match self.gotrue.access_exp.get(&token) {
                        Some(exp) if server_now < *exp => {}
                        exp => {
                            return Err(self.fail(format!(
                                "tab {tab} connected with a URL token that is expired at the upgrade \
                                 (expired {} ms ago by the server's clock)",
                                exp.map_or(-1, |e| server_now as i64 - *e as i64)
                            )))
                        }
                    }
                }
                if self.tab(tab).conn == Some(conn) && self.conns.get(&conn).is_some_and(|c| c.open) {
                    self.sock_input(tab, sm::Input::Opened);
                }
            }
            Ev::WsClosed { tab, conn, code } => {
                if self.tab(tab).conn == Some(conn) {
                    self.log(|| format!("tab {tab}: connection {conn} closed ({code})"));
                    self.tab(tab).conn = None;
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.open = false;
                    }
                    self.sock_input(tab, sm::Input::Closed(code));
                }
            }
            Ev::WsToServer { conn, token, n, id } => self.server_read(conn, token, n, id)?,
            Ev::WsToClient { tab, conn, frame } => {
                if self.tab(tab).conn == Some(conn) {
                    self.sock_input(tab, sm::Input::Received(frame));
                }
            }
            Ev::WsServerClose { conn } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.open = false;
                }
            }
            Ev::AppSend { tab } => {
                let now = self.now;
                let ok = self.usable(tab);
                let t = self.tab(tab);
                t.next_msg += 1;
                let n = t.next_msg;
                let mut out = vec![];
                if t.sock.send(now, n, None, ok, &mut out).is_ok() {
                    t.sent.push((n, now));
                    self.report.messages += 1;
                } else {
                    t.next_msg -= 1;
                }
                self.perform_sock(tab, out);
                let d = self.rng.exp(self.p.msg_mean_ms);
                self.at(now + d, Ev::AppSend { tab });
            }
            Ev::AppToken { tab } => {
                let now = self.now;
                let mut out = vec![];
                let answer = self.tab(tab).auth.want_token(now, &mut out);
                self.log(|| format!("tab {tab} accessToken(): {answer:?} {out:?}"));
                match answer {
                    Answer::Ready => self.check_token_in_use(tab, "accessToken() answered at once"),
                    Answer::Wait => {
                        let excused = self.tab(tab).frozen_until > now;
                        self.tab(tab).waiters.push(Waiter {
                            deadline: now + Policy::default().attempt_timeout_ms,
                            excused,
                        })
                    }
                    Answer::Fail(_) => {}
                }
                self.perform_auth(tab, out);
                let d = self.rng.exp(self.p.token_call_mean_ms);
                self.at(now + d, Ev::AppToken { tab });
            }
            Ev::OpenTab => {
                if self.open_tabs().len() < 4 && self.tabs.len() < 8 {
                    self.open_tab(None);
                }
            }
            Ev::CloseTab => {
                let open = self.open_tabs();
                // Strict GoTrue: a tab closed while its refresh is on the wire takes the only copy
                // of the new session with it (the reuse interval is what covers that); close idle tabs.
                let candidates: Vec<usize> = open
                    .iter()
                    .copied()
                    .filter(|i| self.p.reuse_interval_ms > 0 || self.tabs[*i].as_ref().unwrap().http.is_empty())
                    .collect();
                // Without storage the session lives only in the tabs: keep one that holds it.
                let holders = |s: &Self, but: usize| {
                    open.iter()
                        .filter(|j| **j != but && s.tabs[**j].as_ref().unwrap().auth.session().is_some())
                        .count()
                };
                let candidates: Vec<usize> = candidates
                    .into_iter()
                    .filter(|i| self.p.storage || holders(self, *i) > 0)
                    .collect();
                if open.len() > 1 && !candidates.is_empty() {
                    let i = self.rng.pick(&candidates);
                    self.close_tab(i);
                } else {
                    self.at(self.now + 1_000, Ev::CloseTab);
                }
            }
            Ev::FreezeStart { tab, dur } => {
                // Faults stop at the calm, even one whose start a sleep pushed back.
                let dur = dur.min(self.calm_at.saturating_sub(self.now));
                if self.is_open(tab) && dur > 0 {
                    self.log(|| format!("tab {tab} frozen for {dur} ms"));
                    let until = self.now + dur;
                    let t = self.tab(tab);
                    t.frozen_until = t.frozen_until.max(until);
                    for w in &mut t.waiters {
                        w.excused = true;
                    }
                    self.at(self.now + dur, Ev::FreezeEnd { tab });
                }
            }
            Ev::FreezeEnd { tab } => {
                if self.now >= self.tab(tab).frozen_until {
                    self.auth_input(tab, am::Input::Wake(Wake::Visible));
                }
            }
            Ev::SleepStart { dur } => {
                self.log(|| format!("the laptop sleeps for {dur} ms"));
                self.asleep_until = self.asleep_until.max(self.now + dur);
                for i in self.open_tabs() {
                    for w in &mut self.tab(i).waiters {
                        w.excused = true;
                    }
                }
                let conns: Vec<u64> = self.conns.iter().filter(|c| c.1.open).map(|c| *c.0).collect();
                for c in conns {
                    self.server_close(c, 1006);
                }
                self.at(self.now + dur, Ev::SleepEnd);
            }
            Ev::SleepEnd => {
                if self.now >= self.asleep_until {
                    for i in self.open_tabs() {
                        self.auth_input(i, am::Input::Wake(Wake::Visible));
                        if self.is_open(i) {
                            self.auth_input(i, am::Input::Wake(Wake::Online));
                            self.sock_input(i, sm::Input::Online);
                        }
                    }
                }
            }
            Ev::OfflineStart { dur } => {
                self.log(|| format!("offline for {dur} ms"));
                self.offline_until = self.offline_until.max(self.now + dur);
                let conns: Vec<u64> = self.conns.iter().filter(|c| c.1.open).map(|c| *c.0).collect();
                for c in conns {
                    self.server_close(c, 1006);
                }
                self.at(self.now + dur, Ev::OfflineEnd);
            }
            Ev::OfflineEnd => {
                if !self.offline() {
                    for i in self.open_tabs() {
                        self.auth_input(i, am::Input::Wake(Wake::Online));
                        if self.is_open(i) {
                            self.sock_input(i, sm::Input::Online);
                        }
                    }
                }
            }
            Ev::DropConn { tab } => {
                if self.faulty() {
                    if let Some(conn) = self.tab(tab).conn {
                        self.log(|| format!("the connection of tab {tab} drops"));
                        self.server_close(conn, 1006);
                    }
                    let d = self.rng.exp(self.p.drop_mean_ms);
                    self.at(self.now + d, Ev::DropConn { tab });
                }
            }
        }
        Ok(())
    }

    fn close_tab(&mut self, i: usize) {
        self.log(|| format!("tab {i} closes"));
        // pagehide: the protocol withdraws its claims; the socket closes.
        self.tabs_input(i, tb::Input::Closing);
        self.sock_input(i, sm::Input::Close);
        let presented: Vec<String> = self.tab(i).http.values().filter_map(|(_, p)| p.clone()).collect();
        self.orphaned.extend(presented);
        self.tabs[i] = None;
        if self.locks.holder.is_some_and(|h| h.0 == i) {
            self.report.closed_holding_lock += 1;
        }
        if let Some((t, id)) = self.locks.closed(i, self.now) {
            self.at(self.now, Ev::LockGrant { tab: t, id });
        }
    }

    /// The lock is released on every path: no tab keeps it longer than its slowest answer (the
    /// hold cap), unless the laptop slept meanwhile.
    fn check_lock(&mut self) -> Result<(), String> {
        if let Some((holder, _)) = self.locks.holder {
            let held = self.now - self.locks.since;
            if self.locks.since >= self.asleep_until {
                self.report.longest_lock_hold_ms = self.report.longest_lock_hold_ms.max(held);
                if held > LOCK_HOLD_MAX_MS {
                    return Err(self.fail(format!("tab {holder} holds the refresh lock for {held} ms")));
                }
            }
        }
        Ok(())
    }

    fn check_waiters(&mut self) -> Result<(), String> {
        let now = self.now;
        for i in 0..self.tabs.len() {
            let Some(t) = self.tabs[i].as_ref() else { continue };
            // A hidden tab's deadline timer fires as late as any of its timers.
            if let Some(w) = t
                .waiters
                .iter()
                .find(|w| !w.excused && now > self.fires_at(i, w.deadline))
            {
                return Err(self.fail(format!(
                    "tab {i}: an accessToken() waiter is still pending {} ms past its deadline",
                    now - w.deadline
                )));
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<Report, String> {
        self.report.rotations = self.gotrue.rotations.len();
        self.report.reuses_allowed = self.gotrue.reuses.len();
        if self.report.orphan_loss {
            // Everything after the loss of the session is moot.
            return Ok(self.report.clone());
        }
        if self.report.signed_out {
            return Err(self.fail("the session was lost (SIGNED_OUT) although nobody signed out".into()));
        }
        if self.report.max_all_requests_per_min > MAX_ALL_REQUESTS_PER_MIN {
            return Err(self.fail(format!(
                "refresh storm: {} requests from one tab within 60 s",
                self.report.max_all_requests_per_min
            )));
        }
        if self.report.max_requests_per_min > MAX_REQUESTS_PER_MIN {
            return Err(self.fail(format!(
                "refresh storm: {} requests from one tab within 60 s, presenting one refresh token",
                self.report.max_requests_per_min
            )));
        }
        // Liveness: every message sent by a tab still open is delivered within the bound of
        // max(sent, calm).
        let mut max_lat = 0;
        for i in 0..self.tabs.len() {
            let Some(t) = self.tabs[i].as_ref() else { continue };
            let delivered: HashMap<u64, u64> = self
                .delivered
                .get(&i)
                .map_or_else(HashMap::new, |d| d.iter().copied().collect());
            for &(n, sent) in &t.sent {
                let from = sent.max(self.calm_at);
                let must = from + BOUND_MS;
                if !self.p.ack && t.lost_to_faults.contains(&n) {
                    // Without acks, a frame written on a connection that a fault (before the calm)
                    // had closed is lost by design, also when it was written after the calm, before
                    // the close reached the tab.
                    continue;
                }
                match delivered.get(&n) {
                    Some(at) => {
                        if *at > must {
                            return Err(self.fail(format!(
                                "tab {i}'s message {n} delivered {} ms after max(sent, calm), bound {BOUND_MS}",
                                at - from
                            )));
                        }
                        if sent >= self.calm_at || *at >= self.calm_at {
                            max_lat = max_lat.max(at - from);
                        }
                    }
                    None if must <= self.end => {
                        return Err(self.fail(format!(
                            "tab {i}'s message {n} (sent at {:.1} s) is not delivered {} ms after max(sent, calm) \
                             (socket {:?}, queued {}, unacked {}, auth {:?}, usable {})",
                            (sent - T0) as f64 / 1000.0,
                            self.end - from,
                            t.sock.status(),
                            t.sock.queued(),
                            t.sock.unacked(),
                            t.auth.status(),
                            t.auth.usable(self.end)
                        )));
                    }
                    None => {}
                }
            }
        }
        self.report.max_calm_latency_ms = max_lat;
        // No storm in the calm: all tabs together refresh about once per token period.
        let from = self.server_now_at(self.calm_at + BOUND_MS);
        let calm = self.gotrue.rotations.iter().filter(|t| **t >= from).count();
        self.report.calm_rotations = calm;
        let lifetime = self.p.lifetime_s * 1000 - 1000;
        let period = lifetime - Policy::default().lead_ms(lifetime);
        let window = self.end.saturating_sub(self.calm_at + BOUND_MS);
        let allowed = (window / period) as usize + 2;
        if calm > allowed {
            return Err(self.fail(format!(
                "{calm} refreshes in the last {} s of calm, for a {} s token refreshed every {} s: at most {allowed}",
                window / 1000,
                self.p.lifetime_s,
                period / 1000
            )));
        }
        Ok(self.report.clone())
    }

    /// A session another tab published or stored, as this tab reads it: the publishing tab's
    /// session as is (its expiry on the shared browser clock), or, with `publish_raw`, GoTrue's
    /// JSON parsed now as a handed-over session (`expires_at` by the server's clock, `expires_in`
    /// counted from now).
    fn as_received(&self, s: Session) -> Published<Session> {
        let s = match (self.o.publish_raw, self.gotrue.issued.get(s.access.expose())) {
            (true, Some(issued)) => {
                let raw = RawSession {
                    access_token: Raw::Str(issued.access.clone()),
                    refresh_token: Raw::Str(issued.refresh.clone()),
                    expires_at: Raw::Num(issued.expires_at as f64),
                    expires_in: Raw::Num(issued.expires_in as f64),
                    user_id: Raw::Str("user-1".into()),
                    ..Default::default()
                };
                Session::from_raw(&raw, self.now, Origin::HandedOver).expect("valid")
            }
            _ => s,
        };
        Published {
            summary: Summary::of(&s),
            session: s,
        }
    }

    fn server_now_at(&self, local: u64) -> u64 {
        (local as i64 + self.p.skew_ms) as u64
    }
}

/// Runs one seed.
pub fn run(seed: u64, o: &Opts) -> Result<Report, String> {
    World::new(seed, o.clone()).run()
}

/// Runs one seed with a trace; returns the report or the failure with the trace's tail.
pub fn replay(seed: u64, o: &Opts) -> Result<Report, String> {
    let mut o = o.clone();
    o.trace = true;
    let w = World::new(seed, o);
    let mut tail = String::new();
    let r = w.run_keeping_trace(&mut tail);
    r.map_err(|e| format!("{e}\n--- the last events ---\n{tail}"))
}

impl World {
    fn run_keeping_trace(mut self, tail: &mut String) -> Result<Report, String> {
        let r = self.run_inner().and_then(|()| self.finish());
        let start = self.trace.len().saturating_sub(
            std::env::var("SIM_TAIL")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(300),
        );
        for l in &self.trace[start..] {
            let _ = writeln!(tail, "{l}");
        }
        r
    }
}
