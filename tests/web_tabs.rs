//! Tabs without Web Locks (a page of its own: `navigator.locks` is removed for the whole page).
//! Two sessions in one page share the BroadcastChannel as two tabs would.
// Cross-tab is in the full build only.
#![cfg(feature = "full")]
#![cfg(target_arch = "wasm32")]

mod common;

use authwire::AuthSession;
use common::*;
use js_sys::Function;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn remove_web_locks() {
    Function::new_no_args(
        "Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined, configurable: true });",
    )
    .call0(&JsValue::UNDEFINED)
    .unwrap();
}

/// Defect 4: the tab that lost the 150 ms claim reported `REFRESH_FAILED` / `network_error`
/// whenever the winner's refresh took longer than that, and could claim again before the spent
/// marker was set (one refresh token presented twice). Now the loser waits for the winner's
/// session: no failure event, no reuse, both tabs on the same token.
#[wasm_bindgen_test]
async fn without_web_locks_the_tab_that_lost_the_claim_waits_for_a_slow_winner() {
    remove_web_locks();
    let email = unique("claims");
    let s = sign_in(&email, 3).await;
    control(&email, &[("refresh_delay_ms", 700.into())]).await;
    let key = unique("claims-key");
    let opts = obj(&[
        ("refresh", supabase_source()),
        ("crossTab", true.into()),
        ("storage", "local".into()),
        ("storageKey", key.as_str().into()),
    ]);
    let a = AuthSession::new(with(&opts, &[("session", s)])).unwrap();
    let b = AuthSession::new(opts.clone()).unwrap();
    let (ea, eb) = (record_events(&a), record_events(&b));
    wait_for("the session from the other tab", 5_000, || {
        get(&b.get_snapshot(), "status") == "signed_in"
    })
    .await;
    // Both tabs want every refresh (3-second tokens refresh at half-life) and keep asking.
    for _ in 0..12 {
        let (ta, tb) = (token(&a).await, token(&b).await);
        assert!(ta.is_ok() && tb.is_ok(), "both tabs get tokens: {ta:?} {tb:?}");
        sleep(500).await;
    }
    assert_eq!(
        stat(&email, "refresh_reused").await,
        0,
        "no refresh token presented twice"
    );
    for (tab, events) in [("a", &ea), ("b", &eb)] {
        let kinds = types(events);
        assert!(
            !kinds.iter().any(|k| k == "REFRESH_FAILED" || k == "SIGNED_OUT"),
            "tab {tab}: {kinds:?}"
        );
    }
    let refreshes = stat(&email, "refresh_ok").await;
    assert!(refreshes >= 2, "the tokens were refreshed: {refreshes}");
}

fn with(base: &JsValue, extra: &[(&str, JsValue)]) -> JsValue {
    let o = js_sys::Object::assign(&js_sys::Object::new(), base.unchecked_ref());
    for (k, v) in extra {
        js_sys::Reflect::set(&o, &(*k).into(), v).unwrap();
    }
    o.into()
}
