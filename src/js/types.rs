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

/** Where new tokens come from. */
export type RefreshSource =
  | { kind: "supabase"; url: string; apiKey: string }
  | { kind: "callback"; fn: () => Promise<SessionInput | string | null> | SessionInput | string | null };

export interface AuthSessionOptions {
  /** The session, or a bare JWT. Omit to start signed out. */
  session?: SessionInput | string | null;
  refresh?: RefreshSource | null;
  /** Preferred refresh lead before expiry (default 60); kept within 10%..50% of the token lifetime. */
  marginSeconds?: number;
  /** Allow http:// token endpoints on hosts other than loopback. */
  allowInsecure?: boolean;
  /** Log the lifecycle (never a token) to console.debug. */
  debug?: boolean;
}

export type AuthStatus = "signed_out" | "signed_in" | "refreshing" | "expired";

export type AuthErrorCode =
  | "invalid_session" | "invalid_options" | "session_expired" | "signed_out" | "no_refresh_source"
  | "network_error" | "server_error" | "rate_limited" | "invalid_grant" | "refresh_rejected"
  | "invalid_response" | "callback_failed" | "freed" | "insecure_url" | "invalid_url";

/** What `getSnapshot()` returns: the same frozen object until something changes. */
export interface AuthSnapshot {
  readonly status: AuthStatus;
  /** When the access token expires, ms since the epoch (local clock). */
  readonly expiresAt: number | null;
  readonly userId: string | null;
  /** Successful refreshes so far. */
  readonly refreshCount: number;
  readonly lastError: AuthErrorCode | null;
}

export type AuthEventType = "SIGNED_IN" | "TOKEN_REFRESHED" | "REFRESH_FAILED" | "SIGNED_OUT" | "SESSION_EXPIRED";

export interface AuthEvent {
  readonly type: AuthEventType;
  /** ms since the epoch. */
  readonly at: number;
  readonly expiresAt?: number;
  readonly code?: AuthErrorCode;
  readonly willRetry?: boolean;
  readonly retryInMs?: number | null;
}

/** Every error authwire throws or rejects with. */
export interface AuthwireError extends Error {
  readonly name: "AuthwireError";
  readonly code: AuthErrorCode;
}
"#;
