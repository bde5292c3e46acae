//! The simulated world, in `cargo test`: thousands of seeded hours of tabs, GoTrue, locks, the
//! BroadcastChannel and a chat server under faults, checking the SDK's invariants after every step.
//!
//! - `cargo test --test sim`: the regression seeds and 10,000 seeds of a simulated hour each.
//! - `SIM_SEED=1234 cargo test --test sim replay -- --nocapture`: one seed, with its trace.
//! - `SIM_SEEDS=1000000 cargo test --release --test sim -- --ignored` (or `scripts/sim.sh`): the long run.
#![cfg(not(target_arch = "wasm32"))]

mod servers;
mod world;

use world::{Opts, Report};

/// Seeds that found bugs, kept so they stay fixed.
const REGRESSIONS: &[(u64, &str)] = &[
    (
        28,
        "claims: a tab that opened during another tab's claim window never heard that claim and \
         presented the same refresh token (GoTrue saw a reuse); a live claim or a Spent is now \
         re-announced to a late claimer",
    ),
    (
        46,
        "claims, three tabs: the same at start-up (a tab constructed after the first claim was posted)",
    ),
    (
        201,
        "an accessToken() caller waited past its deadline: a peer's session, already unusable when it \
         arrived, superseded the attempt and the new attempt's deadline was taken as the caller's \
         (the AuthMachine now keeps the callers' own deadline)",
    ),
    (
        75,
        "claims, one hidden tab (timers throttled to whole seconds, as Firefox showed in the three-tab \
         journey): every claim's timer fired past the 100 ms grace, so the tab withdrew and claimed \
         again forever and its token expired; a throttled timer up to 2.5 s late now acts on the claim",
    ),
    (
        2534,
        "claims, two tabs, one visible: the hidden tab's endless re-claims kept the visible one waiting \
         on them until the token expired",
    ),
    (
        270496,
        "claims, 20 s tokens, overlapping offline spells: two refreshes that succeeded in a minute \
         each rightly restarted the backoff, three runs of 7 requests made 21; the sim's storm bound \
         counted one run per minute (it now counts the requests presenting one refresh token)",
    ),
    (
        601036,
        "no acks: a frame written 28 ms after the calm on a connection the server had closed 44 ms \
         before it (an injected 4001) was lost by design, but the sim excused only frames sent \
         before the calm (it now excuses exactly the frames that reached a connection a fault closed)",
    ),
    (
        0,
        "a timer that fired 1 ms early by the tab's clock (Firefox rounds Date.now() with jitter; \
         the Firefox journey caught it: the chat never reconnected after a drop): the SocketMachine \
         found the reconnect not yet due and, believing its timer still armed, never armed it again; \
         a Timer input now always spends the wake",
    ),
    (
        80,
        "the same with the connect deadline: a connection that never opened was never abandoned",
    ),
    (
        161,
        "the same in the AuthMachine: an early wake left no timer, and an accessToken() caller waited \
         past its deadline",
    ),
    (
        54,
        "the same in the TabsMachine, claims: the end of a claim window woke early, the claim never \
         concluded and the tab's token expired",
    ),
];

fn check(seed: u64, o: &Opts) -> Report {
    match world::run(seed, o) {
        Ok(r) => r,
        Err(e) => panic!("{e}\n\nreplay: SIM_SEED={seed} cargo test --test sim replay -- --nocapture"),
    }
}

fn range(from: u64, n: u64) {
    let o = Opts::default();
    for seed in from..from + n {
        check(seed, &o);
    }
}

#[test]
fn regressions() {
    for (seed, what) in REGRESSIONS {
        let o = Opts::default();
        if let Err(e) = world::run(*seed, &o) {
            panic!("regression `{what}` is back: {e}");
        }
    }
}

/// Found by the sim in the shell (`src/web/fetch.rs` parses a refresh answer with `now_ms()` at
/// receipt): counting `expires_in` from when the answer is read overestimates the expiry by the
/// answer's latency (a hung answer, a tab that was asleep), and frames go out with a token the
/// server already considers expired. Counted from when the request was sent, it never does.
#[test]
fn expires_in_is_counted_from_the_request_not_the_answer() {
    let receipt = Opts {
        parse_at_send: false,
        ..Opts::default()
    };
    let e = world::run(17, &receipt).expect_err("receipt-time parsing writes expired tokens");
    assert!(e.contains("expired when the server reads it"), "{e}");
    check(17, &Opts::default());
}

/// Found by the sim in the shell (`src/js/auth.rs` `share`/`adopt`): publishing and storing
/// GoTrue's JSON as received (`inner.raw`) and adopting it as a handed-over session reads the
/// server's `expires_at` on the browser's clock and counts `expires_in` from adoption. With the
/// server's clock ahead, a tab writes with a token the server has expired (seed 18, by 36 s); with
/// it behind, adopted sessions look expired and every tab refreshes again (seed 5). Publishing the
/// session with its expiry on the (shared) browser clock is what the sim does by default.
#[test]
fn published_sessions_carry_the_browser_clock_expiry() {
    let raw = Opts {
        publish_raw: true,
        ..Opts::default()
    };
    let e = world::run(18, &raw).expect_err("raw publishing writes expired tokens");
    assert!(e.contains("expired when the server reads it"), "{e}");
    let e = world::run(5, &raw).expect_err("raw publishing refreshes too often");
    assert!(e.contains("refreshes in the last"), "{e}");
    check(18, &Opts::default());
    check(5, &Opts::default());
}

/// Found by the sim in `core::tabs`: with "adopt if the access token differs and it expires no
/// earlier", two tabs holding different sessions of the same expiry (whole-second `expires_at`)
/// adopted each other's forever, a message storm (seeds 17 and 54 with raw publishing). The order
/// is strict now; these seeds still fail raw publishing for its clock-skew reasons, never by a storm.
#[test]
fn same_expiry_sessions_converge_instead_of_storming() {
    let raw = Opts {
        publish_raw: true,
        ..Opts::default()
    };
    for seed in [17, 54] {
        if let Err(e) = world::run(seed, &raw) {
            assert!(!e.contains("storm"), "{e}");
        }
    }
}

// 10,000 seeds in four tests, so the harness spreads them over the cores.
#[test]
fn seeds_0() {
    range(0, 2_500);
}
#[test]
fn seeds_1() {
    range(2_500, 2_500);
}
#[test]
fn seeds_2() {
    range(5_000, 2_500);
}
#[test]
fn seeds_3() {
    range(7_500, 2_500);
}

/// The shell variants the sim can play, for hunting: `SIM_PARSE_AT_RECEIPT`, `SIM_LENIENT_WAITERS`,
/// `SIM_PUBLISH_RAW` (see [`Opts`]).
fn opts_from_env() -> Opts {
    Opts {
        parse_at_send: std::env::var("SIM_PARSE_AT_RECEIPT").is_err(),
        strict_waiters: std::env::var("SIM_LENIENT_WAITERS").is_err(),
        publish_raw: std::env::var("SIM_PUBLISH_RAW").is_ok(),
        ..Opts::default()
    }
}

/// `SIM_SEED=<n>`: one seed, traced.
#[test]
fn replay() {
    let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse::<u64>().ok()) else {
        return;
    };
    let o = opts_from_env();
    println!("{:?}", world::World::new(seed, o.clone()).p);
    match world::replay(seed, &o) {
        Ok(r) => println!("seed {seed}: ok {r:?}"),
        Err(e) => panic!("{e}"),
    }
}

/// `SIM_SEEDS=<n> [SIM_FROM=<first>] [SIM_THREADS=<k>]`: the long run, on every core
/// (`scripts/sim.sh`). Stops at the first failing seed and prints how to replay it.
#[test]
#[ignore]
fn long_run() {
    let env = |k: &str| std::env::var(k).ok().and_then(|s| s.parse::<u64>().ok());
    let n = env("SIM_SEEDS").unwrap_or(100_000);
    let from = env("SIM_FROM").unwrap_or(1_000_000);
    let threads = env("SIM_THREADS")
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get() as u64))
        .max(1);
    let next = std::sync::atomic::AtomicU64::new(from);
    let failed = std::sync::Mutex::new(None::<(u64, String)>);
    let t = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let o = Opts::default();
                loop {
                    let seed = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if seed >= from + n || failed.lock().unwrap().is_some() {
                        return;
                    }
                    if let Err(e) = world::run(seed, &o) {
                        let mut f = failed.lock().unwrap();
                        if f.as_ref().is_none_or(|(s, _)| seed < *s) {
                            *f = Some((seed, e));
                        }
                    }
                }
            });
        }
    });
    if let Some((seed, e)) = failed.into_inner().unwrap() {
        panic!("{e}\n\nreplay: SIM_SEED={seed} cargo test --test sim replay -- --nocapture");
    }
    println!(
        "{n} seeds ({} simulated hours) from {from} passed in {:.1} s on {threads} threads",
        n * Opts::default().duration_ms / 3_600_000,
        t.elapsed().as_secs_f64()
    );
}

/// `SIM_SURVEY=<n> [SIM_FROM=<first>]`: runs seeds without stopping at the first failure and prints
/// each failing seed's first line (for hunting, not for CI).
#[test]
#[ignore]
fn survey() {
    let n: u64 = std::env::var("SIM_SURVEY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000);
    let from: u64 = std::env::var("SIM_FROM").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let o = opts_from_env();
    let (mut failed, mut events, mut rot) = (0, 0, 0);
    let mut sum = Report::default();
    let t = std::time::Instant::now();
    for seed in from..from + n {
        match world::run(seed, &o) {
            Ok(r) => {
                events += r.events;
                rot += r.rotations;
                sum.requests += r.requests;
                sum.messages += r.messages;
                sum.delivered += r.delivered;
                sum.lock_timeouts += r.lock_timeouts;
                sum.peer_waits += r.peer_waits;
                sum.late_successes += r.late_successes;
                sum.waiter_extensions += r.waiter_extensions;
                sum.orphan_reuses += r.orphan_reuses;
                sum.closed_holding_lock += r.closed_holding_lock;
                sum.orphan_loss |= r.orphan_loss;
                sum.signed_out |= r.signed_out;
                sum.calm_rotations += usize::from(r.orphan_loss);
                sum.max_calm_latency_ms = sum.max_calm_latency_ms.max(r.max_calm_latency_ms);
                sum.max_requests_per_min = sum.max_requests_per_min.max(r.max_requests_per_min);
                sum.longest_lock_hold_ms = sum.longest_lock_hold_ms.max(r.longest_lock_hold_ms);
            }
            Err(e) => {
                failed += 1;
                println!("FAIL {}", e.lines().next().unwrap_or(""));
            }
        }
    }
    println!("totals (calm_rotations = runs that lost the session with a closed tab): {sum:?}");
    println!(
        "{n} seeds, {failed} failed, {events} events, {rot} rotations, {:.1} s",
        t.elapsed().as_secs_f64()
    );
}
