//! Timing rules: when to refresh, how long a token must still live to be sent, how to back off.

/// Tunables for the session. All durations in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Preferred refresh lead before expiry (`marginSeconds`, default 60 s).
    pub margin_ms: u64,
    /// First retry delay after a failed refresh.
    pub backoff_base_ms: u64,
    /// Longest retry delay.
    pub backoff_max_ms: u64,
    /// How long one refresh attempt may take before it is abandoned (and retried with backoff).
    pub attempt_timeout_ms: u64,
}

impl Default for Policy {
    fn default() -> Self {
        // auth-js retries from 200 ms doubling; oidc-client-ts and auth0 act 60 s before expiry.
        Policy {
            margin_ms: 60_000,
            backoff_base_ms: 200,
            backoff_max_ms: 30_000,
            // Clerk aborts its refresh lock after 4999 ms; a GoTrue refresh answers in well under
            // a second. 10 s leaves room for a slow mobile network without ever hanging a caller.
            attempt_timeout_ms: 10_000,
        }
    }
}

impl Policy {
    /// How long before expiry to refresh: the margin, but at least 10% and at most 50% of the
    /// token's lifetime, so 1-hour, 5-minute and 20-second tokens all behave.
    pub fn lead_ms(&self, lifetime_ms: u64) -> u64 {
        self.margin_ms.clamp(lifetime_ms / 10, lifetime_ms / 2)
    }

    /// How long a token must still live when it is handed out or written into a frame, to cover
    /// latency and clock skew: 5 s for long tokens, 10% of the lifetime for short ones.
    pub fn transit_ms(&self, lifetime_ms: u64) -> u64 {
        (lifetime_ms / 10).min(5_000)
    }

    /// The delay before refresh retry number `attempt` (1 for the first retry).
    pub fn backoff_ms(&self, attempt: u32, rand: u32) -> u64 {
        Backoff {
            base_ms: self.backoff_base_ms,
            factor_pct: 200,
            max_ms: self.backoff_max_ms,
        }
        .delay_ms(attempt, rand)
    }
}

/// How long a new tab whose source signs in from nothing (password, broker, callback) waits for
/// the other tabs to answer its hello before it signs in itself (0 with `crossTab` off).
pub fn start_delay_ms(cross_tab: bool) -> u64 {
    if cross_tab {
        300
    } else {
        0
    }
}

/// Exponential backoff with "equal jitter" (half of each delay fixed, half random), used for
/// refresh retries and socket reconnects alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay's ceiling.
    pub base_ms: u64,
    /// Growth per attempt, in percent (200 doubles, 130 is reconnecting-websocket's 1.3).
    pub factor_pct: u64,
    /// The largest delay.
    pub max_ms: u64,
}

impl Backoff {
    /// The delay before attempt number `attempt` (1 for the first retry), from `rand` (32 random bits).
    pub fn delay_ms(&self, attempt: u32, rand: u32) -> u64 {
        let mut full = self.base_ms;
        for _ in 1..attempt.min(64) {
            // `.max(full)`: a saturated product divided by 100 must not shrink the delay.
            full = (full.saturating_mul(self.factor_pct.max(100)) / 100)
                .max(full)
                .min(self.max_ms);
            if full >= self.max_ms {
                break;
            }
        }
        let full = full.min(self.max_ms);
        let half = full / 2;
        // Saturating: a product beyond u64 only occurs for spans over 2^32 ms, where it still stays
        // within [half, full].
        half + u64::from(rand).saturating_mul(full - half) / u64::from(u32::MAX)
    }
}

/// A machine's one timer as the machine knows it: the time it last asked the shell to wake it at.
/// The shell hears only changes, so a message does not cost a timer reset. A timer that fired is
/// spent whenever it fired: one that fires a little before its time by the machine's clock
/// (Firefox rounds `Date.now()` with jitter; a wall clock can step back) finds nothing due, and the
/// next `set` arms it again instead of taking it for still armed. Every machine keeps its timer
/// here, so none can forget either half.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timer(Option<u64>);

impl Timer {
    /// The time the shell's timer is armed for, if it is.
    pub fn at(self) -> Option<u64> {
        self.0
    }
    /// The timer fired (on time or not): it is no longer armed.
    pub fn fired(&mut self) {
        self.0 = None;
    }
    /// Wants the timer at `next` (`None`: no timer); pushes what the shell must do, if anything:
    /// `act(Some(at))` to arm it for `at`, `act(None)` to cancel it.
    pub fn set<A>(&mut self, next: Option<u64>, out: &mut Vec<A>, act: impl FnOnce(Option<u64>) -> A) {
        if self.0 != next {
            self.0 = next;
            out.push(act(next));
        }
    }
}

/// A small deterministic generator (xorshift64*), seeded by the shell: the core stays pure and
/// tests replay exactly.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeds the generator (0 is replaced by a fixed odd constant).
    pub fn new(seed: u64) -> Self {
        Rng(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }
    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timer_tells_the_shell_only_changes_and_is_armed_again_after_it_fired() {
        let mut w = Timer::default();
        let mut out: Vec<Option<u64>> = Vec::new();
        w.set(Some(100), &mut out, |a| a);
        w.set(Some(100), &mut out, |a| a);
        assert_eq!(
            out,
            vec![Some(100)],
            "the same time twice: the shell's timer is left alone"
        );
        w.fired();
        assert_eq!(w.at(), None);
        w.set(Some(100), &mut out, |a| a);
        assert_eq!(
            out,
            vec![Some(100), Some(100)],
            "fired early, still wanted: armed again"
        );
        w.set(None, &mut out, |a| a);
        w.set(None, &mut out, |a| a);
        assert_eq!(out, vec![Some(100), Some(100), None], "cancelled once");
        w.set(Some(5), &mut out, |a| a);
        w.fired();
        w.set(None, &mut out, |a| a);
        assert_eq!(out.len(), 4, "a spent timer needs no cancelling");
    }

    #[test]
    fn lead_is_the_margin_within_ten_to_fifty_percent_of_the_lifetime() {
        let p = Policy::default();
        assert_eq!(p.lead_ms(3_600_000), 360_000, "1 hour: 60 s is below 10%, so 6 minutes");
        assert_eq!(p.lead_ms(300_000), 60_000, "5 minutes: the 60 s margin (20%)");
        assert_eq!(p.lead_ms(600_000), 60_000, "10 minutes: the 60 s margin (10%)");
        assert_eq!(p.lead_ms(100_000), 50_000, "100 s: capped at 50%");
        assert_eq!(p.lead_ms(20_000), 10_000, "20 s: capped at 50%");
        assert_eq!(p.lead_ms(36_000_000), 3_600_000, "10 hours: at least 10%");
        assert_eq!(p.lead_ms(0), 0);
        let small = Policy { margin_ms: 1_000, ..p };
        assert_eq!(small.lead_ms(3_600_000), 360_000, "a tiny margin is raised to 10%");
    }

    #[test]
    fn transit_margin_scales_down_for_short_tokens() {
        let p = Policy::default();
        assert_eq!(p.transit_ms(3_600_000), 5_000);
        assert_eq!(p.transit_ms(20_000), 2_000);
        assert_eq!(p.transit_ms(5_000), 500);
        assert!(
            p.transit_ms(5_000) < p.lead_ms(5_000),
            "a short token is not refreshed on every use"
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let p = Policy::default();
        assert_eq!(p.backoff_ms(1, 0), 100);
        assert_eq!(p.backoff_ms(1, u32::MAX), 200);
        assert_eq!(p.backoff_ms(2, u32::MAX), 400);
        assert_eq!(p.backoff_ms(4, 0), 800);
        assert_eq!(p.backoff_ms(20, u32::MAX), 30_000);
        assert_eq!(p.backoff_ms(u32::MAX, u32::MAX), 30_000, "no overflow");
        let mut rng = Rng::new(7);
        let samples: Vec<u64> = (0..200).map(|_| p.backoff_ms(3, rng.next_u32())).collect();
        assert!(samples.iter().all(|d| (400..=800).contains(d)));
        let distinct: std::collections::BTreeSet<_> = samples.iter().collect();
        assert!(distinct.len() > 50, "jitter spreads the retries");
    }

    #[test]
    fn reconnect_backoff_grows_by_its_factor_to_its_cap() {
        let b = Backoff {
            base_ms: 1_000,
            factor_pct: 130,
            max_ms: 10_000,
        };
        let ceilings: Vec<u64> = (1..=12).map(|a| b.delay_ms(a, u32::MAX)).collect();
        assert_eq!(&ceilings[..4], &[1_000, 1_300, 1_690, 2_197]);
        assert_eq!(ceilings[11], 10_000);
        assert!(ceilings.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(b.delay_ms(1, 0), 500);
        assert_eq!(b.delay_ms(u32::MAX, u32::MAX), 10_000);
    }
}
