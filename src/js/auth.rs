//! `AuthSession`: the session class JavaScript sees.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use gloo_timers::callback::Timeout;
use js_sys::{Function, Object, Promise, Reflect, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};

use crate::core::auth_machine::{Action, Answer, AuthMachine, Event, EventKind, Failure, Input, Wake};
use crate::core::error::Code;
use crate::core::options::{AuthOptions, StorageKind};
use crate::core::session::{Origin, Session};
use crate::core::token::Secret;
use crate::web::fetch::{global_fetch, Fetched, Source};
use crate::web::options;
use crate::web::tabs::{self, Store, TabLink, TabMessage};
use crate::web::{self, aw_emit, aw_listen, code_error, debug, error, frozen, get, now_ms, DomListener};

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
    /// One controller per attempt in flight, made when the machine says `Fetch`, so that an
    /// `Abort` in the same tick stops the request before it is ever sent.
    aborts: Vec<(u64, web_sys::AbortController)>,
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
    /// The broker's health, when the source is a broker.
    health: Option<bool>,
    /// Set while taking over what another tab published, so it is not echoed back.
    adopting: bool,
    /// Refresh claims heard from other tabs (time claimed, tab id), for browsers without Web Locks.
    claims: Vec<(f64, String)>,
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
    {
        let Ok(mut inner) = shared.try_borrow_mut() else { return };
        for a in actions {
            match a {
                Action::Fetch { attempt, present, .. } => {
                    if inner.debug {
                        debug("[authwire] refreshing, attempt", &JsValue::from_f64(attempt as f64));
                    }
                    let controller = web_sys::AbortController::new().ok();
                    let signal = controller.as_ref().map(|c| c.signal());
                    if let Some(c) = controller {
                        inner.aborts.push((attempt, c));
                    }
                    let current = inner.machine.access_token().cloned();
                    let task = Attempt {
                        id: attempt,
                        present,
                        current,
                        signal,
                    };
                    spawn_local(refresh_task(Rc::downgrade(shared), task));
                }
                Action::Abort { attempt } => {
                    if let Some(pos) = inner.aborts.iter().position(|(a, _)| *a == attempt) {
                        inner.aborts.swap_remove(pos).1.abort();
                    }
                }
                Action::WakeAt(at) => {
                    let delay = at.saturating_sub(now_ms()).min(i32::MAX as u64) as u32;
                    if inner.debug {
                        debug("[authwire] next check in ms", &JsValue::from_f64(f64::from(delay)));
                    }
                    let weak = Rc::downgrade(shared);
                    inner.timer = Some(Timeout::new(delay, move || wake(&weak, Wake::Timer)));
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
                        debug(&format!("[authwire] event {}", ev.kind.as_str()), &event_object(&ev));
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
/// The session is turned into JSON text with no borrow held: the app's object may have getters
/// or a `toJSON` that call back into the SDK (or throw: then it is not shared).
fn share(shared: &Shared, kind: EventKind) {
    let raw = match shared.try_borrow() {
        Ok(i) if !i.freed && (i.store.is_some() || i.link.is_some()) => i.raw.clone(),
        _ => return,
    };
    let text = match kind {
        EventKind::SignedIn | EventKind::TokenRefreshed if raw.is_object() || raw.is_string() => {
            match JSON::stringify(&raw).ok().and_then(|t| t.as_string()) {
                Some(t) => Some(t),
                None => return,
            }
        }
        EventKind::SignedOut => None,
        _ => return,
    };
    let Ok(inner) = shared.try_borrow() else { return };
    match text {
        Some(text) => {
            if let Some(s) = &inner.store {
                s.save_text(&text);
            }
            if let Some(l) = &inner.link {
                l.post(&TabMessage::Session(JsValue::from_str(&text)));
            }
        }
        None => {
            if let Some(s) = &inner.store {
                s.clear();
            }
            if let Some(l) = &inner.link {
                l.post(&TabMessage::SignOut);
            }
        }
    }
}

/// Takes over a session another tab published (or `null`: it signed out). An older or identical
/// session is ignored; its events reach this tab's sockets as usual.
fn adopt(shared: &Shared, published: Option<JsValue>) {
    let input = match published {
        None => Input::SignOut,
        Some(v) => {
            let Ok(s) = Session::from_raw(&web::raw_session(&v), now_ms(), Origin::HandedOver) else {
                return;
            };
            let Ok(mut inner) = shared.try_borrow_mut() else { return };
            let newer = inner
                .machine
                .session()
                .is_none_or(|cur| cur.access != s.access && s.expires_at_ms >= cur.expires_at_ms);
            if !newer || inner.machine.check(&s, now_ms()).is_err() {
                return;
            }
            if inner.debug {
                debug(
                    "[authwire] adopting a session published by another tab, expiring at",
                    &JsValue::from_f64(s.expires_at_ms as f64),
                );
            }
            inner.raw = v;
            Input::SetSession(s)
        }
    };
    if let Ok(mut inner) = shared.try_borrow_mut() {
        if matches!(input, Input::SignOut) && inner.machine.session().is_none() {
            return;
        }
        inner.adopting = true;
    }
    drive(shared, |m, now, out| m.handle(now, input, out));
    if let Ok(mut inner) = shared.try_borrow_mut() {
        inner.adopting = false;
    }
}

fn wake(weak: &Weak<RefCell<Inner>>, w: Wake) {
    if let Some(shared) = weak.upgrade() {
        drive(&shared, |m, now, out| m.handle(now, Input::Wake(w), out));
    }
}

/// One refresh attempt as the machine started it: what it presents is fixed at that moment.
struct Attempt {
    id: u64,
    /// The refresh token the machine named (never re-read later: a newer session's token is not ours).
    present: Option<Secret>,
    /// The access token held when the attempt started (a broker answering it again is asked to refresh).
    current: Option<Secret>,
    signal: Option<web_sys::AbortSignal>,
}

async fn refresh_task(weak: Weak<RefCell<Inner>>, task: Attempt) {
    let Attempt {
        id: attempt,
        present: refresh_token,
        current,
        signal,
    } = task;
    let (source, cross_tab_key) = {
        let Some(shared) = weak.upgrade() else { return };
        let Ok(inner) = shared.try_borrow() else { return };
        let Some(source) = inner.source.clone() else { return };
        (source, inner.link.is_some().then(|| inner.key.clone()))
    };
    // Superseded in the tick it was made (`refresh(); setSession(s2)`, `signOut()`): never sent.
    if signal.as_ref().is_some_and(|s| s.aborted()) {
        return;
    }
    let result = match cross_tab_key {
        None => source.refresh(refresh_token, current, signal).await,
        Some(key) => refresh_across_tabs(weak.clone(), attempt, key, source, refresh_token, current, signal).await,
    };
    let Some(shared) = weak.upgrade() else { return };
    if let Ok(mut inner) = shared.try_borrow_mut() {
        inner.aborts.retain(|(a, _)| *a != attempt);
    }
    let input = match result {
        Ok(Fetched { session, raw, headers }) => {
            if let Ok(mut inner) = shared.try_borrow_mut() {
                if inner.machine.inflight() == Some(attempt) {
                    inner.raw = raw;
                    inner.headers = headers;
                }
            }
            Input::RefreshOk { attempt, session }
        }
        Err(failure) => {
            check_health(&weak);
            Input::RefreshErr { attempt, failure }
        }
    };
    drive(&shared, |m, now, out| m.handle(now, input, out));
}

/// One refresh for all the tabs: under the Web Lock of this session key, and only if no other tab
/// spent our refresh token already (then its new session is in storage or on its way over the
/// channel: take it, and let it supersede this attempt). Without Web Locks, the earliest claim on
/// the channel refreshes.
async fn refresh_across_tabs(
    weak: Weak<RefCell<Inner>>,
    attempt: u64,
    key: String,
    source: Source,
    refresh_token: Option<Secret>,
    current: Option<Secret>,
    signal: Option<web_sys::AbortSignal>,
) -> Result<Fetched, Failure> {
    let slot: Rc<RefCell<Option<Result<Fetched, Failure>>>> = Rc::new(RefCell::new(None));
    let weak_for_claim = weak.clone();
    let task = {
        let slot = slot.clone();
        let key = key.clone();
        move || {
            wasm_bindgen_futures::future_to_promise(async move {
                // Inside the lock: was this attempt superseded while waiting (another tab's session
                // adopted), or did another tab spend our refresh token already?
                let spent = match refresh_token.as_ref().map(Secret::expose) {
                    Some(rt) => tabs::is_spent(&key, rt).await,
                    None => false,
                };
                let shared = weak.upgrade();
                let superseded = shared.as_ref().is_none_or(|s| {
                    s.try_borrow()
                        .map_or(true, |i| i.freed || i.machine.inflight() != Some(attempt))
                });
                if let Some(sh) = &shared {
                    if sh.try_borrow().is_ok_and(|i| i.debug) {
                        debug(
                            "[authwire] in the refresh lock; superseded, spent:",
                            &js_sys::Array::of2(&superseded.into(), &spent.into()),
                        );
                    }
                }
                let result = if superseded {
                    Err(Failure::Network) // ignored: the attempt is no longer the one in flight
                } else if spent {
                    // Its session is in storage (when stored) or on its way over the channel: take it.
                    if let Some(shared) = &shared {
                        let stored = shared
                            .try_borrow()
                            .ok()
                            .and_then(|i| i.store.as_ref().and_then(Store::load));
                        match stored.as_deref().and_then(parse_stored) {
                            Some(v) => adopt(shared, Some(v)),
                            None => {
                                if let Ok(inner) = shared.try_borrow() {
                                    if let Some(l) = &inner.link {
                                        l.post(&TabMessage::Hello);
                                    }
                                }
                            }
                        }
                    }
                    Err(Failure::Network)
                } else {
                    let r = source.refresh(refresh_token.clone(), current, signal).await;
                    if let (Ok(_), Some(rt)) = (&r, &refresh_token) {
                        tabs::mark_spent(&key, rt.expose());
                    }
                    r
                };
                *slot.borrow_mut() = Some(result);
                Ok(JsValue::UNDEFINED)
            })
        }
    };
    if tabs::has_locks() {
        if let Some(p) = tabs::with_lock(&format!("authwire-refresh:{key}"), task) {
            let _ = wasm_bindgen_futures::JsFuture::from(p).await;
        }
    } else if claim_refresh(&weak_for_claim).await {
        // Without Web Locks: the earliest claim on the channel refreshes; the others wait for its
        // session. The spent marker (localStorage here) is the second line of defence.
        let _ = wasm_bindgen_futures::JsFuture::from(task()).await;
    }
    let taken = slot.borrow_mut().take();
    taken.unwrap_or(Err(Failure::Network))
}

/// Claims the next refresh on the tab channel and waits 150 ms for competing claims: `true` when
/// this tab's claim is the earliest (time, then tab id), so it may refresh.
async fn claim_refresh(weak: &Weak<RefCell<Inner>>) -> bool {
    let mine = {
        let Some(shared) = weak.upgrade() else { return false };
        let Ok(inner) = shared.try_borrow() else { return false };
        let Some(link) = &inner.link else { return true };
        let at = now_ms() as f64;
        link.post(&TabMessage::Claim(at, String::new()));
        (at, link.id().to_owned())
    };
    gloo_timers::future::TimeoutFuture::new(150).await;
    let Some(shared) = weak.upgrade() else { return false };
    let Ok(inner) = shared.try_borrow() else { return false };
    // A competing claim made within the window before ours (or at the same ms by a smaller id) wins.
    !inner
        .claims
        .iter()
        .any(|(at, id)| (*at > mine.0 - 150.0) && (*at < mine.0 || (*at == mine.0 && *id < mine.1)))
}

/// Asks a broker source for its health and puts it in the snapshot.
fn check_health(weak: &Weak<RefCell<Inner>>) {
    let weak = weak.clone();
    spawn_local(async move {
        let source = weak
            .upgrade()
            .and_then(|s| s.try_borrow().ok().and_then(|i| i.source.clone()));
        let Some(source) = source else { return };
        let Some(healthy) = source.health().await else { return };
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

fn options_error(message: &str) -> JsValue {
    error(Code::InvalidOptions, message)
}

fn session_error(e: &crate::core::session::SessionError) -> JsValue {
    error(Code::InvalidSession, &e.to_string())
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
    let s = Session::from_raw(&web::raw_session(session), now, Origin::HandedOver).map_err(|e| session_error(&e))?;
    {
        let inner = shared.try_borrow().map_err(|_| code_error(Code::Freed))?;
        if inner.freed {
            return Err(code_error(Code::Freed));
        }
        if inner.machine.session().is_some_and(|cur| cur.access == s.access) {
            return Ok(());
        }
        inner
            .machine
            .check(&s, now)
            .map_err(|c| error(c, "the session has expired and no refresh source can renew it"))?;
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

/// Puts the bearer token and the source's extra headers on a request.
fn authorize(shared: &Shared, request: &web_sys::Request, token: &JsValue) -> Result<(), JsValue> {
    let headers = request.headers();
    headers.set(
        "Authorization",
        &format!("Bearer {}", token.as_string().unwrap_or_default()),
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
        let read = AuthOptions::read(options::field(options.clone())).map_err(|e| options::option_error(&e))?;
        let source = match read.source {
            Some(spec) => Some(options::source(spec, &options)?),
            None => None,
        };
        let (policy, debug_on, cross_tab, key) = (read.policy, read.debug, read.cross_tab, read.storage_key);
        let storage_kind = match read.storage {
            StorageKind::Memory => None,
            StorageKind::Local => Some("local"),
            StorageKind::Session => Some("session"),
        };
        let opts = options;
        let store = storage_kind.and_then(|k| Store::open(k, key.clone()));
        let bootstrap = source.as_ref().is_some_and(Source::bootstraps);
        let broker = source.as_ref().is_some_and(|s| crate::core::source::health_call(&s.spec).is_some());
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
        let shared: Shared = Rc::new(RefCell::new(Inner {
            machine,
            source,
            timer: None,
            aborts: Vec::new(),
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
            health: None,
            adopting: false,
            claims: Vec::new(),
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
            .and_then(|i| i.store.as_ref().and_then(Store::load))
        {
            // A stored value that is corrupt, foreign or expired beyond renewal is ignored, with an event.
            let loaded = parse_stored(&text)
                .ok_or_else(|| code_error(Code::InvalidSession))
                .and_then(|v| apply_session(&this.shared, &v, false));
            if let Err(e) = loaded {
                let weak = Rc::downgrade(&this.shared);
                let code = get(&e, "code");
                spawn_local(async move {
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
            TabLink::join(&key, move |m| {
                let Some(shared) = weak.upgrade() else { return };
                match m {
                    TabMessage::Session(v) => adopt(&shared, Some(v)),
                    TabMessage::SignOut => adopt(&shared, None),
                    TabMessage::Hello => {
                        let has = shared.try_borrow().is_ok_and(|i| i.machine.session().is_some());
                        if has {
                            share(&shared, EventKind::SignedIn);
                        }
                    }
                    TabMessage::Claim(at, id) => {
                        if let Ok(mut inner) = shared.try_borrow_mut() {
                            let now = now_ms() as f64;
                            inner.claims.retain(|(t, _)| now - t < 5_000.0);
                            inner.claims.push((at, id));
                        }
                    }
                }
            })
        } else {
            None
        };
        let weak = Rc::downgrade(&this.shared);
        let storage_listener = web_sys::window().filter(|_| storage_kind.is_some()).and_then(|w| {
            DomListener::new(&w, "storage", move |e| {
                let Some(shared) = weak.upgrade() else { return };
                let Some(e) = e.dyn_ref::<web_sys::StorageEvent>() else {
                    return;
                };
                let about = shared
                    .try_borrow()
                    .is_ok_and(|i| i.store.as_ref().is_some_and(|s| s.is_about(e)));
                if about {
                    match e.new_value() {
                        None => adopt(&shared, None),
                        Some(text) => {
                            if let Some(v) = parse_stored(&text) {
                                adopt(&shared, Some(v));
                            }
                        }
                    }
                }
            })
        });
        let signed_in = {
            let mut inner = this.shared.try_borrow_mut().map_err(|_| code_error(Code::Freed))?;
            inner.dom = dom;
            inner.link = link;
            inner.storage_listener = storage_listener;
            if let (Some(l), None) = (&inner.link, inner.machine.session()) {
                l.post(&TabMessage::Hello);
            }
            inner.machine.session().is_some()
        };
        if broker {
            check_health(&Rc::downgrade(&this.shared));
        }
        if bootstrap && !signed_in {
            // Sign in now; across tabs, give the others a moment to answer the hello first.
            let weak = Rc::downgrade(&this.shared);
            let delay = if cross_tab { 300 } else { 0 };
            spawn_local(async move {
                gloo_timers::future::TimeoutFuture::new(delay).await;
                let Some(shared) = weak.upgrade() else { return };
                let missing = shared
                    .try_borrow()
                    .is_ok_and(|i| i.machine.session().is_none() && i.machine.inflight().is_none());
                if missing {
                    drive(&shared, |m, now, out| m.handle(now, Input::Start, out));
                }
            });
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
        let on_change: Function = get(&api, "onAuthStateChange")
            .dyn_into()
            .map_err(|_| options_error("followSupabase takes a supabase-js client (with auth.onAuthStateChange)"))?;
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
        let result = on_change.call1(&api, callback.as_ref())?;
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
    #[wasm_bindgen(unchecked_return_type = "Promise<Response>")]
    pub fn fetch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "RequestInfo | URL")] input: JsValue,
        #[wasm_bindgen(unchecked_param_type = "RequestInit")] init: JsValue,
    ) -> Promise {
        let shared = self.shared.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let init: web_sys::RequestInit = if init.is_object() {
                init.unchecked_into()
            } else {
                web_sys::RequestInit::new()
            };
            let replayable = get(&init, "body").dyn_ref::<web_sys::ReadableStream>().is_none();
            // A string, a `URL` (read through its `href`) or a `Request`; anything else is refused
            // with a code, never thrown from inside this future.
            let request = match input.dyn_ref::<web_sys::Request>() {
                Some(r) => web_sys::Request::new_with_request_and_init(r, &init)?,
                None => {
                    let text = input.as_string().or_else(|| get(&input, "href").as_string());
                    let Some(text) = text else {
                        return Err(error(Code::InvalidUrl, "fetch takes a URL string, a URL or a Request"));
                    };
                    web_sys::Request::new_with_str_and_init(&text, &init)
                        .map_err(|_| error(Code::InvalidUrl, "fetch: the URL cannot be parsed"))?
                }
            };
            let spare = if replayable { request.clone().ok() } else { None };
            authorize(&shared, &request, &JsFuture::from(token_promise(&shared)).await?)?;
            let response: web_sys::Response = JsFuture::from(global_fetch(&request)).await?.unchecked_into();
            let Some(spare) = spare.filter(|_| crate::core::source::retry_after(response.status())) else {
                return Ok(response.into());
            };
            if JsFuture::from(refresh_promise(&shared)).await.is_err() {
                return Ok(response.into());
            }
            authorize(&shared, &spare, &JsFuture::from(token_promise(&shared)).await?)?;
            JsFuture::from(global_fetch(&spare)).await
        })
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
        wasm_bindgen_futures::future_to_promise(async move {
            if let (Some(source), Some(token)) = (source, token) {
                source.logout(&token).await;
            }
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Calls `listener` whenever the snapshot changes. Returns the function that unsubscribes.
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn subscribe(&self, listener: &Function) -> Result<Function, JsValue> {
        let inner = self.shared.try_borrow().map_err(|_| code_error(Code::Freed))?;
        Ok(aw_listen(&inner.subscribers, listener))
    }

    /// Calls `listener` with every event (`SIGNED_IN`, `TOKEN_REFRESHED`, `REFRESH_FAILED`,
    /// `SIGNED_OUT`, `SESSION_EXPIRED`). Returns the function that unsubscribes.
    #[wasm_bindgen(js_name = onEvent, unchecked_return_type = "() => void")]
    pub fn on_event(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(event: AuthEvent) => void")] listener: &Function,
    ) -> Result<Function, JsValue> {
        let inner = self.shared.try_borrow().map_err(|_| code_error(Code::Freed))?;
        Ok(aw_listen(&inner.listeners, listener))
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
            inner.token_js = None;
            for (_, c) in inner.aborts.drain(..) {
                c.abort();
            }
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
