//! GoTrue-compatible token routes, per-user fault switches and counters.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::jwt;

pub type Shared = std::sync::Arc<App>;

/// Counters per user (and in total), read by tests through `/__test/stats`.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Counters {
    /// Password grants served.
    pub password_grants: u64,
    /// Refresh-token grant requests received (all outcomes).
    pub refresh_requests: u64,
    /// Refresh requests answered with a new session.
    pub refresh_ok: u64,
    /// Refresh requests that presented an already-used refresh token.
    pub refresh_reused: u64,
    /// Refresh requests with a token that was never issued or was revoked.
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
}

/// Per-user settings tests can change.
#[derive(Debug, Default, Clone)]
struct UserCfg {
    ttl: Option<u64>,
    fail_probability: f64,
    fail_refreshes: u32,
    fail_status: u16,
    refresh_delay_ms: u64,
    /// Every refresh fails with 500 until this time (ms since the epoch): an outage.
    fail_until_ms: u64,
    /// Seeded source for `fail_probability`, so a soak can replay its faults.
    rng: Option<Rng>,
}

#[derive(Debug)]
struct RefreshToken {
    email: String,
    session_id: String,
    used: bool,
}

#[derive(Default)]
struct State_ {
    users: HashMap<String, UserCfg>,
    counters: HashMap<String, Counters>,
    total: Counters,
    refresh_tokens: HashMap<String, RefreshToken>,
    revoked_sessions: std::collections::HashSet<String>,
}

/// The server's state.
pub struct App {
    secret: [u8; 32],
    default_ttl: u64,
    password: String,
    state: Mutex<State_>,
    /// The chat sockets' counters and fault switches.
    pub chat: crate::chat::ChatState,
    /// The broker's tokens and the echo route's state.
    pub sources: crate::sources::SourceState,
}

/// Seconds since the epoch.
pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A seeded source of fault decisions (SplitMix64): the same seed, the same sequence of decisions.
#[derive(Debug, Clone, Copy)]
pub struct Rng(u64);

impl Rng {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// A uniform number in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A uniform random number in [0, 1), for fault injection.
pub fn chance() -> f64 {
    let mut b = [0u8; 4];
    getrandom::getrandom(&mut b).expect("the OS random source is available");
    f64::from(u32::from_le_bytes(b)) / 4_294_967_296.0
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).expect("the OS random source is available");
    B64.encode(buf)
}

/// A stable UUID-shaped user id for an email.
pub fn user_id(email: &str) -> String {
    let h = Sha256::digest(email.as_bytes());
    let x: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// GoTrue's error shape (both the old `error`/`error_description` and the newer `error_code`/`msg`).
fn gotrue_error(status: StatusCode, error: &str, error_code: &str, msg: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": msg, "error_code": error_code, "msg": msg })),
    )
        .into_response()
}

impl App {
    /// A server issuing tokens that live `default_ttl` seconds, accepting `password` for any email.
    pub fn new(default_ttl: u64, password: String) -> Self {
        let mut secret = [0u8; 32];
        getrandom::getrandom(&mut secret).expect("the OS random source is available");
        App {
            secret,
            default_ttl,
            password,
            state: Mutex::new(State_::default()),
            chat: Default::default(),
            sources: Default::default(),
        }
    }

    /// The password every account accepts.
    pub fn password(&self) -> &str {
        &self.password
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State_> {
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

    /// An access token alone (no refresh token) for `email`: `(token, exp, ttl)`.
    pub fn access_only(&self, email: &str) -> (String, u64, u64) {
        let v = self.issue_inner(email, &random_token(9), false);
        (
            v["access_token"].as_str().unwrap_or_default().to_owned(),
            v["expires_at"].as_u64().unwrap_or(0),
            v["expires_in"].as_u64().unwrap_or(0),
        )
    }

    /// Issues a session for `email` within `session_id` (a refresh-token family).
    fn issue(&self, email: &str, session_id: &str) -> Value {
        self.issue_inner(email, session_id, true)
    }

    fn issue_inner(&self, email: &str, session_id: &str, with_refresh: bool) -> Value {
        let ttl = self
            .lock()
            .users
            .get(email)
            .and_then(|u| u.ttl)
            .unwrap_or(self.default_ttl);
        let now = now_s();
        let uid = user_id(email);
        let claims = json!({
            "aud": "authenticated", "role": "authenticated", "iss": "authwire-devserver",
            "sub": uid, "email": email, "session_id": session_id,
            "iat": now, "exp": now + ttl, "aal": "aal1", "is_anonymous": false,
            // Unique per token, so two tokens issued in the same second differ.
            "jti": random_token(9),
        });
        let access = jwt::sign(&self.secret, &claims);
        if !with_refresh {
            return json!({ "access_token": access, "expires_in": ttl, "expires_at": now + ttl });
        }
        let refresh = random_token(16);
        self.lock().refresh_tokens.insert(
            refresh.clone(),
            RefreshToken {
                email: email.to_owned(),
                session_id: session_id.to_owned(),
                used: false,
            },
        );
        json!({
            "access_token": access,
            "token_type": "bearer",
            "expires_in": ttl,
            "expires_at": now + ttl,
            "refresh_token": refresh,
            "user": user_json(email),
        })
    }

    /// Verifies a token this server issued; `Ok(claims)` when valid now.
    pub fn verify(&self, token: &str) -> Result<Value, jwt::Invalid> {
        let claims = jwt::verify(&self.secret, token, now_s())?;
        let sid = claims.get("session_id").and_then(Value::as_str).unwrap_or_default();
        if self.lock().revoked_sessions.contains(sid) {
            return Err(jwt::Invalid::Bad);
        }
        Ok(claims)
    }
}

fn user_json(email: &str) -> Value {
    let created = "2026-01-01T00:00:00Z";
    json!({
        "id": user_id(email), "aud": "authenticated", "role": "authenticated", "email": email,
        "email_confirmed_at": created, "phone": "", "confirmed_at": created, "last_sign_in_at": created,
        "app_metadata": { "provider": "email", "providers": ["email"] }, "user_metadata": {},
        "identities": [], "created_at": created, "updated_at": created, "is_anonymous": false,
    })
}

#[derive(Deserialize)]
pub struct GrantQuery {
    grant_type: Option<String>,
}

/// `POST /auth/v1/token?grant_type=password|refresh_token`
pub async fn token(State(app): State<Shared>, Query(q): Query<GrantQuery>, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return gotrue_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "bad_json",
            "Could not parse request body as JSON",
        );
    };
    match q.grant_type.as_deref() {
        Some("password") => password_grant(&app, &body),
        Some("refresh_token") => refresh_grant(&app, &body).await,
        _ => gotrue_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "validation_failed",
            "unsupported_grant_type",
        ),
    }
}

fn password_grant(app: &App, body: &Value) -> Response {
    let email = body
        .get("email")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_lowercase();
    let password = body.get("password").and_then(Value::as_str).unwrap_or_default();
    if email.is_empty() || !email.contains('@') || password != app.password {
        println!(
            "[auth] sign-in refused for {}",
            if email.is_empty() { "<no email>" } else { &email }
        );
        return gotrue_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "invalid_credentials",
            "Invalid login credentials",
        );
    }
    let session_id = random_token(9);
    let out = app.issue(&email, &session_id);
    app.count(&email, |c| c.password_grants += 1);
    println!(
        "[auth] sign-in user={} session={} ttl={}s",
        short(&user_id(&email)),
        session_id,
        out["expires_in"]
    );
    (StatusCode::OK, Json(out)).into_response()
}

async fn refresh_grant(app: &App, body: &Value) -> Response {
    let presented = body
        .get("refresh_token")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    // Look the token up first, to attribute the request to its user.
    let (email, session_id, used) = {
        let st = app.lock();
        match st.refresh_tokens.get(&presented) {
            Some(t) => (t.email.clone(), t.session_id.clone(), t.used),
            None => (String::new(), String::new(), false),
        }
    };
    app.count(&email, |c| c.refresh_requests += 1);
    let cfg = app.lock().users.get(&email).cloned().unwrap_or_default();
    if cfg.refresh_delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(cfg.refresh_delay_ms)).await;
    }
    let outage = cfg.fail_until_ms > now_ms();
    let by_chance = !outage && cfg.fail_probability > 0.0 && {
        let roll = match app.lock().users.get_mut(&email).and_then(|u| u.rng.as_mut()) {
            Some(rng) => rng.next_f64(),
            None => chance(),
        };
        roll < cfg.fail_probability
    };
    if cfg.fail_refreshes > 0 || by_chance || outage {
        if let Some(u) = app.lock().users.get_mut(&email) {
            u.fail_refreshes = u.fail_refreshes.saturating_sub(if by_chance || outage { 0 } else { 1 });
        }
        app.count(&email, |c| c.refresh_faults += 1);
        let status = if by_chance || outage {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::from_u16(cfg.fail_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
        };
        println!(
            "[auth] refresh user={} failed on purpose with {}",
            short(&user_id(&email)),
            status.as_u16()
        );
        return gotrue_error(status, "server_error", "unexpected_failure", "injected failure");
    }
    if email.is_empty() || app.lock().revoked_sessions.contains(&session_id) {
        app.count(&email, |c| c.refresh_invalid += 1);
        println!("[auth] refresh with an unknown or revoked refresh token refused");
        return gotrue_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "refresh_token_not_found",
            "Invalid Refresh Token: Refresh Token Not Found",
        );
    }
    if used {
        // Reuse of a rotated token: someone else holds the family; revoke it all (as GoTrue does).
        app.lock().revoked_sessions.insert(session_id.clone());
        app.count(&email, |c| c.refresh_reused += 1);
        println!(
            "[auth] REUSED refresh token for user={} session={}: session revoked, rt={}",
            short(&user_id(&email)),
            session_id,
            &crate::jwt::fingerprint(&presented)
        );
        return gotrue_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "refresh_token_already_used",
            "Invalid Refresh Token: Already Used",
        );
    }
    if let Some(t) = app.lock().refresh_tokens.get_mut(&presented) {
        t.used = true;
    }
    let out = app.issue(&email, &session_id);
    app.count(&email, |c| c.refresh_ok += 1);
    let n = app.lock().counters.get(&email).map_or(0, |c| c.refresh_ok);
    println!(
        "[auth] refresh user={} session={} rotated (#{n}), ttl={}s, rt={}",
        short(&user_id(&email)),
        session_id,
        out["expires_in"],
        &crate::jwt::fingerprint(&presented)
    );
    (StatusCode::OK, Json(out)).into_response()
}

/// Middleware: counts requests whose URL query carries a token (a JWT or a refresh token by name).
pub async fn watch_urls(
    State(app): State<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let q = req.uri().query().unwrap_or_default();
    if q.contains("eyJ") || q.contains("refresh_token=") || q.contains("access_token=") || q.contains("token=ey") {
        println!(
            "[auth] a request carried a token in its URL (path {})",
            req.uri().path()
        );
        app.count("", |c| c.tokens_in_urls += 1);
    }
    next.run(req).await
}

/// The bearer token of a request.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ")
}

/// `POST /auth/v1/logout`: revokes the session of the bearer token.
pub async fn logout(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let Some(claims) = bearer(&headers).and_then(|t| app.verify(t).ok()) else {
        return gotrue_error(StatusCode::UNAUTHORIZED, "invalid_token", "bad_jwt", "invalid JWT");
    };
    let sid = claims["session_id"].as_str().unwrap_or_default().to_owned();
    let email = claims["email"].as_str().unwrap_or_default().to_owned();
    app.lock().revoked_sessions.insert(sid.clone());
    app.count(&email, |c| c.logouts += 1);
    println!("[auth] logout user={} session={sid}", short(&user_id(&email)));
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /auth/v1/user`
pub async fn user(State(app): State<Shared>, headers: HeaderMap) -> Response {
    match bearer(&headers).map(|t| app.verify(t)) {
        Some(Ok(claims)) => Json(user_json(claims["email"].as_str().unwrap_or_default())).into_response(),
        _ => gotrue_error(StatusCode::UNAUTHORIZED, "invalid_token", "bad_jwt", "invalid JWT"),
    }
}

#[derive(Deserialize)]
pub struct Control {
    email: String,
    ttl_seconds: Option<u64>,
    fail_probability: Option<f64>,
    fail_refreshes: Option<u32>,
    fail_status: Option<u16>,
    refresh_delay_ms: Option<u64>,
    fail_until_ms: Option<u64>,
    fault_seed: Option<u64>,
}

/// `POST /__test/control {email, ttl_seconds?, fail_refreshes?, fail_status?, fail_probability?,
/// refresh_delay_ms?, fail_until_ms?, fault_seed?}`: `fail_until_ms` (ms since the epoch) fails every
/// refresh with 500 until then; `fault_seed` makes `fail_probability`'s decisions replayable.
pub async fn control(State(app): State<Shared>, Json(c): Json<Control>) -> Response {
    let email = c.email.trim().to_lowercase();
    let mut st = app.lock();
    let u = st.users.entry(email).or_default();
    if c.ttl_seconds.is_some() {
        u.ttl = c.ttl_seconds;
    }
    if let Some(n) = c.fail_refreshes {
        u.fail_refreshes = n;
    }
    if let Some(p) = c.fail_probability {
        u.fail_probability = p;
    }
    if let Some(s) = c.fail_status {
        u.fail_status = s;
    }
    if let Some(d) = c.refresh_delay_ms {
        u.refresh_delay_ms = d;
    }
    if let Some(t) = c.fail_until_ms {
        u.fail_until_ms = t;
    }
    if let Some(seed) = c.fault_seed {
        u.rng = Some(Rng::new(seed));
    }
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
pub struct StatsQuery {
    email: Option<String>,
}

/// `GET /__test/stats[?email=]`: counters for one user, or in total.
pub async fn stats(State(app): State<Shared>, Query(q): Query<StatsQuery>) -> Response {
    let st = app.lock();
    let c = match q.email {
        Some(e) => st.counters.get(&e.trim().to_lowercase()).copied().unwrap_or_default(),
        None => st.total,
    };
    Json(c).into_response()
}
