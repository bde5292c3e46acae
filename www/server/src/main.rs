//! authwire's dev server: one port on 127.0.0.1 serving
//! - GoTrue-compatible auth routes (`/auth/v1/token?grant_type=password|refresh_token`,
//!   `/auth/v1/logout`, `/auth/v1/user`) issuing HS256 JWTs with rotating refresh tokens, GoTrue's
//!   reuse interval and reuse detection, GoTrue's error bodies in both API versions, behind the
//!   `apikey` check of hosted Supabase's gateway;
//! - the chat WebSockets: `/ws/chat` (token-per-message) and `/bedrock-chat/ws` (auth-handshake);
//! - test controls (`/__test/control`, `/__test/config`, `/__test/stats`): per-user token lifetime,
//!   reuse interval and injected faults, the server-wide reuse interval, and the counters tests
//!   assert on;
//! - the demo pages (`www/`), the built package (`/pkg/`) and the packed one (`/npm/authwire/`).
//!
//! It logs the token lifecycle (sign-in, refresh, reuse, logout) without ever printing a token.
//!
//! Modules import one way: `util` and `jwt` at the bottom, `tokens` (the token store) and `gotrue`
//! (GoTrue's error shapes, the apikey gate) above them, the route modules (`auth`, `chat`,
//! `sources`) on top; `main` wires their states together in [`AppState`].

mod auth;
mod chat;
mod gotrue;
mod hosts;
mod jwt;
mod sources;
mod tokens;
mod util;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::FromRef;
use axum::http::HeaderName;
use axum::routing::{get, post};
use axum::Router;
use tower_http::cors::{Any, CorsLayer};
use tower_http::services::ServeDir;

/// Every route module's state; each handler extracts the parts it needs.
#[derive(Clone)]
struct AppState {
    tokens: Arc<tokens::Tokens>,
    chat: Arc<chat::ChatState>,
    sources: Arc<sources::SourceState>,
}

impl FromRef<AppState> for Arc<tokens::Tokens> {
    fn from_ref(s: &AppState) -> Self {
        s.tokens.clone()
    }
}

impl FromRef<AppState> for Arc<chat::ChatState> {
    fn from_ref(s: &AppState) -> Self {
        s.chat.clone()
    }
}

impl FromRef<AppState> for Arc<sources::SourceState> {
    fn from_ref(s: &AppState) -> Self {
        s.sources.clone()
    }
}

struct Args {
    port: u16,
    root: PathBuf,
    ttl: u64,
    password: String,
    anon_key: String,
    reuse_interval: u64,
    port_file: Option<PathBuf>,
}

/// The `apikey` the auth routes accept unless `--anon-key` says otherwise.
const DEFAULT_ANON_KEY: &str = "anon-key";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        port: 8787,
        root: PathBuf::from("."),
        ttl: 20,
        password: "authwire-demo".into(),
        anon_key: DEFAULT_ANON_KEY.into(),
        reuse_interval: tokens::DEFAULT_REUSE_INTERVAL_S,
        port_file: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => a.port = val()?.parse().map_err(|_| "--port takes a number (0: any free port)")?,
            "--root" => a.root = PathBuf::from(val()?),
            "--token-ttl" => a.ttl = val()?.parse().map_err(|_| "--token-ttl takes seconds")?,
            "--password" => a.password = val()?,
            "--anon-key" => a.anon_key = val()?,
            "--refresh-token-reuse-interval" => {
                a.reuse_interval = val()?
                    .parse()
                    .map_err(|_| "--refresh-token-reuse-interval takes seconds (0: strict rotation)")?
            }
            "--port-file" => a.port_file = Some(PathBuf::from(val()?)),
            "-h" | "--help" => {
                println!(
                    "authwire-devserver [--port 8787] [--root .] [--token-ttl 20] [--password authwire-demo]\n\
                     \x20                  [--anon-key anon-key] [--refresh-token-reuse-interval 10] [--port-file FILE]\n\
                     Listens on 127.0.0.1 only. --root is the repository (serves www/ at / and pkg/ at /pkg/).\n\
                     /auth/v1/* needs the anon key (apikey header or query parameter), as hosted Supabase does.\n\
                     The reuse interval is GoTrue's (hosted default 10 s); 0 is strict rotation (every reuse revokes)."
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown flag {other} (see --help)")),
        }
    }
    Ok(a)
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("authwire-devserver: {e}");
            std::process::exit(2);
        }
    };
    let app = AppState {
        tokens: Arc::new(tokens::Tokens::new(
            args.ttl,
            args.password.clone(),
            args.anon_key.clone(),
            args.reuse_interval,
        )),
        chat: Default::default(),
        sources: Default::default(),
    };
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(Any)
        .allow_headers(Any)
        // So that a page on another origin can read GoTrue's error code and API version.
        .expose_headers([
            HeaderName::from_static(gotrue::ERROR_CODE_HEADER),
            HeaderName::from_static(gotrue::API_VERSION_HEADER),
        ]);
    let router = Router::new()
        .route("/auth/v1/token", post(auth::token))
        .route("/auth/v1/logout", post(auth::logout))
        .route("/auth/v1/user", get(auth::user))
        .route("/__test/control", post(auth::control))
        .route("/__test/config", get(auth::config).post(auth::set_config))
        .route("/__test/stats", get(auth::stats))
        .route("/ws/chat", get(chat::ws_chat))
        .route("/bedrock-chat/ws", get(chat::ws_bedrock))
        .route(chat::AGENT_PATH, get(chat::ws_agent))
        .route("/ws/sink", get(chat::ws_sink))
        .route("/__test/chat", get(chat::stats))
        .route("/__test/chat-control", post(chat::control))
        .route("/api/tokens/health", get(sources::broker_health))
        .route("/api/tokens/refresh/{scope}", post(sources::broker_refresh))
        .route("/api/tokens/{scope}", get(sources::broker_get))
        .route("/plain/login", post(sources::plain_login))
        .route("/api/echo", get(sources::echo).post(sources::echo))
        .route("/__test/hosts", get(hosts::counts))
        .layer(axum::middleware::from_fn_with_state(
            app.tokens.clone(),
            gotrue::require_apikey,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.tokens.clone(),
            auth::watch_urls,
        ))
        .with_state(app)
        .nest_service("/pkg", ServeDir::new(args.root.join("pkg")))
        // The package as `npm pack` + install laid it out (scripts/build.sh unpacks it there):
        // the plain demo page imports it from here, with no bundler.
        .nest_service(
            "/npm/authwire",
            ServeDir::new(args.root.join("www/react-app/node_modules/authwire")),
        )
        .fallback_service(ServeDir::new(args.root.join("www")))
        .layer(cors)
        .layer(axum::middleware::from_fn(hosts::count));
    let listener = match tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port))).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("authwire-devserver: cannot listen on 127.0.0.1:{}: {e}", args.port);
            std::process::exit(1);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(args.port);
    println!(
        "authwire dev server on http://127.0.0.1:{port}/ (tokens live {}s, refresh-token reuse interval {}s)",
        args.ttl, args.reuse_interval
    );
    if let Some(f) = &args.port_file {
        if let Err(e) = std::fs::write(f, port.to_string()) {
            eprintln!("authwire-devserver: cannot write {}: {e}", f.display());
            std::process::exit(1);
        }
    }
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
        eprintln!("authwire-devserver: {e}");
        std::process::exit(1);
    }
}
