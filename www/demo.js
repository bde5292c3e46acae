// The plain <script type="module"> demo: no bundler, the package as `npm pack` + install lays it out.
import init, { AuthSession, ChatSocket } from "/npm/authwire/authwire.js";

await init();

const $ = (id) => document.getElementById(id);
const origin = location.origin; // the dev server speaks GoTrue at /auth/v1
const apiKey = "anon-key"; // the dev server's (`--anon-key`)
let auth = null;
let chat = null;
let lifetime = 1;
const wsOrigin = origin.replace(/^http/, "ws");
// ?server=agent: chat with the agent server (as SlarOps runs it), which checks a token in the URL
// before it accepts the connection; the SDK puts a fresh one there on every connect (opt-in).
const agentServer = new URLSearchParams(location.search).get("server") === "agent";

function logEvent(e) {
  const li = document.createElement("li");
  li.className = e.type;
  const extra = e.code ? ` code=${e.code}` : "";
  const retry = e.willRetry ? ` retry in ${e.retryInMs} ms` : "";
  li.textContent = `${new Date(e.at).toLocaleTimeString()} ${e.type}${extra}${retry}`;
  $("events").prepend(li);
}

function render() {
  const s = auth ? auth.getSnapshot() : { status: "signed_out", expiresAt: null, userId: null, refreshCount: 0, lastError: null };
  $("status").textContent = s.status;
  $("status").className = `badge ${s.status}`;
  $("refresh-count").textContent = String(s.refreshCount);
  $("user-id").textContent = s.userId ?? "—";
  $("last-error").textContent = s.lastError ?? "—";
  const live = s.status !== "signed_out";
  for (const id of ["get-token", "refresh-now", "fail-next", "signout"]) $(id).disabled = !live;
  // Disabled in the HTML until here: a submit before the wasm is ready would be the browser's own,
  // a GET with the password in the URL.
  $("signin-button").disabled = live;
}

function tick() {
  const s = auth?.getSnapshot();
  if (s && s.expiresAt) {
    const left = Math.max(0, s.expiresAt - Date.now());
    $("countdown").textContent = `${(left / 1000).toFixed(1)} s`;
    $("life").value = Math.min(1, left / lifetime);
  } else {
    $("countdown").textContent = "—";
    $("life").value = 0;
  }
  requestAnimationFrame(tick);
}

$("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("signin-error").textContent = "";
  const email = $("email").value;
  const res = await fetch(`${origin}/auth/v1/token?grant_type=password`, {
    method: "POST",
    headers: { "content-type": "application/json", apikey: apiKey },
    body: JSON.stringify({ email, password: $("password").value }),
  });
  const body = await res.json();
  if (!res.ok) {
    $("signin-error").textContent = body.msg ?? body.message ?? "sign-in failed";
    return;
  }
  lifetime = body.expires_in * 1000;
  chat?.free();
  auth?.free();
  auth = new AuthSession({ session: body, refresh: { kind: "supabase", url: origin, apiKey }, debug: true });
  auth.onEvent((e) => { logEvent(e); if (e.expiresAt) lifetime = Math.max(1, e.expiresAt - e.at); });
  auth.subscribe(render);
  logEvent({ type: "SIGNED_IN", at: Date.now() });
  startChat();
  render();
});

function startChat() {
  const sessionId = `demo-${crypto.randomUUID()}`;
  $("chat-session").textContent = sessionId;
  $("chat-log").replaceChildren();
  chat = new ChatSocket(
    agentServer
      ? { url: `${wsOrigin}/agent/ws/chat?tag=${encodeURIComponent(sessionId)}`, connectToken: { query: "token" }, auth, sessionId, ack: true, heartbeatMs: 15000 }
      : { url: `${wsOrigin}/ws/chat`, auth, sessionId, ack: true, heartbeatMs: 15000 },
  );
  $("chat-server").textContent = agentServer ? "agent server: a fresh token in the URL at every connect" : "";
  chat.onMessage((m) => {
    if (typeof m === "object" && m.type === "ai_response") addLine("agent", m.message);
    else if (typeof m === "object" && m.type === "error") addLine("agent", `error: ${m.code}`);
  });
  chat.subscribe(renderChat);
  renderChat();
}

function addLine(who, text) {
  const li = document.createElement("li");
  li.className = who;
  li.textContent = text;
  $("chat-log").append(li);
  $("chat-log").scrollTop = $("chat-log").scrollHeight;
}

function renderChat() {
  const s = chat ? chat.getSnapshot() : { status: "idle", queued: 0, sent: 0, received: 0, reconnects: 0 };
  $("chat-status").textContent = s.status;
  $("chat-status").className = `badge ${s.status}`;
  $("chat-queued").textContent = String(s.queued + (s.unacked ?? 0));
  $("chat-sent").textContent = String(s.sent);
  $("chat-received").textContent = String(s.received);
  $("chat-reconnects").textContent = String(s.reconnects);
  const live = chat && s.status !== "closed";
  for (const id of ["chat-input", "chat-send", "chat-drop"]) $(id).disabled = !live;
}

$("chat-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("chat-input").value.trim();
  if (!text) return;
  try {
    chat.send(text);
    addLine("me", text);
    $("chat-input").value = "";
  } catch (e) {
    addLine("me", `not sent: ${e.code}`);
  }
});
$("chat-drop").addEventListener("click", () =>
  fetch(`${origin}/__test/chat-control`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ session_id: $("chat-session").textContent, drop_after_frames: 0 }),
  }));

$("get-token").addEventListener("click", async () => {
  try {
    const token = await auth.accessToken();
    // Show the claims, which are not secret; never the token itself.
    const claims = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    $("token-info").textContent = `got a token issued ${new Date(claims.iat * 1000).toLocaleTimeString()}, expiring ${new Date(claims.exp * 1000).toLocaleTimeString()}`;
  } catch (e) {
    $("token-info").textContent = `accessToken() failed: ${e.code}`;
  }
});
$("refresh-now").addEventListener("click", () => auth.refresh().catch((e) => ($("token-info").textContent = `refresh() failed: ${e.code}`)));
$("fail-next").addEventListener("click", () =>
  fetch(`${origin}/__test/control`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: $("email").value, fail_refreshes: 1, fail_status: 503 }),
  }));
$("signout").addEventListener("click", () => auth.signOut());
// The e2e tests drive the page like a person; this exposes nothing secret, only the snapshots.
window.authwireDemo = { auth: () => auth?.getSnapshot(), chat: () => chat?.getSnapshot() };

render();
tick();
