import type {
  AuthSession, AuthSessionOptions, AuthSnapshot, ChatSocket, ChatSocketOptions, ChatSnapshot,
  ServerMessage, SupabaseClientLike, AuthwireError,
} from "./authwire.js";

/** Loads the wasm module once (every hook calls it; call it yourself to start loading early). */
export function initAuthwire(input?: string | URL | Request | BufferSource | WebAssembly.Module): Promise<unknown>;

export interface UseAuthSessionOptions extends AuthSessionOptions {
  /** A supabase-js client to follow (sign-in, refresh and sign-out flow into the session). */
  supabase?: SupabaseClientLike;
}

export interface UseAuthSession {
  /** null until the wasm module is loaded (and after unmount). */
  auth: AuthSession | null;
  snapshot: AuthSnapshot;
  /** The coded error the options were refused with, if any. */
  error: AuthwireError | null;
}

export function useAuthSession(options: UseAuthSessionOptions, deps?: readonly unknown[]): UseAuthSession;

export interface UseChatSocketOptions extends Omit<ChatSocketOptions, "auth"> {
  /** The AuthSession from useAuthSession; the socket is created once it is non-null. */
  auth?: AuthSession | null;
  /** How many incoming frames `messages` keeps (default 200). */
  keepMessages?: number;
}

export interface UseChatSocket {
  chat: ChatSocket | null;
  snapshot: ChatSnapshot;
  messages: ServerMessage[];
  /** chat.send, throwing `socket_closed` while the socket is not there. */
  send(message: string | Record<string, unknown>): void;
  error: AuthwireError | null;
}

export function useChatSocket(options: UseChatSocketOptions, deps?: readonly unknown[]): UseChatSocket;

export { AuthSession, ChatSocket };
