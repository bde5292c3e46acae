//! Options: raw JS-shaped values in, bounded plain config out, for `AuthSession` and `ChatSocket`.
//!
//! The shell implements [`Obj`] over its JS objects (and the tests over a map); the readers here
//! make every decision: defaults, enums, URL checks, the storage key, and the range of every
//! number. A value outside its range, `NaN`, `Infinity` (except where documented) or a number
//! given as a string is refused with `invalid_options` and a message naming the field, never
//! clamped silently. Messages name fields and types only: never a string option's value (an
//! `apiKey`, a password), only a refused number's.

use super::error::Code;
use super::origins::{self, FetchPolicy};
use super::policy::{Backoff, Policy};
use super::protocol::{AuthType, Protocol};
use super::session::Raw;
use super::socket_machine::{Config, TokenPlace};
use super::text;
use super::token::Secret;
use super::url;

/// One property read from an options object.
pub enum Field<O> {
    /// A plain object (not an array, not a function): its fields can be read in turn.
    Object(O),
    /// An array: its `length` and its elements (`"0"`, `"1"`, ...) are read as fields.
    List(O),
    /// Anything else, classified (a function is `Raw::Other("function")`).
    Value(Raw),
    /// Reading it threw (a throwing getter or proxy trap).
    Threw,
}

impl<O> Field<O> {
    /// As a plain value: an object reads as `Raw::Other("object")`, an array as `"array"`.
    fn value(self) -> Raw {
        match self {
            Field::Object(_) | Field::Threw => Raw::Other("object"),
            Field::List(_) => Raw::Other("array"),
            Field::Value(r) => r,
        }
    }
}

/// A JS-shaped object the readers can look into. Each field is read once.
pub trait Obj: Sized {
    /// The property `key`.
    fn field(&self, key: &str) -> Field<Self>;

    /// How a URL option is read: by the browser, in the shell (through [`url::from_browser`]); by
    /// its model, [`url::parse`], by default (the native tests).
    fn read_url(text: &str) -> Result<url::Parsed, Code> {
        url::parse(text)
    }
}

/// A refused option (read through to its [`Refusal`]). One pointer: every reader returns a
/// `Result` with it, and a small error keeps each of the readers' many `?` a one-word copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError(Box<Refusal>);

/// What a refused option says: `code` is `invalid_options`, or `invalid_url` / `insecure_url` for
/// a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The stable code the JS error carries.
    pub code: Code,
    /// The field's path below `options` (`"reconnect.minDelayMs"`); empty for the object itself.
    pub field: String,
    /// The whole message, starting with `options.<field>`.
    pub message: String,
}

impl OptionError {
    /// The refusal of `field` with `code`, saying `message`.
    pub fn new(code: Code, field: String, message: String) -> Self {
        OptionError(Box::new(Refusal { code, field, message }))
    }
}

impl std::ops::Deref for OptionError {
    type Target = Refusal;
    fn deref(&self) -> &Refusal {
        &self.0
    }
}

/// Which build reads the options: the full one (`authwire`) or the lite one (`authwire/lite`),
/// which leaves out the password, broker and callback sources, storage, cross-tab, `auth.fetch`
/// and the handshake's non-bearer auth types, and refuses their options naming the full build
/// (never ignores them: a lite app that asks for `crossTab` would otherwise refresh uncoordinated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// `authwire`: everything.
    Full,
    /// `authwire/lite`: a Supabase session and `ChatSocket`'s bearer path.
    Lite,
}

impl Build {
    /// This crate's build: `Full` with the `full` feature (the default), else `Lite`.
    pub const THIS: Build = if cfg!(feature = "full") {
        Build::Full
    } else {
        Build::Lite
    };
}

/// Whether this is the full build ([`Build::THIS`] is `Full`): a constant, so what the lite build
/// leaves out is compiled away behind it, in the core (other tabs, other answer shapes) and in the
/// shell alike.
pub const FULL: bool = matches!(Build::THIS, Build::Full);

/// What the lite build says of an option it leaves out.
const FULL_ONLY: &str = "needs the full build: import from \"authwire\", not \"authwire/lite\"";

/// Bounds of the number options (inclusive), in their own unit. The README's table repeats them.
pub mod bounds {
    /// `marginSeconds`, in seconds (fractions allowed).
    pub const MARGIN_SECONDS: (u64, u64) = (0, 86_400);
    /// `refreshTimeoutMs`: the deadline of one refresh attempt.
    pub const REFRESH_TIMEOUT_MS: (u64, u64) = (100, 600_000);
    /// `reconnect.minDelayMs` and `reconnect.maxDelayMs`.
    pub const DELAY_MS: (u64, u64) = (0, 3_600_000);
    /// `reconnect.factor`.
    pub const FACTOR: (u64, u64) = (1, 10);
    /// `reconnect.maxRetries` (or `Infinity`: unlimited).
    pub const MAX_RETRIES: (u64, u64) = (0, 1_000_000_000);
    /// `heartbeatMs` (or 0: off).
    pub const HEARTBEAT_MS: (u64, u64) = (100, 600_000);
    /// `connectTimeoutMs`.
    pub const CONNECT_TIMEOUT_MS: (u64, u64) = (100, 600_000);
    /// `maxQueued`.
    pub const MAX_QUEUED: (u64, u64) = (1, 1_000_000);
}

/// Where new tokens come from, as configured (the callback function itself stays in the shell).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// GoTrue's refresh grant.
    Supabase {
        /// The checked project URL, without trailing slash.
        url: String,
        /// The anon (publishable) key.
        api_key: Secret,
    },
    /// GoTrue's password grant (or a plain login URL when `plain`).
    Password {
        /// The checked URL, without trailing slash.
        url: String,
        /// Sent as `apikey` to GoTrue; empty when not given.
        api_key: Secret,
        /// The account.
        email: String,
        /// Its password.
        password: Secret,
        /// `url` is a plain login endpoint (`endpoint: "plain"`), not GoTrue.
        plain: bool,
    },
    /// A token broker.
    Broker {
        /// The checked base URL, without trailing slash.
        url: String,
        /// The token scope.
        scope: String,
        /// The user the tokens are for.
        user_id: String,
    },
    /// `refresh.fn` is a function; the shell takes it from the options object.
    Callback,
}

impl SourceSpec {
    /// Whether the source works only with a refresh token (Supabase).
    pub fn needs_refresh_token(&self) -> bool {
        matches!(self, SourceSpec::Supabase { .. })
    }
    /// Whether it can sign in with no session at all.
    pub fn bootstraps(&self) -> bool {
        !self.needs_refresh_token()
    }
    /// The GoTrue URL supabase-js would derive its storage key from, when there is one.
    pub fn gotrue_url(&self) -> Option<&str> {
        match self {
            SourceSpec::Supabase { url, .. } | SourceSpec::Password { url, plain: false, .. } => Some(url),
            _ => None,
        }
    }
}

/// `options.storage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    /// Tokens never leave memory (the default).
    Memory,
    /// `localStorage`.
    Local,
    /// `sessionStorage`.
    Session,
}

/// Everything `new AuthSession(options)` decides from its options (besides `session`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthOptions {
    /// Timing (`marginSeconds`; the backoff is not configurable).
    pub policy: Policy,
    /// `refresh`, or `None` when absent.
    pub source: Option<SourceSpec>,
    /// `storage`.
    pub storage: StorageKind,
    /// The key in storage, on the tab channel and in lock names.
    pub storage_key: String,
    /// `crossTab`.
    pub cross_tab: bool,
    /// `debug`.
    pub debug: bool,
    /// `allowInsecure`.
    pub allow_insecure: bool,
    /// Where `auth.fetch` may send credentials: the refresh source's origin and `fetchOrigins`
    /// (the page's own origin is added at each call).
    pub fetch: FetchPolicy,
}

/// Everything `new ChatSocket(options)` decides from its options.
#[derive(Debug, Clone)]
pub struct ChatOptions {
    /// The checked `ws://`/`wss://` URL.
    pub url: String,
    /// The socket machine's settings (protocol, auth type, ack, queue, reconnect, heartbeat, timeout).
    pub config: Config,
    /// `options.auth` is an object: the shell looks its `AuthSession` up. Absent only when the
    /// protocol does not need a token.
    pub has_auth: bool,
    /// `sessionId`, stamped as `session_id`.
    pub session_id: Option<String>,
    /// `tokenField` (default `auth_token`).
    pub token_field: String,
    /// `auth-handshake`: the shell builds the auth frame from `options.handshake`
    /// (`{ type: "auth", ...handshake, auth_type }`); the fields it needs are checked.
    pub handshake: bool,
    /// `allowInsecure`.
    pub allow_insecure: bool,
    /// `handshake.auth_type` as given (also a type the SDK does not know, passed through).
    pub auth_type_name: String,
}

/// The frame types `sessionIdFrom: true` adopts a session id from: SlarOps' `session_created` and
/// `session_init`, autolangchat's `connection_established`.
pub const SESSION_FRAMES: [&str; 3] = ["session_created", "session_init", "connection_established"];

/// Most entries of `sessionIdFrom`.
const MAX_SESSION_FRAMES: usize = 16;

/// The default storage key.
pub const DEFAULT_STORAGE_KEY: &str = "authwire.session";

/// A reader of one (possibly nested) options object; `path` is its place below `options`.
/// An absent object (`obj: None`) reads as all-missing, so its defaults apply.
struct Reader<O> {
    obj: Option<O>,
    path: String,
}

fn err(code: Code, field: &str, message: String) -> OptionError {
    OptionError::new(code, field.to_owned(), message)
}

/// How a refused value is shown: a number (never a secret) by value where that needs no float
/// formatting (none is linked into the wasm for this), anything else by its type only.
fn got(r: &Raw, lo: u64, hi: u64) -> String {
    match r {
        Raw::Num(n) if n.is_nan() => "NaN".into(),
        Raw::Num(n) if n.is_infinite() => (if *n > 0.0 { "Infinity" } else { "-Infinity" }).into(),
        Raw::Num(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => text::signed(*n as i64),
        Raw::Num(n) if *n > hi as f64 => text::cat(&["a number above ", &text::dec(hi)]),
        Raw::Num(n) if *n < lo as f64 => text::cat(&["a number below ", &text::dec(lo)]),
        Raw::Num(_) => "a number".into(),
        other => other.type_name().into(),
    }
}

/// A wrong enum value is described by its type; a wrong string is not shown (it could be
/// anything the caller typed, a secret pasted into the wrong field included).
fn describe_choice(r: &Raw) -> &'static str {
    match r {
        Raw::Str(_) => "another string",
        other => other.type_name(),
    }
}

impl<O: Obj> Reader<O> {
    fn root(obj: Option<O>) -> Self {
        Reader {
            obj,
            path: String::new(),
        }
    }

    /// `path.key`, or `path[key]` for an array index (a key starting with a digit).
    fn field_name(&self, key: &str) -> String {
        if self.path.is_empty() {
            return key.to_owned();
        }
        let index = key.bytes().next().is_some_and(|b| b.is_ascii_digit());
        let mut f = self.path.clone();
        f.push(if index { '[' } else { '.' });
        f.push_str(key);
        if index {
            f.push(']');
        }
        f
    }

    /// `options.<field> <what>`, `invalid_options`.
    fn invalid(&self, key: &str, what: &str) -> OptionError {
        self.refuse(Code::InvalidOptions, key, " ", what)
    }

    /// `options.<field><sep><what>`, with `code`.
    fn refuse(&self, code: Code, key: &str, sep: &str, what: &str) -> OptionError {
        let f = self.field_name(key);
        let mut message = String::from("options.");
        message.push_str(&f);
        message.push_str(sep);
        message.push_str(what);
        OptionError::new(code, f, message)
    }

    /// The field (read once), or the error of a throwing read.
    fn get(&self, key: &str) -> Result<Field<O>, OptionError> {
        match self.obj.as_ref().map_or(Field::Value(Raw::Missing), |o| o.field(key)) {
            Field::Threw => Err(self.invalid(key, "could not be read (reading it threw)")),
            f => Ok(f),
        }
    }

    /// The field as a plain value (an object reads as `Raw::Other("object")`).
    fn raw(&self, key: &str) -> Result<Raw, OptionError> {
        Ok(self.get(key)?.value())
    }

    fn bool(&self, key: &str) -> Result<bool, OptionError> {
        match self.raw(key)? {
            Raw::Missing | Raw::Null => Ok(false),
            Raw::Bool(b) => Ok(b),
            other => Err(self.invalid(key, &text::cat(&["must be a boolean, got ", other.type_name()]))),
        }
    }

    /// A required non-empty string.
    fn string(&self, key: &str) -> Result<String, OptionError> {
        match self.raw(key)? {
            Raw::Str(s) if !s.is_empty() => Ok(s),
            other => Err(self.invalid(
                key,
                &text::cat(&["must be a non-empty string, got ", other.type_name()]),
            )),
        }
    }

    /// An optional string (`None` when absent or null).
    fn opt_string(&self, key: &str) -> Result<Option<String>, OptionError> {
        match self.raw(key)? {
            Raw::Missing | Raw::Null => Ok(None),
            Raw::Str(s) => Ok(Some(s)),
            other => Err(self.invalid(key, &text::cat(&["must be a string, got ", other.type_name()]))),
        }
    }

    /// An optional string that must be one of `choices` (`None` when absent or null).
    fn choice(&self, key: &str, choices: &[&'static str]) -> Result<Option<&'static str>, OptionError> {
        let r = self.raw(key)?;
        if let Raw::Str(s) = &r {
            if let Some(c) = choices.iter().find(|c| **c == s.as_str()) {
                return Ok(Some(c));
            }
        } else if matches!(r, Raw::Missing | Raw::Null) {
            return Ok(None);
        }
        let list = text::cat(&["\"", &text::join(choices, "\", \""), "\""]);
        Err(self.invalid(
            key,
            &text::cat(&["must be one of ", &list, ", got ", describe_choice(&r)]),
        ))
    }

    /// An optional number within `[lo, hi]`; `also` is one more accepted value and its meaning
    /// (0: off, Infinity: unlimited). Strings are refused, numeric ones too.
    fn number(&self, key: &str, (lo, hi): (u64, u64), also: Option<(f64, &str)>) -> Result<Option<f64>, OptionError> {
        let r = self.raw(key)?;
        match r {
            Raw::Missing | Raw::Null => Ok(None),
            Raw::Num(n) if (lo as f64..=hi as f64).contains(&n) => Ok(Some(n)),
            Raw::Num(n) if also.is_some_and(|(v, _)| v == n) => Ok(Some(n)),
            _ => {
                let range = text::cat(&["a number between ", &text::dec(lo), " and ", &text::dec(hi)]);
                let want = match also {
                    Some((0.0, meaning)) => text::cat(&["0 (", meaning, ") or ", &range]),
                    Some((_, meaning)) => text::cat(&[&range, ", or Infinity (", meaning, ")"]),
                    None => range,
                };
                Err(self.invalid(key, &text::cat(&["must be ", &want, ", got ", &got(&r, lo, hi)])))
            }
        }
    }

    /// Milliseconds (fractions dropped), or `default` when absent.
    fn ms(&self, key: &str, range: (u64, u64), also: Option<(f64, &str)>, default: u64) -> Result<u64, OptionError> {
        Ok(self.number(key, range, also)?.map_or(default, |n| n as u64))
    }

    /// A nested object: `Some` for an object, `None` when absent or null; `want` says what it
    /// must be otherwise.
    fn child(&self, key: &str, want: &str) -> Result<Option<Reader<O>>, OptionError> {
        match self.get(key)? {
            Field::Object(o) => Ok(Some(Reader {
                obj: Some(o),
                path: self.field_name(key),
            })),
            Field::Value(Raw::Missing | Raw::Null) => Ok(None),
            other => Err(self.invalid(
                key,
                &text::cat(&["must be ", want, ", got ", other.value().type_name()]),
            )),
        }
    }

    /// `fetchOrigins`: an optional array of origins and patterns (see `core::origins`), each
    /// checked, named by its index (`fetchOrigins[2]`) and appended to `out`; never repeats an
    /// entry's text.
    fn origins(&self, key: &str, allow_insecure: bool, out: &mut Vec<origins::Entry>) -> Result<(), OptionError> {
        let list = match self.get(key)? {
            Field::List(list) => list,
            Field::Value(Raw::Missing | Raw::Null) => return Ok(()),
            other => {
                return Err(self.invalid(
                    key,
                    &text::cat(&["must be an array of origin strings, got ", other.value().type_name()]),
                ))
            }
        };
        let items = Reader {
            obj: Some(list),
            path: self.field_name(key),
        };
        let len = match items.raw("length")? {
            Raw::Num(n) if (0.0..=origins::MAX_ENTRIES as f64).contains(&n) && n.fract() == 0.0 => n as usize,
            _ => return Err(self.invalid(key, origins::TOO_MANY)),
        };
        for i in 0..len {
            let index = text::dec(i as u64);
            match origins::entry(&items.string(&index)?, allow_insecure, O::read_url) {
                Ok(e) => out.push(e),
                Err((code, why)) => {
                    let sep = if code == Code::InvalidOptions { " " } else { ": " };
                    return Err(items.refuse(code, &index, sep, why));
                }
            }
        }
        Ok(())
    }

    /// A checked URL (`invalid_url` / `insecure_url` name the field too).
    fn url(&self, key: &str, kind: url::Kind, allow_insecure: bool, want: &str) -> Result<String, OptionError> {
        let text = match self.raw(key)? {
            Raw::Str(s) if !s.is_empty() => s,
            other => return Err(self.invalid(key, &text::cat(&["must be ", want, ", got ", other.type_name()]))),
        };
        O::read_url(&text)
            .and_then(|p| url::judge(p, kind, allow_insecure))
            .map_err(|c| self.refuse(c, key, ": ", c.describe()))
    }
}

/// The root `options` argument: an object, or (`allow_absent`) undefined/null for all defaults.
fn root<O: Obj>(options: Field<O>, allow_absent: bool, want: &str) -> Result<Reader<O>, OptionError> {
    match options {
        Field::Object(o) => Ok(Reader::root(Some(o))),
        Field::Value(Raw::Missing | Raw::Null) if allow_absent => Ok(Reader::root(None)),
        Field::Threw => Err(err(Code::InvalidOptions, "", "options could not be read".into())),
        other => Err(err(
            Code::InvalidOptions,
            "",
            text::cat(&["options must be ", want, ", got ", other.value().type_name()]),
        )),
    }
}

/// supabase-js's storage key for a project URL: `sb-${new URL(url).hostname.split(".")[0]}-auth-token`.
/// The hostname is the browser's (the URL parser's host: after userinfo, lowercased, IPv4 forms
/// normalised, IPv6 in brackets), so `[::1]` gives `sb-[::1]-auth-token` as in supabase-js.
fn supabase_key(url: &str, read: url::Read) -> String {
    let host = read(url).map(|p| p.host).unwrap_or_default();
    let first = host.split('.').next().unwrap_or("");
    text::cat(&["sb-", first, "-auth-token"])
}

const REFRESH_SHAPE: &str = "an object like { kind: \"supabase\", url, apiKey }";

impl AuthOptions {
    /// Reads `new AuthSession(options)`'s options (`undefined`/`null`: all defaults). The
    /// `session` field is not read here: the session reader validates it.
    pub fn read<O: Obj>(options: Field<O>) -> Result<AuthOptions, OptionError> {
        Self::read_in(options, Build::Full)
    }

    /// [`AuthOptions::read`] in the given build: the lite build refuses the options of what it
    /// leaves out (`refresh.kind` other than `"supabase"`, `storage` other than `"memory"`,
    /// `crossTab: true`, `fetchOrigins`, `storageKey`).
    #[inline(always)]
    pub fn read_in<O: Obj>(options: Field<O>, build: Build) -> Result<AuthOptions, OptionError> {
        let r = root(options, true, "an object")?;
        let allow_insecure = r.bool("allowInsecure")?;
        let debug = r.bool("debug")?;
        let source = match r.child("refresh", REFRESH_SHAPE)? {
            None => None,
            Some(s) => Some(read_source(&s, allow_insecure, build)?),
        };
        let mut policy = Policy::default();
        if let Some(n) = r.number("marginSeconds", bounds::MARGIN_SECONDS, None)? {
            policy.margin_ms = (n * 1000.0) as u64;
        }
        if let Some(n) = r.number("refreshTimeoutMs", bounds::REFRESH_TIMEOUT_MS, None)? {
            policy.attempt_timeout_ms = n as u64;
        }
        let storage = match r.choice("storage", &["memory", "local", "session"])? {
            Some("local") => StorageKind::Local,
            Some("session") => StorageKind::Session,
            _ => StorageKind::Memory,
        };
        let cross_tab = r.bool("crossTab")?;
        if build == Build::Lite {
            if storage != StorageKind::Memory {
                return Err(r.invalid("storage", FULL_ONLY));
            }
            if cross_tab {
                return Err(r.invalid("crossTab", FULL_ONLY));
            }
            for key in ["storageKey", "fetchOrigins"] {
                if !matches!(r.raw(key)?, Raw::Missing | Raw::Null) {
                    return Err(r.invalid(key, FULL_ONLY));
                }
            }
            let fetch = FetchPolicy {
                allowed: Vec::new(),
                allow_insecure,
            };
            return Ok(AuthOptions {
                fetch,
                policy,
                source,
                storage,
                storage_key: DEFAULT_STORAGE_KEY.to_owned(),
                cross_tab,
                debug,
                allow_insecure,
            });
        }
        let storage_key = match r.opt_string("storageKey")?.as_deref() {
            None => DEFAULT_STORAGE_KEY.to_owned(),
            Some("supabase") => match source.as_ref().and_then(SourceSpec::gotrue_url) {
                Some(url) => supabase_key(url, O::read_url),
                None => {
                    return Err(r.invalid(
                        "storageKey",
                        "\"supabase\" needs a supabase or password (gotrue) refresh source",
                    ))
                }
            },
            Some("") => return Err(r.invalid("storageKey", "must not be empty")),
            Some(k) => k.to_owned(),
        };
        let mut fetch = FetchPolicy {
            allowed: Vec::new(),
            allow_insecure,
        };
        if let Some(
            SourceSpec::Supabase { url, .. } | SourceSpec::Password { url, .. } | SourceSpec::Broker { url, .. },
        ) = &source
        {
            fetch.add_origin_of(url, O::read_url);
        }
        r.origins("fetchOrigins", allow_insecure, &mut fetch.allowed)?;
        Ok(AuthOptions {
            fetch,
            policy,
            source,
            storage,
            storage_key,
            cross_tab,
            debug,
            allow_insecure,
        })
    }
}

#[inline(always)]
fn read_source<O: Obj>(s: &Reader<O>, allow_insecure: bool, build: Build) -> Result<SourceSpec, OptionError> {
    let url = |s: &Reader<O>| s.url("url", url::Kind::Http, allow_insecure, "an http(s) URL string");
    let kinds = ["supabase", "password", "broker", "callback"];
    let Some(kind) = s.choice("kind", &kinds)? else {
        let got = s.raw("kind")?;
        return Err(s.invalid(
            "kind",
            &text::cat(&[
                "must be one of \"supabase\", \"password\", \"broker\", \"callback\", got ",
                got.type_name(),
            ]),
        ));
    };
    if kind == "supabase" {
        return Ok(SourceSpec::Supabase {
            url: url(s)?,
            api_key: Secret::new(s.string("apiKey")?),
        });
    }
    if build == Build::Lite {
        return Err(s.invalid("kind", &text::cat(&["\"", kind, "\" ", FULL_ONLY])));
    }
    Ok(match kind {
        "password" => {
            let plain = s.choice("endpoint", &["gotrue", "plain"])? == Some("plain");
            let url = url(s)?;
            // GoTrue behind Supabase's gateway refuses every request without the anon key; a
            // plain login URL may need none.
            let api_key = if plain {
                s.opt_string("apiKey")?.unwrap_or_default()
            } else {
                s.string("apiKey")?
            };
            SourceSpec::Password {
                url,
                api_key: Secret::new(api_key),
                email: s.string("email")?,
                password: Secret::new(s.string("password")?),
                plain,
            }
        }
        "broker" => SourceSpec::Broker {
            url: url(s)?,
            scope: s.string("scope")?,
            user_id: s.string("userId")?,
        },
        _ => match s.raw("fn")? {
            Raw::Other("function") => SourceSpec::Callback,
            other => {
                return Err(s.invalid(
                    "fn",
                    &text::cat(&["must be a function returning a session, got ", other.type_name()]),
                ))
            }
        },
    })
}

const RECONNECT_SHAPE: &str = "false or { minDelayMs, maxDelayMs, factor, maxRetries }";

/// The reconnect backoff when `reconnect` is an object that leaves some fields out
/// (the same as `Config::new`'s).
const DEFAULT_RECONNECT: Backoff = Backoff {
    base_ms: 1_000,
    factor_pct: 130,
    max_ms: 10_000,
};

impl ChatOptions {
    /// Reads `new ChatSocket(options)`'s options. `client_id` and `seed` are the shell's random
    /// message-id prefix and jitter seed.
    pub fn read<O: Obj>(options: Field<O>, client_id: String, seed: u64) -> Result<ChatOptions, OptionError> {
        Self::read_in(options, client_id, seed, Build::Full)
    }

    /// [`ChatOptions::read`] in the given build: the lite build refuses a handshake `auth_type`
    /// other than `"bearer_token"`.
    #[inline(always)]
    pub fn read_in<O: Obj>(
        options: Field<O>,
        client_id: String,
        seed: u64,
        build: Build,
    ) -> Result<ChatOptions, OptionError> {
        let r = root(options, false, "an object with at least url and auth")?;
        let allow_insecure = r.bool("allowInsecure")?;
        let url = r.url("url", url::Kind::Ws, allow_insecure, "a ws:// or wss:// URL string")?;
        let protocol = match r.choice("protocol", &["token-per-message", "auth-handshake"])? {
            Some("auth-handshake") => Protocol::AuthHandshake,
            _ => Protocol::TokenPerMessage,
        };
        let mut cfg = Config::new(protocol, client_id, seed);
        let mut auth_type_name = "bearer_token".to_owned();
        if protocol == Protocol::AuthHandshake {
            (cfg.auth_type, auth_type_name) = read_handshake(&r, build)?;
        }
        let needs_auth = protocol == Protocol::TokenPerMessage || cfg.auth_type.uses_token();
        let has_auth = match r.raw("auth")? {
            Raw::Missing | Raw::Null if needs_auth => {
                return Err(r.invalid("auth", "must be an AuthSession (it supplies the token)"))
            }
            Raw::Missing | Raw::Null => false,
            Raw::Other("object") => true,
            other => return Err(r.invalid("auth", &text::cat(&["must be an AuthSession, got ", other.type_name()]))),
        };
        let session_id = r.opt_string("sessionId")?;
        cfg.session_id = session_id.clone();
        cfg.session_from = read_session_from(&r)?;
        cfg.session_field = match r.raw("sessionIdField")? {
            Raw::Missing | Raw::Null => cfg.session_field,
            Raw::Str(s) if !s.is_empty() && s.len() <= 64 => s,
            other => {
                return Err(r.invalid(
                    "sessionIdField",
                    &text::cat(&[
                        "must be a non-empty string (at most 64 characters), got ",
                        other.type_name(),
                    ]),
                ))
            }
        };
        cfg.resume = r.bool("resumeSession")?;
        cfg.answer_pings = match r.raw("answerPings")? {
            Raw::Missing | Raw::Null => true,
            Raw::Bool(b) => b,
            other => {
                return Err(r.invalid(
                    "answerPings",
                    &text::cat(&["must be a boolean, got ", other.type_name()]),
                ))
            }
        };
        cfg.connect_token = read_connect_token(&r)?;
        let token_field = match r.raw("tokenField")? {
            Raw::Missing | Raw::Null => "auth_token".to_owned(),
            Raw::Str(s) if !s.is_empty() => s,
            other => {
                return Err(r.invalid(
                    "tokenField",
                    &text::cat(&["must be a non-empty string, got ", other.type_name()]),
                ))
            }
        };
        cfg.ack = r.bool("ack")?;
        let max_queued = r.ms("maxQueued", bounds::MAX_QUEUED, None, cfg.max_queued as u64)?;
        cfg.max_queued = usize::try_from(max_queued).unwrap_or(usize::MAX);
        cfg.heartbeat_ms = r.ms(
            "heartbeatMs",
            bounds::HEARTBEAT_MS,
            Some((0.0, "off")),
            cfg.heartbeat_ms,
        )?;
        cfg.connect_timeout_ms = r.ms(
            "connectTimeoutMs",
            bounds::CONNECT_TIMEOUT_MS,
            None,
            cfg.connect_timeout_ms,
        )?;
        match r.get("reconnect")? {
            Field::Value(Raw::Bool(false)) => cfg.reconnect = None,
            Field::Value(Raw::Missing | Raw::Null | Raw::Bool(true)) => {}
            Field::Object(o) => {
                let rc = Reader {
                    obj: Some(o),
                    path: "reconnect".into(),
                };
                let d = cfg.reconnect.unwrap_or(DEFAULT_RECONNECT);
                let min = rc.ms("minDelayMs", bounds::DELAY_MS, None, d.base_ms)?;
                let max = rc.ms("maxDelayMs", bounds::DELAY_MS, None, d.max_ms)?.max(min);
                let factor_pct = rc
                    .number("factor", bounds::FACTOR, None)?
                    .map_or(d.factor_pct, |f| (f * 100.0) as u64);
                cfg.reconnect = Some(Backoff {
                    base_ms: min,
                    factor_pct,
                    max_ms: max,
                });
                cfg.max_retries = rc
                    .number("maxRetries", bounds::MAX_RETRIES, Some((f64::INFINITY, "unlimited")))?
                    .filter(|n| n.is_finite())
                    .map(|n| n as u32);
            }
            other => {
                return Err(r.invalid(
                    "reconnect",
                    &text::cat(&["must be ", RECONNECT_SHAPE, ", got ", other.value().type_name()]),
                ))
            }
        }
        Ok(ChatOptions {
            url,
            config: cfg,
            has_auth,
            session_id,
            token_field,
            handshake: protocol == Protocol::AuthHandshake,
            allow_insecure,
            auth_type_name,
        })
    }
}

/// `connectToken`: `{ query }` or `{ protocol }` (a WebSocket subprotocol name: RFC 6455 token
/// characters), exactly one.
fn read_connect_token<O: Obj>(r: &Reader<O>) -> Result<Option<TokenPlace>, OptionError> {
    const SHAPE: &str = "an object like { query: \"token\" } or { protocol: \"bearer\" }";
    let Some(c) = r.child("connectToken", SHAPE)? else {
        return Ok(None);
    };
    let query = c.opt_string("query")?;
    let protocol = c.opt_string("protocol")?;
    match (query, protocol) {
        (Some(q), None) if !q.is_empty() && q.len() <= 64 => Ok(Some(TokenPlace::Query(q))),
        (None, Some(p))
            if !p.is_empty()
                && p.len() <= 64
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)) =>
        {
            Ok(Some(TokenPlace::Protocol(p)))
        }
        (Some(_), Some(_)) => Err(r.invalid("connectToken", "must have either query or protocol, not both")),
        (None, None) => Err(r.invalid("connectToken", &text::cat(&["must be ", SHAPE]))),
        (Some(_), None) => Err(c.invalid("query", "must be a non-empty string of up to 64 characters")),
        (None, Some(_)) => Err(c.invalid(
            "protocol",
            "must be a WebSocket subprotocol name (letters, digits and !#$%&'*+-.^_`|~, up to 64)",
        )),
    }
}

/// `sessionIdFrom`: `true` (the [`SESSION_FRAMES`]), an array of frame types, or absent / `false`.
fn read_session_from<O: Obj>(r: &Reader<O>) -> Result<Vec<String>, OptionError> {
    const WANT: &str = "must be true or an array of frame types like [\"session_created\"]";
    let list = match r.get("sessionIdFrom")? {
        Field::Value(Raw::Missing | Raw::Null | Raw::Bool(false)) => return Ok(Vec::new()),
        Field::Value(Raw::Bool(true)) => return Ok(SESSION_FRAMES.iter().map(|s| (*s).to_owned()).collect()),
        Field::List(list) => list,
        Field::Object(_) => return Err(r.invalid("sessionIdFrom", &text::cat(&[WANT, ", got object"]))),
        Field::Value(other) => return Err(r.invalid("sessionIdFrom", &text::cat(&[WANT, ", got ", other.type_name()]))),
        Field::Threw => return Ok(Vec::new()), // not reached: `get` reports it
    };
    let items = Reader {
        obj: Some(list),
        path: r.field_name("sessionIdFrom"),
    };
    let len = match items.raw("length")? {
        Raw::Num(n) if (0.0..=MAX_SESSION_FRAMES as f64).contains(&n) && n.fract() == 0.0 => n as usize,
        _ => {
            return Err(r.invalid(
                "sessionIdFrom",
                &text::cat(&[
                    "must hold at most ",
                    &text::dec(MAX_SESSION_FRAMES as u64),
                    " frame types",
                ]),
            ))
        }
    };
    // A loop, not `collect` into a `Result`: that links an adapter and a collector for this one use.
    let mut frames = Vec::with_capacity(len);
    for i in 0..len {
        match items.raw(&text::dec(i as u64))? {
            Raw::Str(s) if !s.is_empty() => frames.push(s),
            other => {
                return Err(r.invalid(
                    &text::cat(&["sessionIdFrom[", &text::dec(i as u64), "]"]),
                    &text::cat(&["must be a non-empty string, got ", other.type_name()]),
                ))
            }
        }
    }
    Ok(frames)
}

/// `options.handshake` (auth-handshake only): its auth type and name, with the fields a known type
/// needs. A type the SDK does not know passes through with its fields ([`AuthType::Other`]).
#[inline(always)]
fn read_handshake<O: Obj>(r: &Reader<O>, build: Build) -> Result<(AuthType, String), OptionError> {
    let h = r
        .child("handshake", "an object like { auth_type: \"api_key\", api_key }")?
        .unwrap_or(Reader {
            obj: None,
            path: "handshake".into(),
        });
    let name = match h.raw("auth_type")? {
        Raw::Missing | Raw::Null => "bearer_token".to_owned(),
        Raw::Str(s) if !s.is_empty() && s.len() <= 64 => s,
        other => {
            return Err(h.invalid(
                "auth_type",
                &text::cat(&[
                    "must be a non-empty string like \"bearer_token\", \"basic_auth\", \"api_key\", \
                     \"oauth2_client_credentials\", \"custom\" or \"sso\", got ",
                    describe_choice(&other),
                ]),
            ))
        }
    };
    if name == "bearer_token" {
        return Ok((AuthType::BearerToken, name));
    }
    if build == Build::Lite {
        return Err(h.invalid("auth_type", &text::cat(&["other than \"bearer_token\" ", FULL_ONLY])));
    }
    let t = AuthType::parse(&name).unwrap_or(AuthType::Other);
    for (field, object) in t.required() {
        let ok = match h.get(field)? {
            Field::Object(_) => *object,
            Field::Value(Raw::Str(s)) => !*object && !s.is_empty(),
            _ => false,
        };
        if !ok {
            let want = if *object { "an object" } else { "a non-empty string" };
            return Err(h.invalid(field, &text::cat(&["must be ", want, " for auth_type ", &name])));
        }
    }
    Ok((t, name))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A JS-shaped value for the tests' [`Obj`].
    #[derive(Clone)]
    enum V {
        Raw(Raw),
        Obj(Map),
        /// An array.
        List(Vec<V>),
        /// A getter that throws.
        Throws,
    }

    #[derive(Clone, Default)]
    struct Map(BTreeMap<String, V>);

    impl Obj for Map {
        fn field(&self, key: &str) -> Field<Map> {
            match self.0.get(key) {
                None => Field::Value(Raw::Missing),
                Some(V::Raw(r)) => Field::Value(r.clone()),
                Some(V::Obj(m)) => Field::Object(m.clone()),
                Some(V::List(items)) => Field::List(list(items)),
                Some(V::Throws) => Field::Threw,
            }
        }
    }

    fn n(x: f64) -> V {
        V::Raw(Raw::Num(x))
    }
    fn s(x: &str) -> V {
        V::Raw(Raw::Str(x.into()))
    }
    fn b(x: bool) -> V {
        V::Raw(Raw::Bool(x))
    }
    fn func() -> V {
        V::Raw(Raw::Other("function"))
    }
    fn o(pairs: &[(&str, V)]) -> V {
        V::Obj(Map(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()))
    }
    /// `pairs` with `path` (dotted) set to `v`, creating nested objects.
    fn with(base: &V, path: &str, v: V) -> V {
        let V::Obj(Map(mut m)) = base.clone() else {
            panic!("not an object")
        };
        match path.split_once('.') {
            None => {
                m.insert(path.into(), v);
            }
            Some((head, tail)) => {
                let inner = m.get(head).cloned().unwrap_or_else(|| o(&[]));
                m.insert(head.into(), with(&inner, tail, v));
            }
        }
        V::Obj(Map(m))
    }
    /// An array as JS shows it to `Reflect.get`: `length` and the indices.
    fn list(items: &[V]) -> Map {
        let mut m: BTreeMap<String, V> = items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v.clone()))
            .collect();
        m.insert("length".into(), n(items.len() as f64));
        Map(m)
    }
    fn field(v: &V) -> Field<Map> {
        match v {
            V::Raw(r) => Field::Value(r.clone()),
            V::Obj(m) => Field::Object(m.clone()),
            V::List(items) => Field::List(list(items)),
            V::Throws => Field::Threw,
        }
    }
    fn auth(v: &V) -> Result<AuthOptions, OptionError> {
        AuthOptions::read(field(v))
    }
    fn chat(v: &V) -> Result<ChatOptions, OptionError> {
        ChatOptions::read(field(v), "c1".into(), 7)
    }
    /// The smallest valid chat options.
    fn chat_base() -> V {
        o(&[("url", s("wss://chat.example.com/ws")), ("auth", o(&[]))])
    }
    fn supabase() -> V {
        o(&[
            ("kind", s("supabase")),
            ("url", s("https://abcdef.supabase.co/")),
            ("apiKey", s("anon-key-SECRET")),
        ])
    }

    /// The lite build reads what it contains exactly as the full one does, and refuses each
    /// option of what it leaves out, naming the field and the full build (never ignoring it).
    #[test]
    fn the_lite_build_refuses_what_it_leaves_out_and_reads_the_rest_alike() {
        let lite = |v: &V| AuthOptions::read_in(field(v), Build::Lite);
        let full_like = |v: &V| {
            let mut a = auth(v).unwrap();
            a.fetch.allowed.clear();
            a
        };
        let base = o(&[("refresh", supabase()), ("marginSeconds", n(30.0)), ("debug", b(true))]);
        for v in [
            V::Raw(Raw::Missing),
            o(&[]),
            base.clone(),
            with(&base, "storage", s("memory")),
        ] {
            assert_eq!(lite(&v).unwrap(), full_like(&v));
        }
        let refused = [
            ("storage", with(&base, "storage", s("local"))),
            ("storage", with(&base, "storage", s("session"))),
            ("crossTab", with(&base, "crossTab", b(true))),
            ("storageKey", with(&base, "storageKey", s("k"))),
            (
                "fetchOrigins",
                with(&base, "fetchOrigins", V::List(vec![s("https://api.example.com")])),
            ),
            ("refresh.kind", with(&base, "refresh.kind", s("password"))),
            ("refresh.kind", with(&base, "refresh.kind", s("broker"))),
            (
                "refresh.kind",
                with(&base, "refresh", o(&[("kind", s("callback")), ("fn", func())])),
            ),
        ];
        for (f, v) in refused {
            assert!(auth(&v).is_ok() || f == "refresh.kind", "{f}: the full build takes it");
            let e = lite(&v).unwrap_err();
            assert_eq!((e.code, e.field.as_str()), (Code::InvalidOptions, f));
            assert!(e.message.ends_with(FULL_ONLY), "{}", e.message);
        }
        // A wrong value is still described as the full build describes it.
        let e = lite(&with(&base, "storage", n(1.0))).unwrap_err();
        assert_eq!(e, auth(&with(&base, "storage", n(1.0))).unwrap_err());

        let lite_chat = |v: &V| ChatOptions::read_in(field(v), "c1".into(), 7, Build::Lite);
        let hs = with(&chat_base(), "protocol", s("auth-handshake"));
        for v in [
            chat_base(),
            hs.clone(),
            with(&hs, "handshake.auth_type", s("bearer_token")),
        ] {
            // (ChatOptions has no PartialEq: its Debug form shows every field.)
            assert_eq!(
                format!("{:?}", lite_chat(&v).unwrap()),
                format!("{:?}", chat(&v).unwrap())
            );
        }
        let api = with(
            &with(&hs, "handshake.auth_type", s("api_key")),
            "handshake.api_key",
            s("k"),
        );
        assert!(chat(&api).is_ok());
        let e = lite_chat(&api).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_str()),
            (Code::InvalidOptions, "handshake.auth_type")
        );
        assert!(e.message.ends_with(FULL_ONLY), "{}", e.message);
    }

    #[test]
    fn auth_defaults_equal_todays() {
        for v in [V::Raw(Raw::Missing), V::Raw(Raw::Null), o(&[])] {
            let a = auth(&v).unwrap();
            assert_eq!(
                a,
                AuthOptions {
                    policy: Policy::default(),
                    source: None,
                    storage: StorageKind::Memory,
                    storage_key: "authwire.session".into(),
                    cross_tab: false,
                    debug: false,
                    allow_insecure: false,
                    fetch: FetchPolicy::default(),
                }
            );
            assert_eq!(a.policy.margin_ms, 60_000);
        }
        let e = auth(&s("nope")).unwrap_err();
        assert_eq!((e.code, e.field.as_str()), (Code::InvalidOptions, ""));
        assert_eq!(e.message, "options must be an object, got string");
        assert!(auth(&V::Throws).is_err());
    }

    #[test]
    fn chat_defaults_equal_todays() {
        for v in [
            chat_base(),
            with(&chat_base(), "reconnect", o(&[])),
            with(&chat_base(), "reconnect", b(true)),
        ] {
            let c = chat(&v).unwrap();
            let cfg = &c.config;
            assert_eq!(c.url, "wss://chat.example.com/ws");
            assert!(c.has_auth && !c.handshake && !c.allow_insecure);
            assert_eq!(c.session_id, None);
            assert_eq!(c.token_field, "auth_token");
            assert_eq!(cfg.protocol, Protocol::TokenPerMessage);
            assert!(!cfg.ack);
            assert_eq!(cfg.max_queued, 1_000);
            assert_eq!(cfg.heartbeat_ms, 0);
            assert_eq!(cfg.connect_timeout_ms, 10_000);
            assert_eq!(cfg.reconnect, Some(DEFAULT_RECONNECT));
            assert_eq!(cfg.max_retries, None);
            assert_eq!((cfg.client_id.as_str(), cfg.seed), ("c1", 7));
            let d = Config::new(Protocol::TokenPerMessage, String::new(), 0);
            assert_eq!(cfg.reconnect, d.reconnect);
        }
        assert_eq!(
            chat(&with(&chat_base(), "reconnect", b(false)))
                .unwrap()
                .config
                .reconnect,
            None
        );
        for bad in [V::Raw(Raw::Missing), V::Raw(Raw::Null), s("wss://x")] {
            let e = chat(&bad).unwrap_err();
            assert!(
                e.message
                    .starts_with("options must be an object with at least url and auth"),
                "{}",
                e.message
            );
        }
    }

    /// Every number option: (options without it, its path, its range, extra accepted value).
    type NumberOption = (bool, V, &'static str, (u64, u64), Option<f64>);

    fn number_options() -> Vec<NumberOption> {
        let auth_base = o(&[]);
        vec![
            (true, auth_base.clone(), "marginSeconds", bounds::MARGIN_SECONDS, None),
            (true, auth_base, "refreshTimeoutMs", bounds::REFRESH_TIMEOUT_MS, None),
            (false, chat_base(), "maxQueued", bounds::MAX_QUEUED, None),
            (false, chat_base(), "heartbeatMs", bounds::HEARTBEAT_MS, Some(0.0)),
            (false, chat_base(), "connectTimeoutMs", bounds::CONNECT_TIMEOUT_MS, None),
            (false, chat_base(), "reconnect.minDelayMs", bounds::DELAY_MS, None),
            (false, chat_base(), "reconnect.maxDelayMs", bounds::DELAY_MS, None),
            (false, chat_base(), "reconnect.factor", bounds::FACTOR, None),
            (
                false,
                chat_base(),
                "reconnect.maxRetries",
                bounds::MAX_RETRIES,
                Some(f64::INFINITY),
            ),
        ]
    }

    fn read_err(is_auth: bool, v: &V) -> Option<OptionError> {
        if is_auth {
            auth(v).err()
        } else {
            chat(v).err()
        }
    }

    #[test]
    fn every_number_option_refuses_nan_infinity_negative_huge_and_strings() {
        for (is_auth, base, path, (lo, hi), also) in number_options() {
            let bads = [
                (n(f64::NAN), "NaN".to_string()),
                (n(f64::INFINITY), "Infinity".into()),
                (n(f64::NEG_INFINITY), "-Infinity".into()),
                (n(-1.0), "-1".into()),
                (n(1e300), format!("a number above {hi}")),
                (n(hi as f64 + 0.5), format!("a number above {hi}")),
                (s("5000"), "string".into()),
                (b(true), "boolean".into()),
                (o(&[]), "object".into()),
            ];
            for (bad, shown) in bads {
                if let (Some(a), V::Raw(Raw::Num(x))) = (also, &bad) {
                    if a == *x {
                        continue;
                    }
                }
                let e = read_err(is_auth, &with(&base, path, bad.clone()))
                    .unwrap_or_else(|| panic!("{path} = {shown} was accepted"));
                assert_eq!(e.code, Code::InvalidOptions, "{path}");
                assert_eq!(e.field, path);
                assert!(
                    e.message.starts_with(&format!("options.{path} must be "))
                        && e.message.contains(&format!("a number between {lo} and {hi}"))
                        && e.message.ends_with(&format!(", got {shown}")),
                    "{path}: {}",
                    e.message
                );
            }
            // Missing and null read as the default; both ends of the range are accepted.
            for ok in [V::Raw(Raw::Missing), V::Raw(Raw::Null), n(lo as f64), n(hi as f64)] {
                assert!(read_err(is_auth, &with(&base, path, ok)).is_none(), "{path}");
            }
            if lo > 0 {
                assert!(
                    read_err(is_auth, &with(&base, path, n(lo as f64 - 1.0))).is_some(),
                    "{path} below"
                );
            }
        }
    }

    #[test]
    fn the_documented_message_shape() {
        let e = chat(&with(&chat_base(), "reconnect.minDelayMs", n(f64::NAN))).unwrap_err();
        assert_eq!(
            e.message,
            "options.reconnect.minDelayMs must be a number between 0 and 3600000, got NaN"
        );
        let e = chat(&with(&chat_base(), "heartbeatMs", n(50.0))).unwrap_err();
        assert_eq!(
            e.message,
            "options.heartbeatMs must be 0 (off) or a number between 100 and 600000, got 50"
        );
        let e = chat(&with(&chat_base(), "reconnect.maxRetries", n(-2.0))).unwrap_err();
        assert_eq!(
            e.message,
            "options.reconnect.maxRetries must be a number between 0 and 1000000000, or Infinity (unlimited), got -2"
        );
        let e = auth(&o(&[("marginSeconds", n(-0.5))])).unwrap_err();
        assert!(e.message.ends_with("got a number below 0"), "{}", e.message);
    }

    #[test]
    fn numbers_in_range_are_converted() {
        let a = auth(&o(&[("marginSeconds", n(1.5))])).unwrap();
        assert_eq!(a.policy.margin_ms, 1_500);
        let a = auth(&o(&[("marginSeconds", n(86_400.0))])).unwrap();
        assert_eq!(a.policy.margin_ms, 86_400_000);
        let a = auth(&o(&[("refreshTimeoutMs", n(2_500.7))])).unwrap();
        assert_eq!(a.policy.attempt_timeout_ms, 2_500);
        assert_eq!(auth(&o(&[])).unwrap().policy.attempt_timeout_ms, 10_000, "default 10 s");
        let v = with(
            &with(
                &with(&chat_base(), "heartbeatMs", n(25_000.9)),
                "maxQueued",
                n(200_000.0),
            ),
            "reconnect",
            o(&[
                ("minDelayMs", n(500.0)),
                ("maxDelayMs", n(100.0)),
                ("factor", n(1.5)),
                ("maxRetries", n(5.0)),
            ]),
        );
        let c = chat(&v).unwrap().config;
        assert_eq!(c.heartbeat_ms, 25_000);
        assert_eq!(c.max_queued, 200_000);
        assert_eq!(
            c.reconnect,
            Some(Backoff {
                base_ms: 500,
                factor_pct: 150,
                max_ms: 500
            }),
            "maxDelayMs is raised to minDelayMs"
        );
        assert_eq!(c.max_retries, Some(5));
        let c = chat(&with(&chat_base(), "reconnect.maxRetries", n(f64::INFINITY))).unwrap();
        assert_eq!(c.config.max_retries, None, "Infinity: unlimited");
        let c = chat(&with(&chat_base(), "heartbeatMs", n(0.0))).unwrap();
        assert_eq!(c.config.heartbeat_ms, 0, "0: off");
        let c = chat(&with(&chat_base(), "reconnect.minDelayMs", n(3_600_000.0))).unwrap();
        assert_eq!(c.config.reconnect.unwrap().max_ms, 3_600_000);
    }

    #[test]
    fn every_enum_and_boolean_option_refuses_a_wrong_value() {
        let sb = o(&[("refresh", supabase())]);
        let password = o(&[
            ("kind", s("password")),
            ("url", s("https://x.supabase.co")),
            ("apiKey", s("anon-key-SECRET")),
            ("email", s("a@b.c")),
            ("password", s("hunter2-SECRET")),
        ]);
        let hs = with(&chat_base(), "protocol", s("auth-handshake"));
        let cases: Vec<(bool, V, &str)> = vec![
            (true, o(&[("storage", s("cookie"))]), "storage"),
            (true, o(&[("storage", n(1.0))]), "storage"),
            (true, o(&[("refresh", o(&[("kind", s("magic"))]))]), "refresh.kind"),
            (true, o(&[("refresh", o(&[("kind", n(1.0))]))]), "refresh.kind"),
            (true, o(&[("refresh", o(&[]))]), "refresh.kind"),
            (
                true,
                o(&[("refresh", with(&password, "endpoint", s("soap")))]),
                "refresh.endpoint",
            ),
            (
                true,
                o(&[("refresh", o(&[("kind", s("callback")), ("fn", s("f"))]))]),
                "refresh.fn",
            ),
            (true, o(&[("refresh", o(&[("kind", s("callback"))]))]), "refresh.fn"),
            (true, o(&[("allowInsecure", s("true"))]), "allowInsecure"),
            (true, o(&[("debug", n(1.0))]), "debug"),
            (true, o(&[("crossTab", s("yes"))]), "crossTab"),
            (true, with(&sb, "storageKey", n(3.0)), "storageKey"),
            (false, with(&chat_base(), "protocol", s("sse")), "protocol"),
            (false, with(&chat_base(), "protocol", n(5.0)), "protocol"),
            (false, with(&chat_base(), "ack", s("true")), "ack"),
            (false, with(&chat_base(), "allowInsecure", n(1.0)), "allowInsecure"),
            (false, with(&chat_base(), "reconnect", s("yes")), "reconnect"),
            (false, with(&chat_base(), "tokenField", s("")), "tokenField"),
            (false, with(&chat_base(), "sessionId", n(1.0)), "sessionId"),
            (false, with(&hs, "handshake.auth_type", s("")), "handshake.auth_type"),
            (false, with(&hs, "handshake.auth_type", n(1.0)), "handshake.auth_type"),
        ];
        for (is_auth, v, path) in cases {
            let e = read_err(is_auth, &v).unwrap_or_else(|| panic!("{path} accepted"));
            assert_eq!(
                (e.code, e.field.as_str()),
                (Code::InvalidOptions, path),
                "{}",
                e.message
            );
            assert!(e.message.starts_with(&format!("options.{path} ")), "{}", e.message);
        }
        // The valid values.
        for (v, kind) in [
            ("memory", StorageKind::Memory),
            ("local", StorageKind::Local),
            ("session", StorageKind::Session),
        ] {
            assert_eq!(auth(&o(&[("storage", s(v))])).unwrap().storage, kind);
        }
        let a = auth(&o(&[
            ("refresh", with(&password, "endpoint", s("plain"))),
            ("debug", b(true)),
        ]))
        .unwrap();
        assert!(a.debug && matches!(a.source, Some(SourceSpec::Password { plain: true, .. })));
        let a = auth(&o(&[("refresh", o(&[("kind", s("callback")), ("fn", func())]))])).unwrap();
        assert_eq!(a.source, Some(SourceSpec::Callback));
        assert!(a.source.unwrap().bootstraps());
    }

    #[test]
    fn nested_objects_missing_or_of_the_wrong_type() {
        assert_eq!(auth(&o(&[("refresh", V::Raw(Raw::Null))])).unwrap().source, None);
        let e = auth(&o(&[("refresh", s("supabase"))])).unwrap_err();
        assert_eq!(e.field, "refresh");
        assert!(e.message.contains("must be an object like"), "{}", e.message);
        let e = auth(&o(&[("refresh", o(&[("kind", s("supabase"))]))])).unwrap_err();
        assert_eq!(
            e.message,
            "options.refresh.url must be an http(s) URL string, got undefined"
        );
        let e = auth(&o(&[("refresh", with(&supabase(), "apiKey", V::Raw(Raw::Missing)))])).unwrap_err();
        assert_eq!(e.field, "refresh.apiKey");
        // The password source: GoTrue (the default endpoint) needs the anon key, a plain URL not.
        let password = o(&[
            ("kind", s("password")),
            ("url", s("https://x.supabase.co")),
            ("email", s("a@b.c")),
            ("password", s("p")),
        ]);
        for gotrue in [password.clone(), with(&password, "endpoint", s("gotrue"))] {
            let e = auth(&o(&[("refresh", gotrue)])).unwrap_err();
            assert_eq!((e.code, e.field.as_str()), (Code::InvalidOptions, "refresh.apiKey"));
        }
        let plain = auth(&o(&[("refresh", with(&password, "endpoint", s("plain")))])).unwrap();
        assert!(matches!(plain.source, Some(SourceSpec::Password { plain: true, .. })));
        let hs = with(&chat_base(), "protocol", s("auth-handshake"));
        let c = chat(&hs).unwrap();
        assert!(c.handshake && c.config.auth_type == AuthType::BearerToken);
        let e = chat(&with(&hs, "handshake", s("x"))).unwrap_err();
        assert_eq!(e.field, "handshake");
        let e = chat(&with(&chat_base(), "auth", s("x"))).unwrap_err();
        assert_eq!(e.field, "auth");
        let e = chat(&with(&chat_base(), "url", V::Raw(Raw::Missing))).unwrap_err();
        assert_eq!(
            e.message,
            "options.url must be a ws:// or wss:// URL string, got undefined"
        );
    }

    #[test]
    fn the_handshake_needs_its_credentials_and_maybe_no_auth() {
        let hs = with(&chat_base(), "protocol", s("auth-handshake"));
        let no_auth = with(&hs, "auth", V::Raw(Raw::Missing));
        let e = chat(&no_auth).unwrap_err();
        assert_eq!(e.message, "options.auth must be an AuthSession (it supplies the token)");
        let api = with(
            &no_auth,
            "handshake",
            o(&[("auth_type", s("api_key")), ("api_key", s("k-SECRET"))]),
        );
        let c = chat(&api).unwrap();
        assert!(!c.has_auth);
        assert_eq!(c.config.auth_type, AuthType::ApiKey);
        let e = chat(&with(
            &no_auth,
            "handshake",
            o(&[("auth_type", s("basic_auth")), ("username", s("u"))]),
        ))
        .unwrap_err();
        assert_eq!(
            e.message,
            "options.handshake.password must be a non-empty string for auth_type basic_auth"
        );
        let e = chat(&with(
            &no_auth,
            "handshake",
            o(&[("auth_type", s("custom")), ("custom_headers", s("h"))]),
        ))
        .unwrap_err();
        assert_eq!(e.field, "handshake.custom_headers");
        let ok = with(
            &no_auth,
            "handshake",
            o(&[("auth_type", s("custom")), ("custom_headers", o(&[]))]),
        );
        assert_eq!(chat(&ok).unwrap().config.auth_type, AuthType::Custom);
        let e = chat(&with(&chat_base(), "auth", V::Raw(Raw::Null))).unwrap_err();
        assert_eq!(e.field, "auth", "token-per-message always needs the session");
    }

    #[test]
    fn every_auth_type_the_server_names_is_accepted() {
        let hs = with(&chat_base(), "protocol", s("auth-handshake"));
        let no_auth = with(&hs, "auth", V::Raw(Raw::Missing));
        let oauth = |t: &str| {
            o(&[
                ("auth_type", s(t)),
                ("client_id", s("id")),
                ("client_secret", s("secret")),
                ("token_url", s("https://idp.example/token")),
                ("scope", s("chat")),
            ])
        };
        let c = chat(&with(&no_auth, "handshake", oauth("oauth2_client_credentials"))).unwrap();
        assert_eq!(c.config.auth_type, AuthType::OAuth2ClientCredentials);
        assert_eq!(c.auth_type_name, "oauth2_client_credentials");
        assert!(!c.has_auth, "the server fetches that token, not the SDK");
        let e = chat(&with(
            &no_auth,
            "handshake",
            o(&[("auth_type", s("oauth2_client_credentials")), ("client_id", s("id"))]),
        ))
        .unwrap_err();
        assert_eq!(e.field, "handshake.client_secret");
        let c = chat(&with(&no_auth, "handshake", o(&[("auth_type", s("sso"))]))).unwrap();
        assert_eq!(
            c.config.auth_type,
            AuthType::Sso,
            "the SSO cookie may carry the session"
        );
        let c = chat(&with(
            &no_auth,
            "handshake",
            o(&[("auth_type", s("kerberos")), ("ticket", s("t"))]),
        ))
        .unwrap();
        assert_eq!(
            (c.config.auth_type, c.auth_type_name.as_str()),
            (AuthType::Other, "kerberos")
        );
        let c = chat(&with(&hs, "handshake", o(&[]))).unwrap();
        assert_eq!(
            c.config.auth_type,
            AuthType::BearerToken,
            "auth_type defaults to bearer_token"
        );
    }

    #[test]
    fn session_adoption_resume_pings_and_the_connect_token() {
        let c = chat(&chat_base()).unwrap();
        assert!(c.config.session_from.is_empty() && !c.config.resume && c.config.connect_token.is_none());
        assert!(c.config.answer_pings);
        assert_eq!(c.config.session_field, "session_id");
        let c = chat(&with(&chat_base(), "sessionIdFrom", b(true))).unwrap();
        assert_eq!(c.config.session_from, SESSION_FRAMES.to_vec());
        let v = with(
            &with(&chat_base(), "sessionIdFrom", V::List(vec![s("hello")])),
            "sessionIdField",
            s("sid"),
        );
        let c = chat(&with(&with(&v, "resumeSession", b(true)), "answerPings", b(false))).unwrap();
        assert_eq!(
            (c.config.session_from.clone(), c.config.session_field.as_str()),
            (vec!["hello".to_owned()], "sid")
        );
        assert!(c.config.resume && !c.config.answer_pings);
        let c = chat(&with(&chat_base(), "connectToken", o(&[("query", s("token"))]))).unwrap();
        assert_eq!(c.config.connect_token, Some(TokenPlace::Query("token".into())));
        let c = chat(&with(&chat_base(), "connectToken", o(&[("protocol", s("bearer"))]))).unwrap();
        assert_eq!(c.config.connect_token, Some(TokenPlace::Protocol("bearer".into())));
        for (v, field) in [
            (with(&chat_base(), "connectToken", s("token")), "connectToken"),
            (with(&chat_base(), "connectToken", o(&[])), "connectToken"),
            (
                with(&chat_base(), "connectToken", o(&[("query", s(""))])),
                "connectToken.query",
            ),
            (
                with(&chat_base(), "connectToken", o(&[("protocol", s("a b"))])),
                "connectToken.protocol",
            ),
            (
                with(
                    &chat_base(),
                    "connectToken",
                    o(&[("query", s("t")), ("protocol", s("p"))]),
                ),
                "connectToken",
            ),
            (with(&chat_base(), "sessionIdFrom", s("x")), "sessionIdFrom"),
            (
                with(&chat_base(), "sessionIdFrom", V::List(vec![n(1.0)])),
                "sessionIdFrom[0]",
            ),
            (with(&chat_base(), "sessionIdField", s("")), "sessionIdField"),
            (with(&chat_base(), "resumeSession", s("yes")), "resumeSession"),
            (with(&chat_base(), "answerPings", n(0.0)), "answerPings"),
        ] {
            let e = chat(&v).unwrap_err();
            assert_eq!((e.code, e.field.as_str()), (Code::InvalidOptions, field));
        }
    }

    #[test]
    fn urls_keep_their_codes_and_name_the_field() {
        let e = auth(&o(&[(
            "refresh",
            with(&supabase(), "url", s("http://auth.example.com")),
        )]))
        .unwrap_err();
        assert_eq!((e.code, e.field.as_str()), (Code::InsecureUrl, "refresh.url"));
        assert!(e.message.starts_with("options.refresh.url: "));
        let ok = o(&[
            ("refresh", with(&supabase(), "url", s("http://auth.example.com"))),
            ("allowInsecure", b(true)),
        ]);
        assert!(auth(&ok).is_ok());
        let e = auth(&o(&[("refresh", with(&supabase(), "url", s("not a url")))])).unwrap_err();
        assert_eq!((e.code, e.field.as_str()), (Code::InvalidUrl, "refresh.url"));
        let e = chat(&with(&chat_base(), "url", s("ws://chat.example.com/ws"))).unwrap_err();
        assert_eq!((e.code, e.field.as_str()), (Code::InsecureUrl, "url"));
        let e = chat(&with(&chat_base(), "url", s("https://chat.example.com/ws"))).unwrap_err();
        assert_eq!(e.code, Code::InvalidUrl);
        let c = chat(&with(
            &with(&chat_base(), "url", s("ws://chat.example.com/ws")),
            "allowInsecure",
            b(true),
        ))
        .unwrap();
        assert!(c.allow_insecure);
        let a = auth(&o(&[("refresh", supabase())])).unwrap();
        assert_eq!(
            a.source.as_ref().and_then(SourceSpec::gotrue_url),
            Some("https://abcdef.supabase.co")
        );
    }

    #[test]
    fn the_storage_key() {
        let key = |v: V| auth(&v).map(|a| a.storage_key);
        let sb = o(&[("refresh", supabase()), ("storageKey", s("supabase"))]);
        assert_eq!(key(sb).unwrap(), "sb-abcdef-auth-token");
        let odd = with(&supabase(), "url", s("HTTPS://ABC.supabase.co:443\\x"));
        assert_eq!(
            key(o(&[("refresh", odd), ("storageKey", s("supabase"))])).unwrap(),
            "sb-abc-auth-token"
        );
        // Userinfo is refused (`fetch` throws on it), but the key would still be the host's.
        let creds = with(&supabase(), "url", s("https://user:pw@abc.supabase.co/x"));
        let e = key(o(&[("refresh", creds), ("storageKey", s("supabase"))])).unwrap_err();
        assert_eq!((e.code, e.field.as_str()), (Code::InvalidUrl, "refresh.url"));
        assert_eq!(
            supabase_key("https://a.b:c@x.supabase.co", url::parse),
            "sb-x-auth-token"
        );
        assert_eq!(
            supabase_key("http://evil.com\\@localhost/", url::parse),
            "sb-evil-auth-token"
        );
        assert_eq!(supabase_key("http://[::1]:54321", url::parse), "sb-[::1]-auth-token");
        assert_eq!(supabase_key("http://127.1:54321", url::parse), "sb-127-auth-token");
        let gotrue = o(&[
            ("kind", s("password")),
            ("url", s("http://127.0.0.1:8787")),
            ("apiKey", s("k")),
            ("email", s("a@b.c")),
            ("password", s("p")),
        ]);
        assert_eq!(
            key(o(&[("refresh", gotrue.clone()), ("storageKey", s("supabase"))])).unwrap(),
            "sb-127-auth-token"
        );
        for no_gotrue in [
            o(&[("storageKey", s("supabase"))]),
            o(&[
                ("refresh", with(&gotrue, "endpoint", s("plain"))),
                ("storageKey", s("supabase")),
            ]),
            o(&[
                ("refresh", o(&[("kind", s("callback")), ("fn", func())])),
                ("storageKey", s("supabase")),
            ]),
        ] {
            let e = key(no_gotrue).unwrap_err();
            assert_eq!(e.field, "storageKey");
            assert!(e.message.contains("needs a supabase or password"), "{}", e.message);
        }
        assert_eq!(
            key(o(&[("storageKey", s(""))])).unwrap_err().message,
            "options.storageKey must not be empty"
        );
        assert_eq!(key(o(&[("storageKey", s("my.key"))])).unwrap(), "my.key");
        assert_eq!(
            key(o(&[("storageKey", V::Raw(Raw::Null))])).unwrap(),
            "authwire.session"
        );
    }

    #[test]
    fn fetch_origins_are_checked_and_named_by_index() {
        let list = |items: &[V]| V::List(items.to_vec());
        let read = |v: V| auth(&o(&[("refresh", supabase()), ("fetchOrigins", v)]));
        // The refresh source's origin comes first, then the entries in order, canonical.
        let a = read(list(&[
            s("https://API.example.com:443/"),
            s("https://*.example.net:8443"),
        ]))
        .unwrap();
        let texts: Vec<String> = a.fetch.allowed.iter().map(origins::Entry::text).collect();
        assert_eq!(
            texts,
            [
                "https://abcdef.supabase.co",
                "https://api.example.com",
                "https://*.example.net:8443"
            ]
        );
        assert!(!a.fetch.allow_insecure);
        // Absent, null or empty: the source's origin only; no source: nothing.
        for v in [V::Raw(Raw::Missing), V::Raw(Raw::Null), list(&[])] {
            assert_eq!(read(v).unwrap().fetch.allowed.len(), 1);
        }
        assert_eq!(auth(&o(&[])).unwrap().fetch, FetchPolicy::default());
        let cb = auth(&o(&[("refresh", o(&[("kind", s("callback")), ("fn", func())]))])).unwrap();
        assert!(cb.fetch.allowed.is_empty(), "a callback source has no origin");
        // Not an array.
        for (v, got) in [
            (s("https://api.example.com"), "string"),
            (o(&[]), "object"),
            (n(1.0), "number"),
            (b(true), "boolean"),
        ] {
            let e = read(v).unwrap_err();
            assert_eq!((e.code, e.field.as_str()), (Code::InvalidOptions, "fetchOrigins"));
            assert!(
                e.message
                    .starts_with("options.fetchOrigins must be an array of origin strings")
                    && e.message.ends_with(&format!("got {got}")),
                "{}",
                e.message
            );
        }
        // Too many.
        let many: Vec<V> = (0..=origins::MAX_ENTRIES)
            .map(|i| s(&format!("https://h{i}.example.com")))
            .collect();
        let e = read(list(&many)).unwrap_err();
        assert_eq!(e.message, "options.fetchOrigins must hold at most 100 entries");
        assert!(read(list(&many[..origins::MAX_ENTRIES])).is_ok());
        // A bad entry is named by its index; its text is never repeated.
        for (bad, why) in [
            (
                s("https://api.example.com/v1?key=SECRET"),
                "must have no path, query or fragment",
            ),
            (s("https://user:SECRET@api.example.com"), "has userinfo"),
            (s("https://*.SECRET"), "is a pattern over a single label"),
            (s("https://a*.example.com"), "may have * only as the whole first label"),
            (s("https://*.127.0.0.1"), "is a pattern over an IP address"),
            (s("SECRET.example.com"), "is not an origin"),
            (s(""), "must be a non-empty string, got string"),
            (n(1.0), "must be a non-empty string, got number"),
            (o(&[]), "must be a non-empty string, got object"),
            (list(&[]), "must be a non-empty string, got array"),
            (V::Raw(Raw::Null), "must be a non-empty string, got null"),
            (V::Throws, "could not be read (reading it threw)"),
        ] {
            let e = read(list(&[s("https://ok.example.com"), bad])).unwrap_err();
            assert_eq!((e.code, e.field.as_str()), (Code::InvalidOptions, "fetchOrigins[1]"));
            assert!(
                e.message.starts_with("options.fetchOrigins[1] ") && e.message.contains(why),
                "{}",
                e.message
            );
            assert!(!e.message.contains("SECRET"), "{}", e.message);
        }
        // Plain text off loopback: insecure_url, unless allowInsecure.
        let e = read(list(&[s("http://api.example.com")])).unwrap_err();
        assert_eq!((e.code, e.field.as_str()), (Code::InsecureUrl, "fetchOrigins[0]"));
        assert!(e.message.starts_with("options.fetchOrigins[0]: "), "{}", e.message);
        let a = auth(&o(&[
            ("fetchOrigins", list(&[s("http://api.example.com")])),
            ("allowInsecure", b(true)),
        ]))
        .unwrap();
        assert!(a.fetch.allow_insecure && a.fetch.allowed.len() == 1);
        assert!(read(list(&[s("http://127.0.0.1:8080"), s("http://*.localhost")])).is_ok());
        // An array where an object is expected reads as an array.
        let e = auth(&o(&[("refresh", list(&[]))])).unwrap_err();
        assert!(e.message.ends_with("got array"), "{}", e.message);
    }

    #[test]
    fn a_throwing_getter_is_reported_by_its_field() {
        let e = auth(&o(&[("refresh", with(&supabase(), "url", V::Throws))])).unwrap_err();
        assert_eq!((e.code, e.field.as_str()), (Code::InvalidOptions, "refresh.url"));
        assert_eq!(e.message, "options.refresh.url could not be read (reading it threw)");
        for path in ["heartbeatMs", "reconnect", "reconnect.factor", "url", "auth"] {
            let e = chat(&with(&chat_base(), path, V::Throws)).unwrap_err();
            assert_eq!(e.field, path);
        }
        let e = auth(&o(&[("marginSeconds", V::Throws)])).unwrap_err();
        assert_eq!(e.field, "marginSeconds");
    }

    /// Defect: `reconnect.minDelayMs` near 8.6e9 or `heartbeatMs: Infinity` overflowed the backoff
    /// and heartbeat arithmetic (a debug build panicked in onclose). The options now stay within
    /// bounds, and the machine saturates even for values no option can produce.
    #[test]
    fn extreme_numbers_never_overflow_the_socket_machine() {
        use super::super::socket_machine::{Input, SocketMachine};
        let at_max = with(
            &with(
                &with(&chat_base(), "heartbeatMs", n(bounds::HEARTBEAT_MS.1 as f64)),
                "connectTimeoutMs",
                n(bounds::CONNECT_TIMEOUT_MS.1 as f64),
            ),
            "reconnect",
            o(&[
                ("minDelayMs", n(bounds::DELAY_MS.1 as f64)),
                ("maxDelayMs", n(bounds::DELAY_MS.1 as f64)),
                ("factor", n(bounds::FACTOR.1 as f64)),
                ("maxRetries", n(bounds::MAX_RETRIES.1 as f64)),
            ]),
        );
        let mut configs = vec![chat(&at_max).unwrap().config];
        for v in [u64::MAX, u64::MAX - 1, u64::MAX / 2, 8_600_000_000, 1 << 33] {
            let mut cfg = Config::new(Protocol::TokenPerMessage, "c".into(), 3);
            cfg.heartbeat_ms = v;
            cfg.connect_timeout_ms = v;
            cfg.healthy_after_ms = v;
            cfg.reconnect = Some(Backoff {
                base_ms: v,
                factor_pct: u64::MAX,
                max_ms: v,
            });
            configs.push(cfg);
        }
        let times = [0, 1, 8_600_000_000, u64::MAX / 2, u64::MAX - 1, u64::MAX];
        for cfg in configs {
            let mut m: SocketMachine<&str> = SocketMachine::new(cfg);
            let mut out = Vec::new();
            m.handle(0, Input::Start, true, &mut out);
            for &now in &times {
                for input in [
                    Input::Opened,
                    Input::Timer,
                    Input::Closed(1006),
                    Input::Timer,
                    Input::Online,
                    Input::Opened,
                    Input::Closed(4001),
                    Input::TokenChanged,
                    Input::Timer,
                ] {
                    m.handle(now, input, true, &mut out);
                }
                if let Some(at) = m.wake_at() {
                    m.handle(at, Input::Timer, true, &mut out);
                }
            }
        }
        for (base, max) in [(u64::MAX, u64::MAX), (8_600_000_000, 8_600_000_000), (1, u64::MAX)] {
            let b = Backoff {
                base_ms: base,
                factor_pct: u64::MAX,
                max_ms: max,
            };
            for attempt in [1, 2, 64, u32::MAX] {
                for rand in [0, 1, u32::MAX] {
                    let d = b.delay_ms(attempt, rand);
                    assert!(d <= max && d >= base.min(max) / 2, "{d}");
                }
            }
        }
    }

    #[test]
    fn secrets_never_reach_a_message_or_debug_output() {
        let secret_strings = ["anon-key-SECRET", "hunter2-SECRET", "k-SECRET"];
        let leaks = |text: &str| secret_strings.iter().any(|x| text.contains(x));
        let mut messages = Vec::new();
        // A secret typed into the wrong field, and errors after secrets were read.
        for (path, v) in [
            ("storage", s("anon-key-SECRET")),
            ("storageKey", n(1.0)),
            ("marginSeconds", s("hunter2-SECRET")),
            ("refresh.kind", s("hunter2-SECRET")),
            ("refresh.url", s("https://hunter2-SECRET@")),
            ("refresh.url", s("http://x.example/?k=anon-key-SECRET")),
        ] {
            let base = o(&[("refresh", supabase())]);
            messages.push(auth(&with(&base, path, v)).unwrap_err().message.clone());
        }
        let hs = with(&chat_base(), "protocol", s("auth-handshake"));
        for (path, v) in [
            ("handshake.auth_type", s(&"k-SECRET".repeat(20))),
            ("tokenField", n(1.0)),
            ("url", s("ws://k-SECRET.example")),
        ] {
            messages.push(chat(&with(&hs, path, v)).unwrap_err().message.clone());
        }
        for m in &messages {
            assert!(!leaks(m), "secret in {m:?}");
        }
        let a = auth(&o(&[(
            "refresh",
            o(&[
                ("kind", s("password")),
                ("url", s("https://x.supabase.co")),
                ("apiKey", s("anon-key-SECRET")),
                ("email", s("a@b.c")),
                ("password", s("hunter2-SECRET")),
            ]),
        )]))
        .unwrap();
        assert!(!leaks(&format!("{a:?}")), "{a:?}");
    }
}
