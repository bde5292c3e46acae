//! The simulated outside world: a seeded random source, GoTrue, the Web Locks manager and the chat
//! server's bookkeeping. Nothing here knows about the SDK's machines.

use std::collections::{HashMap, VecDeque};

/// SplitMix64: small, fast, and every seed gives a different world.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    pub fn u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            lo + self.u64() % (hi - lo + 1)
        }
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    /// Exponentially distributed with this mean (at least 1).
    pub fn exp(&mut self, mean: u64) -> u64 {
        let u = ((self.u64() >> 11) as f64 + 1.0) / ((1u64 << 53) as f64 + 1.0);
        ((-u.ln()) * mean as f64).max(1.0) as u64
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[(self.u64() % xs.len() as u64) as usize]
    }
}

/// What GoTrue hands out: the fields of its JSON answer.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access: String,
    pub refresh: String,
    /// Seconds, server clock.
    pub expires_at: u64,
    /// Seconds.
    pub expires_in: u64,
}

#[derive(Debug)]
struct Rt {
    family: u64,
    /// Server time it was rotated, and the token that replaced it.
    used: Option<(u64, String)>,
}

/// A GoTrue token endpoint with rotating refresh tokens and reuse detection.
pub struct GoTrue {
    /// Access token lifetime, seconds.
    pub lifetime_s: u64,
    /// GoTrue's `REFRESH_TOKEN_REUSE_INTERVAL` in ms (0: strict, every reuse is detected).
    pub reuse_interval_ms: u64,
    rts: HashMap<String, Rt>,
    /// Access token -> expiry in ms, server clock.
    pub access_exp: HashMap<String, u64>,
    /// Access token -> the answer that carried it (what a shell storing the raw JSON keeps).
    pub issued: HashMap<String, Issued>,
    revoked: Vec<u64>,
    next: u64,
    /// Successful rotations, with their server time.
    pub rotations: Vec<u64>,
    /// Reuses seen: (token, server time of the reuse, first use time).
    pub reuses: Vec<(String, u64, u64)>,
}

/// Why GoTrue refused.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: u16,
    pub error: &'static str,
}

impl GoTrue {
    pub fn new(lifetime_s: u64, reuse_interval_ms: u64) -> Self {
        GoTrue {
            lifetime_s,
            reuse_interval_ms,
            rts: HashMap::new(),
            access_exp: HashMap::new(),
            issued: HashMap::new(),
            revoked: Vec::new(),
            next: 0,
            rotations: Vec::new(),
            reuses: Vec::new(),
        }
    }

    fn issue(&mut self, family: u64, refresh: Option<String>, server_now: u64) -> Issued {
        self.next += 1;
        let access = format!("at{}.{}", family, self.next);
        let refresh = refresh.unwrap_or_else(|| format!("rt{}.{}", family, self.next));
        self.rts.entry(refresh.clone()).or_insert(Rt { family, used: None });
        // GoTrue: exp = floor(now) + expires_in, whole seconds.
        let expires_at = server_now / 1000 + self.lifetime_s;
        self.access_exp.insert(access.clone(), expires_at * 1000);
        let issued = Issued {
            access,
            refresh,
            expires_at,
            expires_in: self.lifetime_s,
        };
        self.issued.insert(issued.access.clone(), issued.clone());
        issued
    }

    /// A password sign-in: a new family.
    pub fn sign_in(&mut self, server_now: u64) -> Issued {
        self.next += 1;
        let family = self.next;
        self.issue(family, None, server_now)
    }

    /// `grant_type=refresh_token`.
    pub fn refresh(&mut self, rt: &str, server_now: u64) -> Result<Issued, Refusal> {
        let Some(state) = self.rts.get(rt) else {
            return Err(Refusal {
                status: 400,
                error: "refresh_token_not_found",
            });
        };
        let family = state.family;
        if self.revoked.contains(&family) {
            return Err(Refusal {
                status: 400,
                error: "session_not_found",
            });
        }
        if let Some((used_at, child)) = state.used.clone() {
            self.reuses.push((rt.to_owned(), server_now, used_at));
            if self.reuse_interval_ms > 0 && server_now.saturating_sub(used_at) <= self.reuse_interval_ms {
                // Within the reuse interval: the session that replaced it (its refresh token again).
                return Ok(self.issue(family, Some(child), server_now));
            }
            self.revoked.push(family);
            return Err(Refusal {
                status: 400,
                error: "refresh_token_already_used",
            });
        }
        let issued = self.issue(family, None, server_now);
        self.rts.get_mut(rt).unwrap().used = Some((server_now, issued.refresh.clone()));
        self.rotations.push(server_now);
        Ok(issued)
    }

    /// Whether `rt` was rotated already.
    pub fn is_used(&self, rt: &str) -> bool {
        self.rts.get(rt).is_some_and(|r| r.used.is_some())
    }
}

/// The Web Locks manager for one lock name: FIFO, released when the holder's page closes.
#[derive(Default)]
pub struct LockManager {
    pub holder: Option<(usize, u64)>,
    /// When the current holder got it.
    pub since: u64,
    queue: VecDeque<(usize, u64)>,
}

impl LockManager {
    /// A request; `true` when granted at once.
    pub fn request(&mut self, tab: usize, id: u64, now: u64) -> bool {
        if self.holder.is_none() && self.queue.is_empty() {
            self.holder = Some((tab, id));
            self.since = now;
            true
        } else {
            self.queue.push_back((tab, id));
            false
        }
    }
    /// The request's signal aborted it: `true` when it was still waiting (so it never will be granted).
    pub fn abort(&mut self, tab: usize, id: u64) -> bool {
        let before = self.queue.len();
        self.queue.retain(|r| *r != (tab, id));
        self.queue.len() != before
    }
    /// Releases (or withdraws) it; returns the request granted next, if any.
    pub fn release(&mut self, tab: usize, id: u64, now: u64) -> Option<(usize, u64)> {
        if self.holder == Some((tab, id)) {
            self.since = now;
            self.holder = self.queue.pop_front();
            return self.holder;
        }
        self.abort(tab, id);
        None
    }
    /// The page closed: everything it held or asked for goes; returns the next grant, if any.
    pub fn closed(&mut self, tab: usize, now: u64) -> Option<(usize, u64)> {
        self.queue.retain(|r| r.0 != tab);
        if self.holder.is_some_and(|h| h.0 == tab) {
            self.since = now;
            self.holder = self.queue.pop_front();
            return self.holder;
        }
        None
    }
}

/// One chat connection as the server sees it.
pub struct Conn {
    pub tab: usize,
    pub open: bool,
    /// Per-direction FIFO: the time the last frame arrives.
    pub last_up: u64,
    pub last_down: u64,
    /// The token the connect URL carried (`connectToken`) and the server time the upgrade request
    /// reads it (sent at connect, one transit later; a sleep after it does not move it).
    pub url_token: Option<(String, u64)>,
    /// When a fault (a drop, going offline, a sleep, a rejected token) closed it from the server's
    /// side: frames that reach the server after that are lost.
    pub fault_closed_at: Option<u64>,
}
