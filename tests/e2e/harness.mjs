// Shared by the end-to-end suites: the dev server's URL, its counters and switches, and the browser
// (tests/e2e/browser.mjs: one WebDriver client for Chromium, Firefox and WebKit).
import { mkdirSync } from "node:fs";
import { ENGINE } from "./browser.mjs";

export { launch, ENGINE } from "./browser.mjs";
export const BASE = process.env.AUTHWIRE_SERVER_URL;
if (!BASE) throw new Error("AUTHWIRE_SERVER_URL must name the running dev server (scripts/test.sh sets it)");
export const ARTIFACTS = `${process.env.AUTHWIRE_ARTIFACTS ?? "target/e2e-artifacts"}/${ENGINE}`;
mkdirSync(ARTIFACTS, { recursive: true });

export async function post(path, body) {
  const res = await fetch(`${BASE}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
}

export async function getJson(path) {
  const res = await fetch(`${BASE}${path}`);
  return res.json();
}

export const chatStats = (sid) => getJson(`/__test/chat?session_id=${encodeURIComponent(sid)}`);
export const authStats = (email) => getJson(`/__test/stats?email=${encodeURIComponent(email)}`);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function eventually(what, timeoutMs, cond) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Signs in through the page's form once the page has enabled it (a page's module may still be
 *  compiling its wasm after the load event: WebKit's is slow enough for a click to land first). */
export async function signIn(page, email) {
  await page.waitFor("the sign-in form to be ready", () => {
    const b = document.querySelector("#signin-button");
    return b !== null && !b.disabled;
  });
  await page.type("#email", email);
  await page.click("#signin-button");
}

/** A test user unique to this run and engine. */
export const uniqueEmail = (what) => `${what}-${ENGINE}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@e2e.authwire.dev`;

/** No uncaught error and no token in what the page logged. */
export function assertCleanLog(log, assert) {
  assert.deepEqual(log.errors, [], "no uncaught error on the page");
  const leaked = log.console.filter((l) => /eyJ[A-Za-z0-9_-]{10,}/.test(l));
  assert.deepEqual(leaked, [], "no token in the console");
}
