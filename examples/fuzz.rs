//! Mutation fuzzing of every parser that takes outside input: JSON documents (stored values, JWT
//! payloads), JWTs, sessions (Supabase JSON), server frames, URLs. Seeds come from `fuzz/corpus/`;
//! each input is a seed mutated by bit flips, byte edits, splices and dictionary tokens. A panic is
//! caught, its input saved to `target/fuzz-crashes/`, and the run fails.
//!
//! `cargo run --release --example fuzz -- [--iterations N] [--seed S]` (default 1,000,000 per target).

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use authwire::core::json::{self, Json};
use authwire::core::policy::Rng;
use authwire::core::protocol::{classify, Incoming};
use authwire::core::session::{Origin, RawSession, Session};
use authwire::core::token::decode_claims;
use authwire::core::url::{self, Kind};

const DICTIONARY: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"null",
    b"true",
    b"false",
    b"-0",
    b"1e999",
    b"\\u",
    b"\\ud83d",
    b"eyJ",
    b".",
    b"==",
    b"access_token",
    b"expires_at",
    b"expires_in",
    b"refresh_token",
    b"user",
    b"id",
    b"type",
    b"ack",
    b"error",
    b"message_id",
    b"token_expired",
    b"://",
    b"[::1]",
    b"127.0.0.1",
    b":65536",
    b"@",
    b"wss",
    b"http",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[rng.next_u32() as usize % seeds.len()].clone();
    let edits = 1 + rng.next_u32() % 8;
    for _ in 0..edits {
        let r = rng.next_u32();
        let at = if v.is_empty() {
            0
        } else {
            rng.next_u32() as usize % (v.len() + 1)
        };
        match r % 7 {
            0 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                v[i] ^= 1 << (rng.next_u32() % 8);
            }
            1 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                v.remove(i);
            }
            2 => v.insert(at, (rng.next_u32() & 0xff) as u8),
            3 => {
                let word = DICTIONARY[rng.next_u32() as usize % DICTIONARY.len()];
                v.splice(at..at, word.iter().copied());
            }
            4 => {
                let other = &seeds[rng.next_u32() as usize % seeds.len()];
                let from = rng.next_u32() as usize % (other.len() + 1);
                v.splice(at..at, other[from..].iter().copied());
            }
            5 if v.len() > 1 => {
                let cut = rng.next_u32() as usize % v.len();
                v.truncate(cut);
            }
            _ => {
                let n = (rng.next_u32() % 64) as usize;
                v.splice(at..at, std::iter::repeat_n(b'[', n));
            }
        }
    }
    v
}

fn load(dir: &str) -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(Path::new("fuzz/corpus").join(dir))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    if seeds.is_empty() {
        seeds.push(b"{}".to_vec());
    }
    seeds
}

/// The parsers, each fed arbitrary text. They must return, never panic.
fn run_target(name: &str, input: &str) {
    match name {
        "json" => {
            let _ = json::parse(input);
        }
        "jwt" => {
            let _ = decode_claims(input);
        }
        "session" => {
            if let Ok(v) = json::parse(input) {
                let raw = RawSession::from_json(&v);
                for origin in [Origin::HandedOver, Origin::Issued] {
                    if let Ok(s) = Session::from_raw(&raw, 1_763_900_000_000, origin) {
                        let _ = (s.expires_at_ms, s.lifetime_ms);
                    }
                }
            }
            let _ = Session::from_raw(&RawSession::bare(input), 1_763_900_000_000, Origin::HandedOver);
        }
        "frame" => {
            let v = json::parse(input).unwrap_or(Json::Null);
            let s = |k: &str| v.get(k).and_then(Json::as_str).map(str::to_owned);
            let _ = classify(&Incoming {
                kind: s("type"),
                code: s("code").or_else(|| s("error")),
                message_id: s("message_id"),
                session: s("session_id"),
            });
        }
        "url" => {
            for kind in [Kind::Http, Kind::Ws] {
                let _ = url::check(input, kind, false);
                let _ = url::check(input, kind, true);
            }
        }
        _ => unreachable!(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let iterations = flag("--iterations", 1_000_000);
    let seed = flag("--seed", 0x5eed);
    panic::set_hook(Box::new(|_| {}));
    let mut failed = 0;
    for name in ["json", "jwt", "session", "frame", "url"] {
        let seeds = load(name);
        let mut rng = Rng::new(seed ^ name.len() as u64);
        let mut panics = 0u64;
        let start = std::time::Instant::now();
        for i in 0..iterations {
            let bytes = mutate(&mut rng, &seeds);
            let input = String::from_utf8_lossy(&bytes).into_owned();
            if panic::catch_unwind(AssertUnwindSafe(|| run_target(name, &input))).is_err() {
                panics += 1;
                let _ = std::fs::create_dir_all("target/fuzz-crashes");
                let _ = std::fs::write(format!("target/fuzz-crashes/{name}-{i}"), &bytes);
            }
        }
        println!(
            "fuzz {name:8} {iterations} inputs, {panics} panics, {:.1} s",
            start.elapsed().as_secs_f64()
        );
        if panics > 0 {
            failed += 1;
        }
    }
    if failed > 0 {
        eprintln!("fuzz: {failed} target(s) panicked; inputs in target/fuzz-crashes/");
        std::process::exit(1);
    }
}
