// Repeats the bench's memory step (10,000 ChatSocket create/open/send/close/free cycles, then
// 100,000 sends) on fresh pages of one browser context, probing each page every 15 s. It
// reproduced a stop (README, Bench): Chromium keeps two file descriptors per closed WebSocket in
// the renderer until a garbage collection, and at the renderer's open-files limit one connection
// fails ("WebSocket connection ... failed:") and the renderer exits, so the page stops answering.
// The memory step (and --raw's loop here) now collect every 500 cycles. To see the stop, lower the
// limit (`ulimit -n 3000` before running) and drop the collections. With --raw, the same cycles
// with plain WebSockets (no authwire).
//   source scripts/dev-server.sh && start_dev_server release --token-ttl 3600 && \
//     node bench/cycles.mjs [--raw] [--runs N]   (start_dev_server exports AUTHWIRE_SERVER_URL)
import { chromium } from "playwright-core";
import { within } from "./within.mjs";

const BASE = process.env.AUTHWIRE_SERVER_URL;
if (!BASE) throw new Error("AUTHWIRE_SERVER_URL must name the running dev server");
const raw = process.argv.includes("--raw");
const at = process.argv.indexOf("--runs");
const runs = at > 0 ? Number(process.argv[at + 1]) : 3;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--enable-precise-memory-info", "--js-flags=--expose-gc"],
});
const context = await browser.newContext();
let failed = 0;
for (let k = 0; k < runs; k++) {
  const p = await context.newPage();
  p.on("console", (m) => console.log(`page ${k} console:`, m.text()));
  p.on("pageerror", (e) => console.log(`page ${k} error:`, String(e.stack ?? e).slice(0, 2000)));
  p.on("crash", () => console.log(`page ${k} crashed`));
  await p.goto(`${BASE}/bench.html`);
  await p.waitForFunction(() => window.benchReady === true);
  const t0 = Date.now();
  let done = false;
  const probes = (async () => {
    while (!done) {
      await new Promise((r) => setTimeout(r, 15_000));
      if (done) break;
      const probe = await within(p.evaluate(() => performance.now()), 5_000, "does not answer within 5 s").then(
        (now) => `answers (page time ${Math.round(now)} ms)`,
        (e) => e.message,
      );
      console.log(`page ${k}, ${Math.round((Date.now() - t0) / 1000)} s:`, probe);
    }
  })();
  const work = raw
    ? p.evaluate(async (n) => {
        const url = `ws://${location.host}/ws/sink`;
        for (let i = 0; i < n; i++) {
          if (i % 500 === 499) globalThis.gc(); // as bench.memory does (Chromium runs with --expose-gc)
          await new Promise((resolve) => {
            const open = () => {
              const ws = new WebSocket(url);
              ws.onopen = () => (ws.send(JSON.stringify({ prompt: "x" })), ws.close(), resolve());
              ws.onerror = () => setTimeout(open, 100);
            };
            open();
          });
        }
        return { cycles: n };
      }, 10_000)
    : p.evaluate(([c, s, w]) => window.bench.memory(c, s, w), [10_000, 100_000, 500]);
  try {
    const result = await within(work, 300_000, "not finished within 5 minutes");
    console.log(`page ${k}: ok in ${Date.now() - t0} ms`, JSON.stringify(result));
  } catch (e) {
    failed++;
    console.log(`page ${k}: FAILED after ${Date.now() - t0} ms:`, String(e).slice(0, 600));
  }
  work.catch(() => {}); // a page closed while its work is pending rejects it
  done = true;
  await probes;
  await p.close().catch(() => {});
}
await browser.close();
process.exit(failed ? 1 : 0);
