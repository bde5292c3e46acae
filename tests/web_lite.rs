//! The lite build (`authwire/lite`, no `full` feature): what it leaves out is refused with
//! `invalid_options` naming the full build, never ignored, and `auth.fetch` is not there. Run by
//! `wasm-pack test ... -- --no-default-features` (scripts/test.sh); the other files' tests of what
//! lite contains run in the same build.
#![cfg(all(target_arch = "wasm32", not(feature = "full")))]

mod common;

use authwire::{AuthSession, ChatSocket};
use common::*;
use js_sys::{Function, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn refused(result: Result<impl Sized, JsValue>) -> (String, String) {
    let Err(e) = result else {
        panic!("the lite build accepted an option it leaves out")
    };
    (
        get(&e, "code").as_string().unwrap_or_default(),
        get(&e, "message").as_string().unwrap_or_default(),
    )
}

#[wasm_bindgen_test]
async fn what_lite_leaves_out_is_refused_naming_the_full_build() {
    let session = sign_in(&unique("lite-refused"), 3600).await;
    let token = get(&session, "access_token").as_string().unwrap();
    let base = || vec![("session", session.clone()), ("refresh", supabase_source())];
    let cases: Vec<(&str, Vec<(&str, JsValue)>)> = vec![
        ("options.storage", vec![("storage", "local".into())]),
        ("options.crossTab", vec![("crossTab", true.into())]),
        ("options.storageKey", vec![("storageKey", "supabase".into())]),
        (
            "options.fetchOrigins",
            vec![("fetchOrigins", js_sys::Array::of1(&server().into()).into())],
        ),
    ];
    for (field, extra) in cases {
        let mut pairs = base();
        pairs.extend(extra);
        let (code, message) = refused(AuthSession::new(obj(&pairs)));
        assert_eq!(code, "invalid_options", "{field}");
        // Named, never echoed: no token, key or origin from the options in the message.
        for secret in [token.as_str(), ANON_KEY, server()] {
            assert!(!message.contains(secret), "{message}");
        }
        assert!(message.starts_with(&format!("authwire: {field} ")), "{message}");
        assert!(message.contains("authwire/lite"), "{message}");
    }
    for kind in ["password", "broker", "callback"] {
        let source = obj(&[("kind", kind.into()), ("url", server().into())]);
        let (code, message) = refused(AuthSession::new(obj(&[("refresh", source)])));
        assert_eq!(code, "invalid_options");
        assert!(message.starts_with("authwire: options.refresh.kind "), "{message}");
        assert!(message.contains("full build"), "{message}");
    }
    // The handshake's bearer path is in; the other auth types are not.
    let auth = AuthSession::new(obj(&base())).unwrap();
    let handshake = obj(&[("auth_type", "api_key".into()), ("api_key", "k".into())]);
    let (code, message) = refused(ChatSocket::new(obj(&[
        ("url", ws_url("/ws/chat").into()),
        ("protocol", "auth-handshake".into()),
        ("handshake", handshake),
        ("auth", auth_object(&auth)),
    ])));
    assert_eq!(code, "invalid_options");
    assert!(
        message.starts_with("authwire: options.handshake.auth_type "),
        "{message}"
    );
    let bearer = ChatSocket::new(obj(&[
        ("url", ws_url("/ws/chat").into()),
        ("protocol", "auth-handshake".into()),
        ("auth", auth_object(&auth)),
    ]))
    .unwrap();
    bearer.close();
    drop(bearer);
    // auth.fetch is not in the lite module at all.
    let js = JsValue::from(auth);
    let proto = Object::get_prototype_of(&js);
    assert!(Reflect::has(&proto, &"accessToken".into()).unwrap());
    assert!(!Reflect::has(&proto, &"fetch".into()).unwrap());
    let free: Function = Reflect::get(&js, &"free".into()).unwrap().into();
    free.call0(&js).unwrap();
}

/// The AuthSession as JS sees it: an object whose hidden id getter names it.
fn auth_object(a: &AuthSession) -> JsValue {
    let o = Object::new();
    Reflect::set(&o, &"__authwireId".into(), &a.authwire_id().into()).unwrap();
    o.into()
}
