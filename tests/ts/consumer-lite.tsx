// The lite build's types (authwire/lite): the same classes and hooks for a supabase-js app, and
// no `fetch` on the session (each @ts-expect-error must fire).
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
const chat = new ChatSocket({ url: "wss://chat.example.com/ws", auth, sessionId: "s" });
chat.send({ prompt: "hi" });
void [stop, snap, token];

export function App() {
  const { auth: a, snapshot } = useAuthSession({ supabase });
  const { send } = useChatSocket({ url: "wss://chat.example.com/ws", auth: a, sessionId: "s" });
  return <button onClick={() => send({ prompt: "hi" })}>{snapshot.status}</button>;
}
