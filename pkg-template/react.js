// authwire/react: hooks over AuthSession and ChatSocket, built on useSyncExternalStore.
// Instances are created in an effect and freed in its cleanup, so React StrictMode's double mount
// creates, frees and creates again: never a double free, never a call on a freed object.
import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from "react";
import init, { AuthSession, ChatSocket } from "./authwire.js";

let ready = null;
/** Loads the wasm module once, however many hooks or calls ask. */
export function initAuthwire(input) {
  if (!ready) ready = init(input === undefined ? undefined : { module_or_path: input });
  return ready;
}

const freed = new WeakSet();
function release(instance) {
  if (instance && !freed.has(instance)) {
    freed.add(instance);
    instance.free();
  }
}

const SIGNED_OUT = Object.freeze({ status: "signed_out", expiresAt: null, userId: null, refreshCount: 0, lastError: null });
const IDLE = Object.freeze({ status: "idle", queued: 0, unacked: 0, sent: 0, received: 0, acked: 0, reconnects: 0, lastError: null });
const noSubscribe = () => () => {};

function useStore(instance, fallback) {
  const last = useRef(fallback);
  // Stable per instance, so React does not resubscribe on every render.
  const subscribe = useCallback((onChange) => (instance ? instance.subscribe(onChange) : noSubscribe()), [instance]);
  const getSnapshot = () => {
    if (!instance || freed.has(instance)) return last.current;
    return (last.current = instance.getSnapshot());
  };
  return useSyncExternalStore(subscribe, getSnapshot, () => fallback);
}

/** Creates (after `init`) an instance from `make()` for as long as the component is mounted and
 *  `deps` stay the same; frees it on cleanup. */
function useInstance(make, deps) {
  const [state, setState] = useState({ instance: null, error: null });
  const makeRef = useRef(make);
  makeRef.current = make;
  useEffect(() => {
    let alive = true;
    let instance = null;
    initAuthwire().then(
      () => {
        if (!alive) return;
        try {
          instance = makeRef.current();
          setState({ instance, error: null });
        } catch (error) {
          setState({ instance: null, error });
        }
      },
      (error) => alive && setState({ instance: null, error }),
    );
    return () => {
      alive = false;
      release(instance);
      instance = null;
      setState({ instance: null, error: null });
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  return state;
}

/** An AuthSession for the component's lifetime: `{ auth, snapshot, error }`.
 *  `options` are read when it is created (and again when `deps` change); hand new sessions over
 *  with `auth.setSession`, or let `followSupabase` do it. */
export function useAuthSession(options, deps = []) {
  const { instance: auth, error } = useInstance(() => {
    const a = new AuthSession(options);
    if (options && options.supabase) a.followSupabase(options.supabase);
    return a;
  }, deps);
  const snapshot = useStore(auth, SIGNED_OUT);
  return { auth, snapshot, error };
}

/** A ChatSocket on `options.auth` (created once it is there): `{ chat, snapshot, messages, send, error }`.
 *  `messages` holds the last `options.keepMessages` (200) incoming frames. */
export function useChatSocket(options, deps = []) {
  const keep = options.keepMessages ?? 200;
  const needsAuth = (options.protocol ?? "token-per-message") === "token-per-message" || !options.handshake || (options.handshake.auth_type ?? "bearer_token") === "bearer_token";
  const waiting = needsAuth && !options.auth;
  const [messages, setMessages] = useState([]);
  const { instance: chat, error } = useInstance(() => {
    if (waiting) return null;
    const { keepMessages, ...socketOptions } = options;
    const c = new ChatSocket(socketOptions);
    c.onMessage((m) => setMessages((list) => (list.length >= keep ? [...list.slice(list.length - keep + 1), m] : [...list, m])));
    return c;
  }, [options.auth, options.url, options.sessionId, options.protocol, ...deps]);
  const snapshot = useStore(chat, IDLE);
  const send = (message) => {
    if (!chat || freed.has(chat)) throw Object.assign(new Error("authwire: the chat socket is not ready [socket_closed]"), { name: "AuthwireError", code: "socket_closed" });
    chat.send(message);
  };
  return { chat, snapshot, messages, send, error };
}

export { AuthSession, ChatSocket };
