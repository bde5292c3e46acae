// The soak: 3-second tokens, ack mode, and a dev server that drops connections (~10% of frames),
// fails refreshes with 500 (~20%), delays replies, rejects a token now and then, while the tab is
// frozen and thawed. Prints the server's own counts; exits 1 unless nothing was lost, duplicated
// or sent stale.   AUTHWIRE_SERVER_URL=... node soak/run.mjs [--seconds 60] [--interval 10]
import { chromium } from "playwright-core";
import { mkdirSync, writeFileSync } from "node:fs";

const BASE = process.env.AUTHWIRE_SERVER_URL;
if (!BASE) throw new Error("AUTHWIRE_SERVER_URL must name the running dev server");
const arg = (name, d) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const seconds = arg("--seconds", 60);
const intervalMs = arg("--interval", 10);
const dropP = arg("--drop", 0.1);
const failP = arg("--fail", 0.2);
const rejectP = arg("--reject", 0.005);
const post = (path, body) => fetch(`${BASE}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const stamp = Date.now();
const email = `soak-${stamp}@soak.authwire.dev`;
const sessionId = `soak-${stamp}`;
await post("/__test/control", { email, ttl_seconds: 3, fail_probability: failP });
await post("/__test/chat-control", { session_id: sessionId, drop_probability: dropP, reject_probability: rejectP, reply_delay_max_ms: 200 });

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

// Hide and show the tab: freeze it (timers and tasks stop, as in a background tab) for a second
// every ~7 seconds, then let it run again.
let frozen = 0;
const end = Date.now() + seconds * 1000;
while (Date.now() < end) {
  await sleep(Math.min(6000, end - Date.now()));
  if (Date.now() >= end) break;
  await cdp.send("Page.setWebLifecycleState", { state: "frozen" });
  await sleep(1000);
  await cdp.send("Page.setWebLifecycleState", { state: "active" });
  frozen++;
}
await page.evaluate(() => window.soak.stop());
// Faults off, then let everything in flight land.
await post("/__test/chat-control", { session_id: sessionId, drop_probability: 0, reject_probability: 0, reply_delay_max_ms: 0 });
await post("/__test/control", { email, fail_probability: 0 });
let client;
for (let i = 0; i < 300; i++) {
  client = await page.evaluate(() => window.soak.state());
  if (client.chat.queued === 0 && client.chat.unacked === 0) break;
  await sleep(100);
}
const server = await (await fetch(`${BASE}/__test/chat?session_id=${sessionId}`)).json();
const auth = await (await fetch(`${BASE}/__test/stats?email=${encodeURIComponent(email)}`)).json();
await browser.close();

const expected = Array.from({ length: client.sent }, (_, i) => `soak ${i}`);
const got = server.messages;
const seen = new Set(got);
const lost = expected.filter((m) => !seen.has(m)).length;
const duplicated = got.length - seen.size;
const outOfOrder = got.some((m, i) => i > 0 && Number(m.split(" ")[1]) < Number(got[i - 1].split(" ")[1]));
const stale = server.stale_tokens + server.missing_tokens + server.bad_tokens;
const rows = [
  ["messages sent (send() accepted)", client.sent],
  ["messages received by the server", got.length],
  ["lost", lost],
  ["duplicated (delivered twice)", duplicated],
  ["delivered out of order", outOfOrder ? "yes" : "no"],
  ["frames with a stale, missing or bad token", stale],
  ["re-sent frames the server de-duplicated by id", server.duplicates],
  ["refreshes served / failed on purpose (500)", `${auth.refresh_ok} / ${auth.refresh_faults}`],
  ["connections dropped on purpose / tokens rejected on purpose", `${server.forced_drops} / ${server.forced_rejections}`],
  ["reconnects (client)", client.chat.reconnects],
  ["tab frozen and thawed", frozen],
  ["send() refused (queue full or closed)", client.refused],
  ["page errors", errors.length],
];
console.log(`\nauthwire soak: ${seconds} s, a message every ${intervalMs} ms, 3-second tokens, ack mode; faults: drop ${dropP * 100}% of frames, 500 on ${failP * 100}% of refreshes, reject ${rejectP * 100}% of frames, replies delayed up to 200 ms\n`);
console.log("| measure | count |\n|---|---|");
for (const [k, v] of rows) console.log(`| ${k} | ${v} |`);
mkdirSync("target/soak", { recursive: true });
writeFileSync("target/soak/latest.json", JSON.stringify({ date: new Date().toISOString(), seconds, intervalMs, dropP, failP, rejectP, client, server: { ...server, messages: undefined }, auth, lost, duplicated, outOfOrder, stale, frozen }, null, 2));
const ok = lost === 0 && duplicated === 0 && stale === 0 && !outOfOrder && errors.length === 0 && client.refused === 0 && client.auth.status !== "signed_out";
console.log(ok ? "\nsoak: zero lost, zero duplicated, zero stale" : "\nsoak: FAILED");
process.exit(ok ? 0 : 1);
