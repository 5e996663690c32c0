// Publishing across failures: a publish whose reply is lost is retried with the same idempotency key and stored
// once; publishes made while disconnected wait in a bounded queue and go out in order after the reconnect.
// The node runs with its default --client-rate (50/s, burst 100): the SDK's pacing must keep it from refusing.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Herald, HeraldError } from "../herald-client.js";
import { startHerald, startProxy, waitFor, nextEvent, recordStates } from "./helpers.mjs";

let server;
let proxy;
const clients = [];
const client = (url, opts) => {
  const c = new Herald(url, { backoffBase: 50, backoffCap: 200, ...opts });
  clients.push(c);
  return c;
};

before(async () => {
  server = await startHerald();
  proxy = await startProxy(server.port);
});
after(async () => {
  for (const c of clients) c.close();
  await proxy?.stop();
  await server?.stop();
});

const isPublish = (text) => JSON.parse(text).op === "publish";
const publishesIn = (conn) => conn.c2s.messages.map((t) => JSON.parse(t)).filter((m) => m.op === "publish");

test("a publish whose reply is lost is retried with the same key and stored once", { timeout: 30000 }, async () => {
  const c = client(proxy.url);
  await c.connect();
  const before = await server.metric("herald_messages_published_total");
  const cut = proxy.cutAfterClientMessage(isPublish);
  const pending = c.publish("chat:idem", { v: "once" });
  const lostOn = await cut;
  const result = await pending;

  const history = await server.history("chat:idem");
  const copies = history.messages.filter((m) => JSON.stringify(m.data) === '{"v":"once"}');
  assert.equal(copies.length, 1, `copies of the message in history: expected 1, got ${copies.length} (${JSON.stringify(history.messages)})`);
  assert.equal(result.serial, copies[0].serial, `the Promise's serial vs the stored one`);
  const published = (await server.metric("herald_messages_published_total")) - before;
  assert.equal(published, 1, `herald_messages_published_total grew by ${published}, expected 1`);

  // The first attempt reached the node, its reply never reached the client, and the retry used the same key.
  const first = publishesIn(lostOn);
  assert.equal(first.length, 1, `publishes on the cut connection: ${JSON.stringify(first)}`);
  const retries = proxy.connections.filter((x) => x.index > lostOn.index).flatMap(publishesIn);
  assert.equal(retries.length, 1, `publishes after the cut: expected 1 retry, got ${JSON.stringify(retries)}`);
  assert.equal(retries[0].key, first[0].key, "the retry carries the first attempt's key");
  assert.match(first[0].key, /^[0-9a-f]{32}$/, "an SDK-made key: 128 random bits in hex");
  console.log(`# lost reply: key ${first[0].key}, serial ${result.serial}, stored once, published_total +${published}`);
});

test("ten publishes in flight at the cut: each stored once, in call order", { timeout: 30000 }, async () => {
  const c = client(proxy.url);
  await c.connect();
  const cut = proxy.cutAfterClientMessage(isPublish);
  const pending = [];
  for (let i = 0; i < 10; i++) pending.push(c.publish("chat:idem10", i));
  const lostOn = await cut;
  const results = await Promise.all(pending);
  const history = await server.history("chat:idem10");
  assert.deepEqual(history.messages.map((m) => m.data), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "history of the channel");
  assert.deepEqual(results.map((r) => r.serial), history.messages.map((m) => m.serial), "Promise serials vs history");
  const reachedFirst = publishesIn(lostOn).length;
  assert.ok(reachedFirst >= 1, "at least one publish reached the node before the cut");
  const firstKeys = publishesIn(lostOn).map((m) => m.key);
  const retriedKeys = proxy.connections.filter((x) => x.index > lostOn.index).flatMap(publishesIn).map((m) => m.key);
  assert.deepEqual(retriedKeys.slice(0, firstKeys.length), firstKeys, "retries reuse the keys of the first attempts, in order");
  console.log(`# ${reachedFirst} of 10 publishes reached the node before the cut; history holds each once`);
});

test("offline queue: sent after the reconnect in order; overflow rejects with queue_full", { timeout: 30000 }, async () => {
  const c = client(proxy.url, { maxQueue: 20 });
  const states = recordStates(c);
  await c.connect();
  const sub = c.subscribe("chat:queue");
  await nextEvent(sub, "subscribed");
  const got = [];
  sub.on("message", (data, meta) => got.push([meta.serial, data]));

  await proxy.stop(); // nothing listens any more: every reconnect attempt fails
  await waitFor(() => c.state === "disconnected", 5000, () => `state disconnected, got ${c.state}`);
  const pending = [];
  for (let i = 0; i < 20; i++) pending.push(c.publish("chat:queue", `m${i}`));
  assert.equal(c.queued, 20);
  const overflow = await c.publish("chat:queue", "one too many").then(
    () => assert.fail("the 21st publish was accepted; expected a queue_full rejection"),
    (err) => err);
  assert.ok(overflow instanceof HeraldError, `expected a HeraldError, got ${overflow}`);
  assert.equal(overflow.code, "queue_full");
  assert.match(overflow.message, /20/);
  await new Promise((r) => setTimeout(r, 300));
  const meanwhile = await server.history("chat:queue");
  assert.equal(meanwhile.serial, 0, "nothing reaches the node while it is unreachable");
  const failedAttempts = states.filter((e) => e.state === "connecting").length - 1;
  assert.ok(failedAttempts >= 2, `the client kept trying (attempts while down: ${failedAttempts})`);

  await proxy.start();
  const results = await Promise.all(pending);
  assert.deepEqual(results.map((r) => r.serial), Array.from({ length: 20 }, (_, i) => i + 1), "serials in call order");
  const history = await server.history("chat:queue");
  assert.deepEqual(history.messages.map((m) => m.data), Array.from({ length: 20 }, (_, i) => `m${i}`));
  await waitFor(() => got.length >= 20, 5000, () => `20 messages back on the subscription, got ${got.length}`);
  assert.deepEqual(got, history.messages.map((m) => [m.serial, m.data]));
  assert.equal(c.queued, 0);
  assert.equal((await c.publish("chat:queue", "after")).serial, 21, "the queue has room again");
  console.log(`# offline queue: 20 queued during ${failedAttempts} failed attempts, overflow → ${overflow.code}, flushed as serials 1..20`);
});

test("publishes made before connect(); a flush larger than the node's burst is paced, not refused", { timeout: 30000 }, async () => {
  const c = client(server.url);
  const pending = [];
  for (let i = 0; i < 150; i++) pending.push(c.publish("chat:paced", i));
  assert.equal(c.queued, 150);
  const refusedBefore = await server.metric("herald_rate_limited_total", { limit: "command" });
  const t0 = performance.now();
  await c.connect();
  const results = await Promise.all(pending);
  const elapsed = performance.now() - t0;
  assert.deepEqual(results.map((r) => r.serial), Array.from({ length: 150 }, (_, i) => i + 1));
  const refused = (await server.metric("herald_rate_limited_total", { limit: "command" })) - refusedBefore;
  assert.equal(refused, 0, `commands refused by --client-rate: expected 0, got ${refused}`);
  console.log(`# 150 queued publishes flushed in ${elapsed.toFixed(0)} ms at the default pace (45/s, burst 90), 0 refused`);
});
