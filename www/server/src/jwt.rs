//! HS256 JWTs, signed and verified with a per-process random secret.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Signs `claims` (a JSON object) as an HS256 JWT.
pub fn sign(secret: &[u8], claims: &serde_json::Value) -> String {
    let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = B64.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(input.as_bytes());
    let sig = B64.encode(mac.finalize().into_bytes());
    format!("{input}.{sig}")
}

/// A short, one-way fingerprint of a secret, for logs that must tell tokens apart without showing them.
pub fn fingerprint(secret: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(secret.as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not a JWT, or the signature does not match.
    Bad,
    /// Signed by us, but `exp` has passed.
    Expired,
    /// Signed by us and unexpired, but its session was signed out or revoked.
    Revoked,
}

/// Verifies signature and expiry (`now` in seconds); returns the claims.
pub fn verify(secret: &[u8], token: &str, now: u64) -> Result<serde_json::Value, Invalid> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(Invalid::Bad);
    };
    let sig = B64.decode(s).map_err(|_| Invalid::Bad)?;
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(h.as_bytes());
    mac.update(b".");
    mac.update(p.as_bytes());
    mac.verify_slice(&sig).map_err(|_| Invalid::Bad)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&B64.decode(p).map_err(|_| Invalid::Bad)?).map_err(|_| Invalid::Bad)?;
    let exp = claims
        .get("exp")
        .and_then(serde_json::Value::as_u64)
        .ok_or(Invalid::Bad)?;
    if now >= exp {
        return Err(Invalid::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies() {
        let secret = b"k";
        let t = sign(secret, &serde_json::json!({"sub": "u", "exp": 100}));
        assert_eq!(verify(secret, &t, 99).unwrap()["sub"], "u");
        assert_eq!(verify(secret, &t, 100), Err(Invalid::Expired));
        assert_eq!(verify(b"other", &t, 1), Err(Invalid::Bad));
        let mut forged = t.clone();
        forged.replace_range(t.len() - 3.., "AAA");
        assert_eq!(verify(secret, &forged, 1), Err(Invalid::Bad));
        assert_eq!(verify(secret, "x.y", 1), Err(Invalid::Bad));
    }
}
