//! The token store behind the GoTrue routes: sessions, rotating refresh tokens and the reuse rule,
//! per-user fault switches and counters. Depends only on `jwt` and `util`; every route module that
//! needs tokens (auth, chat, sources) reads them from here.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::jwt;
use crate::util::{now_s, random_token, user_id, Rng};

/// GoTrue's `GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL` as hosted Supabase sets it (seconds).
pub const DEFAULT_REUSE_INTERVAL_S: u64 = 10;

/// Counters per user (and in total), read by tests through `/__test/stats`.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Counters {
    /// Password grants served.
    pub password_grants: u64,
    /// Refresh-token grant requests received (all outcomes).
    pub refresh_requests: u64,
    /// Refresh requests answered with a new (rotated) session.
    pub refresh_ok: u64,
    /// Refresh requests that presented an already-used refresh token (answered or refused).
    pub refresh_reused: u64,
    /// Reuses answered with the session that replaced the token (inside the reuse interval, or the
    /// active token's parent).
    pub reuse_answered: u64,
    /// Reuses refused with `refresh_token_already_used` (the session was revoked).
    pub reuse_refused: u64,
    /// Refresh requests with a token that was never issued or whose session is gone.
    pub refresh_invalid: u64,
    /// Refresh requests failed on purpose by a fault switch.
    pub refresh_faults: u64,
    /// Logouts.
    pub logouts: u64,
    /// Broker token reads (`GET /api/tokens/{scope}`).
    pub broker_gets: u64,
    /// Broker forced refreshes (`POST /api/tokens/refresh/{scope}`).
    pub broker_refreshes: u64,
    /// Plain logins (`POST /plain/login`).
    pub plain_logins: u64,
    /// Requests to `/api/echo`, and how many of them were answered 401.
    pub echo_requests: u64,
    /// `/api/echo` requests answered 401.
    pub echo_unauthorized: u64,
    /// Requests (of any route) whose URL carried a token: must stay 0.
    pub tokens_in_urls: u64,
    /// Upgrades of the agent route (`/agent/ws/chat`) whose URL carried a token: the app opted in
    /// (`connectToken`), so they are counted here, apart from `tokens_in_urls`.
    pub opt_in_url_tokens: u64,
}

/// Per-user settings tests can change.
#[derive(Debug, Default, Clone)]
pub struct UserCfg {
    /// Access-token lifetime, seconds.
    pub ttl: Option<u64>,
    /// Probability that a refresh fails with 500.
    pub fail_probability: f64,
    /// The next n refreshes fail with `fail_status`.
    pub fail_refreshes: u32,
    /// Status for `fail_refreshes` (default 503).
    pub fail_status: u16,
    /// Each refresh waits this long before it is decided.
    pub refresh_delay_ms: u64,
    /// Every refresh fails with 500 until this time (ms since the epoch): an outage.
    pub fail_until_ms: u64,
    /// Seeded source for `fail_probability`, so a soak can replay its faults.
    pub rng: Option<Rng>,
    /// This user's reuse interval (seconds), overriding the server's.
    pub reuse_interval_s: Option<u64>,
}

#[derive(Debug)]
struct RefreshToken {
    email: String,
    session_id: String,
    /// The token this one replaced.
    parent: Option<String>,
    /// When it was exchanged (ms since the epoch); `None` while it is the active one.
    used_at_ms: Option<u64>,
}

#[derive(Debug)]
struct SessionRec {
    /// The session's active (newest) refresh token.
    active: String,
    /// Signed out, or revoked after a reuse: its tokens are gone.
    revoked: bool,
}

struct Store {
    users: HashMap<String, UserCfg>,
    counters: HashMap<String, Counters>,
    total: Counters,
    refresh_tokens: HashMap<String, RefreshToken>,
    sessions: HashMap<String, SessionRec>,
    reuse_interval_s: u64,
}

/// What presenting a refresh token came to, decided under one lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// The active token: rotated; `refresh_token` is its successor.
    Rotated {
        /// The account.
        email: String,
        /// The session (refresh-token family).
        session_id: String,
        /// The new refresh token.
        refresh_token: String,
    },
    /// An already-used token GoTrue lets through: answered with the session's active refresh token
    /// (nothing rotates).
    Reused {
        /// The account.
        email: String,
        /// The session.
        session_id: String,
        /// The session's active refresh token.
        refresh_token: String,
    },
    /// Reused where GoTrue refuses it: the session is now revoked.
    Refused {
        /// The account.
        email: String,
        /// The session.
        session_id: String,
    },
    /// Never issued, or its session is gone.
    NotFound,
}

/// The server's token state.
pub struct Tokens {
    secret: [u8; 32],
    default_ttl: u64,
    password: String,
    anon_key: String,
    state: Mutex<Store>,
}

impl Tokens {
    /// Tokens living `default_ttl` seconds; `password` signs in any email; `anon_key` is the only
    /// `apikey` the auth routes accept; `reuse_interval_s` is the server-wide reuse interval.
    pub fn new(default_ttl: u64, password: String, anon_key: String, reuse_interval_s: u64) -> Self {
        let mut secret = [0u8; 32];
        getrandom::getrandom(&mut secret).expect("the OS random source is available");
        Tokens {
            secret,
            default_ttl,
            password,
            anon_key,
            state: Mutex::new(Store {
                users: HashMap::new(),
                counters: HashMap::new(),
                total: Counters::default(),
                refresh_tokens: HashMap::new(),
                sessions: HashMap::new(),
                reuse_interval_s,
            }),
        }
    }

    /// The password every account accepts.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The `apikey` the auth routes accept.
    pub fn anon_key(&self) -> &str {
        &self.anon_key
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        // A panic while holding the lock cannot leave the maps inconsistent in a way that matters
        // for a dev server; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts for a user (and in total).
    pub fn count(&self, email: &str, f: impl Fn(&mut Counters)) {
        let mut st = self.lock();
        f(&mut st.total);
        f(st.counters.entry(email.to_owned()).or_default());
    }

    /// A user's counters, or the totals.
    pub fn counters(&self, email: Option<&str>) -> Counters {
        let st = self.lock();
        match email {
            Some(e) => st.counters.get(e).copied().unwrap_or_default(),
            None => st.total,
        }
    }

    /// A user's settings (defaults when never set).
    pub fn user_cfg(&self, email: &str) -> UserCfg {
        self.lock().users.get(email).cloned().unwrap_or_default()
    }

    /// Changes a user's settings.
    pub fn update_user(&self, email: &str, f: impl FnOnce(&mut UserCfg)) {
        f(self.lock().users.entry(email.to_owned()).or_default());
    }

    /// The server-wide reuse interval, seconds (0: strict rotation).
    pub fn reuse_interval_s(&self) -> u64 {
        self.lock().reuse_interval_s
    }

    /// Sets the server-wide reuse interval.
    pub fn set_reuse_interval_s(&self, s: u64) {
        self.lock().reuse_interval_s = s;
    }

    /// A uniform number in [0, 1) from the user's seeded source, if it has one.
    pub fn seeded_roll(&self, email: &str) -> Option<f64> {
        self.lock()
            .users
            .get_mut(email)
            .and_then(|u| u.rng.as_mut())
            .map(Rng::next_f64)
    }

    /// The email and session a refresh token belongs to, if it was ever issued.
    pub fn owner(&self, refresh_token: &str) -> Option<(String, String)> {
        self.lock()
            .refresh_tokens
            .get(refresh_token)
            .map(|t| (t.email.clone(), t.session_id.clone()))
    }

    /// Starts a session for `email`: a new refresh-token family. Returns the session JSON.
    pub fn sign_in(&self, email: &str) -> (String, Value) {
        let session_id = random_token(9);
        let refresh = random_token(16);
        {
            let mut st = self.lock();
            st.refresh_tokens.insert(
                refresh.clone(),
                RefreshToken {
                    email: email.to_owned(),
                    session_id: session_id.clone(),
                    parent: None,
                    used_at_ms: None,
                },
            );
            st.sessions.insert(
                session_id.clone(),
                SessionRec {
                    active: refresh.clone(),
                    revoked: false,
                },
            );
        }
        let out = self.session_json(email, &session_id, &refresh);
        (session_id, out)
    }

    /// Presents `presented` at `now_ms`: rotation, an allowed reuse, a refused reuse (which revokes
    /// the session) or not found, decided and recorded under one lock, so two concurrent requests
    /// with the same token can never both rotate it.
    ///
    /// The reuse rule is GoTrue's (`internal/tokens/service.go`) with an interval above 0: an
    /// already-used token is answered with the session's active refresh token when it is the active
    /// token's parent (GoTrue's "fail-to-save" allowance) or was used less than the interval ago
    /// ("concurrent-refresh"); any other reuse revokes the session. An interval of 0 is strict
    /// rotation, stricter than any GoTrue setting: every reuse revokes.
    pub fn redeem(&self, presented: &str, now_ms: u64) -> Redeemed {
        let mut guard = self.lock();
        let st = &mut *guard;
        let Some(t) = st.refresh_tokens.get(presented) else {
            return Redeemed::NotFound;
        };
        let (email, session_id, used_at) = (t.email.clone(), t.session_id.clone(), t.used_at_ms);
        let Some(session) = st.sessions.get_mut(&session_id).filter(|s| !s.revoked) else {
            return Redeemed::NotFound;
        };
        match used_at {
            None => {
                let next = random_token(16);
                session.active = next.clone();
                if let Some(t) = st.refresh_tokens.get_mut(presented) {
                    t.used_at_ms = Some(now_ms);
                }
                st.refresh_tokens.insert(
                    next.clone(),
                    RefreshToken {
                        email: email.clone(),
                        session_id: session_id.clone(),
                        parent: Some(presented.to_owned()),
                        used_at_ms: None,
                    },
                );
                Redeemed::Rotated {
                    email,
                    session_id,
                    refresh_token: next,
                }
            }
            Some(used) => {
                let interval = st
                    .users
                    .get(&email)
                    .and_then(|u| u.reuse_interval_s)
                    .unwrap_or(st.reuse_interval_s);
                let active = session.active.clone();
                let parent_of_active =
                    st.refresh_tokens.get(&active).and_then(|a| a.parent.as_deref()) == Some(presented);
                let recent = now_ms.saturating_sub(used) < interval.saturating_mul(1000);
                if interval > 0 && (recent || parent_of_active) {
                    Redeemed::Reused {
                        email,
                        session_id,
                        refresh_token: active,
                    }
                } else {
                    session.revoked = true;
                    Redeemed::Refused { email, session_id }
                }
            }
        }
    }

    /// Revokes a session (logout): its refresh tokens stop working, its access tokens too.
    pub fn revoke(&self, session_id: &str) {
        if let Some(s) = self.lock().sessions.get_mut(session_id) {
            s.revoked = true;
        }
    }

    /// The session JSON GoTrue answers: a new access token for `session_id` and `refresh_token`.
    pub fn session_json(&self, email: &str, session_id: &str, refresh_token: &str) -> Value {
        let (access, ttl, now) = self.sign_access(email, session_id);
        json!({
            "access_token": access,
            "token_type": "bearer",
            "expires_in": ttl,
            "expires_at": now + ttl,
            "refresh_token": refresh_token,
            "user": user_json(email),
        })
    }

    /// An access token alone (no refresh token, no session) for `email`: `(token, exp, ttl)`.
    pub fn access_only(&self, email: &str) -> (String, u64, u64) {
        let (access, ttl, now) = self.sign_access(email, &random_token(9));
        (access, now + ttl, ttl)
    }

    fn sign_access(&self, email: &str, session_id: &str) -> (String, u64, u64) {
        let ttl = self
            .lock()
            .users
            .get(email)
            .and_then(|u| u.ttl)
            .unwrap_or(self.default_ttl);
        let now = now_s();
        let claims = json!({
            "aud": "authenticated", "role": "authenticated", "iss": "authwire-devserver",
            "sub": user_id(email), "email": email, "session_id": session_id,
            "iat": now, "exp": now + ttl, "aal": "aal1", "is_anonymous": false,
            // Unique per token, so two tokens issued in the same second differ.
            "jti": random_token(9),
        });
        (jwt::sign(&self.secret, &claims), ttl, now)
    }

    /// Verifies a token this server issued; `Ok(claims)` when valid now and its session stands.
    pub fn verify(&self, token: &str) -> Result<Value, jwt::Invalid> {
        let claims = jwt::verify(&self.secret, token, now_s())?;
        let sid = claims.get("session_id").and_then(Value::as_str).unwrap_or_default();
        if self.lock().sessions.get(sid).is_some_and(|s| s.revoked) {
            return Err(jwt::Invalid::Revoked);
        }
        Ok(claims)
    }
}

/// GoTrue's user object for `email`.
pub fn user_json(email: &str) -> Value {
    let created = "2026-01-01T00:00:00Z";
    json!({
        "id": user_id(email), "aud": "authenticated", "role": "authenticated", "email": email,
        "email_confirmed_at": created, "phone": "", "confirmed_at": created, "last_sign_in_at": created,
        "app_metadata": { "provider": "email", "providers": ["email"] }, "user_metadata": {},
        "identities": [], "created_at": created, "updated_at": created, "is_anonymous": false,
    })
}
