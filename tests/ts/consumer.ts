// Compiled with `tsc --noEmit --strict` by scripts/test.sh: the package's types are precise
// enough for a strict consumer, and wrong uses are errors (each @ts-expect-error must fire).
import init, { AuthSession, ChatSocket } from "authwire";
import type { AuthEvent, AuthSnapshot, ChatSnapshot, ServerMessage, AuthwireError, SessionInput, ChatEvent, Handshake } from "authwire";

await init();

const session: SessionInput = { access_token: "a.b.c", refresh_token: "r", expires_in: 3600, expires_at: 1_800_000_000, token_type: "bearer", user: { id: "u" } };
const auth = new AuthSession({ session, refresh: { kind: "supabase", url: "https://x.supabase.co", apiKey: "anon" }, marginSeconds: 30 });
const bare = new AuthSession({ session: "a.b.c", refresh: { kind: "callback", fn: async () => ({ access_token: "x", expires_in: 60 }) } });
const tabs = new AuthSession({ refresh: { kind: "broker", url: "https://b", scope: "chat", userId: "u" }, storage: "local", storageKey: "supabase", crossTab: true });
const health: "ok" | "unhealthy" | null = tabs.getSnapshot().sourceHealth;
const res: Response = await tabs.fetch("https://api.example.com/me", { method: "POST", body: "{}" });
new AuthSession({ refresh: { kind: "password", url: "https://x.supabase.co", apiKey: "anon", email: "a@b", password: "p" } });
new AuthSession({ refresh: { kind: "password", url: "https://x/login", endpoint: "plain", email: "a@b", password: "p" } });
// @ts-expect-error: GoTrue's password grant needs apiKey
new AuthSession({ refresh: { kind: "password", url: "https://x.supabase.co", email: "a@b", password: "p" } });
new AuthSession({ fetchOrigins: ["https://api.example.com", "https://*.example.com", "http://127.0.0.1:8080"] });
const origins: readonly string[] = ["https://api.example.com"];
new AuthSession({ fetchOrigins: origins });
// @ts-expect-error: fetchOrigins is a list, not one origin
new AuthSession({ fetchOrigins: "https://api.example.com" });
// @ts-expect-error: storage is a closed set
new AuthSession({ storage: "cookie" });

const token: string = await auth.accessToken();
const snap: AuthSnapshot = auth.getSnapshot();
const status: "signed_out" | "signed_in" | "refreshing" | "expired" = snap.status;
const expiresAt: number | null = snap.expiresAt;
const off: () => void = auth.onEvent((e: AuthEvent) => {
  if (e.type === "REFRESH_FAILED" && e.code === "invalid_grant") console.log(e.willRetry);
  if (e.type === "REFRESH_FAILED" && e.code === "invalid_credentials") console.log("wrong password");
});
off();
auth.subscribe(() => void auth.getSnapshot())();

const chat = new ChatSocket({ url: "wss://chat.example.com/ws", auth, sessionId: "s1", ack: true, reconnect: { minDelayMs: 500, maxRetries: 5 }, heartbeatMs: 25_000 });
chat.send("hello");
chat.send({ prompt: "hi", temperature: 0.2 });
chat.onMessage((m: ServerMessage) => {
  if (typeof m !== "string" && !(m instanceof ArrayBuffer) && m.type === "ai_response") console.log(m.message);
});
const cs: ChatSnapshot = chat.getSnapshot();
const queued: number = cs.queued;
new ChatSocket({ url: "wss://x/ws", protocol: "auth-handshake", handshake: { auth_type: "api_key", api_key: "k", api_key_header: "X-API-Key" } });

try {
  await auth.refresh();
} catch (e) {
  const code: AuthwireError["code"] = (e as AuthwireError).code;
  console.log(code);
}
auth.followSupabase({
  auth: {
    onAuthStateChange: (cb) => { cb("SIGNED_IN", session); return { data: { subscription: { unsubscribe() {} } } }; },
    getSession: async () => ({ data: { session }, error: null }),
    refreshSession: async () => ({ data: { session }, error: null }),
  },
});

const agent = new ChatSocket({ url: "wss://agent.example.com/ws/chat", auth, connectToken: { query: "token" }, sessionIdFrom: true, answerPings: true });
const stopEvents: () => void = agent.onEvent((e: ChatEvent) => {
  if (e.type === "auth_expired") console.log(e.frame?.redirect_url);
  if (e.type === "session_id") console.log(e.sessionId.length);
});
stopEvents();
agent.setSessionId("s-2");
agent.setSessionId(null);
const sid: string | null = agent.getSnapshot().sessionId;
console.log(sid);
agent.logout();
new ChatSocket({ url: "wss://x/chat/ws", protocol: "auth-handshake", resumeSession: true, sessionIdFrom: ["connection_established"],
  handshake: { auth_type: "oauth2_client_credentials", client_id: "c", client_secret: "s", token_url: "https://idp/token", scope: "chat" } });
new ChatSocket({ url: "wss://x/chat/ws", protocol: "auth-handshake", handshake: { auth_type: "sso" } });
new ChatSocket({ url: "wss://x/chat/ws", protocol: "auth-handshake", handshake: { auth_type: "kerberos", ticket: "t" } as unknown as Handshake });
new ChatSocket({ url: "wss://x", auth, connectToken: { protocol: "bearer" } });
// @ts-expect-error: connectToken names its query parameter
new ChatSocket({ url: "wss://x", auth, connectToken: true });

// @ts-expect-error: refresh.kind is a closed set
new AuthSession({ refresh: { kind: "magic" } });
// @ts-expect-error: supabase needs apiKey
new AuthSession({ refresh: { kind: "supabase", url: "https://x" } });
// @ts-expect-error: send takes a string or an object
chat.send(42);
// @ts-expect-error: basic_auth needs a password
new ChatSocket({ url: "wss://x", protocol: "auth-handshake", handshake: { auth_type: "basic_auth", username: "u" } });
// @ts-expect-error: the snapshot has no token
snap.accessToken;

chat.close();
chat.free();
auth.free();
bare.free();
console.log(token, status, expiresAt, queued, health, res.status);
