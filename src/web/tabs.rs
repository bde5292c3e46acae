//! Sharing one session among the tabs of an origin: persistent storage, a BroadcastChannel, the
//! Web Locks mutex around refreshes, and the "spent refresh token" marker that closes the gap
//! between one tab releasing the lock and the others hearing about its new session.

use js_sys::{Function, Object, Promise, Reflect, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BroadcastChannel, MessageEvent, Storage};

use super::get;
use crate::core::tabs::Fp;
use crate::core::text::cat;

#[wasm_bindgen(inline_js = r#"
export function aw_acquire(name, ms, id, cb) {
  // One lock request with a deadline: cb(id, release) when granted (the lock is held until
  // release() is called), cb(id, null) when the deadline passes first. A callback that throws
  // (its session was freed) lets go of the lock at once.
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(), ms);
  navigator.locks.request(name, { signal: ac.signal }, () => {
    clearTimeout(t);
    return new Promise((release) => cb(id, release));
  }).catch(() => { clearTimeout(t); try { cb(id, null); } catch (_) {} });
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
    /// Requests the Web Lock `name`, giving up after `ms`; `cb(id, release | null)`.
    fn aw_acquire(name: &str, ms: f64, id: f64, cb: &Function);
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
        let w = super::window()?;
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

/// A message between tabs (fingerprints, never tokens).
pub enum TabMessage {
    /// A tab has a (new) session: here it is (received: the parsed object; posted: its JSON text).
    Session(JsValue),
    /// A tab signed out: all do.
    SignOut,
    /// A tab just opened: whoever has a session, send it.
    Hello,
    /// A tab wants to present the refresh token with this fingerprint (no Web Locks).
    Claim {
        /// The refresh token's fingerprint.
        token: Fp,
        /// When it claimed (ms since the epoch).
        at: u64,
        /// The claiming tab.
        tab: u64,
    },
    /// A tab withdraws its claim.
    Unclaim {
        /// The refresh token's fingerprint.
        token: Fp,
        /// The tab.
        tab: u64,
    },
    /// The refresh token with this fingerprint was presented and rotated.
    Spent {
        /// The refresh token's fingerprint.
        token: Fp,
    },
}

/// The BroadcastChannel of one session key. Closed (and its handler dropped) with it.
pub struct TabLink {
    channel: BroadcastChannel,
    _handler: Closure<dyn FnMut(MessageEvent)>,
    id: u64,
}

fn fp_of(v: &JsValue) -> Option<Fp> {
    v.as_string().and_then(|s| u64::from_str_radix(&s, 16).ok()).map(Fp)
}

fn num(v: &JsValue) -> Option<u64> {
    v.as_f64().filter(|n| n.is_finite() && *n >= 0.0).map(|n| n as u64)
}

impl TabLink {
    /// Joins the channel `authwire:<key>`; `on_message` gets the messages of the other tabs.
    /// `id` names this tab (below 2^53: it travels as a JS number).
    pub fn join(key: &str, id: u64, mut on_message: impl FnMut(TabMessage) + 'static) -> Option<TabLink> {
        let channel = BroadcastChannel::new(&cat(&["authwire:", key])).ok()?;
        let handler = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let data = e.data();
            if num(&get(&data, "from")) == Some(id) {
                return;
            }
            let token = fp_of(&get(&data, "token"));
            let tab = num(&get(&data, "tab"));
            let m = match (get(&data, "t").as_string().as_deref(), token, tab) {
                // Sessions travel as JSON text: nothing of the app's object runs in another tab.
                (Some("session"), _, _) => match get(&data, "text").as_string().and_then(|t| JSON::parse(&t).ok()) {
                    Some(v) => TabMessage::Session(v),
                    None => return,
                },
                (Some("signout"), _, _) => TabMessage::SignOut,
                (Some("hello"), _, _) => TabMessage::Hello,
                (Some("claim"), Some(token), Some(tab)) => match num(&get(&data, "at")) {
                    Some(at) => TabMessage::Claim { token, at, tab },
                    None => return,
                },
                (Some("unclaim"), Some(token), Some(tab)) => TabMessage::Unclaim { token, tab },
                (Some("spent"), Some(token), _) => TabMessage::Spent { token },
                _ => return,
            };
            on_message(m);
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
        put("from", &JsValue::from_f64(self.id as f64));
        let n = |v: u64| JsValue::from_f64(v as f64);
        let fp = |t: &Fp| JsValue::from_str(&t.hex());
        match m {
            TabMessage::Session(text) => {
                put("t", &"session".into());
                put("text", text);
            }
            TabMessage::SignOut => put("t", &"signout".into()),
            TabMessage::Hello => put("t", &"hello".into()),
            TabMessage::Claim { token, at, tab } => {
                put("t", &"claim".into());
                put("token", &fp(token));
                put("at", &n(*at));
                put("tab", &n(*tab));
            }
            TabMessage::Unclaim { token, tab } => {
                put("t", &"unclaim".into());
                put("token", &fp(token));
                put("tab", &n(*tab));
            }
            TabMessage::Spent { token } => {
                put("t", &"spent".into());
                put("token", &fp(token));
            }
        }
        let _ = self.channel.post_message(&o);
    }

    /// This tab's id on the channel (breaks claim ties).
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for TabLink {
    fn drop(&mut self) {
        self.channel.set_onmessage(None);
        self.channel.close();
    }
}

fn marker_store() -> Option<Storage> {
    super::window()?.local_storage().ok().flatten()
}

/// How many spent fingerprints localStorage remembers (a tab that slept through several refreshes
/// still recognises its old token as spent).
const SPENT_KEPT: usize = 16;

/// Sets the spent marker of a refresh token: a marker lock held by this page (Web Locks: every tab
/// sees it at once), and the localStorage list (browsers without Web Locks, best effort).
pub fn mark_spent(key: &str, token: Fp) {
    let fp = token.hex();
    aw_hold_marker(&cat(&["authwire-spent:", key, ":", &fp]));
    let Some(s) = marker_store() else { return };
    let name = cat(&["authwire-spent:", key]);
    let old = s.get_item(&name).ok().flatten().unwrap_or_default();
    let mut list: Vec<&str> = old.split(',').filter(|f| f.len() == 16 && *f != fp).collect();
    list.push(&fp);
    let start = list.len().saturating_sub(SPENT_KEPT);
    let _ = s.set_item(&name, &crate::core::text::join(&list[start..], ","));
}

/// Calls `done` with whether the spent marker of a refresh token is set (by any tab).
pub fn is_spent(key: &str, token: Fp, done: impl FnOnce(bool) + 'static) {
    let fp = token.hex();
    let list = cat(&["authwire-spent:", key]);
    let held = aw_marker_held(&cat(&[&list, ":", &fp]));
    super::on_settled(&held, move |held| {
        let spent = held.is_ok_and(|v| v.as_bool() == Some(true))
            || marker_store()
                .and_then(|s| s.get_item(&list).ok().flatten())
                .is_some_and(|v| v.split(',').any(|f| f == fp));
        done(spent);
    });
}

/// Whether the browser has Web Locks (`navigator.locks`).
pub fn has_locks() -> bool {
    super::window().is_some_and(|w| {
        Reflect::get(&w.navigator(), &"locks".into())
            .is_ok_and(|l| l.is_object() && Reflect::get(&l, &"request".into()).is_ok_and(|r| r.is_function()))
    })
}

/// Requests the Web Lock `name` for at most `ms`; `cb(id, release)` when granted (call `release`
/// to let go), `cb(id, null)` when the deadline passed first. Call only when [`has_locks`].
pub fn acquire(name: &str, ms: u64, id: u64, cb: &Function) {
    aw_acquire(name, ms as f64, id as f64, cb);
}
