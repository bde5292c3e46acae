//! What each token source is asked and what its answers mean, as pure functions: the shell only
//! performs the [`Step`]s planned here and hands the answers back as [`Answer`]s.
//!
//! - Supabase (GoTrue): `POST {url}/auth/v1/token?grant_type=refresh_token` with `apikey`;
//!   without a refresh token there is nothing to present (`refresh_token_not_found`).
//! - Password: GoTrue's password grant, then its refresh grant while there is a refresh token; a
//!   plain login URL is signed in to again for every new token.
//! - Broker: `GET {url}/api/tokens/{scope}?user_id=`; when it hands back the very token held now,
//!   `POST {url}/api/tokens/refresh/{scope}?user_id=` asks it to refresh.
//! - Callback: the app's function, called with the refresh token presented.
//!
//! Answers are normalised to the Supabase session shape: `access_token` or `token`;
//! `expires_at`, else `expires_in`, else a broker's `expires_on` (epoch seconds, a numeric
//! string, or an ISO 8601 date).

use super::auth_machine::Failure;
use super::options::{SourceSpec, FULL};
use super::session::{Raw, RawSession, Session};
use super::text;
use super::token::Secret;

/// One HTTP request. Tokens travel in headers and bodies, never in URLs.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCall {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The full URL.
    pub url: String,
    /// Sent as the `apikey` header when present and not empty.
    pub api_key: Option<Secret>,
    /// Sent as `Authorization: Bearer`.
    pub bearer: Option<Secret>,
    /// A JSON object of string fields, when the request has a body.
    pub body: Option<Vec<(&'static str, Secret)>>,
    /// Further headers, sent as they are.
    pub headers: &'static [(&'static str, &'static str)],
}

/// The headers of every request to GoTrue. Like auth-js, the SDK asks for API version
/// `2024-01-01`: errors then come as `{ code: "<error code>", message }` and the answer echoes the
/// version. Either way GoTrue names the error in the `x-sb-error-code` header, read first.
pub const GOTRUE_HEADERS: &[(&str, &str)] = &[(API_VERSION_HEADER, API_VERSION)];

/// The request header selecting GoTrue's error shape.
pub const API_VERSION_HEADER: &str = "X-Supabase-Api-Version";
/// The API version asked for.
pub const API_VERSION: &str = "2024-01-01";
/// The response header in which GoTrue names the error (the shell reads exactly this one).
pub const ERROR_CODE_HEADER: &str = "x-sb-error-code";

/// What the shell performs next for a refresh attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// An HTTP request.
    Http(HttpCall),
    /// Call the app's refresh function with this refresh token (if any).
    Callback(Option<Secret>),
}

/// An answer as the shell read it: the status (a callback's value counts as 200) and the fields
/// of the JSON body the SDK understands.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body is null or undefined (a callback saying the session is over), or not JSON.
    pub empty: bool,
    /// A bare JWT string answered instead of an object.
    pub bare: Option<String>,
    /// `access_token`.
    pub access_token: Raw,
    /// `token` (brokers).
    pub token: Raw,
    /// `refresh_token`.
    pub refresh_token: Raw,
    /// `expires_at`.
    pub expires_at: Raw,
    /// `expires_in`.
    pub expires_in: Raw,
    /// `expires_on` (brokers).
    pub expires_on: Raw,
    /// `token_type`.
    pub token_type: Raw,
    /// `user.id`.
    pub user_id: Raw,
    /// The body's [`ERROR_FIELDS`], in that order (missing ones may be left out at the end).
    pub error_fields: Vec<Raw>,
    /// The `x-sb-error-code` response header, when present.
    pub error_header: Option<String>,
}

/// The status a callback's value is read with (it answered: a 2xx).
pub const CALLBACK_STATUS: u16 = 200;

/// The body fields an error is read from (the shell reads exactly these, in this order). GoTrue has
/// used each over its versions: `{ code: <HTTP status>, error_code, msg }` without an API version,
/// `{ code: "<error code>", message }` from `2024-01-01`, and the OAuth `{ error, error_description }`.
/// Only string values name an error (the initial shape's numeric `code` is the status).
pub const ERROR_FIELDS: [&str; 3] = ["error_code", "code", "error"];

/// The next thing to do after an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// A new session (normalised, not yet validated: the shell validates with the time now).
    Done(Result<RawSession, Failure>),
    /// Another request.
    Then(Step),
}

/// The error codes of an error answer, most authoritative first: the `x-sb-error-code` header,
/// then the body's (either of GoTrue's shapes, or the OAuth one), without repeats.
pub fn error_codes(answer: &Answer) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let body = answer.error_fields.iter().filter_map(|r| match r {
        Raw::Str(s) => Some(s),
        _ => None,
    });
    for e in answer.error_header.iter().chain(body) {
        let e = e.trim();
        if !e.is_empty() && !out.iter().any(|o| o == e) {
            out.push(e.to_owned());
        }
    }
    out
}

fn call(
    method: &'static str,
    url: String,
    api_key: Option<&Secret>,
    body: Option<Vec<(&'static str, Secret)>>,
    headers: &'static [(&'static str, &'static str)],
) -> Step {
    Step::Http(HttpCall {
        method,
        url,
        api_key: api_key.filter(|k| !k.expose().is_empty()).cloned(),
        bearer: None,
        body,
        headers,
    })
}

fn refresh_grant(url: &str, api_key: &Secret, rt: &Secret) -> Step {
    call(
        "POST",
        text::cat(&[url, "/auth/v1/token?grant_type=refresh_token"]),
        Some(api_key),
        Some(vec![("refresh_token", rt.clone())]),
        GOTRUE_HEADERS,
    )
}

fn broker_url(url: &str, scope: &str, user_id: &str, refresh: bool) -> String {
    let (scope, user) = (encode_component(scope), encode_component(user_id));
    let path = if refresh { "api/tokens/refresh" } else { "api/tokens" };
    text::cat(&[url, "/", path, "/", &scope, "?user_id=", &user])
}

/// The first step of a refresh attempt presenting `present` (the refresh token the machine named).
pub fn first_step(spec: &SourceSpec, present: Option<&Secret>) -> Result<Step, Failure> {
    Ok(match spec {
        SourceSpec::Supabase { url, api_key } => {
            let rt = present.ok_or(Failure::Http {
                status: 400,
                errors: vec!["refresh_token_not_found".into()],
            })?;
            refresh_grant(url, api_key, rt)
        }
        SourceSpec::Password {
            url,
            api_key,
            email,
            password,
            plain,
        } => match (plain, present) {
            (false, Some(rt)) => refresh_grant(url, api_key, rt),
            (false, None) => call(
                "POST",
                text::cat(&[url, "/auth/v1/token?grant_type=password"]),
                Some(api_key),
                Some(vec![
                    ("email", Secret::new(email.clone())),
                    ("password", password.clone()),
                ]),
                GOTRUE_HEADERS,
            ),
            (true, _) => call(
                "POST",
                url.clone(),
                Some(api_key),
                Some(vec![
                    ("email", Secret::new(email.clone())),
                    ("password", password.clone()),
                ]),
                &[],
            ),
        },
        SourceSpec::Broker { url, scope, user_id } => {
            call("GET", broker_url(url, scope, user_id, false), None, None, &[])
        }
        SourceSpec::Callback => Step::Callback(present.cloned()),
    })
}

/// What answer `answer` to step number `step` (0 for the first) means. `current` is the access
/// token held when the attempt started.
pub fn answered(spec: &SourceSpec, step: u32, answer: &Answer, current: Option<&Secret>) -> Next {
    if let SourceSpec::Callback = spec {
        if answer.empty {
            return Next::Done(Err(Failure::Callback { gone: true }));
        }
    }
    if !(200..300).contains(&answer.status) {
        return Next::Done(Err(Failure::Http {
            status: answer.status,
            errors: error_codes(answer),
        }));
    }
    let session = normalise(answer);
    if let (SourceSpec::Broker { url, scope, user_id }, 0) = (spec, step) {
        // The broker handed back the token held now: ask it to refresh.
        let same = matches!((&session.access_token, current), (Raw::Str(t), Some(c)) if t == c.expose());
        if same {
            return Next::Then(call("POST", broker_url(url, scope, user_id, true), None, None, &[]));
        }
    }
    Next::Done(Ok(session))
}

/// How a callback that threw is read: an error with `status` 400/401, or a `code` saying the
/// session is over, ends it; anything else is worth a retry.
pub fn callback_failure(status: &Raw, code: &Raw) -> Failure {
    let gone = matches!(status, Raw::Num(s) if *s == 400.0 || *s == 401.0)
        || matches!(code, Raw::Str(c) if matches!(
            c.as_str(),
            "invalid_grant" | "signed_out" | "refresh_token_already_used" | "refresh_token_not_found"
        ));
    Failure::Callback { gone }
}

/// The answer normalised to the Supabase session shape. Only the full build reads the brokers' and
/// callbacks' shapes too (a bare JWT, `token`, `expires_on`); the lite build's only source is
/// GoTrue, which answers with the Supabase shape, so there the others' code is compiled away.
pub fn normalise(a: &Answer) -> RawSession {
    if let Some(jwt) = a.bare.as_ref().filter(|_| FULL) {
        return RawSession::bare(jwt);
    }
    let access_token = if a.access_token.is_absent() && FULL {
        a.token.clone()
    } else {
        a.access_token.clone()
    };
    let expires_at = if a.expires_at.is_absent() && FULL {
        seconds_from(&a.expires_on)
    } else {
        a.expires_at.clone()
    };
    RawSession {
        access_token,
        refresh_token: a.refresh_token.clone(),
        expires_at,
        expires_in: a.expires_in.clone(),
        token_type: a.token_type.clone(),
        user_id: a.user_id.clone(),
    }
}

/// The session as it is stored and published to other tabs: the normalised answer, with
/// `expires_at` rewritten to the expiry this tab computed on its own clock (from `expires_in` at
/// receipt). Every tab of a browser shares that clock; the server's `expires_at` read on a clock
/// that runs ahead would make a fresh session look expired to the other tabs (and each of them
/// refresh it again, a storm), and on one that runs behind would make a token look valid too long.
pub fn to_publish(normalised: &RawSession, session: &Session) -> RawSession {
    RawSession {
        expires_at: Raw::Num((session.expires_at_ms / 1000) as f64),
        ..normalised.clone()
    }
}

/// `expires_on` as brokers send it: epoch seconds (a number or a numeric string) or an ISO date.
fn seconds_from(v: &Raw) -> Raw {
    match v {
        Raw::Num(n) => Raw::Num(*n),
        Raw::Str(s) => {
            let s = s.trim();
            match s.parse::<u64>() {
                Ok(n) => Raw::Num(n as f64),
                Err(_) => iso8601_seconds(s).map_or(Raw::Missing, |n| Raw::Num(n.floor())),
            }
        }
        _ => Raw::Missing,
    }
}

/// Seconds since the epoch of `YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|±HH:MM]` (no zone: UTC).
pub fn iso8601_seconds(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = days_from_civil(y, mo, d) * 86_400;
    let mut i = 10;
    let mut frac = 0.0;
    if matches!(b.get(i), Some(b'T' | b't' | b' ')) {
        let (h, mi) = (num(i + 1, 2)?, num(i + 4, 2)?);
        if b.get(i + 3) != Some(&b':') || h > 23 || mi > 59 {
            return None;
        }
        secs += h * 3_600 + mi * 60;
        i += 6;
        if b.get(i) == Some(&b':') {
            let sec = num(i + 1, 2)?;
            if sec > 60 {
                return None;
            }
            secs += sec;
            i += 3;
            if b.get(i) == Some(&b'.') {
                let start = i + 1;
                i = start;
                let mut scale = 1.0;
                while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
                    scale /= 10.0;
                    frac += f64::from(d - b'0') * scale;
                    i += 1;
                }
                if i == start {
                    return None;
                }
            }
        }
        match b.get(i) {
            None => {}
            Some(b'Z' | b'z') if i + 1 == b.len() => {}
            Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b.get(i + 3) == Some(&b':') => {
                let off = num(i + 1, 2)? * 3_600 + num(i + 4, 2)? * 60;
                secs += if *sign == b'+' { -off } else { off };
            }
            _ => return None,
        }
    } else if i != b.len() {
        return None;
    }
    Some(secs as f64 + frac)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `encodeURIComponent`: everything but `A-Z a-z 0-9 - _ . ! ~ * ' ( )` is percent-encoded (UTF-8).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for byte in s.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            out.push(byte as char);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 15)] as char);
        }
    }
    out
}

/// `auth.fetch`: whether a response to a request's first try is answered by one refresh and one
/// retry (a 401: the token was refused). Only a request whose body can be sent again is retried,
/// and never more than once.
pub fn retry_after(status: u16) -> bool {
    status == 401
}

/// `POST {url}/auth/v1/logout` for a GoTrue source (best effort on `signOut()`), else nothing.
pub fn logout_call(spec: &SourceSpec, access: &Secret) -> Option<HttpCall> {
    let (url, api_key) = match spec {
        SourceSpec::Supabase { url, api_key }
        | SourceSpec::Password {
            url,
            api_key,
            plain: false,
            ..
        } => (url, api_key),
        _ => return None,
    };
    Some(HttpCall {
        method: "POST",
        url: text::cat(&[url, "/auth/v1/logout"]),
        api_key: Some(api_key.clone()).filter(|k| !k.expose().is_empty()),
        bearer: Some(access.clone()),
        headers: GOTRUE_HEADERS,
        body: None,
    })
}

/// `GET {url}/api/tokens/health` for a broker (asked after a failed refresh), else nothing.
pub fn health_call(spec: &SourceSpec) -> Option<HttpCall> {
    let SourceSpec::Broker { url, .. } = spec else {
        return None;
    };
    Some(HttpCall {
        method: "GET",
        url: text::cat(&[url, "/api/tokens/health"]),
        api_key: None,
        bearer: None,
        body: None,
        headers: &[],
    })
}

/// Whether a health answer says healthy: a 2xx whose `status` field, if any, is `ok` or `healthy`.
/// `None` (no answer at all) is unhealthy.
pub fn healthy(answer: Option<(u16, &Raw)>) -> bool {
    match answer {
        Some((status, field)) => {
            (200..300).contains(&status)
                && match field {
                    Raw::Str(s) => s == "ok" || s == "healthy",
                    r => r.is_absent(),
                }
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::new(s)
    }

    fn supabase() -> SourceSpec {
        SourceSpec::Supabase {
            url: "https://p.supabase.co".into(),
            api_key: secret("anon"),
        }
    }

    fn broker() -> SourceSpec {
        SourceSpec::Broker {
            url: "https://b.example".into(),
            scope: "chat write".into(),
            user_id: "u/1&x=é".into(),
        }
    }

    fn ok(token: &str) -> Answer {
        Answer {
            status: 200,
            access_token: Raw::Str(token.into()),
            expires_in: Raw::Num(3600.0),
            ..Default::default()
        }
    }

    #[test]
    fn supabase_presents_exactly_the_named_refresh_token_in_the_body() {
        let Step::Http(c) = first_step(&supabase(), Some(&secret("rt-1"))).unwrap() else {
            panic!()
        };
        assert_eq!(c.method, "POST");
        assert_eq!(c.url, "https://p.supabase.co/auth/v1/token?grant_type=refresh_token");
        assert!(!c.url.contains("rt-1"), "never in the URL");
        assert_eq!(c.body.unwrap()[0].1.expose(), "rt-1");
        assert_eq!(c.api_key.unwrap().expose(), "anon");
        assert_eq!(
            first_step(&supabase(), None),
            Err(Failure::Http {
                status: 400,
                errors: vec!["refresh_token_not_found".into()]
            })
        );
    }

    #[test]
    fn password_signs_in_then_refreshes_and_a_plain_url_always_signs_in() {
        let gotrue = SourceSpec::Password {
            url: "https://p.supabase.co".into(),
            api_key: secret(""),
            email: "a@b.c".into(),
            password: secret("pw"),
            plain: false,
        };
        let Step::Http(c) = first_step(&gotrue, None).unwrap() else {
            panic!()
        };
        assert!(c.url.ends_with("grant_type=password"));
        assert_eq!(c.api_key, None, "an empty apikey is not sent");
        let Step::Http(c) = first_step(&gotrue, Some(&secret("rt"))).unwrap() else {
            panic!()
        };
        assert!(c.url.ends_with("grant_type=refresh_token"));
        let plain = SourceSpec::Password {
            url: "https://login.example/token".into(),
            api_key: secret(""),
            email: "a@b.c".into(),
            password: secret("pw"),
            plain: true,
        };
        let Step::Http(c) = first_step(&plain, Some(&secret("rt"))).unwrap() else {
            panic!()
        };
        assert_eq!(c.url, "https://login.example/token");
    }

    #[test]
    fn a_broker_answering_the_held_token_is_asked_to_refresh_once() {
        let Step::Http(c) = first_step(&broker(), None).unwrap() else {
            panic!()
        };
        assert_eq!(
            c.url,
            "https://b.example/api/tokens/chat%20write?user_id=u%2F1%26x%3D%C3%A9"
        );
        let held = secret("t-1");
        let Next::Then(Step::Http(post)) = answered(&broker(), 0, &ok("t-1"), Some(&held)) else {
            panic!("the same token: refresh")
        };
        assert_eq!(post.method, "POST");
        assert!(post.url.contains("/api/tokens/refresh/"));
        // The second answer is taken whatever it is: no loop.
        assert!(matches!(
            answered(&broker(), 1, &ok("t-1"), Some(&held)),
            Next::Done(Ok(_))
        ));
        assert!(matches!(
            answered(&broker(), 0, &ok("t-2"), Some(&held)),
            Next::Done(Ok(_))
        ));
    }

    #[test]
    #[cfg(feature = "full")] // brokers' and callbacks' shapes: not in the lite build
    fn answers_normalise_to_the_supabase_shape() {
        let a = Answer {
            status: 200,
            token: Raw::Str("t".into()),
            expires_on: Raw::Str("2026-11-24T20:00:00Z".into()),
            ..Default::default()
        };
        let s = normalise(&a);
        assert_eq!(s.access_token, Raw::Str("t".into()));
        assert_eq!(s.expires_at, Raw::Num(1_795_550_400.0));
        let a = Answer {
            expires_on: Raw::Str(" 1795550400 ".into()),
            ..a
        };
        assert_eq!(normalise(&a).expires_at, Raw::Num(1_795_550_400.0));
        let a = Answer {
            expires_at: Raw::Num(5.0),
            ..a
        };
        assert_eq!(normalise(&a).expires_at, Raw::Num(5.0), "expires_at wins");
        let bare = Answer {
            status: 200,
            bare: Some("h.p.s".into()),
            ..Default::default()
        };
        assert_eq!(normalise(&bare).access_token, Raw::Str("h.p.s".into()));
    }

    #[test]
    #[cfg(not(feature = "full"))]
    fn the_lite_build_reads_only_the_supabase_shape() {
        let broker = Answer {
            status: 200,
            token: Raw::Str("t".into()),
            expires_on: Raw::Num(1_795_550_400.0),
            ..Default::default()
        };
        let s = normalise(&broker);
        assert!(
            s.access_token.is_absent() && s.expires_at.is_absent(),
            "a broker's fields are not read"
        );
        let bare = Answer {
            status: 200,
            bare: Some("h.p.s".into()),
            ..Default::default()
        };
        assert!(normalise(&bare).access_token.is_absent(), "nor a bare JWT");
        let gotrue = Answer {
            status: 200,
            access_token: Raw::Str("a".into()),
            expires_at: Raw::Num(5.0),
            ..broker
        };
        let s = normalise(&gotrue);
        assert_eq!((s.access_token, s.expires_at), (Raw::Str("a".into()), Raw::Num(5.0)));
    }

    #[test]
    fn iso_dates_parse_like_date_parse() {
        assert_eq!(iso8601_seconds("1970-01-01"), Some(0.0));
        assert_eq!(iso8601_seconds("1970-01-01T00:00:01Z"), Some(1.0));
        assert_eq!(iso8601_seconds("2000-02-29T12:30:00.5Z"), Some(951_827_400.5));
        assert_eq!(iso8601_seconds("2026-11-24T21:00:00+01:00"), Some(1_795_550_400.0));
        assert_eq!(iso8601_seconds("2026-11-24T19:00-01:00"), Some(1_795_550_400.0));
        for bad in [
            "",
            "2026",
            "2026-13-01",
            "2026-11-24T25:00",
            "2026-11-24Tx",
            "2026-11-24T20:00:00Zjunk",
            "é",
        ] {
            assert_eq!(iso8601_seconds(bad), None, "{bad}");
        }
    }

    fn failed(status: u16, header: Option<&str>, fields: Vec<Raw>) -> Vec<String> {
        let a = Answer {
            status,
            error_header: header.map(String::from),
            error_fields: fields,
            ..Default::default()
        };
        match answered(&supabase(), 0, &a, None) {
            Next::Done(Err(Failure::Http { errors, .. })) => errors,
            other => panic!("{other:?}"),
        }
    }

    fn str(s: &str) -> Raw {
        Raw::Str(s.into())
    }

    #[test]
    fn gotrue_error_bodies_of_both_api_versions_and_the_oauth_shape_name_the_error() {
        // Initial API version: { code: 400, error_code, msg }: the numeric code is the status.
        assert_eq!(
            failed(400, None, vec![str("invalid_credentials"), Raw::Num(400.0)]),
            ["invalid_credentials"]
        );
        // 2024-01-01: { code: "...", message }.
        assert_eq!(
            failed(400, None, vec![Raw::Missing, str("refresh_token_already_used")]),
            ["refresh_token_already_used"]
        );
        // OAuth: { error, error_description }.
        assert_eq!(
            failed(400, None, vec![Raw::Missing, Raw::Missing, str("invalid_grant")]),
            ["invalid_grant"]
        );
        // A gateway's { message, hint }: nothing named.
        assert!(failed(401, None, vec![]).is_empty());
    }

    #[test]
    fn the_error_code_header_is_read_first() {
        assert_eq!(
            failed(400, Some("refresh_token_not_found"), vec![str("invalid_grant")]),
            ["refresh_token_not_found", "invalid_grant"]
        );
        // Header and body agree: once.
        assert_eq!(
            failed(
                400,
                Some("invalid_credentials"),
                vec![Raw::Missing, str("invalid_credentials")]
            ),
            ["invalid_credentials"]
        );
        // An empty header is no header.
        assert_eq!(failed(400, Some(" "), vec![str("bad_jwt")]), ["bad_jwt"]);
    }

    #[test]
    fn gotrue_requests_ask_for_api_version_2024_01_01_and_others_do_not() {
        let Step::Http(c) = first_step(&supabase(), Some(&secret("rt"))).unwrap() else {
            panic!()
        };
        assert_eq!(c.headers, &[("X-Supabase-Api-Version", "2024-01-01")]);
        assert_eq!(logout_call(&supabase(), &secret("at")).unwrap().headers, GOTRUE_HEADERS);
        let Step::Http(c) = first_step(&broker(), None).unwrap() else {
            panic!()
        };
        assert!(c.headers.is_empty());
    }

    #[test]
    fn failures_keep_every_error_string_and_callbacks_say_when_the_session_is_over() {
        let a = Answer {
            status: 400,
            error_fields: vec![Raw::Str("refresh_token_already_used".into())],
            ..Default::default()
        };
        assert_eq!(
            answered(&supabase(), 0, &a, None),
            Next::Done(Err(Failure::Http {
                status: 400,
                errors: vec!["refresh_token_already_used".into()]
            }))
        );
        let none = Answer {
            status: 200,
            empty: true,
            ..Default::default()
        };
        assert_eq!(
            answered(&SourceSpec::Callback, 0, &none, None),
            Next::Done(Err(Failure::Callback { gone: true }))
        );
        assert_eq!(
            callback_failure(&Raw::Num(401.0), &Raw::Missing),
            Failure::Callback { gone: true }
        );
        assert_eq!(
            callback_failure(&Raw::Missing, &Raw::Str("invalid_grant".into())),
            Failure::Callback { gone: true }
        );
        assert_eq!(
            callback_failure(&Raw::Num(503.0), &Raw::Missing),
            Failure::Callback { gone: false }
        );
    }

    #[test]
    fn logout_and_health_calls() {
        let c = logout_call(&supabase(), &secret("at")).unwrap();
        assert_eq!(c.url, "https://p.supabase.co/auth/v1/logout");
        assert_eq!(c.bearer.unwrap().expose(), "at");
        assert_eq!(logout_call(&broker(), &secret("at")), None);
        assert_eq!(
            health_call(&broker()).unwrap().url,
            "https://b.example/api/tokens/health"
        );
        assert!(healthy(Some((200, &Raw::Missing))));
        assert!(healthy(Some((200, &Raw::Str("healthy".into())))));
        assert!(!healthy(Some((200, &Raw::Str("degraded".into())))));
        assert!(!healthy(Some((503, &Raw::Missing))));
        assert!(!healthy(None));
    }

    #[test]
    fn a_published_session_carries_the_expiry_of_this_tabs_clock() {
        use crate::core::session::Origin;
        // The server's clock is an hour ahead of the browser's.
        let now = 1_800_000_000_000;
        let answer = Answer {
            status: 200,
            access_token: Raw::Str("opaque".into()),
            refresh_token: Raw::Str("r".into()),
            expires_in: Raw::Num(60.0),
            expires_at: Raw::Num(((now + 3_600_000) / 1000 + 60) as f64),
            ..Default::default()
        };
        let normalised = normalise(&answer);
        let issued = Session::from_raw(&normalised, now, Origin::Issued).unwrap();
        let published = to_publish(&normalised, &issued);
        // Another tab, same clock, reads it as handed over: the same expiry, not an hour later.
        let peer = Session::from_raw(&published, now + 50, Origin::HandedOver).unwrap();
        assert!(peer.expires_at_ms <= issued.expires_at_ms);
        assert!(peer.expires_at_ms + 1_000 >= issued.expires_at_ms);
        assert_eq!(published.refresh_token, Raw::Str("r".into()));
    }
}
