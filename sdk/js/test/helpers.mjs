// Test helpers for the SDK suite: start the real herald binary (one node, or the 3-node cluster of scripts/cluster.sh
// behind HAProxy), a TCP proxy that can cut connections and log their WebSocket frames, and small waiting utilities.
// Every process started here is stopped on teardown, at process exit, and by a watchdog if this process is killed.
import { spawn, execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const HOST = "127.0.0.1";
const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = process.env.HERALD_ROOT || path.resolve(here, "..", "..", "..");
export const BINARY = process.env.HERALD_BINARY || path.join(ROOT, "build", "release", "herald");
export const ARTIFACTS = process.env.HERALD_ARTIFACTS || path.join(os.tmpdir(), "herald-artifacts");
const CLUSTER_SH = path.join(ROOT, "scripts", "cluster.sh");

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- cleanup on every exit path ---------------------------------------------------------------------------------

const exitCleanups = new Set(); // synchronous functions: run at process exit if teardown did not

function runExitCleanups() {
  for (const fn of [...exitCleanups]) {
    try { fn(); } catch { /* keep going */ }
  }
  exitCleanups.clear();
}
process.on("exit", runExitCleanups);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(signal, () => { runExitCleanups(); process.exit(128 + os.constants.signals[signal]); });
}

// A detached shell that runs `script` once this process is gone however it went (stdin reaches EOF): the last
// line of defence against a test runner that SIGKILLs us mid-test.
function startWatchdog(script) {
  const dog = spawn("bash", ["-c", `cat >/dev/null; ${script}`], {
    stdio: ["pipe", "ignore", "ignore"], detached: true,
  });
  dog.unref();
  dog.stdin.on("error", () => {});
  if (dog.stdin._handle && dog.stdin._handle.unref) dog.stdin._handle.unref();
  return {
    disarm() {
      try { process.kill(dog.pid, "SIGKILL"); } catch { /* gone */ }
    },
  };
}

function alive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

function signalPid(pid, sig) {
  try { process.kill(pid, sig); return true; } catch { return false; }
}

// ---- ports ------------------------------------------------------------------------------------------------------

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function portsFree(base, span) {
  const servers = [];
  try {
    for (let p = base; p < base + span; p++) {
      await new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.once("error", reject);
        srv.listen(p, HOST, () => resolve());
        servers.push(srv);
      });
    }
    return true;
  } catch {
    return false;
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => (s.listening ? s.close(() => r()) : r()))));
  }
}

// Same rule as tests/integration/cluster_harness.py: a run of free ports below the Linux ephemeral range.
export async function freeBasePort(span = 10) {
  for (let i = 0; i < 200; i++) {
    const base = 20000 + Math.floor(Math.random() * (32000 - span - 20000));
    if (await portsFree(base, span)) return base;
  }
  throw new Error(`no free run of ${span} loopback ports found`);
}

// ---- HTTP -------------------------------------------------------------------------------------------------------

export async function httpGet(port, pathname, timeoutMs = 5000) {
  const res = await fetch(`http://${HOST}:${port}${pathname}`, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, text: await res.text() };
}

export async function apiPublish(port, channel, data, key) {
  const body = { channel, data };
  if (key !== undefined) body.key = key;
  const res = await fetch(`http://${HOST}:${port}/api/publish`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`POST /api/publish on :${port}: expected 200, got ${res.status} ${text}`);
  return JSON.parse(text);
}

export async function apiHistory(port, channel, since = 0, limit = 1000) {
  const r = await httpGet(port, `/api/history?channel=${encodeURIComponent(channel)}&since=${since}&limit=${limit}`);
  if (r.status !== 200) throw new Error(`GET /api/history on :${port}: expected 200, got ${r.status} ${r.text}`);
  return JSON.parse(r.text);
}

/** Sum of the samples of `name` whose labels include `labels` (0 when there is none). */
export function metricValue(text, name, labels = {}) {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = {};
    for (const part of (m[3] || "").matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) have[part[1]] = part[2];
    if (Object.entries(labels).every(([k, v]) => have[k] === String(v))) sum += Number(m[4]);
  }
  return sum;
}

export async function metric(port, name, labels) {
  const r = await httpGet(port, "/metrics");
  if (r.status !== 200) throw new Error(`GET /metrics on :${port}: expected 200, got ${r.status}`);
  return metricValue(r.text, name, labels);
}

// ---- waiting ----------------------------------------------------------------------------------------------------

/** Polls `predicate` every 10 ms; throws with `describe()` after `timeoutMs`. */
export async function waitFor(predicate, timeoutMs, describe) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) {
      const what = typeof describe === "function" ? describe() : describe;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await sleep(10);
  }
}

/** Records every `state` event of a client with a monotonic timestamp (ms). */
export function recordStates(client) {
  const events = [];
  client.on("state", (state, info) => events.push({ state, info, t: performance.now() }));
  return events;
}

/** Describes the first place where `got` differs from 1..n (gaps, duplicates, disorder). */
export function checkSequence(got, n) {
  const problems = [];
  const seen = new Set();
  const dups = [];
  for (const s of got) {
    if (seen.has(s)) dups.push(s);
    seen.add(s);
  }
  const missing = [];
  for (let s = 1; s <= n; s++) if (!seen.has(s)) missing.push(s);
  if (dups.length) problems.push(`duplicates: ${dups.slice(0, 10).join(",")}${dups.length > 10 ? "…" : ""} (${dups.length})`);
  if (missing.length) problems.push(`missing: ${missing.slice(0, 10).join(",")}${missing.length > 10 ? "…" : ""} (${missing.length})`);
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== i + 1) {
      problems.push(`first difference at #${i + 1}: expected ${i + 1}, got ${got[i]} (around: ${got.slice(Math.max(0, i - 3), i + 4).join(",")})`);
      break;
    }
  }
  if (got.length !== n) problems.push(`expected ${n} messages, got ${got.length}`);
  return problems.length ? problems.join("; ") : null;
}

// ---- tokens -----------------------------------------------------------------------------------------------------

const b64url = (buf) => Buffer.from(buf).toString("base64url");

/** An HS256 JWT signed with `secret`. */
export function mintJwt(secret, claims) {
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const payload = b64url(JSON.stringify(claims));
  const sig = createHmac("sha256", secret).update(`${header}.${payload}`).digest("base64url");
  return `${header}.${payload}.${sig}`;
}

// ---- one herald node ----------------------------------------------------------------------------------------------

function tail(file, lines = 30) {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-lines).join("\n") || "(empty)";
  } catch {
    return "(no log)";
  }
}

/** Starts `herald --listen 127.0.0.1:PORT --log-level warn <flags>` and waits for /healthz. */
export async function startHerald(flags = [], { port } = {}) {
  if (!fs.existsSync(BINARY)) throw new Error(`no herald binary at ${BINARY} (set HERALD_BINARY)`);
  port = port || (await freePort());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "herald-sdk-js-"));
  const logFile = path.join(dir, "herald.log");
  const log = fs.openSync(logFile, "w");
  const args = ["--listen", `${HOST}:${port}`, "--log-level", "warn", ...flags.map(String)];
  const proc = spawn(BINARY, args, { stdio: ["ignore", log, log] });
  fs.closeSync(log);
  const pid = proc.pid;
  let exited = null;
  proc.on("exit", (code, signal) => { exited = { code, signal }; });
  const dog = startWatchdog(`kill -CONT ${pid} 2>/dev/null; kill -KILL ${pid} 2>/dev/null`);
  const hardStop = () => { signalPid(pid, "SIGCONT"); signalPid(pid, "SIGKILL"); dog.disarm(); };
  exitCleanups.add(hardStop);

  const server = {
    port, pid, proc, dir, args,
    url: `ws://${HOST}:${port}/ws`,
    logTail: (n) => tail(logFile, n),
    get exited() { return exited; },
    signal(sig) {
      if (!signalPid(pid, sig)) throw new Error(`cannot send ${sig} to herald pid ${pid}`);
    },
    metric: (name, labels) => metric(port, name, labels),
    publish: (channel, data, key) => apiPublish(port, channel, data, key),
    history: (channel, since, limit) => apiHistory(port, channel, since, limit),
    async stop() {
      exitCleanups.delete(hardStop);
      if (exited === null && alive(pid)) {
        signalPid(pid, "SIGCONT");
        signalPid(pid, "SIGKILL");
        await waitFor(() => exited !== null || !alive(pid), 10000, `herald pid ${pid} to exit`);
      }
      dog.disarm();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor(async () => {
      if (exited) throw new Error(`herald exited early (${JSON.stringify(exited)}):\n${tail(logFile)}`);
      try { return (await httpGet(port, "/healthz", 1000)).status === 200; } catch { return false; }
    }, 15000, `herald on :${port} to answer /healthz`);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

// ---- the cluster --------------------------------------------------------------------------------------------------

/** scripts/cluster.sh up: Redis, node1..3 on BASE+1..3, HAProxy on BASE. */
export async function startCluster(flags = []) {
  for (const tool of ["redis-server", "redis-cli", "haproxy", "curl"]) {
    try { execFileSync("which", [tool], { stdio: "ignore" }); } catch {
      throw new Error(`the cluster tests need ${tool} on PATH (apt-get install redis-server redis-tools haproxy curl)`);
    }
  }
  const base = await freeBasePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "herald-sdk-cluster-"));
  const downSync = () => {
    try {
      execFileSync("bash", [CLUSTER_SH, "down", "--dir", dir], { stdio: "ignore", timeout: 60000 });
    } catch { /* best effort */ }
    for (const name of ["haproxy", "node1", "node2", "node3", "redis"]) {
      for (const pid of seen[name] || []) if (alive(pid)) { signalPid(pid, "SIGCONT"); signalPid(pid, "SIGKILL"); }
    }
  };
  const seen = {};
  const pidOf = (name) => {
    try {
      const pid = Number(fs.readFileSync(path.join(dir, `${name}.pid`), "utf8").trim());
      if (pid) (seen[name] ||= new Set()).add(pid);
      return pid || null;
    } catch {
      return null;
    }
  };
  const rememberPids = () => { for (const n of ["haproxy", "node1", "node2", "node3", "redis"]) pidOf(n); };
  const dog = startWatchdog(
    `for n in node1 node2 node3; do [ -f '${dir}'/$n.pid ] && kill -CONT "$(cat '${dir}'/$n.pid)" 2>/dev/null; done; ` +
    `bash '${CLUSTER_SH}' down --dir '${dir}' >/dev/null 2>&1`);
  const hardStop = () => { rememberPids(); downSync(); dog.disarm(); };
  exitCleanups.add(hardStop);

  const cluster = {
    base, dir,
    lbPort: base,
    lbUrl: `ws://${HOST}:${base}/ws`,
    nodePort: (name) => base + Number(String(name).replace(/\D/g, "")),
    pid: pidOf,
    logTails(lines = 20) {
      return ["node1", "node2", "node3", "haproxy", "redis"]
        .map((n) => `--- ${n}.log ---\n${tail(path.join(dir, `${n}.log`), lines)}`).join("\n");
    },
    signal(name, sig) {
      const pid = pidOf(name);
      if (!pid || !alive(pid)) throw new Error(`${name} (pid ${pid}) is not running`);
      process.kill(pid, sig);
      return pid;
    },
    async down() {
      exitCleanups.delete(hardStop);
      rememberPids();
      await new Promise((resolve) => {
        const p = spawn("bash", [CLUSTER_SH, "down", "--dir", dir], { stdio: "ignore" });
        p.on("exit", resolve);
        p.on("error", resolve);
      });
      downSync();
      dog.disarm();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  const out = path.join(dir, "cluster-up.out");
  const fd = fs.openSync(out, "w");
  // Output to a file, not a pipe: the background processes inherit cluster.sh's stdout.
  const code = await new Promise((resolve) => {
    const p = spawn("bash", [CLUSTER_SH, "up", "--base-port", String(base), "--dir", dir, "--binary", BINARY,
      "--", "--log-level", "warn", ...flags.map(String)], { stdio: ["ignore", fd, fd] });
    const timer = setTimeout(() => p.kill("SIGKILL"), 60000);
    p.on("exit", (c) => { clearTimeout(timer); resolve(c); });
  });
  fs.closeSync(fd);
  rememberPids();
  if (code !== 0) {
    const text = tail(out, 40);
    const logs = cluster.logTails();
    await cluster.down();
    throw new Error(`cluster.sh up failed (${code}):\n${text}\n${logs}`);
  }
  return cluster;
}

// ---- a TCP proxy that can cut connections ------------------------------------------------------------------------

// Parses the WebSocket frames of one direction after the HTTP upgrade, so that tests can see what was sent.
class FrameLog {
  constructor() {
    this.buf = Buffer.alloc(0);
    this.upgraded = false;
    this.messages = [];
  }

  push(chunk) {
    this.buf = Buffer.concat([this.buf, chunk]);
    if (!this.upgraded) {
      const end = this.buf.indexOf("\r\n\r\n");
      if (end < 0) return [];
      this.buf = this.buf.subarray(end + 4);
      this.upgraded = true;
    }
    const out = [];
    for (;;) {
      if (this.buf.length < 2) break;
      const opcode = this.buf[0] & 0x0f;
      const masked = (this.buf[1] & 0x80) !== 0;
      let len = this.buf[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) break;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) break;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      let mask = null;
      if (masked) {
        if (this.buf.length < off + 4) break;
        mask = this.buf.subarray(off, off + 4);
        off += 4;
      }
      if (this.buf.length < off + len) break;
      const payload = Buffer.from(this.buf.subarray(off, off + len));
      if (mask) for (let i = 0; i < len; i++) payload[i] ^= mask[i & 3];
      this.buf = this.buf.subarray(off + len);
      if (opcode === 1) {
        const text = payload.toString("utf8");
        out.push(text);
      }
    }
    this.messages.push(...out);
    return out;
  }
}

/** A loopback TCP proxy to `targetPort`: cut() drops every connection, stop()/start() take the port away and back. */
export async function startProxy(targetPort) {
  const port = await freePort();
  const live = new Set();
  let armed = null;
  const proxy = {
    port,
    url: `ws://${HOST}:${port}/ws`,
    connections: [], // every connection ever proxied: {index, c2s: FrameLog, s2c: FrameLog, dropped: []}
    listening: false,
    cut() {
      const n = live.size;
      for (const c of [...live]) { c.client.destroy(); c.upstream.destroy(); }
      return n;
    },
    /** The next client message matching `predicate` reaches the node; then the client side is cut at once. */
    cutAfterClientMessage(predicate) {
      return new Promise((resolve) => { armed = { predicate, resolve }; });
    },
    start() {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, HOST, () => { server.off("error", reject); proxy.listening = true; resolve(); });
      });
    },
    stop() {
      proxy.listening = false;
      proxy.cut();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, HOST);
    const conn = { index: proxy.connections.length + 1, client, upstream, c2s: new FrameLog(), s2c: new FrameLog(), dropped: [], cutAfter: false };
    proxy.connections.push(conn);
    live.add(conn);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.on("data", (chunk) => {
      const messages = conn.c2s.push(chunk);
      if (upstream.destroyed) return;
      upstream.write(chunk);
      if (armed && messages.some((text) => armed.predicate(text))) {
        const a = armed;
        armed = null;
        conn.cutAfter = true;
        // Half-close upstream so the node still reads what was forwarded; the client never hears back.
        client.destroy();
        upstream.end();
        a.resolve(conn);
      }
    });
    upstream.on("data", (chunk) => {
      const messages = conn.s2c.push(chunk);
      if (client.destroyed) conn.dropped.push(...messages);
      else client.write(chunk);
    });
    client.on("close", () => {
      live.delete(conn);
      if (!conn.cutAfter) upstream.destroy();
      else setTimeout(() => upstream.destroy(), 2000).unref();
    });
    upstream.on("close", () => { live.delete(conn); client.destroy(); });
    client.on("error", () => {});
    upstream.on("error", () => {});
  });
  await proxy.start();
  exitCleanups.add(() => server.close());
  return proxy;
}

/** Resolves with the arguments of the next `event` of an SDK emitter; throws after `timeoutMs`. */
export function nextEvent(emitter, event, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, handler);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for a "${event}" event`));
    }, timeoutMs);
    const handler = (...args) => {
      clearTimeout(timer);
      emitter.off(event, handler);
      resolve(args);
    };
    emitter.on(event, handler);
  });
}
