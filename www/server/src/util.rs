//! Small helpers every route module uses: clocks, randomness, ids. Depends on nothing in the crate.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use sha2::{Digest, Sha256};

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

/// `bytes` random bytes, base64url.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).expect("the OS random source is available");
    B64.encode(buf)
}

/// A stable UUID-shaped user id for an email.
pub fn user_id(email: &str) -> String {
    uuid_text(&Sha256::digest(email.as_bytes()))
}

/// The first 16 bytes of `b` written as a UUID (`8-4-4-4-12` lowercase hex).
pub fn uuid_text(b: &[u8]) -> String {
    let x: String = b.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// The first 8 characters of an id, for logs.
pub fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// The bearer token of a request.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ")
}
