// The REST API (/api/v1) and the URLs of nodes.
import { state } from "./state.js";
import { connectionLost } from "./connection.js";

function encPath(path) {
  return path === "/" ? "" : path.split("/").map(encodeURIComponent).join("/");
}
export function uiHref(path) { return state.base + "/ui" + (path === "/" ? "/" : encPath(path)); }
export function apiNode(path) { return state.base + "/api/v1/znodes" + (path === "/" ? "/" : encPath(path)); }
export function apiUrl(rest) { return state.base + "/api/v1" + rest; }
export function join(parent, name) { return parent === "/" ? "/" + name : parent + "/" + name; }
export function parentOf(path) { const i = path.lastIndexOf("/"); return i <= 0 ? "/" : path.slice(0, i); }

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.message || body.error)) || "HTTP " + status);
    this.status = status; this.body = body || {};
  }
}

// No answer from this member: it is down or unreachable. Nothing was changed by the request
// as far as this page can tell (a write may still have been applied before the connection
// broke; the live stream reports it once the member is back).
export class NetworkError extends Error {
  constructor() {
    super(`no answer from ${location.host}: the connection to this member is lost`);
  }
}

export async function api(method, url, payload, headers = {}) {
  const h = { "X-CSRF-Token": state.csrf, ...headers };
  const init = { method, headers: h, credentials: "same-origin" };
  if (payload !== undefined) {
    if (payload instanceof Uint8Array) { init.body = payload; h["Content-Type"] = "application/octet-stream"; }
    else if (typeof payload === "string") { init.body = payload; h["Content-Type"] = "application/json"; }
    else { init.body = JSON.stringify(payload); h["Content-Type"] = "application/json"; }
  }
  let r;
  try { r = await fetch(url, init); }
  catch (_) {
    // fetch rejects only when no answer came at all.
    connectionLost();
    throw new NetworkError();
  }
  let data = null;
  try { data = await r.json(); } catch (_) { /* not JSON */ }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

export function errText(e) {
  if (e instanceof ApiError) return (e.body.error ? e.body.error + ": " : "") + e.message;
  if (e instanceof NetworkError) return e.message;
  return String(e);
}
