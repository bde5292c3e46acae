// Shared by the end-to-end suites: Debian's Chromium through playwright-core, the dev server's
// URL, its counters and switches.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

export const BASE = process.env.AUTHWIRE_SERVER_URL;
if (!BASE) throw new Error("AUTHWIRE_SERVER_URL must name the running dev server (scripts/test.sh sets it)");
export const ARTIFACTS = process.env.AUTHWIRE_ARTIFACTS ?? "target/e2e-artifacts";
mkdirSync(ARTIFACTS, { recursive: true });

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    ],
  });
}

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

/** Everything a page says: console lines and uncaught errors. */
export function recordPage(page) {
  const log = { console: [], errors: [] };
  page.on("console", (m) => log.console.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => log.errors.push(String(e)));
  return log;
}
