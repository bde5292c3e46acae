//! Requests counted by their `Host` header, so a browser test can prove that a request never left
//! the page: `http://127.0.0.1:PORT` and `http://localhost:PORT` are the same server under two
//! origins. `GET /__test/hosts` answers `{ "<host:port>": count, ... }` (CORS preflights included,
//! its own requests not).

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::extract::Request;
use axum::http::header::HOST;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

static COUNTS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

/// Counts every request by its `Host` header (install outermost, so CORS preflights count too).
pub async fn count(req: Request, next: Next) -> Response {
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

/// `GET /__test/hosts` (routed inside the CORS layer: the tests' requests carry an `apikey`
/// header, so the browser sends a preflight first).
pub async fn counts() -> Response {
    let map = COUNTS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Json(map).into_response()
}
