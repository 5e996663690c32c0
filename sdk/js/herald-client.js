// herald-client: the JavaScript SDK for Herald (WebSocket subprotocol herald.v1.json), one ES module for browsers and
// Node ≥ 20. It keeps subscriptions continuous across reconnects, publishes idempotently and refreshes tokens.
//
// Reference: README.md next to this file; normative protocol: docs/protocol.md in the Herald repository.

export const PROTOCOL = "herald.v1.json";

export const DEFAULT_OPTIONS = Object.freeze({
  backoffBase: 500, // ms: full-jitter exponential backoff, delay n ∈ [0, min(cap, base·2^n)]
  backoffCap: 30000,
  stableAfter: 10000, // ms connected before the backoff counter starts again from 0
  connectTimeout: 10000, // ms from opening the socket to `connected`
  pingInterval: 0, // ms of silence before a `ping`; 0: the `heartbeat` the node announces
  pongTimeout: 10000, // ms to wait for anything after that `ping` before the connection counts as dead
  maxQueue: 1000, // publishes waiting to be sent (offline, or paced); beyond it publish() rejects "queue_full"
  rate: 45, // commands per second sent at most (0: no pacing); stays below the node's default --client-rate 50
  burst: 90,
  retryDelay: 1000, // ms before a command refused with `rate_limited` is sent again
  refreshBefore: 30000, // ms before the token's exp to refresh it (at most half its remaining life); 0: on token_expired only
  maxMessageSize: 65536, // bytes; a larger publish is refused locally instead of closing the socket (1009)
});

// Server error codes after which the same command may be sent again unchanged: nothing was executed.
const RETRY_LATER = new Set(["rate_limited"]);
const SUBSCRIBE_RETRY = new Set(["rate_limited", "unavailable", "internal"]);

/** Every Promise of this module rejects with a HeraldError; `code` is a protocol error code or one of the SDK's. */
export class HeraldError extends Error {
  constructor(code, message, extra = {}) {
    super(message || code);
    this.name = "HeraldError";
    this.code = code;
    if (extra.closeCode !== undefined) this.closeCode = extra.closeCode;
    if (extra.channel !== undefined) this.channel = extra.channel;
    if (extra.cause !== undefined) this.cause = extra.cause;
  }
}

// A listener that throws must not break delivery to the others nor the SDK's bookkeeping: report it like an
// EventTarget does, outside the current call stack.
function reportListenerError(err) {
  if (typeof globalThis.reportError === "function") globalThis.reportError(err);
  else setTimeout(() => { throw err; }, 0);
}

class Emitter {
  #listeners = new Map();

  on(event, fn) {
    if (typeof fn !== "function") throw new TypeError("listener must be a function");
    if (!this.#listeners.has(event)) this.#listeners.set(event, []);
    this.#listeners.get(event).push(fn);
    return this;
  }

  off(event, fn) {
    const list = this.#listeners.get(event);
    if (!list) return this;
    const i = list.indexOf(fn);
    if (i >= 0) list.splice(i, 1);
    return this;
  }

  once(event, fn) {
    const wrapper = (...args) => { this.off(event, wrapper); fn(...args); };
    return this.on(event, wrapper);
  }

  emit(event, ...args) {
    const list = this.#listeners.get(event);
    if (!list || list.length === 0) return false;
    for (const fn of [...list]) {
      try { fn(...args); } catch (err) { reportListenerError(err); }
    }
    return true;
  }
}

function randomKey() {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  let hex = "";
  for (const b of bytes) hex += b.toString(16).padStart(2, "0");
  return hex;
}

/** The `exp` claim of a JWT in ms, read without verifying anything (the node verifies); null when there is none. */
export function tokenExpiry(token) {
  if (typeof token !== "string") return null;
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    let b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    const binary = atob(b64);
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return typeof claims.exp === "number" && Number.isFinite(claims.exp) ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}

function validPosition(p) {
  return p !== null && typeof p === "object" && Number.isSafeInteger(p.serial) && p.serial >= 0 &&
    typeof p.epoch === "string" && p.epoch.length > 0;
}

let wsModule = null;
async function resolveWebSocket(explicit) {
  if (explicit) return explicit;
  if (typeof globalThis.WebSocket === "function") return globalThis.WebSocket;
  if (!wsModule) {
    // A variable specifier keeps browser bundlers from trying to resolve the Node-only package.
    const name = "ws";
    wsModule = import(/* webpackIgnore: true */ /* @vite-ignore */ name).then(
      (m) => m.WebSocket || m.default,
      (err) => {
        wsModule = null;
        throw new HeraldError("no_websocket",
          'no global WebSocket and the "ws" package cannot be loaded (npm install ws)', { cause: err });
      });
  }
  return wsModule;
}

const noop = () => {};

/** One channel subscription; survives reconnects until unsubscribe() or a refusal by the node. */
export class Subscription extends Emitter {
  constructor(client, channel, since) {
    super();
    this.client = client;
    this.channel = channel;
    /** What the application has received: {serial, epoch}, or null before the first `subscribed`. */
    this.position = since ? { serial: since.serial, epoch: since.epoch } : null;
    /** "pending" (waiting for `subscribed` on the current connection), "subscribed" or "ended". */
    this.state = "pending";
    this._conn = 0; // the connection generation whose `subscribed` made this subscription live
  }

  unsubscribe() {
    return this.client._unsubscribe(this);
  }

  // `subscribed` (a reply, or a restore from the session): decides whether the stream continues where the
  // application is, and tells it when it does not.
  _onSubscribed(m, conn, restored) {
    const previous = this.position;
    const info = {
      channel: this.channel, serial: m.serial, epoch: m.epoch, resumed: m.resumed === true,
      replayed: m.replayed || 0, restored,
    };
    if (m.reason) info.reason = m.reason;
    this._conn = conn;
    this.state = "subscribed";
    let lost = null;
    if (info.reason) lost = info.reason;
    else if (previous && previous.epoch !== m.epoch) lost = info.resumed ? "epoch_changed" : "not_resumed";
    else if (previous && !info.resumed && m.serial > previous.serial) lost = "not_resumed";
    if (lost) this.emit("discontinuity", { channel: this.channel, reason: lost, epoch: m.epoch, serial: m.serial, previous });
    if (info.resumed && previous && previous.epoch === m.epoch) {
      // The replay starts right after `previous`; the position moves as its messages reach the application.
    } else if (info.resumed) {
      // Resumed from the session's own record: the replay starts after the record's serial.
      this.position = { serial: Math.max(0, m.serial - info.replayed), epoch: m.epoch };
    } else if (lost || !previous) {
      this.position = { serial: m.serial, epoch: m.epoch };
    }
    this.emit("subscribed", info);
  }

  _onMessage(m, conn) {
    if (this.state !== "subscribed" || conn !== this._conn) return;
    const p = this.position;
    if (p && m.serial <= p.serial) return; // defensive: never hand the application a serial twice
    const epoch = p ? p.epoch : "";
    if (p && m.serial !== p.serial + 1) {
      // The node promises no holes; should one appear anyway, the application is told, never left to guess.
      this.emit("discontinuity", {
        channel: this.channel, reason: "gap_detected", epoch, serial: m.serial - 1, previous: p,
      });
    }
    this.position = { serial: m.serial, epoch };
    this.emit("message", m.data, { channel: this.channel, serial: m.serial, epoch });
  }

  _onDiscontinuity(m) {
    if (this.state === "ended") return;
    const previous = this.position;
    this.emit("discontinuity", {
      channel: this.channel, reason: String(m.reason || "discontinuity"), epoch: m.epoch, serial: m.serial, previous,
    });
    if (!(previous && previous.epoch === m.epoch && previous.serial >= m.serial)) {
      this.position = { serial: m.serial, epoch: m.epoch };
    }
  }

  _end(reason, error) {
    if (this.state === "ended") return;
    this.state = "ended";
    if (error) this.emit("error", error);
    this.emit("unsubscribed", reason ? { channel: this.channel, reason } : { channel: this.channel });
  }
}

export class Herald extends Emitter {
  constructor(url, options = {}) {
    super();
    if (typeof url !== "string" && !(url instanceof URL)) throw new TypeError("Herald: url must be a string or URL");
    this.url = String(url);
    this.options = { ...DEFAULT_OPTIONS, ...options };
    for (const [key, value] of Object.entries(DEFAULT_OPTIONS)) {
      if (typeof this.options[key] !== "number" || !(this.options[key] >= 0)) this.options[key] = value;
    }
    this.name = options.name;
    this._token = typeof options.token === "string" && options.token ? options.token : undefined;
    this._getToken = typeof options.getToken === "function" ? options.getToken : undefined;
    this._WebSocket = options.WebSocket;

    this._state = "closed";
    this._wantOpen = false;
    this._terminal = false; // closed by close() or by 4001: new work is refused until connect()
    this._gen = 0; // generation of the current socket; events of older sockets are ignored
    this._sock = null;
    this._session = null;
    this._node = null;
    this._heartbeat = null;
    this._attempt = 0; // consecutive failed attempts since the last stable connection
    this._immediateNext = false;
    this._timers = {};
    this._connectWaiters = [];

    this._nextId = 1;
    this._requests = new Map(); // id → {onReply, onError, onLost} for the current connection
    this._subs = new Map(); // channel → Subscription
    this._pubSeq = 0;
    this._pubs = new Map(); // seq → publish record, oldest first, until `published` or a final error
    this._pubQueue = []; // records waiting to be sent on this connection, in call order
    this._histories = new Set();
    this._ctl = []; // other commands waiting to be sent on this connection

    this._tokens = this.options.burst;
    this._tokensAt = 0;
    this._pauseUntil = 0;
    this._lastRx = 0;
    this._pingQueued = false;
    this._pingSentAt = null;
    this._lastSentToken = undefined;
    this._refreshing = false;
  }

  /** "connecting" | "connected" | "disconnected" | "closed" */
  get state() { return this._state; }
  /** The node name from the last `connected`, or null. */
  get node() { return this._node; }
  /** The session id from the last `connected`, or null. */
  get session() { return this._session; }
  /** The heartbeat (seconds) the node announced, or null. */
  get heartbeat() { return this._heartbeat; }
  /** The token the SDK will present on its next connect or refresh. */
  get token() { return this._token; }
  /** Publishes waiting to be sent (the bounded queue). */
  get queued() { return this._state === "connected" ? this._pubQueue.length : this._pubs.size; }
  /** Channel → Subscription for the live subscriptions. */
  get subscriptions() { return new Map(this._subs); }

  // ---- lifecycle ---------------------------------------------------------------------------------------------

  connect() {
    if (this._state === "connected") return Promise.resolve();
    const promise = new Promise((resolve, reject) => this._connectWaiters.push({ resolve, reject }));
    if (!this._wantOpen) {
      this._wantOpen = true;
      this._terminal = false;
      this._attempt = 0;
      this._immediateNext = false;
      this._open();
    }
    return promise;
  }

  close() {
    this._wantOpen = false;
    this._terminal = true;
    this._gen++;
    this._clearTimers();
    this._dropSocket(1000, "client closed", true);
    this._failAll(new HeraldError("closed", "the client was closed"));
    if (this._state !== "closed") this._setState("closed", { code: 1000, reason: "client closed" });
  }

  /** A new token for the next connect, sent at once with `refresh` when connected. */
  setToken(token) {
    if (typeof token !== "string" || !token) throw new TypeError("setToken: token must be a non-empty string");
    this._token = token;
    if (this._state === "connected" && token !== this._lastSentToken) this._sendRefresh(token);
  }

  _setState(state, info = {}) {
    const previous = this._state;
    this._state = state;
    this.emit("state", state, { previous, ...info });
  }

  async _open() {
    const gen = ++this._gen;
    this._setState("connecting", { attempt: this._attempt });
    let token = this._token;
    if (this._getToken && (this._needFreshToken || !token || this._expiresSoon(token))) {
      try {
        token = await this._getToken();
      } catch (err) {
        if (gen !== this._gen) return;
        const error = new HeraldError("token_unavailable", "getToken() failed: " + (err && err.message || err), { cause: err });
        if (this._needFreshToken) return this._fail(error);
        this.emit("error", error);
        return this._retry({ code: 0, reason: "token_unavailable" });
      }
      if (gen !== this._gen) return;
      if (typeof token !== "string" || !token) {
        const error = new HeraldError("token_unavailable", "getToken() returned no token");
        if (this._needFreshToken) return this._fail(error);
        this.emit("error", error);
        return this._retry({ code: 0, reason: "token_unavailable" });
      }
      if (this._needFreshToken && token === this._rejectedToken) {
        return this._fail(new HeraldError("unauthorized", "the node refused the token and getToken() returned the same one", { closeCode: 4001 }));
      }
      this._token = token;
    }
    let WS;
    try {
      WS = await resolveWebSocket(this._WebSocket);
    } catch (err) {
      if (gen === this._gen) this._fail(err instanceof HeraldError ? err : new HeraldError("no_websocket", String(err)));
      return;
    }
    if (gen !== this._gen) return;
    let sock;
    try {
      sock = new WS(this.url, PROTOCOL);
    } catch (err) {
      return this._fail(new HeraldError("bad_url", "cannot open " + this.url + ": " + (err && err.message || err), { cause: err }));
    }
    this._sock = sock;
    this._timers.connect = setTimeout(() => this._lost(gen, { code: 0, reason: "connect_timeout" }), this.options.connectTimeout);
    sock.onerror = noop; // a `close` always follows; with `ws`, an unhandled `error` would throw
    sock.onopen = () => {
      if (gen !== this._gen) return;
      const msg = { op: "connect", id: this._id() };
      if (this._token) msg.token = this._token;
      if (this._session) {
        msg.session = this._session;
        const positions = {};
        let any = false;
        for (const sub of this._subs.values()) {
          if (sub.state !== "ended" && validPosition(sub.position)) { positions[sub.channel] = sub.position; any = true; }
        }
        if (any) msg.positions = positions;
      }
      this._lastSentToken = this._token;
      this._tokens = this.options.burst;
      this._tokensAt = Date.now();
      this._pauseUntil = 0;
      this._requests.set(msg.id, {
        onReply: (m) => this._onConnected(gen, m),
        onError: (m) => {
          // `unauthorized` is followed by close 4001; anything else (e.g. the session store is unavailable)
          // leaves a socket that cannot be used, so start over.
          if (m.code !== "unauthorized") this._lost(gen, { code: 0, reason: m.code });
        },
      });
      this._take();
      this._write(msg);
    };
    sock.onmessage = (ev) => this._onFrame(gen, ev.data);
    sock.onclose = (ev) => this._lost(gen, { code: ev.code, reason: ev.reason });
  }

  _onConnected(gen, m) {
    clearTimeout(this._timers.connect);
    const conn = gen;
    this._session = m.session;
    this._node = m.node;
    this._heartbeat = m.heartbeat;
    this._needFreshToken = false;
    this._rejectedToken = undefined;
    this._lastRx = Date.now();
    // Unacknowledged publishes go first in call order, each with its key: a lost reply is not a lost message.
    this._pubQueue = [...this._pubs.values()];
    this._setState("connected", { node: m.node, session: m.session, resumed: m.resumed === true, heartbeat: m.heartbeat });
    if (gen !== this._gen) return; // a listener closed the client
    this._timers.stable = setTimeout(() => { this._attempt = 0; }, this.options.stableAfter);
    for (const sub of this._subs.values()) {
      // Restored channels answer `already_subscribed`; their id-less `subscribed` brings the stream.
      if (sub.state !== "ended" && sub._conn !== conn) this._sendSubscribe(sub, conn);
    }
    for (const rec of this._histories) this._sendHistory(rec);
    this._scheduleRefresh();
    this._armLiveness(this._pingInterval());
    const waiters = this._connectWaiters.splice(0);
    for (const w of waiters) w.resolve();
    this._pump();
  }

  // The socket is gone (closed, timed out, or declared dead): keep the durable work, decide how to come back.
  _lost(gen, info) {
    if (gen !== this._gen) return;
    this._gen++;
    this._dropSocket(4000, info.reason || "lost");
    this._clearTimers();
    this._resetConnectionWork();
    if (!this._wantOpen) return;
    const code = info.code;
    if (code === 4001) {
      this._rejectedToken = this._lastSentToken;
      if (this._getToken) {
        this._needFreshToken = true;
      } else if (!this._token || this._token === this._rejectedToken) {
        return this._fail(new HeraldError("unauthorized",
          "the node refused the token (close 4001) and no new one is available: pass getToken or call setToken()",
          { closeCode: 4001 }));
      }
    }
    // A node that drains (1001), sheds a slow reader (4008) or stops answering asks for a move, not a pause:
    // go at once, but only from a stable state so that a node repeating it cannot make us spin.
    if ((code === 1001 || code === 4008 || info.reason === "liveness_timeout") && this._attempt === 0) {
      this._immediateNext = true;
    }
    this._retry(info);
  }

  _retry(info) {
    let delay;
    if (this._immediateNext) {
      delay = 0;
      this._immediateNext = false;
    } else {
      delay = this._backoffDelay(this._attempt);
    }
    const attempt = this._attempt;
    this._attempt++;
    this._setState("disconnected", { code: info.code, reason: info.reason, delay, attempt });
    if (!this._wantOpen) return;
    this._timers.retry = setTimeout(() => { if (this._wantOpen) this._open(); }, delay);
  }

  _backoffDelay(n) {
    const { backoffBase, backoffCap } = this.options;
    const ceiling = Math.min(backoffCap, backoffBase * Math.pow(2, Math.min(n, 52)));
    return Math.floor(Math.random() * ceiling);
  }

  _fail(error) {
    this._wantOpen = false;
    this._terminal = true;
    this._gen++;
    this._clearTimers();
    this._dropSocket(1000, error.code);
    this.emit("error", error);
    this._failAll(error);
    this._setState("closed", { code: error.closeCode, reason: error.code, error });
  }

  _failAll(error) {
    const waiters = this._connectWaiters.splice(0);
    for (const w of waiters) w.reject(error);
    const pubs = [...this._pubs.values()];
    this._pubs.clear();
    this._pubQueue = [];
    for (const rec of pubs) rec.reject(error);
    const histories = [...this._histories];
    this._histories.clear();
    for (const rec of histories) rec.reject(error);
    this._requests.clear();
    this._ctl = [];
  }

  _dropSocket(code, reason, graceful = false) {
    const sock = this._sock;
    this._sock = null;
    if (!sock) return;
    sock.onopen = noop;
    sock.onmessage = noop;
    sock.onclose = noop;
    sock.onerror = noop;
    try {
      // `ws` can drop a dead TCP connection at once; a browser only offers the close handshake.
      if (!graceful && typeof sock.terminate === "function") sock.terminate();
      else sock.close(code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000, String(reason).slice(0, 100));
    } catch { /* already closed */ }
  }

  _clearTimers() {
    for (const t of Object.values(this._timers)) clearTimeout(t);
    this._timers = {};
  }

  // Per-connection state goes; publishes and history requests wait for the next connection.
  _resetConnectionWork() {
    const requests = [...this._requests.values()];
    this._requests.clear();
    this._ctl = [];
    this._pubQueue = [];
    this._pingQueued = false;
    this._pingSentAt = null;
    this._refreshing = false;
    for (const r of requests) if (r.onLost) r.onLost();
    for (const rec of this._histories) rec.sent = false;
    for (const sub of this._subs.values()) if (sub.state === "subscribed") sub.state = "pending";
  }

  // ---- frames ------------------------------------------------------------------------------------------------

  _id() { return this._nextId++; }

  _write(msg) {
    if (!this._sock) return false;
    try {
      this._sock.send(typeof msg === "string" ? msg : JSON.stringify(msg));
      return true;
    } catch {
      return false;
    }
  }

  _onFrame(gen, data) {
    if (gen !== this._gen) return;
    this._lastRx = Date.now();
    if (typeof data !== "string") return; // the node sends text only
    let m;
    try { m = JSON.parse(data); } catch { return; }
    if (!m || typeof m !== "object") return;
    const hasId = typeof m.id === "number";
    const request = hasId ? this._requests.get(m.id) : undefined;
    if (request) {
      this._requests.delete(m.id);
      if (m.op === "error") request.onError?.(m);
      else request.onReply?.(m);
      return;
    }
    switch (m.op) {
      case "subscribed": {
        const sub = this._subs.get(m.channel);
        if (sub && sub.state !== "ended") sub._onSubscribed(m, gen, !hasId);
        else if (!hasId) this._enqueue({ op: "unsubscribe", id: this._id(), channel: m.channel });
        break;
      }
      case "message": {
        const sub = this._subs.get(m.channel);
        if (sub && typeof m.serial === "number") sub._onMessage(m, gen);
        break;
      }
      case "discontinuity": {
        const sub = this._subs.get(m.channel);
        if (sub) sub._onDiscontinuity(m);
        break;
      }
      case "unsubscribed": {
        const sub = this._subs.get(m.channel);
        if (sub && !hasId) {
          this._subs.delete(m.channel);
          const reason = m.reason || "unsubscribed";
          sub._end(reason, new HeraldError(reason, `the node ended the subscription to ${m.channel} (${reason})`, { channel: m.channel }));
        }
        break;
      }
      case "error":
        this._onServerError(m);
        break;
      default:
        break; // pong without a pending ping, or an op this version does not know
    }
  }

  _onServerError(m) {
    if (m.code === "token_expired") {
      if (this._getToken) {
        this._refresh();
      } else if (this._token && this._token !== this._lastSentToken) {
        this._sendRefresh(this._token);
      } else {
        this.emit("error", new HeraldError("token_expired",
          "the token expired; without getToken or setToken() the node will close the connection (4001)"));
      }
      return;
    }
    this.emit("error", new HeraldError(m.code || "error", m.message || m.code));
  }

  // ---- pacing ------------------------------------------------------------------------------------------------

  _take() {
    const { rate, burst } = this.options;
    if (!rate) return 0;
    const now = Date.now();
    this._tokens = Math.min(burst, this._tokens + ((now - this._tokensAt) * rate) / 1000);
    this._tokensAt = now;
    if (this._tokens >= 1) { this._tokens -= 1; return 0; }
    return Math.ceil(((1 - this._tokens) * 1000) / rate);
  }

  _enqueue(entry, front = false) {
    const item = entry.op ? { msg: entry } : entry;
    if (front) this._ctl.unshift(item); else this._ctl.push(item);
    this._pump();
  }

  _pump() {
    if (this._state !== "connected" || !this._sock || this._timers.pump) return;
    const gen = this._gen;
    while (this._ctl.length || this._pubQueue.length) {
      const now = Date.now();
      let wait = this._pauseUntil > now ? this._pauseUntil - now : this._take();
      if (wait > 0) {
        this._timers.pump = setTimeout(() => { delete this._timers.pump; if (gen === this._gen) this._pump(); }, wait);
        return;
      }
      if (this._ctl.length) {
        const item = this._ctl.shift();
        const msg = typeof item.build === "function" ? item.build() : item.msg;
        if (!msg) continue;
        this._write(msg);
        item.onWrite?.();
      } else {
        const rec = this._pubQueue.shift();
        if (!this._pubs.has(rec.seq)) continue;
        this._sendPublish(rec);
      }
      if (gen !== this._gen) return;
    }
  }

  // ---- subscriptions -----------------------------------------------------------------------------------------

  subscribe(channel, options = {}) {
    if (typeof channel !== "string" || !channel) throw new TypeError("subscribe: channel must be a non-empty string");
    if (this._terminal) throw new HeraldError("closed", "the client was closed; call connect() first");
    const existing = this._subs.get(channel);
    if (existing && existing.state !== "ended") {
      throw new HeraldError("already_subscribed", `already subscribed to ${channel}`, { channel });
    }
    let since = options.since;
    if (since !== undefined && since !== null && !validPosition(since)) {
      throw new TypeError("subscribe: since must be {serial: integer ≥ 0, epoch: non-empty string}");
    }
    const sub = new Subscription(this, channel, since || null);
    this._subs.set(channel, sub);
    if (this._state === "connected") this._sendSubscribe(sub, this._gen);
    return sub;
  }

  _sendSubscribe(sub, conn) {
    let tries = 0;
    const send = () => {
      if (conn !== this._gen || sub.state === "ended" || this._subs.get(sub.channel) !== sub) return;
      const id = this._id();
      const msg = { op: "subscribe", id, channel: sub.channel };
      if (validPosition(sub.position)) msg.since = { serial: sub.position.serial, epoch: sub.position.epoch };
      this._requests.set(id, {
        onReply: (m) => { if (sub.state !== "ended") sub._onSubscribed(m, conn, false); },
        onError: (m) => {
          if (m.code === "already_subscribed") return; // restored from the session: its `subscribed` comes on its own
          if (SUBSCRIBE_RETRY.has(m.code)) {
            const delay = m.code === "rate_limited" ? this.options.retryDelay : this._backoffDelay(tries++) + 100;
            this._timers["sub:" + id] = setTimeout(() => {
              delete this._timers["sub:" + id];
              this._enqueue({ build: send });
            }, delay);
            return;
          }
          if (this._subs.get(sub.channel) === sub) this._subs.delete(sub.channel);
          sub._end(m.code, new HeraldError(m.code, m.message || m.code, { channel: sub.channel }));
        },
      });
      return msg;
    };
    this._enqueue({ build: send });
  }

  _unsubscribe(sub) {
    if (sub.state === "ended") return Promise.resolve();
    if (this._subs.get(sub.channel) === sub) this._subs.delete(sub.channel);
    const live = sub.state === "subscribed" && sub._conn === this._gen && this._state === "connected";
    sub._end(null, null);
    if (!live) return Promise.resolve(); // a session restore of it is answered with an unsubscribe (_onFrame)
    return new Promise((resolve) => {
      const id = this._id();
      this._requests.set(id, { onReply: () => resolve(), onError: () => resolve(), onLost: () => resolve() });
      this._enqueue({ op: "unsubscribe", id, channel: sub.channel });
    });
  }

  // ---- publish -----------------------------------------------------------------------------------------------

  publish(channel, data, options = {}) {
    if (this._terminal) return Promise.reject(new HeraldError("closed", "the client was closed; call connect() first"));
    if (typeof channel !== "string" || !channel) {
      return Promise.reject(new HeraldError("invalid_channel", "publish: channel must be a non-empty string"));
    }
    let json;
    try { json = JSON.stringify(data === undefined ? null : data); } catch (err) {
      return Promise.reject(new HeraldError("bad_request", "publish: data is not JSON-serialisable: " + err.message, { cause: err }));
    }
    const key = options.key !== undefined ? String(options.key) : randomKey();
    if (!key || key.length > 128) return Promise.reject(new HeraldError("bad_request", "publish: key must be 1-128 characters"));
    if (json.length * 3 + key.length + channel.length + 64 > this.options.maxMessageSize &&
        new TextEncoder().encode(json).length + key.length + channel.length + 64 > this.options.maxMessageSize) {
      return Promise.reject(new HeraldError("message_too_large",
        `publish: the message exceeds maxMessageSize (${this.options.maxMessageSize} bytes)`, { channel }));
    }
    if (this._pubQueue.length >= this.options.maxQueue || (this._state !== "connected" && this._pubs.size >= this.options.maxQueue)) {
      return Promise.reject(new HeraldError("queue_full",
        `publish queue full: ${this.options.maxQueue} publishes are waiting to be sent (maxQueue)`, { channel }));
    }
    return new Promise((resolve, reject) => {
      const rec = { seq: ++this._pubSeq, channel, json, key, resolve, reject, attempts: 0 };
      this._pubs.set(rec.seq, rec);
      if (this._state === "connected") {
        this._pubQueue.push(rec);
        this._pump();
      }
    });
  }

  _sendPublish(rec) {
    const id = this._id();
    rec.attempts++;
    this._requests.set(id, {
      onReply: (m) => {
        if (!this._pubs.delete(rec.seq)) return;
        rec.resolve({ channel: rec.channel, serial: m.serial });
      },
      onError: (m) => {
        if (!this._pubs.has(rec.seq)) return;
        if (RETRY_LATER.has(m.code)) {
          this._pauseUntil = Date.now() + this.options.retryDelay;
          let i = 0;
          while (i < this._pubQueue.length && this._pubQueue[i].seq < rec.seq) i++;
          this._pubQueue.splice(i, 0, rec);
          this._pump();
          return;
        }
        this._pubs.delete(rec.seq);
        rec.reject(new HeraldError(m.code, m.message || m.code, { channel: rec.channel }));
      },
    });
    // The key travels with every attempt: a retry after a lost reply is stored once (protocol §9).
    this._write(`{"op":"publish","id":${id},"channel":${JSON.stringify(rec.channel)},"data":${rec.json},"key":${JSON.stringify(rec.key)}}`);
  }

  // ---- history -----------------------------------------------------------------------------------------------

  history(channel, options = {}) {
    if (this._terminal) return Promise.reject(new HeraldError("closed", "the client was closed; call connect() first"));
    if (typeof channel !== "string" || !channel) {
      return Promise.reject(new HeraldError("invalid_channel", "history: channel must be a non-empty string"));
    }
    let since = options.since;
    if (since !== undefined && since !== null && typeof since === "object") since = since.serial;
    if (since !== undefined && since !== null && !(Number.isSafeInteger(since) && since >= 0)) {
      return Promise.reject(new HeraldError("bad_request", "history: since must be an integer ≥ 0 or a position"));
    }
    const limit = options.limit;
    if (limit !== undefined && limit !== null && !(Number.isSafeInteger(limit) && limit >= 0)) {
      return Promise.reject(new HeraldError("bad_request", "history: limit must be an integer ≥ 0"));
    }
    return new Promise((resolve, reject) => {
      const rec = { channel, since, limit, resolve, reject, sent: false };
      this._histories.add(rec);
      if (this._state === "connected") this._sendHistory(rec);
    });
  }

  _sendHistory(rec) {
    if (rec.sent) return;
    rec.sent = true;
    const conn = this._gen;
    this._enqueue({
      build: () => {
        if (conn !== this._gen || !this._histories.has(rec)) return null;
        const id = this._id();
        const msg = { op: "history", id, channel: rec.channel };
        if (rec.since !== undefined && rec.since !== null) msg.since = rec.since;
        if (rec.limit !== undefined && rec.limit !== null) msg.limit = rec.limit;
        this._requests.set(id, {
          onReply: (m) => {
            if (!this._histories.delete(rec)) return;
            rec.resolve({ channel: m.channel, epoch: m.epoch, serial: m.serial, messages: m.messages || [] });
          },
          onError: (m) => {
            if (!this._histories.has(rec)) return;
            if (RETRY_LATER.has(m.code)) {
              this._pauseUntil = Date.now() + this.options.retryDelay;
              rec.sent = false;
              this._sendHistory(rec);
              return;
            }
            this._histories.delete(rec);
            rec.reject(new HeraldError(m.code, m.message || m.code, { channel: rec.channel }));
          },
        });
        return msg;
      },
    });
  }

  // ---- liveness ----------------------------------------------------------------------------------------------

  _pingInterval() {
    if (this.options.pingInterval > 0) return this.options.pingInterval;
    return Math.max(1, this._heartbeat || 25) * 1000;
  }

  // Browsers cannot see WebSocket pings: silence for a heartbeat earns a `ping` op, and silence after it a reconnect.
  _armLiveness(delay) {
    clearTimeout(this._timers.live);
    const gen = this._gen;
    this._timers.live = setTimeout(() => { if (gen === this._gen) this._liveTick(); }, Math.max(1, delay));
  }

  _liveTick() {
    const now = Date.now();
    if (this._pingSentAt !== null) {
      if (this._lastRx >= this._pingSentAt) {
        this._pingSentAt = null;
      } else if (now - this._pingSentAt >= this.options.pongTimeout) {
        this._lost(this._gen, { code: 0, reason: "liveness_timeout" });
        return;
      } else {
        this._armLiveness(this._pingSentAt + this.options.pongTimeout - now);
        return;
      }
    }
    if (this._pingQueued) return; // armed again once the ping is written
    const interval = this._pingInterval();
    const idle = now - this._lastRx;
    if (idle < interval) {
      this._armLiveness(interval - idle);
      return;
    }
    this._pingQueued = true;
    const id = this._id();
    this._requests.set(id, {}); // the pong needs no handling: any frame counts as life
    this._enqueue({
      msg: { op: "ping", id },
      onWrite: () => {
        this._pingQueued = false;
        this._pingSentAt = Date.now();
        this._armLiveness(this.options.pongTimeout);
      },
    }, true);
  }

  // ---- tokens ------------------------------------------------------------------------------------------------

  _expiresSoon(token) {
    const exp = tokenExpiry(token);
    return exp !== null && exp - Date.now() < Math.min(this.options.refreshBefore, 5000);
  }

  _scheduleRefresh() {
    clearTimeout(this._timers.refresh);
    if (!this._getToken || !(this.options.refreshBefore > 0)) return;
    const exp = tokenExpiry(this._lastSentToken);
    if (exp === null) return;
    const remaining = exp - Date.now();
    const lead = Math.min(this.options.refreshBefore, Math.max(0, remaining) / 2);
    const gen = this._gen;
    this._timers.refresh = setTimeout(() => { if (gen === this._gen) this._refresh(); }, Math.max(0, remaining - lead));
  }

  async _refresh() {
    if (this._refreshing || !this._getToken || this._state !== "connected") return;
    this._refreshing = true;
    const gen = this._gen;
    let token;
    try {
      token = await this._getToken();
    } catch (err) {
      if (gen !== this._gen) return;
      this._refreshing = false;
      this.emit("error", new HeraldError("token_unavailable", "getToken() failed: " + (err && err.message || err), { cause: err }));
      this._timers.refresh = setTimeout(() => { if (gen === this._gen) this._refresh(); }, 2000);
      return;
    }
    if (gen !== this._gen) return;
    this._refreshing = false;
    if (typeof token !== "string" || !token) {
      this.emit("error", new HeraldError("token_unavailable", "getToken() returned no token"));
      this._timers.refresh = setTimeout(() => { if (gen === this._gen) this._refresh(); }, 2000);
      return;
    }
    this._token = token;
    this._sendRefresh(token);
  }

  _sendRefresh(token) {
    const gen = this._gen;
    this._refreshing = true;
    this._enqueue({
      build: () => {
        if (gen !== this._gen) return null;
        const id = this._id();
        this._lastSentToken = token;
        this._requests.set(id, {
          onReply: (m) => {
            this._refreshing = false;
            this.emit("refreshed", { expires: m.expires });
            this._scheduleRefresh();
          },
          onError: (m) => {
            this._refreshing = false;
            if (RETRY_LATER.has(m.code)) {
              this._pauseUntil = Date.now() + this.options.retryDelay;
              this._sendRefresh(token);
            }
            // `unauthorized` is followed by close 4001, handled in _lost.
          },
        });
        return { op: "refresh", id, token };
      },
    }, true);
  }
}

export default Herald;
