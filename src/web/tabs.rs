//! Sharing one session among the tabs of an origin: persistent storage, a BroadcastChannel, the
//! Web Locks mutex around refreshes, and the "spent refresh token" marker that closes the gap
//! between one tab releasing the lock and the others hearing about its new session.

use js_sys::{Object, Promise, Reflect, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BroadcastChannel, MessageEvent, Storage};

use super::get;

#[wasm_bindgen(inline_js = r#"
export function aw_with_lock(name, acquireMs, holdMs, task) {
  const locks = globalThis.navigator && globalThis.navigator.locks;
  if (!locks || typeof locks.request !== "function") return null;
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(), acquireMs);
  let ran = false;
  const run = () => { ran = true; return task(); };
  return locks.request(name, { signal: ac.signal }, () => {
    clearTimeout(t);
    // Never hold the lock longer than holdMs, whatever happens to the request inside.
    return Promise.race([run(), new Promise((resolve) => setTimeout(resolve, holdMs))]);
  }).catch((e) => {
    // An orphaned lock (a frozen tab, a crashed one) is waited for at most acquireMs.
    if (!ran) return run();
    throw e;
  });
}
const held = [];
export function aw_hold_marker(name) {
  // A lock held for as long as this page lives (the newest 32): the browser's lock manager is
  // the one place every tab sees consistently and at once, unlike localStorage or messages.
  const locks = globalThis.navigator && globalThis.navigator.locks;
  if (!locks) return;
  locks.request(name, { ifAvailable: true }, (lock) => lock ? new Promise((release) => {
    held.push(release);
    if (held.length > 32) held.shift()();
  }) : undefined).catch(() => {});
}
export async function aw_marker_held(name) {
  const locks = globalThis.navigator && globalThis.navigator.locks;
  if (!locks || typeof locks.query !== "function") return false;
  const state = await locks.query();
  return state.held.some((l) => l.name === name);
}
"#)]
extern "C" {
    fn aw_hold_marker(name: &str);
    fn aw_marker_held(name: &str) -> Promise;
    /// Runs `task` (returning a promise) holding the Web Lock `name`: acquired within `acquire_ms`
    /// (else run without it), held at most `hold_ms`. `null` where the browser has no Web Locks.
    fn aw_with_lock(name: &str, acquire_ms: u32, hold_ms: u32, task: &JsValue) -> JsValue;
}

/// Persistent storage of the session under one key (`localStorage` or `sessionStorage`).
pub struct Store {
    storage: Storage,
    /// The key, e.g. `sb-<project-ref>-auth-token` when shared with supabase-js.
    pub key: String,
}

impl Store {
    /// Opens `kind` ("local" or "session"); `None` where the page has no such storage.
    pub fn open(kind: &str, key: String) -> Option<Store> {
        let w = web_sys::window()?;
        let storage = if kind == "session" {
            w.session_storage()
        } else {
            w.local_storage()
        }
        .ok()
        .flatten()?;
        Some(Store { storage, key })
    }
    /// The stored text, if any.
    pub fn load(&self) -> Option<String> {
        self.storage.get_item(&self.key).ok().flatten()
    }
    /// Stores a session already turned into JSON text (by the caller, with no borrow held: the
    /// app's object may have getters or a `toJSON` that call back into the SDK).
    pub fn save_text(&self, text: &str) {
        let _ = self.storage.set_item(&self.key, text);
    }
    /// Removes the session.
    pub fn clear(&self) {
        let _ = self.storage.remove_item(&self.key);
    }
    /// Whether a `storage` event is about this store.
    pub fn is_about(&self, e: &web_sys::StorageEvent) -> bool {
        e.key().as_deref() == Some(self.key.as_str()) && e.storage_area().is_some_and(|a| a == self.storage)
    }
}

/// A message between tabs.
pub enum TabMessage {
    /// A tab has a (new) session: here it is (received: the parsed object; posted: its JSON text).
    Session(JsValue),
    /// A tab signed out: all do.
    SignOut,
    /// A tab just opened: whoever has a session, send it.
    Hello,
    /// Without Web Locks: a tab claims the next refresh at this time (ms); the earliest claim wins
    /// (ties broken by the tab id).
    Claim(f64, String),
}

/// The BroadcastChannel of one session key. Closed (and its handler dropped) with it.
pub struct TabLink {
    channel: BroadcastChannel,
    _handler: Closure<dyn FnMut(MessageEvent)>,
    id: String,
}

impl TabLink {
    /// Joins the channel `authwire:<key>`; `on_message` gets the messages of the other tabs.
    pub fn join(key: &str, mut on_message: impl FnMut(TabMessage) + 'static) -> Option<TabLink> {
        let channel = BroadcastChannel::new(&format!("authwire:{key}")).ok()?;
        let id = format!("{}", (js_sys::Math::random() * 1e15) as u64);
        let me = id.clone();
        let handler = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let data = e.data();
            if get(&data, "from").as_string().as_deref() == Some(me.as_str()) {
                return;
            }
            match get(&data, "t").as_string().as_deref() {
                // Sessions travel as JSON text: nothing of the app's object runs in another tab.
                Some("session") => {
                    if let Some(v) = get(&data, "text").as_string().and_then(|t| JSON::parse(&t).ok()) {
                        on_message(TabMessage::Session(v))
                    }
                }
                Some("signout") => on_message(TabMessage::SignOut),
                Some("hello") => on_message(TabMessage::Hello),
                Some("claim") => on_message(TabMessage::Claim(
                    get(&data, "at").as_f64().unwrap_or(0.0),
                    get(&data, "from").as_string().unwrap_or_default(),
                )),
                _ => {}
            }
        });
        channel.set_onmessage(Some(handler.as_ref().unchecked_ref()));
        Some(TabLink {
            channel,
            _handler: handler,
            id,
        })
    }

    /// Posts a message to the other tabs.
    pub fn post(&self, m: &TabMessage) {
        let o = Object::new();
        let put = |k: &str, v: &JsValue| {
            let _ = Reflect::set(&o, &k.into(), v);
        };
        put("from", &self.id.as_str().into());
        match m {
            TabMessage::Session(text) => {
                put("t", &"session".into());
                put("text", text);
            }
            TabMessage::SignOut => put("t", &"signout".into()),
            TabMessage::Hello => put("t", &"hello".into()),
            TabMessage::Claim(at, _) => {
                put("t", &"claim".into());
                put("at", &JsValue::from_f64(*at));
            }
        }
        let _ = self.channel.post_message(&o);
    }
}

impl TabLink {
    /// This tab's id on the channel.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for TabLink {
    fn drop(&mut self) {
        self.channel.set_onmessage(None);
        self.channel.close();
    }
}

/// FNV-1a of a refresh token: what the spent marker holds (never the token).
fn fingerprint(token: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in token.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let digits = b"0123456789abcdef";
    (0..16)
        .map(|i| digits[((h >> (60 - 4 * i)) & 15) as usize] as char)
        .collect()
}

fn marker_store() -> Option<Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// How many spent fingerprints are remembered (a tab that slept through several refreshes still
/// recognises its old token as spent).
const SPENT_KEPT: usize = 16;

/// Records that `refresh_token` was just spent (rotated) by this tab. Call it inside the refresh
/// lock, before releasing it: the marker lock is then granted before the next tab gets the lock.
pub fn mark_spent(key: &str, refresh_token: &str) {
    aw_hold_marker(&format!("authwire-spent:{key}:{}", fingerprint(refresh_token)));
    let Some(s) = marker_store() else { return };
    let name = format!("authwire-spent:{key}");
    let old = s.get_item(&name).ok().flatten().unwrap_or_default();
    let mut list: Vec<&str> = old.split(',').filter(|f| f.len() == 16).collect();
    let fp = fingerprint(refresh_token);
    list.push(&fp);
    let start = list.len().saturating_sub(SPENT_KEPT);
    let _ = s.set_item(&name, &list[start..].join(","));
}

/// Whether another tab already spent `refresh_token`: a marker lock is held (Web Locks), or the
/// localStorage marker says so (browsers without Web Locks, where it is best effort).
pub async fn is_spent(key: &str, refresh_token: &str) -> bool {
    let fp = fingerprint(refresh_token);
    let held = wasm_bindgen_futures::JsFuture::from(aw_marker_held(&format!("authwire-spent:{key}:{fp}"))).await;
    if held.is_ok_and(|v| v.as_bool() == Some(true)) {
        return true;
    }
    marker_store()
        .and_then(|s| s.get_item(&format!("authwire-spent:{key}")).ok().flatten())
        .is_some_and(|v| v.split(',').any(|f| f == fp))
}

/// Whether the browser has Web Locks (`navigator.locks`).
pub fn has_locks() -> bool {
    web_sys::window().is_some_and(|w| Reflect::get(&w.navigator(), &"locks".into()).is_ok_and(|l| l.is_object()))
}

/// Runs `task` under the Web Lock `name` (see `aw_with_lock`). Call only when [`has_locks`].
pub fn with_lock(name: &str, task: impl FnOnce() -> Promise + 'static) -> Option<Promise> {
    // once_into_js: the closure frees itself when called, and aw_with_lock calls it exactly once
    // on every path (lock granted, or acquisition timed out).
    let f = Closure::once_into_js(task);
    aw_with_lock(name, 5_000, 15_000, &f).dyn_into::<Promise>().ok()
}
