//! Secrets and JWTs: a string type that never shows itself, and a JWT payload reader.
//!
//! Only the claims the SDK needs are read (`exp`, `iat`, `sub`); the signature is the
//! server's business and is not checked here.

use std::fmt;

use super::json::{self, Json};
use super::session::Raw;
use super::text;

/// A secret string (an access or refresh token). `Debug` and `Display` print
/// `[redacted]`; the only way to the text is [`Secret::expose`], used where the
/// token goes on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Secret(token.into())
    }
    /// The token text, for writing it into a request or a frame.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The claims of a JWT payload that the SDK uses. Times are seconds since the epoch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Claims {
    /// `exp`: expiry.
    pub exp: Option<f64>,
    /// `iat`: issued at.
    pub iat: Option<f64>,
    /// `sub`: the user id.
    pub sub: Option<String>,
}

/// Why a token is not a readable JWT. Never carries the token's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtError {
    /// Not three dot-separated parts.
    NotThreeParts,
    /// The payload part is not base64url.
    BadBase64,
    /// The payload is not a JSON object.
    BadPayload,
    /// A claim has the wrong type (`exp`/`iat` not a number, `sub` not a string).
    BadClaim(&'static str),
}

impl JwtError {
    /// What is wrong, after the field's name ("session.access_token …").
    pub fn message(&self) -> String {
        match self {
            JwtError::NotThreeParts => "is not a JWT (expected three dot-separated parts)".into(),
            JwtError::BadBase64 => "has a JWT payload that is not base64url".into(),
            JwtError::BadPayload => "has a JWT payload that is not a JSON object".into(),
            JwtError::BadClaim(c) => text::cat(&["has a JWT `", c, "` claim of the wrong type"]),
        }
    }
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

/// A JWT payload reader: [`decode_claims`] (the core's own JSON parser) or the shell's, which
/// parses with the browser's `JSON.parse` and applies [`claims_of`] (the wasm then carries no
/// JSON parser of its own).
pub type ClaimsReader = fn(&str) -> Result<Claims, JwtError>;

/// Reads `exp`, `iat` and `sub` from a JWT's payload.
pub fn decode_claims(jwt: &str) -> Result<Claims, JwtError> {
    let text = payload_text(jwt)?;
    let v = json::parse(&text).map_err(|_| JwtError::BadPayload)?;
    if !matches!(v, Json::Obj(_)) {
        return Err(JwtError::BadPayload);
    }
    claims_of(|k| Raw::from_json(v.get(k)))
}

/// The payload of a JWT as text: three dot-separated parts, the middle one base64url of UTF-8.
pub fn payload_text(jwt: &str) -> Result<String, JwtError> {
    let mut parts = jwt.split('.');
    let (Some(_header), Some(payload), Some(_sig), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::NotThreeParts);
    };
    let bytes = base64url_decode(payload).ok_or(JwtError::BadBase64)?;
    String::from_utf8(bytes).map_err(|_| JwtError::BadPayload)
}

/// The claims of a payload that is a JSON object, from its fields as `get` reads them: `exp` and
/// `iat` finite numbers, `sub` a string, each absent or `null` when not given.
pub fn claims_of(get: impl Fn(&str) -> Raw) -> Result<Claims, JwtError> {
    let num = |k: &'static str| match get(k) {
        Raw::Missing | Raw::Null => Ok(None),
        Raw::Num(n) if n.is_finite() => Ok(Some(n)),
        _ => Err(JwtError::BadClaim(k)),
    };
    let sub = match get("sub") {
        Raw::Missing | Raw::Null => None,
        Raw::Str(s) => Some(s),
        _ => return Err(JwtError::BadClaim("sub")),
    };
    Ok(Claims {
        exp: num("exp")?,
        iat: num("iat")?,
        sub,
    })
}

/// Decodes base64url (also the standard alphabet), with or without `=` padding.
pub fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Encodes base64url without padding (the JWT alphabet). Used by tests and fixtures.
pub fn base64url_encode(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
pub(crate) fn fake_jwt(payload: &str) -> String {
    format!("eyJhbGciOiJIUzI1NiJ9.{}.c2ln", base64url_encode(payload.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug_and_display() {
        let s = Secret::new("eyJhbGciOi.very-secret.sig");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert!(!format!("{:?}", Some(&s)).contains("very-secret"));
        assert_eq!(s.expose(), "eyJhbGciOi.very-secret.sig");
    }

    #[test]
    fn base64url_round_trips_every_length() {
        for n in 0..40u8 {
            let bytes: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37).wrapping_add(250)).collect();
            let enc = base64url_encode(&bytes);
            assert!(!enc.contains(['+', '/', '=']));
            assert_eq!(base64url_decode(&enc).unwrap(), bytes);
        }
        assert_eq!(base64url_decode("aGk=").unwrap(), b"hi");
        assert!(base64url_decode("a").is_none());
        assert!(base64url_decode("a*bc").is_none());
    }

    #[test]
    fn decodes_the_claims_of_a_supabase_token() {
        let jwt = fake_jwt(
            r#"{"aud":"authenticated","exp":1763900000,"iat":1763896400,"sub":"8f1c-user","role":"authenticated"}"#,
        );
        let c = decode_claims(&jwt).unwrap();
        assert_eq!(
            c,
            Claims {
                exp: Some(1_763_900_000.0),
                iat: Some(1_763_896_400.0),
                sub: Some("8f1c-user".into())
            }
        );
    }

    #[test]
    fn rejects_what_is_not_a_jwt() {
        assert_eq!(decode_claims("opaque-token"), Err(JwtError::NotThreeParts));
        assert_eq!(decode_claims("a.b.c.d"), Err(JwtError::NotThreeParts));
        assert_eq!(decode_claims("a.%%%.c"), Err(JwtError::BadBase64));
        assert_eq!(
            decode_claims(&format!("a.{}.c", base64url_encode(b"[1]"))),
            Err(JwtError::BadPayload)
        );
        assert_eq!(
            decode_claims(&format!("a.{}.c", base64url_encode(b"{\"exp\":"))),
            Err(JwtError::BadPayload)
        );
        assert_eq!(
            decode_claims(&fake_jwt(r#"{"exp":"soon"}"#)),
            Err(JwtError::BadClaim("exp"))
        );
        assert_eq!(decode_claims(&fake_jwt(r#"{"sub":7}"#)), Err(JwtError::BadClaim("sub")));
        // A payload that is valid base64 but not UTF-8.
        assert_eq!(
            decode_claims(&format!("a.{}.c", base64url_encode(&[0xff, 0xfe]))),
            Err(JwtError::BadPayload)
        );
    }

    #[test]
    fn errors_never_echo_the_token() {
        let jwt = "secret-part-1.secret-part-2";
        let e = decode_claims(jwt).unwrap_err();
        assert!(!format!("{e} {e:?}").contains("secret"));
    }
}
