//! Wire formats of the chat protocols: what a server frame means, which close codes reject the
//! token, what the handshake needs. Frames themselves are built and parsed by the browser's JSON
//! on the hot path; the shell hands the core the few fields it classifies by.

/// Which protocol a chat socket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Every frame is a JSON object carrying the token and the session id:
    /// `{ prompt, session_id, auth_token }`.
    TokenPerMessage,
    /// `{ type: "auth", auth_type, ... }` on open, wait for `{ type: "auth_configured" }`,
    /// then `{ type: "chat", message }` frames; the auth frame is re-sent after every refresh.
    AuthHandshake,
}

/// The auth types of the handshake protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    /// `token` from the AuthSession.
    BearerToken,
    /// `username`, `password`.
    BasicAuth,
    /// `api_key` (and `api_key_header`).
    ApiKey,
    /// `client_id`, `client_secret`, `token_url`, `scope` (the name older servers read).
    OAuth2,
    /// The same fields under the name today's server (autolangchat) gives the type; it calls
    /// `token_url` itself.
    OAuth2ClientCredentials,
    /// `custom_headers`.
    Custom,
    /// `session_token` (or the server's `sso_session_token` cookie, so nothing is required);
    /// the server may later say `auth_expired`.
    Sso,
    /// A type the SDK does not know: passed through with its fields, unchecked.
    Other,
}

impl AuthType {
    /// Parses the `auth_type` string (`None`: a type the SDK does not know, see [`AuthType::Other`]).
    pub fn parse(s: &str) -> Option<AuthType> {
        Some(match s {
            "bearer_token" => AuthType::BearerToken,
            "basic_auth" => AuthType::BasicAuth,
            "api_key" => AuthType::ApiKey,
            "oauth2" => AuthType::OAuth2,
            "oauth2_client_credentials" => AuthType::OAuth2ClientCredentials,
            "custom" => AuthType::Custom,
            "sso" => AuthType::Sso,
            _ => return None,
        })
    }
    /// The `auth_type` string (the inverse of [`AuthType::parse`]; empty for [`AuthType::Other`],
    /// whose name the options keep).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::BearerToken => "bearer_token",
            AuthType::BasicAuth => "basic_auth",
            AuthType::ApiKey => "api_key",
            AuthType::OAuth2 => "oauth2",
            AuthType::OAuth2ClientCredentials => "oauth2_client_credentials",
            AuthType::Custom => "custom",
            AuthType::Sso => "sso",
            AuthType::Other => "",
        }
    }
    /// The fields the auth frame must carry (besides `type` and `auth_type`), and their JS kind
    /// (`true`: an object, `false`: a non-empty string). The bearer token is stamped by the SDK.
    pub fn required(self) -> &'static [(&'static str, bool)] {
        match self {
            AuthType::BearerToken => &[],
            AuthType::BasicAuth => &[("username", false), ("password", false)],
            AuthType::ApiKey => &[("api_key", false)],
            AuthType::OAuth2 | AuthType::OAuth2ClientCredentials => {
                &[("client_id", false), ("client_secret", false), ("token_url", false)]
            }
            AuthType::Custom => &[("custom_headers", true)],
            AuthType::Sso | AuthType::Other => &[],
        }
    }
    /// Whether the frame carries the session's token (and so is re-sent after every refresh).
    pub fn uses_token(self) -> bool {
        self == AuthType::BearerToken
    }
}

/// Close codes by which servers say the token was rejected.
pub const AUTH_CLOSE_CODES: [u16; 3] = [4001, 4401, 1008];

/// Error codes (in `code`, `error` or `error_code` of an error frame) that mean the token is bad.
const AUTH_ERROR_CODES: [&str; 12] = [
    "invalid_token",
    "token_expired",
    "expired_token",
    "jwt_expired",
    "invalid_jwt",
    "bad_jwt",
    "auth_failed",
    "authentication_failed",
    "unauthorized",
    "unauthenticated",
    "auth_required",
    "401",
];

/// The fields of an incoming JSON frame the core looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Incoming {
    /// `type`
    pub kind: Option<String>,
    /// `code`, `error_code` or `error`: whichever the frame has that names an auth failure, else the first.
    pub code: Option<String>,
    /// `message_id`
    pub message_id: Option<String>,
    /// The session id field the app asked the socket to adopt (`sessionIdFrom`), when the frame has it.
    pub session: Option<String>,
}

/// What an incoming frame means to the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meaning {
    /// `{ type: "ack", message_id }`
    Ack(String),
    /// `{ type: "auth_configured" }`
    AuthConfigured,
    /// The server says the token is invalid or expired; names the rejected frame when it does.
    AuthRejected(Option<String>),
    /// `{ type: "auth_failed" }`: the handshake's credentials failed verification (the server keeps
    /// the connection, and any credentials configured before).
    AuthFailed,
    /// `{ type: "auth_expired" }`: the server cleared the credentials (an SSO session ended).
    AuthExpired,
    /// `{ type: "logout_success" }`
    LogoutSuccess,
    /// `{ type: "ping" }` from the server.
    Ping,
    /// Anything else (replies, pongs, other errors): passed on to the app.
    Other,
}

/// Whether an error code string names an auth failure.
pub fn is_auth_error(code: &str) -> bool {
    AUTH_ERROR_CODES.iter().any(|c| c.eq_ignore_ascii_case(code))
}

/// The fields a frame's error code may come in, in order (servers differ).
pub const CODE_FIELDS: [&str; 3] = ["code", "error_code", "error"];

/// The longest string field of a server frame the machine reads (`type`, a code, `message_id`, a
/// session id); a longer one is read as absent (and never copied out of JS).
pub const MAX_FIELD_CHARS: u32 = 256;

impl Incoming {
    /// Reads a frame from its string fields: `codes` in [`CODE_FIELDS`] order. The code kept is
    /// the first that names an auth failure, else the first present.
    pub fn read(kind: Option<String>, codes: [Option<String>; 3], message_id: Option<String>) -> Incoming {
        let auth = codes.iter().flatten().find(|c| is_auth_error(c)).cloned();
        let code = auth.or_else(|| codes.into_iter().flatten().next());
        Incoming {
            kind,
            code,
            message_id,
            session: None,
        }
    }
}

/// Classifies an incoming frame.
pub fn classify(i: &Incoming) -> Meaning {
    let kind = i.kind.as_deref().unwrap_or("");
    match kind {
        "ack" => match &i.message_id {
            Some(id) => Meaning::Ack(id.clone()),
            None => Meaning::Other,
        },
        "auth_configured" => Meaning::AuthConfigured,
        "auth_failed" => Meaning::AuthFailed,
        "auth_expired" => Meaning::AuthExpired,
        "logout_success" => Meaning::LogoutSuccess,
        "ping" => Meaning::Ping,
        "auth_error" | "unauthorized" => Meaning::AuthRejected(i.message_id.clone()),
        "error" if i.code.as_deref().is_some_and(is_auth_error) => Meaning::AuthRejected(i.message_id.clone()),
        _ => Meaning::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: &str, code: Option<&str>, id: Option<&str>) -> Incoming {
        Incoming {
            kind: Some(kind.into()),
            code: code.map(Into::into),
            message_id: id.map(Into::into),
            session: None,
        }
    }

    #[test]
    fn classifies_the_frames_seen_in_the_wild() {
        assert_eq!(classify(&frame("ack", None, Some("m-1"))), Meaning::Ack("m-1".into()));
        assert_eq!(classify(&frame("ack", None, None)), Meaning::Other);
        assert_eq!(classify(&frame("auth_configured", None, None)), Meaning::AuthConfigured);
        assert_eq!(classify(&frame("ai_response", None, Some("m-2"))), Meaning::Other);
        assert_eq!(
            classify(&frame("error", Some("token_expired"), Some("m-3"))),
            Meaning::AuthRejected(Some("m-3".into()))
        );
        assert_eq!(
            classify(&frame("error", Some("INVALID_TOKEN"), None)),
            Meaning::AuthRejected(None)
        );
        assert_eq!(classify(&frame("error", Some("rate_limited"), None)), Meaning::Other);
        assert_eq!(classify(&frame("auth_failed", None, None)), Meaning::AuthFailed);
        assert_eq!(classify(&frame("auth_expired", None, None)), Meaning::AuthExpired);
        assert_eq!(classify(&frame("logout_success", None, None)), Meaning::LogoutSuccess);
        assert_eq!(classify(&frame("ping", None, None)), Meaning::Ping);
        assert_eq!(
            classify(&frame("unauthorized", None, None)),
            Meaning::AuthRejected(None)
        );
        assert_eq!(classify(&Incoming::default()), Meaning::Other);
    }

    #[test]
    fn auth_types_know_their_fields() {
        for (s, t) in [
            ("bearer_token", AuthType::BearerToken),
            ("basic_auth", AuthType::BasicAuth),
            ("api_key", AuthType::ApiKey),
            ("oauth2", AuthType::OAuth2),
            ("oauth2_client_credentials", AuthType::OAuth2ClientCredentials),
            ("custom", AuthType::Custom),
            ("sso", AuthType::Sso),
        ] {
            assert_eq!(AuthType::parse(s), Some(t));
            assert_eq!(t.as_str(), s);
        }
        assert_eq!(AuthType::parse("kerberos"), None, "unknown types are AuthType::Other");
        assert_eq!(AuthType::Other.required(), &[]);
        assert_eq!(
            AuthType::OAuth2ClientCredentials.required(),
            AuthType::OAuth2.required()
        );
        assert!(AuthType::BearerToken.uses_token() && !AuthType::ApiKey.uses_token());
        assert_eq!(AuthType::Custom.required(), &[("custom_headers", true)]);
        assert!(AUTH_CLOSE_CODES.contains(&4001) && !AUTH_CLOSE_CODES.contains(&1006));
    }

    #[test]
    fn the_code_kept_is_the_auth_failure_whichever_field_names_it() {
        let some = |s: &str| Some(s.to_owned());
        let i = Incoming::read(some("error"), [some("E42"), None, some("token_expired")], None);
        assert_eq!(i.code.as_deref(), Some("token_expired"));
        assert!(matches!(classify(&i), Meaning::AuthRejected(None)));
        let i = Incoming::read(some("error"), [None, some("rate_limited"), some("busy")], None);
        assert_eq!(i.code.as_deref(), Some("rate_limited"));
        assert_eq!(classify(&i), Meaning::Other);
    }
}
