//! Requests counted by their `Host` header, so a browser test can prove that a request never left
//! the page: `http://127.0.0.1:PORT` and `http://localhost:PORT` are the same server under two
//! origins. `GET /__test/hosts` answers `{ "<host:port>": count, ... }` (CORS preflights included,
//! its own requests not).

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::extract::Request;
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, HOST,
};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

static COUNTS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

/// Adds `GET /__test/hosts` and counts every request (outermost, so preflights count too).
pub fn install(router: Router) -> Router {
    router
        .route("/__test/hosts", get(counts).options(preflight))
        .layer(middleware::from_fn(count))
}

async fn count(req: Request, next: Next) -> Response {
    if req.uri().path() != "/__test/hosts" {
        let host = req
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        *COUNTS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(host)
            .or_default() += 1;
    }
    next.run(req).await
}

/// The tests' requests carry an `apikey` header, so the browser asks first: answer like the CORS
/// layer the other routes have (this route is added outside it).
async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (ACCESS_CONTROL_ALLOW_HEADERS, "*"),
            (ACCESS_CONTROL_ALLOW_METHODS, "GET"),
        ],
    )
        .into_response()
}

async fn counts() -> Response {
    let map = COUNTS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    ([(ACCESS_CONTROL_ALLOW_ORIGIN, "*")], Json(map)).into_response()
}
