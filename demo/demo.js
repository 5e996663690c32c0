// Logic of the /demo/ page: shared cursors on `demo:cursors` and a chat with history on `demo:chat`, over the SDK.
// Everything that arrives from other users is untrusted: it is checked, clamped and shown with textContent only.
import { Herald } from "/sdk/herald-client.js";

const CHAT = "demo:chat";
const CURSORS = "demo:cursors";
const CHAT_HISTORY = 50;            // lines shown on load
const CURSOR_MIN_INTERVAL_MS = 50;  // ≤ 20 publishes/s: well under the node's default 50 commands/s per connection
const CURSOR_KEEPALIVE_MS = 1500;   // a pointer held still is re-announced, so the others keep drawing it
const CURSOR_STALE_MS = 5000;       // a cursor not heard of for this long is removed
const MAX_NAME = 32;
const MAX_TEXT = 500;

const $ = (id) => document.getElementById(id);
const ui = {
  state: $("state"), stateLabel: $("state-label"), node: $("node"), me: $("me"),
  board: $("board"), chat: $("chat"), composer: $("composer"), input: $("chat-input"), notice: $("notice"),
  serial: {
    [CHAT]: document.querySelector(`[data-channel="${CHAT}"]`),
    [CURSORS]: document.querySelector(`[data-channel="${CURSORS}"]`),
  },
};

// ---- who am I ---------------------------------------------------------------------------------------------------

const ADJECTIVES = ["Amber", "Brave", "Calm", "Clever", "Cosy", "Daring", "Eager", "Fuzzy", "Gentle", "Happy",
  "Jolly", "Kind", "Lucky", "Mellow", "Nimble", "Plucky", "Quick", "Quiet", "Sunny", "Swift", "Witty", "Zesty"];
const ANIMALS = ["Badger", "Beaver", "Falcon", "Fox", "Gecko", "Heron", "Koala", "Lynx", "Marmot", "Narwhal", "Otter",
  "Owl", "Panda", "Puffin", "Quokka", "Raccoon", "Seal", "Tapir", "Wombat", "Yak"];

function pick(list) {
  return list[Math.floor(Math.random() * list.length)];
}

// Names come from the URL or from other users: one line of printable text, bounded.
function cleanName(value) {
  if (typeof value !== "string") return "";
  return value.replace(/[\u0000-\u001f\u007f]/g, "").replace(/\s+/g, " ").trim().slice(0, MAX_NAME);
}

// The colour follows from the name alone, so every tab paints a given user the same way without sending colours.
function colorFor(name) {
  let h = 0x811c9dc5;  // FNV-1a
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `hsl(${h % 360} 68% 42%)`;
}

function randomId() {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const me = { id: randomId(), name: cleanName(new URLSearchParams(location.search).get("name")) };
if (!me.name) me.name = `${pick(ADJECTIVES)} ${pick(ANIMALS)}`;
me.color = colorFor(me.name);
ui.me.textContent = me.name;
ui.me.style.setProperty("--me", me.color);
document.title = `${me.name} · Herald demo`;

// ---- connection ---------------------------------------------------------------------------------------------------

const wsUrl = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
const client = new Herald(wsUrl, { name: me.name });

let noticeTimer = null;
function notify(text, bad = false) {
  ui.notice.textContent = text;
  ui.notice.classList.toggle("bad", bad);
  clearTimeout(noticeTimer);
  if (text) noticeTimer = setTimeout(() => { ui.notice.textContent = ""; }, 8000);
}

const STATE_LABELS = { connecting: "connecting…", connected: "connected", disconnected: "reconnecting…",
  closed: "closed" };

function showState(state) {
  ui.state.dataset.state = state;
  ui.stateLabel.textContent = STATE_LABELS[state] || state;
  if (state === "connected") {
    const node = typeof client.node === "string" ? client.node : "";
    ui.node.dataset.node = node;
    ui.node.textContent = node || "—";
    if (!chatStarted) startChat();
  }
}

function describe(err) {
  if (!err) return "unknown error";
  return err.code || err.message || String(err);
}

client.on("state", showState);
client.on("error", (err) => notify(`Connection problem: ${describe(err)}`, true));

function showSerial(channel, sub) {
  const serial = sub && sub.position ? sub.position.serial : undefined;
  ui.serial[channel].textContent = serial === undefined || serial === null ? "—" : `#${serial}`;
}

const subscribedOnce = new Set();
function markSubscribed(channel) {
  subscribedOnce.add(channel);
  if (subscribedOnce.has(CHAT) && subscribedOnce.has(CURSORS)) document.documentElement.dataset.ready = "true";
}

// ---- shared cursors -------------------------------------------------------------------------------------------------

const cursors = new Map();  // sender id → {el, seen}
let pointer = null;         // this tab's pointer on the board, as fractions of its size; null when outside
let lastSentAt = -Infinity;
let sendTimer = null;

function sendCursor(message) {
  // Positions are worth nothing later: while disconnected they are dropped instead of queued in the SDK.
  if (client.state !== "connected") return;
  client.publish(CURSORS, message).catch(() => {});
}

function flushPointer() {
  sendTimer = null;
  if (!pointer) return;
  lastSentAt = performance.now();
  sendCursor({ id: me.id, name: me.name, x: pointer.x, y: pointer.y });
}

// Leading edge right away, then at most one send per interval carrying the newest position: the trailing send is
// the position where the pointer stopped.
function schedulePointer() {
  if (sendTimer !== null) return;
  const wait = lastSentAt + CURSOR_MIN_INTERVAL_MS - performance.now();
  if (wait <= 0) flushPointer();
  else sendTimer = setTimeout(flushPointer, wait);
}

function clamp01(v) {
  return Math.min(1, Math.max(0, v));
}

ui.board.addEventListener("pointermove", (event) => {
  const box = ui.board.getBoundingClientRect();
  if (box.width <= 0 || box.height <= 0) return;
  pointer = {
    x: Math.round(clamp01((event.clientX - box.left) / box.width) * 10000) / 10000,
    y: Math.round(clamp01((event.clientY - box.top) / box.height) * 10000) / 10000,
  };
  schedulePointer();
});

function leaveBoard() {
  if (!pointer) return;
  pointer = null;
  clearTimeout(sendTimer);
  sendTimer = null;
  sendCursor({ id: me.id, name: me.name, gone: true });
}
ui.board.addEventListener("pointerleave", leaveBoard);
window.addEventListener("pagehide", leaveBoard);

setInterval(() => {
  if (pointer && sendTimer === null && performance.now() - lastSentAt >= CURSOR_KEEPALIVE_MS) flushPointer();
}, 500);

const SVG = "http://www.w3.org/2000/svg";
function cursorElement(name) {
  const el = document.createElement("div");
  el.className = "cursor";
  el.dataset.cursor = name;
  el.style.setProperty("--c", colorFor(name));
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 22 22");
  svg.setAttribute("aria-hidden", "true");
  const arrow = document.createElementNS(SVG, "path");
  arrow.setAttribute("d", "M2 1.5 L2 18 L6.6 13.8 L9.6 20.2 L12.6 18.8 L9.7 12.6 L16 12.3 Z");
  svg.append(arrow);
  const label = document.createElement("span");
  label.className = "cursor-name";
  label.textContent = name;
  el.append(svg, label);
  return el;
}

function removeCursor(id) {
  const c = cursors.get(id);
  if (!c) return;
  c.el.remove();
  cursors.delete(id);
  ui.board.classList.toggle("has-cursors", cursors.size > 0);
}

function onCursor(data) {
  if (!data || typeof data !== "object") return;
  const id = typeof data.id === "string" ? data.id.slice(0, 64) : "";
  const name = cleanName(data.name);
  if (!id || !name || id === me.id) return;
  if (data.gone === true) {
    removeCursor(id);
    return;
  }
  if (!Number.isFinite(data.x) || !Number.isFinite(data.y)) return;
  let c = cursors.get(id);
  if (!c || c.el.dataset.cursor !== name) {
    removeCursor(id);
    c = { el: cursorElement(name), seen: 0 };
    cursors.set(id, c);
    ui.board.append(c.el);
    ui.board.classList.add("has-cursors");
  }
  c.seen = performance.now();
  c.el.classList.remove("fading");
  c.el.style.left = `${clamp01(data.x) * 100}%`;
  c.el.style.top = `${clamp01(data.y) * 100}%`;
}

setInterval(() => {
  const now = performance.now();
  for (const [id, c] of cursors) {
    const age = now - c.seen;
    if (age > CURSOR_STALE_MS) removeCursor(id);
    else c.el.classList.toggle("fading", age > CURSOR_STALE_MS - 2000);
  }
}, 250);

const cursorSub = client.subscribe(CURSORS);
cursorSub.on("message", (data) => {
  showSerial(CURSORS, cursorSub);
  onCursor(data);
});
cursorSub.on("subscribed", () => {
  showSerial(CURSORS, cursorSub);
  markSubscribed(CURSORS);
});
cursorSub.on("discontinuity", () => showSerial(CURSORS, cursorSub));

// ---- chat -------------------------------------------------------------------------------------------------------

let chatStarted = false;
let chatSub = null;
let lastLine = null;  // serial of the newest line shown; null after a discontinuity (serials may restart)
let duplicates = 0;
let gaps = 0;
let discontinuities = 0;

function nearBottom() {
  return ui.chat.scrollHeight - ui.chat.scrollTop - ui.chat.clientHeight < 40;
}

function appendToChat(el) {
  const stick = nearBottom();
  ui.chat.append(el);
  if (stick) ui.chat.scrollTop = ui.chat.scrollHeight;
}

// Lines are shown in arrival order, which the SDK guarantees to be serial order without holes or repeats, or else
// announces a discontinuity. Anything else is counted on the list (data-duplicates, data-gaps, data-discontinuities)
// so that tests and curious people can see it.
function addLine(data, serial) {
  if (!Number.isSafeInteger(serial)) return;
  if (lastLine !== null && serial <= lastLine) {
    duplicates += 1;
    ui.chat.dataset.duplicates = String(duplicates);
    console.warn(`demo: chat serial ${serial} arrived after ${lastLine}; not shown twice`);
    return;
  }
  if (lastLine !== null && serial !== lastLine + 1) {
    gaps += 1;
    ui.chat.dataset.gaps = String(gaps);
    console.warn(`demo: chat serials ${lastLine + 1}..${serial - 1} never arrived`);
  }
  lastLine = serial;

  const message = data && typeof data === "object" ? data : {};
  const name = cleanName(message.name) || "someone";
  const text = typeof message.text === "string" ? message.text.slice(0, MAX_TEXT) : "";
  const li = document.createElement("li");
  li.className = "line";
  li.dataset.chatLine = "";
  li.dataset.serial = String(serial);
  if (message.id === me.id) li.classList.add("mine");
  li.style.setProperty("--c", colorFor(name));
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = name;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  const tag = document.createElement("span");
  tag.className = "serial";
  tag.textContent = `#${serial}`;
  li.append(who, body, tag);
  appendToChat(li);
}

function addDivider(text) {
  const li = document.createElement("li");
  li.className = "divider";
  li.textContent = text;
  appendToChat(li);
}

// History first, then a subscription that resumes right after the newest line of that history: the node replays
// whatever was published in between, so the seam has no hole and no repeat.
async function startChat() {
  chatStarted = true;
  let since;
  try {
    const history = await client.history(CHAT, { limit: CHAT_HISTORY });
    for (const m of history.messages || []) addLine(m.data, m.serial);
    since = { serial: history.serial, epoch: history.epoch };
    ui.serial[CHAT].textContent = `#${history.serial}`;
  } catch (err) {
    chatStarted = false;  // try again on the next `connected`
    notify(`Could not load the chat history: ${describe(err)}`, true);
    return;
  }
  chatSub = client.subscribe(CHAT, { since });
  chatSub.on("message", (data, meta) => {
    addLine(data, meta && meta.serial);
    showSerial(CHAT, chatSub);
  });
  chatSub.on("subscribed", () => {
    showSerial(CHAT, chatSub);
    markSubscribed(CHAT);
  });
  chatSub.on("discontinuity", (info) => {
    discontinuities += 1;
    ui.chat.dataset.discontinuities = String(discontinuities);
    lastLine = null;
    const reason = info && typeof info.reason === "string" ? ` (${info.reason})` : "";
    addDivider(`Some lines could not be replayed${reason}: they are older than the node keeps.`);
    showSerial(CHAT, chatSub);
  });
}

let sending = 0;
ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.input.value.trim().slice(0, MAX_TEXT);
  if (!text) return;
  ui.input.value = "";
  sending += 1;
  if (client.state !== "connected") notify(`Offline: ${sending} line(s) will be sent on reconnect.`);
  client.publish(CHAT, { id: me.id, name: me.name, text })
    .then(() => {
      sending -= 1;
      if (sending === 0 && ui.notice.textContent.startsWith("Offline")) notify("");
    }, (err) => {
      sending -= 1;
      if (!ui.input.value) ui.input.value = text;
      notify(`Not sent: ${describe(err)}`, true);
    });
});

// connect() settles with the first connection; the SDK keeps reconnecting by itself afterwards.
client.connect().catch((err) => notify(`Cannot connect: ${describe(err)}`, true));
