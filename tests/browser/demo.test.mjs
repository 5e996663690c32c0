// Browser test of the /demo/ page: two headless Chromium pages on a 3-node Herald cluster behind HAProxy.
// Checks cursor latency, one chat order in both pages, and that kill -9 of a page's node loses or doubles no line.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = process.env.HERALD_ROOT || path.resolve(HERE, "..", "..");
const BINARY = process.env.HERALD_BINARY || path.join(ROOT, "build", "release", "herald");
const ARTIFACTS = process.env.HERALD_ARTIFACTS || path.join(os.tmpdir(), "herald-artifacts");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const CLUSTER_SH = path.join(ROOT, "scripts", "cluster.sh");
const HOST = "127.0.0.1";

const CURSOR_BUDGET_MS = 500;
const VIEWPORT_A = { width: 1280, height: 800 };
const VIEWPORT_B = { width: 1100, height: 720 };  // another size: cursors are placed relative to the board

const t0 = performance.now();
function log(text) {
  console.log(`[${((performance.now() - t0) / 1000).toFixed(2)} s] ${text}`);
}

// ---- processes ------------------------------------------------------------------------------------------------------

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return err.code === "EPERM";
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return !"ZX".includes(stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3));
  } catch {
    return false;
  }
}

function bindable(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

// The same rule as tests/integration/cluster_harness.py: BASE..BASE+9 free on loopback, below the ephemeral range.
async function freeBasePort(span = 10, attempts = 200) {
  for (let i = 0; i < attempts; i++) {
    const base = 20000 + Math.floor(Math.random() * (12000 - span));
    let ok = true;
    for (let p = base; p < base + span && ok; p++) ok = await bindable(p);
    if (ok) return base;
  }
  throw new Error(`no free run of ${span} loopback ports found in ${attempts} attempts`);
}

// Runs `cluster.sh down` (and kills Chromium) when this process exits in any way, SIGKILL included: it waits for
// EOF on its stdin, which comes when our end of the pipe closes.
const WATCHDOG = `
cat >/dev/null
if [ -f "$2/chromium.pid" ]; then kill -9 "$(cat "$2/chromium.pid")" 2>/dev/null; fi
bash "$1" down --dir "$2" >/dev/null 2>&1
`;

class Cluster {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "herald-browser-"));
    this.base = null;
    this.live = false;
    this.watchdog = spawn("bash", ["-c", WATCHDOG, "watchdog", CLUSTER_SH, this.dir],
      { stdio: ["pipe", "ignore", "ignore"], detached: true });
    this.watchdog.unref();
    this.watchdog.stdin.unref();
  }

  get lbPort() {
    return this.base;
  }

  pid(name) {
    try {
      return Number.parseInt(fs.readFileSync(path.join(this.dir, `${name}.pid`), "utf8").trim(), 10) || null;
    } catch {
      return null;
    }
  }

  async up() {
    if (!fs.existsSync(BINARY)) throw new Error(`no herald binary at ${BINARY} (set HERALD_BINARY)`);
    this.base = await freeBasePort();
    this.live = true;
    // Output to a file, not a pipe: the background processes inherit cluster.sh's stdout and would hold it open.
    const outPath = path.join(this.dir, "cluster-up.out");
    const out = fs.openSync(outPath, "w");
    const child = spawn("bash", [CLUSTER_SH, "up", "--base-port", String(this.base), "--dir", this.dir,
      "--binary", BINARY], { stdio: ["ignore", out, out] });
    fs.closeSync(out);
    const rc = await new Promise((resolve) => {
      const timer = setTimeout(() => { child.kill("SIGKILL"); resolve("timeout after 60 s"); }, 60_000);
      child.on("exit", (code, signal) => { clearTimeout(timer); resolve(code ?? signal); });
    });
    if (rc !== 0) {
      throw new Error(`cluster.sh up failed (${rc}):\n${fs.readFileSync(outPath, "utf8")}\n${this.logTails()}`);
    }
  }

  down() {
    if (this.live) {
      this.live = false;
      const pids = ["haproxy", "node1", "node2", "node3", "redis"].map((n) => this.pid(n)).filter(Boolean);
      spawnSync("bash", [CLUSTER_SH, "down", "--dir", this.dir], { stdio: "ignore", timeout: 60_000 });
      for (const pid of pids) if (pidAlive(pid)) process.kill(pid, "SIGKILL");
    }
    if (this.watchdog.stdin.writable) this.watchdog.stdin.end();
  }

  logTails(lines = 25) {
    return ["node1", "node2", "node3", "redis", "haproxy"].map((name) => {
      let text;
      try {
        text = fs.readFileSync(path.join(this.dir, `${name}.log`), "utf8").split("\n").slice(-lines).join("\n");
      } catch {
        text = "(no log)";
      }
      return `--- ${name}.log (tail) ---\n${text}`;
    }).join("\n");
  }
}

// ---- page helpers ---------------------------------------------------------------------------------------------------

// Polls on DOM mutations by default (precise for timings); "raf" where layout moves without mutations.
async function waitFor(page, label, what, fn, arg, timeout, polling = "mutation") {
  try {
    await page.waitForFunction(fn, { timeout, polling }, arg);
  } catch (err) {
    const seen = await page.evaluate(() => ({
      state: document.querySelector("[data-state]")?.dataset.state,
      node: document.querySelector("[data-node]")?.dataset.node,
      ready: document.documentElement.dataset.ready,
      lines: document.querySelectorAll("[data-chat-line]").length,
      notice: document.getElementById("notice")?.textContent,
    })).catch((e) => `(page unreadable: ${e.message})`);
    throw new Error(`page ${label}: expected ${what} within ${timeout} ms; page shows ${JSON.stringify(seen)} ` +
      `(${err.message.split("\n")[0]})`);
  }
}

function chatLines(page) {
  return page.$$eval("[data-chat-line]", (els) => els.map((el) => ({
    serial: Number(el.dataset.serial),
    name: el.querySelector(".who")?.textContent,
    text: el.querySelector(".text")?.textContent,
  })));
}

function chatCounters(page) {
  return page.$eval("#chat", (el) => ({ duplicates: el.dataset.duplicates, gaps: el.dataset.gaps }));
}

async function waitForTexts(page, label, texts, timeout) {
  await waitFor(page, label, `chat lines ${JSON.stringify(texts)}`, (wanted) => {
    const have = new Set(Array.from(document.querySelectorAll("[data-chat-line] .text"), (el) => el.textContent));
    return wanted.every((t) => have.has(t));
  }, texts, timeout);
}

async function say(page, text) {
  await page.type("#chat-input", text);
  await page.keyboard.press("Enter");
}

function boardBox(page) {
  return page.$eval("#board", (el) => {
    const r = el.getBoundingClientRect();
    return { x: r.left, y: r.top, width: r.width, height: r.height };
  });
}

// Where page `page` draws the cursor named `name`, as fractions of its own board.
function cursorFraction(page, name) {
  return page.$eval(`[data-cursor="${name}"]`, (el) => {
    const board = document.getElementById("board").getBoundingClientRect();
    const c = el.getBoundingClientRect();
    return { x: (c.left - board.left) / board.width, y: (c.top - board.top) / board.height };
  });
}

function assertContiguous(label, lines) {
  for (let i = 1; i < lines.length; i++) {
    assert.equal(lines[i].serial, lines[i - 1].serial + 1,
      `${label}: serials must go up by exactly 1, but line #${i} has ${lines[i].serial} after ` +
      `${lines[i - 1].serial}: ${JSON.stringify(lines.map((l) => l.serial))}`);
  }
}

// ---- the test -------------------------------------------------------------------------------------------------------

test("demo page: cursors, chat order, and no lost or doubled line when a node is killed", { timeout: 150_000 },
  async (t) => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const cluster = new Cluster();
    const onSignal = (sig) => { cluster.down(); process.kill(process.pid, sig); };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    process.once("exit", () => cluster.down());
    const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "herald-chromium-"));
    let browser = null;
    let failed = true;
    t.after(async () => {
      if (browser) await browser.close().catch(() => {});
      if (failed) console.log(`cluster logs (kept in ${cluster.dir}):\n${cluster.logTails(30)}`);
      cluster.down();
      fs.rmSync(userDataDir, { recursive: true, force: true });
      if (!failed) fs.rmSync(cluster.dir, { recursive: true, force: true });
    });

    await cluster.up();
    log(`cluster up: HAProxy on ${HOST}:${cluster.lbPort}, files in ${cluster.dir}`);

    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      userDataDir,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"],
    });
    fs.writeFileSync(path.join(cluster.dir, "chromium.pid"), `${browser.process().pid}\n`);
    log(`browser: ${await browser.version()}`);

    // Console errors and uncaught exceptions of every page; the ones during the outage are judged separately.
    const problems = [];
    let phase = "normal";
    async function openPage(name, viewport) {
      const context = await browser.createBrowserContext();
      const page = await context.newPage();
      page.on("console", (msg) => {
        if (msg.type() === "error") problems.push({ page: name, phase, text: msg.text() });
      });
      page.on("pageerror", (err) => problems.push({ page: name, phase, text: `uncaught: ${err.message}` }));
      await page.setViewport(viewport);
      const url = `http://${HOST}:${cluster.lbPort}/demo/?name=${encodeURIComponent(name)}`;
      const response = await page.goto(url, { waitUntil: "load", timeout: 15_000 });
      assert.equal(response.status(), 200, `GET ${url}: expected 200, got ${response.status()}`);
      await waitFor(page, name, "data-state=connected and both channels subscribed",
        () => document.documentElement.dataset.ready === "true" &&
          document.querySelector("[data-state]").dataset.state === "connected", undefined, 15_000);
      return page;
    }

    const tOpen = performance.now();
    const [pageA, pageB] = await Promise.all([openPage("A", VIEWPORT_A), openPage("B", VIEWPORT_B)]);
    const node = (page) => page.$eval("[data-node]", (el) => el.dataset.node);
    log(`timing: both pages connected and subscribed in ${(performance.now() - tOpen).toFixed(0)} ms ` +
      `(A on ${await node(pageA)}, B on ${await node(pageB)})`);
    for (const [label, page] of [["A", pageA], ["B", pageB]]) {
      const me = await page.$eval("#me", (el) => el.textContent);
      assert.equal(me, label, `page ${label}: ?name=${label} should name the user; the page says ${JSON.stringify(me)}`);
    }

    // -- 1. A's pointer shows up in B ------------------------------------------------------------------------------
    const boxA = await boardBox(pageA);
    const target = { x: 0.4, y: 0.55 };
    const tMove = performance.now();
    await pageA.mouse.move(boxA.x + boxA.width * target.x, boxA.y + boxA.height * target.y);
    await waitFor(pageB, "B", `[data-cursor="A"] within ${CURSOR_BUDGET_MS} ms (measured with slack)`,
      () => document.querySelector('[data-cursor="A"]') !== null, undefined, 5_000);
    const cursorMs = performance.now() - tMove;
    log(`timing: A's cursor drawn in B ${cursorMs.toFixed(0)} ms after the mouse moved in A`);
    assert.ok(cursorMs < CURSOR_BUDGET_MS,
      `B should draw A's cursor within ${CURSOR_BUDGET_MS} ms of the move; it took ${cursorMs.toFixed(0)} ms`);
    // Same spot on a board of another size (B's viewport differs), once the transition has settled.
    await waitFor(pageB, "B", `A's cursor near (${target.x}, ${target.y}) of the board`, (want) => {
      const el = document.querySelector('[data-cursor="A"]');
      const board = document.getElementById("board").getBoundingClientRect();
      const c = el?.getBoundingClientRect();
      return !!c && Math.abs((c.left - board.left) / board.width - want.x) < 0.01 &&
        Math.abs((c.top - board.top) / board.height - want.y) < 0.01;
    }, target, 3_000, "raf");
    log(`A's cursor in B at ${JSON.stringify(await cursorFraction(pageB, "A"))} of B's board (A moved to ` +
      `${JSON.stringify(target)} of A's ${boxA.width.toFixed(0)}×${boxA.height.toFixed(0)} board)`);
    assert.equal(await pageA.$('[data-cursor="A"]'), null, "page A should not draw its own cursor");

    // -- 2. chat typed in both pages: the same lines in the same order in both ------------------------------------
    const typed = [];
    const tChat = performance.now();
    await Promise.all(["A", "B"].map(async (who) => {
      const page = who === "A" ? pageA : pageB;
      for (let i = 1; i <= 4; i++) {
        const text = `${who} says hello #${i}`;
        typed.push(text);
        await say(page, text);
      }
    }));
    await Promise.all([waitForTexts(pageA, "A", typed, 10_000), waitForTexts(pageB, "B", typed, 10_000)]);
    log(`timing: ${typed.length} lines typed in two pages shown in both after ${(performance.now() - tChat).toFixed(0)} ms`);
    {
      const [linesA, linesB] = await Promise.all([chatLines(pageA), chatLines(pageB)]);
      assert.deepEqual(linesB, linesA, "pages A and B should show the same chat lines in the same order");
      assertContiguous("page A", linesA);
      assert.deepEqual(linesA.map((l) => l.text).sort(), [...typed].sort(),
        "each typed line should appear exactly once");
      for (const l of linesA) {
        assert.equal(l.name, l.text[0], `line ${JSON.stringify(l)} should carry its sender's name`);
      }
      log(`chat order: ${linesA.map((l) => `${l.serial}:${l.name}`).join(" ")}`);
    }

    // -- 3. kill -9 the node A is on; B keeps typing; A comes back by itself; nothing lost or doubled ------------
    const killed = await node(pageA);
    assert.match(killed, /^node[123]$/, `page A should show the node name (node1..node3); it shows ${killed}`);
    const pid = cluster.pid(killed);
    assert.ok(pid && pidAlive(pid), `${killed} should be running (pid file ${cluster.dir}/${killed}.pid: ${pid})`);
    const onSameNode = (await node(pageB)) === killed;
    const recordStates = () => {
      const el = document.querySelector("[data-state]");
      window.__states = [];
      new MutationObserver(() => window.__states.push(el.dataset.state))
        .observe(el, { attributes: true, attributeFilter: ["data-state"] });
    };
    await Promise.all([pageA.evaluate(recordStates), pageB.evaluate(recordStates)]);

    phase = "outage";
    process.kill(pid, "SIGKILL");
    const tKill = performance.now();
    log(`killed ${killed} (pid ${pid}) with SIGKILL; page B is ${onSameNode ? "on the same node" : "elsewhere"}`);

    const typedDuring = [];
    const typingInB = (async () => {
      for (let i = 1; i <= 6; i++) {
        const text = `B during the outage #${i}`;
        typedDuring.push(text);
        await say(pageB, text);
        await new Promise((r) => setTimeout(r, 250));  // pacing across the outage, not a timing assertion
      }
    })();
    await waitFor(pageA, "A", "data-state to leave `connected` and come back to `connected` by itself",
      () => window.__states.some((s) => s !== "connected") &&
        document.querySelector("[data-state]").dataset.state === "connected", undefined, 30_000);
    const reconnectMs = performance.now() - tKill;
    await typingInB;
    const nodeAfter = await node(pageA);
    const statesA = await pageA.evaluate(() => window.__states);
    log(`timing: page A back to connected ${reconnectMs.toFixed(0)} ms after the kill, now on ${nodeAfter} ` +
      `(states ${statesA.join(" → ")})`);
    assert.notEqual(nodeAfter, killed, `page A should now be on a live node, but it shows the killed ${killed}`);
    if (onSameNode) {
      await waitFor(pageB, "B", "data-state back to `connected`",
        () => document.querySelector("[data-state]").dataset.state === "connected", undefined, 30_000);
    }
    phase = "normal";

    const typedAfter = ["A after the outage #1", "B after the outage #1", "A after the outage #2"];
    for (const text of typedAfter) await say(text[0] === "A" ? pageA : pageB, text);
    const all = [...typed, ...typedDuring, ...typedAfter];
    const tSettle = performance.now();
    await Promise.all([waitForTexts(pageA, "A", all, 20_000), waitForTexts(pageB, "B", all, 20_000)]);
    log(`timing: all ${all.length} lines in both pages ${(performance.now() - tSettle).toFixed(0)} ms after the last ` +
      `was typed`);
    {
      const [linesA, linesB] = await Promise.all([chatLines(pageA), chatLines(pageB)]);
      assert.deepEqual(linesB, linesA, "after the failover, pages A and B should show exactly the same chat lines");
      assertContiguous("page A after the failover", linesA);
      assert.equal(linesA[0].serial, 1, `the chat should start at serial 1 on a fresh cluster: ${linesA[0].serial}`);
      assert.deepEqual(linesA.map((l) => l.text).sort(), [...all].sort(),
        "each typed line should appear exactly once, none lost and none doubled");
      for (const [label, page] of [["A", pageA], ["B", pageB]]) {
        assert.deepEqual(await chatCounters(page), { duplicates: "0", gaps: "0" },
          `page ${label} should have received no repeated and no missing serial from the SDK`);
      }
      log(`after the failover: ${linesA.length} lines, serials ${linesA[0].serial}..${linesA.at(-1).serial}`);
    }

    // -- 4. a newcomer sees the same history ------------------------------------------------------------------------
    const tLate = performance.now();
    const pageC = await openPage("C", VIEWPORT_B);
    {
      const [linesA, linesC] = await Promise.all([chatLines(pageA), chatLines(pageC)]);
      assert.deepEqual(linesC, linesA, "a page opened later should show the same lines from history");
      log(`timing: a third page showed the ${linesC.length}-line history ${(performance.now() - tLate).toFixed(0)} ms ` +
        `after it was opened`);
      await pageC.browserContext().close();
    }

    // -- 5. screenshots, each page showing the other's cursor ------------------------------------------------------
    const boxB = await boardBox(pageB);
    await pageA.mouse.move(boxA.x + boxA.width * 0.3, boxA.y + boxA.height * 0.35, { steps: 4 });
    await pageB.mouse.move(boxB.x + boxB.width * 0.62, boxB.y + boxB.height * 0.6, { steps: 4 });
    await Promise.all([
      waitFor(pageA, "A", '[data-cursor="B"]', () => !!document.querySelector('[data-cursor="B"]'), undefined, 5_000),
      waitFor(pageB, "B", '[data-cursor="A"]', () => !!document.querySelector('[data-cursor="A"]'), undefined, 5_000),
    ]);
    await new Promise((r) => setTimeout(r, 150));  // let the cursor transitions finish before the picture
    await pageA.screenshot({ path: path.join(ARTIFACTS, "demo-a.png") });
    await pageB.screenshot({ path: path.join(ARTIFACTS, "demo-b.png") });
    log(`screenshots: ${path.join(ARTIFACTS, "demo-a.png")}, ${path.join(ARTIFACTS, "demo-b.png")}`);

    // -- 6. no errors from the page's own code; during the outage only the browser's WebSocket failures ---------
    const unexpected = problems.filter((p) => p.phase !== "outage" || !/WebSocket connection to .* failed/.test(p.text));
    for (const p of problems) log(`console error (${p.phase}) in ${p.page}: ${p.text}`);
    assert.deepEqual(unexpected, [], "the pages should log no console errors and throw no uncaught exceptions");
    failed = false;
  });
