// The soak's client: a session on short tokens and an ack-mode chat, sending steadily while the
// dev server injects faults. soak/run.mjs drives it and reads the server's counts.
import init, { AuthSession, ChatSocket } from "/pkg/authwire.js";

await init();
const origin = location.origin;
let auth = null;
let chat = null;
let sent = 0;
let refused = 0;
let timer = null;
const events = [];

window.soak = {
  async start({ email, sessionId, intervalMs }) {
    const res = await fetch(`${origin}/auth/v1/token?grant_type=password`, {
      method: "POST",
      headers: { "content-type": "application/json", apikey: "anon-key" },
      body: JSON.stringify({ email, password: "authwire-demo" }),
    });
    const session = await res.json();
    auth = new AuthSession({ session, refresh: { kind: "supabase", url: origin, apiKey: "anon-key" } });
    auth.onEvent((e) => events.push(e.type));
    chat = new ChatSocket({
      url: `${origin.replace(/^http/, "ws")}/ws/chat`, auth, sessionId, ack: true, maxQueued: 100000,
      reconnect: { minDelayMs: 50, maxDelayMs: 1000 }, heartbeatMs: 2000,
    });
    timer = setInterval(() => {
      try {
        chat.send(`soak ${sent}`);
        sent++;
      } catch (e) {
        refused++;
      }
    }, intervalMs);
  },
  stop() {
    clearInterval(timer);
  },
  state() {
    const count = (t) => events.filter((e) => e === t).length;
    return { sent, refused, chat: chat.getSnapshot(), auth: auth.getSnapshot(), refreshed: count("TOKEN_REFRESHED"), refreshFailed: count("REFRESH_FAILED"), signedOut: count("SIGNED_OUT") };
  },
};
window.soakReady = true;
