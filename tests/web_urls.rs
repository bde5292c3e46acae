//! The core's URL parser (`url::parse`, the browser's model in the native tests) agrees with the
//! browser's: for a corpus of tricky URLs, every URL the model accepts has the scheme, hostname and
//! port the browser's `URL` reports (parsed alone and against a page URL of the same scheme, as
//! `fetch` and `WebSocket` parse), and what it cannot decide it refuses rather than reads
//! differently. `check`'s output reads the same again. And the reading both builds ship (the
//! browser's, through `web::options::browser_url`) is judged as the model's is. No dev server
//! needed.
#![cfg(target_arch = "wasm32")]

use authwire::core::url::{self, Kind};
use authwire::web::options::browser_url;
use js_sys::{Array, Function};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const CORPUS: &[&str] = &[
    // The reported confusions.
    "http://evil.com\\@localhost/",
    "ws://evil.com\\@127.0.0.1/ws",
    "http://evil.com\\@localhost:8080/x",
    "wss://evil.com\\\\@localhost/",
    "http://evil.com/\\@localhost/",
    // Backslashes and slashes after the scheme.
    "http:\\\\localhost\\x",
    "http:/\\localhost/",
    "http:\\/localhost/",
    "https:///evil.com/x",
    "https:\\\\\\evil.com",
    "http:evil.com",
    "http:/evil.com",
    "http:\\evil.com",
    "https:evil.com/x",
    "ws:localhost/ws",
    // Userinfo and @.
    "http://localhost@evil.com/",
    "http://a@b@evil.com:81/",
    "http://user:pw@localhost:8080/",
    "http://:@localhost/",
    "http://@localhost/",
    "http://user@/x",
    "http://evil.com/@localhost",
    "http://evil.com?@localhost",
    "http://evil.com#@localhost",
    "http://evil.com%2f@localhost/",
    "http://evil.com%40localhost/",
    "http://u:p@[::1]:9/",
    "http://[@evil.com]/",
    "http://evil.com:80@localhost/",
    "http://localhost:80@evil.com/",
    // Tabs, newlines, C0 and spaces.
    "http://local\thost/",
    "ht\ntp://evil\r.com/",
    "http:/\t/127.0.0.1/",
    "\u{0}\u{1f} http://localhost \u{7}",
    "http://localhost:80\n80/",
    "http://local host/",
    "\u{a0}http://localhost/",
    "http://localhost\u{0}/",
    "http://evil.com\u{1}@localhost/",
    // Case.
    "HTTP://LOCALHOST:8080/",
    "WsS://Chat.Example.COM/ws",
    "hTtPs://EXAMPLE.com",
    // Percent-encoding.
    "http://%6c%6f%63%61%6c%68%6f%73%74/",
    "http://%6C%6F%63%61%6C%68%6F%73%74:8080/",
    "http://127%2e0%2E0.1/",
    "https://ex%41mple.com/",
    "http://a%20b/",
    "http://a%00b/",
    "http://a%/",
    "http://a%4/",
    "http://a%2525/",
    "http://%c3%a9.com/",
    "http://%40localhost/",
    "http://evil.com%5c.localhost/",
    "http://%5b::1%5d/",
    "http://local%09host/",
    "http://%2e/",
    // IPv4 forms.
    "http://127.0.0.1/",
    "http://127.1/",
    "http://127.0.1/",
    "http://0x7f.0.0.1/",
    "http://0X7F.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://017700000001/",
    "http://0177.0.0.1/",
    "http://0177.0.0.01/",
    "http://127.0.0.1./",
    "http://127.0.0.0x1/",
    "http://127.255.255.255/",
    "http://0x/",
    "http://0/",
    "http://10.1/",
    "http://4294967295/",
    "http://1.2.3.0x/",
    "http://0x.0x.0x.0x/",
    "http://00000000000000000127.1/",
    "http://0x000000000007f.1/",
    "http://1.270/",
    "http://0x80.0.0.1/",
    "http://0200.0.0.1/",
    "http://4294967296/",
    "http://127.0.0.256/",
    "http://127.0.0.1.1/",
    "http://256.0.0.1/",
    "http://1270.0.0.1/",
    "http://127..0.1/",
    "http://127.0.0.1../",
    "http://09.0.0.1/",
    "http://08/",
    "http://0x7g.0.0.1/",
    "http://foo.127/",
    "http://foo.0x1/",
    "http://evil.com.127.0.0.1/",
    "http://127.16777216/",
    "http://1.2.3.4.5/",
    "http://0xffffffffff/",
    "http://99999999999999999999999/",
    "http://127.0.0.1.evil.com/",
    "http://0x7g/",
    "http://127.0.0.1x/",
    "http://1e2/",
    "http://.1/",
    // IPv6.
    "http://[::1]/",
    "http://[::1]:8787/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[0000:0::01]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::FFFF:7F00:1]:80/",
    "http://[::127.0.0.1]/",
    "http://[1:0:0:2:0:0:0:3]/",
    "http://[1:0:0:2:0:0:3:4]/",
    "http://[1:2:3:4:5:6:7:8]/",
    "http://[1::]/",
    "http://[2001:db8::0:1]/",
    "http://[1:0:2:3:4:5:6:7]/",
    "http://[::1/",
    "http://[::1]x/",
    "http://[:1]/",
    "http://[1:2:3:4:5:6:7:8:9]/",
    "http://[1::2::3]/",
    "http://[12345::]/",
    "http://[::1%25eth0]/",
    "http://[::ffff:127.0.0.01]/",
    "http://[::ffff:127.0.0]/",
    "http://[::ffff:256.0.0.1]/",
    "http://[1:2:3:4:5:6:7:1.2.3.4]/",
    "http://[1:2:3:4:5:6:1.2.3.4]/",
    "http://[g::]/",
    "http://[]/",
    "http://[1:]/",
    "http://[::1]]/",
    "http://x[::1]/",
    "http://[::1]:/",
    "http://[::1]:65536/",
    // Domains.
    "http://localhost.evil.com/",
    "http://127.0.0.1.evil.com:80/",
    "http://foo.localhost/",
    "http://a.b.localhost./",
    "http://localhost./",
    "http://evillocalhost/",
    "http://localhost-.com/",
    "http://-localhost/",
    "https://a-b_c.example/",
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
    "http://a{b}/",
    "http://a~b/",
    "http://a'b/",
    "http://xn--localhost/",
    "http://xn--bcher-kva.example/",
    "https://bücher.example/",
    "http://ｌｏｃａｌｈｏｓｔ/",
    "http://１２７.０.０.１/",
    "http://localhost\u{2024}/",
    "http://LOCALHOST\u{3002}/",
    "http://locaLHOST\u{ff0e}evil.com/",
    // Ports.
    "http://h:0/",
    "http://h:65535/",
    "http://h:80/",
    "ws://h:80/",
    "wss://h:443/",
    "https://h:80/",
    "http://h:/",
    "http://h:0080/",
    "http://h:00000000000008080/",
    "http://h:1\\x",
    "http://h:65536/",
    "http://h:99999",
    "http://h:x",
    "http://h:-1",
    "http://h:1:2",
    "http://h: 1",
    "http://h:+1",
    "http://:80/",
    "http://localhost:8080?x",
    "http://localhost:8080#x",
    // Empty hosts and other schemes.
    "http://",
    "https://",
    "https:///",
    "https://?x",
    "wss://#",
    "ftp://localhost/",
    "javascript://localhost/%0aalert(1)",
    "file:///etc/passwd",
    "blob:http://localhost/x",
    "htt://x",
    "https",
    "example.com",
    "//localhost/",
    "",
    // Paths, queries, fragments.
    "https://h.example/a\\b?c\\d#e\\f",
    "https://h.example/a/../b/./c",
    "https://h.example?q",
    "https://h.example#f",
    "https://abc.supabase.co/",
    "wss://chat.example.com/ws?x=1",
];

/// Fails listing every disagreement, if there is any.
fn assert_none(disagreements: &[String]) {
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

/// `[protocol, hostname, port, href]` from the browser's `URL`, parsed alone or against `base`.
fn browser(url: &str, base: Option<&str>) -> Option<(String, String, String, String)> {
    thread_local! {
        static PARSE: Function = Function::new_with_args(
            "u, base",
            "try { const x = base === undefined ? new URL(u) : new URL(u, base); \
             return [x.protocol, x.hostname, x.port, x.href]; } catch (e) { return null; }",
        );
    }
    let got = PARSE.with(|f| {
        f.call2(
            &JsValue::NULL,
            &url.into(),
            &base.map_or(JsValue::UNDEFINED, JsValue::from),
        )
    });
    let got = got.ok()?;
    if got.is_null() {
        return None;
    }
    let a: Array = got.into();
    let s = |i| a.get(i).as_string().unwrap_or_default();
    Some((s(0), s(1), s(2), s(3)))
}

#[wasm_bindgen_test]
fn the_core_reads_urls_as_the_browser_does_or_refuses_them() {
    let mut disagreements = Vec::new();
    let (mut accepted, mut refused, mut refused_but_browser_parses) = (0, 0, Vec::new());
    for &url in CORPUS {
        let core = url::parse(url);
        let alone = browser(url, None);
        let Ok(p) = core else {
            refused += 1;
            if let Some(b) = alone {
                refused_but_browser_parses.push(format!("{url:?} -> {}", b.3));
            }
            continue;
        };
        accepted += 1;
        let want = (
            format!("{}:", p.scheme),
            p.host.clone(),
            p.port.map(|n| n.to_string()).unwrap_or_default(),
        );
        // As `new URL(u)`, and as `fetch` / `WebSocket` read it on a page of the same scheme.
        let page = format!("{}://page.example/dir/page", p.scheme);
        for (how, got) in [("alone", alone), ("on a page", browser(url, Some(&page)))] {
            match got {
                Some((proto, host, port, _)) if (proto.clone(), host.clone(), port.clone()) == want => {}
                other => disagreements.push(format!("{url:?} ({how}): core {want:?}, browser {other:?}")),
            }
        }
        // `check`'s output is what the browser reads again, with the same host.
        for kind in [Kind::Http, Kind::Ws] {
            if let Ok(out) = url::check(url, kind, true) {
                match browser(&out, None) {
                    Some((proto, host, port, _)) if (proto.clone(), host.clone(), port.clone()) == want => {}
                    other => disagreements.push(format!("check({url:?}) = {out:?}: browser {other:?}")),
                }
                if url::parse(&out).map(|q| q.host) != Ok(p.host.clone()) {
                    disagreements.push(format!("check({url:?}) = {out:?} does not re-parse to {}", p.host));
                }
            }
        }
    }
    web_sys::console::log_1(
        &format!(
            "URL corpus: {} URLs, {accepted} accepted by the core (all agree with the browser: {}), {refused} refused; \
             refused though the browser parses them ({}):\n{}",
            CORPUS.len(),
            disagreements.is_empty(),
            refused_but_browser_parses.len(),
            refused_but_browser_parses.join("\n")
        )
        .into(),
    );
    assert_none(&disagreements);
    assert!(
        CORPUS.len() >= 100 && accepted >= 60,
        "a corpus of {} with {accepted} accepted",
        CORPUS.len()
    );
}

/// Hosts × ports × schemes × separators.
fn combinations() -> Vec<String> {
    let hosts = [
        "localhost",
        "LocalHost.",
        "a.localhost",
        "127.1",
        "0x7f.1",
        "0177.0.0.1",
        "2130706433",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "evil.com",
        "evil.com\\@localhost",
        "u:p@evil.com",
        "evil.com@localhost",
        "%6c%6f%63%61%6c%68%6f%73%74",
        "loc\talhost",
        "127.0.0.1.evil.com",
        "1.2.3.4.",
        "foo.09",
    ];
    let ports = ["", ":", ":80", ":443", ":0", ":8080", ":65535", ":65536", ":08"];
    let tails = ["", "/", "\\", "/a\\b", "?q\\", "#f", "\\@localhost/"];
    let mut all = Vec::new();
    for scheme in ["http://", "HTTPS:\\\\", "ws:/\\", "wss:///"] {
        for host in hosts {
            for port in ports {
                for tail in tails {
                    all.push(format!("{scheme}{host}{port}{tail}"));
                }
            }
        }
    }
    all
}

/// Every combination the core accepts agrees with the browser.
#[wasm_bindgen_test]
fn combinations_agree_with_the_browser() {
    let mut disagreements = Vec::new();
    let mut count = 0;
    for url in combinations() {
        let Ok(p) = url::parse(&url) else { continue };
        count += 1;
        let want = (
            format!("{}:", p.scheme),
            p.host.clone(),
            p.port.map(|n| n.to_string()).unwrap_or_default(),
        );
        match browser(&url, None) {
            Some((proto, h, port, _)) if (proto.clone(), h.clone(), port.clone()) == want => {}
            other => disagreements.push(format!("{url:?}: core {want:?}, browser {other:?}")),
        }
    }
    web_sys::console::log_1(&format!("URL combinations: {count} accepted by the core and compared").into());
    assert_none(&disagreements);
}

/// Both builds read URLs with the browser's `URL` (`web::options::browser_url`), judged by the
/// core; `url::parse` is its model in the native tests. On every URL of the corpus and the
/// combinations that the model accepts, the browser's reading has the same scheme, host, kind,
/// port and loopback verdict, never credentials the model did not see, and `judge` decides it the
/// same way for both kinds, with and without `allowInsecure` (the one difference: an empty
/// userinfo, `http://@localhost/`, which the model refuses as a disguise and the browser drops).
/// Whatever the browser's reading accepts, judged, the browser reads again with the same host.
#[wasm_bindgen_test]
fn the_browsers_reading_is_judged_as_the_model_is() {
    let mut disagreements = Vec::new();
    let (mut compared, mut only_browser) = (0, Vec::new());
    let all = CORPUS.iter().map(|u| u.to_string()).chain(combinations());
    for u in all {
        let read = browser_url(&u);
        if let Ok(b) = &read {
            for kind in [Kind::Http, Kind::Ws] {
                if let Ok(out) = url::judge(b.clone(), kind, true) {
                    match browser(&out, None) {
                        Some((_, host, _, _)) if host == b.host => {}
                        other => disagreements.push(format!("judge({u:?}) = {out:?}: browser {other:?}")),
                    }
                }
            }
        }
        let Ok(own) = url::parse(&u) else {
            if let Ok(b) = read {
                only_browser.push(format!("{u:?} -> {}://{}", b.scheme, b.host));
            }
            continue;
        };
        compared += 1;
        let Ok(b) = read else {
            disagreements.push(format!(
                "{u:?}: accepted by the model, refused by the browser's reading"
            ));
            continue;
        };
        let key = |p: &url::Parsed| (p.scheme, p.host.clone(), p.host_kind, p.port, p.loopback);
        if key(&own) != key(&b) || (b.credentials && !own.credentials) {
            disagreements.push(format!("{u:?}: model {own:?}, browser {b:?}"));
            continue;
        }
        let empty_userinfo = own.credentials && !b.credentials;
        for kind in [Kind::Http, Kind::Ws] {
            for insecure in [false, true] {
                let (a, z) = (
                    url::judge(own.clone(), kind, insecure),
                    url::judge(b.clone(), kind, insecure),
                );
                if a.as_ref().err() != z.as_ref().err() && !empty_userinfo {
                    disagreements.push(format!("{u:?} ({kind:?}, {insecure}): model {a:?}, browser {z:?}"));
                }
            }
        }
    }
    web_sys::console::log_1(
        &format!(
            "browser URL reading: {compared} URLs compared with the model (url::parse); accepted only by the browser's reading ({}):\n{}",
            only_browser.len(),
            only_browser.join("\n")
        )
        .into(),
    );
    assert_none(&disagreements);
    assert!(compared >= 500, "only {compared} compared");
}
