// The lite build's types (authwire/lite): the same classes and hooks for a supabase-js app; no
// `fetch` on the session and no option lite refuses (each @ts-expect-error must fire).
import init, { AuthSession, ChatSocket } from "authwire/lite";
import type { AuthSnapshot, SupabaseClientLike } from "authwire/lite";
import { useAuthSession, useChatSocket } from "authwire/lite/react";

await init();
declare const supabase: SupabaseClientLike;
const auth = new AuthSession({ refresh: { kind: "supabase", url: "https://x.supabase.co", apiKey: "anon" } });
const stop: () => void = auth.followSupabase(supabase);
const snap: AuthSnapshot = auth.getSnapshot();
const token: Promise<string> = auth.accessToken();
// @ts-expect-error: auth.fetch is in the full build only
auth.fetch("https://api.example.com/me");
// What lite refuses at run time is a type error here.
// @ts-expect-error: crossTab is in the full build only
new AuthSession({ crossTab: true });
// @ts-expect-error: storage is in the full build only
new AuthSession({ storage: "local" });
// @ts-expect-error: fetchOrigins is in the full build only
new AuthSession({ fetchOrigins: ["https://api.example.com"] });
// @ts-expect-error: the password source is in the full build only
new AuthSession({ refresh: { kind: "password", url: "https://x.supabase.co", apiKey: "anon", email: "a@b", password: "p" } });
// @ts-expect-error: handshake auth types other than bearer_token are in the full build only
new ChatSocket({ url: "wss://chat.example.com/ws", protocol: "auth-handshake", handshake: { auth_type: "api_key", api_key: "k" } });
new ChatSocket({ url: "wss://chat.example.com/ws", protocol: "auth-handshake", handshake: { auth_type: "bearer_token" }, auth });
const chat = new ChatSocket({ url: "wss://chat.example.com/ws", auth, sessionId: "s" });
chat.send({ prompt: "hi" });
void [stop, snap, token];

export function App() {
  const { auth: a, snapshot } = useAuthSession({ supabase });
  const { send } = useChatSocket({ url: "wss://chat.example.com/ws", auth: a, sessionId: "s" });
  return <button onClick={() => send({ prompt: "hi" })}>{snapshot.status}</button>;
}
