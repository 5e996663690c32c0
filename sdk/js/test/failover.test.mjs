// Cluster failover through HAProxy: the node the client is on is killed with SIGKILL while messages flow and the
// client itself keeps publishing; it must come back on another node by itself, receive every message exactly once
// in order, and every one of its publishes must be stored exactly once.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { Herald } from "../herald-client.js";
import { startCluster, apiPublish, apiHistory, waitFor, recordStates, checkSequence, nextEvent, sleep } from "./helpers.mjs";

const cleanups = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

test("kill -9 of the client's node: it resumes on another node with no gap, no duplicate, no doubled publish", { timeout: 60000 }, async () => {
  const cluster = await startCluster();
  cleanups.push(() => cluster.down());
  const c = new Herald(cluster.lbUrl, { backoffBase: 100, backoffCap: 1000 });
  cleanups.push(() => c.close());
  const states = recordStates(c);
  await c.connect();
  const sub = c.subscribe("chat:failover");
  const got = [];
  const discontinuities = [];
  sub.on("message", (data, meta) => got.push(meta.serial));
  sub.on("discontinuity", (info) => discontinuities.push(info));
  await nextEvent(sub, "subscribed");
  const home = c.node;
  const others = ["node1", "node2", "node3"].filter((n) => n !== home);
  assert.equal(others.length, 2, `client.node should name a cluster node, got ${JSON.stringify(home)}`);

  // Two publishers: the HTTP API on the surviving nodes, and the client itself (its publishes cross the kill).
  const N_API = 150;
  const N_OWN = 50;
  let apiDone = 0;
  const ownResults = [];
  let ownAcked = 0;
  const apiLoop = (async () => {
    while (apiDone < N_API) {
      await apiPublish(cluster.nodePort(others[apiDone % 2]), "chat:failover", { api: apiDone });
      apiDone++;
      await sleep(10);
    }
  })();
  const ownLoop = (async () => {
    for (let i = 0; i < N_OWN; i++) {
      ownResults.push(c.publish("chat:failover", { own: i }).then((r) => { ownAcked++; return r; }));
      await sleep(30);
    }
  })();

  await waitFor(() => got.length >= 30, 10000, () => `30 messages before the kill, got ${got.length}`);
  const t0 = performance.now();
  const pid = cluster.signal(home, "SIGKILL");
  const ackedAtKill = ownAcked;
  await Promise.all([apiLoop, ownLoop]);
  const own = await Promise.all(ownResults);
  const N = N_API + N_OWN;
  await waitFor(() => got.length >= N, 20000, () => `${N} messages, got ${got.length}; states ${states.map((e) => e.state).join(",")}`);
  await sleep(300); // a duplicate would arrive now
  const back = states.find((e) => e.state === "connected" && e.t > t0);

  assert.ok(back, `the client should reconnect by itself; states: ${states.map((e) => e.state).join(" → ")}`);
  assert.ok(others.includes(c.node), `after the kill the client should be on ${others.join(" or ")}, is on ${c.node}`);
  assert.equal(checkSequence(got, N), null, `serials received: ${checkSequence(got, N)}`);
  assert.deepEqual(discontinuities, [], "a failover with history intact must bring no discontinuity");
  assert.ok(ackedAtKill < N_OWN, `the kill should land while the client still publishes (${ackedAtKill} acked)`);
  const serials = own.map((r) => r.serial);
  assert.equal(new Set(serials).size, N_OWN, `the client's publishes should get ${N_OWN} distinct serials: ${serials}`);
  const history = await apiHistory(cluster.nodePort(others[0]), "chat:failover", 0, 1000);
  const stored = history.messages.filter((m) => m.data && typeof m.data.own === "number").map((m) => m.data.own);
  assert.deepEqual(stored, [...Array(N_OWN).keys()], "each of the client's publishes stored once, in call order");
  console.log(`# killed ${home} (pid ${pid}); client on ${c.node} after ${(back.t - t0).toFixed(0)} ms ` +
    `(resumed session: ${back.info.resumed}); ${N} messages exactly once; ${N_OWN} own publishes (${ackedAtKill} acked at the kill) stored once`);
});
