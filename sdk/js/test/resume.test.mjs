// Resume after cut connections: 1 000 messages are published while the subscriber's TCP connection is cut five
// times (through a proxy); the application must see exactly 1..1000, and each reconnect must carry its position.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Herald } from "../herald-client.js";
import { startHerald, startProxy, waitFor, checkSequence, recordStates, nextEvent } from "./helpers.mjs";

let server;
let proxy;
const clients = [];

before(async () => {
  server = await startHerald(["--client-rate", "0"]);
  proxy = await startProxy(server.port);
});
after(async () => {
  for (const c of clients) c.close();
  await proxy?.stop();
  await server?.stop();
});

test("1000 messages across 5 cut connections: no gap, no duplicate", { timeout: 45000 }, async () => {
  const N = 1000;
  const CUT_AFTER = new Set([100, 300, 500, 700, 900]);
  const channel = "chat:resume";
  const subscriber = new Herald(proxy.url, { backoffBase: 50, backoffCap: 200, rate: 0 });
  const publisher = new Herald(server.url, { rate: 0 });
  clients.push(subscriber, publisher);
  const states = recordStates(subscriber);
  await Promise.all([subscriber.connect(), publisher.connect()]);

  const sub = subscriber.subscribe(channel);
  const got = [];
  const data = [];
  const subscribedEvents = [];
  const discontinuities = [];
  sub.on("message", (d, meta) => { got.push(meta.serial); data.push(d); });
  sub.on("subscribed", (info) => subscribedEvents.push(info));
  sub.on("discontinuity", (info) => discontinuities.push(info));
  await nextEvent(sub, "subscribed");
  // The application's position when each connection was lost: what the next `connect` must carry.
  const positionsAtLoss = [];
  subscriber.on("state", (s) => { if (s === "disconnected") positionsAtLoss.push(sub.position && sub.position.serial); });

  let cuts = 0;
  for (let i = 1; i <= N; i += 20) {
    const batch = [];
    for (let j = i; j < i + 20; j++) batch.push(publisher.publish(channel, { i: j }));
    if (CUT_AFTER.has(i + 19)) {
      // Cut a live connection while this batch is on its way to the subscriber; publishing goes on at once.
      await waitFor(() => subscriber.state === "connected", 10000, () => `the subscriber to reconnect (state ${subscriber.state})`);
      await new Promise((r) => setTimeout(r, 1 + Math.random() * 3));
      if (proxy.cut() > 0) cuts++;
    }
    await Promise.all(batch);
  }
  assert.equal(cuts, 5, `cuts that found a live connection: expected 5, got ${cuts}`);
  await waitFor(() => got.length >= N, 30000, () => `${N} messages, got ${got.length} (last ${got.at(-1)})`);
  await new Promise((r) => setTimeout(r, 200)); // anything extra (a duplicate) would arrive now

  const problem = checkSequence(got, N);
  assert.equal(problem, null, `delivered serials: ${problem}`);
  for (let k = 0; k < N; k++) assert.deepEqual(data[k], { i: k + 1 }, `data of serial ${k + 1}`);
  assert.deepEqual(discontinuities, [], "no discontinuity");

  const connected = states.filter((e) => e.state === "connected");
  assert.ok(connected.length >= 6, `expected ≥ 6 connections (1 + 5 cuts), got ${connected.length}`);
  const notResumed = connected.slice(1).filter((e) => !e.info.resumed);
  assert.deepEqual(notResumed, [], "every reconnect resumed its session");
  const replayed = subscribedEvents.slice(1).reduce((n, e) => n + e.replayed, 0);
  assert.ok(replayed > 0, `the reconnects replayed nothing (subscribed events: ${JSON.stringify(subscribedEvents)})`);

  // Each reconnect's `connect` names the session and exactly the application's position at the loss.
  const connects = proxy.connections.map((c) => c.c2s.messages.map((t) => JSON.parse(t)).find((m) => m.op === "connect"));
  assert.equal(connects[0].session, undefined, "the first connect has no session");
  const sent = connects.slice(1).filter(Boolean).map((m) => m.positions && m.positions[channel] && m.positions[channel].serial);
  assert.deepEqual(sent, positionsAtLoss.slice(0, sent.length), "positions sent in connect vs the application's position at each loss");
  assert.ok(connects.slice(1).every((m) => m.session === subscriber.session), "every reconnect sends the session");
  console.log(`# ${N} messages, ${cuts} cuts, ${connected.length} connections, ${replayed} replayed on resume, positions at loss ${positionsAtLoss.join(",")}`);
});
