// Three tabs of one browser (AUTHWIRE_ENGINE: Chromium, Firefox or WebKit) share one session: one
// refresh per lead interval in all, no refresh token spent twice, every chat frame with a valid
// token, and one sign-out for all. The tabs are real tabs of one window, so two of them are in the
// background: Firefox and WebKit throttle their timers (a 150 ms timeout fires about 1 s after it
// was set), as in the field; headless Chromium does not.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, ARTIFACTS, launch, post, chatStats, authStats, eventually, sleep, uniqueEmail, assertCleanLog, signIn } from "./harness.mjs";

let browser;
after(async () => {
  await browser?.close();
});

async function threeTabs({ seconds, withoutLocks, shot }) {
  // A fresh browser per journey: its storage starts empty.
  await browser?.close();
  browser = await launch();
  const email = uniqueEmail("tabs");
  await post("/__test/control", { email, ttl_seconds: 5 });
  const pages = [];
  for (let i = 0; i < 3; i++) {
    const page = await browser.newTab();
    await page.goto(`${BASE}/tabs.html${withoutLocks ? "?locks=off" : ""}`);
    if (withoutLocks) assert.equal(await page.evaluate(() => navigator.locks === undefined), true, "Web Locks hidden");
    pages.push(page);
    if (i === 0) {
      await signIn(page, email);
    }
    await page.waitFor(`tab ${i} signed in`, () => window.tabsDemo?.auth().status === "signed_in", [], 15_000);
  }
  const started = Date.now();
  for (const p of pages) {
    await p.waitFor("the chat to open", () => window.tabsDemo.chat()?.status === "open", [], 15_000);
    await p.setChecked("#chatter", true);
  }
  await sleep(seconds * 1000);
  for (const p of pages) await p.setChecked("#chatter", false);

  // Counts are compared at a quiet moment, not while 5-second tokens keep refreshing: the next
  // token lives a minute, and once every tab holds it no refresh is on its way.
  await post("/__test/control", { email, ttl_seconds: 60 });
  const elapsed = (Date.now() - started) / 1000;
  await eventually("a long-lived token in every tab", 20_000, async () => {
    const left = await Promise.all(pages.map((p) => p.evaluate(() => window.tabsDemo.auth().expiresAt - Date.now())));
    return left.every((ms) => ms > 20_000);
  });
  const server = await authStats(email);
  const byTab = await Promise.all(pages.map((p) => p.evaluate(() => window.tabsDemo.auth().refreshCount)));
  // A 5-second token (4 s counted) refreshes at half-life: at most one every 2 s for all tabs
  // together (plus the one in flight at the switch and the long-lived one); one per tab would
  // be three times that.
  assert.equal(server.refresh_reused, 0, "no refresh token spent twice");
  const expected = elapsed / 2;
  assert.ok(server.refresh_requests >= Math.floor(expected * 0.6) && server.refresh_requests <= Math.floor(expected) + 3, `about one refresh per lead interval in all, not three: ${server.refresh_requests} in ${elapsed.toFixed(1)} s`);
  assert.equal(server.refresh_requests, byTab.reduce((a, b) => a + b, 0), `each refresh ran in exactly one tab: ${byTab}`);
  for (const p of pages) {
    const sid = await p.evaluate(() => window.tabsDemo.sessionId);
    const sent = await p.evaluate(() => window.tabsDemo.sent());
    // A hidden tab's 500 ms interval runs about once a second: at least one message per 2 s.
    assert.ok(sent >= seconds / 2, `each tab chatted: ${sent} in ${seconds} s`);
    await eventually("every frame accepted", 20_000, async () => (await chatStats(sid)).accepted >= sent);
    const stats = await chatStats(sid);
    assert.equal(stats.accepted, sent, "every frame accepted, once");
    assert.equal(stats.stale_tokens, 0, "no stale token from any tab");
    assert.equal(stats.missing_tokens + stats.bad_tokens, 0);
  }
  await pages[0].screenshot(`${ARTIFACTS}/${shot}`);

  await pages[1].click("#signout");
  for (const p of pages) {
    await p.waitFor("every tab signed out", () => window.tabsDemo.auth().status === "signed_out", [], 15_000);
  }
  for (const p of pages) assertCleanLog(await p.log(), assert);
}

test("three tabs, 5-second tokens, 30 seconds: one refresh stream, zero reuse, zero stale frames", () =>
  threeTabs({ seconds: 30, withoutLocks: false, shot: "tabs-journey.png" }));

test("the same without Web Locks: refreshes claimed over the BroadcastChannel, zero reuse", () =>
  threeTabs({ seconds: 20, withoutLocks: true, shot: "tabs-without-locks.png" }));
