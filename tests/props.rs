//! Property tests of the parsers of outside input (native): arbitrary text and structured JSON
//! never panic, and what parses keeps its meaning. `scripts/fuzz.sh` adds a million mutated inputs
//! per parser; these run in `cargo test`.
//!
//! The structured generators build the expected value alongside the text, so a property can
//! compare what was parsed with what was written, and their object keys are often exactly the
//! names the SDK reads (`access_token`, `refresh_token`, `exp`, ...), or near misses of them.
#![cfg(not(target_arch = "wasm32"))]

use authwire::core::json::{self, Json};
use authwire::core::session::{Origin, Raw, RawSession, Session};
use authwire::core::token::{base64url_decode, base64url_encode, decode_claims};
use authwire::core::url::{self, Kind};
use proptest::prelude::*;

/// Names the SDK reads from sessions and JWT payloads, and near misses that must not count as them.
const SENSITIVE_KEYS: &[&str] = &[
    "access_token",
    "refresh_token",
    "expires_at",
    "expires_in",
    "token_type",
    "user",
    "id",
    "exp",
    "iat",
    "sub",
    "provider_token",
    "provider_refresh_token",
    "token",
];
const NEAR_MISSES: &[&str] = &[
    "Access_token",
    "access_token ",
    "accesstoken",
    "refresh-token",
    "EXP",
    "expires",
];

/// One character written into a JSON string literal in one of the ways the grammar allows
/// (`style` picks among them): raw, a short escape, or `\uXXXX` (a surrogate pair above U+FFFF).
fn encode_char(c: char, style: u8, out: &mut String) {
    let hex = |cp: u32, out: &mut String| {
        if style & 2 == 0 {
            out.push_str(&format!("\\u{cp:04x}"));
        } else {
            out.push_str(&format!("\\u{cp:04X}"));
        }
    };
    let unicode = |c: char, out: &mut String| {
        let mut units = [0u16; 2];
        for u in c.encode_utf16(&mut units) {
            hex(u32::from(*u), out);
        }
    };
    let short = match c {
        '"' => Some("\\\""),
        '\\' => Some("\\\\"),
        '/' => Some("\\/"),
        '\u{8}' => Some("\\b"),
        '\u{c}' => Some("\\f"),
        '\n' => Some("\\n"),
        '\r' => Some("\\r"),
        '\t' => Some("\\t"),
        _ => None,
    };
    let must_escape = c == '"' || c == '\\' || (c as u32) < 0x20;
    match (style % 3, short) {
        (0, _) if !must_escape => out.push(c),
        (1, Some(s)) => out.push_str(s),
        (1, None) if !must_escape => out.push(c),
        _ => unicode(c, out),
    }
}

fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::char::range('a', 'z'),
        1 => Just('"'),
        1 => Just('\\'),
        1 => Just('/'),
        1 => prop::char::range('\u{0}', '\u{1f}'),
        1 => prop::sample::select(vec!['é', '😀', '\u{2028}', '\u{7f}', '\u{fffd}', '中', ' ']),
        1 => any::<char>(),
    ]
}

/// A string and its JSON literal (quotes included), written with mixed escapes.
fn json_string(
    chars: impl Strategy<Value = char>,
    len: std::ops::Range<usize>,
) -> impl Strategy<Value = (String, String)> {
    prop::collection::vec((chars, any::<u8>()), len).prop_map(|cs| {
        let mut text = String::from("\"");
        let mut value = String::new();
        for (c, style) in cs {
            value.push(c);
            encode_char(c, style, &mut text);
        }
        text.push('"');
        (value, text)
    })
}

/// An object key: often exactly a name the SDK reads, sometimes a near miss, else anything.
fn json_key() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        3 => prop::sample::select(SENSITIVE_KEYS).prop_flat_map(|k| {
            // Exactly the name, though possibly written with escapes.
            prop::collection::vec(any::<u8>(), k.len()).prop_map(move |styles| {
                let mut text = String::from("\"");
                for (c, s) in k.chars().zip(styles) {
                    encode_char(c, if s % 4 == 0 { 2 } else { 0 }, &mut text);
                }
                text.push('"');
                (k.to_string(), text)
            })
        }),
        1 => prop::sample::select(NEAR_MISSES).prop_map(|k| (k.to_string(), format!("\"{k}\""))),
        2 => json_string(prop_oneof![prop::char::range('a', 'z'), Just('_')], 1..13),
        1 => json_string(any_char(), 0..6),
    ]
}

/// White space the grammar allows between tokens.
fn ws() -> impl Strategy<Value = String> {
    "[ \t\n\r]{0,2}"
}

/// A number's text and its value: integers within ±2^53 (read exactly), or decimals with an
/// optional exponent (read closely).
fn json_number() -> impl Strategy<Value = (Json, String)> {
    const EXACT: i64 = 1 << 53;
    prop_oneof![
        (-EXACT..=EXACT).prop_map(|n| (Json::Num(n as f64), n.to_string())),
        (
            any::<bool>(),
            any::<u32>(),
            prop::option::of("[0-9]{1,6}"),
            prop::option::of((
                prop::sample::select(vec!["e", "E"]),
                prop::sample::select(vec!["", "+", "-"]),
                0u8..20
            )),
        )
            .prop_map(|(neg, int, frac, exp)| {
                let mut t = String::new();
                if neg {
                    t.push('-');
                }
                t.push_str(&int.to_string());
                if let Some(f) = frac {
                    t.push('.');
                    t.push_str(&f);
                }
                if let Some((e, sign, n)) = exp {
                    t.push_str(&format!("{e}{sign}{n}"));
                }
                (Json::Num(t.parse::<f64>().unwrap()), t)
            }),
    ]
}

fn json_leaf() -> impl Strategy<Value = (Json, String)> {
    prop_oneof![
        Just((Json::Null, "null".to_string())),
        any::<bool>().prop_map(|b| (Json::Bool(b), b.to_string())),
        json_number(),
        json_string(any_char(), 0..10).prop_map(|(v, t)| (Json::Str(v), t)),
    ]
}

/// Any JSON document and the value it denotes.
fn json_doc() -> impl Strategy<Value = (Json, String)> {
    json_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec((ws(), inner.clone(), ws()), 0..5).prop_map(|items| {
                let text = items
                    .iter()
                    .map(|(a, (_, t), b)| format!("{a}{t}{b}"))
                    .collect::<Vec<_>>()
                    .join(",");
                (
                    Json::Arr(items.into_iter().map(|(_, (v, _), _)| v).collect()),
                    format!("[{text}]"),
                )
            }),
            json_object(inner),
        ]
    })
}

fn json_object(values: impl Strategy<Value = (Json, String)>) -> impl Strategy<Value = (Json, String)> {
    prop::collection::vec((ws(), json_key(), ws(), values), 0..6).prop_map(|members| {
        let text = members
            .iter()
            .map(|(a, (_, k), b, (_, v))| format!("{a}{k}{b}:{b}{v}{a}"))
            .collect::<Vec<_>>()
            .join(",");
        let value = Json::Obj(members.into_iter().map(|(_, (k, _), _, (v, _))| (k, v)).collect());
        (value, format!("{{{text}}}"))
    })
}

/// Structural equality; numbers equal, or within a relative 1e-12 (the reader computes decimals
/// without a float parser: close, and exact for integers up to 2^53, which `json_number` checks).
fn same(got: &Json, want: &Json) -> bool {
    match (got, want) {
        (Json::Null, Json::Null) => true,
        (Json::Bool(a), Json::Bool(b)) => a == b,
        (Json::Num(a), Json::Num(b)) => a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs()),
        (Json::Str(a), Json::Str(b)) => a == b,
        (Json::Arr(a), Json::Arr(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y)),
        (Json::Obj(a), Json::Obj(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
        }
        _ => false,
    }
}

/// A token-like secret: long and distinctive enough that finding it in a message is a leak.
fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{12,24}".prop_map(|s| format!("sEcReT{s}"))
}

/// A JWT whose payload is `claims` (header and signature are not read).
fn jwt(claims: &str) -> String {
    format!("eyJhbGciOiJIUzI1NiJ9.{}.c2ln", base64url_encode(claims.as_bytes()))
}

/// A value for a session field: right and wrong types, good and bad text and numbers, JWTs.
fn session_value() -> impl Strategy<Value = (Json, String)> {
    let text = |s: String| (Json::Str(s.clone()), format!("\"{s}\""));
    prop_oneof![
        3 => secret().prop_map(text),
        2 => (0u32..4_000_000_000, 0u32..4_000_000_000, prop::option::of("[a-z0-9-]{1,12}")).prop_map(
            move |(exp, iat, sub)| {
                let sub = sub.map(|s| format!(",\"sub\":\"{s}\"")).unwrap_or_default();
                text(jwt(&format!("{{\"exp\":{exp},\"iat\":{iat}{sub}}}")))
            }
        ),
        1 => Just(text(String::new())),
        1 => Just(text("has space".into())),
        3 => (0u32..4_000_000_000).prop_map(|n| (Json::Num(f64::from(n)), n.to_string())),
        1 => (0u32..100_000, 1u32..1000).prop_map(|(n, f)| {
            let t = format!("{n}.{f:03}");
            (Json::Num(t.parse().unwrap()), t)
        }),
        1 => (1u32..1000).prop_map(|n| (Json::Num(-f64::from(n)), format!("-{n}"))),
        1 => json_leaf(),
        1 => secret().prop_map(|id| (Json::Obj(vec![("id".into(), Json::Str(id.clone()))]), format!("{{\"id\":\"{id}\"}}"))),
        1 => Just((Json::Arr(vec![]), "[]".to_string())),
    ]
}

/// A right value for a field most of the time (so sessions and claims often validate), else any.
fn value_for(key: &str) -> BoxedStrategy<(Json, String)> {
    let text = |s: String| (Json::Str(s.clone()), format!("\"{s}\""));
    let right = match key {
        "access_token" | "refresh_token" => prop_oneof![
            secret().prop_map(text),
            (0u32..4_000_000_000, 0u32..4_000_000_000)
                .prop_map(move |(exp, iat)| text(jwt(&format!("{{\"exp\":{exp},\"iat\":{iat},\"sub\":\"u-{iat}\"}}")))),
        ]
        .boxed(),
        "token_type" => Just(text("bearer".into())).boxed(),
        "sub" | "id" => secret().prop_map(text).boxed(),
        "user" => secret()
            .prop_map(|id| {
                (
                    Json::Obj(vec![("id".into(), Json::Str(id.clone()))]),
                    format!("{{\"id\":\"{id}\"}}"),
                )
            })
            .boxed(),
        _ => (0u32..4_000_000_000)
            .prop_map(|n| (Json::Num(f64::from(n)), n.to_string()))
            .boxed(),
    };
    prop_oneof![4 => right, 1 => session_value()].boxed()
}

/// An object whose keys are mostly `keys` (each value usually of the right type), mixed with
/// other keys, in any order, sometimes repeated.
fn keyed_object(keys: &'static [&'static str]) -> impl Strategy<Value = (Json, String)> {
    let member = prop_oneof![
        4 => prop::sample::select(keys).prop_flat_map(|k| (Just((k.to_string(), format!("\"{k}\""))), value_for(k))),
        1 => (json_key(), session_value()),
    ];
    prop::collection::vec((ws(), member), 0..8).prop_map(|members| {
        let text = members
            .iter()
            .map(|(w, ((_, k), (_, v)))| format!("{w}{k}:{w}{v}"))
            .collect::<Vec<_>>()
            .join(",");
        let value = Json::Obj(members.into_iter().map(|(_, ((k, _), (v, _)))| (k, v)).collect());
        (value, format!("{{{text}}}"))
    })
}

/// A session-shaped object: its keys mostly the ones a Supabase session has.
fn session_doc() -> impl Strategy<Value = (Json, String)> {
    keyed_object(&[
        "access_token",
        "access_token",
        "access_token",
        "refresh_token",
        "expires_at",
        "expires_in",
        "token_type",
        "user",
    ])
}

/// A JWT payload: its keys mostly the claims the SDK reads.
fn claims_doc() -> impl Strategy<Value = (Json, String)> {
    keyed_object(&["exp", "iat", "sub"])
}

/// The last member named `key`, as `Json::get` finds it.
fn member<'a>(doc: &'a Json, key: &str) -> Option<&'a Json> {
    doc.get(key)
}

const SESSION_FIELDS: &[&str] = &[
    "access_token",
    "refresh_token",
    "token_type",
    "user.id",
    "expires_at",
    "expires_in",
];

/// 2,000 cases per property from a fixed seed, so the test command is deterministic (a failure
/// replays exactly); `PROPTEST_RNG_SEED=<n>` explores other seeds.
fn config() -> ProptestConfig {
    let mut c = ProptestConfig {
        cases: 2_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = proptest::test_runner::RngSeed::Fixed(20_261_124);
    }
    c
}

/// Host forms for URL generators: loopback in its many spellings, and hosts that are not.
const LOOPBACK_HOSTS: &[&str] = &[
    "localhost",
    "LOCALHOST",
    "LocalHost.",
    "app.localhost",
    "a.b.LOCALHOST.",
    "127.0.0.1",
    "127.1",
    "127.0.1",
    "0x7f.0.0.1",
    "0X7F.1",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "017700000001",
    "127.0.0.1.",
    "127.255.0.0x1",
    "[::1]",
    "[0:0::1]",
    "%6c%6f%63%61%6c%68%6f%73%74",
    "127%2e0.0.1",
];
const OTHER_HOSTS: &[&str] = &[
    "evil.com",
    "EVIL.com",
    "localhost.evil.com",
    "127.0.0.1.evil.com",
    "evillocalhost",
    "10.0.0.1",
    "0.0.0.0",
    "0x80.0.0.1",
    "0200.1",
    "[::ffff:127.0.0.1]",
    "[::]",
    "[::2]",
    "ex%41mple.com",
    "xn--bcher-kva.example",
    "bücher.example",
    "ｌｏｃａｌｈｏｓｔ",
    "foo.127",
    "127.0.0.256",
    "a..b",
    "evil.com.",
    "4294967296",
    "[::1",
    "",
];

/// A piece of URL syntax that moves the host's boundaries in the browser.
fn url_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(LOOPBACK_HOSTS).prop_map(str::to_owned),
        prop::sample::select(OTHER_HOSTS).prop_map(str::to_owned),
        prop::sample::select(
            &[
                "\\", "/", "@", ":", "?", "#", "%", "%2f", "%40", "%5c", "[", "]", ".", "user:pw@", "@@", "\t", "\n",
                "\r", " ", ":80", ":0443", ":65536", ":8080"
            ][..]
        )
        .prop_map(str::to_owned),
        "[a-zA-Z0-9._-]{0,6}",
    ]
}

/// URLs in the shapes that confused the old checker: schemes in any case, slashes and backslashes,
/// userinfo, `@` after a backslash, tabs and newlines anywhere, C0 and spaces at the ends.
fn tricky_url() -> impl Strategy<Value = String> {
    (
        prop::sample::select(&["http", "HTTP", "https", "ws", "Ws", "wss", "WSS", "ftp", "javascript"][..]),
        prop::sample::select(&["://", ":\\\\", ":/\\", ":///", ":", ":/", "//"][..]),
        prop::collection::vec(url_piece(), 1..6),
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                prop::sample::select(&["\t", "\n", "\r"][..]),
            ),
            0..3,
        ),
        prop::sample::select(&["", " ", "\u{0}", "\u{1f} ", "\n"][..]),
        prop::sample::select(&["", " ", "\u{7}", "\t\n"][..]),
    )
        .prop_map(|(scheme, slashes, pieces, inserts, lead, trail)| {
            let mut url: String = format!("{scheme}{slashes}{}", pieces.concat());
            for (at, c) in inserts {
                let mut i = at.index(url.len() + 1);
                while !url.is_char_boundary(i) {
                    i -= 1;
                }
                url.insert_str(i, c);
            }
            format!("{lead}{url}{trail}")
        })
}

/// An independent reading of `check`'s output (which is plain: no userinfo, no backslash before the
/// path, no tabs): is it `http://` or `ws://` to a loopback host, in canonical form?
fn plain_to_canonical_loopback(out: &str) -> bool {
    let Some(rest) = out.strip_prefix("http://").or_else(|| out.strip_prefix("ws://")) else {
        return false;
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.contains(['@', '\\', '%']) || authority.chars().any(|c| c <= ' ' || c.is_uppercase()) {
        return false;
    }
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty() => h,
        _ => authority,
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    let octets: Vec<&str> = host.split('.').collect();
    host == "[::1]"
        || name == "localhost"
        || (name.ends_with(".localhost") && !name.starts_with('.') && !name.contains(".."))
        || (octets.len() == 4
            && octets[0] == "127"
            && octets
                .iter()
                .all(|o| o.parse::<u8>().is_ok_and(|v| v.to_string() == *o)))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn json_never_panics_on_any_text(s in "\\PC{0,64}") {
        let _ = json::parse(&s);
    }

    #[test]
    fn valid_json_parses_and_keeps_its_strings((want, doc) in json_doc()) {
        match json::parse(&doc) {
            Ok(got) => prop_assert!(same(&got, &want), "{doc:?} parsed as {got:?}, wrote {want:?}"),
            Err(e) => prop_assert!(false, "{doc:?} refused: {e}"),
        }
        // What is read is what was written: every string and key, in document order.
        fn strings(v: &Json, out: &mut Vec<String>) {
            match v {
                Json::Str(s) => out.push(s.clone()),
                Json::Arr(a) => a.iter().for_each(|x| strings(x, out)),
                Json::Obj(o) => o.iter().for_each(|(k, x)| { out.push(k.clone()); strings(x, out) }),
                _ => {}
            }
        }
        let (mut got_s, mut want_s) = (vec![], vec![]);
        strings(&json::parse(&doc).unwrap(), &mut got_s);
        strings(&want, &mut want_s);
        prop_assert_eq!(got_s, want_s);
    }

    #[test]
    fn json_integers_within_2_pow_53_are_exact(n in -(1i64 << 53)..=(1i64 << 53)) {
        prop_assert_eq!(json::parse(&n.to_string()), Ok(Json::Num(n as f64)));
    }

    #[test]
    fn a_repeated_key_reads_as_its_last_value((want, doc) in json_object(json_leaf())) {
        let got = json::parse(&doc).unwrap();
        if let Json::Obj(members) = &want {
            for (k, _) in members {
                let last = members.iter().rev().find(|(m, _)| m == k).map(|(_, v)| v).unwrap();
                prop_assert!(same(got.get(k).unwrap(), last), "{k:?} in {doc:?}");
            }
        }
        prop_assert_eq!(got.get("no such key, never generated \u{0}"), None);
    }

    #[test]
    fn base64url_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..96)) {
        prop_assert_eq!(base64url_decode(&base64url_encode(&bytes)), Some(bytes));
    }

    #[test]
    fn jwt_claims_decode_from_any_payload((payload, doc) in prop_oneof![2 => claims_doc(), 1 => json_object(session_value()), 1 => json_doc()], junk in "\\PC{0,16}") {
        let _ = decode_claims(&junk);
        let claims = decode_claims(&jwt(&doc));
        let Json::Obj(_) = payload else {
            prop_assert!(claims.is_err(), "a payload that is not an object: {doc:?}");
            return Ok(());
        };
        let num = |k: &str| match member(&payload, k) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Num(n)) => Ok(Some(*n)),
            Some(_) => Err(()),
        };
        let sub = match member(&payload, "sub") {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Str(s)) => Ok(Some(s.clone())),
            Some(_) => Err(()),
        };
        match (num("exp"), num("iat"), sub) {
            (Ok(exp), Ok(iat), Ok(sub)) => {
                let c = claims.unwrap_or_else(|e| panic!("{doc:?} refused: {e}"));
                prop_assert!(c.exp.zip(exp).map_or(c.exp.is_none() && exp.is_none(), |(a, b)| same(&Json::Num(a), &Json::Num(b))), "exp of {doc:?}");
                prop_assert!(c.iat.zip(iat).map_or(c.iat.is_none() && iat.is_none(), |(a, b)| same(&Json::Num(a), &Json::Num(b))), "iat of {doc:?}");
                prop_assert_eq!(c.sub, sub);
            }
            _ => prop_assert!(claims.is_err(), "a claim of the wrong type was accepted: {doc:?}"),
        }
    }

    #[test]
    fn sessions_validate_or_refuse_with_a_field((v, doc) in prop_oneof![3 => session_doc(), 1 => json_doc()], now in 0u64..4_000_000_000_000) {
        let parsed = json::parse(&doc).unwrap();
        prop_assert!(same(&parsed, &v));
        let text_of = |k: &str| match member(&v, k) { Some(Json::Str(s)) => Some(s.clone()), _ => None };
        let secrets: Vec<String> = ["access_token", "refresh_token"].iter().filter_map(|k| text_of(k)).filter(|s| s.len() >= 6).collect();
        for origin in [Origin::HandedOver, Origin::Issued] {
            match Session::from_raw(&RawSession::from_json(&parsed), now, origin) {
                Ok(s) => {
                    prop_assert!(s.expires_at_ms > 0 || s.lifetime_ms == 0);
                    prop_assert_eq!(Some(s.access.expose().to_string()), text_of("access_token"), "the access token as written: {:?}", doc);
                    prop_assert_eq!(s.refresh.as_ref().map(|r| r.expose().to_string()), text_of("refresh_token"));
                    prop_assert_eq!(s.token_type, text_of("token_type").unwrap_or_else(|| "bearer".into()));
                    let secs = |k: &str| member(&v, k).and_then(Json::as_f64);
                    if let (Origin::Issued, Some(inn)) = (origin, secs("expires_in")) {
                        // 1 ms of slack: the core's JSON reader (kept small: no float parsing) is not
                        // correctly rounded, so 256.655 may read a hair above the f64 written.
                        prop_assert!(s.expires_at_ms <= now.saturating_add(((inn * 1000.0) as u64).saturating_add(1)), "never outlives expires_in");
                    }
                    if let (Origin::HandedOver, Some(at)) = (origin, secs("expires_at")) {
                        prop_assert!(s.expires_at_ms <= ((at * 1000.0) as u64).saturating_add(1), "never outlives expires_at");
                    }
                }
                Err(e) => {
                    prop_assert!(SESSION_FIELDS.contains(&e.field), "an unknown field {:?}", e.field);
                    let message = e.to_string();
                    prop_assert!(message.starts_with(&format!("session.{}", e.field)), "{}", message);
                    for s in &secrets {
                        prop_assert!(!message.contains(s.as_str()), "a token in {:?}", message);
                    }
                    if text_of("access_token").is_none() {
                        prop_assert_eq!(e.field, "access_token", "no access token string, yet refused for {}: {:?}", e.field, doc);
                    }
                }
            }
            if member(&v, "access_token").is_none_or(|a| matches!(a, Json::Null)) {
                prop_assert!(Session::from_raw(&RawSession::from_json(&parsed), now, origin).is_err(), "no access token, yet accepted: {:?}", doc);
            }
        }
    }

    #[test]
    fn an_issued_session_never_outlives_its_expires_in(secs in 1u32..100_000, now in 0u64..4_000_000_000_000) {
        let raw = RawSession { access_token: Raw::Str("opaque".into()), expires_in: Raw::Num(f64::from(secs)), ..Default::default() };
        let s = Session::from_raw(&raw, now, Origin::Issued).unwrap();
        prop_assert!(s.expires_at_ms <= now + u64::from(secs) * 1000);
        prop_assert!(s.expires_at_ms >= now + u64::from(secs) * 500);
    }

    #[test]
    fn urls_never_panic_and_plain_text_needs_loopback(s in "\\PC{0,48}", t in "[ -~\t\n]{0,40}", host in "[a-z]{1,10}\\.(com|dev|io)") {
        for input in [s.as_str(), t.as_str(), &format!("http://{t}"), &format!("ws://{s}")] {
            let _ = url::parse(input);
            for kind in [Kind::Http, Kind::Ws] {
                let _ = url::check(input, kind, false);
                let _ = url::check(input, kind, true);
            }
        }
        let plain = format!("http://{}/x", host);
        prop_assert_eq!(url::check(&plain, Kind::Http, false), Err(authwire::core::error::Code::InsecureUrl));
        let secure = format!("https://{}/x", host);
        prop_assert!(url::check(&secure, Kind::Http, false).is_ok());
    }

    /// A connect URL's added parameters (a session id to resume, the opt-in token) never change
    /// where it goes: same scheme, host and port; each value comes back by percent-decoding, and
    /// none of the query's separators (`&`, `=`, `#`, `?`) or spaces survive raw in it.
    #[test]
    fn query_parameters_never_change_where_a_url_goes(
        host in "[a-z]{1,10}\\.(com|dev|io)",
        path in "(/[a-z0-9]{0,6}){0,2}(\\?[a-z]=[a-z0-9]{0,4})?",
        value in "\\PC{0,40}",
    ) {
        let base = format!("wss://{host}{path}");
        let before = url::parse(&base).unwrap();
        let with = url::with_query(&base, &[("session_id", value.as_str()), ("token", "eyJ.a-b_c")]);
        let after = url::parse(&with).unwrap();
        prop_assert_eq!((before.scheme, before.host, before.port), (after.scheme, after.host, after.port));
        let tail = with.rsplit_once("session_id=").unwrap().1;
        let (encoded, rest) = tail.split_once('&').unwrap();
        prop_assert_eq!(rest, "token=eyJ.a-b_c");
        prop_assert!(!encoded.contains(['&', '=', '#', '?', ' ', '+']));
        let mut bytes = vec![];
        let mut it = encoded.bytes();
        while let Some(b) = it.next() {
            if b == b'%' {
                let hex: String = [it.next().unwrap() as char, it.next().unwrap() as char].iter().collect();
                bytes.push(u8::from_str_radix(&hex, 16).unwrap());
            } else {
                bytes.push(b);
            }
        }
        prop_assert_eq!(String::from_utf8(bytes).unwrap(), value);
    }

    /// Tricky URLs: never a panic; plain text is accepted only to a host the parser found loopback,
    /// and then only as a canonical loopback URL; `check`'s output parses to the same host and
    /// checks to itself.
    #[test]
    fn tricky_urls_never_reach_a_non_loopback_host_in_plain_text(url in tricky_url()) {
        let parsed = url::parse(&url);
        for kind in [Kind::Http, Kind::Ws] {
            for allow_insecure in [false, true] {
                let Ok(out) = url::check(&url, kind, allow_insecure) else { continue };
                let p = parsed.as_ref().expect("check accepts only what parses");
                prop_assert!(!p.credentials, "userinfo accepted: {:?}", url);
                if !p.secure() && !allow_insecure {
                    prop_assert!(p.loopback, "plain text to {} accepted: {:?}", p.host, url);
                    prop_assert!(plain_to_canonical_loopback(&out), "{:?} became {:?}", url, out);
                }
                let again = url::parse(&out).expect("check's output parses");
                prop_assert_eq!(&again.host, &p.host, "{:?} -> {:?}", url, out);
                prop_assert_eq!(again.port, p.port);
                prop_assert_eq!(again.loopback, p.loopback);
                prop_assert_eq!(url::check(&out, kind, allow_insecure), Ok(out.clone()), "not idempotent: {:?}", url);
            }
        }
    }

    /// `{plain scheme}://{other host}{separator}@{loopback host}`: the host is the other one (the
    /// browser ends the authority at `\`, `/`, `?` or `#`), so plain text is refused.
    #[test]
    fn a_loopback_name_after_a_separator_is_not_the_host(
        scheme in prop::sample::select(&["http", "HTTP", "ws", "wS"][..]),
        other in "[a-z]{1,8}\\.(com|dev|localhost\\.evil\\.com)",
        sep in prop::sample::select(&["\\", "/", "?", "#", "\t\\", "\\\n", "%2f\\"][..]),
        userinfo in prop::sample::select(&["", "u:p@", "localhost@"][..]),
        loopback in prop::sample::select(LOOPBACK_HOSTS),
    ) {
        let url = format!("{scheme}://{userinfo}{other}{sep}@{loopback}/x");
        for kind in [Kind::Http, Kind::Ws] {
            prop_assert!(url::check(&url, kind, false).is_err(), "accepted: {:?}", url);
        }
        if !sep.starts_with('%') {
            let p = url::parse(&url).unwrap();
            prop_assert_eq!(p.host, other);
            prop_assert!(!p.loopback);
        }
    }

    /// Loopback hosts in every spelling, with any scheme case, port and tabs, stay loopback.
    #[test]
    fn loopback_in_any_spelling_is_accepted_in_plain_text(
        scheme in prop::sample::select(&["http", "HTTP", "ws", "wS"][..]),
        host in prop::sample::select(LOOPBACK_HOSTS),
        port in prop::option::of(0u16..),
        tab in any::<prop::sample::Index>(),
    ) {
        let mut url = format!("{scheme}://{host}{}/p", port.map(|p| format!(":{p}")).unwrap_or_default());
        let mut i = tab.index(url.len());
        while !url.is_char_boundary(i) { i -= 1; }
        url.insert(i, '\t');
        let kind = if scheme.len() == 2 { Kind::Ws } else { Kind::Http };
        let out = url::check(&url, kind, false);
        prop_assert!(out.as_ref().is_ok_and(|o| plain_to_canonical_loopback(o)), "{:?} -> {:?}", url, out);
    }
}

// ---- The fetch origin rule (core::origins) ----

use authwire::core::error::Code;
use authwire::core::origins::{self, FetchPolicy};

/// Domains the entries are built on, and the hosts requests go to: the domains themselves,
/// subdomains, look-alikes across a label boundary, other spellings, IP forms.
const APEXES: &[&str] = &["example.com", "api.example.com", "localhost", "example.co.uk"];

fn request_host(apex: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(apex.to_owned()),
        1 => Just(apex.to_uppercase()),
        1 => Just(format!("{apex}.")),
        6 => "[a-z0-9]{1,5}(\\.[a-z]{1,3}){0,2}".prop_map(move |s| format!("{s}.{apex}")),
        1 => "[a-z0-9]{1,5}".prop_map(move |s| format!("{s}.{apex}.")),
        1 => "[a-z]{1,5}".prop_map(move |s| format!("{s}-{apex}")),
        1 => "[a-z]{1,5}".prop_map(move |s| format!("{s}{apex}")),
        1 => Just(format!("{apex}.evil.com")),
        1 => Just(format!("a.{apex}.evil.com")),
        1 => Just(format!("xn--{apex}")),
        1 => Just(format!("a.xn--p1ai.{apex}")),
        1 => Just(format!("{}%2e{}", apex.split('.').next().unwrap_or(""), apex.split_once('.').map_or("", |x| x.1))),
        1 => prop::sample::select(LOOPBACK_HOSTS).prop_map(str::to_owned),
        1 => prop::sample::select(OTHER_HOSTS).prop_map(str::to_owned),
        1 => prop::sample::select(&["[::1]", "[2001:db8::1]", "[::ffff:127.0.0.1]", "1.2.3.4", "127.0.0.1"][..])
            .prop_map(str::to_owned),
    ]
}

/// A `fetchOrigins` entry as an app might write it (valid or not).
fn entry_text() -> impl Strategy<Value = String> {
    (
        prop::sample::select(&["https", "https", "http", "http", "HTTPS", "wss", "ftp"][..]),
        prop::sample::select(&["", "", "", "*.", "*.", "*.", "*", "a*.", "*.*."][..]),
        prop::sample::select(APEXES),
        prop::sample::select(&["", "", "", "", ":443", ":80", ":8443", ":0443", ":8080", ":"][..]),
        prop::sample::select(
            &[
                "",
                "",
                "",
                "",
                "",
                "",
                "/",
                "/",
                "/v1",
                "?q",
                "#f",
                "\\",
                "@evil.com",
                " ",
            ][..],
        ),
        prop::sample::select(&["", "", "", "", "", "", "", "", "user:pw@", "evil.com\\@", "@"][..]),
    )
        .prop_map(|(scheme, star, apex, port, tail, userinfo)| format!("{scheme}://{userinfo}{star}{apex}{port}{tail}"))
}

/// A request URL as the app might pass it (the browser has resolved it; tricky forms included).
fn request_url() -> impl Strategy<Value = String> {
    (
        prop::sample::select(&["https", "https", "http", "http", "HTTPS", "Http", "wss"][..]),
        prop::sample::select(
            &[
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "user:pw@",
                "evil.com\\@",
                "@",
                "api.example.com@",
            ][..],
        ),
        prop::sample::select(APEXES).prop_flat_map(request_host),
        prop::sample::select(&["", "", "", "", ":443", ":80", ":8443", ":0443", ":8080", ":"][..]),
        prop::sample::select(
            &[
                "",
                "/",
                "/x?y#z",
                "\\@api.example.com/",
                "/@api.example.com",
                "?@api.example.com",
            ][..],
        ),
    )
        .prop_map(|(scheme, userinfo, host, port, tail)| format!("{scheme}://{userinfo}{host}{port}{tail}"))
}

/// An independent reading of "is `p` of this entry": exact origins compare their serialisation;
/// patterns compare label lists (the request's labels end with the domain's, with at least one
/// more label before them).
fn model_matches(e: &origins::Entry, p: &url::Parsed) -> bool {
    if e.subdomains {
        let ours: Vec<&str> = p.host.split('.').collect();
        let theirs: Vec<&str> = e.host.split('.').collect();
        p.scheme == e.scheme
            && p.port == e.port
            && p.host_kind == url::HostKind::Domain
            && ours.len() > theirs.len()
            && ours[ours.len() - theirs.len()..] == theirs[..]
    } else {
        p.origin() == e.text()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Entries: never a panic; an accepted entry has no path, userinfo or stray `*`, is canonical
    /// (reading its own text gives it back), and a plain one off loopback needs allowInsecure.
    #[test]
    fn fetch_origin_entries_are_canonical_or_refused(text in prop_oneof![3 => entry_text(), 1 => "\\PC{0,40}"]) {
        for insecure in [false, true] {
            match origins::entry(&text, insecure, url::parse) {
                Ok(e) => {
                    prop_assert!(!text.contains(['@', '\\', '?', '#', ' ']), "{:?}", text);
                    prop_assert_eq!(origins::entry(&e.text(), insecure, url::parse), Ok(e.clone()), "{:?}", text);
                    prop_assert!(!e.host.contains('*'));
                    if e.subdomains {
                        prop_assert!(e.host.trim_end_matches('.').contains('.') || e.host == "localhost");
                    }
                    let loopback = e.host == "localhost" || url::is_loopback(&e.host);
                    prop_assert!(insecure || e.scheme == "https" || loopback, "{:?}", text);
                }
                Err((code, why)) => {
                    prop_assert!(matches!(code, Code::InvalidOptions | Code::InsecureUrl));
                    prop_assert!(!why.is_empty());
                }
            }
        }
    }

    /// The rule: a request is allowed iff its URL parses as http(s) without userinfo, its origin
    /// equals an allowed exact origin (the page's included) or is a subdomain of a pattern's domain
    /// at a label boundary, and it is not plain text off loopback (without allowInsecure).
    #[test]
    fn fetch_is_allowed_iff_the_origin_is_listed_and_never_plain_off_loopback(
        entries in prop::collection::vec(entry_text(), 0..8),
        page in prop::option::of(request_url()),
        url in request_url(),
        insecure in any::<bool>(),
        derive in prop::option::of((any::<prop::sample::Index>(), "[a-z0-9]{1,5}", 0u8..8)),
    ) {
        let allowed: Vec<origins::Entry> = entries.iter().filter_map(|t| origins::entry(t, true, url::parse).ok()).collect();
        // Half the time, a request near an allowed entry: the same origin, a subdomain of a
        // pattern's domain, or one change away (case, trailing dot, look-alike, port, scheme).
        let url = match (derive, allowed.is_empty()) {
            (Some((i, sub, change)), false) => {
                let e = &allowed[i.index(allowed.len())];
                let host = if e.subdomains { format!("{sub}.{}", e.host) } else { e.host.clone() };
                let port = e.port.map(|p| format!(":{p}")).unwrap_or_default();
                let (scheme, host, port) = match change {
                    0 => (e.scheme.to_uppercase(), host.to_uppercase(), port),
                    1 => (e.scheme.to_owned(), format!("{host}."), port),
                    2 => (e.scheme.to_owned(), format!("{sub}-{}", e.host), port),
                    3 => (e.scheme.to_owned(), host, ":8443".to_owned()),
                    4 => (if e.scheme == "https" { "http" } else { "https" }.to_owned(), host, port),
                    5 => (e.scheme.to_owned(), format!("{host}.evil.com"), port),
                    _ => (e.scheme.to_owned(), host, port),
                };
                format!("{scheme}://{host}{port}/x")
            }
            _ => url,
        };
        let policy = FetchPolicy { allowed: allowed.clone(), allow_insecure: insecure };
        let got = policy.check(page.as_deref(), &url, url::parse);
        let expected = match url::parse(&url) {
            Err(_) => Err(Code::InvalidUrl),
            Ok(p) if !matches!(p.scheme, "http" | "https") || p.credentials => Err(Code::InvalidUrl),
            Ok(p) => {
                let page_match = page
                    .as_deref()
                    .and_then(|t| url::parse(t).ok())
                    .is_some_and(|q| matches!(q.scheme, "http" | "https") && q.origin() == p.origin());
                if !(page_match || allowed.iter().any(|e| model_matches(e, &p))) {
                    Err(Code::OriginNotAllowed)
                } else if !p.secure() && !p.loopback && !insecure {
                    Err(Code::InsecureUrl)
                } else {
                    Ok(())
                }
            }
        };
        prop_assert_eq!(got, expected, "{:?} with {:?} on page {:?}", url, entries, page);
        if got.is_ok() {
            let p = url::parse(&url).unwrap();
            prop_assert!(insecure || p.secure() || p.loopback, "plain text off loopback: {:?}", url);
            // Never a look-alike across a label boundary.
            for e in allowed.iter().filter(|e| e.subdomains) {
                if p.host.ends_with(&e.host) && p.host != e.host && model_matches(e, &p) {
                    let before = p.host.as_bytes()[p.host.len() - e.host.len() - 1];
                    prop_assert_eq!(before, b'.');
                }
            }
        }
    }
}
