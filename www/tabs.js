import init, { AuthSession, ChatSocket } from "/pkg/authwire.js";

await init();
const $ = (id) => document.getElementById(id);
const origin = location.origin;
const auth = new AuthSession({
  refresh: { kind: "supabase", url: origin, apiKey: "anon-key" },
  storage: "local",
  crossTab: true,
  debug: new URLSearchParams(location.search).has("debug"),
});
const sessionId = `tabs-${crypto.randomUUID()}`;
$("chat-session").textContent = sessionId;
let chat = null;
let replies = 0;
let counter = 0;

function render() {
  const s = auth.getSnapshot();
  $("status").textContent = s.status;
  $("status").className = `badge ${s.status}`;
  $("refresh-count").textContent = String(s.refreshCount);
  if (s.status !== "signed_out" && !chat) {
    chat = new ChatSocket({ url: `${origin.replace(/^http/, "ws")}/ws/chat`, auth, sessionId, ack: true });
    chat.onMessage((m) => {
      if (m && m.type === "ai_response") $("chat-replies").textContent = String(++replies);
    });
    chat.subscribe(renderChat);
  }
  renderChat();
}
function renderChat() {
  const c = chat ? chat.getSnapshot() : { status: "idle", sent: 0 };
  $("chat-status").textContent = c.status;
  $("chat-status").className = `badge ${c.status}`;
  $("chat-sent").textContent = String(c.sent);
}
auth.subscribe(render);
render();
setInterval(() => {
  const s = auth.getSnapshot();
  $("countdown").textContent = s.expiresAt ? `${Math.max(0, (s.expiresAt - Date.now()) / 1000).toFixed(1)} s` : "—";
  if ($("chatter").checked && chat && chat.getSnapshot().status !== "closed") chat.send(`tab message ${counter++}`);
}, 500);

$("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const res = await fetch(`${origin}/auth/v1/token?grant_type=password`, {
    method: "POST",
    headers: { "content-type": "application/json", apikey: "anon-key" },
    body: JSON.stringify({ email: $("email").value, password: $("password").value }),
  });
  if (res.ok) auth.setSession(await res.json());
});
$("signout").addEventListener("click", () => auth.signOut());
// Enabled once the form is handled here (disabled in the HTML until the wasm is ready: a submit
// before that would be the browser's own, a GET with the password in the URL).
$("signin-button").disabled = false;
window.tabsDemo = { auth: () => auth.getSnapshot(), chat: () => chat?.getSnapshot(), sessionId, sent: () => counter };
