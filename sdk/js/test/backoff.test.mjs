// Reconnection timing, measured: full-jitter exponential backoff against a port where nothing listens, the reset
// after a stable period, and the immediate first attempt after a node drains (close 1001).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { Herald } from "../herald-client.js";
import { startHerald, startProxy, freePort, waitFor, recordStates, nextEvent } from "./helpers.mjs";

const TOLERANCE = 100; // ms of timer and scheduling lateness allowed on a loaded 2-core machine
const clients = [];
const servers = [];
after(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.stop();
});

// Delay n: from the `disconnected` that scheduled attempt n+1 to its `connecting`.
function measuredDelays(states) {
  const out = [];
  for (let i = 0; i < states.length; i++) {
    if (states[i].state !== "disconnected") continue;
    const next = states.slice(i + 1).find((e) => e.state === "connecting");
    if (!next) break;
    out.push({ measured: next.t - states[i].t, reported: states[i].info.delay, attempt: states[i].info.attempt, code: states[i].info.code });
  }
  return out;
}

test("backoff delays stay within [0, min(cap, base·2^n)] and are jittered", { timeout: 30000 }, async () => {
  const base = 50;
  const cap = 400;
  const port = await freePort(); // nothing listens here
  const c = new Herald(`ws://127.0.0.1:${port}/ws`, { backoffBase: base, backoffCap: cap, connectTimeout: 2000 });
  clients.push(c);
  const states = recordStates(c);
  c.connect().catch(() => {});
  await waitFor(() => states.filter((e) => e.state === "connecting").length >= 14, 20000,
    () => `14 connection attempts, got ${states.filter((e) => e.state === "connecting").length}`);
  c.close();
  const delays = measuredDelays(states).slice(0, 13);
  const lines = [];
  delays.forEach((d, n) => {
    const bound = Math.min(cap, base * 2 ** n);
    lines.push(`n=${n} bound=${bound} reported=${d.reported} measured=${d.measured.toFixed(1)}`);
    assert.equal(d.attempt, n, `attempt number of delay ${n}`);
    assert.ok(d.reported >= 0 && d.reported <= bound, `delay ${n}: expected the chosen delay in [0, ${bound}], got ${d.reported}`);
    assert.ok(d.measured >= d.reported - 2 && d.measured <= bound + TOLERANCE,
      `delay ${n}: expected the measured gap in [${d.reported - 2}, ${bound + TOLERANCE}] ms, got ${d.measured.toFixed(1)} ms`);
  });
  const distinct = new Set(delays.map((d) => d.reported));
  assert.ok(distinct.size > 1, `jitter: expected different delays, got all equal to ${[...distinct]}`);
  const late = delays.slice(3).map((d) => d.reported);
  assert.ok(Math.max(...late) > 2 * base,
    `growth: from n=3 on the bound is ≥ ${8 * base} ms, yet no delay exceeded ${2 * base} ms (${late})`);
  console.log("# " + lines.join("\n# "));
});

test("the backoff counter resets after a stable period, not before", { timeout: 40000 }, async () => {
  const base = 200;
  const server = await startHerald();
  servers.push(server);
  const proxy = await startProxy(server.port);
  try {
    await proxy.stop();
    const c = new Herald(proxy.url, { backoffBase: base, backoffCap: 5000, stableAfter: 500, connectTimeout: 2000 });
    clients.push(c);
    const states = recordStates(c);
    c.connect().catch(() => {});
    // Let the counter climb while nothing listens, then let the client in.
    await waitFor(() => states.some((e) => e.state === "disconnected" && e.info.attempt >= 3), 15000, "4 failed attempts");
    await proxy.start();
    await waitFor(() => c.state === "connected", 15000, () => `a connection once the port is back (state ${c.state})`);
    const climbed = states.filter((e) => e.state === "disconnected").at(-1).info.attempt;

    await new Promise((r) => setTimeout(r, 800)); // longer than stableAfter
    const mark = states.length;
    proxy.cut();
    await waitFor(() => states.slice(mark).some((e) => e.state === "connected"), 5000, "the reconnect after a stable connection");
    const [afterStable] = measuredDelays(states.slice(mark));
    assert.equal(afterStable.attempt, 0, `after ${800} ms connected (stableAfter 500) the counter restarts at 0, got ${afterStable.attempt}`);
    assert.ok(afterStable.reported <= base, `first delay after a stable period: expected ≤ ${base}, got ${afterStable.reported}`);
    assert.ok(afterStable.measured <= base + TOLERANCE, `measured: expected ≤ ${base + TOLERANCE} ms, got ${afterStable.measured.toFixed(1)} ms`);

    const mark2 = states.length;
    proxy.cut(); // right away: this connection was not stable
    await waitFor(() => states.slice(mark2).some((e) => e.state === "connected"), 5000, "the reconnect after a short connection");
    const [afterShort] = measuredDelays(states.slice(mark2));
    assert.equal(afterShort.attempt, 1, `after a connection shorter than stableAfter the counter goes on: expected 1, got ${afterShort.attempt}`);
    console.log(`# counter climbed to ${climbed}; after a stable connection: attempt 0, delay ${afterStable.measured.toFixed(1)} ms ` +
      `(bound ${base}); after a short one: attempt ${afterShort.attempt}, delay ${afterShort.measured.toFixed(1)} ms (bound ${2 * base})`);
  } finally {
    await proxy.stop();
  }
});

test("close 1001 (node draining): the first attempt goes at once; a restarted node brings a discontinuity", { timeout: 30000 }, async () => {
  const first = await startHerald(["--drain-timeout", "1"]);
  const c = new Herald(first.url, { backoffBase: 1000, backoffCap: 1000 });
  clients.push(c);
  const states = recordStates(c);
  await c.connect();
  const sub = c.subscribe("chat:drain");
  await nextEvent(sub, "subscribed");
  await first.publish("chat:drain", "before");
  await waitFor(() => sub.position && sub.position.serial === 1, 5000, "the first message");
  await new Promise((r) => setTimeout(r, 1100)); // stable
  const mark = states.length;
  first.signal("SIGTERM");
  await waitFor(() => first.exited, 10000, "the draining node to exit");
  await first.stop();
  const [drained] = measuredDelays(states.slice(mark));
  assert.equal(drained.code, 1001, `close code seen: expected 1001, got ${drained.code}`);
  assert.equal(drained.reported, 0, `first delay after 1001: expected 0, got ${drained.reported}`);
  assert.ok(drained.measured < 50, `measured first delay after 1001: expected < 50 ms, got ${drained.measured.toFixed(1)} ms`);

  // A new node on the same port: an in-memory backplane starts a new epoch, which the application must hear of.
  const discontinuities = [];
  sub.on("discontinuity", (d) => discontinuities.push(d));
  const second = await startHerald([], { port: first.port });
  servers.push(second);
  await waitFor(() => c.state === "connected" && sub.state === "subscribed", 10000, "the reconnect to the new node");
  assert.equal(discontinuities.length, 1, `discontinuities: ${JSON.stringify(discontinuities)}`);
  assert.equal(discontinuities[0].reason, "epoch_changed");
  assert.equal(discontinuities[0].previous.serial, 1);
  console.log(`# 1001: first reconnect attempt after ${drained.measured.toFixed(1)} ms; new node → discontinuity ${discontinuities[0].reason}`);
});
