// One WebDriver client for the journeys in all three engines: selenium-webdriver talks to a driver
// this file starts itself (chromedriver for Chromium, geckodriver for Firefox ESR, WebKitWebDriver for
// WebKitGTK's MiniBrowser under xvfb-run), so nothing is downloaded and one suite drives them all.
// `AUTHWIRE_ENGINE` (chromium | firefox | webkit) picks the engine.
//
// Input is typed as real key events (React ignores a value set from outside), and every operation on
// a tab switches to that tab first, one at a time: a WebDriver session has one current window.
import { Builder, By, Key } from "selenium-webdriver";
import chrome from "selenium-webdriver/chrome.js";
import firefox from "selenium-webdriver/firefox.js";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ENGINE = process.env.AUTHWIRE_ENGINE ?? "chromium";
const ENGINES = ["chromium", "firefox", "webkit"];
if (!ENGINES.includes(ENGINE)) throw new Error(`AUTHWIRE_ENGINE must be one of ${ENGINES.join(", ")}`);

const DRIVER_START_MS = 60_000;
// Longest any one WebDriver command may take (a page load included); a driver that never answers
// (WebKit's, asked for a screenshot of a hidden page) fails the test instead of hanging it.
const COMMAND_MS = 60_000;

function deadline(ms, what, f) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${ENGINE}: ${what} did not finish within ${ms / 1000} s`)), ms);
  });
  return Promise.race([Promise.resolve().then(f), late]).finally(() => clearTimeout(timer));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts the engine's WebDriver server on a free loopback port and waits until it answers. */
async function startDriver(port) {
  const home = process.env.HOME ?? "/root";
  const commands = {
    chromium: [process.env.CHROMEDRIVER ?? "chromedriver", [`--port=${port}`]],
    firefox: [process.env.GECKODRIVER ?? `${home}/.cargo/bin/geckodriver`, ["--host", "127.0.0.1", "--port", String(port)]],
    // MiniBrowser has no headless mode: it gets a virtual display from Xvfb.
    webkit: ["xvfb-run", ["-a", process.env.SAFARIDRIVER ?? "/usr/bin/WebKitWebDriver", `--port=${port}`]],
  };
  const [cmd, args] = commands[ENGINE];
  const child = spawn(cmd, args, { detached: true, stdio: ["ignore", "ignore", "pipe"] });
  running.add(child);
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  const exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  const end = Date.now() + DRIVER_START_MS;
  for (;;) {
    const status = await fetch(`http://127.0.0.1:${port}/status`).then((r) => r.json()).catch(() => null);
    if (status?.value?.ready !== undefined || status?.status === 0) break;
    const code = await Promise.race([exited, sleep(100).then(() => undefined)]);
    if (code !== undefined) throw new Error(`${cmd} exited (${code}) before answering: ${stderr}`);
    if (Date.now() > end) {
      stop(child);
      throw new Error(`${cmd} did not answer on port ${port} within ${DRIVER_START_MS / 1000} s: ${stderr}`);
    }
  }
  return child;
}

// Drivers run in their own process group (detached, so that stopping one stops its browser and Xvfb
// too); whatever ends this process, they end with it.
const running = new Set();
process.once("exit", () => {
  for (const child of running) stop(child);
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => process.exit(128 + (signal === "SIGINT" ? 2 : 15)));
}

function stop(child) {
  running.delete(child);
  try {
    process.kill(-child.pid, "SIGTERM"); // the whole group: xvfb-run's Xvfb and the browser too
  } catch {
    // already gone
  }
}

function capabilities(profileDir) {
  if (ENGINE === "chromium") {
    const options = new chrome.Options()
      .setChromeBinaryPath(process.env.CHROMIUM ?? "/usr/bin/chromium")
      .addArguments(
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-quic", `--user-data-dir=${profileDir}`, "--window-size=1200,1000",
      );
    return new Builder().forBrowser("chrome").setChromeOptions(options);
  }
  if (ENGINE === "firefox") {
    const options = new firefox.Options()
      .setBinary(process.env.FIREFOX ?? "/usr/bin/firefox-esr")
      .addArguments("-headless", "-width=1200", "-height=1000");
    return new Builder().forBrowser("firefox").setFirefoxOptions(options);
  }
  return new Builder().withCapabilities({
    browserName: "MiniBrowser",
    "webkitgtk:browserOptions": { args: ["--automation"] },
  });
}

/** A browser with one WebDriver session; `newPage()` and `newTab()` open pages in it that share its storage. */
export async function launch() {
  let port;
  let child;
  for (let attempt = 1; !child; attempt++) {
    port = await freePort();
    // The port found free may be taken before the driver binds it: then once more, on another.
    child = await startDriver(port).catch((e) => {
      if (attempt === 3) throw e;
      return null;
    });
  }
  const profileDir = mkdtempSync(join(tmpdir(), `authwire-e2e-${ENGINE}-`));
  let driver;
  try {
    driver = await capabilities(profileDir).usingServer(`http://127.0.0.1:${port}`).build();
    await driver.manage().setTimeouts({ script: 30_000, pageLoad: 60_000 });
  } catch (e) {
    stop(child);
    throw e;
  }
  return new Browser(driver, child, profileDir);
}

class Browser {
  #driver;
  #child;
  #profileDir;
  #current = null;
  #queue = Promise.resolve();
  #fresh; // the window the session started with, handed to the first tab

  constructor(driver, child, profileDir) {
    this.#driver = driver;
    this.#child = child;
    this.#profileDir = profileDir;
    this.#fresh = driver.getWindowHandle();
  }

  /** Runs `op` with `handle` as the session's current window, after every earlier operation. */
  run(handle, op) {
    const next = this.#queue.then(() =>
      deadline(COMMAND_MS, "a WebDriver command", async () => {
        if (handle !== null && this.#current !== handle) {
          await this.#driver.switchTo().window(handle);
          this.#current = handle;
        }
        return op(this.#driver);
      }),
    );
    this.#queue = next.catch(() => {});
    return next;
  }

  /** A page in a window of its own (the session's first window for the first one): visible, as
   *  the page a user works in is. */
  newPage() {
    return this.#open("window");
  }

  /** A page in a new tab of the current window (the session's first window for the first one).
   *  The engine may keep it in the background: WebKit's MiniBrowser leaves a new tab hidden. */
  newTab() {
    return this.#open("tab");
  }

  async #open(type) {
    const handle = await this.run(null, async (driver) => {
      const fresh = await this.#fresh;
      if (fresh) {
        this.#fresh = null;
        return fresh;
      }
      await driver.switchTo().newWindow(type);
      return driver.getWindowHandle();
    });
    this.#current = handle;
    return new Tab(this, handle);
  }

  async close() {
    try {
      await deadline(COMMAND_MS, "closing the browser", () => this.#driver.quit());
    } finally {
      stop(this.#child);
      rmSync(this.#profileDir, { recursive: true, force: true });
    }
  }
}

// Installed after each navigation: what the page writes to the console and what it throws.
const RECORDER = `
  if (!window.__authwireE2e) {
    const log = { console: [], errors: [] };
    window.__authwireE2e = log;
    for (const level of ["log", "info", "warn", "error", "debug"]) {
      const original = console[level].bind(console);
      console[level] = (...args) => {
        try { log.console.push(level + ": " + args.map((a) => typeof a === "string" ? a : JSON.stringify(a) ?? String(a)).join(" ")); }
        catch { log.console.push(level + ": " + args.map(String).join(" ")); }
        original(...args);
      };
    }
    addEventListener("error", (e) => log.errors.push(String(e.error ?? e.message)));
    addEventListener("unhandledrejection", (e) => log.errors.push("unhandled rejection: " + String(e.reason)));
  }`;

class Tab {
  #browser;
  #handle;

  constructor(browser, handle) {
    this.#browser = browser;
    this.#handle = handle;
  }

  #run(op) {
    return this.#browser.run(this.#handle, op);
  }

  /** Loads `url`, then records the page's console and uncaught errors from then on. */
  async goto(url) {
    await this.#run(async (driver) => {
      await driver.get(url);
      await driver.executeScript(RECORDER);
    });
  }

  /** `fn` (a function, its source sent to the page) called in the page with `args`. */
  evaluate(fn, ...args) {
    return this.#run((driver) => driver.executeScript(`return (${fn}).apply(null, arguments);`, ...args));
  }

  /** Waits until `fn(...args)` is truthy in the page, polling every 100 ms, at most `timeoutMs`. */
  async waitFor(what, fn, args = [], timeoutMs = 20_000) {
    const end = Date.now() + timeoutMs;
    for (;;) {
      if (await this.evaluate(fn, ...args)) return;
      if (Date.now() > end) throw new Error(`${ENGINE}: timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(100);
    }
  }

  text(selector) {
    return this.evaluate((s) => document.querySelector(s)?.textContent ?? null, selector);
  }

  exists(selector) {
    return this.evaluate((s) => document.querySelector(s) !== null, selector);
  }

  click(selector) {
    return this.#run(async (driver) => (await driver.findElement(By.css(selector))).click());
  }

  /** Replaces the field's text by typing: select all, delete, then `text` key by key. */
  type(selector, text) {
    return this.#run(async (driver) => {
      const el = await driver.findElement(By.css(selector));
      await el.click();
      await el.sendKeys(Key.chord(Key.CONTROL, "a"), Key.BACK_SPACE);
      await el.sendKeys(text);
    });
  }

  press(selector, key) {
    return this.#run(async (driver) => (await driver.findElement(By.css(selector))).sendKeys(Key[key]));
  }

  /** Ticks or unticks a checkbox by clicking it. */
  setChecked(selector, checked) {
    return this.#run(async (driver) => {
      const el = await driver.findElement(By.css(selector));
      if ((await el.isSelected()) !== checked) await el.click();
    });
  }

  /** What the page logged and threw since it loaded. */
  log() {
    return this.evaluate(() => window.__authwireE2e ?? { console: [], errors: ["the recorder is missing"] });
  }

  /** Saves a screenshot of a visible page (WebKit never answers for a hidden one); says whether. */
  screenshot(path) {
    return this.#run(async (driver) => {
      if ((await driver.executeScript("return document.visibilityState")) !== "visible") return false;
      writeFileSync(path, await driver.takeScreenshot(), "base64");
      return true;
    });
  }
}
