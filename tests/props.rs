//! Property tests of the parsers of outside input (native): arbitrary text and structured JSON
//! never panic, and what parses keeps its meaning. `scripts/fuzz.sh` adds a million mutated inputs
//! per parser; these run in `cargo test`.
#![cfg(not(target_arch = "wasm32"))]

use authwire::core::json::{self, Json};
use authwire::core::session::{Origin, Raw, RawSession, Session};
use authwire::core::token::{base64url_decode, base64url_encode, decode_claims};
use authwire::core::url::{self, Kind};
use proptest::prelude::*;

fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[a-z\\\\\"é😀]{0,8}".prop_map(|s| format!("{s:?}")),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-z_]{1,12}", inner), 0..5).prop_map(|v| format!(
                "{{{}}}",
                v.iter()
                    .map(|(k, x)| format!("{k:?}:{x}"))
                    .collect::<Vec<_>>()
                    .join(",")
            )),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn json_never_panics_on_any_text(s in "\\PC{0,64}") {
        let _ = json::parse(&s);
    }

    #[test]
    fn valid_json_parses_and_keeps_its_strings(doc in json_text()) {
        prop_assert!(json::parse(&doc).is_ok(), "{}", doc);
    }

    #[test]
    fn base64url_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..96)) {
        prop_assert_eq!(base64url_decode(&base64url_encode(&bytes)), Some(bytes));
    }

    #[test]
    fn jwt_claims_decode_from_any_payload(doc in json_text(), junk in "\\PC{0,16}") {
        let _ = decode_claims(&format!("h.{}.s", base64url_encode(doc.as_bytes())));
        let _ = decode_claims(&junk);
    }

    #[test]
    fn sessions_validate_or_refuse_with_a_field(doc in json_text(), now in 0u64..4_000_000_000_000) {
        let v = json::parse(&doc).unwrap_or(Json::Null);
        for origin in [Origin::HandedOver, Origin::Issued] {
            match Session::from_raw(&RawSession::from_json(&v), now, origin) {
                Ok(s) => prop_assert!(s.expires_at_ms > 0 || s.lifetime_ms == 0),
                Err(e) => prop_assert!(!e.field.is_empty()),
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
    fn urls_never_panic_and_plain_text_needs_loopback(s in "\\PC{0,48}", host in "[a-z]{1,10}\\.(com|dev|io)") {
        for kind in [Kind::Http, Kind::Ws] {
            let _ = url::check(&s, kind, false);
        }
        let plain = format!("http://{}/x", host);
        prop_assert_eq!(url::check(&plain, Kind::Http, false), Err(authwire::core::error::Code::InsecureUrl));
        let secure = format!("https://{}/x", host);
        prop_assert!(url::check(&secure, Kind::Http, false).is_ok());
    }
}
