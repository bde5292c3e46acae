//! Stable error codes: the `code` of every JS error and of `lastError` in snapshots and events.

/// A stable, documented error code. The string form never changes once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// The session object or JWT handed over is malformed.
    InvalidSession,
    /// An option is missing or of the wrong type.
    InvalidOptions,
    /// The access token has expired and cannot be refreshed.
    SessionExpired,
    /// There is no session (never signed in, signed out, or the refresh token was revoked).
    SignedOut,
    /// `refresh()` was called but no refresh source was configured.
    NoRefreshSource,
    /// The refresh request did not reach the server (offline, DNS, CORS, aborted).
    NetworkError,
    /// The token endpoint answered 5xx or 408.
    ServerError,
    /// The token endpoint answered 429.
    RateLimited,
    /// The refresh token is invalid, revoked or already used: the session is over.
    InvalidGrant,
    /// GoTrue refused the email and password (`invalid_credentials`): signing in cannot succeed.
    InvalidCredentials,
    /// The token endpoint refused the request for another reason (4xx); not retried.
    RefreshRejected,
    /// The token broker has no token for this user and scope (404).
    TokenNotFound,
    /// The token endpoint answered 2xx with a body that is not a usable session.
    InvalidResponse,
    /// The refresh callback threw or rejected.
    CallbackFailed,
    /// The object was freed; it can no longer be used.
    Freed,
    /// A `ws://` or `http://` URL to a host other than loopback, without opting in.
    InsecureUrl,
    /// A URL that cannot be parsed.
    InvalidUrl,
    /// `auth.fetch` to an origin that is not the page's, the refresh source's or in `fetchOrigins`:
    /// refused before any token is asked for or any request made.
    OriginNotAllowed,
    /// The socket's queue is full: the message was not accepted (nothing is dropped silently).
    QueueFull,
    /// `send()` takes a string or a plain object.
    InvalidMessage,
    /// The socket was closed (by `close()`, sign-out, or after giving up); it sends nothing more.
    SocketClosed,
    /// The server rejected the token (or the handshake credentials) again after a fresh refresh.
    AuthRejected,
    /// The connection dropped or could not be opened.
    ConnectionLost,
    /// The server stayed silent for two heartbeat periods.
    HeartbeatTimeout,
    /// Reconnecting stopped after `reconnect.maxRetries` attempts.
    RetriesExhausted,
    /// A refresh attempt got no answer before its deadline (`refreshTimeoutMs`).
    RefreshTimeout,
    /// Another tab held the refresh lock past the wait's deadline (and no newer session was stored).
    LockTimeout,
    /// An argument is not what the method takes (a listener that is not a function, a `fetch`
    /// init the browser cannot make a request from, a supabase-js client without `auth`).
    InvalidArgument,
    /// The handshake server refused credentials the SDK does not own (`auth_failed` for basic,
    /// api_key, oauth2, custom, sso): the app must supply others; the SDK does not retry them.
    AuthFailed,
    /// The handshake server cleared credentials the SDK does not own (`auth_expired`, an SSO session
    /// that ended): the app must sign in again (its event carries the server's `redirect_url`).
    AuthExpired,
}

impl Code {
    /// The code as JS sees it.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidSession => "invalid_session",
            Code::InvalidOptions => "invalid_options",
            Code::SessionExpired => "session_expired",
            Code::SignedOut => "signed_out",
            Code::NoRefreshSource => "no_refresh_source",
            Code::NetworkError => "network_error",
            Code::ServerError => "server_error",
            Code::RateLimited => "rate_limited",
            Code::InvalidGrant => "invalid_grant",
            Code::InvalidCredentials => "invalid_credentials",
            Code::RefreshRejected => "refresh_rejected",
            Code::TokenNotFound => "token_not_found",
            Code::InvalidResponse => "invalid_response",
            Code::CallbackFailed => "callback_failed",
            Code::Freed => "freed",
            Code::InsecureUrl => "insecure_url",
            Code::InvalidUrl => "invalid_url",
            Code::OriginNotAllowed => "origin_not_allowed",
            Code::QueueFull => "queue_full",
            Code::InvalidMessage => "invalid_message",
            Code::SocketClosed => "socket_closed",
            Code::AuthRejected => "auth_rejected",
            Code::ConnectionLost => "connection_lost",
            Code::HeartbeatTimeout => "heartbeat_timeout",
            Code::RetriesExhausted => "retries_exhausted",
            Code::RefreshTimeout => "refresh_timeout",
            Code::LockTimeout => "lock_timeout",
            Code::InvalidArgument => "invalid_argument",
            Code::AuthFailed => "auth_failed",
            Code::AuthExpired => "auth_expired",
        }
    }

    /// A one-line explanation, for error messages. Never mentions a token's value.
    pub fn describe(self) -> &'static str {
        match self {
            Code::InvalidSession => "the session is malformed",
            Code::InvalidOptions => "invalid options",
            Code::SessionExpired => "the access token has expired and there is no way to refresh it",
            Code::SignedOut => "there is no session: signed out",
            Code::NoRefreshSource => "no refresh source is configured",
            Code::NetworkError => "the refresh request did not reach the server",
            Code::ServerError => "the token endpoint failed (5xx)",
            Code::RateLimited => "the token endpoint is rate limiting (429)",
            Code::InvalidGrant => "the refresh token is invalid, revoked or already used",
            Code::InvalidCredentials => "the email and password were refused",
            Code::RefreshRejected => "the token endpoint refused the refresh",
            Code::TokenNotFound => "the token broker has no token for this user and scope",
            Code::InvalidResponse => "the token endpoint answered with something that is not a session",
            Code::CallbackFailed => "the refresh callback failed",
            Code::Freed => "this object was freed",
            Code::InsecureUrl => {
                "refusing a plain-text URL to a host that is not loopback (set allowInsecure to opt in)"
            }
            Code::InvalidUrl => "the URL cannot be parsed",
            Code::OriginNotAllowed => {
                "refusing to send credentials to an origin not the page's, the refresh source's or in fetchOrigins"
            }
            Code::QueueFull => "the send queue is full; the message was not accepted",
            Code::InvalidMessage => "send() takes a string or a plain object",
            Code::SocketClosed => "the socket is closed",
            Code::AuthRejected => "the server keeps rejecting the credentials",
            Code::ConnectionLost => "the connection dropped",
            Code::HeartbeatTimeout => "the server stopped answering heartbeats",
            Code::RetriesExhausted => "gave up reconnecting after the configured retries",
            Code::RefreshTimeout => "the refresh request got no answer before its deadline",
            Code::LockTimeout => "another tab held the refresh lock too long; retrying",
            Code::InvalidArgument => "an argument is not of the kind the method takes",
            Code::AuthFailed => "the chat server refused the handshake credentials",
            Code::AuthExpired => "the chat server says the sign-in expired; sign in again",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_snake_case_and_distinct() {
        let all = [
            Code::InvalidSession,
            Code::InvalidOptions,
            Code::SessionExpired,
            Code::SignedOut,
            Code::NoRefreshSource,
            Code::NetworkError,
            Code::ServerError,
            Code::RateLimited,
            Code::InvalidGrant,
            Code::InvalidCredentials,
            Code::RefreshRejected,
            Code::TokenNotFound,
            Code::InvalidResponse,
            Code::CallbackFailed,
            Code::Freed,
            Code::InsecureUrl,
            Code::InvalidUrl,
            Code::OriginNotAllowed,
            Code::QueueFull,
            Code::InvalidMessage,
            Code::SocketClosed,
            Code::AuthRejected,
            Code::ConnectionLost,
            Code::HeartbeatTimeout,
            Code::RetriesExhausted,
            Code::RefreshTimeout,
            Code::LockTimeout,
            Code::InvalidArgument,
            Code::AuthFailed,
            Code::AuthExpired,
        ];
        let set: std::collections::HashSet<_> = all.iter().map(|c| c.as_str()).collect();
        assert_eq!(set.len(), all.len());
        assert!(all
            .iter()
            .all(|c| c.as_str().chars().all(|ch| ch.is_ascii_lowercase() || ch == '_')));
        assert!(all.iter().all(|c| !c.describe().is_empty()));
    }
}
