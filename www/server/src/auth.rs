//! The GoTrue routes (`/auth/v1/token`, `/auth/v1/logout`, `/auth/v1/user`) and the test controls
//! for them (`/__test/control`, `/__test/config`, `/__test/stats`). Errors are GoTrue's, in both
//! API versions (see `gotrue`); the tokens themselves live in `tokens`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::gotrue::{ApiError, ApiVersion};
use crate::jwt::{self, Invalid};
use crate::tokens::{user_json, Redeemed, Tokens};
use crate::util::{bearer, chance, now_ms, short, user_id, Rng};

#[derive(Deserialize)]
pub struct GrantQuery {
    grant_type: Option<String>,
}

/// `POST /auth/v1/token?grant_type=password|refresh_token`
pub async fn token(
    State(app): State<Arc<Tokens>>,
    Query(q): Query<GrantQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let version = ApiVersion::of(&headers);
    let grant = q.grant_type.unwrap_or_default();
    if grant != "password" && grant != "refresh_token" {
        // GoTrue answers an unknown grant type with this code and this message.
        return ApiError::new(StatusCode::BAD_REQUEST, "invalid_credentials", "unsupported_grant_type")
            .respond(version);
    }
    let body = match serde_json::from_slice::<Value>(&body) {
        Ok(v) if v.is_object() => v,
        Ok(_) => return bad_json("json: cannot unmarshal into Go value of type object").respond(version),
        Err(e) => return bad_json(&e.to_string()).respond(version),
    };
    let answer = if grant == "password" {
        password_grant(&app, &body)
    } else {
        refresh_grant(&app, &body).await
    };
    match answer {
        Ok(session) => (StatusCode::OK, Json(session)).into_response(),
        Err(e) => e.respond(version),
    }
}

fn bad_json(why: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_json",
        format!("Could not parse request body as JSON: {why}"),
    )
}

fn password_grant(app: &Tokens, body: &Value) -> Result<Value, ApiError> {
    let email = body
        .get("email")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_lowercase();
    let phone = body.get("phone").and_then(Value::as_str).unwrap_or_default();
    if email.is_empty() && phone.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "missing email or phone",
        ));
    }
    let password = body.get("password").and_then(Value::as_str).unwrap_or_default();
    if !email.contains('@') || password != app.password() {
        println!(
            "[auth] sign-in refused for {}",
            if email.is_empty() { "<phone>" } else { &email }
        );
        return Err(ApiError::invalid_credentials());
    }
    let (session_id, out) = app.sign_in(&email);
    app.count(&email, |c| c.password_grants += 1);
    println!(
        "[auth] sign-in user={} session={} ttl={}s",
        short(&user_id(&email)),
        session_id,
        out["expires_in"]
    );
    Ok(out)
}

async fn refresh_grant(app: &Tokens, body: &Value) -> Result<Value, ApiError> {
    let presented = body
        .get("refresh_token")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if presented.len() < 12 {
        // GoTrue's RefreshTokenGrantParams.Validate, before any lookup.
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "Refresh token is not valid",
        ));
    }
    // Attribute the request to its user (for counters, faults and the delay); the decision itself
    // is taken later, atomically, by `redeem`.
    let email = app.owner(&presented).map(|(e, _)| e).unwrap_or_default();
    app.count(&email, |c| c.refresh_requests += 1);
    let cfg = app.user_cfg(&email);
    if cfg.refresh_delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(cfg.refresh_delay_ms)).await;
    }
    let outage = cfg.fail_until_ms > now_ms();
    let by_chance =
        !outage && cfg.fail_probability > 0.0 && app.seeded_roll(&email).unwrap_or_else(chance) < cfg.fail_probability;
    if cfg.fail_refreshes > 0 || by_chance || outage {
        if !(by_chance || outage) {
            app.update_user(&email, |u| u.fail_refreshes = u.fail_refreshes.saturating_sub(1));
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
        return Err(injected(status));
    }
    match app.redeem(&presented, now_ms()) {
        Redeemed::NotFound => {
            app.count(&email, |c| c.refresh_invalid += 1);
            println!("[auth] refresh with an unknown or revoked refresh token refused");
            Err(ApiError::refresh_token_not_found())
        }
        Redeemed::Refused { email, session_id } => {
            app.count(&email, |c| {
                c.refresh_reused += 1;
                c.reuse_refused += 1;
            });
            println!(
                "[auth] REUSED refresh token for user={} session={}: session revoked, rt={}",
                short(&user_id(&email)),
                session_id,
                jwt::fingerprint(&presented)
            );
            Err(ApiError::refresh_token_already_used())
        }
        Redeemed::Reused {
            email,
            session_id,
            refresh_token,
        } => {
            app.count(&email, |c| {
                c.refresh_reused += 1;
                c.reuse_answered += 1;
            });
            println!(
                "[auth] reused refresh token for user={} session={} answered with the active session, rt={}",
                short(&user_id(&email)),
                session_id,
                jwt::fingerprint(&presented)
            );
            Ok(app.session_json(&email, &session_id, &refresh_token))
        }
        Redeemed::Rotated {
            email,
            session_id,
            refresh_token,
        } => {
            let out = app.session_json(&email, &session_id, &refresh_token);
            app.count(&email, |c| c.refresh_ok += 1);
            let n = app.counters(Some(&email)).refresh_ok;
            println!(
                "[auth] refresh user={} session={} rotated (#{n}), ttl={}s, rt={}",
                short(&user_id(&email)),
                session_id,
                out["expires_in"],
                jwt::fingerprint(&presented)
            );
            Ok(out)
        }
    }
}

/// A failure injected by a fault switch, as GoTrue would word it.
fn injected(status: StatusCode) -> ApiError {
    match status.as_u16() {
        429 => ApiError::new(status, "over_request_rate_limit", "Request rate limit reached"),
        500..=599 => ApiError::new(status, "unexpected_failure", "injected failure"),
        _ => ApiError::new(status, "unknown", "injected failure"),
    }
}

/// Middleware: counts requests whose URL query carries a token (a JWT or a refresh token by name).
pub async fn watch_urls(
    State(app): State<Arc<Tokens>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let q = req.uri().query().unwrap_or_default();
    let carries =
        q.contains("eyJ") || q.contains("refresh_token=") || q.contains("access_token=") || q.contains("token=ey");
    if carries && req.uri().path() == crate::chat::AGENT_PATH {
        // The one route that takes the token at the upgrade, as SlarOps does: the app opted in.
        app.count("", |c| c.opt_in_url_tokens += 1);
    } else if carries {
        println!(
            "[auth] a request carried a token in its URL (path {})",
            req.uri().path()
        );
        app.count("", |c| c.tokens_in_urls += 1);
    }
    next.run(req).await
}

/// GoTrue's `requireAuthentication`: the claims of the bearer token, or its error.
fn authenticate(app: &Tokens, headers: &HeaderMap) -> Result<Value, ApiError> {
    let Some(token) = bearer(headers) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "no_authorization",
            "This endpoint requires a valid Bearer token",
        ));
    };
    app.verify(token).map_err(|e| match e {
        Invalid::Revoked => ApiError::new(
            StatusCode::FORBIDDEN,
            "session_not_found",
            "Session from session_id claim in JWT does not exist",
        ),
        Invalid::Expired => ApiError::new(
            StatusCode::FORBIDDEN,
            "bad_jwt",
            "invalid JWT: unable to parse or verify signature, token has invalid claims: token is expired",
        ),
        Invalid::Bad => ApiError::new(
            StatusCode::FORBIDDEN,
            "bad_jwt",
            "invalid JWT: unable to parse or verify signature, token signature is invalid: signature is invalid",
        ),
    })
}

/// `POST /auth/v1/logout`: revokes the session of the bearer token.
pub async fn logout(State(app): State<Arc<Tokens>>, headers: HeaderMap) -> Response {
    let claims = match authenticate(&app, &headers) {
        Ok(c) => c,
        Err(e) => return e.respond(ApiVersion::of(&headers)),
    };
    let sid = claims["session_id"].as_str().unwrap_or_default().to_owned();
    let email = claims["email"].as_str().unwrap_or_default().to_owned();
    app.revoke(&sid);
    app.count(&email, |c| c.logouts += 1);
    println!("[auth] logout user={} session={sid}", short(&user_id(&email)));
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /auth/v1/user`
pub async fn user(State(app): State<Arc<Tokens>>, headers: HeaderMap) -> Response {
    match authenticate(&app, &headers) {
        Ok(claims) => Json(user_json(claims["email"].as_str().unwrap_or_default())).into_response(),
        Err(e) => e.respond(ApiVersion::of(&headers)),
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
    refresh_token_reuse_interval: Option<u64>,
}

/// `POST /__test/control {email, ttl_seconds?, fail_refreshes?, fail_status?, fail_probability?,
/// refresh_delay_ms?, fail_until_ms?, fault_seed?, refresh_token_reuse_interval?}`:
/// `fail_until_ms` (ms since the epoch) fails every refresh with 500 until then; `fault_seed` makes
/// `fail_probability`'s decisions replayable; `refresh_token_reuse_interval` (seconds, 0 = strict
/// rotation) overrides the server's for this user.
pub async fn control(State(app): State<Arc<Tokens>>, Json(c): Json<Control>) -> Response {
    let email = c.email.trim().to_lowercase();
    app.update_user(&email, |u| {
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
        if c.refresh_token_reuse_interval.is_some() {
            u.reuse_interval_s = c.refresh_token_reuse_interval;
        }
    });
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
pub struct ServerConfig {
    refresh_token_reuse_interval: Option<u64>,
}

/// `POST /__test/config {refresh_token_reuse_interval?}`: server-wide settings (seconds; 0 = strict
/// rotation), for a test script switching the whole server's mode between runs.
pub async fn set_config(State(app): State<Arc<Tokens>>, Json(c): Json<ServerConfig>) -> Response {
    if let Some(s) = c.refresh_token_reuse_interval {
        app.set_reuse_interval_s(s);
        println!("[auth] refresh-token reuse interval now {s}s");
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /__test/config`: the server-wide settings.
pub async fn config(State(app): State<Arc<Tokens>>) -> Response {
    Json(json!({ "refresh_token_reuse_interval": app.reuse_interval_s() })).into_response()
}

#[derive(Deserialize)]
pub struct StatsQuery {
    email: Option<String>,
}

/// `GET /__test/stats[?email=]`: counters for one user, or in total.
pub async fn stats(State(app): State<Arc<Tokens>>, Query(q): Query<StatsQuery>) -> Response {
    let email = q.email.map(|e| e.trim().to_lowercase());
    Json(app.counters(email.as_deref())).into_response()
}
