//! Routes for the token sources beyond GoTrue: a token broker, a plain login URL, and an API that
//! answers 401 to a bad (or, on request, to the first) bearer token, for `auth.fetch`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use std::sync::Arc;

use crate::tokens::Tokens;
use crate::util::{bearer, now_s};

/// Broker and echo state.
#[derive(Default)]
pub struct SourceState {
    /// The broker's current token per (user, scope): (token, exp, refresh_count).
    broker: Mutex<HashMap<(String, String), (String, u64, u64)>>,
    /// `reject_first` keys already used once.
    rejected: Mutex<HashSet<String>>,
}

#[derive(Deserialize)]
pub struct UserQuery {
    user_id: Option<String>,
}

fn broker_answer(app: &Tokens, sources: &SourceState, user: &str, scope: &str, force: bool) -> Response {
    if user.is_empty() || user.starts_with("unknown") {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "token_not_found", "message": "no token for this user and scope"})),
        )
            .into_response();
    }
    let now = now_s();
    let key = (user.to_owned(), scope.to_owned());
    let mut map = sources.broker.lock().unwrap_or_else(|p| p.into_inner());
    let entry = map.get(&key).cloned();
    let (token, exp, count) = match entry {
        Some((t, exp, n)) if !force && exp > now + 1 => (t, exp, n),
        other => {
            let (t, exp, _) = app.access_only(user);
            let n = other.map_or(0, |(_, _, n)| n + 1);
            println!("[broker] user={user} scope={scope}: issued token #{n}");
            (t, exp, n)
        }
    };
    map.insert(key, (token.clone(), exp, count));
    // expires_on as epoch seconds in a string, as Azure-style brokers send it.
    Json(json!({"token": token, "expires_on": exp.to_string(), "scope": scope, "refresh_count": count})).into_response()
}

/// `GET /api/tokens/{scope}?user_id=`
pub async fn broker_get(
    State(app): State<Arc<Tokens>>,
    State(sources): State<Arc<SourceState>>,
    Path(scope): Path<String>,
    Query(q): Query<UserQuery>,
) -> Response {
    let user = q.user_id.unwrap_or_default();
    app.count(&user, |c| c.broker_gets += 1);
    broker_answer(&app, &sources, &user, &scope, false)
}

/// `POST /api/tokens/refresh/{scope}?user_id=`
pub async fn broker_refresh(
    State(app): State<Arc<Tokens>>,
    State(sources): State<Arc<SourceState>>,
    Path(scope): Path<String>,
    Query(q): Query<UserQuery>,
) -> Response {
    let user = q.user_id.unwrap_or_default();
    app.count(&user, |c| c.broker_refreshes += 1);
    broker_answer(&app, &sources, &user, &scope, true)
}

/// `GET /api/tokens/health`
pub async fn broker_health() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// `POST /plain/login {email, password}` answering `{ token, expires_in }` (no refresh token).
pub async fn plain_login(State(app): State<Arc<Tokens>>, body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let email = v["email"].as_str().unwrap_or_default().to_lowercase();
    if email.is_empty() || v["password"].as_str() != Some(app.password()) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_credentials"}))).into_response();
    }
    app.count(&email, |c| c.plain_logins += 1);
    let (token, _, ttl) = app.access_only(&email);
    Json(json!({"token": token, "expires_in": ttl})).into_response()
}

#[derive(Deserialize)]
pub struct EchoQuery {
    reject_first: Option<String>,
}

/// `GET|POST /api/echo[?reject_first=KEY]`: 401 without a valid bearer token (and to the first
/// request with KEY); else who the token is for, the CSRF header seen, and the body's length.
pub async fn echo(
    State(app): State<Arc<Tokens>>,
    State(sources): State<Arc<SourceState>>,
    Query(q): Query<EchoQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let claims = bearer(&headers).and_then(|t| app.verify(t).ok());
    let email = claims
        .as_ref()
        .and_then(|c| c["email"].as_str())
        .unwrap_or_default()
        .to_owned();
    app.count(&email, |c| c.echo_requests += 1);
    let first = q
        .reject_first
        .is_some_and(|k| sources.rejected.lock().unwrap_or_else(|p| p.into_inner()).insert(k));
    if claims.is_none() || first {
        app.count(&email, |c| c.echo_unauthorized += 1);
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_token"}))).into_response();
    }
    let csrf = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    Json(json!({"email": email, "csrf": csrf, "body_length": body.len()})).into_response()
}
