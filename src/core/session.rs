//! The session model: what a Supabase `Session` object (or a bare JWT) becomes, and when it expires.
//!
//! The shell reads the fields off the JS object into a [`RawSession`] (no serde, no JSON text);
//! [`Session::from_raw`] validates them and works out the expiry on the local clock.

use std::fmt;

use super::json::Json;
use super::text;
use super::token::{decode_claims, Claims, ClaimsReader, JwtError, Secret};

/// One field as the shell found it on a JS object, before validation.
#[derive(Clone, PartialEq, Default)]
pub enum Raw {
    /// Absent or `undefined`.
    #[default]
    Missing,
    /// `null`.
    Null,
    /// A string.
    Str(String),
    /// A number.
    Num(f64),
    /// A boolean.
    Bool(bool),
    /// Anything else (object, array, function, ...), named by its JS type for messages.
    Other(&'static str),
}

impl fmt::Debug for Raw {
    // A Raw can hold a token: show only its type.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.type_name())
    }
}

impl Raw {
    /// The JS type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Raw::Missing => "undefined",
            Raw::Null => "null",
            Raw::Str(_) => "string",
            Raw::Num(_) => "number",
            Raw::Bool(_) => "boolean",
            Raw::Other(t) => t,
        }
    }
    /// `undefined` or `null`.
    pub fn is_absent(&self) -> bool {
        matches!(self, Raw::Missing | Raw::Null)
    }
    /// Converts a parsed JSON value (a stored session, a JSON response read natively).
    pub fn from_json(v: Option<&Json>) -> Raw {
        match v {
            None => Raw::Missing,
            Some(Json::Null) => Raw::Null,
            Some(Json::Bool(b)) => Raw::Bool(*b),
            Some(Json::Num(n)) => Raw::Num(*n),
            Some(Json::Str(s)) => Raw::Str(s.clone()),
            Some(Json::Arr(_)) => Raw::Other("array"),
            Some(Json::Obj(_)) => Raw::Other("object"),
        }
    }
}

/// The fields of a Supabase `Session` (`user` reduced to `user.id`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawSession {
    /// `access_token`
    pub access_token: Raw,
    /// `refresh_token`
    pub refresh_token: Raw,
    /// `expires_at`, seconds since the epoch
    pub expires_at: Raw,
    /// `expires_in`, seconds from issue
    pub expires_in: Raw,
    /// `token_type`
    pub token_type: Raw,
    /// `user.id`
    pub user_id: Raw,
}

impl RawSession {
    /// A bare JWT handed over instead of a session object.
    pub fn bare(token: &str) -> Self {
        RawSession {
            access_token: Raw::Str(token.to_owned()),
            ..Default::default()
        }
    }
    /// Reads a session from parsed JSON (e.g. a stored value).
    pub fn from_json(v: &Json) -> Self {
        RawSession {
            access_token: Raw::from_json(v.get("access_token")),
            refresh_token: Raw::from_json(v.get("refresh_token")),
            expires_at: Raw::from_json(v.get("expires_at")),
            expires_in: Raw::from_json(v.get("expires_in")),
            token_type: Raw::from_json(v.get("token_type")),
            user_id: Raw::from_json(v.get("user").and_then(|u| u.get("id"))),
        }
    }
}

/// Where a session came from, which decides how far its times are trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Handed over by the app (it may have been issued long ago, e.g. restored from storage):
    /// `expires_at` is the truth, capped by `expires_in` from now when the local clock runs behind.
    HandedOver,
    /// Just received from a token endpoint: `expires_in` counted from receipt is the truth,
    /// whatever the local clock says (clock skew cannot make it look expired).
    Issued,
}

/// Why a session was refused. Names the field; never contains a token.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionError {
    /// The field at fault, e.g. `access_token`.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What is wrong with a session field.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// Required and absent.
    Missing,
    /// Present with the wrong JS type (the type found).
    WrongType(&'static str, &'static str),
    /// A string that is empty or holds white space or control characters.
    BadText,
    /// A string longer than [`MAX_TOKEN_BYTES`].
    TooLong,
    /// A number that is negative, zero where it may not be, or not finite.
    BadNumber,
    /// The JWT could not be read when its `exp` was needed.
    Jwt(JwtError),
    /// No expiry anywhere: no `expires_at`, no `expires_in`, no JWT `exp`.
    NoExpiry,
}

impl SessionError {
    /// The error's message: the field and what is wrong with it (never the field's value).
    pub fn message(&self) -> String {
        let jwt;
        let max;
        let what: &[&str] = match &self.problem {
            Problem::Missing => &["is missing"],
            Problem::WrongType(want, got) => &["must be a ", want, ", got ", got],
            Problem::BadText => {
                &["must be a non-empty string of printable ASCII (no spaces, controls or other characters)"]
            }
            Problem::TooLong => {
                max = text::dec(MAX_TOKEN_BYTES as u64);
                &["is longer than ", &max, " bytes"]
            }
            Problem::BadNumber => &["must be a positive finite number"],
            Problem::Jwt(e) => {
                jwt = e.message();
                &[&jwt, ", and no expires_at or expires_in says when it expires"]
            }
            Problem::NoExpiry => &["has no exp claim, and no expires_at or expires_in says when it expires"],
        };
        text::cat(&["session.", self.field, " ", &text::cat(what)])
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

/// A validated session. Times are ms since the epoch on the local clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The access token.
    pub access: Secret,
    /// The refresh token, when there is one.
    pub refresh: Option<Secret>,
    /// When the access token expires, local clock.
    pub expires_at_ms: u64,
    /// How long the token lives in all (drives the refresh lead).
    pub lifetime_ms: u64,
    /// `token_type`, usually `bearer`.
    pub token_type: String,
    /// `user.id`, else the JWT `sub`.
    pub user_id: Option<String>,
}

/// The longest token accepted (access or refresh). Issuers' JWTs are 1-10 KB; servers commonly
/// refuse request headers past 8-16 KB, and every chat frame carries the token.
pub const MAX_TOKEN_BYTES: usize = 32 * 1024;

fn text(field: &'static str, raw: &Raw, required: bool) -> Result<Option<String>, SessionError> {
    match raw {
        r if r.is_absent() => {
            if required {
                Err(SessionError {
                    field,
                    problem: Problem::Missing,
                })
            } else {
                Ok(None)
            }
        }
        // Tokens travel in HTTP headers and JSON frames: printable ASCII only (JWTs and RFC 6750
        // tokens are). A lone UTF-16 surrogate reaches here as U+FFFD and is refused with the rest.
        Raw::Str(s) if s.len() > MAX_TOKEN_BYTES => Err(SessionError {
            field,
            problem: Problem::TooLong,
        }),
        Raw::Str(s) if s.is_empty() || !s.bytes().all(|b| b.is_ascii_graphic()) => Err(SessionError {
            field,
            problem: Problem::BadText,
        }),
        Raw::Str(s) => Ok(Some(s.clone())),
        other => Err(SessionError {
            field,
            problem: Problem::WrongType("string", other.type_name()),
        }),
    }
}

fn seconds(field: &'static str, raw: &Raw) -> Result<Option<f64>, SessionError> {
    match raw {
        r if r.is_absent() => Ok(None),
        Raw::Num(n) if n.is_finite() && *n >= 0.0 => Ok(Some(*n)),
        Raw::Num(_) => Err(SessionError {
            field,
            problem: Problem::BadNumber,
        }),
        other => Err(SessionError {
            field,
            problem: Problem::WrongType("number", other.type_name()),
        }),
    }
}

/// Issuers round the JWT `exp` down to whole seconds (GoTrue: `exp = floor(now) + expires_in`),
/// so a token can expire up to a second before `receipt + expires_in`: a whole-second
/// `expires_in` is counted one second short (never below half of it).
pub const ROUNDING_MS: u64 = 1_000;

fn counted_from_receipt(secs: f64) -> u64 {
    let full = ms(secs);
    if secs.fract() == 0.0 {
        full.saturating_sub(ROUNDING_MS).max(full / 2)
    } else {
        full
    }
}

fn ms(secs: f64) -> u64 {
    // Saturating float-to-int: no panic on huge values.
    (secs * 1000.0) as u64
}

impl Session {
    /// Validates a raw session received at `now_ms` and works out its expiry:
    /// `expires_at`, else `expires_in` from receipt, else the JWT `exp`; see [`Origin`] for skew.
    pub fn from_raw(raw: &RawSession, now_ms: u64, origin: Origin) -> Result<Session, SessionError> {
        Self::from_raw_with(raw, now_ms, origin, decode_claims)
    }

    /// [`Session::from_raw`] with the JWT payload read by `claims` (the shell passes one that
    /// parses with the browser's JSON; see [`ClaimsReader`]).
    pub fn from_raw_with(
        raw: &RawSession,
        now_ms: u64,
        origin: Origin,
        claims: ClaimsReader,
    ) -> Result<Session, SessionError> {
        let access = text("access_token", &raw.access_token, true)?.unwrap_or_default();
        let refresh = text("refresh_token", &raw.refresh_token, false)?;
        let token_type = text("token_type", &raw.token_type, false)?.unwrap_or_else(|| "bearer".to_owned());
        let user_id = match &raw.user_id {
            Raw::Str(s) if !s.is_empty() => Some(s.clone()),
            r if r.is_absent() => None,
            other => {
                return Err(SessionError {
                    field: "user.id",
                    problem: Problem::WrongType("string", other.type_name()),
                })
            }
        };
        // An `expires_at` within the first second of the epoch is never a real expiry (a 0 standing
        // for a missing value, a time in ms divided twice): refused rather than read as "expired".
        let at = match seconds("expires_at", &raw.expires_at)? {
            Some(t) if t < 1.0 => {
                return Err(SessionError {
                    field: "expires_at",
                    problem: Problem::BadNumber,
                })
            }
            t => t.map(ms),
        };
        let inn = seconds("expires_in", &raw.expires_in)?.map(counted_from_receipt);
        // The JWT is read only when needed for the expiry; otherwise a failure to read it is not an error.
        let needs_jwt = at.is_none() && inn.is_none();
        let claims = match claims(&access) {
            Ok(c) => c,
            Err(e) if needs_jwt => {
                return Err(SessionError {
                    field: "access_token",
                    problem: Problem::Jwt(e),
                })
            }
            Err(_) => Claims::default(),
        };
        let from_in = inn.map(|d| now_ms.saturating_add(d));
        // What the JWT itself says. Handed over: its `exp` (server clock, as `expires_at` is), its
        // lifetime counted from now when it was issued "in the future" (the local clock runs behind).
        // Just issued: only its lifetime (`exp - iat`) from receipt, which no clock skew distorts.
        let jwt_at = claims.exp.map(ms).and_then(|exp| match (origin, claims.iat.map(ms)) {
            (Origin::HandedOver, Some(iat)) if iat > now_ms && exp > iat => {
                Some(exp.min(now_ms.saturating_add(exp - iat)))
            }
            (Origin::HandedOver, _) => Some(exp),
            (Origin::Issued, Some(iat)) if exp > iat => Some(now_ms.saturating_add(exp - iat)),
            (Origin::Issued, _) => None,
        });
        let stated = match (origin, at, from_in) {
            (Origin::Issued, _, Some(t)) => Some(t),
            (Origin::HandedOver, Some(a), Some(t)) => Some(a.min(t)),
            (_, Some(a), None) => Some(a),
            (_, None, t) => t,
        };
        // The token's own expiry caps whatever the session object states: a session claiming the
        // year 3000 for a JWT that expires in a minute must not put that JWT on the wire after it.
        let expires_at_ms = match (stated, jwt_at) {
            (Some(s), Some(j)) => s.min(j),
            (Some(s), None) => s,
            (None, Some(j)) => j,
            (None, None) => {
                return Err(SessionError {
                    field: "access_token",
                    problem: Problem::NoExpiry,
                })
            }
        };
        let lifetime_ms = match (inn, claims.exp, claims.iat) {
            (Some(d), _, _) => d,
            (None, Some(exp), Some(iat)) if exp > iat => ms(exp - iat),
            _ => expires_at_ms.saturating_sub(now_ms),
        };
        let user_id = user_id.or(claims.sub);
        Ok(Session {
            access: crate::core::token::Secret::new(access),
            refresh: refresh.map(Secret::new),
            expires_at_ms,
            lifetime_ms,
            token_type,
            user_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::token::fake_jwt;

    const NOW: u64 = 1_763_900_000_000; // ms

    fn supabase(at: Option<f64>, inn: Option<f64>) -> RawSession {
        RawSession {
            access_token: Raw::Str(fake_jwt(r#"{"sub":"jwt-sub","exp":1763903600,"iat":1763900000}"#)),
            refresh_token: Raw::Str("r1".into()),
            expires_at: at.map_or(Raw::Missing, Raw::Num),
            expires_in: inn.map_or(Raw::Missing, Raw::Num),
            token_type: Raw::Str("bearer".into()),
            user_id: Raw::Str("user-1".into()),
        }
    }

    #[test]
    fn expiry_prefers_expires_at_then_expires_in_then_jwt_exp() {
        let s = Session::from_raw(&supabase(Some(1_763_901_000.0), None), NOW, Origin::HandedOver).unwrap();
        assert_eq!(s.expires_at_ms, 1_763_901_000_000);
        let s = Session::from_raw(&supabase(None, Some(600.0)), NOW, Origin::HandedOver).unwrap();
        assert_eq!(
            s.expires_at_ms,
            NOW + 599_000,
            "whole seconds from receipt, less the issuer's rounding"
        );
        assert_eq!(s.lifetime_ms, 599_000);
        let s = Session::from_raw(&supabase(None, None), NOW, Origin::HandedOver).unwrap();
        assert_eq!(s.expires_at_ms, 1_763_903_600_000);
        assert_eq!(s.lifetime_ms, 3_600_000, "lifetime from exp - iat");
        assert_eq!(s.user_id.as_deref(), Some("user-1"));
        assert_eq!(s.refresh.as_ref().map(Secret::expose), Some("r1"));
    }

    #[test]
    fn a_bare_jwt_is_a_session_with_its_exp_and_sub() {
        let jwt = fake_jwt(r#"{"sub":"abc","exp":1763900020,"iat":1763900000}"#);
        let s = Session::from_raw(&RawSession::bare(&jwt), NOW, Origin::HandedOver).unwrap();
        assert_eq!(s.expires_at_ms, NOW + 20_000);
        assert_eq!(s.lifetime_ms, 20_000);
        assert_eq!(s.user_id.as_deref(), Some("abc"));
        assert_eq!(s.refresh, None);
        assert_eq!(s.token_type, "bearer");
    }

    #[test]
    fn clock_behind_the_server_is_capped_by_expires_in() {
        // Local clock 10 minutes behind: expires_at looks 70 minutes away for a 60-minute token.
        let behind = NOW - 600_000;
        let s = Session::from_raw(
            &supabase(Some(1_763_903_600.0), Some(3600.0)),
            behind,
            Origin::HandedOver,
        )
        .unwrap();
        assert_eq!(s.expires_at_ms, behind + 3_599_000);
        // Bare JWT issued "in the future" by the local clock: lifetime counted from now.
        let jwt = fake_jwt(r#"{"exp":1763903600,"iat":1763900000}"#);
        let s = Session::from_raw(&RawSession::bare(&jwt), behind, Origin::HandedOver).unwrap();
        assert_eq!(s.expires_at_ms, behind + 3_600_000);
    }

    #[test]
    fn clock_ahead_of_the_server_does_not_make_a_fresh_token_look_expired() {
        // Local clock 2 hours ahead: by expires_at the fresh token expired an hour ago.
        let ahead = NOW + 7_200_000;
        let raw = supabase(Some(1_763_903_600.0), Some(3600.0));
        let s = Session::from_raw(&raw, ahead, Origin::Issued).unwrap();
        assert_eq!(
            s.expires_at_ms,
            ahead + 3_599_000,
            "a just-issued session counts expires_in from receipt"
        );
        // Handed over, the same session is taken at its word (it may really be old).
        let s = Session::from_raw(&raw, ahead, Origin::HandedOver).unwrap();
        assert!(s.expires_at_ms < ahead);
    }

    #[test]
    fn bad_fields_name_the_field_and_never_the_token() {
        let cases: Vec<(RawSession, &str)> = vec![
            (RawSession::default(), "session.access_token is missing"),
            (
                RawSession {
                    access_token: Raw::Num(1.0),
                    ..Default::default()
                },
                "session.access_token must be a string, got number",
            ),
            (
                RawSession {
                    access_token: Raw::Other("object"),
                    ..Default::default()
                },
                "session.access_token must be a string, got object",
            ),
            (
                RawSession {
                    access_token: Raw::Str(String::new()),
                    ..Default::default()
                },
                "non-empty",
            ),
            (
                RawSession::bare("not-a-jwt-secret"),
                "session.access_token is not a JWT",
            ),
            (RawSession::bare(&fake_jwt(r#"{"sub":"x"}"#)), "no exp claim"),
            (
                RawSession {
                    expires_at: Raw::Str("soon".into()),
                    ..supabase(None, None)
                },
                "session.expires_at must be a number, got string",
            ),
            (
                RawSession {
                    expires_in: Raw::Num(-5.0),
                    ..supabase(None, None)
                },
                "session.expires_in must be a positive",
            ),
            (
                RawSession {
                    expires_in: Raw::Num(f64::NAN),
                    ..supabase(None, None)
                },
                "session.expires_in must be a positive",
            ),
            (
                RawSession {
                    refresh_token: Raw::Bool(true),
                    ..supabase(None, None)
                },
                "session.refresh_token must be a string, got boolean",
            ),
            (
                RawSession {
                    user_id: Raw::Num(3.0),
                    ..supabase(None, None)
                },
                "session.user.id must be a string",
            ),
        ];
        for (raw, want) in cases {
            let e = Session::from_raw(&raw, NOW, Origin::HandedOver).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(want), "{msg:?} should contain {want:?}");
            assert!(!msg.contains("eyJ") && !msg.contains("secret"), "{msg}");
        }
    }

    #[test]
    fn whole_second_lifetimes_allow_for_the_issuers_rounding() {
        // Issued at server time 100.9 s with expires_in 5: the JWT says exp = 105, 4.1 s later.
        let raw = RawSession {
            expires_in: Raw::Num(5.0),
            ..RawSession::bare("opaque")
        };
        let s = Session::from_raw(&raw, NOW, Origin::Issued).unwrap();
        assert_eq!(s.expires_at_ms, NOW + 4_000);
        let raw = RawSession {
            expires_in: Raw::Num(1.0),
            ..RawSession::bare("opaque")
        };
        assert_eq!(
            Session::from_raw(&raw, NOW, Origin::Issued).unwrap().expires_at_ms,
            NOW + 500,
            "never below half"
        );
    }

    #[test]
    fn an_undecodable_jwt_is_fine_when_expiry_is_given() {
        let raw = RawSession {
            expires_in: Raw::Num(60.5),
            ..RawSession::bare("opaque-token")
        };
        let s = Session::from_raw(&raw, NOW, Origin::Issued).unwrap();
        assert_eq!(
            s.expires_at_ms,
            NOW + 60_500,
            "fractional seconds were not rounded: taken as they are"
        );
        assert_eq!(s.user_id, None);
    }

    #[test]
    fn reads_a_stored_session_from_json() {
        let json = crate::core::json::parse(r#"{"access_token":"a.b.c","refresh_token":"r","expires_at":1763900300,"expires_in":3600,"user":{"id":"u9"}}"#).unwrap();
        let s = Session::from_raw(&RawSession::from_json(&json), NOW, Origin::HandedOver).unwrap();
        assert_eq!(s.expires_at_ms, NOW + 300_000);
        assert_eq!(s.user_id.as_deref(), Some("u9"));
    }

    #[test]
    fn the_jwt_exp_caps_a_session_that_claims_the_year_3000() {
        // expires_at in the year 3000, the JWT expiring an hour after NOW.
        let s = Session::from_raw(&supabase(Some(32_503_680_000.0), None), NOW, Origin::HandedOver).unwrap();
        assert_eq!(s.expires_at_ms, 1_763_903_600_000, "the JWT's exp, not the year 3000");
        // Just issued with a huge expires_in: the JWT's own lifetime from receipt caps it.
        let s = Session::from_raw(&supabase(None, Some(1e12)), NOW, Origin::Issued).unwrap();
        assert_eq!(s.expires_at_ms, NOW + 3_600_000);
        // An opaque token is taken at its word, saturating rather than overflowing.
        let raw = RawSession {
            expires_at: Raw::Num(1e300),
            ..RawSession::bare("opaque-token")
        };
        assert_eq!(
            Session::from_raw(&raw, NOW, Origin::HandedOver).unwrap().expires_at_ms,
            u64::MAX
        );
        // 1970: one second after the epoch is a (long) expired session, zero is refused.
        let s = Session::from_raw(&supabase(Some(1.0), None), NOW, Origin::HandedOver).unwrap();
        assert_eq!(s.expires_at_ms, 1_000);
        let e = Session::from_raw(&supabase(Some(0.0), None), NOW, Origin::HandedOver).unwrap_err();
        assert_eq!(e.field, "expires_at");
    }

    #[test]
    fn tokens_are_printable_ascii_of_bounded_length() {
        let with = |access: String, refresh: String| RawSession {
            access_token: Raw::Str(access),
            refresh_token: Raw::Str(refresh),
            expires_in: Raw::Num(60.0),
            ..Default::default()
        };
        let ok = "a".repeat(MAX_TOKEN_BYTES);
        assert!(Session::from_raw(&with(ok.clone(), "r".into()), NOW, Origin::Issued).is_ok());
        let e = Session::from_raw(&with(format!("{ok}a"), "r".into()), NOW, Origin::Issued).unwrap_err();
        assert_eq!(
            (e.field, e.to_string()),
            ("access_token", "session.access_token is longer than 32768 bytes".into())
        );
        let e = Session::from_raw(&with("a".into(), "r".repeat(1 << 20)), NOW, Origin::Issued).unwrap_err();
        assert_eq!((e.field, &e.problem), ("refresh_token", &Problem::TooLong));
        // A lone surrogate arrives as U+FFFD; any non-ASCII character is refused, named, never echoed.
        for bad in ["tok\u{FFFD}en", "t\u{e9}", "a b", "a\u{7f}"] {
            let e = Session::from_raw(&with(bad.into(), "r".into()), NOW, Origin::Issued).unwrap_err();
            assert_eq!((e.field, &e.problem), ("access_token", &Problem::BadText), "{bad:?}");
            assert!(!e.to_string().contains(bad));
        }
    }
}
