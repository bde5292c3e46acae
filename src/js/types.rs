//! TypeScript declarations for the shapes passed across the boundary.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** A Supabase `Session` as supabase-js returns it (extra fields are ignored). */
export interface SessionInput {
  access_token: string;
  refresh_token?: string | null;
  /** Seconds since the epoch. */
  expires_at?: number | null;
  /** Seconds from issue. */
  expires_in?: number | null;
  token_type?: string | null;
  user?: { id: string; [key: string]: unknown } | null;
}

/** GoTrue's refresh grant (the anon key is required: Supabase's gateway refuses requests without it). */
export type SupabaseRefresh = { kind: "supabase"; url: string | URL; apiKey: string };

export interface AuthSessionOptions {
  /** The session, or a bare JWT. Omit to start signed out. */
  session?: SessionInput | string | null;
  refresh?: RefreshSource | null;
  /** Preferred refresh lead before expiry, 0..86400 (default 60); kept within 10%..50% of the token lifetime. */
  marginSeconds?: number;
  /** How long one refresh attempt may take before it is abandoned and retried, 100..600000 ms (default 10000). */
  refreshTimeoutMs?: number;
  /** Allow http:// token endpoints (and `fetch` targets) on hosts other than loopback. */
  allowInsecure?: boolean;
  /** Log the lifecycle (never a token) to console.debug. */
  debug?: boolean;
}

export type AuthStatus = "signed_out" | "signed_in" | "refreshing" | "expired";

export type AuthErrorCode =
  | "invalid_session" | "invalid_options" | "session_expired" | "signed_out" | "no_refresh_source"
  | "network_error" | "server_error" | "rate_limited" | "invalid_grant" | "invalid_credentials" | "refresh_rejected" | "token_not_found"
  | "invalid_response" | "callback_failed" | "freed" | "insecure_url" | "invalid_url" | "origin_not_allowed" | "refresh_timeout" | "lock_timeout" | "invalid_argument";

/** What `getSnapshot()` returns: the same frozen object until something changes. */
export interface AuthSnapshot {
  readonly status: AuthStatus;
  /** When the access token expires, ms since the epoch (local clock). */
  readonly expiresAt: number | null;
  readonly userId: string | null;
  /** Successful refreshes so far. */
  readonly refreshCount: number;
  readonly lastError: AuthErrorCode | null;
  /** A broker source's `/api/tokens/health`; null for other sources. */
  readonly sourceHealth: "ok" | "unhealthy" | null;
}

export type AuthEventType = "SIGNED_IN" | "TOKEN_REFRESHED" | "REFRESH_FAILED" | "SIGNED_OUT" | "SESSION_EXPIRED" | "STORAGE_IGNORED";

export interface AuthEvent {
  readonly type: AuthEventType;
  /** ms since the epoch. */
  readonly at: number;
  readonly expiresAt?: number;
  readonly code?: AuthErrorCode;
  readonly willRetry?: boolean;
  readonly retryInMs?: number | null;
}

/** The auth-handshake protocol's bearer credentials: the session's token, stamped by the SDK. */
export type BearerHandshake = { auth_type?: "bearer_token" };

export interface ChatSocketOptions {
  /** `wss://...` (or `ws://` to loopback; elsewhere only with `allowInsecure`). */
  url: string | URL;
  /** Supplies the token. Required except for auth-handshake with credentials other than bearer_token. */
  auth?: AuthSession;
  /** The chat session id stamped on every frame as `session_id`. */
  sessionId?: string;
  protocol?: "token-per-message" | "auth-handshake";
  /** Field that carries the token in token-per-message frames (default "auth_token"). */
  tokenField?: string;
  handshake?: Handshake;
  /** Each frame carries a `message_id`; unacknowledged frames are re-sent after a reconnect. */
  ack?: boolean;
  /** Most frames held, queued plus unacknowledged, 1..1000000 (default 1000); beyond it send() throws queue_full. */
  maxQueued?: number;
  /** false: never reconnect. Defaults: 1000 ms growing x1.3 to 10000 ms, unlimited retries.
   *  Delays 0..3600000 ms, factor 1..10, maxRetries 0..1e9 or Infinity. */
  reconnect?: false | { minDelayMs?: number; maxDelayMs?: number; factor?: number; maxRetries?: number };
  /** Ping period, 0 (off) or 100..600000 ms; a connection silent for two periods is replaced. */
  heartbeatMs?: number;
  /** How long opening (and the handshake) may take, 100..600000 ms (default 10000). */
  connectTimeoutMs?: number;
  allowInsecure?: boolean;
  /** Adopt the session id from server frames of these types (true: "session_created",
   *  "session_init", "connection_established"); it is then stamped on frames and in the snapshot. */
  sessionIdFrom?: boolean | string[];
  /** The server frame field the session id is read from (default "session_id"). */
  sessionIdField?: string;
  /** Connect URLs carry `?session_id=` (the current session id) so the server resumes the conversation. */
  resumeSession?: boolean;
  /** Opt-in: put the token in the connect URL's query parameter `query`, or offer it as
   *  `Sec-WebSocket-Protocol: protocol, token` (servers that authenticate the upgrade). A token fresh
   *  for the transit margin on every connect; URLs can reach proxy logs. */
  connectToken?: { query: string } | { protocol: string };
  /** Answer the server's `{ type: "ping" }` with `{ type: "pong" }` (default true). */
  answerPings?: boolean;
}

export type ChatStatus = "idle" | "connecting" | "authenticating" | "open" | "reconnecting" | "closed";

export type ChatErrorCode =
  | "queue_full" | "invalid_message" | "socket_closed" | "auth_rejected" | "connection_lost"
  | "heartbeat_timeout" | "retries_exhausted" | "refresh_timeout" | "auth_failed" | "auth_expired";

/** What `ChatSocket.onEvent` listeners receive. `frame` is the server frame that caused it. */
export type ChatEvent =
  | { readonly type: "auth_failed"; readonly frame?: ServerMessage }
  | { readonly type: "auth_expired"; readonly frame?: { type: "auth_expired"; redirect_url?: string; message?: string; [key: string]: unknown } }
  | { readonly type: "logged_out"; readonly frame?: ServerMessage }
  | { readonly type: "session_id"; readonly sessionId: string; readonly frame?: ServerMessage };

/** What `ChatSocket.getSnapshot()` returns: the same frozen object until something changes. */
export interface ChatSnapshot {
  readonly status: ChatStatus;
  /** Messages waiting to be written. */
  readonly queued: number;
  /** Written, not yet acknowledged (ack mode). */
  readonly unacked: number;
  readonly sent: number;
  readonly received: number;
  readonly acked: number;
  readonly reconnects: number;
  readonly lastError: AuthErrorCode | ChatErrorCode | null;
  /** The chat session id stamped on frames (set by `sessionId`, adopted from the server, or `setSessionId`). */
  readonly sessionId: string | null;
}

/** An incoming frame: parsed JSON (`ai_response`, `error`, `auth_configured`, `ack`, ...), or the raw text. */
export type ServerMessage =
  | { type: "ai_response"; message: string; session_id?: string; message_id?: string; [key: string]: unknown }
  | { type: "ack"; message_id: string; [key: string]: unknown }
  | { type: "auth_configured"; [key: string]: unknown }
  | { type: "error"; code?: string; message?: string; message_id?: string; [key: string]: unknown }
  | { type?: string; [key: string]: unknown }
  | string
  | ArrayBuffer;

/** The part of a supabase-js client that `followSupabase` uses. */
export interface SupabaseClientLike {
  auth: {
    onAuthStateChange(callback: (event: string, session: SessionInput | null) => void): { data: { subscription: { unsubscribe(): void } } };
    getSession(): Promise<{ data: { session: SessionInput | null }; error: unknown }>;
    refreshSession(): Promise<{ data: { session: SessionInput | null }; error: unknown }>;
  };
}

/** Every error authwire throws or rejects with. */
export interface AuthwireError extends Error {
  readonly name: "AuthwireError";
  readonly code: AuthErrorCode | ChatErrorCode;
}
"#;

/// What only the full build (`authwire`) has: the other sources, its options, every handshake type.
#[cfg(feature = "full")]
#[wasm_bindgen(typescript_custom_section)]
const TS_FULL: &'static str = r#"
/** Where new tokens come from. */
export type RefreshSource =
  | SupabaseRefresh
  /** GoTrue's password grant then its refresh grant (the anon key is required: Supabase's gateway refuses requests without it). */
  | { kind: "password"; url: string | URL; email: string; password: string; apiKey: string; endpoint?: "gotrue" }
  /** A plain login URL answering `{ token | access_token, expires_in | expires_at }`, signed in to again for every token. */
  | { kind: "password"; url: string | URL; email: string; password: string; apiKey?: string; endpoint: "plain" }
  /** `GET {url}/api/tokens/{scope}?user_id=` answering `{ token, expires_on, scope, refresh_count }`; `POST {url}/api/tokens/refresh/{scope}` to force one. */
  | { kind: "broker"; url: string | URL; scope: string; userId: string }
  | { kind: "callback"; fn: (refreshToken?: string) => Promise<SessionInput | string | null> | SessionInput | string | null };

export interface AuthSessionOptions {
  /** Where `fetch` may send the token, besides the page's own origin and the refresh source's:
   *  exact origins ("https://api.example.com", "http://127.0.0.1:8080") and subdomain patterns
   *  ("https://*.example.com": any depth, not example.com itself). At most 100; no paths. */
  fetchOrigins?: readonly string[];
  /** Where the session is kept: "memory" (default: tokens never leave memory), "local" or "session" storage. */
  storage?: "memory" | "local" | "session";
  /** The storage key (default "authwire.session"); "supabase" uses supabase-js's `sb-<project-ref>-auth-token`. */
  storageKey?: string;
  /** Share the session and its refreshes with the other tabs of this origin (BroadcastChannel + Web Locks). */
  crossTab?: boolean;
}

/** Credentials of the auth-handshake protocol, sent as `{ type: "auth", ...handshake }`. */
export type Handshake =
  | BearerHandshake
  | { auth_type: "basic_auth"; username: string; password: string }
  | { auth_type: "api_key"; api_key: string; api_key_header?: string }
  | { auth_type: "oauth2" | "oauth2_client_credentials"; client_id: string; client_secret: string; token_url: string; scope?: string }
  | { auth_type: "custom"; custom_headers: Record<string, string>; metadata?: Record<string, unknown> }
  | { auth_type: "sso"; session_token?: string };
/* A type authwire does not know is sent as given, fields unchecked, at run time; in TypeScript it
   takes a cast (`{ auth_type: "kerberos", ticket } as unknown as Handshake`), so that a known type
   missing a field stays a type error. */
"#;

/// The lite build (`authwire/lite`): the supabase source and the bearer handshake only (the other
/// options are refused at run time; here they are type errors).
#[cfg(not(feature = "full"))]
#[wasm_bindgen(typescript_custom_section)]
const TS_LITE: &'static str = r#"
/** Where new tokens come from (the other sources are in the full build, `authwire`). */
export type RefreshSource = SupabaseRefresh;

/** Credentials of the auth-handshake protocol: the bearer token (other types: the full build). */
export type Handshake = BearerHandshake;
"#;
