// Liveness with a frozen node (SIGSTOP): the SDK's own `ping` finds the silence within heartbeat + pongTimeout,
// goes `disconnected`, and comes back without loss: to the same node after SIGCONT, or to another cluster node.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { Herald } from "../herald-client.js";
import { startHerald, startCluster, apiPublish, waitFor, recordStates, checkSequence, nextEvent, sleep } from "./helpers.mjs";

const HEARTBEAT = 1000; // --heartbeat 1
const PONG_TIMEOUT = 1000;
const TOLERANCE = 600;
const clients = [];
const cleanups = [];
after(async () => {
  for (const c of clients) c.close();
  for (const fn of cleanups.reverse()) await fn();
});

function options() {
  return { pongTimeout: PONG_TIMEOUT, connectTimeout: 1500, backoffBase: 100, backoffCap: 500, stableAfter: 1000 };
}

test("single node: SIGSTOP is noticed within heartbeat + pongTimeout; after SIGCONT the session resumes", { timeout: 45000 }, async () => {
  const server = await startHerald(["--heartbeat", "1"]);
  let frozen = false;
  cleanups.push(async () => { if (frozen) server.signal("SIGCONT"); await server.stop(); });
  const c = new Herald(server.url, options());
  clients.push(c);
  const states = recordStates(c);
  await c.connect();
  const session = c.session;
  const sub = c.subscribe("chat:live");
  const got = [];
  sub.on("message", (d, meta) => got.push(meta.serial));
  await nextEvent(sub, "subscribed");
  for (let i = 1; i <= 5; i++) await server.publish("chat:live", i);
  await waitFor(() => got.length === 5, 5000, () => `5 messages, got ${got.length}`);

  // Idle for several heartbeats: the SDK's pings keep a healthy connection up.
  const idleFrom = states.length;
  await sleep(3 * HEARTBEAT);
  assert.deepEqual(states.slice(idleFrom).map((e) => e.state), [], "no state change while idle on a healthy node");

  const t0 = performance.now();
  server.signal("SIGSTOP");
  frozen = true;
  const limit = HEARTBEAT + PONG_TIMEOUT + TOLERANCE;
  await waitFor(() => c.state !== "connected", limit + 3000, "the SDK to notice the frozen node");
  const lost = states.find((e, i) => i >= idleFrom && e.state === "disconnected");
  const detectedAfter = lost.t - t0;
  assert.equal(lost.info.reason, "liveness_timeout", `why the connection was dropped: ${JSON.stringify(lost.info)}`);
  assert.ok(detectedAfter <= limit, `detection: expected within ${limit} ms of SIGSTOP, took ${detectedAfter.toFixed(0)} ms`);

  await sleep(2000); // attempts against the frozen node time out (connectTimeout) and back off
  assert.notEqual(c.state, "connected", "connected to a frozen node");
  const timedOut = states.filter((e) => e.state === "disconnected" && e.info.reason === "connect_timeout").length;
  server.signal("SIGCONT");
  frozen = false;
  await waitFor(() => c.state === "connected" && sub.state === "subscribed", 10000, () => `the reconnect after SIGCONT (state ${c.state})`);
  assert.equal(c.session, session, "the same session is resumed");
  for (let i = 6; i <= 10; i++) await server.publish("chat:live", i);
  await waitFor(() => got.length >= 10, 5000, () => `10 messages, got ${got}`);
  await sleep(100);
  assert.equal(checkSequence(got, 10), null, `serials: ${checkSequence(got, 10)}`);
  console.log(`# frozen node noticed after ${detectedAfter.toFixed(0)} ms (bound ${limit}); ${timedOut} connect attempts timed out while frozen; resumed the same session`);
});

test("cluster: the client's node is frozen; it moves to another node and misses nothing", { timeout: 55000 }, async () => {
  const cluster = await startCluster(["--heartbeat", "1"]);
  let frozenName = null;
  cleanups.push(async () => {
    if (frozenName) { try { cluster.signal(frozenName, "SIGCONT"); } catch { /* gone */ } }
    await cluster.down();
  });
  const c = new Herald(cluster.lbUrl, options());
  clients.push(c);
  const states = recordStates(c);
  await c.connect();
  const sub = c.subscribe("chat:frozen");
  const got = [];
  sub.on("message", (d, meta) => got.push(meta.serial));
  await nextEvent(sub, "subscribed");
  const home = c.node;
  const others = ["node1", "node2", "node3"].filter((n) => n !== home);
  assert.equal(others.length, 2, `client.node should name a cluster node, got ${JSON.stringify(home)}`);

  const N = 120;
  let published = 0;
  const publishOne = async () => {
    published++;
    await apiPublish(cluster.nodePort(others[published % 2]), "chat:frozen", { n: published });
  };
  while (published < 30) await publishOne();
  await waitFor(() => got.length >= 30, 5000, () => `30 messages before the freeze, got ${got.length}`);

  const t0 = performance.now();
  cluster.signal(home, "SIGSTOP");
  frozenName = home;
  while (published < N) {
    await publishOne();
    await sleep(25);
  }
  await waitFor(() => got.length >= N, 20000, () => `${N} messages, got ${got.length}; states ${states.map((e) => e.state).join(",")}`);
  await sleep(200);
  const lost = states.find((e) => e.state === "disconnected");
  const detectedAfter = lost.t - t0;
  const limit = HEARTBEAT + PONG_TIMEOUT + TOLERANCE;
  assert.equal(lost.info.reason, "liveness_timeout", `why the connection was dropped: ${JSON.stringify(lost.info)}`);
  assert.ok(detectedAfter <= limit, `detection: expected within ${limit} ms of SIGSTOP, took ${detectedAfter.toFixed(0)} ms`);
  assert.ok(others.includes(c.node), `after the freeze the client should be on ${others.join(" or ")}, is on ${c.node}`);
  assert.equal(checkSequence(got, N), null, `serials: ${checkSequence(got, N)}`);
  const back = states.find((e) => e.state === "connected" && e.t > lost.t);
  console.log(`# cluster: ${home} frozen, noticed after ${detectedAfter.toFixed(0)} ms, on ${c.node} after ${(back.t - t0).toFixed(0)} ms, ${N} messages exactly once`);
});
