// The soak: 3-second tokens, ack mode, and a dev server that drops connections (~10% of frames),
// fails refreshes with 500 (~20%), delays replies, rejects a token now and then, while the tab is
// frozen and thawed. Prints the server's own counts; exits 1 unless nothing was lost, duplicated
// or sent stale.
//   AUTHWIRE_SERVER_URL=... node soak/run.mjs [--seed N] [--seconds 60] [--interval 10] [--outage]
//                                             [--drop 0.1] [--fail 0.2] [--reject 0.005]
// Every random choice (the server's fault decisions, the freeze schedule, the outages) comes from
// one seeded generator: the seed is printed first, and `--seed N` replays the same fault schedule
// (the same decisions in the same order; the machine's timing still varies).
// --outage adds token-endpoint outages: from just after a refresh lands (about 2 s before the
// token expires) until about 3 s past its expiry every refresh fails with 500, then the endpoint
// recovers; every message queued meanwhile must still arrive, once, with a valid token.
import { chromium } from "playwright-core";
import { mkdirSync, writeFileSync } from "node:fs";

const BASE = process.env.AUTHWIRE_SERVER_URL;
if (!BASE) throw new Error("AUTHWIRE_SERVER_URL must name the running dev server");
const argv = process.argv.slice(2);
const arg = (name, d) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : d;
};
const flag = (name) => argv.includes(name);
const seed = argv.includes("--seed") ? arg("--seed") >>> 0 : (Math.random() * 2 ** 32) >>> 0;
const seconds = arg("--seconds", 60);
const intervalMs = arg("--interval", 10);
const dropP = arg("--drop", 0.1);
const failP = arg("--fail", 0.2);
const rejectP = arg("--reject", 0.005);
const outages = flag("--outage");

// The replay command: the same arguments with this run's seed.
const replayArgs = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--seed") i++;
  else replayArgs.push(argv[i]);
}
replayArgs.unshift("--seed", String(seed));
const replay = `bash scripts/soak.sh ${replayArgs.join(" ")}   (or, with the dev server running: AUTHWIRE_SERVER_URL=${BASE} node soak/run.mjs ${replayArgs.join(" ")})`;
console.log(`soak seed ${seed}${outages ? ", with outages" : ""}: replay with ${replay}`);

// mulberry32: small, seeded, good enough for a fault schedule.
function prng(a) {
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(seed);
const between = (lo, hi) => lo + random() * (hi - lo);
const authSeed = Math.floor(random() * 2 ** 32);
const chatSeed = Math.floor(random() * 2 ** 32);

const post = async (path, body) => {
  const res = await fetch(`${BASE}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const stamp = Date.now();
const email = `soak-${stamp}@soak.authwire.dev`;
const sessionId = `soak-${stamp}`;
await post("/__test/control", { email, ttl_seconds: 3, fail_probability: failP, fault_seed: authSeed });
await post("/__test/chat-control", { session_id: sessionId, drop_probability: dropP, reject_probability: rejectP, reply_delay_max_ms: 200, fault_seed: chatSeed });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const page = await browser.newPage();
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
await page.goto(`${BASE}/soak.html`);
await page.waitForFunction(() => window.soakReady === true);
const cdp = await page.context().newCDPSession(page);
await page.evaluate((o) => window.soak.start(o), { email, sessionId, intervalMs });
const state = () => page.evaluate(() => window.soak.state());

const chatStats = async () => (await fetch(`${BASE}/__test/chat?session_id=${sessionId}`)).json();
// After an outage the session must get a token again by itself (no thaw, no online event, no new
// demand: only the socket still waiting) and the chat must move again, within the longest refresh
// backoff (30 s) and some. (Catching up on the backlog takes longer while 10% of frames drop; the
// end of the run checks that every message arrived.)
const RECOVERY_DEADLINE_MS = 40_000;

/** One outage: waits for a refresh to land, then fails every refresh from then until about
 *  3 s past the new token's expiry, then waits for the session and the chat to recover.
 *  Returns what it saw. */
async function outage() {
  const before = (await state()).auth.refreshCount;
  const deadline = Date.now() + 15_000;
  let s;
  do {
    await sleep(25);
    s = await state();
  } while (s.auth.refreshCount === before && Date.now() < deadline);
  const expiresAt = s.auth.expiresAt;
  const until = Math.round(expiresAt + between(2500, 3500));
  await post("/__test/control", { email, fail_until_ms: until });
  const o = { start: Date.now(), expiresAt, until, refreshLanded: s.auth.refreshCount !== before };
  await sleep(Math.max(0, until - Date.now()));
  const after = await state();
  o.queuedAtRecovery = after.chat.queued + after.chat.unacked;
  o.statusAtRecovery = after.auth.status;
  o.acceptedAtRecovery = (await chatStats()).accepted;
  o.recoveredInMs = null;
  for (;;) {
    const now = await state();
    o.statusAfter = now.auth.status;
    o.refreshesAfter = now.auth.refreshCount - after.auth.refreshCount;
    o.deliveredAfter = (await chatStats()).accepted - o.acceptedAtRecovery;
    if (now.auth.refreshCount > after.auth.refreshCount && now.auth.status !== "expired" && o.deliveredAfter > 0) {
      o.recoveredInMs = Date.now() - until;
      break;
    }
    if (Date.now() - until > RECOVERY_DEADLINE_MS) break;
    await sleep(250);
  }
  return o;
}

// Hide and show the tab: freeze it (timers and tasks stop, as in a background tab) for about a
// second every 4-8 s, then let it run again. With --outage, every other pause is an outage instead
// (never both at once: a thaw is a wake-up, which would hide whether the session retries by itself).
let frozen = 0;
const done = [];
const end = Date.now() + seconds * 1000;
let turn = 0;
while (Date.now() < end) {
  await sleep(Math.min(between(4000, 8000), end - Date.now()));
  if (Date.now() >= end) break;
  if (outages && turn++ % 2 === 0 && end - Date.now() > 7000) {
    done.push(await outage());
    continue;
  }
  await cdp.send("Page.setWebLifecycleState", { state: "frozen" });
  await sleep(between(500, 1500));
  await cdp.send("Page.setWebLifecycleState", { state: "active" });
  frozen++;
}
if (outages && done.length === 0) {
  // A run too short for the schedule above still gets its outage.
  done.push(await outage());
}
await page.evaluate(() => window.soak.stop());
// Faults off, then let everything in flight land.
await post("/__test/chat-control", { session_id: sessionId, drop_probability: 0, reject_probability: 0, reply_delay_max_ms: 0 });
await post("/__test/control", { email, fail_probability: 0, fail_until_ms: 0 });
let client;
const drainStart = Date.now();
for (;;) {
  client = await state();
  if (client.chat.queued === 0 && client.chat.unacked === 0) break;
  if (Date.now() - drainStart > 30_000) break;
  await sleep(100);
}
const server = await chatStats();
const auth = await (await fetch(`${BASE}/__test/stats?email=${encodeURIComponent(email)}`)).json();
await browser.close();

const expected = Array.from({ length: client.sent }, (_, i) => `soak ${i}`);
const got = server.messages;
const seen = new Set(got);
const lost = expected.filter((m) => !seen.has(m)).length;
const duplicated = got.length - seen.size;
const outOfOrder = got.some((m, i) => i > 0 && Number(m.split(" ")[1]) < Number(got[i - 1].split(" ")[1]));
const stale = server.stale_tokens + server.missing_tokens + server.bad_tokens;
const stuck = client.chat.queued + client.chat.unacked;
const rows = [
  ["seed", seed],
  ["messages sent (send() accepted)", client.sent],
  ["messages received by the server", got.length],
  ["lost", lost],
  ["duplicated (delivered twice)", duplicated],
  ["delivered out of order", outOfOrder ? "yes" : "no"],
  ["frames with a stale, missing or bad token", stale],
  ["still queued or unacknowledged after 30 s without faults", stuck],
  ["re-sent frames the server de-duplicated by id", server.duplicates + (server.resent_after_drop ?? 0)],
  ["refreshes served / failed on purpose (500)", `${auth.refresh_ok} / ${auth.refresh_faults}`],
  ["connections dropped on purpose / tokens rejected on purpose", `${server.forced_drops} / ${server.forced_rejections}`],
  ["reconnects (client)", client.chat.reconnects],
  ["tab frozen and thawed", frozen],
  ["token-endpoint outages (until ~3 s past expiry) / recovered from", outages ? `${done.length} / ${done.length - done.filter((o) => o.recoveredInMs === null).length}` : "off"],
  ["send() refused (queue full or closed)", client.refused],
  ["session at the end", `${client.auth.status}${client.auth.lastError ? ` (${client.auth.lastError})` : ""}`],
  ["page errors", errors.length],
];
console.log(`\nauthwire soak: ${seconds} s, a message every ${intervalMs} ms, 3-second tokens, ack mode; faults: drop ${dropP * 100}% of frames, 500 on ${failP * 100}% of refreshes, reject ${rejectP * 100}% of frames, replies delayed up to 200 ms${outages ? "; token-endpoint outages past expiry" : ""}\n`);
console.log("| measure | count |\n|---|---|");
for (const [k, v] of rows) console.log(`| ${k} | ${v} |`);
for (const o of done) {
  const ms = (t) => `${t - o.start >= 0 ? "+" : ""}${((t - o.start) / 1000).toFixed(1)} s`;
  const outcome =
    o.recoveredInMs === null
      ? `NOT recovered ${RECOVERY_DEADLINE_MS / 1000} s later: session ${o.statusAfter}, ${o.refreshesAfter} refresh(es) and ${o.deliveredAfter} message(s) delivered since`
      : `session refreshed and chat moving again ${(o.recoveredInMs / 1000).toFixed(1)} s later`;
  console.log(`outage: refreshes failing from 0 s, token expiry at ${ms(o.expiresAt)}, endpoint back at ${ms(o.until)}; ${o.queuedAtRecovery} message(s) waiting then, session ${o.statusAtRecovery}; ${outcome}${o.refreshLanded ? "" : " (no refresh landed before it began)"}`);
}
mkdirSync("target/soak", { recursive: true });
writeFileSync("target/soak/latest.json", JSON.stringify({ date: new Date().toISOString(), seed, seconds, intervalMs, dropP, failP, rejectP, outages: done, client, server: { ...server, messages: undefined }, auth, lost, duplicated, outOfOrder, stale, stuck, frozen }, null, 2));
const why = [];
const unrecovered = done.filter((o) => o.recoveredInMs === null).length;
if (unrecovered) why.push(`after ${unrecovered} outage(s) the session did not get a token again within ${RECOVERY_DEADLINE_MS / 1000} s of the endpoint's recovery, so the queued messages waited (it stopped retrying its refresh while the socket waited)`);
if (lost) why.push(`${lost} message(s) lost`);
if (stuck) why.push(`${stuck} message(s) never delivered (still queued 30 s after the faults stopped)`);
if (duplicated) why.push(`${duplicated} duplicated`);
if (stale) why.push(`${stale} frame(s) with a stale, missing or bad token`);
if (outOfOrder) why.push("delivered out of order");
if (errors.length) why.push(`page errors: ${errors.join("; ")}`);
if (client.refused) why.push(`${client.refused} send() refused`);
if (client.auth.status === "signed_out") why.push("the session ended (signed_out)");
if (client.sent !== got.length) why.push(`sent ${client.sent}, received ${got.length}`);
if (why.length === 0) {
  console.log("\nsoak: zero lost, zero duplicated, zero stale");
  process.exit(0);
}
console.log(`\nsoak: FAILED: ${why.join("; ")}`);
console.log(`replay this fault schedule with: ${replay}`);
process.exit(1);
