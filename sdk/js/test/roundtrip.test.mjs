// The basic API against one real node: subscribe/publish round trip, history, subscribe with `since`, the errors
// Promises reject with, unsubscribe and close.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Herald, HeraldError } from "../herald-client.js";
import { startHerald, nextEvent, waitFor } from "./helpers.mjs";

let server;
const clients = [];
const client = (opts) => {
  const c = new Herald(server.url, opts);
  clients.push(c);
  return c;
};

before(async () => { server = await startHerald(["--node-name", "rt-node", "--client-rate", "0"]); });
after(async () => {
  for (const c of clients) c.close();
  await server?.stop();
});

const PAYLOADS = [{ text: "hello", n: 1 }, "a string", null, 42.5, [1, "two", { three: 3 }], { nested: { deep: [true, false] } }];

test("subscribe/publish round trip, node and session, position", { timeout: 20000 }, async () => {
  const a = client();
  const b = client();
  await Promise.all([a.connect(), b.connect()]);
  assert.equal(a.state, "connected");
  assert.equal(a.node, "rt-node", `client.node: expected "rt-node", got ${JSON.stringify(a.node)}`);
  assert.match(a.session, /^[0-9a-f]{32}$/, `client.session: expected 32 hex characters, got ${a.session}`);
  assert.notEqual(a.session, b.session);

  const sub = a.subscribe("chat:rt");
  const [info] = await nextEvent(sub, "subscribed");
  assert.deepEqual({ serial: info.serial, resumed: info.resumed, replayed: info.replayed }, { serial: 0, resumed: false, replayed: 0 });
  assert.deepEqual(sub.position, { serial: 0, epoch: info.epoch }, "position right after subscribing: the channel's top");

  const got = [];
  sub.on("message", (data, meta) => got.push({ data, ...meta, position: { ...sub.position } }));
  const replies = [];
  for (const p of PAYLOADS) replies.push(await b.publish("chat:rt", p));
  assert.deepEqual(replies.map((r) => r.serial), [1, 2, 3, 4, 5, 6], "serials of the publish replies");
  await waitFor(() => got.length >= PAYLOADS.length, 5000, () => `${PAYLOADS.length} messages, got ${got.length}`);
  assert.deepEqual(got.map((m) => m.data), PAYLOADS, "data as published");
  assert.deepEqual(got.map((m) => m.serial), [1, 2, 3, 4, 5, 6]);
  assert.ok(got.every((m) => m.channel === "chat:rt" && m.epoch === info.epoch));
  // The position is what the application has been handed, already during its handler.
  assert.deepEqual(got.map((m) => m.position.serial), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(sub.position, { serial: 6, epoch: info.epoch });
});

test("history: newest, since, limit, epoch", { timeout: 20000 }, async () => {
  const c = client();
  await c.connect();
  const all = await c.history("chat:rt");
  assert.equal(all.channel, "chat:rt");
  assert.equal(all.serial, 6);
  assert.deepEqual(all.messages.map((m) => m.serial), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(all.messages.map((m) => m.data), PAYLOADS);
  const some = await c.history("chat:rt", { since: 2, limit: 2 });
  assert.deepEqual(some.messages.map((m) => m.serial), [3, 4], "since 2, limit 2");
  const newest = await c.history("chat:rt", { limit: 3 });
  assert.deepEqual(newest.messages.map((m) => m.serial), [4, 5, 6], "limit 3 without since: the newest");
  const fromPosition = await c.history("chat:rt", { since: { serial: 5, epoch: all.epoch } });
  assert.deepEqual(fromPosition.messages.map((m) => m.serial), [6], "since as a position");
  const empty = await c.history("chat:never-published");
  assert.deepEqual([empty.serial, empty.messages.length], [0, 0]);
});

test("subscribe with since: replay, and a discontinuity for a foreign epoch", { timeout: 20000 }, async () => {
  const c = client();
  await c.connect();
  const { epoch } = await c.history("chat:rt", { limit: 0 });
  const resumed = c.subscribe("chat:rt", { since: { serial: 2, epoch } });
  const got = [];
  resumed.on("message", (data, meta) => got.push(meta.serial));
  const [info] = await nextEvent(resumed, "subscribed");
  assert.deepEqual({ resumed: info.resumed, replayed: info.replayed }, { resumed: true, replayed: 4 });
  await waitFor(() => got.length >= 4, 5000, () => `replay of 3..6, got ${got}`);
  assert.deepEqual(got, [3, 4, 5, 6]);

  const d = client();
  await d.connect();
  const stale = d.subscribe("chat:rt", { since: { serial: 3, epoch: "no-such-epoch" } });
  const discontinuities = [];
  stale.on("discontinuity", (x) => discontinuities.push(x));
  const [info2] = await nextEvent(stale, "subscribed");
  assert.equal(info2.reason, "epoch_changed");
  assert.equal(discontinuities.length, 1, `one discontinuity event, got ${JSON.stringify(discontinuities)}`);
  assert.deepEqual(discontinuities[0].previous, { serial: 3, epoch: "no-such-epoch" });
  assert.equal(discontinuities[0].reason, "epoch_changed");
  assert.deepEqual(stale.position, { serial: 6, epoch }, "after the discontinuity the position is the channel's top");
});

test("errors: invalid channel, oversized publish, unsubscribe, close", { timeout: 20000 }, async () => {
  const c = client();
  await c.connect();
  await assert.rejects(c.publish("bad channel!", 1), (err) => {
    assert.ok(err instanceof HeraldError, `expected a HeraldError, got ${err}`);
    assert.equal(err.code, "invalid_channel");
    return true;
  });
  await assert.rejects(c.publish("chat:big", "x".repeat(70000)), { code: "message_too_large" });
  await assert.rejects(c.history("bad channel!"), { code: "invalid_channel" });

  const bad = c.subscribe("bad channel!");
  const [err] = await nextEvent(bad, "error");
  assert.equal(err.code, "invalid_channel");
  assert.equal(bad.state, "ended");
  assert.throws(() => c.subscribe("chat:twice") && c.subscribe("chat:twice"), { code: "already_subscribed" });

  const sub = c.subscribe("chat:unsub");
  await nextEvent(sub, "subscribed");
  const seen = [];
  sub.on("message", (data) => seen.push(data));
  await c.publish("chat:unsub", "before");
  await waitFor(() => seen.length === 1, 5000, "the message before unsubscribe");
  const before = await server.metric("herald_subscriptions");
  await sub.unsubscribe();
  const afterCount = await server.metric("herald_subscriptions");
  assert.equal(afterCount, before - 1, `herald_subscriptions after unsubscribe: expected ${before - 1}, got ${afterCount}`);
  await c.publish("chat:unsub", "after");
  const h = await c.history("chat:unsub");
  assert.equal(h.serial, 2);
  assert.deepEqual(seen, ["before"], "nothing is delivered after unsubscribe");

  const offline = client();
  const pending = offline.publish("chat:rt", "never sent");
  offline.close();
  await assert.rejects(pending, { code: "closed" });
  await assert.rejects(offline.publish("chat:rt", "after close"), { code: "closed" });
  assert.equal(offline.state, "closed");
});
