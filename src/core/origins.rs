//! Where `auth.fetch` may send credentials: the origin allowlist.
//!
//! `auth.fetch(input, init)` attaches `Authorization: Bearer <token>` and the token source's extra
//! headers (a CSRF token) only to a request whose URL, as the browser reads it (the final
//! `Request.url`, relative URLs already resolved against the page), is allowed here. Otherwise the
//! call is refused before any token is asked for, any refresh started or any request made.
//!
//! **The rule.** A request URL is read by the browser's own `URL` (by its model, [`url::parse`], in
//! the native tests), and judged here. It is refused with `invalid_url` unless its scheme is `http` or `https` and it has no userinfo. It is
//! refused with `origin_not_allowed` unless its origin (scheme, host, port) is
//! 1. the page's own origin (`globalThis.location.origin`, when it is an `http(s)` origin), or
//! 2. the origin of the refresh source's `url` (`supabase`, `password`, `broker`; a `callback`
//!    source has none), or
//! 3. listed in `fetchOrigins`: an exact origin (`https://api.example.com`,
//!    `http://127.0.0.1:8080`) equal to it, or a pattern `https://*.example.com` whose domain
//!    (`example.com`) it is a subdomain of, at any depth (`a.example.com`, `a.b.example.com`),
//!    never the domain itself (list `https://example.com` too for that);
//!
//! and then refused with `insecure_url` when it is plain `http:` to a host that is not loopback,
//! unless `allowInsecure: true` (the same switch, and the same loopback, as for token endpoints).
//!
//! Matching is exact on the browser's serialisation: the scheme must be the same (`https` entries
//! never match `http`), the port must be the same (no port written means the scheme's default:
//! `https://x.example.com` does not match `https://x.example.com:8443`), hosts are compared
//! lowercased, percent-decoded and with IPv4/IPv6 normalised, and a trailing dot makes a different
//! host (`example.com.` is its own origin, as in the browser). A pattern matches only at a label
//! boundary: `https://*.example.com` never matches `https://evil-example.com` or
//! `https://example.com.evil.com`.
//!
//! **Entries** (`fetchOrigins`, checked when the session is built, `invalid_options` naming
//! `fetchOrigins[i]`): at most [`MAX_ENTRIES`] strings of at most [`MAX_ENTRY_LEN`] characters,
//! each `http://` or `https://`, a host, an optional port and an optional trailing `/`: no path,
//! query, fragment, userinfo, backslash or whitespace. `*` only as the whole leftmost label of a
//! pattern (`https://*.example.com`, `https://*.example.com:8443`); a pattern's domain has at least
//! two labels (`*.com` is refused; the SDK has no public-suffix list, so `*.co.uk` is the app's
//! responsibility) or is `localhost`; no patterns over IP addresses. Internationalised names are
//! refused, in Unicode and as `xn--` labels alike, as everywhere in the SDK (`url::judge_host`).
//! A plain `http://` entry to a host that is not loopback is refused with `insecure_url` unless
//! `allowInsecure: true`.

use super::error::Code;
use super::text;
use super::url::{self, HostKind, Parsed};

/// The most entries `fetchOrigins` may hold.
pub const MAX_ENTRIES: usize = 100;
/// The longest entry, in characters.
pub const MAX_ENTRY_LEN: usize = 300;

/// One allowed origin, or a subdomain pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The host as the browser serialises it; for a pattern, the domain after `*.`.
    pub host: String,
    /// The port, `None` for the scheme's default.
    pub port: Option<u16>,
    /// `*.host`: any subdomain of `host`, at any depth, not `host` itself.
    pub subdomains: bool,
}

impl Entry {
    /// Whether `p` (an `http(s)` URL as the browser reads it) is of this origin or pattern.
    pub fn matches(&self, p: &Parsed) -> bool {
        if p.scheme != self.scheme || p.port != self.port {
            return false;
        }
        if !self.subdomains {
            return p.host == self.host;
        }
        // At least one label, then `.`, then the domain.
        p.host_kind == HostKind::Domain
            && p.host
                .strip_suffix(self.host.as_str())
                .is_some_and(|labels| labels.len() > 1 && labels.ends_with('.'))
    }

    /// The entry as written canonically (`https://*.example.com:8443`).
    pub fn text(&self) -> String {
        let star = if self.subdomains { "*." } else { "" };
        match self.port {
            Some(port) => text::cat(&[self.scheme, "://", star, &self.host, ":", &text::dec(port.into())]),
            None => text::cat(&[self.scheme, "://", star, &self.host]),
        }
    }
}

/// Why an entry is refused: the code (`invalid_options` or `insecure_url`) and what is wrong with
/// it, to follow `options.fetchOrigins[i] `. Never repeats the entry's text.
pub type EntryError = (Code, &'static str);

/// The message for more than [`MAX_ENTRIES`] entries, to follow `options.fetchOrigins `.
pub const TOO_MANY: &str = "must hold at most 100 entries";

/// Reads one `fetchOrigins` entry (see the module documentation for the accepted forms): a few
/// checks on its text, then `read`, the reading request URLs get.
pub fn entry(text: &str, allow_insecure: bool, read: url::Read) -> Result<Entry, EntryError> {
    const FORM: &str = "is not an origin (https://host[:port]) or pattern (https://*.domain)";
    let bad = |why: &'static str| Err((Code::InvalidOptions, why));
    // Byte by byte: a character that is not ASCII is made of bytes 0x80 and above.
    for b in text.bytes() {
        match b {
            b'\\' => return bad("has a backslash"),
            b'@' => return bad("has userinfo (@)"),
            0..=b' ' | 0x7f.. => return bad("must be ASCII with no spaces or controls"),
            _ => {}
        }
    }
    // All ASCII: bytes are characters.
    if text.len() > MAX_ENTRY_LEN {
        return bad("is over 300 characters");
    }
    // `scheme://` (a scheme has no `:`), then the host, or `*.` and the domain.
    let Some((scheme, rest)) = text.split_once(':') else {
        return bad(FORM);
    };
    let Some(rest) = rest.strip_prefix("//") else {
        return bad(FORM);
    };
    let (subdomains, rest) = match rest.strip_prefix("*.") {
        Some(domain) => (true, domain),
        None => (false, rest),
    };
    if rest.contains('*') {
        return bad("may have * only as the whole first label");
    }
    let mut origin = String::from(scheme);
    origin.push_str("://");
    origin.push_str(rest);
    let p = match read(&origin) {
        Ok(p) if matches!(p.scheme, "http" | "https") => p,
        _ => return bad(FORM),
    };
    if !(p.rest.is_empty() || p.rest == "/") {
        return bad("must have no path, query or fragment");
    }
    if subdomains {
        if p.host_kind != HostKind::Domain {
            return bad("is a pattern over an IP address");
        }
        let labels = p.host.trim_end_matches('.');
        if !labels.contains('.') && labels != "localhost" {
            return bad("is a pattern over a single label");
        }
    }
    if !p.secure() && !p.loopback && !allow_insecure {
        return Err((Code::InsecureUrl, Code::InsecureUrl.describe()));
    }
    Ok(Entry {
        scheme: p.scheme,
        host: p.host,
        port: p.port,
        subdomains,
    })
}

/// The exact origin of an `http(s)` URL (a refresh source's), as an entry; `None` otherwise.
pub fn origin_of(text: &str, read: url::Read) -> Option<Entry> {
    let p = read(text).ok()?;
    matches!(p.scheme, "http" | "https").then(|| Entry {
        scheme: p.scheme,
        host: p.host,
        port: p.port,
        subdomains: false,
    })
}

/// Everything `auth.fetch` checks a request URL against, but the page's origin (read at each call).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchPolicy {
    /// The refresh source's origin, then the `fetchOrigins` entries.
    pub allowed: Vec<Entry>,
    /// `allowInsecure`: plain `http:` off loopback is not refused.
    pub allow_insecure: bool,
}

impl FetchPolicy {
    /// Allows the exact origin of `url` (a refresh source's or a Supabase client's project URL)
    /// when it is an `http(s)` URL that no entry matches yet.
    pub fn add_origin_of(&mut self, url: &str, read: url::Read) {
        if let Ok(p) = read(url) {
            if matches!(p.scheme, "http" | "https") && !self.lists(&p) {
                self.allowed.push(Entry {
                    scheme: p.scheme,
                    host: p.host,
                    port: p.port,
                    subdomains: false,
                });
            }
        }
    }

    /// Whether an entry matches `p`.
    fn lists(&self, p: &Parsed) -> bool {
        self.allowed.iter().any(|e| e.matches(p))
    }

    /// Decides whether credentials may go with a request to `request_url` (the final
    /// `Request.url`) from a page whose origin is `page_origin` (`location.origin`, when there is one).
    pub fn check(&self, page_origin: Option<&str>, request_url: &str, read: url::Read) -> Result<(), Code> {
        let p = read(request_url)?;
        if !matches!(p.scheme, "http" | "https") || p.credentials {
            return Err(Code::InvalidUrl);
        }
        // The page's origin matches exactly (so only when it is an `http(s)` one, as `p` is).
        let page = page_origin
            .and_then(|t| read(t).ok())
            .is_some_and(|q| q.scheme == p.scheme && q.port == p.port && q.host == p.host);
        if !(page || self.lists(&p)) {
            return Err(Code::OriginNotAllowed);
        }
        if !p.secure() && !p.loopback && !self.allow_insecure {
            return Err(Code::InsecureUrl);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> FetchPolicy {
        FetchPolicy {
            allowed: entries.iter().map(|e| entry(e, false, url::parse).unwrap()).collect(),
            allow_insecure: false,
        }
    }

    const PAGE: Option<&str> = Some("https://app.example.org");

    #[test]
    fn exact_origins_match_scheme_host_and_port_exactly() {
        let p = policy(&["https://api.example.com", "http://127.0.0.1:8080"]);
        for ok in [
            "https://api.example.com/v1/me?x=1#f",
            "https://API.Example.COM",
            "https://api.example.com:443/x",
            "HTTPS://api.example.com\\x",
            "https://ap%69.example.com/",
            "http://127.0.0.1:8080/x",
            "http://127.1:8080/x",
            "http://0x7f.0.0.1:8080/",
            "https://app.example.org/own",
        ] {
            assert_eq!(p.check(PAGE, ok, url::parse), Ok(()), "{ok}");
        }
        for refused in [
            "https://api.example.com:8443/",
            "http://api.example.com/",
            "https://api.example.com./",
            "https://x.api.example.com/",
            "https://example.com/",
            "https://api.example.co/",
            "https://evil.com/?https://api.example.com",
            "https://evil.com/#https://api.example.com",
            "https://evil.com\\@api.example.com/",
            "https://api.example.com.evil.com/",
            "http://127.0.0.1:8081/",
            "http://127.0.0.1/",
            "http://localhost:8080/",
            "http://[::1]:8080/",
            "https://app.example.org:444/",
            "http://app.example.org/",
        ] {
            assert_eq!(
                p.check(PAGE, refused, url::parse),
                Err(Code::OriginNotAllowed),
                "{refused}"
            );
        }
        for invalid in [
            "https://user:pw@api.example.com/",
            "https://api.example.com@evil.com/",
            "wss://api.example.com/",
            "data:text/plain,x",
            "blob:https://api.example.com/1",
            "/relative",
            "https://xn--80ak6aa92e.com/",
            "",
        ] {
            assert_eq!(p.check(PAGE, invalid, url::parse), Err(Code::InvalidUrl), "{invalid}");
        }
    }

    #[test]
    fn patterns_match_subdomains_at_a_label_boundary_not_the_apex() {
        let p = policy(&["https://*.example.com", "https://*.svc.example.net:8443"]);
        for ok in [
            "https://a.example.com/",
            "https://a.b.c.example.com/x",
            "https://A.EXAMPLE.com",
            "https://a-b_c.example.com",
            "https://x.svc.example.net:8443/",
        ] {
            assert_eq!(p.check(None, ok, url::parse), Ok(()), "{ok}");
        }
        for refused in [
            "https://example.com/",
            "https://evil-example.com/",
            "https://evilexample.com/",
            "https://example.com.evil.com/",
            "https://a.example.com.evil.com/",
            "https://a.example.com./",
            "https://a.example.com:8443/",
            "http://a.example.com/",
            "https://x.svc.example.net/",
            "https://svc.example.net:8443/",
            "https://1.2.3.4/",
        ] {
            assert_eq!(
                p.check(None, refused, url::parse),
                Err(Code::OriginNotAllowed),
                "{refused}"
            );
        }
        let dot = policy(&["https://*.example.com."]);
        assert_eq!(dot.check(None, "https://a.example.com./", url::parse), Ok(()));
        assert_eq!(
            dot.check(None, "https://a.example.com/", url::parse),
            Err(Code::OriginNotAllowed)
        );
    }

    #[test]
    fn the_page_origin_and_plain_text() {
        let p = policy(&[]);
        assert_eq!(
            p.check(Some("http://localhost:5173"), "http://localhost:5173/api", url::parse),
            Ok(())
        );
        assert_eq!(
            p.check(Some("http://localhost:5173"), "http://127.0.0.1:5173/api", url::parse),
            Err(Code::OriginNotAllowed)
        );
        // Same origin, but plain text off loopback: refused unless allowInsecure.
        assert_eq!(
            p.check(Some("http://intranet.corp"), "http://intranet.corp/api", url::parse),
            Err(Code::InsecureUrl)
        );
        let insecure = FetchPolicy {
            allow_insecure: true,
            ..p.clone()
        };
        assert_eq!(
            insecure.check(Some("http://intranet.corp"), "http://intranet.corp/api", url::parse),
            Ok(())
        );
        // Not same origin: the allowlist answers first.
        assert_eq!(
            p.check(Some("http://intranet.corp"), "http://evil.com/", url::parse),
            Err(Code::OriginNotAllowed)
        );
        // No usable page origin: opaque, file:, absent.
        for page in [None, Some("null"), Some("file://"), Some("chrome-extension://abc")] {
            assert_eq!(
                p.check(page, "https://app.example.org/", url::parse),
                Err(Code::OriginNotAllowed),
                "{page:?}"
            );
        }
    }

    #[test]
    fn entries_are_checked_with_a_reason() {
        for (text, canonical) in [
            ("https://api.example.com", "https://api.example.com"),
            ("https://api.example.com/", "https://api.example.com"),
            ("HTTPS://API.EXAMPLE.COM:443", "https://api.example.com"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://localhost:80", "http://localhost"),
            ("http://[0::1]:9", "http://[::1]:9"),
            ("https://[2001:db8::1]", "https://[2001:db8::1]"),
            ("https://*.example.com", "https://*.example.com"),
            ("https://*.Example.com:8443/", "https://*.example.com:8443"),
            ("http://*.localhost:3000", "http://*.localhost:3000"),
            ("https://*.localhost", "https://*.localhost"),
        ] {
            assert_eq!(
                entry(text, false, url::parse).map(|e| e.text()),
                Ok(canonical.into()),
                "{text}"
            );
        }
        for bad in [
            "api.example.com",
            "//api.example.com",
            "ftp://api.example.com",
            "wss://api.example.com",
            "https://",
            "https:api.example.com",
            "https:/api.example.com",
            "https://api.example.com/v1",
            "https://api.example.com?x",
            "https://api.example.com#x",
            "https://api.example.com//",
            "https://user@api.example.com",
            "https://user:pw@api.example.com",
            "https://evil.com\\@api.example.com",
            "https://api.example.com:99999",
            "https://api.example.com:*",
            "https://*",
            "https://*.",
            "https://*.com",
            "https://*.com.",
            "https://**.example.com",
            "https://*example.com",
            "https://a*.example.com",
            "https://a.*.example.com",
            "https://*.*.example.com",
            "https://*.127.0.0.1",
            "https://*.1.2",
            "https://*.[::1]",
            "https://*.xn--p1ai.example",
            "https://bücher.example",
            "https://xn--bcher-kva.example",
            " https://api.example.com",
            "https://api.example.com ",
            "https://api.exa mple.com",
            "https://api.example.com\n",
            "https://%2a.example.com",
            "*",
            "",
        ] {
            let e = entry(bad, true, url::parse).expect_err(bad);
            assert_eq!(e.0, Code::InvalidOptions, "{bad}: {}", e.1);
        }
        let long = format!("https://{}.example.com", "a".repeat(MAX_ENTRY_LEN));
        assert_eq!(entry(&long, false, url::parse).unwrap_err().0, Code::InvalidOptions);
        for insecure in ["http://api.example.com", "http://*.example.com", "http://10.0.0.1:8080"] {
            assert_eq!(
                entry(insecure, false, url::parse).unwrap_err().0,
                Code::InsecureUrl,
                "{insecure}"
            );
            assert!(
                entry(insecure, true, url::parse).is_ok(),
                "{insecure} with allowInsecure"
            );
        }
    }

    #[test]
    fn listed_plain_text_is_refused_at_the_request_too() {
        let p = FetchPolicy {
            allowed: vec![entry("http://api.example.com", true, url::parse).unwrap()],
            allow_insecure: false,
        };
        assert_eq!(
            p.check(None, "http://api.example.com/x", url::parse),
            Err(Code::InsecureUrl)
        );
        let p = FetchPolicy {
            allow_insecure: true,
            ..p
        };
        assert_eq!(p.check(None, "http://api.example.com/x", url::parse), Ok(()));
    }

    #[test]
    fn the_source_origin() {
        let e = origin_of("https://abc.supabase.co:443/x/", url::parse).unwrap();
        assert_eq!(e.text(), "https://abc.supabase.co");
        assert_eq!(origin_of("wss://x.example/ws", url::parse), None);
        assert_eq!(origin_of("nonsense", url::parse), None);
    }
}
