import { useEffect, useMemo, useState } from "react";
import { createClient } from "@supabase/supabase-js";
// authwire/lite: what a supabase-js app needs (supabase-js keeps storage and cross-tab).
import { useAuthSession, useChatSocket } from "authwire/lite/react";

const origin = window.location.origin;
// The official client, against the dev server's GoTrue-compatible routes. authwire follows it:
// supabase-js signs in and refreshes, authwire schedules and stamps.
const supabase = createClient(origin, "anon-key", {
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
});

function Countdown({ expiresAt }) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 100);
    return () => clearInterval(t);
  }, []);
  if (!expiresAt) return <span id="countdown">—</span>;
  return <span id="countdown">{(Math.max(0, expiresAt - now) / 1000).toFixed(1)} s</span>;
}

function Chat({ auth, sessionId }) {
  const { snapshot, messages, send } = useChatSocket({ url: `${origin.replace(/^http/, "ws")}/ws/chat`, auth, sessionId, ack: true });
  const [text, setText] = useState("");
  const [mine, setMine] = useState([]);
  const replies = messages.filter((m) => typeof m === "object" && m.type === "ai_response");
  const dropConnection = () =>
    fetch(`${origin}/__test/chat-control`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ session_id: sessionId, drop_after_frames: 0 }),
    });
  return (
    <section id="chat" className="card">
      <h2>
        Chat <span id="chat-status" className={`badge ${snapshot.status}`}>{snapshot.status}</span>
      </h2>
      <p className="muted">
        session <code id="chat-session">{sessionId}</code> · queued <span id="chat-queued">{snapshot.queued + snapshot.unacked}</span> · sent{" "}
        <span id="chat-sent">{snapshot.sent}</span> · replies <span id="chat-replies">{replies.length}</span> · reconnects{" "}
        <span id="chat-reconnects">{snapshot.reconnects}</span>
      </p>
      <ol id="chat-log">
        {mine.map((m, i) => (
          <li key={`me-${i}`} className="me">{m}</li>
        ))}
        {replies.map((m, i) => (
          <li key={`agent-${i}`} className="agent">{m.message}</li>
        ))}
      </ol>
      <form
        id="chat-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (!text.trim()) return;
          send(text.trim());
          setMine((l) => [...l, text.trim()]);
          setText("");
        }}
      >
        <input id="chat-input" value={text} onChange={(e) => setText(e.target.value)} placeholder="Say something to the agent" disabled={snapshot.status === "closed"} />
        <button id="chat-send" type="submit" disabled={snapshot.status === "closed"}>Send</button>
        <button id="chat-drop" type="button" onClick={dropConnection}>Drop connection</button>
      </form>
    </section>
  );
}

export function App() {
  const { auth, snapshot } = useAuthSession({ supabase, debug: new URLSearchParams(location.search).has("debug") });
  const [error, setError] = useState("");
  const sessionId = useMemo(() => `react-${crypto.randomUUID()}`, []);
  useEffect(() => {
    window.authwireDemo = { auth: () => auth?.getSnapshot() };
  }, [auth]);
  const signIn = async (e) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const { error } = await supabase.auth.signInWithPassword({ email: form.get("email"), password: form.get("password") });
    setError(error ? error.message : "");
  };
  const live = snapshot.status !== "signed_out";
  return (
    <>
      <header>
        <h1>authwire + React</h1>
        <p>
          Signed in with the official supabase-js client; authwire follows it, keeps the token fresh and stamps every chat frame. Under
          StrictMode. <a href="/">The plain page</a>
        </p>
      </header>
      <main>
        <section id="signin" className="card">
          <h2>Sign in</h2>
          <form id="signin-form" onSubmit={signIn}>
            <label>
              Email <input id="email" name="email" type="email" defaultValue="react@authwire.dev" required />
            </label>
            <label>
              Password <input id="password" name="password" type="password" defaultValue="authwire-demo" required />
            </label>
            <button id="signin-button" type="submit" disabled={live}>Sign in</button>
            <p id="signin-error" className="error" role="alert">{error}</p>
          </form>
        </section>
        <section id="session" className="card">
          <h2>Session</h2>
          <dl>
            <dt>Status</dt>
            <dd><span id="status" className={`badge ${snapshot.status}`}>{snapshot.status}</span></dd>
            <dt>Token expires in</dt>
            <dd><Countdown expiresAt={snapshot.expiresAt} /></dd>
            <dt>Refreshes</dt>
            <dd id="refresh-count">{snapshot.refreshCount}</dd>
            <dt>Last error</dt>
            <dd id="last-error">{snapshot.lastError ?? "—"}</dd>
          </dl>
          <button id="signout" disabled={!live} onClick={() => supabase.auth.signOut()}>Sign out</button>
        </section>
        {live && auth ? <Chat auth={auth} sessionId={sessionId} /> : null}
      </main>
    </>
  );
}
