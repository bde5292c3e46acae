import { useAuthSession, useChatSocket, initAuthwire } from "authwire/react";
import type { ServerMessage } from "authwire";

void initAuthwire();

export function Chat({ session }: { session: string }) {
  const { auth, snapshot, error } = useAuthSession({ session, refresh: { kind: "supabase", url: "https://x.supabase.co", apiKey: "anon" } });
  const { snapshot: chat, messages, send } = useChatSocket({ url: "wss://x/ws", auth, sessionId: "s1", ack: true });
  const list: ServerMessage[] = messages;
  const status: string = snapshot.status + chat.status;
  // @ts-expect-error: the hook's snapshot is typed
  const nope: number = snapshot.status;
  return (
    <div onClick={() => send({ prompt: "hi" })}>
      {status} {list.length} {error?.code} {String(nope)}
    </div>
  );
}
