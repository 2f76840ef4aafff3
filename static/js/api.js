// The REST API (/api/v1) and the URLs of nodes.
import { state } from "./state.js";

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

export async function api(method, url, payload, headers = {}) {
  const h = { "X-CSRF-Token": state.csrf, ...headers };
  const init = { method, headers: h, credentials: "same-origin" };
  if (payload !== undefined) {
    if (payload instanceof Uint8Array) { init.body = payload; h["Content-Type"] = "application/octet-stream"; }
    else if (typeof payload === "string") { init.body = payload; h["Content-Type"] = "application/json"; }
    else { init.body = JSON.stringify(payload); h["Content-Type"] = "application/json"; }
  }
  const r = await fetch(url, init);
  let data = null;
  try { data = await r.json(); } catch (_) { /* not JSON */ }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

export function errText(e) {
  if (e instanceof ApiError) return (e.body.error ? e.body.error + ": " : "") + e.message;
  return String(e);
}
