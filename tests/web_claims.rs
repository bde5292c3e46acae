//! The shell reads a JWT's claims with the browser's `JSON.parse` (so the wasm carries no JSON
//! parser); for a corpus of payloads, valid, hostile and odd, it reads exactly what the core's own
//! parser reads (the native tests and the fuzzer exercise that one), with two differences, both in
//! what the SDK does not read: a lone surrogate escape in another field, and nesting deeper than 64,
//! make the core refuse the payload and the browser read its claims (a lone one in `sub` both
//! refuse). No dev server needed.
#![cfg(target_arch = "wasm32")]

use authwire::core::token::{base64url_encode, decode_claims, JwtError};
use authwire::web::read_claims;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const PAYLOADS: &[&str] = &[
    r#"{"exp":1763900000,"iat":1763896400,"sub":"u1"}"#,
    r#"{"exp":1763900000.5}"#,
    r#"{"sub":"only"}"#,
    r#"{}"#,
    r#"{"exp":null,"iat":null,"sub":null}"#,
    r#"{"exp":"soon"}"#,
    r#"{"iat":true}"#,
    r#"{"sub":7}"#,
    r#"{"sub":{"id":"x"}}"#,
    r#"{"exp":[1]}"#,
    r#"{"exp":1e400}"#,
    r#"{"exp":-1e400}"#,
    r#"{"exp":-5,"iat":0}"#,
    r#"{"exp":1763900000,"extra":{"deep":[1,2,{"a":null}]},"sub":"ü 日本 \ud83d\ude00"}"#,
    r#"{"sub":"\u0000\n\t\"quoted\""}"#,
    r#"{"__proto__":{"exp":1},"sub":"p"}"#,
    r#"{"constructor":1,"toString":2}"#,
    r#"{"exp":1,"exp":1763900000,"sub":"a","sub":"b"}"#,
    r#"{"sub":"\ud800 lone"}"#,
    r#"{"sub":"ok","exp":1,"note":"\udc00"}"#,
    "  {\"exp\" : 1763900000 }  ",
    r#"[1,2]"#,
    r#"null"#,
    r#""a string""#,
    r#"42"#,
    r#"{"exp":1763900000"#,
    r#"{"exp":01}"#,
    r#"{'exp':1}"#,
    r#"{"exp":1,}"#,
    r#"{"exp":NaN}"#,
    "",
    "\u{feff}{\"exp\":1}",
];

#[wasm_bindgen_test]
fn the_browsers_json_reads_the_claims_the_cores_parser_reads() {
    let deep = format!(r#"{{"sub":"ok","exp":1,"deep":{}1{}}}"#, "[".repeat(80), "]".repeat(80));
    let shallow = format!(r#"{{"sub":"ok","exp":1,"deep":{}1{}}}"#, "[".repeat(40), "]".repeat(40));
    let payloads = PAYLOADS.iter().copied().chain([deep.as_str(), shallow.as_str()]);
    for payload in payloads {
        let jwt = format!("h.{}.s", base64url_encode(payload.as_bytes()));
        if payload.contains("\\udc00") || payload.matches('[').count() > 64 {
            assert_eq!(decode_claims(&jwt), Err(JwtError::BadPayload));
            let read = read_claims(&jwt).unwrap();
            assert_eq!((read.exp, read.sub.as_deref()), (Some(1.0), Some("ok")));
            continue;
        }
        assert_eq!(read_claims(&jwt), decode_claims(&jwt), "payload {payload:?}");
    }
    // What is refused before any JSON is read: the same in both.
    for jwt in ["opaque", "a.b", "a.b.c.d", "a.%%%.c", "a.__8.c"] {
        assert_eq!(read_claims(jwt), decode_claims(jwt), "{jwt:?}");
    }
    let bad_utf8 = format!("h.{}.s", base64url_encode(&[0x7b, 0xff, 0x7d]));
    assert_eq!(read_claims(&bad_utf8), decode_claims(&bad_utf8));
}
