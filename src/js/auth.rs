//! `AuthSession`: the session class JavaScript sees.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use gloo_timers::callback::Timeout;
use js_sys::{Function, Object, Promise, Reflect, JSON};
use wasm_bindgen::prelude::*;

use crate::core::auth_machine::{Action, Answer, AuthMachine, Event, EventKind, Failure, Input, Wake};
use crate::core::error::Code;
use crate::core::options::{AuthOptions, Build, StorageKind, FULL};
use crate::core::origins::FetchPolicy;
use crate::core::session::{Origin, Session};
use crate::core::tabs::{
    Action as TabsAction, Config as TabsConfig, Input as TabsInput, Mode, Peer, Post, Published, Summary, TabsMachine,
};
use crate::web::fetch::{global_fetch, Fetched, Source};
use crate::web::options;
use crate::web::tabs::{self, Store, TabLink, TabMessage};
use crate::web::{self, aw_emit, code_error, debug, error, frozen, get, later, now_ms, on_settled, DomListener};

type Settler = (Function, Function);

/// A Rust-side observer of the session's events (a ChatSocket), holding only a weak reference.
pub(crate) type Watcher = Rc<dyn Fn(&Event)>;

thread_local! {
    /// Live AuthSessions by id, so a ChatSocket can find the one passed in its options.
    static REGISTRY: RefCell<Vec<(u32, Weak<RefCell<Inner>>)>> = const { RefCell::new(Vec::new()) };
    static NEXT_ID: std::cell::Cell<u32> = const { std::cell::Cell::new(1) };
}

/// Finds the session behind a JS `AuthSession` object (via its hidden id getter).
pub(crate) fn lookup(js: &JsValue) -> Result<Shared, Code> {
    let id = Reflect::get(js, &"__authwireId".into())
        .map_err(|_| Code::Freed)?
        .as_f64()
        .ok_or(Code::InvalidOptions)? as u32;
    REGISTRY
        .with(|r| r.borrow().iter().find(|(i, _)| *i == id).and_then(|(_, w)| w.upgrade()))
        .filter(|s| s.try_borrow().is_ok_and(|i| !i.freed))
        .ok_or(Code::Freed)
}

/// Whether the session's token may be written into a frame now.
pub(crate) fn usable(shared: &Shared) -> bool {
    shared
        .try_borrow()
        .is_ok_and(|i| !i.freed && i.machine.usable(now_ms()))
}

/// The current access token as a JS string, made once per session change (the one cache both
/// the hot send path and the waiters read).
fn cached_token(inner: &mut Inner) -> Option<&JsValue> {
    if inner.token_js.is_none() {
        inner.token_js = inner.machine.access_token().map(|t| JsValue::from_str(t.expose()));
    }
    inner.token_js.as_ref()
}

/// The token for a connect URL (`connectToken`): only one usable for the transit margin now.
/// The caller puts it in the URL it opens and nowhere else (never logged, never in an error).
pub(crate) fn url_token(shared: &Shared) -> Option<String> {
    let inner = shared.try_borrow().ok()?;
    if inner.freed || !inner.machine.usable(now_ms()) {
        return None;
    }
    inner.machine.access_token().map(|t| t.expose().to_owned())
}

/// The current access token as a JS string.
pub(crate) fn token_js(shared: &Shared) -> Option<JsValue> {
    cached_token(&mut *shared.try_borrow_mut().ok()?).cloned()
}

/// The current token and the time until which it may be written into a frame (expiry less the
/// transit margin); `None` when there is no token. The caller writes with no borrow held.
pub(crate) fn write_token(shared: &Shared) -> Option<(JsValue, f64)> {
    let mut inner = shared.try_borrow_mut().ok()?;
    if inner.freed {
        return None;
    }
    let s = inner.machine.session()?;
    let until = s
        .expires_at_ms
        .saturating_sub(inner.machine.policy().transit_ms(s.lifetime_ms)) as f64;
    cached_token(&mut inner).map(|t| (t.clone(), until))
}

/// Parses a stored or published session text (JSON: an object, or a string holding a bare JWT).
fn parse_stored(text: &str) -> Option<JsValue> {
    JSON::parse(text).ok()
}

/// Registers a watcher; returns its id for [`unwatch`].
pub(crate) fn watch(shared: &Shared, w: Watcher) -> Option<u64> {
    let mut inner = shared.try_borrow_mut().ok()?;
    inner.next_watch += 1;
    let id = inner.next_watch;
    inner.watchers.push((id, w));
    Some(id)
}

/// Removes a watcher.
pub(crate) fn unwatch(shared: &Shared, id: u64) {
    if let Ok(mut inner) = shared.try_borrow_mut() {
        inner.watchers.retain(|(i, _)| *i != id);
    }
}

/// A socket needs a usable token: `Ready`, `Wait` (registered: a later SIGNED_IN or
/// TOKEN_REFRESHED tells, and the session keeps retrying meanwhile), or `Fail(code)`.
pub(crate) fn need_token(shared: &Shared, holder: u64) -> Answer {
    drive(shared, |m, now, out| m.need(holder, now, out)).unwrap_or(Answer::Fail(Code::Freed))
}

/// The socket no longer waits for a token.
pub(crate) fn release_token(shared: &Shared, holder: u64) {
    drive(shared, |m, now, out| m.release(holder, now, out));
}

/// Forces a refresh (the server rejected the token).
pub(crate) fn force_refresh(shared: &Shared) -> Result<(), Code> {
    drive(shared, |m, now, out| m.want_refresh(now, out)).unwrap_or(Err(Code::Freed))
}

/// Everything an `AuthSession` owns. Shared (by `Rc`) with the `ChatSocket`s built on it;
/// timers, fetches and DOM listeners hold only a `Weak` to it.
pub(crate) struct Inner {
    machine: AuthMachine,
    source: Option<Source>,
    timer: Option<Timeout>,
    /// The first sign-in of a source that needs no session, a moment after construction.
    start_timer: Option<Timeout>,
    /// The cross-tab protocol: which tab presents a refresh token, and when (`core::tabs`). With
    /// `crossTab` off it runs alone and sends each request at once.
    tabs: TabsMachine<Got>,
    tabs_timer: Option<Timeout>,
    /// Requests in flight by the tabs machine's request id (cancelled only on `CancelFetch`).
    requests: Vec<(u64, web_sys::AbortController)>,
    /// Web Locks held, by lock request id: calling the function releases the lock.
    held: Vec<(u64, Function)>,
    /// Receives lock grants and lock timeouts (`cb(id, release | null)`).
    lock_cb: Option<Closure<dyn FnMut(f64, JsValue)>>,
    token_waiters: Vec<Settler>,
    refresh_waiters: Vec<Settler>,
    subscribers: js_sys::Set,
    listeners: js_sys::Set,
    snapshot: Option<JsValue>,
    dom: Vec<DomListener>,
    debug: bool,
    freed: bool,
    id: u32,
    token_js: Option<JsValue>,
    watchers: Vec<(u64, Watcher)>,
    next_watch: u64,
    /// supabase-js `onAuthStateChange` subscriptions and their callbacks (see `followSupabase`).
    follows: Vec<(JsValue, Closure<dyn FnMut(JsValue, JsValue)>)>,
    /// The key of this session in storage, on the tab channel and in lock names.
    key: String,
    store: Option<Store>,
    link: Option<TabLink>,
    storage_listener: Option<DomListener>,
    /// The session object last received (Supabase shape): what is stored and sent to other tabs.
    raw: JsValue,
    /// Extra headers the source returned (e.g. a CSRF token), added by `fetch`.
    headers: JsValue,
    /// Where `fetch` may send credentials (`core::origins`), besides the page's own origin.
    fetch_policy: FetchPolicy,
    /// The broker's health, when the source is a broker.
    health: Option<bool>,
    /// Set while taking over what another tab published, so it is not echoed back.
    adopting: bool,
    /// DOM listener for `pagehide`: the tab withdraws its claims and releases its lock.
    pagehide: Option<DomListener>,
}

/// A session as the tabs machine carries it: validated, with the object it came as (stored and
/// published) and the extra headers its source sent.
#[derive(Clone)]
pub(crate) struct Got {
    session: Session,
    raw: JsValue,
    headers: JsValue,
}

impl Got {
    fn summary(&self) -> Summary {
        Summary::of(&self.session)
    }
}

/// A session published by another tab or found in storage, read as handed over.
fn published(v: JsValue) -> Option<Published<Got>> {
    let session = web::session(&web::raw_session(&v), now_ms(), Origin::HandedOver).ok()?;
    let got = Got {
        session,
        raw: v,
        headers: JsValue::UNDEFINED,
    };
    Some(Published {
        summary: got.summary(),
        session: got,
    })
}

pub(crate) type Shared = Rc<RefCell<Inner>>;

/// Runs `f` on the machine with the time now, then performs the actions it produced.
/// No borrow is held while JS code (listeners, promise settlers) runs, so listeners may call back in.
pub(crate) fn drive<R>(shared: &Shared, f: impl FnOnce(&mut AuthMachine, u64, &mut Vec<Action>) -> R) -> Option<R> {
    let mut out = Vec::new();
    let r = {
        let mut inner = shared.try_borrow_mut().ok()?;
        if inner.freed {
            return None;
        }
        f(&mut inner.machine, now_ms(), &mut out)
    };
    perform(shared, out);
    Some(r)
}

fn perform(shared: &Shared, actions: Vec<Action>) {
    let mut changed = false;
    let mut events: Vec<Event> = Vec::new();
    let mut settle: Vec<(Function, JsValue)> = Vec::new();
    let mut shares: Vec<EventKind> = Vec::new();
    let mut tabs_later: Vec<TabsInput<Got>> = Vec::new();
    {
        let Ok(mut inner) = shared.try_borrow_mut() else { return };
        for a in actions {
            match a {
                Action::Fetch {
                    attempt,
                    deadline_ms,
                    present,
                } => {
                    if inner.debug {
                        debug("[authwire] refreshing, attempt", &JsValue::from_f64(attempt as f64));
                    }
                    // Handed to the tabs machine on the next microtask, and only if the attempt is
                    // still the current one: an attempt superseded in the same tick
                    // (`refresh(); setSession(s2)`, `signOut()`) never sends its request.
                    let weak = Rc::downgrade(shared);
                    later(move || {
                        let Some(shared) = weak.upgrade() else { return };
                        let current = shared
                            .try_borrow()
                            .is_ok_and(|i| !i.freed && i.machine.inflight() == Some(attempt));
                        if current {
                            drive_tabs(
                                &shared,
                                TabsInput::Want {
                                    attempt,
                                    present,
                                    deadline_ms,
                                },
                            );
                        }
                    });
                }
                Action::Abort { attempt } => tabs_later.push(TabsInput::Abort { attempt }),
                Action::WakeAt(at) => {
                    let delay = at.saturating_sub(now_ms()).min(i32::MAX as u64) as u32;
                    if inner.debug {
                        debug("[authwire] next check in ms", &JsValue::from_f64(f64::from(delay)));
                    }
                    let weak = Rc::downgrade(shared);
                    inner.timer = Some(web::timeout(delay, move || wake(&weak, Wake::Timer)));
                }
                Action::CancelWake => inner.timer = None,
                Action::ResolveTokenWaiters => {
                    let token = cached_token(&mut inner).cloned();
                    let (value, ok) = match token {
                        Some(t) => (t, true),
                        None => (code_error(Code::SignedOut), false),
                    };
                    for (res, rej) in inner.token_waiters.drain(..) {
                        settle.push((if ok { res } else { rej }, value.clone()));
                    }
                }
                Action::RejectTokenWaiters(code) => {
                    let e = code_error(code);
                    settle.extend(inner.token_waiters.drain(..).map(|(_, rej)| (rej, e.clone())));
                }
                Action::SettleRefreshWaiters(result) => {
                    let e = result.map(code_error);
                    for (res, rej) in inner.refresh_waiters.drain(..) {
                        match &e {
                            None => settle.push((res, JsValue::UNDEFINED)),
                            Some(e) => settle.push((rej, e.clone())),
                        }
                    }
                }
                Action::Emit(ev) => {
                    if matches!(
                        ev.kind,
                        EventKind::TokenRefreshed | EventKind::SignedIn | EventKind::SignedOut
                    ) {
                        inner.token_js = None;
                    }
                    if !inner.adopting {
                        shares.push(ev.kind);
                    }
                    if inner.debug {
                        debug(
                            &crate::core::text::cat(&["[authwire] event ", ev.kind.as_str()]),
                            &event_object(&ev),
                        );
                    }
                    events.push(ev);
                }
                Action::Changed => changed = true,
            }
        }
        if changed {
            inner.snapshot = None;
        }
    }
    for input in tabs_later {
        drive_tabs(shared, input);
    }
    for kind in shares {
        share(shared, kind);
    }
    for (f, v) in settle {
        let _ = f.call1(&JsValue::UNDEFINED, &v);
    }
    let (subscribers, listeners, watchers) = match shared.try_borrow() {
        Ok(i) if !i.freed => (
            i.subscribers.clone(),
            i.listeners.clone(),
            i.watchers.iter().map(|(_, w)| w.clone()).collect::<Vec<_>>(),
        ),
        _ => return,
    };
    for ev in &events {
        for w in &watchers {
            w(ev);
        }
        aw_emit(&listeners, &event_object(ev));
    }
    if changed {
        aw_emit(&subscribers, &JsValue::UNDEFINED);
    }
}

/// Stores and announces a session change made here (not one taken over from another tab).
fn share(shared: &Shared, kind: EventKind) {
    if !FULL {
        return; // no storage, no other tabs
    }
    match kind {
        EventKind::SignedIn | EventKind::TokenRefreshed => publish(shared, true),
        EventKind::SignedOut => {
            let Ok(inner) = shared.try_borrow() else { return };
            if let Some(s) = &inner.store {
                s.clear();
            }
            if let Some(l) = &inner.link {
                l.post(&TabMessage::SignOut);
            }
        }
        _ => {}
    }
}

/// Posts the session held now to the other tabs (and stores it, when `store`). It is turned into
/// JSON text with no borrow held: the app's object may have getters or a `toJSON` that call back
/// into the SDK (or throw: then it is not shared).
fn publish(shared: &Shared, store: bool) {
    if !FULL {
        return; // no storage, no other tabs
    }
    let raw = match shared.try_borrow() {
        Ok(i) if !i.freed && (i.store.is_some() || i.link.is_some()) => i.raw.clone(),
        _ => return,
    };
    if !(raw.is_object() || raw.is_string()) {
        return;
    }
    let Some(text) = JSON::stringify(&raw).ok().and_then(|t| t.as_string()) else {
        return;
    };
    let Ok(inner) = shared.try_borrow() else { return };
    if let (true, Some(s)) = (store, &inner.store) {
        s.save_text(&text);
    }
    if let Some(l) = &inner.link {
        l.post(&TabMessage::Session(JsValue::from_str(&text)));
    }
}

fn wake(weak: &Weak<RefCell<Inner>>, w: Wake) {
    if let Some(shared) = weak.upgrade() {
        drive(&shared, |m, now, out| m.handle(now, Input::Wake(w), out));
    }
}

/// Feeds the tabs machine one input (with the time now and this tab's session), then performs
/// its actions.
fn drive_tabs(shared: &Shared, input: TabsInput<Got>) {
    let mut out = Vec::new();
    {
        let Ok(mut inner) = shared.try_borrow_mut() else { return };
        if inner.freed {
            return;
        }
        let inner = &mut *inner;
        let local = inner.machine.session().map(Summary::of);
        inner.tabs.handle(now_ms(), local.as_ref(), input, &mut out);
    }
    perform_tabs(shared, out);
}

/// Performs the tabs machine's actions in order, each one JS call (or one input to the session
/// machine), with no borrow held while JS runs.
fn perform_tabs(shared: &Shared, actions: Vec<TabsAction<Got>>) {
    for a in actions {
        if shared.try_borrow().map_or(true, |i| i.freed) {
            return;
        }
        match a {
            // Only across tabs (never in the lite build, whose sessions are alone).
            TabsAction::AcquireLock { id, name, deadline_ms } if FULL => {
                let cb = shared.try_borrow().ok().and_then(|i| {
                    i.lock_cb
                        .as_ref()
                        .map(|c| c.as_ref().unchecked_ref::<Function>().clone())
                });
                if let Some(cb) = cb {
                    tabs::acquire(&name, deadline_ms.saturating_sub(now_ms()), id, &cb);
                }
            }
            TabsAction::ReleaseLock { id } if FULL => {
                let release = shared.try_borrow_mut().ok().and_then(|mut i| {
                    let pos = i.held.iter().position(|(h, _)| *h == id)?;
                    Some(i.held.swap_remove(pos).1)
                });
                if let Some(f) = release {
                    let _ = f.call0(&JsValue::UNDEFINED);
                }
            }
            TabsAction::QuerySpent { id, token } if FULL => {
                let weak = Rc::downgrade(shared);
                let key = shared.try_borrow().map(|i| i.key.clone()).unwrap_or_default();
                tabs::is_spent(&key, token, move |spent| {
                    if let Some(shared) = weak.upgrade() {
                        drive_tabs(&shared, TabsInput::SpentAnswer { id, spent });
                    }
                });
            }
            TabsAction::MarkSpent { token } if FULL => {
                let key = shared.try_borrow().map(|i| i.key.clone()).unwrap_or_default();
                tabs::mark_spent(&key, token);
            }
            TabsAction::ReadStored => {
                // The lite build stores nothing: always `None`.
                let text = shared
                    .try_borrow()
                    .ok()
                    .filter(|_| FULL)
                    .and_then(|i| i.store.as_ref().and_then(Store::load));
                let stored = text.as_deref().and_then(parse_stored).and_then(published);
                drive_tabs(shared, TabsInput::Stored(stored));
            }
            TabsAction::Post(p) if FULL => {
                let m = match p {
                    Post::MySession => {
                        publish(shared, false);
                        continue;
                    }
                    Post::Hello => TabMessage::Hello,
                    Post::Claim { token, at, tab } => TabMessage::Claim { token, at, tab },
                    Post::Unclaim { token, tab } => TabMessage::Unclaim { token, tab },
                    Post::Spent { token } => TabMessage::Spent { token },
                };
                if let Ok(inner) = shared.try_borrow() {
                    if let Some(l) = &inner.link {
                        l.post(&m);
                    }
                }
            }
            // The cross-tab actions in the lite build, whose sessions are alone: never produced.
            TabsAction::AcquireLock { .. }
            | TabsAction::ReleaseLock { .. }
            | TabsAction::QuerySpent { .. }
            | TabsAction::MarkSpent { .. }
            | TabsAction::Post(_) => {}
            TabsAction::Fetch { id, present } => {
                let Ok(mut inner) = shared.try_borrow_mut() else { return };
                let Some(source) = inner.source.clone() else { continue };
                let controller = web_sys::AbortController::new().ok();
                let signal = controller.as_ref().map(|c| c.signal());
                if let Some(c) = controller {
                    inner.requests.push((id, c));
                }
                let current = inner.machine.access_token().cloned();
                drop(inner);
                let weak = Rc::downgrade(shared);
                let done = Box::new(move |result: Result<Fetched, Failure>| {
                    let Some(shared) = weak.upgrade() else { return };
                    if let Ok(mut inner) = shared.try_borrow_mut() {
                        inner.requests.retain(|(r, _)| *r != id);
                    }
                    let result = result.map(|f| Got {
                        session: f.session,
                        raw: f.raw,
                        headers: f.headers,
                    });
                    drive_tabs(&shared, TabsInput::Fetched { id, result });
                });
                // Sent on the next microtask, as everything the machines ask of JS: a callback
                // source's function is never called from within the app's own call.
                later(move || source.refresh(present, current, signal, done));
            }
            TabsAction::CancelFetch { id } => {
                let controller = shared.try_borrow_mut().ok().and_then(|mut i| {
                    let pos = i.requests.iter().position(|(r, _)| *r == id)?;
                    Some(i.requests.swap_remove(pos).1)
                });
                if let Some(c) = controller {
                    c.abort();
                }
            }
            TabsAction::RefreshOk { attempt, session } => {
                if let Ok(mut inner) = shared.try_borrow_mut() {
                    if inner.machine.inflight() == Some(attempt) {
                        inner.raw = session.raw;
                        inner.headers = session.headers;
                    }
                }
                let s = session.session;
                drive(shared, |m, now, out| {
                    m.handle(now, Input::RefreshOk { attempt, session: s }, out)
                });
            }
            TabsAction::Refreshed(got) => {
                if let Ok(mut inner) = shared.try_borrow_mut() {
                    inner.raw = got.raw;
                    inner.headers = got.headers;
                }
                let s = got.session;
                drive(shared, |m, now, out| m.handle(now, Input::Refreshed(s), out));
            }
            TabsAction::RefreshErr { attempt, failure } => {
                // A broker's health (the lite build has no broker source).
                if FULL {
                    check_health(&Rc::downgrade(shared));
                }
                drive(shared, |m, now, out| {
                    m.handle(now, Input::RefreshErr { attempt, failure }, out)
                });
            }
            TabsAction::Adopt(got) => {
                let ok = shared
                    .try_borrow()
                    .is_ok_and(|i| i.machine.check(&got.session, now_ms()).is_ok());
                if !ok {
                    continue;
                }
                if let Ok(mut inner) = shared.try_borrow_mut() {
                    if inner.debug {
                        debug(
                            "[authwire] adopting a session published by another tab, expiring at",
                            &JsValue::from_f64(got.session.expires_at_ms as f64),
                        );
                    }
                    inner.raw = got.raw;
                    inner.adopting = true;
                }
                let s = got.session;
                drive(shared, |m, now, out| m.handle(now, Input::SetSession(s), out));
                if let Ok(mut inner) = shared.try_borrow_mut() {
                    inner.adopting = false;
                }
            }
            TabsAction::SignOut => {
                if let Ok(mut inner) = shared.try_borrow_mut() {
                    inner.adopting = true;
                }
                drive(shared, |m, now, out| m.handle(now, Input::SignOut, out));
                if let Ok(mut inner) = shared.try_borrow_mut() {
                    inner.adopting = false;
                }
            }
            TabsAction::Waiting { attempt } => {
                if shared.try_borrow().is_ok_and(|i| i.debug) {
                    debug(
                        "[authwire] waiting for another tab's session, attempt",
                        &JsValue::from_f64(attempt as f64),
                    );
                }
            }
            TabsAction::WakeAt(at) => {
                let delay = at.saturating_sub(now_ms()).min(i32::MAX as u64) as u32;
                let weak = Rc::downgrade(shared);
                if let Ok(mut inner) = shared.try_borrow_mut() {
                    inner.tabs_timer = Some(web::timeout(delay, move || {
                        if let Some(shared) = weak.upgrade() {
                            drive_tabs(&shared, TabsInput::Timer);
                        }
                    }));
                }
            }
            TabsAction::CancelWake => {
                if let Ok(mut inner) = shared.try_borrow_mut() {
                    inner.tabs_timer = None;
                }
            }
        }
    }
}

/// The message of another tab, as the tabs machine's input.
fn peer_input(m: TabMessage) -> Option<TabsInput<Got>> {
    Some(TabsInput::Peer(match m {
        TabMessage::Session(v) => Peer::Session(published(v)?),
        TabMessage::SignOut => Peer::SignOut,
        TabMessage::Hello => Peer::Hello,
        TabMessage::Claim { token, at, tab } => Peer::Claim { token, at, tab },
        TabMessage::Unclaim { token, tab } => Peer::Unclaim { token, tab },
        TabMessage::Spent { token } => Peer::Spent { token },
    }))
}

/// Asks a broker source for its health and puts it in the snapshot.
fn check_health(weak: &Weak<RefCell<Inner>>) {
    let source = weak
        .upgrade()
        .and_then(|s| s.try_borrow().ok().and_then(|i| i.source.clone()));
    let Some(source) = source else { return };
    let weak = weak.clone();
    source.health(move |healthy| {
        let Some(shared) = weak.upgrade() else { return };
        let changed = match shared.try_borrow_mut() {
            Ok(mut i) if !i.freed && i.health != Some(healthy) => {
                i.health = Some(healthy);
                i.snapshot = None;
                true
            }
            _ => false,
        };
        if changed {
            let subs = shared.try_borrow().ok().map(|i| i.subscribers.clone());
            if let Some(subs) = subs {
                aw_emit(&subs, &JsValue::UNDEFINED);
            }
        }
    });
}

fn event_object(ev: &Event) -> JsValue {
    let mut pairs: Vec<(&str, JsValue)> = vec![
        ("type", ev.kind.as_str().into()),
        ("at", JsValue::from_f64(ev.at_ms as f64)),
    ];
    if let Some(t) = ev.expires_at_ms {
        pairs.push(("expiresAt", JsValue::from_f64(t as f64)));
    }
    if let Some(c) = ev.code {
        pairs.push(("code", c.as_str().into()));
    }
    if ev.kind == EventKind::RefreshFailed {
        pairs.push(("willRetry", ev.will_retry.into()));
        pairs.push((
            "retryInMs",
            ev.retry_in_ms.map_or(JsValue::NULL, |d| JsValue::from_f64(d as f64)),
        ));
    }
    frozen(&pairs)
}

fn session_error(e: &crate::core::session::SessionError) -> JsValue {
    error(Code::InvalidSession, &e.message())
}

/// `setSession`: validates and hands over a session; `null` signs out locally. A session with the
/// current access token changes nothing. `refreshed`: it comes from a refresh
/// (a followed client's TOKEN_REFRESHED), which completes the refresh in flight and is counted.
fn apply_session(shared: &Shared, session: &JsValue, refreshed: bool) -> Result<(), JsValue> {
    if session.is_null() || session.is_undefined() {
        drive(shared, |m, now, out| m.handle(now, Input::SignOut, out));
        return Ok(());
    }
    let now = now_ms();
    let s = web::session(&web::raw_session(session), now, Origin::HandedOver).map_err(|e| session_error(&e))?;
    {
        let inner = shared.try_borrow().map_err(|_| code_error(Code::Freed))?;
        if inner.freed {
            return Err(code_error(Code::Freed));
        }
        let taken = inner
            .machine
            .accepts(&s, now)
            .map_err(|c| error(c, "the session has expired and no refresh source can renew it"))?;
        if !taken {
            return Ok(());
        }
    }
    if let Ok(mut inner) = shared.try_borrow_mut() {
        inner.raw = session.clone();
    }
    let input = if refreshed {
        Input::Refreshed(s)
    } else {
        Input::SetSession(s)
    };
    drive(shared, |m, now, out| m.handle(now, input, out)).ok_or_else(|| code_error(Code::Freed))
}

#[wasm_bindgen(inline_js = r#"
export function aw_supabase_refresher(api) {
  // supabase-js refreshes inside getSession() whenever the token is within its own 90 s margin,
  // and refreshSession() goes through getSession() first: calling refreshSession() there would
  // refresh twice. So ask getSession() first; only if it did not rotate, refresh explicitly.
  return async (refresh_token) => {
    const got = await api.getSession();
    if (got.error) throw got.error;
    const current = got.data.session;
    if (!current) return null;
    if (current.refresh_token !== refresh_token) return current;
    const { data, error } = await api.refreshSession();
    if (error) throw error;
    return data.session;
  };
}
export function aw_unsubscriber(subscription) {
  return () => { if (subscription && typeof subscription.unsubscribe === "function") subscription.unsubscribe(); };
}
"#)]
extern "C" {
    fn aw_supabase_refresher(api: &JsValue) -> Function;
    fn aw_unsubscriber(subscription: &JsValue) -> Function;
}

/// `accessToken()`.
fn token_promise(shared: &Shared) -> Promise {
    let mut fns: Option<Settler> = None;
    let promise = Promise::new(&mut |res, rej| fns = Some((res, rej)));
    let Some((res, rej)) = fns else { return promise };
    let answer = drive(shared, |m, now, out| m.want_token(now, out));
    let settle = |f: &Function, v: &JsValue| {
        let _ = f.call1(&JsValue::UNDEFINED, v);
    };
    match answer {
        None => settle(&rej, &code_error(Code::Freed)),
        Some(Answer::Fail(code)) => settle(&rej, &code_error(code)),
        Some(Answer::Ready) => match shared
            .try_borrow()
            .ok()
            .and_then(|i| i.machine.access_token().map(|t| JsValue::from_str(t.expose())))
        {
            Some(t) => settle(&res, &t),
            None => settle(&rej, &code_error(Code::SignedOut)),
        },
        Some(Answer::Wait) => match shared.try_borrow_mut() {
            Ok(mut inner) => inner.token_waiters.push((res, rej)),
            Err(_) => settle(&rej, &code_error(Code::Freed)),
        },
    }
    promise
}

/// `refresh()`.
fn refresh_promise(shared: &Shared) -> Promise {
    let mut fns: Option<Settler> = None;
    let promise = Promise::new(&mut |res, rej| fns = Some((res, rej)));
    let Some((res, rej)) = fns else { return promise };
    // Register first: the machine may settle the waiters before `drive` returns.
    if let Ok(mut inner) = shared.try_borrow_mut() {
        inner.refresh_waiters.push((res, rej.clone()));
    }
    match drive(shared, |m, now, out| m.want_refresh(now, out)) {
        Some(Ok(())) => {}
        failed => {
            let code = match failed {
                Some(Err(c)) => c,
                _ => Code::Freed,
            };
            if let Ok(mut inner) = shared.try_borrow_mut() {
                inner.refresh_waiters.retain(|(_, r)| r != &rej);
            }
            let _ = rej.call1(&JsValue::UNDEFINED, &code_error(code));
        }
    }
    promise
}

/// Proof that a request's URL passed the fetch rule (`core::origins`): [`authorize`] takes one.
struct Permit(());

/// Checks the final request's URL (as the browser resolved it) against the fetch rule: the page's
/// origin, the refresh source's, `fetchOrigins`, and plain text only to loopback. Called before
/// any token is asked for, on the first request and again before a retry.
fn permit(shared: &Shared, request: &web_sys::Request) -> Result<Permit, JsValue> {
    let page = web::page_origin();
    let verdict = match shared.try_borrow() {
        Ok(inner) if !inner.freed => inner
            .fetch_policy
            .check(page.as_deref(), &request.url(), options::browser_url),
        _ => Err(Code::Freed),
    };
    verdict.map(|()| Permit(())).map_err(code_error)
}

/// `auth.fetch`, step by step: each wait is a callback on the promise it waits for. Settles the
/// call's promise with `res`/`rej`; an error before the first wait is returned instead.
#[cfg(feature = "full")]
fn authorized_fetch(
    shared: Shared,
    input: JsValue,
    init: JsValue,
    res: Function,
    rej: Function,
) -> Result<(), JsValue> {
    let init: web_sys::RequestInit = if init.is_object() {
        init.unchecked_into()
    } else {
        web_sys::RequestInit::new()
    };
    let replayable = get(&init, "body").dyn_ref::<web_sys::ReadableStream>().is_none();
    // A string, a `URL` (read through its `href`) or a `Request`; anything else, or a URL the
    // browser cannot parse, is `invalid_url`; an init no request can be made from (a throwing
    // getter, a body on a GET, a bad header) is `invalid_argument`. Coded, never thrown.
    let plain = match input.dyn_into::<web_sys::Request>() {
        Ok(r) => r,
        Err(input) => {
            let text = input.as_string().or_else(|| get(&input, "href").as_string());
            let Some(text) = text else {
                return Err(error(Code::InvalidUrl, "fetch takes a URL string, a URL or a Request"));
            };
            web_sys::Request::new_with_str(&text)
                .map_err(|_| error(Code::InvalidUrl, "fetch: the URL cannot be parsed"))?
        }
    };
    let request = web_sys::Request::new_with_request_and_init(&plain, &init).map_err(|_| {
        error(
            Code::InvalidArgument,
            "fetch: the browser cannot make a request from this init",
        )
    })?;
    // Before any token is asked for: a refused origin never starts a refresh or a request.
    let allowed = permit(&shared, &request)?;
    let spare = if replayable { request.clone().ok() } else { None };
    let settle = |f: &Function, v: &JsValue| {
        let _ = f.call1(&JsValue::UNDEFINED, v);
    };
    on_settled(&token_promise(&shared), move |token| {
        let sent = token.and_then(|t| authorize(&shared, &request, allowed, &t));
        if let Err(e) = sent {
            return settle(&rej, &e);
        }
        on_settled(&global_fetch(&request), move |response| {
            let response = match response {
                Ok(r) => r,
                Err(e) => return settle(&rej, &e),
            };
            let status = response.unchecked_ref::<web_sys::Response>().status();
            let Some(spare) = spare.filter(|_| crate::core::source::retry_after(status)) else {
                return settle(&res, &response);
            };
            // The same check again (the same URL): the retry goes through the one gate too.
            let allowed = match permit(&shared, &spare) {
                Ok(a) => a,
                Err(e) => return settle(&rej, &e),
            };
            on_settled(&refresh_promise(&shared), move |refreshed| {
                if refreshed.is_err() {
                    return settle(&res, &response);
                }
                on_settled(&token_promise(&shared), move |token| {
                    match token.and_then(|t| authorize(&shared, &spare, allowed, &t)) {
                        // Resolved with the retry's promise: the call's follows it.
                        Ok(()) => settle(&res, &global_fetch(&spare)),
                        Err(e) => settle(&rej, &e),
                    }
                });
            });
        });
    });
    Ok(())
}

/// Puts the bearer token and the source's extra headers on a request that passed [`permit`].
fn authorize(shared: &Shared, request: &web_sys::Request, _: Permit, token: &JsValue) -> Result<(), JsValue> {
    let headers = request.headers();
    headers.set(
        "Authorization",
        &crate::core::text::cat(&["Bearer ", &token.as_string().unwrap_or_default()]),
    )?;
    let extra = shared
        .try_borrow()
        .map(|i| i.headers.clone())
        .unwrap_or(JsValue::UNDEFINED);
    if extra.is_object() {
        for entry in Object::entries(extra.unchecked_ref()).iter() {
            let pair: js_sys::Array = entry.unchecked_into();
            if let (Some(k), Some(v)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                headers.set(&k, &v)?;
            }
        }
    }
    Ok(())
}

/// A Supabase-style session that keeps itself fresh.
///
/// Hand it the session once; `await accessToken()` then always yields a valid access token,
/// with one refresh request however many callers ask at once.
#[wasm_bindgen]
pub struct AuthSession {
    pub(crate) shared: Shared,
}

use wasm_bindgen::JsCast;

#[wasm_bindgen]
impl AuthSession {
    /// Creates the session. Throws an `AuthwireError` with `code` `invalid_options`,
    /// `invalid_session`, `session_expired`, `invalid_url` or `insecure_url`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "AuthSessionOptions")] options: JsValue,
    ) -> Result<AuthSession, JsValue> {
        let read = AuthOptions::read_in(options::field(options.clone()), Build::THIS)
            .map_err(|e| options::option_error(&e))?;
        let source = match read.source {
            Some(spec) => Some(options::source(spec, &options)?),
            None => None,
        };
        // The lite build refused cross-tab and storage options; `FULL` makes that known to the
        // compiler, so their machinery is left out of the lite wasm.
        let cross_tab = FULL && read.cross_tab;
        let (policy, debug_on, key) = (read.policy, read.debug, read.storage_key);
        let fetch_policy = read.fetch;
        let storage_kind = match read.storage {
            _ if !FULL => None,
            StorageKind::Memory => None,
            StorageKind::Local => Some("local"),
            StorageKind::Session => Some("session"),
        };
        let opts = options;
        let store = storage_kind.and_then(|k| Store::open(k, key.clone()));
        let bootstrap = source.as_ref().is_some_and(Source::bootstraps);
        let broker = FULL
            && source
                .as_ref()
                .is_some_and(|s| crate::core::source::health_call(&s.spec).is_some());
        let seed = (js_sys::Math::random() * 9_007_199_254_740_991.0) as u64;
        let id = NEXT_ID.with(|n| {
            let id = n.get();
            n.set(id.wrapping_add(1));
            id
        });
        let machine = AuthMachine::new(
            policy,
            source.is_some(),
            source.as_ref().is_some_and(Source::needs_refresh_token),
            seed,
        )
        .with_bootstrap(bootstrap);
        let mode = if !cross_tab {
            Mode::Alone
        } else if tabs::has_locks() {
            Mode::Locks
        } else {
            Mode::Claims
        };
        // Below 2^53: the tab id travels as a JS number.
        let tab_id = (js_sys::Math::random() * 9_007_199_254_740_991.0) as u64;
        // The defaults the simulation proves: a request is waited for up to 30 s before its fate
        // counts as unknown (a shorter cap re-presents tokens the server may have rotated: the
        // sim finds reuses at once with 10 s).
        let tabs_config = TabsConfig::new(mode, key.clone(), tab_id);
        let shared: Shared = Rc::new(RefCell::new(Inner {
            machine,
            source,
            timer: None,
            start_timer: None,
            tabs: TabsMachine::new(tabs_config),
            tabs_timer: None,
            requests: Vec::new(),
            held: Vec::new(),
            lock_cb: None,
            token_waiters: Vec::new(),
            refresh_waiters: Vec::new(),
            subscribers: js_sys::Set::new(&JsValue::UNDEFINED),
            listeners: js_sys::Set::new(&JsValue::UNDEFINED),
            snapshot: None,
            dom: Vec::new(),
            debug: debug_on,
            freed: false,
            id,
            token_js: None,
            watchers: Vec::new(),
            next_watch: 0,
            follows: Vec::new(),
            key: key.clone(),
            store,
            link: None,
            storage_listener: None,
            raw: JsValue::UNDEFINED,
            headers: JsValue::UNDEFINED,
            fetch_policy,
            health: None,
            adopting: false,
            pagehide: None,
        }));
        REGISTRY.with(|r| r.borrow_mut().push((id, Rc::downgrade(&shared))));
        let this = AuthSession { shared };
        let session = get(&opts, "session");
        if !session.is_undefined() && !session.is_null() {
            this.set_session(session)?;
        } else if let Some(text) = this
            .shared
            .try_borrow()
            .ok()
            .filter(|_| FULL)
            .and_then(|i| i.store.as_ref().and_then(Store::load))
        {
            // A stored value that is corrupt, foreign or expired beyond renewal is ignored, with an event.
            let loaded = parse_stored(&text)
                .ok_or_else(|| code_error(Code::InvalidSession))
                .and_then(|v| apply_session(&this.shared, &v, false));
            if let Err(e) = loaded {
                let weak = Rc::downgrade(&this.shared);
                let code = get(&e, "code");
                later(move || {
                    let listeners = weak
                        .upgrade()
                        .and_then(|s| s.try_borrow().ok().filter(|i| !i.freed).map(|i| i.listeners.clone()));
                    if let Some(l) = listeners {
                        let ev = frozen(&[
                            ("type", "STORAGE_IGNORED".into()),
                            ("at", JsValue::from_f64(now_ms() as f64)),
                            ("code", code),
                        ]);
                        aw_emit(&l, &ev);
                    }
                });
            }
        }
        let weak = Rc::downgrade(&this.shared);
        let dom = web::wake_listeners(Rc::new(move |w| wake(&weak, w)));
        let weak = Rc::downgrade(&this.shared);
        let link = if cross_tab {
            TabLink::join(&key, tab_id, move |m| {
                let Some(shared) = weak.upgrade() else { return };
                if let Some(input) = peer_input(m) {
                    drive_tabs(&shared, input);
                }
            })
        } else {
            None
        };
        let weak = Rc::downgrade(&this.shared);
        let lock_cb = cross_tab.then(|| {
            Closure::<dyn FnMut(f64, JsValue)>::new(move |id: f64, release: JsValue| {
                let id = id as u64;
                let Some(shared) = weak.upgrade().filter(|s| s.try_borrow().is_ok_and(|i| !i.freed)) else {
                    // Freed meanwhile: let go of a granted lock at once.
                    if let Some(f) = release.dyn_ref::<Function>() {
                        let _ = f.call0(&JsValue::UNDEFINED);
                    }
                    return;
                };
                match release.dyn_into::<Function>() {
                    Ok(f) => {
                        if let Ok(mut inner) = shared.try_borrow_mut() {
                            inner.held.push((id, f));
                        }
                        drive_tabs(&shared, TabsInput::LockGranted { id });
                    }
                    Err(_) => drive_tabs(&shared, TabsInput::LockTimedOut { id }),
                }
            })
        });
        let weak = Rc::downgrade(&this.shared);
        let pagehide = web::window().filter(|_| cross_tab).and_then(|w| {
            DomListener::new(&w, "pagehide", move |_| {
                if let Some(shared) = weak.upgrade() {
                    drive_tabs(&shared, TabsInput::Closing);
                }
            })
        });
        let weak = Rc::downgrade(&this.shared);
        let storage_listener = web::window().filter(|_| storage_kind.is_some()).and_then(|w| {
            DomListener::new(&w, "storage", move |e| {
                let Some(shared) = weak.upgrade() else { return };
                let Some(e) = e.dyn_ref::<web_sys::StorageEvent>() else {
                    return;
                };
                let about = shared
                    .try_borrow()
                    .is_ok_and(|i| i.store.as_ref().is_some_and(|s| s.is_about(e)));
                if about {
                    let input = match e.new_value() {
                        None => TabsInput::Peer(Peer::SignOut),
                        Some(text) => TabsInput::Stored(parse_stored(&text).and_then(published)),
                    };
                    drive_tabs(&shared, input);
                }
            })
        });
        let signed_in = {
            let mut inner = this.shared.try_borrow_mut().map_err(|_| code_error(Code::Freed))?;
            inner.dom = dom;
            inner.link = link;
            inner.storage_listener = storage_listener;
            inner.lock_cb = lock_cb;
            inner.pagehide = pagehide;
            if let (true, Some(l), None) = (FULL, &inner.link, inner.machine.session()) {
                l.post(&TabMessage::Hello);
            }
            inner.machine.session().is_some()
        };
        if broker {
            check_health(&Rc::downgrade(&this.shared));
        }
        if bootstrap && !signed_in {
            // Sign in now; across tabs, give the others a moment to answer the hello first.
            // A timer, not a future: the lite build then links no futures channel.
            let weak = Rc::downgrade(&this.shared);
            let delay = crate::core::policy::start_delay_ms(cross_tab) as u32;
            let timer = web::timeout(delay, move || {
                let Some(shared) = weak.upgrade() else { return };
                let missing = shared
                    .try_borrow()
                    .is_ok_and(|i| i.machine.session().is_none() && i.machine.inflight().is_none());
                if missing {
                    drive(&shared, |m, now, out| m.handle(now, Input::Start, out));
                }
            });
            if let Ok(mut inner) = this.shared.try_borrow_mut() {
                inner.start_timer = Some(timer);
            }
        }
        Ok(this)
    }

    /// Replaces the session (a Supabase `Session` object or a bare JWT); `null` signs out locally.
    /// Throws `invalid_session` or `session_expired` and keeps the old session when the new one is refused.
    #[wasm_bindgen(js_name = setSession)]
    pub fn set_session(
        &self,
        #[wasm_bindgen(unchecked_param_type = "SessionInput | null")] session: JsValue,
    ) -> Result<(), JsValue> {
        apply_session(&self.shared, &session, false)
    }

    /// Follows a supabase-js client: its sign-in, refresh and sign-out flow into this session
    /// (`onAuthStateChange`), and refreshes go through `client.auth.refreshSession()` so that
    /// supabase-js stays the only one spending the rotating refresh token. Returns the function
    /// that stops following; `free()` stops it too.
    #[wasm_bindgen(js_name = followSupabase, unchecked_return_type = "() => void")]
    pub fn follow_supabase(
        &self,
        #[wasm_bindgen(unchecked_param_type = "SupabaseClientLike")] client: JsValue,
    ) -> Result<Function, JsValue> {
        let api = get(&client, "auth");
        let on_change: Function = get(&api, "onAuthStateChange").dyn_into().map_err(|_| {
            error(
                Code::InvalidArgument,
                "followSupabase takes a supabase-js client (with auth.onAuthStateChange)",
            )
        })?;
        let weak = Rc::downgrade(&self.shared);
        let callback = Closure::<dyn FnMut(JsValue, JsValue)>::new(move |event: JsValue, session: JsValue| {
            let Some(shared) = weak.upgrade() else { return };
            let event = event.as_string();
            if event.as_deref() == Some("SIGNED_OUT") || session.is_null() {
                drive(&shared, |m, now, out| m.handle(now, Input::SignOut, out));
            } else if session.is_object() {
                // A malformed session from the client is reported through the console, not thrown
                // into supabase-js's emitter.
                if let Err(e) = apply_session(&shared, &session, event.as_deref() == Some("TOKEN_REFRESHED")) {
                    web_sys::console::error_1(&e);
                }
            }
        });
        let result = on_change.call1(&api, callback.as_ref()).map_err(|_| {
            error(
                Code::InvalidArgument,
                "followSupabase: the client's auth.onAuthStateChange threw",
            )
        })?;
        let subscription = get(&get(&result, "data"), "subscription");
        let source = Source {
            spec: crate::core::options::SourceSpec::Callback,
            callback: Some(aw_supabase_refresher(&api)),
        };
        {
            let mut inner = self.shared.try_borrow_mut().map_err(|_| code_error(Code::Freed))?;
            inner.source = Some(source);
            inner.follows.push((subscription.clone(), callback));
        }
        // The client's project URL (`supabaseUrl`, a string or URL in supabase-js 2) is the
        // source's origin: `auth.fetch` may send the token there, as to any refresh source's.
        // The lite build has no `auth.fetch`.
        if FULL {
            let p = get(&client, "supabaseUrl");
            let project = if p.is_object() { web::aw_href(&p) } else { p.as_string() };
            if let (Some(url), Ok(mut inner)) = (project, self.shared.try_borrow_mut()) {
                inner.fetch_policy.add_origin_of(&url, options::browser_url);
            }
        }
        drive(&self.shared, |m, now, out| m.set_source(true, true, false, now, out));
        Ok(aw_unsubscriber(&subscription))
    }

    /// A token valid for at least the transit margin; refreshes first when needed, sharing one
    /// request among all callers. Rejects with `signed_out`, `session_expired`, `invalid_grant`,
    /// `network_error`, ... (see the error codes).
    #[wasm_bindgen(js_name = accessToken, unchecked_return_type = "Promise<string>")]
    pub fn access_token(&self) -> Promise {
        token_promise(&self.shared)
    }

    /// Refreshes now (joining a refresh already running). Resolves when a new token is in place.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn refresh(&self) -> Promise {
        refresh_promise(&self.shared)
    }

    /// `fetch` with `Authorization: Bearer <token>` (and any headers the token source returned, such
    /// as a CSRF token). On a 401 it refreshes once and retries once; a request whose body is a
    /// stream cannot be replayed, so its 401 is returned as it is.
    ///
    /// Credentials go only to the page's own origin, the refresh source's origin and the origins
    /// listed in `fetchOrigins`, and plain `http:` only to loopback (unless `allowInsecure`);
    /// anything else rejects with `origin_not_allowed` (or `insecure_url`, `invalid_url`) before a
    /// token is asked for or a request made. Not in the lite build.
    #[cfg(feature = "full")]
    #[wasm_bindgen(unchecked_return_type = "Promise<Response>")]
    pub fn fetch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "RequestInfo | URL")] input: JsValue,
        #[wasm_bindgen(unchecked_param_type = "RequestInit")] init: JsValue,
    ) -> Promise {
        let shared = self.shared.clone();
        let mut fns: Option<Settler> = None;
        let promise = Promise::new(&mut |res, rej| fns = Some((res, rej)));
        let Some((res, rej)) = fns else { return promise };
        // On the next microtask, as before any other answer: nothing runs inside the app's call.
        later(move || {
            if let Err(e) = authorized_fetch(shared, input, init, res, rej.clone()) {
                let _ = rej.call1(&JsValue::UNDEFINED, &e);
            }
        });
        promise
    }

    /// Ends the session here (SIGNED_OUT at once) and, for a Supabase source, revokes it on the
    /// server (`POST /auth/v1/logout`, best effort: resolves even when offline).
    #[wasm_bindgen(js_name = signOut, unchecked_return_type = "Promise<void>")]
    pub fn sign_out(&self) -> Promise {
        let (source, token) = match self.shared.try_borrow() {
            Ok(i) if !i.freed => (i.source.clone(), i.machine.access_token().cloned()),
            _ => (None, None),
        };
        drive(&self.shared, |m, now, out| m.handle(now, Input::SignOut, out));
        match (source, token) {
            (Some(source), Some(token)) => source.logout(&token),
            _ => None,
        }
        .unwrap_or_else(|| Promise::resolve(&JsValue::UNDEFINED))
    }

    /// Calls `listener` whenever the snapshot changes. Returns the function that unsubscribes.
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn subscribe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "() => void")] listener: &JsValue,
    ) -> Result<Function, JsValue> {
        let inner = self.shared.try_borrow().map_err(|_| code_error(Code::Freed))?;
        web::listen(&inner.subscribers, listener, "subscribe")
    }

    /// Calls `listener` with every event (`SIGNED_IN`, `TOKEN_REFRESHED`, `REFRESH_FAILED`,
    /// `SIGNED_OUT`, `SESSION_EXPIRED`). Returns the function that unsubscribes.
    #[wasm_bindgen(js_name = onEvent, unchecked_return_type = "() => void")]
    pub fn on_event(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(event: AuthEvent) => void")] listener: &JsValue,
    ) -> Result<Function, JsValue> {
        let inner = self.shared.try_borrow().map_err(|_| code_error(Code::Freed))?;
        web::listen(&inner.listeners, listener, "onEvent")
    }

    /// Identifies this session to a `ChatSocket` built on it (internal).
    #[wasm_bindgen(getter = __authwireId, skip_typescript)]
    pub fn authwire_id(&self) -> u32 {
        self.shared.try_borrow().map_or(0, |i| i.id)
    }

    /// The state for rendering: the same frozen object until something changes. Never holds a token.
    #[wasm_bindgen(js_name = getSnapshot, unchecked_return_type = "AuthSnapshot")]
    pub fn get_snapshot(&self) -> JsValue {
        let Ok(mut inner) = self.shared.try_borrow_mut() else {
            return JsValue::UNDEFINED;
        };
        if let Some(s) = &inner.snapshot {
            return s.clone();
        }
        let m = &inner.machine;
        let s = m.session();
        let snap = frozen(&[
            ("status", m.status().as_str().into()),
            (
                "expiresAt",
                s.map_or(JsValue::NULL, |s| JsValue::from_f64(s.expires_at_ms as f64)),
            ),
            (
                "userId",
                s.and_then(|s| s.user_id.as_deref())
                    .map_or(JsValue::NULL, JsValue::from_str),
            ),
            ("refreshCount", JsValue::from_f64(m.refresh_count() as f64)),
            ("lastError", m.last_error().map_or(JsValue::NULL, |c| c.as_str().into())),
            (
                "sourceHealth",
                inner
                    .health
                    .map_or(JsValue::NULL, |h| (if h { "ok" } else { "unhealthy" }).into()),
            ),
        ]);
        inner.snapshot = Some(snap.clone());
        snap
    }
}

impl Drop for AuthSession {
    /// `free()`: stops the timer, aborts a running refresh, removes DOM listeners, rejects pending
    /// promises with `freed`, and drops every listener. Nothing fires afterwards.
    fn drop(&mut self) {
        let pending = {
            let Ok(mut inner) = self.shared.try_borrow_mut() else {
                return;
            };
            inner.freed = true;
            let id = inner.id;
            REGISTRY.with(|r| r.borrow_mut().retain(|(i, w)| *i != id && w.strong_count() > 0));
            inner.timer = None;
            inner.start_timer = None;
            inner.tabs_timer = None;
            inner.token_js = None;
            for (_, c) in inner.requests.drain(..) {
                c.abort();
            }
            // Held Web Locks are let go (a lock granted later finds the callback gone and lets go
            // at once); the page's claims are withdrawn by `pagehide`, or expire.
            let held: Vec<Function> = inner.held.drain(..).map(|(_, f)| f).collect();
            for f in held {
                let _ = f.call0(&JsValue::UNDEFINED);
            }
            inner.pagehide = None;
            inner.dom.clear();
            inner.link = None;
            inner.storage_listener = None;
            for (subscription, _callback) in inner.follows.drain(..) {
                // Unsubscribe before the callback is dropped, so supabase-js never calls a freed closure.
                let _ = aw_unsubscriber(&subscription).call0(&JsValue::UNDEFINED);
            }
            inner.subscribers.clear();
            inner.listeners.clear();
            let watchers: Vec<Watcher> = inner.watchers.drain(..).map(|(_, w)| w).collect();
            let mut p: Vec<Settler> = inner.token_waiters.drain(..).collect();
            p.append(&mut inner.refresh_waiters);
            (p, watchers)
        };
        let (pending, watchers) = pending;
        // Sockets built on this session stop: there is no session any more.
        let ended = Event {
            kind: EventKind::SignedOut,
            at_ms: now_ms(),
            expires_at_ms: None,
            code: Some(Code::Freed),
            will_retry: false,
            retry_in_ms: None,
        };
        for w in watchers {
            w(&ended);
        }
        let e = code_error(Code::Freed);
        for (_, rej) in pending {
            let _ = rej.call1(&JsValue::UNDEFINED, &e);
        }
    }
}
