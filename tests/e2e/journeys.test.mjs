// User journeys in a real browser (AUTHWIRE_ENGINE: Chromium, Firefox or WebKit) against the real dev
// server: the plain <script type="module"> page (with the chat server, then with the agent server that
// reads a token from the URL at connect) and the React app (StrictMode, supabase-js sign-in), each
// chatting across token refreshes and a dropped connection, typed with real key events. Each saves a
// screenshot in target/e2e-artifacts/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, ARTIFACTS, launch, post, chatStats, authStats, eventually, sleep, uniqueEmail, assertCleanLog, signIn } from "./harness.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/** Signs in on the page, chats `count` messages one every `gapMs`, drops the connection after
 *  `dropAt` messages, and checks what the server saw. */
async function journey(page, { email, count, gapMs, dropAt, shot }) {
  await signIn(page, email);
  await page.waitFor("the chat to open", () => document.querySelector("#chat-status")?.textContent === "open");
  const sid = (await page.text("#chat-session")).trim();
  const sent = [];
  for (let i = 0; i < count; i++) {
    if (i === dropAt) await page.click("#chat-drop");
    const text = `message ${i}`;
    await page.type("#chat-input", text);
    await page.press("#chat-input", "ENTER");
    sent.push(text);
    await sleep(gapMs);
  }
  try {
    await eventually("the server to accept every message", 30_000, async () => (await chatStats(sid)).accepted >= count);
    await page.waitFor("a reply to every message", (n) => document.querySelectorAll("#chat-log li.agent").length >= n, [count]);
  } catch (e) {
    await explain(page, sid, email).catch((why) => console.log(`(no report: ${why})`));
    throw e;
  }
  assert.equal(await page.evaluate(() => document.querySelectorAll("#chat-log li.agent").length), count, "one reply per message");
  const stats = await chatStats(sid);
  assert.deepEqual(stats.messages, sent, "every message once, in order");
  assert.equal(stats.stale_tokens, 0, "no frame carried a stale token");
  assert.equal(stats.missing_tokens, 0);
  assert.equal(stats.bad_tokens, 0);
  assert.equal(stats.forced_drops, 1, "the connection was dropped once");
  const snap = await page.evaluate(() => window.authwireDemo.auth());
  assert.ok(snap.refreshCount >= 2, `at least two refreshes, saw ${snap.refreshCount}`);
  assert.equal(snap.status === "signed_in" || snap.status === "refreshing", true, snap.status);
  const server = await authStats(email);
  assert.equal(server.refresh_reused, 0, "no refresh token was used twice");
  // Read while 5-second tokens keep refreshing, so compared within one refresh either way of the
  // counts read just before and just after the server's (one may be on its way).
  const after = (await page.evaluate(() => window.authwireDemo.auth())).refreshCount;
  assert.ok(snap.refreshCount - 1 <= server.refresh_requests && server.refresh_requests <= after + 1, `one request per refresh: ${server.refresh_requests} requests, ${snap.refreshCount}..${after} refreshes`);
  assert.equal(await page.text("#chat-status"), "open");
  assert.ok(Number(await page.text("#chat-reconnects")) >= 1);
  await page.screenshot(`${ARTIFACTS}/${shot}`);
  assertCleanLog(await page.log(), assert);
}

/** What a failed wait leaves to read: the server's view, the page's counters and its event log. */
async function explain(page, sid, email) {
  const report = { chat: await chatStats(sid), auth: await authStats(email) };
  report.page = await page.evaluate(() => ({
    status: document.querySelector("#chat-status")?.textContent,
    counters: ["queued", "sent", "received", "reconnects"].map((k) => `${k} ${document.querySelector(`#chat-${k}`)?.textContent}`),
    events: [...document.querySelectorAll("#events li")].slice(0, 60).map((li) => li.textContent),
    lines: [...document.querySelectorAll("#chat-log li")].map((li) => `${li.className}: ${li.textContent}`),
    auth: window.authwireDemo?.auth(),
    chat: typeof window.authwireDemo?.chat === "function" ? window.authwireDemo.chat() : undefined,
  }));
  report.log = await page.log();
  console.log(JSON.stringify(report, null, 1));
}

test("plain page: sign in, chat across refreshes of 5-second tokens, survive a dropped connection", async () => {
  const email = uniqueEmail("plain");
  await post("/__test/control", { email, ttl_seconds: 5 });
  const page = await browser.newPage();
  await page.goto(`${BASE}/`);
  await journey(page, { email, count: 24, gapMs: 500, dropAt: 12, shot: "plain-journey.png" });
});

test("plain page, agent server (the token checked in the URL at the upgrade): chat across refreshes of 5-second tokens and a drop", async () => {
  // 5-second tokens as in the other journeys (the browser tests run 3-second ones against this route
  // in every engine): a loaded WebKit took up to 2 s to answer a refresh here.
  const email = uniqueEmail("agent");
  await post("/__test/control", { email, ttl_seconds: 5 });
  const page = await browser.newPage();
  await page.goto(`${BASE}/?server=agent`);
  await journey(page, { email, count: 24, gapMs: 500, dropAt: 12, shot: "agent-journey.png" });
  // Every connect (the first, the one after the drop, any after a refresh) carried a fresh token.
  const stats = await chatStats((await page.text("#chat-session")).trim());
  assert.ok(stats.url_connects >= 2, `connected at least twice with a URL token: ${stats.url_connects}`);
  assert.equal(stats.url_refused_stale, 0, "no connection refused for a stale URL token");
  assert.equal(stats.url_refused_bad, 0);
  assert.ok(stats.pongs >= 1, "the server's ping answered");
});

test("React app under StrictMode: supabase-js sign-in, chat across refreshes, survive a dropped connection", async () => {
  const email = uniqueEmail("react");
  await post("/__test/control", { email, ttl_seconds: 5 });
  const page = await browser.newPage();
  await page.goto(`${BASE}/react/`);
  await journey(page, { email, count: 24, gapMs: 500, dropAt: 12, shot: "react-journey.png" });
  // Signing out through supabase-js reaches authwire: the session ends and the chat goes away.
  await page.click("#signout");
  await page.waitFor("the React app to sign out", () => document.querySelector("#status")?.textContent === "signed_out", [], 15_000);
  assert.equal(await page.exists("#chat"), false);
  const log = await page.log();
  assertCleanLog(log, assert);
  const nullPointer = log.console.filter((l) => /null pointer|recursive use|already borrowed/i.test(l));
  assert.deepEqual(nullPointer, [], "StrictMode's double mount never touches a freed object");
});
