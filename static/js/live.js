// The live stream: one WebSocket to /api/v1/watch, resubscribed (from the last zxid seen)
// after every reconnect. Modules subscribe with a handler; events go to the handler of
// their subscription id.
import { $ } from "./dom.js";
import { state } from "./state.js";
import { connectionLost, connectionBack } from "./connection.js";

const subs = new Map(); // id -> { path, mode, data, handler }
const acked = new Set();
// The first subscription replays from the zxid the page was read at, so that a change
// made while the page loaded is not missed.
const pageZxid = document.body.dataset.feedZxid;
let ws = null, lastZxid = pageZxid ? Number(pageZxid) : null, retry = 500;
let onResync = () => {};
// Subscription ids that must be acknowledged before the page counts as live.
let readyIds = [];

function send(msg) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(msg)); }

export function connect({ ready = [], resync = () => {} } = {}) {
  readyIds = ready;
  onResync = resync;
  open();
}

function open() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  ws = new WebSocket(`${proto}//${location.host}${state.base}/api/v1/watch`);
  const badge = $("#live");
  ws.onopen = () => {
    retry = 500;
    connectionBack();
    badge.textContent = "live"; badge.classList.add("on");
    for (const [id, s] of subs) send({ type: "subscribe", id, path: s.path, mode: s.mode, data: s.data, since_zxid: lastZxid ?? undefined });
  };
  ws.onclose = (e) => {
    acked.clear(); badge.dataset.ready = "false";
    // A close the server chose (with a reason) is not a lost connection.
    if (!e.reason) connectionLost();
    badge.textContent = e.reason ? "offline: " + e.reason : "offline"; badge.classList.remove("on");
    setTimeout(open, retry);
    retry = Math.min(retry * 2, 15000);
  };
  ws.onmessage = (m) => { try { onMessage(JSON.parse(m.data)); } catch (e) { console.error(e); } };
}

export function subscribe(id, path, mode, data, handler) {
  subs.set(id, { path, mode, data, handler });
  send({ type: "subscribe", id, path, mode, data });
}
export function unsubscribe(id) { subs.delete(id); send({ type: "unsubscribe", id }); }

function onMessage(m) {
  if (m.type === "resync") { onResync(); return; }
  if (m.type === "subscribed") {
    // Ready once the page's own subscriptions are acknowledged (tests and users can rely on it).
    acked.add(m.id);
    $("#live").dataset.ready = String(readyIds.every((id) => acked.has(id)));
    return;
  }
  if (m.sub === undefined || !m.path) return;
  if (typeof m.zxid === "number") lastZxid = Math.max(lastZxid ?? 0, m.zxid);
  const s = subs.get(m.sub);
  if (s) s.handler(m);
}
