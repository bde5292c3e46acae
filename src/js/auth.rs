//! `AuthSession`: the session class JavaScript sees.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use gloo_timers::callback::Timeout;
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

use crate::core::auth_machine::{Action, Answer, AuthMachine, Event, EventKind, Input, Wake};
use crate::core::error::Code;
use crate::core::policy::Policy;
use crate::core::session::{Origin, Session};
use crate::core::url;
use crate::web::fetch::{post_json, Source};
use crate::web::{self, aw_emit, aw_listen, code_error, debug, error, get, now_ms, raw, DomListener};
use crate::core::session::Raw;

type Settler = (Function, Function);

/// A Rust-side observer of the session's events (a ChatSocket), holding only a weak reference.
pub(crate) type Watcher = Rc<dyn Fn(EventKind)>;

thread_local! {
    /// Live AuthSessions by id, so a ChatSocket can find the one passed in its options.
    static REGISTRY: RefCell<Vec<(u32, Weak<RefCell<Inner>>)>> = const { RefCell::new(Vec::new()) };
    static NEXT_ID: std::cell::Cell<u32> = const { std::cell::Cell::new(1) };
}

/// Finds the session behind a JS `AuthSession` object (via its hidden id getter).
pub(crate) fn lookup(js: &JsValue) -> Result<Shared, Code> {
    let id = Reflect::get(js, &"__authwireId".into()).map_err(|_| Code::Freed)?.as_f64().ok_or(Code::InvalidOptions)? as u32;
    REGISTRY
        .with(|r| r.borrow().iter().find(|(i, _)| *i == id).and_then(|(_, w)| w.upgrade()))
        .filter(|s| s.try_borrow().is_ok_and(|i| !i.freed))
        .ok_or(Code::Freed)
}

/// Whether the session's token may be written into a frame now.
pub(crate) fn usable(shared: &Shared) -> bool {
    shared.try_borrow().is_ok_and(|i| !i.freed && i.machine.usable(now_ms()))
}

/// The current access token as a JS string, cached until the session changes.
pub(crate) fn token_js(shared: &Shared) -> Option<JsValue> {
    let mut inner = shared.try_borrow_mut().ok()?;
    if inner.token_js.is_none() {
        inner.token_js = inner.machine.access_token().map(|t| JsValue::from_str(t.expose()));
    }
    inner.token_js.clone()
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

/// Asks for a usable token without a promise: `Ready`, `Wait` (a later TOKEN_REFRESHED tells),
/// or `Fail(code)`.
pub(crate) fn demand_token(shared: &Shared) -> Answer {
    drive(shared, |m, now, out| m.want_token(now, out)).unwrap_or(Answer::Fail(Code::Freed))
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
    abort: Option<web_sys::AbortController>,
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
    {
        let Ok(mut inner) = shared.try_borrow_mut() else { return };
        for a in actions {
            match a {
                Action::Fetch { attempt } => {
                    if inner.debug {
                        debug("[authwire] refreshing, attempt", &JsValue::from_f64(attempt as f64));
                    }
                    spawn_local(refresh_task(Rc::downgrade(shared), attempt));
                }
                Action::Abort => {
                    if let Some(c) = inner.abort.take() {
                        c.abort();
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
                    let token = inner.machine.access_token().map(|t| JsValue::from_str(t.expose()));
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
                    if matches!(ev.kind, EventKind::TokenRefreshed | EventKind::SignedIn | EventKind::SignedOut) {
                        inner.token_js = None;
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
    for (f, v) in settle {
        let _ = f.call1(&JsValue::UNDEFINED, &v);
    }
    let (subscribers, listeners, watchers) = match shared.try_borrow() {
        Ok(i) if !i.freed => (i.subscribers.clone(), i.listeners.clone(), i.watchers.iter().map(|(_, w)| w.clone()).collect::<Vec<_>>()),
        _ => return,
    };
    for ev in &events {
        for w in &watchers {
            w(ev.kind);
        }
        aw_emit(&listeners, &event_object(ev));
    }
    if changed {
        aw_emit(&subscribers, &JsValue::UNDEFINED);
    }
}

fn wake(weak: &Weak<RefCell<Inner>>, w: Wake) {
    if let Some(shared) = weak.upgrade() {
        drive(&shared, |m, now, out| m.handle(now, Input::Wake(w), out));
    }
}

async fn refresh_task(weak: Weak<RefCell<Inner>>, attempt: u64) {
    let (source, refresh_token, signal) = {
        let Some(shared) = weak.upgrade() else { return };
        let Ok(mut inner) = shared.try_borrow_mut() else { return };
        let Some(source) = inner.source.clone() else { return };
        let rt = inner.machine.refresh_token().map(|t| t.expose().to_owned());
        let controller = web_sys::AbortController::new().ok();
        let signal = controller.as_ref().map(|c| c.signal());
        inner.abort = controller;
        (source, rt, signal)
    };
    let result = source.refresh(refresh_token, signal).await;
    let Some(shared) = weak.upgrade() else { return };
    let input = match result {
        Ok(session) => Input::RefreshOk { attempt, session },
        Err(failure) => Input::RefreshErr { attempt, failure },
    };
    drive(&shared, |m, now, out| m.handle(now, input, out));
}

fn event_object(ev: &Event) -> JsValue {
    let o = Object::new();
    let set = |k: &str, v: JsValue| {
        let _ = Reflect::set(&o, &k.into(), &v);
    };
    set("type", ev.kind.as_str().into());
    set("at", JsValue::from_f64(ev.at_ms as f64));
    if let Some(t) = ev.expires_at_ms {
        set("expiresAt", JsValue::from_f64(t as f64));
    }
    if let Some(c) = ev.code {
        set("code", c.as_str().into());
    }
    if ev.kind == EventKind::RefreshFailed {
        set("willRetry", ev.will_retry.into());
        set("retryInMs", ev.retry_in_ms.map_or(JsValue::NULL, |d| JsValue::from_f64(d as f64)));
    }
    Object::freeze(&o).into()
}

fn options_error(message: &str) -> JsValue {
    error(Code::InvalidOptions, message)
}

fn opt_bool(opts: &JsValue, key: &str) -> Result<bool, JsValue> {
    match raw(&get(opts, key)) {
        Raw::Missing | Raw::Null => Ok(false),
        Raw::Bool(b) => Ok(b),
        other => Err(options_error(&format!("options.{key} must be a boolean, got {}", other.type_name()))),
    }
}

fn opt_string(obj: &JsValue, path: &str, key: &str) -> Result<String, JsValue> {
    match raw(&get(obj, key)) {
        Raw::Str(s) if !s.is_empty() => Ok(s),
        other => Err(options_error(&format!("options.{path}.{key} must be a non-empty string, got {}", other.type_name()))),
    }
}

fn parse_source(v: &JsValue, allow_insecure: bool) -> Result<Option<Source>, JsValue> {
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    if !v.is_object() {
        return Err(options_error("options.refresh must be an object like { kind: \"supabase\", url, apiKey }"));
    }
    match get(v, "kind").as_string().as_deref() {
        Some("supabase") => {
            let u = opt_string(v, "refresh", "url")?;
            let url = url::check(&u, url::Kind::Http, allow_insecure)
                .map_err(|c| error(c, &format!("options.refresh.url: {}", c.describe())))?;
            let api_key = opt_string(v, "refresh", "apiKey")?;
            Ok(Some(Source::Supabase { url, api_key }))
        }
        Some("callback") => match get(v, "fn").dyn_into::<Function>() {
            Ok(f) => Ok(Some(Source::Callback(f))),
            Err(_) => Err(options_error("options.refresh.fn must be a function returning a session")),
        },
        _ => Err(options_error("options.refresh.kind must be \"supabase\" or \"callback\"")),
    }
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
        inner.machine.check(&s, now).map_err(|c| error(c, "the session has expired and no refresh source can renew it"))?;
    }
    let input = if refreshed { Input::Refreshed(s) } else { Input::SetSession(s) };
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
    pub fn new(#[wasm_bindgen(unchecked_param_type = "AuthSessionOptions")] options: JsValue) -> Result<AuthSession, JsValue> {
        let opts = if options.is_undefined() || options.is_null() { Object::new().into() } else { options };
        if !opts.is_object() {
            return Err(options_error("options must be an object"));
        }
        let allow_insecure = opt_bool(&opts, "allowInsecure")?;
        let debug_on = opt_bool(&opts, "debug")?;
        let source = parse_source(&get(&opts, "refresh"), allow_insecure)?;
        let mut policy = Policy::default();
        match raw(&get(&opts, "marginSeconds")) {
            Raw::Missing | Raw::Null => {}
            Raw::Num(n) if n.is_finite() && n >= 0.0 => policy.margin_ms = (n * 1000.0) as u64,
            _ => return Err(options_error("options.marginSeconds must be a non-negative number")),
        }
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
        );
        let shared: Shared = Rc::new(RefCell::new(Inner {
            machine,
            source,
            timer: None,
            abort: None,
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
        }));
        REGISTRY.with(|r| r.borrow_mut().push((id, Rc::downgrade(&shared))));
        let this = AuthSession { shared };
        let session = get(&opts, "session");
        if !session.is_undefined() && !session.is_null() {
            this.set_session(session)?;
        }
        let weak = Rc::downgrade(&this.shared);
        let dom = web::wake_listeners(Rc::new(move |w| wake(&weak, w)));
        if let Ok(mut inner) = this.shared.try_borrow_mut() {
            inner.dom = dom;
        }
        Ok(this)
    }

    /// Replaces the session (a Supabase `Session` object or a bare JWT); `null` signs out locally.
    /// Throws `invalid_session` or `session_expired` and keeps the old session when the new one is refused.
    #[wasm_bindgen(js_name = setSession)]
    pub fn set_session(&self, #[wasm_bindgen(unchecked_param_type = "SessionInput | null")] session: JsValue) -> Result<(), JsValue> {
        apply_session(&self.shared, &session, false)
    }

    /// Follows a supabase-js client: its sign-in, refresh and sign-out flow into this session
    /// (`onAuthStateChange`), and refreshes go through `client.auth.refreshSession()` so that
    /// supabase-js stays the only one spending the rotating refresh token. Returns the function
    /// that stops following; `free()` stops it too.
    #[wasm_bindgen(js_name = followSupabase, unchecked_return_type = "() => void")]
    pub fn follow_supabase(&self, #[wasm_bindgen(unchecked_param_type = "SupabaseClientLike")] client: JsValue) -> Result<Function, JsValue> {
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
        let source = Source::Callback(aw_supabase_refresher(&api));
        {
            let mut inner = self.shared.try_borrow_mut().map_err(|_| code_error(Code::Freed))?;
            inner.source = Some(source);
            inner.follows.push((subscription.clone(), callback));
        }
        drive(&self.shared, |m, now, out| m.set_source(true, true, now, out));
        Ok(aw_unsubscriber(&subscription))
    }

    /// A token valid for at least the transit margin; refreshes first when needed, sharing one
    /// request among all callers. Rejects with `signed_out`, `session_expired`, `invalid_grant`,
    /// `network_error`, ... (see the error codes).
    #[wasm_bindgen(js_name = accessToken, unchecked_return_type = "Promise<string>")]
    pub fn access_token(&self) -> Promise {
        let mut fns: Option<Settler> = None;
        let promise = Promise::new(&mut |res, rej| fns = Some((res, rej)));
        let Some((res, rej)) = fns else { return promise };
        let answer = drive(&self.shared, |m, now, out| m.want_token(now, out));
        let settle = |f: &Function, v: &JsValue| {
            let _ = f.call1(&JsValue::UNDEFINED, v);
        };
        match answer {
            None => settle(&rej, &code_error(Code::Freed)),
            Some(Answer::Fail(code)) => settle(&rej, &code_error(code)),
            Some(Answer::Ready) => match self.shared.try_borrow().ok().and_then(|i| i.machine.access_token().map(|t| JsValue::from_str(t.expose()))) {
                Some(t) => settle(&res, &t),
                None => settle(&rej, &code_error(Code::SignedOut)),
            },
            Some(Answer::Wait) => match self.shared.try_borrow_mut() {
                Ok(mut inner) => inner.token_waiters.push((res, rej)),
                Err(_) => settle(&rej, &code_error(Code::Freed)),
            },
        }
        promise
    }

    /// Refreshes now (joining a refresh already running). Resolves when a new token is in place.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn refresh(&self) -> Promise {
        let mut fns: Option<Settler> = None;
        let promise = Promise::new(&mut |res, rej| fns = Some((res, rej)));
        let Some((res, rej)) = fns else { return promise };
        // Register first: the machine may settle the waiters before `drive` returns.
        if let Ok(mut inner) = self.shared.try_borrow_mut() {
            inner.refresh_waiters.push((res, rej.clone()));
        }
        match drive(&self.shared, |m, now, out| m.want_refresh(now, out)) {
            Some(Ok(())) => {}
            failed => {
                let code = match failed {
                    Some(Err(c)) => c,
                    _ => Code::Freed,
                };
                if let Ok(mut inner) = self.shared.try_borrow_mut() {
                    inner.refresh_waiters.retain(|(_, r)| r != &rej);
                }
                let _ = rej.call1(&JsValue::UNDEFINED, &code_error(code));
            }
        }
        promise
    }

    /// Ends the session here (SIGNED_OUT at once) and, for a Supabase source, revokes it on the
    /// server (`POST /auth/v1/logout`, best effort: resolves even when offline).
    #[wasm_bindgen(js_name = signOut, unchecked_return_type = "Promise<void>")]
    pub fn sign_out(&self) -> Promise {
        let (source, token) = match self.shared.try_borrow() {
            Ok(i) if !i.freed => (i.source.clone(), i.machine.access_token().map(|t| t.expose().to_owned())),
            _ => (None, None),
        };
        drive(&self.shared, |m, now, out| m.handle(now, Input::SignOut, out));
        wasm_bindgen_futures::future_to_promise(async move {
            if let (Some(Source::Supabase { url, api_key }), Some(token)) = (source, token) {
                let _ = post_json(&format!("{url}/auth/v1/logout"), &api_key, Some(&token), &JsValue::UNDEFINED, None).await;
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
    pub fn on_event(&self, #[wasm_bindgen(unchecked_param_type = "(event: AuthEvent) => void")] listener: &Function) -> Result<Function, JsValue> {
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
        let Ok(mut inner) = self.shared.try_borrow_mut() else { return JsValue::UNDEFINED };
        if let Some(s) = &inner.snapshot {
            return s.clone();
        }
        let m = &inner.machine;
        let o = Object::new();
        let set = |k: &str, v: JsValue| {
            let _ = Reflect::set(&o, &k.into(), &v);
        };
        set("status", m.status().as_str().into());
        let s = m.session();
        set("expiresAt", s.map_or(JsValue::NULL, |s| JsValue::from_f64(s.expires_at_ms as f64)));
        set("userId", s.and_then(|s| s.user_id.as_deref()).map_or(JsValue::NULL, JsValue::from_str));
        set("refreshCount", JsValue::from_f64(m.refresh_count() as f64));
        set("lastError", m.last_error().map_or(JsValue::NULL, |c| c.as_str().into()));
        let snap: JsValue = Object::freeze(&o).into();
        inner.snapshot = Some(snap.clone());
        snap
    }
}

impl Drop for AuthSession {
    /// `free()`: stops the timer, aborts a running refresh, removes DOM listeners, rejects pending
    /// promises with `freed`, and drops every listener. Nothing fires afterwards.
    fn drop(&mut self) {
        let pending = {
            let Ok(mut inner) = self.shared.try_borrow_mut() else { return };
            inner.freed = true;
            let id = inner.id;
            REGISTRY.with(|r| r.borrow_mut().retain(|(i, w)| *i != id && w.strong_count() > 0));
            inner.timer = None;
            inner.token_js = None;
            if let Some(c) = inner.abort.take() {
                c.abort();
            }
            inner.dom.clear();
            for (subscription, _callback) in inner.follows.drain(..) {
                // Unsubscribe before the callback is dropped, so supabase-js never calls a freed closure.
                let _ = aw_unsubscriber(&subscription).call0(&JsValue::UNDEFINED);
            }
            inner.subscribers.clear();
            inner.listeners.clear();
            let watchers: Vec<Watcher> = inner.watchers.drain(..).map(|(_, w)| w).collect();
            let mut p: Vec<Settler> = inner.token_waiters.drain(..).collect();
            p.extend(inner.refresh_waiters.drain(..));
            (p, watchers)
        };
        let (pending, watchers) = pending;
        // Sockets built on this session stop: there is no session any more.
        for w in watchers {
            w(EventKind::SignedOut);
        }
        let e = code_error(Code::Freed);
        for (_, rej) in pending {
            let _ = rej.call1(&JsValue::UNDEFINED, &e);
        }
    }
}
