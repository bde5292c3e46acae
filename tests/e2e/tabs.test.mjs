// Three pages of one browser context share one session: one refresh per lead interval in all,
// no refresh token spent twice, every chat frame with a valid token, and one sign-out for all.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, ARTIFACTS, launch, post, chatStats, authStats, recordPage, sleep } from "./harness.mjs";

let browser;
after(async () => {
  await browser?.close();
});

async function threeTabs({ seconds, withoutLocks, shot }) {
  browser ??= await launch();
  const context = await browser.newContext();
  if (withoutLocks) {
    // A browser without Web Locks: the tabs fall back to claiming refreshes on the BroadcastChannel.
    await context.addInitScript(() => Object.defineProperty(Navigator.prototype, "locks", { get: () => undefined }));
  }
  const email = `tabs-${Date.now()}@e2e.authwire.dev`;
  await post("/__test/control", { email, ttl_seconds: 5 });
  const pages = [];
  const logs = [];
  for (let i = 0; i < 3; i++) {
    const page = await context.newPage();
    logs.push(recordPage(page));
    await page.goto(`${BASE}/tabs.html`);
    pages.push(page);
    if (i === 0) {
      await page.fill("#email", email);
      await page.click("#signin-button");
    }
    await page.waitForFunction(() => window.tabsDemo?.auth().status === "signed_in", null, { timeout: 5_000 });
  }
  for (const p of pages) {
    await p.waitForFunction(() => window.tabsDemo.chat()?.status === "open", null, { timeout: 5_000 });
    await p.check("#chatter");
  }
  await sleep(seconds * 1000);
  for (const p of pages) await p.uncheck("#chatter");
  await sleep(1_500);

  const server = await authStats(email);
  const byTab = await Promise.all(pages.map((p) => p.evaluate(() => window.tabsDemo.auth().refreshCount)));
  // A 5-second token (4 s counted) refreshes at half-life: about one every 2 s for all tabs together.
  assert.equal(server.refresh_reused, 0, "no refresh token spent twice");
  const expected = seconds / 2;
  assert.ok(server.refresh_requests >= expected * 0.6 && server.refresh_requests <= expected * 1.4, `about one refresh per lead interval in all, not three: ${server.refresh_requests}`);
  assert.equal(server.refresh_requests, byTab.reduce((a, b) => a + b, 0), `each refresh ran in exactly one tab: ${byTab}`);
  for (const p of pages) {
    const sid = await p.evaluate(() => window.tabsDemo.sessionId);
    const sent = await p.evaluate(() => window.tabsDemo.sent());
    const stats = await chatStats(sid);
    assert.ok(sent >= seconds, `each tab chatted: ${sent}`);
    assert.equal(stats.accepted, sent, "every frame accepted");
    assert.equal(stats.stale_tokens, 0, "no stale token from any tab");
    assert.equal(stats.missing_tokens + stats.bad_tokens, 0);
  }
  await pages[0].screenshot({ path: `${ARTIFACTS}/${shot}`, fullPage: true });

  await pages[1].click("#signout");
  for (const p of pages) {
    await p.waitForFunction(() => window.tabsDemo.auth().status === "signed_out", null, { timeout: 3_000 });
  }
  for (const log of logs) assert.deepEqual(log.errors, []);
  await context.close();
}

test("three tabs, 5-second tokens, 30 seconds: one refresh stream, zero reuse, zero stale frames", () =>
  threeTabs({ seconds: 30, withoutLocks: false, shot: "tabs-journey.png" }));

test("the same without Web Locks: refreshes claimed over the BroadcastChannel, zero reuse", () =>
  threeTabs({ seconds: 20, withoutLocks: true, shot: "tabs-without-locks.png" }));
