// Measurements run inside the page; bench/run.mjs drives them and prints the table.
const origin = location.origin;
// The dev server's anon key (`--anon-key`): every /auth/v1 request needs it, as on hosted Supabase.
const apikey = "anon-key";
const wsOrigin = origin.replace(/^http/, "ws");

async function signIn(email) {
  const res = await fetch(`${origin}/auth/v1/token?grant_type=password`, {
    method: "POST",
    headers: { "content-type": "application/json", apikey },
    body: JSON.stringify({ email, password: "authwire-demo" }),
  });
  return res.json();
}

function openRaw(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.onopen = () => resolve(ws);
    ws.onerror = reject;
  });
}

// Open within 10 s, or the bench fails saying what the socket was doing (never a silent hang).
function waitOpen(chat) {
  const deadline = performance.now() + 10_000;
  return new Promise((resolve, reject) => {
    const check = () => {
      const s = chat.getSnapshot();
      if (s.status === "open") resolve();
      else if (performance.now() > deadline) reject(new Error(`socket not open after 10 s: ${JSON.stringify(s)}`));
      else setTimeout(check, 2);
    };
    check();
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

window.bench = {
  /** import -> init (streaming compile) -> new AuthSession, in ms; `dir` is "/pkg" (full) or
   *  "/pkg/lite". */
  async startupAuthwire(session, dir = "/pkg") {
    const t0 = performance.now();
    const m = await import(`${dir}/authwire.js`);
    await m.default();
    const auth = new m.AuthSession({ session, refresh: { kind: "supabase", url: origin, apiKey: apikey } });
    const t = performance.now() - t0;
    auth.free();
    return t;
  },
  /** Where start-up goes, one phase at a time (no streaming, so the phases can be told apart):
   *  importing the glue, fetching the wasm, compiling it, instantiating it, the first AuthSession. */
  async startupPhases(session, dir = "/pkg") {
    const t0 = performance.now();
    const m = await import(`${dir}/authwire.js`);
    const t1 = performance.now();
    const bytes = await (await fetch(`${dir}/authwire_bg.wasm`)).arrayBuffer();
    const t2 = performance.now();
    const module = await WebAssembly.compile(bytes);
    const t3 = performance.now();
    m.initSync({ module });
    const t4 = performance.now();
    const auth = new m.AuthSession({ session, refresh: { kind: "supabase", url: origin, apiKey: apikey } });
    const t5 = performance.now();
    auth.free();
    return { importGlue: t1 - t0, fetch: t2 - t1, compile: t3 - t2, instantiate: t4 - t3, firstSession: t5 - t4 };
  },
  /** import -> new AuthClient (@supabase/auth-js), in ms. */
  async startupAuthJs() {
    const t0 = performance.now();
    const m = await import("/bench-anchors/auth-js.js");
    const client = new m.AuthClient({ url: `${origin}/auth/v1`, headers: { apikey }, autoRefreshToken: false, persistSession: false });
    await client.initialize();
    return performance.now() - t0;
  },

  /** Per-message cost: 10,000 stamped sends, authwire vs raw JS, alternated; median per round. */
  async perMessage(rounds, n, dir = "/pkg") {
    const m = await import(`${dir}/authwire.js`);
    await m.default();
    const session = await signIn(`bench-send-${Date.now()}@bench.authwire.dev`);
    const auth = new m.AuthSession({ session, refresh: { kind: "supabase", url: origin, apiKey: apikey } });
    const chat = new m.ChatSocket({ url: `${wsOrigin}/ws/sink`, auth, sessionId: "bench", maxQueued: n + 10 });
    await waitOpen(chat);
    const raw = await openRaw(`${wsOrigin}/ws/sink`);
    const token = await auth.accessToken();
    const msg = { prompt: "hello there, agent", temperature: 0.2 };
    const a = [];
    const r = [];
    const runAuthwire = () => {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) chat.send(msg);
      return performance.now() - t0;
    };
    const runRaw = () => {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) raw.send(JSON.stringify({ ...msg, session_id: "bench", auth_token: token }));
      return performance.now() - t0;
    };
    // Let both sockets drain between batches, so neither pays for the other's backlog.
    const drain = async () => {
      while (raw.bufferedAmount > 0) await new Promise((res) => setTimeout(res, 10));
      await new Promise((res) => setTimeout(res, 150));
    };
    runAuthwire();
    await drain();
    runRaw(); // warm-up, not counted
    await drain();
    for (let k = 0; k < rounds; k++) {
      // Alternate which goes first (ABBA), in the same page, on the same server.
      if (k % 2 === 0) {
        a.push(runAuthwire());
        await drain();
        r.push(runRaw());
      } else {
        r.push(runRaw());
        await drain();
        a.push(runAuthwire());
      }
      await drain();
    }
    chat.free();
    auth.free();
    raw.close();
    return { authwireMs: median(a), rawMs: median(r), rounds, n };
  },

  /** Memory: wasm linear memory and JS heap after ChatSocket create/open/close cycles and sends. */
  async memory(cycles, sends, warmup) {
    const m = await import("/pkg/authwire.js");
    const wasm = await m.default();
    const session = await signIn(`bench-mem-${Date.now()}@bench.authwire.dev`);
    const auth = new m.AuthSession({ session, refresh: { kind: "supabase", url: origin, apiKey: apikey } });
    // Chromium keeps each closed WebSocket's two data-pipe buffers (two file descriptors in the
    // renderer) until a garbage collection frees the socket object: thousands of cycles between
    // two collections can take the renderer past its file descriptor limit, and the page then
    // stops answering. A full collection every 500 cycles (the bench runs with --expose-gc) bounds it.
    let opened = 0;
    const cycle = async () => {
      const c = new m.ChatSocket({ url: `${wsOrigin}/ws/sink`, auth, sessionId: "mem" });
      await waitOpen(c);
      c.send("x");
      c.close();
      c.free();
      if (++opened % 500 === 0 && typeof globalThis.gc === "function") globalThis.gc();
    };
    for (let i = 0; i < warmup; i++) await cycle();
    const chat = new m.ChatSocket({ url: `${wsOrigin}/ws/sink`, auth, sessionId: "mem", maxQueued: 200000 });
    await waitOpen(chat);
    for (let i = 0; i < 1000; i++) chat.send({ prompt: "warm" });
    await new Promise((res) => setTimeout(res, 200));
    const wasmBefore = wasm.memory.buffer.byteLength;
    const heapBefore = performance.memory ? performance.memory.usedJSHeapSize : null;
    for (let i = 0; i < cycles; i++) await cycle();
    for (let i = 0; i < sends; i++) {
      chat.send({ prompt: "memory" });
      if (i % 10000 === 9999) await new Promise((res) => setTimeout(res, 0));
    }
    await new Promise((res) => setTimeout(res, 500));
    const wasmAfter = wasm.memory.buffer.byteLength;
    const heapAfter = performance.memory ? performance.memory.usedJSHeapSize : null;
    chat.free();
    auth.free();
    return { wasmBefore, wasmAfter, heapBefore, heapAfter, cycles, sends };
  },

  /** Single flight at scale: n concurrent accessToken() calls on an expired session. */
  async singleFlight(n, email) {
    const m = await import("/pkg/authwire.js");
    await m.default();
    const session = await signIn(email);
    session.expires_at = Math.floor(Date.now() / 1000) - 1;
    const auth = new m.AuthSession({ session, refresh: { kind: "supabase", url: origin, apiKey: apikey } });
    const t0 = performance.now();
    const calls = [];
    for (let i = 0; i < n; i++) calls.push(auth.accessToken());
    const tokens = await Promise.all(calls);
    const ms = performance.now() - t0;
    const distinct = new Set(tokens).size;
    auth.free();
    return { ms, distinct, n };
  },
};
window.benchReady = true;
