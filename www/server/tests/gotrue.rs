//! The dev server answers as GoTrue (and hosted Supabase's gateway) do: the real binary, started on
//! a free port, asked over plain HTTP/1.1.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "test-anon-key";

struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start(reuse_interval: u64) -> Server {
    let dir = std::env::temp_dir().join(format!("authwire-devserver-test-{}-{}", std::process::id(), rand_u32()));
    std::fs::create_dir_all(&dir).unwrap();
    let port_file = dir.join("port");
    let child = Command::new(env!("CARGO_BIN_EXE_authwire-devserver"))
        .args(["--port", "0", "--anon-key", KEY, "--refresh-token-reuse-interval"])
        .arg(reuse_interval.to_string())
        .arg("--port-file")
        .arg(&port_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if let Ok(p) = std::fs::read_to_string(&port_file) {
            if let Ok(port) = p.trim().parse() {
                return Server { child, port, dir };
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the dev server did not start");
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    getrandom::getrandom(&mut b).unwrap();
    u32::from_le_bytes(b)
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Server {
    async fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Reply {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() {
            req.push_str("Content-Type: application/json\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, rest) = text.split_once("\r\n\r\n").unwrap();
        let mut lines = head.lines();
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
        let body_text = if chunked { dechunk(rest) } else { rest.to_owned() };
        Reply {
            status,
            headers,
            body: serde_json::from_str(&body_text).unwrap_or(Value::Null),
        }
    }

    /// POST to an auth route with the anon key, and `extra` headers.
    async fn auth(&self, path: &str, extra: &[(&str, &str)], body: &Value) -> Reply {
        let mut h = vec![("apikey", KEY)];
        h.extend_from_slice(extra);
        self.call("POST", path, &h, Some(body)).await
    }

    async fn sign_in(&self, email: &str) -> Value {
        let r = self
            .auth(
                "/auth/v1/token?grant_type=password",
                &[],
                &json!({"email": email, "password": "authwire-demo"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    }

    async fn refresh(&self, rt: &Value) -> Reply {
        self.auth(
            "/auth/v1/token?grant_type=refresh_token",
            &[],
            &json!({ "refresh_token": rt }),
        )
        .await
    }

    async fn control(&self, body: Value) {
        let r = self.call("POST", "/__test/control", &[], Some(&body)).await;
        assert_eq!(r.status, 204);
    }

    async fn stats(&self, email: &str) -> Value {
        self.call("GET", &format!("/__test/stats?email={email}"), &[], None)
            .await
            .body
    }
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}

#[tokio::test]
async fn a_wrong_password_without_the_version_header_gets_the_initial_shape() {
    let s = start(10).await;
    let r = s
        .auth(
            "/auth/v1/token?grant_type=password",
            &[],
            &json!({"email": "a@x.dev", "password": "nope"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"code": 400, "error_code": "invalid_credentials", "msg": "Invalid login credentials"})
    );
    assert_eq!(r.header("x-sb-error-code"), Some("invalid_credentials"));
    assert_eq!(
        r.header("x-supabase-api-version"),
        None,
        "the initial version is not echoed"
    );
}

#[tokio::test]
async fn a_wrong_password_with_api_version_2024_01_01_gets_code_and_message() {
    let s = start(10).await;
    for asked in ["2024-01-01", "2025-06-30"] {
        let r = s
            .auth(
                "/auth/v1/token?grant_type=password",
                &[("X-Supabase-Api-Version", asked)],
                &json!({"email": "a@x.dev", "password": "nope"}),
            )
            .await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.body,
            json!({"code": "invalid_credentials", "message": "Invalid login credentials"})
        );
        assert_eq!(r.header("x-sb-error-code"), Some("invalid_credentials"));
        assert_eq!(r.header("x-supabase-api-version"), Some("2024-01-01"));
    }
    // An earlier date, or one that does not parse: the initial shape.
    for asked in ["2023-12-31", "yesterday", "2024-13-01"] {
        let r = s
            .auth(
                "/auth/v1/token?grant_type=password",
                &[("X-Supabase-Api-Version", asked)],
                &json!({"email": "a@x.dev", "password": "nope"}),
            )
            .await;
        assert_eq!(r.body["code"], 400, "{asked}");
        assert_eq!(r.body["error_code"], "invalid_credentials", "{asked}");
    }
}

#[tokio::test]
async fn server_errors_carry_an_error_id_in_the_initial_shape_only() {
    let s = start(10).await;
    let session = s.sign_in("fault@x.dev").await;
    s.control(json!({"email": "fault@x.dev", "fail_refreshes": 2, "fail_status": 500}))
        .await;
    let r = s.refresh(&session["refresh_token"]).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.body["code"], 500);
    assert_eq!(r.body["error_code"], "unexpected_failure");
    assert_eq!(
        r.body["error_id"].as_str().map(str::len),
        Some(36),
        "a request id: {}",
        r.body
    );
    assert_eq!(r.header("x-sb-error-code"), Some("unexpected_failure"));
    let r = s
        .auth(
            "/auth/v1/token?grant_type=refresh_token",
            &[("X-Supabase-Api-Version", "2024-01-01")],
            &json!({"refresh_token": session["refresh_token"]}),
        )
        .await;
    assert_eq!(r.status, 500);
    assert_eq!(
        r.body,
        json!({"code": "unexpected_failure", "message": "injected failure"})
    );
}

#[tokio::test]
async fn refresh_token_errors_are_gotrues() {
    let s = start(0).await;
    let unknown = s.refresh(&json!("never-issued-refresh-token")).await;
    assert_eq!(
        (unknown.status, unknown.body.clone()),
        (
            400,
            json!({"code": 400, "error_code": "refresh_token_not_found",
                   "msg": "Invalid Refresh Token: Refresh Token Not Found"})
        )
    );
    let short = s.refresh(&json!("short")).await;
    assert_eq!(
        short.body,
        json!({"code": 400, "error_code": "validation_failed", "msg": "Refresh token is not valid"})
    );
    let bad_grant = s.auth("/auth/v1/token?grant_type=magic", &[], &json!({})).await;
    assert_eq!(
        bad_grant.body,
        json!({"code": 400, "error_code": "invalid_credentials", "msg": "unsupported_grant_type"})
    );
    let first = s.sign_in("strict@x.dev").await;
    assert_eq!(s.refresh(&first["refresh_token"]).await.status, 200);
    let reused = s.refresh(&first["refresh_token"]).await;
    assert_eq!(
        (reused.status, reused.body.clone()),
        (
            400,
            json!({"code": 400, "error_code": "refresh_token_already_used",
                   "msg": "Invalid Refresh Token: Already Used"})
        )
    );
    assert_eq!(reused.header("x-sb-error-code"), Some("refresh_token_already_used"));
    // The whole session is revoked: its newest token is gone too, and so are its access tokens.
    let stats = s.stats("strict@x.dev").await;
    assert_eq!(
        (stats["reuse_refused"].as_u64(), stats["refresh_reused"].as_u64()),
        (Some(1), Some(1))
    );
    let second = s.sign_in("revoked@x.dev").await;
    let r = s
        .call(
            "POST",
            "/auth/v1/logout",
            &[
                ("apikey", KEY),
                (
                    "Authorization",
                    &format!("Bearer {}", second["access_token"].as_str().unwrap()),
                ),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let after_logout = s.refresh(&second["refresh_token"]).await;
    assert_eq!(after_logout.body["error_code"], "refresh_token_not_found");
    let user = s
        .call(
            "GET",
            "/auth/v1/user",
            &[
                ("apikey", KEY),
                (
                    "Authorization",
                    &format!("Bearer {}", second["access_token"].as_str().unwrap()),
                ),
                ("X-Supabase-Api-Version", "2024-01-01"),
            ],
            None,
        )
        .await;
    assert_eq!(
        (user.status, user.body),
        (
            403,
            json!({"code": "session_not_found", "message": "Session from session_id claim in JWT does not exist"})
        )
    );
    let no_bearer = s.call("GET", "/auth/v1/user", &[("apikey", KEY)], None).await;
    assert_eq!(
        (no_bearer.status, no_bearer.body),
        (
            401,
            json!({"code": 401, "error_code": "no_authorization", "msg": "This endpoint requires a valid Bearer token"})
        )
    );
}

#[tokio::test]
async fn inside_the_reuse_interval_a_reused_token_gets_the_session_that_replaced_it() {
    let s = start(10).await;
    let first = s.sign_in("interval@x.dev").await;
    let rotated = s.refresh(&first["refresh_token"]).await;
    assert_eq!(rotated.status, 200);
    let again = s.refresh(&first["refresh_token"]).await;
    assert_eq!(again.status, 200);
    assert_eq!(
        again.body["refresh_token"], rotated.body["refresh_token"],
        "the replacing session's token"
    );
    assert_ne!(again.body["access_token"], rotated.body["access_token"]);
    // The replacing token still rotates normally.
    let next = s.refresh(&rotated.body["refresh_token"]).await;
    assert_eq!(next.status, 200);
    let stats = s.stats("interval@x.dev").await;
    assert_eq!(stats["refresh_ok"], 2);
    assert_eq!(stats["reuse_answered"], 1);
    assert_eq!(stats["refresh_reused"], 1);
    // A grandparent, 0 s old but the interval switched off for this user: refused, session revoked.
    s.control(json!({"email": "interval@x.dev", "refresh_token_reuse_interval": 0}))
        .await;
    let refused = s.refresh(&first["refresh_token"]).await;
    assert_eq!(refused.body["error_code"], "refresh_token_already_used");
    let gone = s.refresh(&next.body["refresh_token"]).await;
    assert_eq!(gone.body["error_code"], "refresh_token_not_found");
}

#[tokio::test]
async fn the_server_wide_reuse_interval_can_be_switched() {
    let s = start(10).await;
    let cfg = s.call("GET", "/__test/config", &[], None).await;
    assert_eq!(cfg.body, json!({"refresh_token_reuse_interval": 10}));
    let r = s
        .call(
            "POST",
            "/__test/config",
            &[],
            Some(&json!({"refresh_token_reuse_interval": 0})),
        )
        .await;
    assert_eq!(r.status, 204);
    let first = s.sign_in("switch@x.dev").await;
    assert_eq!(s.refresh(&first["refresh_token"]).await.status, 200);
    assert_eq!(
        s.refresh(&first["refresh_token"]).await.body["error_code"],
        "refresh_token_already_used"
    );
}

/// Two refreshes of one token at once, each held 200 ms by the server: exactly one rotation.
async fn race(reuse_interval: u64) -> (Reply, Reply, Value, Server) {
    let s = start(reuse_interval).await;
    let email = format!("race{reuse_interval}@x.dev");
    let first = s.sign_in(&email).await;
    s.control(json!({"email": email, "refresh_delay_ms": 200})).await;
    let (a, b) = tokio::join!(s.refresh(&first["refresh_token"]), s.refresh(&first["refresh_token"]));
    let stats = s.stats(&email).await;
    (a, b, stats, s)
}

#[tokio::test]
async fn concurrent_refreshes_rotate_once_and_strict_rotation_refuses_the_second() {
    let (a, b, stats, s) = race(0).await;
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 400], "{} / {}", a.body, b.body);
    let (ok, refused) = if a.status == 200 { (a, b) } else { (b, a) };
    assert_eq!(refused.body["error_code"], "refresh_token_already_used");
    assert_eq!(stats["refresh_ok"], 1);
    assert_eq!(stats["reuse_refused"], 1);
    // The family is revoked: the winner's new token is dead too.
    let after = s.refresh(&ok.body["refresh_token"]).await;
    assert_eq!(after.body["error_code"], "refresh_token_not_found");
}

#[tokio::test]
async fn concurrent_refreshes_rotate_once_and_the_interval_answers_the_second_with_the_same_session() {
    let (a, b, stats, _s) = race(10).await;
    assert_eq!((a.status, b.status), (200, 200), "{} / {}", a.body, b.body);
    assert_eq!(a.body["refresh_token"], b.body["refresh_token"]);
    assert_eq!(stats["refresh_ok"], 1, "one rotation");
    assert_eq!(stats["reuse_answered"], 1);
}

#[tokio::test]
async fn every_auth_route_needs_the_anon_key() {
    let s = start(10).await;
    let body = json!({"email": "k@x.dev", "password": "authwire-demo"});
    for (method, path) in [
        ("POST", "/auth/v1/token?grant_type=password"),
        ("POST", "/auth/v1/logout"),
        ("GET", "/auth/v1/user"),
    ] {
        let none = s.call(method, path, &[], Some(&body)).await;
        assert_eq!(
            (none.status, none.body),
            (
                401,
                json!({"message": "No API key found in request",
                       "hint": "No `apikey` request header or url param was found."})
            ),
            "{path}"
        );
        let wrong = s.call(method, path, &[("apikey", "not-the-key")], Some(&body)).await;
        assert_eq!(
            (wrong.status, wrong.body),
            (
                401,
                json!({"message": "Invalid API key",
                       "hint": "Double check your Supabase `anon` or `service_role` API key."})
            ),
            "{path}"
        );
    }
    // The key as a query parameter works too; other routes need none.
    let q = s
        .call(
            "POST",
            &format!("/auth/v1/token?grant_type=password&apikey={KEY}"),
            &[],
            Some(&body),
        )
        .await;
    assert_eq!(q.status, 200);
    assert_eq!(s.call("GET", "/__test/stats", &[], None).await.status, 200);
    // A CORS preflight is answered without a key.
    let pre = s
        .call(
            "OPTIONS",
            "/auth/v1/token",
            &[
                ("Origin", "http://127.0.0.1:1"),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "apikey,x-supabase-api-version"),
            ],
            None,
        )
        .await;
    assert_eq!(pre.status, 200);
}
