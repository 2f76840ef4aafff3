// Subtree jobs: delete, copy, move, recursive ACL and export of subtrees over the multi
// limit run on the server in batches (GET/DELETE /api/v1/jobs/<id>). This module shows
// them in a panel with a progress bar, done/total, a Cancel button and the outcome, and
// downloads exports (streamed, with progress when the server runs them as a job).
import { $, el, toast } from "./dom.js";
import { state } from "./state.js";
import { api, apiUrl, errText, ApiError, NetworkError } from "./api.js";
import { connectionLost } from "./connection.js";

const KIND = { delete: "Delete", copy: "Copy", move: "Move", setAcl: "Set ACL", export: "Export" };
const POLL_MS = 300;
const tracked = new Map(); // id -> { row, done: Promise, resolve }

function panel() {
  let p = $("#jobs-panel");
  if (!p) {
    p = el("section", { id: "jobs-panel", class: "jobs-panel", "data-testid": "jobs-panel", "aria-label": "Subtree jobs", "aria-live": "polite" });
    document.body.append(p);
  }
  return p;
}

function fmt(n) { return n === null || n === undefined ? "…" : Number(n).toLocaleString("en-US"); }

function describeTarget(j) { return j.destination ? `${j.path} → ${j.destination}` : j.path; }

function render(row, j) {
  row.dataset.state = j.state;
  $(".job-title", row).textContent = `${KIND[j.kind] || j.kind} ${describeTarget(j)}`;
  const bar = $("progress", row);
  if (j.total) { bar.max = j.total; bar.value = Math.min(j.done, j.total); } else bar.removeAttribute("value");
  const phase = j.state === "running" ? (j.phase === "counting" ? "counting nodes…" : j.phase) : j.state;
  $(".job-count", row).textContent = `${fmt(j.done)} / ${fmt(j.total)} nodes · ${phase}`;
  $(".job-cancel", row).hidden = j.state !== "running";
  $(".job-close", row).hidden = j.state === "running";
  const out = $(".job-outcome", row);
  const err = j.error ? ` ${j.error.error}: ${j.error.message}` : "";
  out.textContent = j.state === "running"
    ? `Not atomic: each batch of ${fmt(j.batchSize)} is one multi.`
    : (j.outcome || "") + err;
  out.classList.toggle("error", j.state === "failed");
}

function row(j) {
  const r = el("div", { class: "job", "data-testid": "job", "data-job-id": String(j.id) },
    el("div", { class: "row tight" },
      el("strong", { class: "job-title" }),
      el("span", { class: "spacer" }),
      el("button", { type: "button", class: "small danger job-cancel", "data-testid": "job-cancel", text: "Cancel" }),
      el("button", { type: "button", class: "small job-close", "data-testid": "job-close", "aria-label": "Dismiss", text: "✕" })),
    el("progress", { "data-testid": "job-progress", "aria-label": "Progress" }),
    el("div", { class: "small job-count", "data-testid": "job-count" }),
    el("p", { class: "small job-outcome", "data-testid": "job-outcome" }));
  $(".job-cancel", r).addEventListener("click", async () => {
    $(".job-cancel", r).disabled = true;
    try { render(r, await api("DELETE", apiUrl("/jobs/" + j.id))); }
    catch (e) { toast("Not cancelled: " + errText(e), true); }
  });
  $(".job-close", r).addEventListener("click", () => { r.remove(); tracked.delete(j.id); });
  return r;
}

// Shows a job and follows it until it ends; resolves with its final state.
export function track(j) {
  if (tracked.has(j.id)) return tracked.get(j.id).done;
  const r = row(j);
  panel().append(r);
  render(r, j);
  let resolve;
  const done = new Promise((res) => { resolve = res; });
  tracked.set(j.id, { row: r, done });
  const poll = async () => {
    let cur;
    try { cur = await api("GET", apiUrl("/jobs/" + j.id)); }
    catch (e) {
      if (e instanceof ApiError && e.status === 404) { r.remove(); tracked.delete(j.id); resolve(null); return; }
      setTimeout(poll, POLL_MS * 4);
      return;
    }
    render(r, cur);
    if (cur.state === "running") setTimeout(poll, POLL_MS);
    else resolve(cur);
  };
  setTimeout(poll, POLL_MS);
  return done;
}

// An answer that may be a started job ({job}): follows it and resolves with the finished
// job, or null when the operation was done at once (atomically).
export async function followIfJob(answer) {
  if (!answer || !answer.job) return null;
  return track(answer.job);
}

// Downloads the export of `path`: streamed by the server; when it runs as a job (a large
// subtree), the panel shows its progress and it can be cancelled.
export async function exportSubtree(path) {
  const url = apiUrl("/export?path=" + encodeURIComponent(path));
  let r;
  try { r = await fetch(url, { credentials: "same-origin" }); }
  catch (_) { connectionLost(); toast(new NetworkError().message, true, 8000); return; }
  if (!r.ok) {
    let body = null;
    try { body = await r.json(); } catch (_) { /* not JSON */ }
    toast("Export failed: " + errText(new ApiError(r.status, body)), true, 8000);
    return;
  }
  const id = r.headers.get("X-Roost-Job");
  const finished = id ? track({ id: Number(id), kind: "export", path, state: "running", phase: "counting", done: 0, total: null, batchSize: 0 }) : null;
  const parts = [];
  try {
    const reader = r.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
    }
  } catch (_) {
    // The server cuts the stream short on a cancel or an error: no partial file is saved.
    const j = finished ? await finished : null;
    toast("Export not saved: " + (j && j.outcome ? j.outcome : "the download was cut short"), true, 8000);
    return;
  }
  const disposition = r.headers.get("Content-Disposition") || "";
  const m = disposition.match(/filename="([^"]+)"/);
  const a = el("a", { href: URL.createObjectURL(new Blob(parts, { type: "application/json" })), download: m ? m[1] : "znodes.json", "data-testid": "export-download" });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 60_000);
  const j = finished ? await finished : null;
  toast(j && j.outcome ? j.outcome : `Exported ${path}`);
}

// Running jobs of this identity survive a page change: show them again.
export async function initJobs() {
  const link = $('[data-testid="export-btn"]');
  if (link && link.tagName === "A") {
    link.addEventListener("click", (e) => { e.preventDefault(); exportSubtree(state.path); });
  }
  let list;
  try { list = await api("GET", apiUrl("/jobs")); } catch (_) { return; }
  for (const j of list.jobs) if (j.state === "running") track(j);
}
