//! URL checks, the way the browser sees the URL: the scheme is one we speak, and plain text goes
//! only to loopback unless opted in.
//!
//! The browser parses every URL the SDK hands to `fetch` or `WebSocket` with the WHATWG URL parser,
//! so deciding "is this loopback?" on a parse of our own invites confusions: in
//! `http://evil.com\@localhost/` the browser reads `\` as `/`, so the host is `evil.com` and `@localhost/`
//! is the path. [`parse`] therefore follows the WHATWG host-extraction rules for the special schemes
//! `http`, `https`, `ws` and `wss`, and refuses (`invalid_url`) whatever it cannot decide exactly as
//! the browser would:
//!
//! - leading and trailing C0 controls and spaces are trimmed, ASCII tab, LF and CR are removed anywhere;
//! - the scheme is lowercased and must be followed by at least two `/` or `\` (any further ones are
//!   skipped, as the browser does). With fewer, `fetch` resolves the URL against the page's own URL
//!   (`http:evil.com` on an `http:` page is a path on the page's host), so it is refused;
//! - the authority ends at the first `/`, `\`, `?` or `#`; the host follows its last `@`;
//! - hosts are percent-decoded and lowercased; a host ending in a number is an IPv4 address, parsed
//!   as the standard does (`127.1`, `0x7f.0.0.1`, `0177.0.0.1` and `2130706433` are all 127.0.0.1),
//!   or refused (also a bare `0x` part, which Firefox fails and the other engines read as 0);
//!   `[...]` is an IPv6 address, serialised as the browser does;
//! - domains are refused unless every label is made of `a-z`, `0-9`, `-` and `_` (engines differ
//!   on the rest, and no endpoint needs it), so `localhost.evil.com` is a domain, never loopback.
//!   Internationalised names (non-ASCII, or `xn--` labels) are refused as `invalid_url`: deciding
//!   them as the browser does needs the Unicode IDNA tables (UTS 46 mapping and validity), far
//!   heavier than this module, and a lookalike of `localhost` must never slip through;
//! - the port is decimal, 0..=65535; the scheme's default port reads as no port.
//!
//! Loopback is what the W3C Secure Contexts spec counts as this machine: `localhost`, `*.localhost`
//! (each with an optional trailing dot; browsers resolve them to loopback themselves), 127.0.0.0/8
//! and `[::1]`. Not `[::ffff:127.0.0.1]`: see `judge_host`.
//!
//! Neither build ships this parser: the shell reads every URL (the URL options, `fetchOrigins`
//! entries, `auth.fetch`'s request URLs, the page's origin) with the browser's own `URL` and hands
//! the parts to [`from_browser`]; `judge_host` and [`judge`] decide, as they decide [`parse`]'s
//! reading. [`parse`] is the browser's model here, for the native tests and the simulation, and
//! `tests/web_urls.rs` checks the two readings against each other in each engine. Being the
//! browser's reading, the shipped one also accepts what [`parse`] refuses only for want of
//! certainty: `http:host` without slashes, a bare `0x` part, and full-width or other forms the
//! browser maps to ASCII by IDNA (`ｌｏｃａｌｈｏｓｔ` is `localhost`, and is loopback, because the
//! browser connects there). It reads an empty userinfo (`http://@host/`) as none, as the browser
//! does. The URL that goes on is always the judged one, re-serialised.

use super::error::Code;
use super::text;

/// The two families of URL the SDK opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `https://` (or `http://` to loopback) for token endpoints.
    Http,
    /// `wss://` (or `ws://` to loopback) for chat sockets.
    Ws,
}

/// What kind of host a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// A domain name (ASCII, lowercase, possibly with a trailing dot).
    Domain,
    /// An IPv4 address, serialised in dotted decimal.
    Ipv4,
    /// An IPv6 address, serialised in brackets.
    Ipv6,
}

/// A URL as the browser reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// `http`, `https`, `ws` or `wss` (lowercase).
    pub scheme: &'static str,
    /// The host as the browser serialises it (`URL.hostname`): `localhost`, `127.0.0.1`, `[::1]`.
    pub host: String,
    /// What `host` is.
    pub host_kind: HostKind,
    /// The port, `None` when absent or the scheme's default (as `URL.port` is empty).
    pub port: Option<u16>,
    /// The host is this machine (see the module documentation).
    pub loopback: bool,
    /// The URL carries userinfo (`user:pw@`, or just `@`) before the host.
    pub credentials: bool,
    /// Path, query and fragment as written after the host, the path's `\` turned into `/`
    /// (it starts with `/`, `?` or `#`, or is empty).
    pub rest: String,
}

impl Parsed {
    /// `https` or `wss`.
    pub fn secure(&self) -> bool {
        matches!(self.scheme, "https" | "wss")
    }

    /// `scheme://host[:port]`, as the browser serialises the origin.
    pub fn origin(&self) -> String {
        match self.port {
            Some(p) => text::cat(&[self.scheme, "://", &self.host, ":", &text::dec(p.into())]),
            None => text::cat(&[self.scheme, "://", &self.host]),
        }
    }
}

/// `url` with `params` appended to its query (`?` or `&`), names and values percent-encoded as
/// `encodeURIComponent` does; a fragment stays last. Used for the connect URL (`session_id` to
/// resume, the opt-in connect-time token).
pub fn with_query(url: &str, params: &[(&str, &str)]) -> String {
    if params.is_empty() {
        return url.to_owned();
    }
    let (base, fragment) = url.split_at(url.find('#').unwrap_or(url.len()));
    let mut out = String::with_capacity(url.len() + 64);
    out.push_str(base);
    let mut sep = if base.contains('?') {
        if base.ends_with('?') || base.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    for (k, v) in params {
        out.push_str(sep);
        encode_component(k, &mut out);
        out.push('=');
        encode_component(v, &mut out);
        sep = "&";
    }
    out.push_str(fragment);
    out
}

/// `encodeURIComponent`: everything but `A-Z a-z 0-9 - _ . ! ~ * ' ( )` as UTF-8 `%XX`.
fn encode_component(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

/// How a URL is read: by the browser (the shell's reading, through [`from_browser`]), or by
/// [`parse`], its model (the native tests' reading).
pub type Read = fn(&str) -> Result<Parsed, Code>;

/// `http`, `https`, `ws` or `wss` (given lowercase), the schemes the SDK speaks; else `invalid_url`.
fn scheme_of(scheme: &str) -> Result<&'static str, Code> {
    match scheme {
        "http" => Ok("http"),
        "https" => Ok("https"),
        "ws" => Ok("ws"),
        "wss" => Ok("wss"),
        _ => Err(Code::InvalidUrl),
    }
}

/// A URL as the browser's own `URL` read it (the shell's reading: the wasm carries no parser):
/// `protocol` (`"https:"`), whether there was a user name or password, `hostname`, `port` (empty
/// for none or the default) and the path, query and fragment. Judged as [`parse`]'s result is: the
/// scheme must be one the SDK speaks and the host pass `judge_host`.
pub fn from_browser(
    protocol: &str,
    credentials: bool,
    hostname: &str,
    port: &str,
    rest: String,
) -> Result<Parsed, Code> {
    let scheme = scheme_of(protocol.strip_suffix(':').ok_or(Code::InvalidUrl)?)?;
    let (host_kind, loopback) = judge_host(hostname)?;
    Ok(Parsed {
        scheme,
        host: hostname.to_owned(),
        host_kind,
        port: parse_port(port, scheme)?,
        loopback,
        credentials,
        rest,
    })
}

/// Parses `url` as the browser's URL parser would (for the special schemes `http`, `https`, `ws`,
/// `wss`; anything else is `invalid_url`), or refuses it with `invalid_url` when the browser would
/// fail or this parser cannot decide as confidently as the browser.
pub fn parse(url: &str) -> Result<Parsed, Code> {
    // Trim C0 controls and space at both ends; remove tab, LF and CR anywhere.
    let url: String = url
        .trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let (scheme, rest) = url.split_once(':').ok_or(Code::InvalidUrl)?;
    let scheme = scheme_of(&scheme.to_ascii_lowercase())?;
    let slash = |c: char| c == '/' || c == '\\';
    let after = rest.trim_start_matches(slash);
    if rest.len() - after.len() < 2 {
        return Err(Code::InvalidUrl);
    }
    let end = after.find(['/', '\\', '?', '#']).unwrap_or(after.len());
    let (authority, tail) = after.split_at(end);
    let (credentials, hostport) = match authority.rfind('@') {
        Some(at) => (true, &authority[at + 1..]),
        None => (false, authority),
    };
    // The host ends at the first `:` outside brackets.
    let mut inside = false;
    let mut colon = None;
    for (i, b) in hostport.bytes().enumerate() {
        match b {
            b'[' => inside = true,
            b']' => inside = false,
            b':' if !inside => {
                colon = Some(i);
                break;
            }
            _ => {}
        }
    }
    let (host_text, port_text) = match colon {
        Some(i) => (&hostport[..i], Some(&hostport[i + 1..])),
        None => (hostport, None),
    };
    let (host, host_kind, loopback) = parse_host(host_text)?;
    let port = match port_text {
        None => None,
        Some(p) => parse_port(p, scheme)?,
    };
    // The path runs to the first `?` or `#`; in it the browser reads `\` as `/`.
    let path_end = tail.find(['?', '#']).unwrap_or(tail.len());
    let mut rest = tail[..path_end].replace('\\', "/");
    rest.push_str(&tail[path_end..]);
    Ok(Parsed {
        scheme,
        host,
        host_kind,
        port,
        loopback,
        credentials,
        rest,
    })
}

/// A port: decimal digits (possibly none: no port), at most 65535; the default port reads as none.
fn parse_port(p: &str, scheme: &str) -> Result<Option<u16>, Code> {
    if !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Code::InvalidUrl);
    }
    if p.is_empty() {
        return Ok(None);
    }
    let digits = p.trim_start_matches('0');
    if digits.len() > 5 {
        return Err(Code::InvalidUrl);
    }
    let value = digits.bytes().fold(0u32, |v, b| v * 10 + u32::from(b - b'0'));
    let port = u16::try_from(value).map_err(|_| Code::InvalidUrl)?;
    let default = if matches!(scheme, "https" | "wss") { 443 } else { 80 };
    Ok((port != default).then_some(port))
}

/// The WHATWG host parser for special schemes, restricted to what can be decided confidently:
/// the host serialised as the browser does, then judged by `judge_host`.
fn parse_host(input: &str) -> Result<(String, HostKind, bool), Code> {
    let host = if let Some(inner) = input.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or(Code::InvalidUrl)?;
        let address = parse_ipv6(inner.as_bytes()).ok_or(Code::InvalidUrl)?;
        text::cat(&["[", &serialize_ipv6(&address), "]"])
    } else {
        let domain = percent_decode(input.as_bytes()).ok_or(Code::InvalidUrl)?;
        // Only ASCII is left (checked by `percent_decode`).
        let domain = String::from_utf8(domain.to_ascii_lowercase()).map_err(|_| Code::InvalidUrl)?;
        if !domain.is_empty() && ends_in_a_number(domain.as_bytes()) {
            let v4 = parse_ipv4(domain.as_bytes()).ok_or(Code::InvalidUrl)?;
            let n = v4.to_be_bytes().map(|n| text::dec(n.into()));
            text::cat(&[&n[0], ".", &n[1], ".", &n[2], ".", &n[3]])
        } else {
            domain
        }
    };
    let (kind, loopback) = judge_host(&host)?;
    Ok((host, kind, loopback))
}

/// What a host serialised as the browser serialises it (`URL.hostname`: IPv6 in brackets and
/// compressed, IPv4 in dotted decimal, domains lowercase ASCII) is, and whether it is loopback.
/// Refuses (`invalid_url`) a domain unless every label is made of `a-z`, `0-9`, `-` and `_`, and
/// internationalised names (`xn--` labels; see the module documentation).
///
/// Loopback IPv6 is `[::1]` only. The IPv4-mapped `::ffff:127.0.0.1` (serialised
/// `[::ffff:7f00:1]`) is NOT loopback here: browsers do not count it as loopback (Chromium's
/// `IPAddress::IsLoopback` and the Secure Contexts spec name only 127.0.0.0/8 and `::1`, so such a
/// page is not even a secure context), and whether a connection to it reaches 127.0.0.1 depends on
/// the OS's dual-stack sockets (some systems refuse v4-mapped addresses on the wire). Plain text to
/// it needs `allowInsecure`.
fn judge_host(host: &str) -> Result<(HostKind, bool), Code> {
    if host.starts_with('[') {
        return Ok((HostKind::Ipv6, host == "[::1]"));
    }
    // Serialised, an IPv4 address is dotted decimal, and a domain never is: a host ending in a
    // number is read as an IPv4 address or not at all.
    if host.ends_with(|c: char| c.is_ascii_digit()) && host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Ok((HostKind::Ipv4, host.starts_with("127.")));
    }
    let labels = host.strip_suffix('.').unwrap_or(host);
    for label in labels.split('.') {
        let plain = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_';
        if label.is_empty() || !label.bytes().all(plain) || label.starts_with("xn--") {
            return Err(Code::InvalidUrl);
        }
    }
    Ok((
        HostKind::Domain,
        labels == "localhost" || labels.ends_with(".localhost"),
    ))
}

/// Percent-decodes `%XX` (a `%` not followed by two hex digits stays, and is refused later).
/// `None` when the result is not ASCII (an internationalised name: refused).
fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%' && i + 2 < input.len() {
            if let (Some(h), Some(l)) = (hex(input[i + 1]), hex(input[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out.is_ascii().then_some(out)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// WHATWG "ends in a number": the last label (ignoring one trailing dot) is digits, or parses as an
/// IPv4 number (`0x` hex included). Such a host must be an IPv4 address or the URL fails.
fn ends_in_a_number(domain: &[u8]) -> bool {
    let mut parts: Vec<&[u8]> = domain.split(|&b| b == b'.').collect();
    if parts.last().is_some_and(|p| p.is_empty()) {
        if parts.len() == 1 {
            return false;
        }
        parts.pop();
    }
    let last = parts.last().copied().unwrap_or_default();
    (!last.is_empty() && last.iter().all(u8::is_ascii_digit)) || ipv4_number(last).is_some()
}

/// WHATWG IPv4 number parser: decimal, `0x` hex or `0` octal; `None` on failure. Values beyond
/// `u32` saturate (they fail the range checks of [`parse_ipv4`] anyway).
fn ipv4_number(input: &[u8]) -> Option<u64> {
    if input.is_empty() {
        return None;
    }
    let (digits, radix) = if input.len() >= 2 && input[0] == b'0' && (input[1] | 0x20) == b'x' {
        (&input[2..], 16)
    } else if input.len() >= 2 && input[0] == b'0' {
        (&input[1..], 8)
    } else {
        (input, 10)
    };
    let mut value: u64 = 0;
    for &b in digits {
        let d = u64::from(hex(b)?);
        if d >= radix {
            return None;
        }
        value = value.saturating_mul(radix).saturating_add(d).min(1 << 40);
    }
    Some(value)
}

/// WHATWG IPv4 parser: up to four parts, the last filling the remaining bytes.
///
/// One departure, where the engines disagree: a part that is a bare `0x` (no hex digits) is 0 to the
/// standard, Chromium and WebKit (`http://0x/` is `0.0.0.0`), but Firefox (153 ESR) fails the whole
/// URL. Such a host is refused, so the SDK reads it the same way in every engine (it still ends in a
/// number, so it is never taken for a domain either).
fn parse_ipv4(domain: &[u8]) -> Option<u32> {
    let mut parts: Vec<&[u8]> = domain.split(|&b| b == b'.').collect();
    if parts.last().is_some_and(|p| p.is_empty()) && parts.len() > 1 {
        parts.pop();
    }
    if parts.len() > 4 || parts.iter().any(|p| p.eq_ignore_ascii_case(b"0x")) {
        return None;
    }
    let mut numbers = Vec::with_capacity(parts.len());
    for p in &parts {
        numbers.push(ipv4_number(p)?);
    }
    let (last, init) = numbers.split_last()?;
    if init.iter().any(|&n| n > 255) || *last >= 1u64 << (8 * (5 - numbers.len())) {
        return None;
    }
    let mut v = *last;
    for (i, &n) in init.iter().enumerate() {
        v += n << (8 * (3 - i));
    }
    u32::try_from(v).ok()
}

/// WHATWG IPv6 parser (the text between the brackets).
fn parse_ipv6(input: &[u8]) -> Option<[u16; 8]> {
    let mut address = [0u16; 8];
    let mut piece = 0usize;
    let mut compress: Option<usize> = None;
    let mut p = 0usize;
    let at = |i: usize| input.get(i).copied();
    if at(0) == Some(b':') {
        if at(1) != Some(b':') {
            return None;
        }
        p = 2;
        piece = 1;
        compress = Some(1);
    }
    while let Some(c) = at(p) {
        if piece == 8 {
            return None;
        }
        if c == b':' {
            if compress.is_some() {
                return None;
            }
            p += 1;
            piece += 1;
            compress = Some(piece);
            continue;
        }
        let (mut value, mut length) = (0u16, 0usize);
        while length < 4 {
            match at(p).and_then(hex) {
                Some(d) => {
                    value = value * 16 + u16::from(d);
                    p += 1;
                    length += 1;
                }
                None => break,
            }
        }
        match at(p) {
            Some(b'.') => {
                if length == 0 || piece > 6 {
                    return None;
                }
                p -= length;
                let mut seen = 0;
                while at(p).is_some() {
                    if seen > 0 {
                        if at(p) == Some(b'.') && seen < 4 {
                            p += 1;
                        } else {
                            return None;
                        }
                    }
                    let mut v4: Option<u16> = None;
                    if !at(p).is_some_and(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    while let Some(d) = at(p).filter(u8::is_ascii_digit) {
                        let d = u16::from(d - b'0');
                        v4 = match v4 {
                            None => Some(d),
                            Some(0) => return None,
                            Some(n) => Some(n * 10 + d),
                        };
                        if v4 > Some(255) {
                            return None;
                        }
                        p += 1;
                    }
                    address[piece] = address[piece] * 0x100 + v4.unwrap_or(0);
                    seen += 1;
                    if seen == 2 || seen == 4 {
                        piece += 1;
                    }
                }
                if seen != 4 {
                    return None;
                }
                break;
            }
            Some(b':') => {
                p += 1;
                at(p)?;
            }
            Some(_) => return None,
            None => {}
        }
        address[piece] = value;
        piece += 1;
    }
    match compress {
        Some(c) => {
            let mut swaps = piece - c;
            piece = 7;
            while piece != 0 && swaps > 0 {
                address.swap(piece, c + swaps - 1);
                piece -= 1;
                swaps -= 1;
            }
        }
        None if piece != 8 => return None,
        None => {}
    }
    Some(address)
}

/// WHATWG IPv6 serialiser: lowercase hex, the first longest run of two or more zero pieces as `::`.
fn serialize_ipv6(address: &[u16; 8]) -> String {
    let (mut best, mut best_len) = (None, 1);
    let mut i = 0;
    while i < 8 {
        let start = i;
        while i < 8 && address[i] == 0 {
            i += 1;
        }
        if i - start > best_len {
            (best, best_len) = (Some(start), i - start);
        }
        i += 1;
    }
    let mut out = String::new();
    let mut i = 0;
    while i < 8 {
        if Some(i) == best {
            out.push_str(if i == 0 { "::" } else { ":" });
            i += best_len;
            continue;
        }
        out.push_str(&text::hex(address[i].into(), 1));
        if i != 7 {
            out.push(':');
        }
        i += 1;
    }
    out
}

/// Whether `host` (as written in a URL, IPv6 in brackets) is this machine, as [`parse`] decides.
pub fn is_loopback(host: &str) -> bool {
    parse_host(host).is_ok_and(|(_, _, loopback)| loopback)
}

/// Checks `url` for `kind` and returns it as the browser reads it, without a trailing `/` (so paths
/// can be appended): `scheme://host[:port]` then the path (`\` turned into `/`), query and fragment.
///
/// Refuses (`invalid_url`) what [`parse`] refuses, a scheme not of `kind`, C0 controls or spaces
/// left inside the URL, and userinfo (`user:pw@host`): `fetch` throws on URLs with credentials,
/// and an `@` in the authority is how hosts are disguised. Refuses (`insecure_url`) plain text
/// (`http://`, `ws://`) to a host that is not loopback unless `allow_insecure`.
pub fn check(url: &str, kind: Kind, allow_insecure: bool) -> Result<String, Code> {
    judge(parse(url)?, kind, allow_insecure)
}

/// [`check`] on a URL already read (by [`parse`], or by the browser: [`from_browser`]).
pub fn judge(p: Parsed, kind: Kind, allow_insecure: bool) -> Result<String, Code> {
    let right_kind = match kind {
        Kind::Http => matches!(p.scheme, "http" | "https"),
        Kind::Ws => matches!(p.scheme, "ws" | "wss"),
    };
    if !right_kind || p.credentials || p.rest.chars().any(|c| c <= ' ' || c == '\u{7f}') {
        return Err(Code::InvalidUrl);
    }
    if !p.secure() && !allow_insecure && !p.loopback {
        return Err(Code::InsecureUrl);
    }
    let mut out = p.origin();
    if p.rest.contains(['?', '#']) {
        out.push_str(&p.rest);
    } else {
        out.push_str(p.rest.trim_end_matches('/'));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(scheme, hostname, port)` as the browser's `URL` reports them (port `None` when empty).
    fn shp(url: &str) -> Option<(&'static str, String, Option<u16>)> {
        parse(url).ok().map(|p| (p.scheme, p.host, p.port))
    }

    fn host(url: &str) -> String {
        parse(url).unwrap_or_else(|e| panic!("{url:?}: {e:?}")).host
    }

    #[test]
    fn secure_urls_pass_and_lose_the_trailing_slash() {
        assert_eq!(
            check("https://abc.supabase.co/", Kind::Http, false).unwrap(),
            "https://abc.supabase.co"
        );
        assert_eq!(
            check("wss://chat.example.com/ws?x=1", Kind::Ws, false).unwrap(),
            "wss://chat.example.com/ws?x=1"
        );
        assert_eq!(
            check("https://h.example:8443/a/", Kind::Http, false).unwrap(),
            "https://h.example:8443/a"
        );
        assert_eq!(
            check("HTTPS://H.Example:443\\a\\b", Kind::Http, false).unwrap(),
            "https://h.example/a/b"
        );
        assert_eq!(
            check("  https://h.example/a?q=\\#f\\ \n", Kind::Http, false).unwrap(),
            "https://h.example/a?q=\\#f\\"
        );
    }

    #[test]
    fn backslashes_are_slashes_so_the_host_ends_there() {
        assert_eq!(host("http://evil.com\\@localhost/"), "evil.com");
        assert_eq!(host("ws://evil.com\\@127.0.0.1/ws"), "evil.com");
        assert_eq!(host("http:\\\\evil.com\\x"), "evil.com");
        assert_eq!(host("http:/\\evil.com"), "evil.com");
        assert_eq!(host("https:///evil.com/x"), "evil.com");
        assert_eq!(parse("http://evil.com\\@localhost/").unwrap().rest, "/@localhost/");
        for (url, kind) in [
            ("http://evil.com\\@localhost/", Kind::Http),
            ("ws://evil.com\\@127.0.0.1/ws", Kind::Ws),
        ] {
            assert_eq!(check(url, kind, false), Err(Code::InsecureUrl), "{url}");
        }
        assert_eq!(
            check("http://evil.com\\@localhost/", Kind::Http, true).unwrap(),
            "http://evil.com/@localhost"
        );
        // Fewer than two slashes: `fetch` would resolve against the page's URL.
        for bad in ["http:evil.com", "http:/evil.com", "https:\\evil.com"] {
            assert_eq!(parse(bad), Err(Code::InvalidUrl), "{bad}");
        }
    }

    #[test]
    fn the_host_follows_the_last_at_sign_and_userinfo_is_refused() {
        assert_eq!(host("http://localhost@evil.com/"), "evil.com");
        assert_eq!(host("http://a@b@evil.com:81/"), "evil.com");
        assert_eq!(host("http://evil.com/@localhost"), "evil.com");
        assert_eq!(host("http://evil.com?@localhost"), "evil.com");
        assert_eq!(host("http://evil.com#@localhost"), "evil.com");
        assert_eq!(host("http://u:p@[::1]:9/"), "[::1]");
        let p = parse("https://user:pw@h.example:8443/a").unwrap();
        assert!(p.credentials);
        assert_eq!((p.host.as_str(), p.port), ("h.example", Some(8443)));
        assert!(!parse("https://h.example/@x").unwrap().credentials);
        for bad in [
            "https://user:pw@h.example/",
            "https://@h.example/",
            "http://localhost@127.0.0.1/",
        ] {
            assert_eq!(check(bad, Kind::Http, true), Err(Code::InvalidUrl), "{bad}");
        }
        assert_eq!(parse("http://user@/x"), Err(Code::InvalidUrl));
        assert_eq!(parse("http://user@:80/x"), Err(Code::InvalidUrl));
    }

    #[test]
    fn tabs_newlines_and_edges() {
        assert_eq!(host("http://local\thost/"), "localhost");
        assert_eq!(host("ht\ntp://evil\r.com/"), "evil.com");
        assert_eq!(host("http:/\t/127.0.0.1/"), "127.0.0.1");
        assert_eq!(host("\u{0}\u{1f} http://localhost \u{7}"), "localhost");
        assert_eq!(
            check("http://local\thost:80\n/x/", Kind::Http, false).unwrap(),
            "http://localhost/x"
        );
        // Other whitespace is not trimmed: inside a host it is refused.
        assert_eq!(parse("http://local host/"), Err(Code::InvalidUrl));
        assert_eq!(parse("\u{a0}http://localhost/"), Err(Code::InvalidUrl));
        assert_eq!(check("https://h.example/a b", Kind::Http, false), Err(Code::InvalidUrl));
    }

    #[test]
    fn schemes_and_hosts_are_lowercased() {
        assert_eq!(
            shp("HTTP://LOCALHOST:8080/"),
            Some(("http", "localhost".into(), Some(8080)))
        );
        assert_eq!(
            shp("WsS://Chat.Example.COM/ws"),
            Some(("wss", "chat.example.com".into(), None))
        );
        assert_eq!(
            check("HtTp://LocalHost/", Kind::Http, false).unwrap(),
            "http://localhost"
        );
        for bad in [
            "ftp://x",
            "javascript://x",
            "file:///etc/passwd",
            "htt://x",
            "https",
            "example.com",
            "",
        ] {
            assert_eq!(parse(bad), Err(Code::InvalidUrl), "{bad:?}");
        }
    }

    #[test]
    fn percent_encoded_hosts_are_decoded() {
        assert_eq!(host("http://%6c%6f%63%61%6c%68%6f%73%74/"), "localhost");
        assert!(parse("http://%6C%6F%63%61%6C%68%6F%73%74/").unwrap().loopback);
        assert_eq!(host("http://127%2e0%2E0.1/"), "127.0.0.1");
        assert_eq!(host("https://ex%41mple.com/"), "example.com");
        // An encoded `/` before the `@` is userinfo, as in the browser: the host is localhost.
        let p = parse("http://evil.com%2f@localhost/").unwrap();
        assert_eq!((p.host.as_str(), p.credentials), ("localhost", true));
        for bad in [
            "http://a%20b/",
            "http://a%00b/",
            "http://a%/",
            "http://a%4/",
            "http://a%2525/",
            "http://%c3%a9.com/",
            "http://%40localhost/",
            "http://evil.com%5c.localhost/",
            "http://%5b::1%5d/",
        ] {
            assert_eq!(parse(bad), Err(Code::InvalidUrl), "{bad}");
        }
    }

    #[test]
    fn ipv4_forms_the_browser_normalises() {
        for form in [
            "127.0.0.1",
            "127.1",
            "127.0.1",
            "0x7f.0.0.1",
            "0X7F.1",
            "2130706433",
            "0x7f000001",
            "017700000001",
            "0177.0.0.1",
            "0177.0.0.01",
            "127.0.0.1.",
            "127.0.0.0x1",
        ] {
            let p = parse(&format!("http://{form}/")).unwrap_or_else(|e| panic!("{form}: {e:?}"));
            assert_eq!(
                (p.host.as_str(), p.host_kind, p.loopback),
                ("127.0.0.1", HostKind::Ipv4, true),
                "{form}"
            );
        }
        assert_eq!(host("http://127.255.255.255/"), "127.255.255.255");
        assert_eq!(host("http://0/"), "0.0.0.0");
        assert_eq!(host("http://10.1/"), "10.0.0.1");
        assert_eq!(host("http://4294967295/"), "255.255.255.255");
        for not_loopback in ["0.0.0.0", "10.0.0.1", "128.0.0.1", "1.270", "0x80.0.0.1", "0200.0.0.1"] {
            let p = parse(&format!("http://{not_loopback}/")).unwrap_or_else(|e| panic!("{not_loopback}: {e:?}"));
            assert!(!p.loopback, "{not_loopback} is {}", p.host);
        }
        // Ends in a number but is not an IPv4 address: the browser fails.
        for bad in [
            "4294967296",
            "127.0.0.256",
            "127.0.0.1.1",
            "256.0.0.1",
            "127..0.1",
            "127.0.0.1..",
            "09.0.0.1",
            "0x7g.0.0.1",
            "foo.127",
            "evil.com.127.0.0.1",
            "localhost.0x1",
            "127.16777216",
            "1270.0.0.1",
            "1.2.3.4.5",
            "0xffffffffff",
            "99999999999999999999999",
            // A bare `0x` part: 0 to Chromium and WebKit, a failure to Firefox; refused everywhere.
            "0x",
            "0X",
            "1.2.3.0x",
            "0x.0x.0x.0x",
            "0x.1",
            "0x.",
        ] {
            assert_eq!(parse(&format!("http://{bad}/")), Err(Code::InvalidUrl), "{bad}");
        }
        // Not ending in a number: a domain, never loopback.
        for domain in ["127.0.0.1.evil.com", "0x7g", "127.0.0.1x", "1e2"] {
            let p = parse(&format!("http://{domain}/")).unwrap_or_else(|e| panic!("{domain}: {e:?}"));
            assert_eq!((p.host_kind, p.loopback), (HostKind::Domain, false), "{domain}");
        }
    }

    #[test]
    fn ipv6_is_parsed_and_serialised_like_the_browser() {
        for (written, serialised) in [
            ("[::1]", "[::1]"),
            ("[0:0:0:0:0:0:0:1]", "[::1]"),
            ("[0000:0::01]", "[::1]"),
            ("[::]", "[::]"),
            ("[::ffff:127.0.0.1]", "[::ffff:7f00:1]"),
            ("[::FFFF:7F00:1]", "[::ffff:7f00:1]"),
            ("[::127.0.0.1]", "[::7f00:1]"),
            ("[1:0:0:2:0:0:0:3]", "[1:0:0:2::3]"),
            ("[1:0:0:2:0:0:3:4]", "[1::2:0:0:3:4]"),
            ("[1:2:3:4:5:6:7:8]", "[1:2:3:4:5:6:7:8]"),
            ("[1::]", "[1::]"),
            ("[2001:db8::0:1]", "[2001:db8::1]"),
            ("[1:0:2:3:4:5:6:7]", "[1:0:2:3:4:5:6:7]"),
        ] {
            assert_eq!(host(&format!("http://{written}:8/")), serialised, "{written}");
        }
        assert!(parse("http://[::1]:8787/").unwrap().loopback);
        assert!(parse("http://[0::1]/").unwrap().loopback);
        for not_loopback in [
            "[::ffff:127.0.0.1]",
            "[::ffff:7f00:1]",
            "[::127.0.0.1]",
            "[::]",
            "[::2]",
            "[1::1]",
        ] {
            assert!(
                !parse(&format!("http://{not_loopback}/")).unwrap().loopback,
                "{not_loopback}"
            );
            assert_eq!(
                check(&format!("http://{not_loopback}/"), Kind::Http, false),
                Err(Code::InsecureUrl)
            );
        }
        for bad in [
            "[::1",
            "[::1]x",
            "[:1]",
            "[1:2:3:4:5:6:7:8:9]",
            "[1::2::3]",
            "[12345::]",
            "[::1%25eth0]",
            "[::ffff:127.0.0.01]",
            "[::ffff:127.0.0]",
            "[::ffff:256.0.0.1]",
            "[1:2:3:4:5:6:7:1.2.3.4]",
            "[g::]",
            "[]",
            "[1:]",
            "[::1]]",
            "x[::1]",
        ] {
            assert_eq!(parse(&format!("http://{bad}/")), Err(Code::InvalidUrl), "{bad}");
        }
    }

    #[test]
    fn what_counts_as_loopback() {
        for ok in [
            "http://127.0.0.1:8787",
            "http://localhost/x",
            "http://127.8.9.10",
            "http://[::1]:80/",
            "http://app.localhost",
            "http://localhost.",
            "http://a.b.localhost./",
            "http://LOCALHOST",
            "http://2130706433/",
        ] {
            assert!(check(ok, Kind::Http, false).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com",
            "http://10.0.0.1",
            "http://127.0.0.1.evil.com",
            "http://localhost.evil.com",
            "http://evillocalhost",
            "http://localhost-.com",
            "http://[::2]",
            "http://0.0.0.0",
        ] {
            assert_eq!(check(bad, Kind::Http, false), Err(Code::InsecureUrl), "{bad}");
            assert!(check(bad, Kind::Http, true).is_ok(), "{bad} with allowInsecure");
        }
        assert_eq!(check("ws://example.com/ws", Kind::Ws, false), Err(Code::InsecureUrl));
        assert!(check("ws://127.0.0.1:1/ws", Kind::Ws, false).is_ok());
        assert!(is_loopback("localhost") && is_loopback("[::1]") && is_loopback("127.1"));
        assert!(!is_loopback("localhost.evil.com") && !is_loopback("[::ffff:127.0.0.1]"));
    }

    #[test]
    fn ports() {
        assert_eq!(shp("http://h:0/"), Some(("http", "h".into(), Some(0))));
        assert_eq!(shp("http://h:65535/"), Some(("http", "h".into(), Some(65535))));
        assert_eq!(shp("http://h:80/"), Some(("http", "h".into(), None)));
        assert_eq!(shp("ws://h:80/"), Some(("ws", "h".into(), None)));
        assert_eq!(shp("wss://h:443/"), Some(("wss", "h".into(), None)));
        assert_eq!(shp("https://h:80/"), Some(("https", "h".into(), Some(80))));
        assert_eq!(shp("http://h:/"), Some(("http", "h".into(), None)));
        assert_eq!(shp("http://h:0080/"), Some(("http", "h".into(), None)));
        assert_eq!(
            shp("http://h:00000000000008080/"),
            Some(("http", "h".into(), Some(8080)))
        );
        assert_eq!(shp("http://h:1\\x"), Some(("http", "h".into(), Some(1))));
        assert_eq!(check("https://h:443/x", Kind::Http, false).unwrap(), "https://h/x");
        for bad in [
            "http://h:65536/",
            "http://h:99999",
            "http://h:x",
            "http://h:-1",
            "http://h:1:2",
            "http://h: 1",
            "http://:80/",
        ] {
            assert_eq!(parse(bad), Err(Code::InvalidUrl), "{bad}");
        }
    }

    #[test]
    fn domains_the_browser_might_read_differently_and_idn_are_refused() {
        for bad in [
            "http://",
            "https://",
            "https:///",
            "https://?x",
            "wss://#",
            "http://a..b/",
            "http://.localhost/",
            "http://localhost../",
            "http://a*b/",
            "http://a!b.com/",
            "http://a\"b/",
            "http://a<b/",
            "http://a^b/",
            "http://a|b/",
            "http://a%b/",
            "http://xn--localhost/",
            "http://xn--bcher-kva.example/",
            "https://bücher.example/",
            "http://ｌｏｃａｌｈｏｓｔ/",
            "http://１２７.０.０.１/",
            "http://localhost\u{2024}/",
        ] {
            assert_eq!(parse(bad), Err(Code::InvalidUrl), "{bad:?}");
        }
        assert_eq!(host("https://a-b_c.example/"), "a-b_c.example");
    }

    #[test]
    fn check_refuses_the_wrong_family_and_is_idempotent() {
        assert_eq!(check("https://x", Kind::Ws, true), Err(Code::InvalidUrl));
        assert_eq!(check("wss://x", Kind::Http, true), Err(Code::InvalidUrl));
        for url in [
            "https://h.example/a/",
            "HTTP://0x7f.1:0080\\a\\?b\\",
            "ws://[::1]:9/ws#x",
            "https://h.example?q",
            "http://evil.com\\@localhost/",
        ] {
            let once = check(url, Kind::Http, true)
                .or_else(|_| check(url, Kind::Ws, true))
                .unwrap();
            let kind = if once.starts_with("ws") { Kind::Ws } else { Kind::Http };
            assert_eq!(check(&once, kind, true).unwrap(), once, "{url}");
        }
        assert_eq!(
            check("HTTP://0x7f.1:0080\\a\\?b\\", Kind::Http, false).unwrap(),
            "http://127.0.0.1/a/?b\\"
        );
    }

    #[test]
    fn query_parameters_are_appended_and_encoded() {
        assert_eq!(with_query("wss://h/ws", &[]), "wss://h/ws");
        assert_eq!(
            with_query("wss://h/ws", &[("session_id", "a b&c")]),
            "wss://h/ws?session_id=a%20b%26c"
        );
        assert_eq!(
            with_query("wss://h/ws?org=1", &[("session_id", "s"), ("token", "eyJ.x-y_z")]),
            "wss://h/ws?org=1&session_id=s&token=eyJ.x-y_z"
        );
        assert_eq!(with_query("wss://h/ws?", &[("k", "é")]), "wss://h/ws?k=%C3%A9");
        assert_eq!(with_query("wss://h/ws#f", &[("k", "v")]), "wss://h/ws?k=v#f");
    }

    /// The shell's reading: what the browser's `URL` reported, judged by the same rules as the
    /// model's parse (`tests/web_urls.rs` feeds it the real browser's reports).
    #[test]
    fn a_browser_reading_is_judged_as_a_parse_is() {
        let read = |protocol: &str, host: &str, port: &str| from_browser(protocol, false, host, port, "/".into());
        for (host, kind, loopback) in [
            ("localhost", HostKind::Domain, true),
            ("localhost.", HostKind::Domain, true),
            ("a.b.localhost", HostKind::Domain, true),
            ("localhost.evil.com", HostKind::Domain, false),
            ("127.evil.9", HostKind::Domain, false),
            ("my_host-1.example", HostKind::Domain, false),
            ("127.0.0.1", HostKind::Ipv4, true),
            ("127.255.0.9", HostKind::Ipv4, true),
            ("128.0.0.1", HostKind::Ipv4, false),
            ("1.127.0.1", HostKind::Ipv4, false),
            ("[::1]", HostKind::Ipv6, true),
            ("[::ffff:7f00:1]", HostKind::Ipv6, false),
            ("[::]", HostKind::Ipv6, false),
        ] {
            let p = read("http:", host, "").unwrap_or_else(|e| panic!("{host}: {e:?}"));
            assert_eq!((p.host_kind, p.loopback), (kind, loopback), "{host}");
            // The same verdict as the core's own parse of that URL (which refuses the one host no
            // browser reports: a domain ending in a number).
            match parse(&format!("http://{host}/")) {
                Ok(own) => assert_eq!(
                    (own.host, own.host_kind, own.loopback),
                    (p.host.clone(), kind, loopback)
                ),
                Err(_) => assert_eq!(host, "127.evil.9"),
            }
            let insecure = judge(p, Kind::Http, false);
            assert_eq!(insecure.is_ok(), loopback, "{host}");
        }
        // Internationalised names (punycoded by the browser), odd labels and schemes the SDK does
        // not speak are refused, as the core's parse refuses them.
        for (protocol, host) in [
            ("https:", "xn--lcalhost-9za"),
            ("https:", "xn--bcher-kva.example"),
            ("https:", "a..b"),
            ("https:", ""),
            ("https:", "."),
            ("https:", "a%2fb"),
            ("ftp:", "example.com"),
            ("file:", ""),
            ("https", "example.com"),
            ("javascript:", "localhost"),
        ] {
            assert_eq!(
                read(protocol, host, "").map(|_| ()),
                Err(Code::InvalidUrl),
                "{protocol}{host}"
            );
        }
        // Ports as the browser reports them; a default port would read as none.
        assert_eq!(read("wss:", "h.example", "8443").unwrap().port, Some(8443));
        assert_eq!(read("wss:", "h.example", "").unwrap().port, None);
        assert_eq!(read("wss:", "h.example", "443").unwrap().port, None);
        assert_eq!(read("wss:", "h.example", "65536").map(|_| ()), Err(Code::InvalidUrl));
        // Judged: the kind, the credentials, plain text off loopback, the trailing slash.
        let p = |protocol: &str, creds: bool, rest: &str| {
            from_browser(protocol, creds, "h.example", "", rest.into()).unwrap()
        };
        assert_eq!(
            judge(p("https:", false, "/a/"), Kind::Http, false).as_deref(),
            Ok("https://h.example/a")
        );
        assert_eq!(
            judge(p("wss:", false, "/ws?x=1"), Kind::Ws, false).as_deref(),
            Ok("wss://h.example/ws?x=1")
        );
        assert_eq!(judge(p("https:", false, "/"), Kind::Ws, false), Err(Code::InvalidUrl));
        assert_eq!(judge(p("https:", true, "/"), Kind::Http, false), Err(Code::InvalidUrl));
        assert_eq!(judge(p("http:", false, "/"), Kind::Http, false), Err(Code::InsecureUrl));
        assert_eq!(
            judge(p("http:", false, "/"), Kind::Http, true).as_deref(),
            Ok("http://h.example")
        );
    }
}
