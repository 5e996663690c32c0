// Tokens against a node with a JWT key (--jwt-leeway 0, so `exp` means exp): getToken refreshes before expiry and
// on token_expired without ever dropping the connection; without getToken, setToken() answers token_expired and a
// 4001 with no new token closes the client for good; after a 4001 at connect the SDK comes back only with a fresh
// token.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Herald, HeraldError } from "../herald-client.js";
import { startHerald, mintJwt, waitFor, recordStates, checkSequence, nextEvent, sleep } from "./helpers.mjs";

const SECRET = "sdk-token-test-secret-0123456789abcdef";
const CAPS = { "chat:*": ["subscribe", "publish", "history"] };
let server;
const clients = [];
const client = (opts) => {
  const c = new Herald(server.url, { backoffBase: 50, backoffCap: 200, ...opts });
  clients.push(c);
  return c;
};

// A token for `sub` that lives `seconds` from now (or is signed with the wrong key).
let minted = 0;
function token(seconds, { sub = "alice", secret = SECRET } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return mintJwt(secret, { sub, iat: now, exp: now + seconds, caps: CAPS, jti: String(++minted) });
}

before(async () => {
  server = await startHerald(["--jwt-secret", SECRET, "--jwt-leeway", "0", "--jwt-refresh-grace", "2"]);
});
after(async () => {
  for (const c of clients) c.close();
  await server?.stop();
});

const tokenEvent = (event) => server.metric("herald_token_events_total", { event });

// Publishes 1..n on `channel` through the API, one every `everyMs`, while a subscriber counts what arrives.
async function steadyMessages(channel, n, everyMs) {
  for (let i = 1; i <= n; i++) {
    await server.publish(channel, { i });
    await sleep(everyMs);
  }
}

test("getToken: refreshed before exp, the connection never drops, no message is missed", { timeout: 30000 }, async () => {
  let asked = 0;
  const c = client({ getToken: () => { asked++; return token(3); } });
  const states = recordStates(c);
  const refreshed = [];
  c.on("refreshed", (info) => refreshed.push(info));
  const expiredBefore = await tokenEvent("expired");
  await c.connect();
  const sub = c.subscribe("chat:refresh-early");
  const got = [];
  sub.on("message", (d, meta) => got.push(meta.serial));
  await nextEvent(sub, "subscribed");
  await steadyMessages("chat:refresh-early", 80, 100); // ≈ 8 s: two to three token lifetimes
  await waitFor(() => got.length >= 80, 5000, () => `80 messages, got ${got.length}`);

  assert.ok(refreshed.length >= 2, `expected ≥ 2 refreshes in 8 s of 3-second tokens, got ${refreshed.length}`);
  const expiries = refreshed.map((r) => r.expires);
  assert.ok(expiries.every((e, i) => i === 0 || e >= expiries[i - 1]) && expiries.at(-1) * 1000 > Date.now(),
    `refreshed.expires should move forward and lie ahead: ${expiries}`);
  assert.equal(asked, refreshed.length + 1, "getToken once for the connect and once per refresh");
  assert.deepEqual(states.map((e) => e.state), ["connecting", "connected"], "the connection never dropped");
  assert.equal(await tokenEvent("expired") - expiredBefore, 0, "the node never had to send token_expired");
  assert.equal(checkSequence(got, 80), null, `serials: ${checkSequence(got, 80)}`);
  c.close();
  console.log(`# ${refreshed.length} refreshes before exp over 8 s of 3 s tokens; getToken called ${asked} times; 80 messages exactly once`);
});

test("getToken with refreshBefore 0: refreshed on token_expired within the grace", { timeout: 30000 }, async () => {
  let asked = 0;
  const c = client({ refreshBefore: 0, getToken: () => { asked++; return token(2); } });
  const states = recordStates(c);
  const expiredBefore = await tokenEvent("expired");
  const refreshedBefore = await tokenEvent("refreshed");
  await c.connect();
  const sub = c.subscribe("chat:refresh-late");
  const got = [];
  sub.on("message", (d, meta) => got.push(meta.serial));
  await nextEvent(sub, "subscribed");
  await steadyMessages("chat:refresh-late", 50, 100); // ≈ 5 s: the node says token_expired at least twice
  await waitFor(() => got.length >= 50, 5000, () => `50 messages, got ${got.length}`);

  const expired = (await tokenEvent("expired")) - expiredBefore;
  const refreshed = (await tokenEvent("refreshed")) - refreshedBefore;
  assert.ok(expired >= 2, `the node should have sent token_expired ≥ 2 times, sent ${expired}`);
  assert.equal(refreshed, expired, `every token_expired answered with a refresh: ${refreshed} of ${expired}`);
  assert.deepEqual(states.map((e) => e.state), ["connecting", "connected"], "the connection never dropped");
  assert.equal(checkSequence(got, 50), null, `serials: ${checkSequence(got, 50)}`);
  c.close();
  console.log(`# token_expired ${expired} times, refreshed ${refreshed} times, getToken called ${asked} times, no disconnect`);
});

test("without getToken: setToken() answers token_expired; no new token ends in 4001 and a closed client", { timeout: 30000 }, async () => {
  // The application hands over a new token when told.
  const a = client({ token: token(2) });
  const statesA = recordStates(a);
  a.on("error", (err) => { if (err.code === "token_expired") a.setToken(token(60)); });
  await a.connect();
  await nextEvent(a, "refreshed", 8000);
  await sleep(2500); // past the grace of the first token
  assert.equal(a.state, "connected", "setToken() after token_expired keeps the connection");
  assert.deepEqual(statesA.map((e) => e.state), ["connecting", "connected"]);

  // The application does nothing: after the grace the node closes with 4001, and the SDK must not retry.
  const b = client({ token: token(2) });
  const statesB = recordStates(b);
  const errors = [];
  b.on("error", (err) => errors.push(err));
  await b.connect();
  const pending = b.publish("chat:never", 1).catch((err) => err); // queued only if the client is still open
  await waitFor(() => b.state === "closed", 10000, () => `state closed, states ${statesB.map((e) => e.state)}`);
  await sleep(500);
  const codes = errors.map((e) => e.code);
  assert.ok(codes.includes("token_expired") && codes.includes("unauthorized"), `errors: ${codes}`);
  const closed = statesB.at(-1);
  assert.equal(closed.info.code, 4001, `closed by: ${JSON.stringify(closed.info)}`);
  assert.equal(statesB.filter((e) => e.state === "connecting").length, 1, `no retry with the refused token: ${statesB.map((e) => e.state)}`);
  const settled = await pending;
  assert.ok(!(settled instanceof HeraldError) || ["closed", "unauthorized"].includes(settled.code), `publish: ${settled}`);
  a.close();
  console.log(`# setToken kept client A connected; client B closed with 4001 after the grace, states ${statesB.map((e) => e.state).join(" → ")}`);
});

test("4001 at connect: the SDK comes back only with a fresh token from getToken", { timeout: 30000 }, async () => {
  // The first token is signed with another key: refused. getToken then supplies a good one.
  let asked = 0;
  const c = client({ token: token(60, { secret: "another-secret-of-at-least-32-bytes!!" }), getToken: () => { asked++; return token(60); } });
  const states = recordStates(c);
  await c.connect();
  assert.equal(asked, 1, "getToken asked once, after the 4001");
  const lost = states.find((e) => e.state === "disconnected");
  assert.equal(lost?.info.code, 4001, `the first attempt ends with 4001: ${JSON.stringify(states.map((e) => [e.state, e.info.code]))}`);
  const sub = c.subscribe("chat:after-4001");
  await nextEvent(sub, "subscribed");

  // getToken returning the refused token again: the client stops instead of hammering the node.
  const bad = token(60, { secret: "another-secret-of-at-least-32-bytes!!" });
  let askedBad = 0;
  const d = client({ token: bad, getToken: () => { askedBad++; return bad; } });
  const statesD = recordStates(d);
  d.on("error", () => {});
  const outcome = await d.connect().then(() => "connected", (err) => err);
  assert.ok(outcome instanceof HeraldError && outcome.code === "unauthorized", `connect() should reject unauthorized: ${outcome}`);
  assert.equal(d.state, "closed");
  assert.equal(askedBad, 1);
  assert.equal(statesD.filter((e) => e.state === "connecting").length, 2, `one retry, then closed: ${statesD.map((e) => e.state)}`);
  console.log(`# 4001 then a fresh token: connected after ${asked} getToken call; same token again: closed after ${statesD.filter((e) => e.state === "connecting").length} attempts`);
});
