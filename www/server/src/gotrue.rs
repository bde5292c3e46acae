//! How GoTrue (and the API gateway in front of hosted Supabase) answer errors, byte for byte.
//!
//! From supabase/auth `internal/api/errors.go` and `apierrors/apierrors.go`:
//! - every `HTTPError` with a code sets the `x-sb-error-code` header, whatever the API version;
//! - without `X-Supabase-Api-Version` (or with a date before 2024-01-01, or one that does not
//!   parse) the body is `{"code": <HTTP status>, "error_code": "...", "msg": "..."}`, plus
//!   `"error_id"` (the request id) on 5xx;
//! - with a date on or after `2024-01-01` the body is `{"code": "...", "message": "..."}` and the
//!   response echoes `X-Supabase-Api-Version: 2024-01-01`.
//!
//! The OAuth shape `{"error", "error_description"}` survives in GoTrue only for OAuth-client
//! sessions on the refresh grant and for an empty `refresh_token` (which its validation catches
//! first), so these routes never send it.
//!
//! Hosted Supabase's gateway refuses every `/auth/v1/*` request without a valid `apikey` (header or
//! `apikey` query parameter) with 401 `{"message", "hint"}`, before GoTrue sees it.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::tokens::Tokens;

/// The request header that selects the error shape.
pub const API_VERSION_HEADER: &str = "x-supabase-api-version";
/// The response header carrying the error code.
pub const ERROR_CODE_HEADER: &str = "x-sb-error-code";
/// The one dated API version GoTrue knows.
pub const API_VERSION_2024_01_01: &str = "2024-01-01";

/// The API version a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// No header, a date before 2024-01-01, or a value that is not a `YYYY-MM-DD` date.
    Initial,
    /// `2024-01-01` or any later date.
    V20240101,
}

impl ApiVersion {
    /// What `X-Supabase-Api-Version` selects (GoTrue's `DetermineClosestAPIVersion`).
    pub fn of(headers: &HeaderMap) -> Self {
        let Some(v) = headers.get(API_VERSION_HEADER).and_then(|v| v.to_str().ok()) else {
            return ApiVersion::Initial;
        };
        let b = v.as_bytes();
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        let well_formed =
            b.len() == 10 && b[4] == b'-' && b[7] == b'-' && digits(0..4) && digits(5..7) && digits(8..10);
        let (month, day) = if well_formed {
            (
                v[5..7].parse::<u32>().unwrap_or(0),
                v[8..10].parse::<u32>().unwrap_or(0),
            )
        } else {
            (0, 0)
        };
        // Go's time.Parse refuses month 00/13 and day 00/32; dates compare as strings once valid.
        if !well_formed || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return ApiVersion::Initial;
        }
        if v >= API_VERSION_2024_01_01 {
            ApiVersion::V20240101
        } else {
            ApiVersion::Initial
        }
    }
}

/// One of GoTrue's `HTTPError`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// GoTrue's error code (`apierrors.ErrorCode`).
    pub code: &'static str,
    /// The message.
    pub msg: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, msg: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            msg: msg.into(),
        }
    }

    /// 400 `invalid_credentials` "Invalid login credentials": the password grant's answer to a wrong
    /// password or an unknown email.
    pub fn invalid_credentials() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_credentials",
            "Invalid login credentials",
        )
    }

    /// 400 `refresh_token_not_found`: never issued, or its session is gone (signed out, or revoked
    /// after a reuse).
    pub fn refresh_token_not_found() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "refresh_token_not_found",
            "Invalid Refresh Token: Refresh Token Not Found",
        )
    }

    /// 400 `refresh_token_already_used`: reused outside the reuse interval (the session is revoked).
    pub fn refresh_token_already_used() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "refresh_token_already_used",
            "Invalid Refresh Token: Already Used",
        )
    }

    /// The response as GoTrue writes it for a request that asked for `version`.
    pub fn respond(&self, version: ApiVersion) -> Response {
        let body = match version {
            ApiVersion::V20240101 => json!({ "code": self.code, "message": self.msg }),
            ApiVersion::Initial => {
                let mut v = json!({ "code": self.status.as_u16(), "error_code": self.code, "msg": self.msg });
                if self.status.is_server_error() {
                    v["error_id"] = Value::from(request_id());
                }
                v
            }
        };
        let mut resp = (self.status, Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(ERROR_CODE_HEADER, HeaderValue::from_static(self.code));
        if version == ApiVersion::V20240101 {
            h.insert(API_VERSION_HEADER, HeaderValue::from_static(API_VERSION_2024_01_01));
        }
        resp
    }
}

/// A UUID v4, as GoTrue's request ids are.
fn request_id() -> String {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).expect("the OS random source is available");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    crate::util::uuid_text(&b)
}

/// The gateway's answer to a request without an API key.
pub fn no_api_key() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({
            "message": "No API key found in request",
            "hint": "No `apikey` request header or url param was found.",
        })),
    )
        .into_response()
}

/// The gateway's answer to a request with an API key it does not know.
pub fn invalid_api_key() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({
            "message": "Invalid API key",
            "hint": "Double check your Supabase `anon` or `service_role` API key.",
        })),
    )
        .into_response()
}

/// Middleware: every `/auth/v1/*` request needs the anon key, in the `apikey` header or the
/// `apikey` query parameter, as hosted Supabase's gateway requires. CORS preflights never get here
/// (the CORS layer answers them).
pub async fn require_apikey(
    axum::extract::State(tokens): axum::extract::State<Arc<Tokens>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !req.uri().path().starts_with("/auth/v1/") {
        return next.run(req).await;
    }
    let from_header = req
        .headers()
        .get("apikey")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let from_query = req.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "apikey")
            .map(|(_, v)| v.to_owned())
    });
    match from_header.or(from_query) {
        None => no_api_key(),
        Some(k) if k.is_empty() => no_api_key(),
        Some(k) if k != tokens.anon_key() => invalid_api_key(),
        Some(_) => next.run(req).await,
    }
}
