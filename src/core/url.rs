//! URL checks: the scheme is one we speak, and plain text goes only to loopback unless opted in.

use super::error::Code;

/// The two families of URL the SDK opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `https://` (or `http://` to loopback) for token endpoints.
    Http,
    /// `wss://` (or `ws://` to loopback) for chat sockets.
    Ws,
}

/// Whether `host` (as written in a URL, IPv6 in brackets) is this machine.
pub fn is_loopback(host: &str) -> bool {
    let h = host.to_ascii_lowercase();
    if h == "localhost" || h.ends_with(".localhost") || h == "[::1]" {
        return true;
    }
    let octets: Vec<&str> = h.split('.').collect();
    octets.len() == 4
        && octets[0] == "127"
        && octets.iter().all(|o| {
            !o.is_empty()
                && o.len() <= 3
                && o.bytes().all(|b| b.is_ascii_digit())
                && o.parse::<u16>().is_ok_and(|v| v <= 255)
        })
}

/// Checks `url` for `kind` and returns it without a trailing `/` (so paths can be appended).
/// Refuses plain text (`http://`, `ws://`) to a host that is not loopback unless `allow_insecure`.
pub fn check(url: &str, kind: Kind, allow_insecure: bool) -> Result<String, Code> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").ok_or(Code::InvalidUrl)?;
    let secure = match (kind, scheme.to_ascii_lowercase().as_str()) {
        (Kind::Http, "https") | (Kind::Ws, "wss") => true,
        (Kind::Http, "http") | (Kind::Ws, "ws") => false,
        _ => return Err(Code::InvalidUrl),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if hostport.starts_with('[') {
        let close = hostport.find(']').ok_or(Code::InvalidUrl)?;
        let after = &hostport[close + 1..];
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(valid_port)) {
            return Err(Code::InvalidUrl);
        }
        &hostport[..=close]
    } else {
        match hostport.split_once(':') {
            Some((h, p)) if valid_port(p) => h,
            Some(_) => return Err(Code::InvalidUrl),
            None => hostport,
        }
    };
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Code::InvalidUrl);
    }
    if !secure && !allow_insecure && !is_loopback(host) {
        return Err(Code::InsecureUrl);
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn valid_port(p: &str) -> bool {
    p.is_empty()
        || (p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u32>().is_ok_and(|v| v <= 65535))
}

#[cfg(test)]
mod tests {
    use super::*;

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
            check("https://user:pw@h.example:8443/a", Kind::Http, false).unwrap(),
            "https://user:pw@h.example:8443/a"
        );
    }

    #[test]
    fn plain_text_only_to_loopback_unless_opted_in() {
        for ok in [
            "http://127.0.0.1:8787",
            "http://localhost/x",
            "http://127.8.9.10",
            "http://[::1]:80/",
            "http://app.localhost",
        ] {
            assert!(check(ok, Kind::Http, false).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com",
            "http://10.0.0.1",
            "http://127.0.0.1.evil.com",
            "http://localhost.evil.com",
            "http://[::2]",
            "http://1270.0.0.1",
        ] {
            assert_eq!(check(bad, Kind::Http, false), Err(Code::InsecureUrl), "{bad}");
            assert!(check(bad, Kind::Http, true).is_ok(), "{bad} with allowInsecure");
        }
        assert_eq!(check("ws://example.com/ws", Kind::Ws, false), Err(Code::InsecureUrl));
        assert!(check("ws://127.0.0.1:1/ws", Kind::Ws, false).is_ok());
    }

    #[test]
    fn unparsable_or_wrong_scheme_is_invalid() {
        for bad in [
            "",
            "example.com",
            "ftp://x",
            "https://",
            "https:///path",
            "wss://x",
            "https://a b",
            "https://h:99999",
            "https://h:x",
            "https://[::1",
            "javascript://x",
        ] {
            assert_eq!(check(bad, Kind::Http, true), Err(Code::InvalidUrl), "{bad:?}");
        }
        assert_eq!(check("https://x", Kind::Ws, true), Err(Code::InvalidUrl));
    }
}
