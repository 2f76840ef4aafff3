// Roost navigator: progressive enhancement of the server-rendered pages.
// No build step, no dependencies. Talks to /api/v1 (REST) and /api/v1/watch (WebSocket).
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
const body = document.body;
const BASE = body.dataset.base || "";
const CSRF = ($('meta[name="csrf-token"]') || {}).content || "";
const READ_ONLY = body.dataset.readonly === "true";

// ---------- small helpers ----------
function encPath(path) {
  return path === "/" ? "" : path.split("/").map(encodeURIComponent).join("/");
}
function uiHref(path) { return BASE + "/ui" + (path === "/" ? "/" : encPath(path)); }
function apiNode(path) { return BASE + "/api/v1/znodes" + (path === "/" ? "/" : encPath(path)); }
function join(parent, name) { return parent === "/" ? "/" + name : parent + "/" + name; }
function parentOf(path) { const i = path.lastIndexOf("/"); return i <= 0 ? "/" : path.slice(0, i); }
function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
  return e;
}
function toast(msg, isErr = false, ms = 4000) {
  const t = el("div", { class: isErr ? "err" : "", text: msg });
  $("#toast").append(t);
  setTimeout(() => t.remove(), ms);
}
function fmtTime(ms) {
  if (!ms) return "-";
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${p(d.getUTCMilliseconds(), 3)} UTC`;
}
function fmtSize(n) {
  if (n < 1024) return n + " B";
  if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1048576).toFixed(1) + " MiB";
}
const hex = (n) => "0x" + Number(n).toString(16);

class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.message || body.error)) || "HTTP " + status);
    this.status = status; this.body = body || {};
  }
}
async function api(method, url, payload, headers = {}) {
  const h = { "X-CSRF-Token": CSRF, ...headers };
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
function errText(e) {
  if (e instanceof ApiError) return (e.body.error ? e.body.error + ": " : "") + e.message;
  return String(e);
}

// ---------- bytes <-> text ----------
function b64ToBytes(b64) {
  const bin = atob(b64 || "");
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
function bytesToB64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}
function utf8(bytes) { return new TextDecoder("utf-8", { fatal: true }).decode(bytes); }
function toHex(bytes) {
  const lines = [];
  for (let i = 0; i < bytes.length; i += 16) {
    lines.push(Array.from(bytes.subarray(i, i + 16), (b) => b.toString(16).padStart(2, "0")).join(" "));
  }
  return lines.join("\n");
}
function fromHex(text) {
  const clean = text.replace(/\s+/g, "");
  if (clean.length % 2 || /[^0-9a-fA-F]/.test(clean)) throw new Error("invalid hex");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.substr(i * 2, 2), 16);
  return out;
}
const TEXT_MODES = ["text", "json", "yaml", "xml"];
const REFORMAT_MODES = ["json", "yaml"];

// Re-indents JSON token by token: numbers and strings are kept exactly as written (no
// rounding of big numbers, no lost duplicate keys, escapes untouched). Throws on invalid JSON.
function reformatJson(text) {
  JSON.parse(text); // validates (the message names the position)
  let out = "", depth = 0, i = 0;
  const nl = () => "\n" + "  ".repeat(depth);
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      out += text.slice(i, j + 1); i = j + 1; continue;
    }
    if (c === " " || c === "\t" || c === "\n" || c === "\r") { i++; continue; }
    if (c === "{" || c === "[") {
      let j = i + 1;
      while (" \t\n\r".includes(text[j])) j++;
      const close = c === "{" ? "}" : "]";
      if (text[j] === close) { out += c + close; i = j + 1; continue; } // {} and [] stay on one line
      depth++; out += c + nl(); i++; continue;
    }
    if (c === "}" || c === "]") { depth--; out += nl() + c; i++; continue; }
    if (c === ",") { out += "," + nl(); i++; continue; }
    if (c === ":") { out += ": "; i++; continue; }
    let j = i; // number, true, false, null
    while (j < text.length && !" \t\n\r,:]}".includes(text[j])) j++;
    out += text.slice(i, j); i = j;
  }
  return out;
}

// gzip: detected by its magic bytes, shown decompressed, re-compressed on save.
const HAS_GZIP = typeof DecompressionStream === "function" && typeof CompressionStream === "function";
function isGzip(bytes) { return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b; }
async function pipeBytes(bytes, stream) {
  const out = new Response(new Blob([bytes]).stream().pipeThrough(stream));
  return new Uint8Array(await out.arrayBuffer());
}
const gunzip = (bytes) => pipeBytes(bytes, new DecompressionStream("gzip"));
const gzip = (bytes) => pipeBytes(bytes, new CompressionStream("gzip"));
function render(bytes, mode) {
  if (mode === "base64") return bytesToB64(bytes);
  if (mode === "hex") return toHex(bytes);
  return utf8(bytes); // throws on binary: caller falls back to hex
}
function parse(text, mode) {
  if (mode === "base64") {
    try { return b64ToBytes(text.replace(/\s+/g, "")); } catch (_) { throw new Error("invalid base64"); }
  }
  if (mode === "hex") return fromHex(text);
  if (mode === "json" && text.trim() !== "") JSON.parse(text); // validate before saving
  return new TextEncoder().encode(text);
}
function guessMode(bytes) {
  let text;
  try { text = utf8(bytes); } catch (_) { return "hex"; }
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/.test(text)) return "hex";
  const t = text.trim();
  if ((t.startsWith("{") || t.startsWith("[")) && t.length) { try { JSON.parse(t); return "json"; } catch (_) { /* text */ } }
  if (t.startsWith("<")) return "xml";
  return "text";
}

// ---------- theme & keyboard (every page) ----------
(function theme() {
  const saved = localStorage.getItem("roost-theme");
  if (saved) document.documentElement.dataset.theme = saved;
  const btn = $("#theme");
  if (btn) btn.addEventListener("click", () => {
    const dark = document.documentElement.dataset.theme
      ? document.documentElement.dataset.theme === "dark"
      : matchMedia("(prefers-color-scheme: dark)").matches;
    const next = dark ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem("roost-theme", next);
  });
})();

(function addressBar() {
  const form = $("#goto-form"), input = $("#goto");
  if (!form) return;
  if (body.dataset.path) input.value = body.dataset.path;
  form.addEventListener("submit", (e) => {
    const v = input.value.trim();
    if (v.startsWith("/")) { e.preventDefault(); location.href = uiHref(v.replace(/\/+$/, "") || "/"); }
  });
})();

document.addEventListener("keydown", (e) => {
  const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
  if ((e.ctrlKey || e.metaKey) && e.key === "s") {
    const save = $("#save");
    if (save) { e.preventDefault(); save.click(); }
    return;
  }
  if (typing || e.ctrlKey || e.metaKey || e.altKey) {
    if (e.key === "Escape" && typing) document.activeElement.blur();
    return;
  }
  if (e.key === "g") { e.preventDefault(); $("#goto").focus(); $("#goto").select(); }
  else if (e.key === "/" && $("#filter")) { e.preventDefault(); $("#filter").focus(); }
  else if (e.key === "n" && $('[data-action="create"]')) { e.preventDefault(); $('[data-action="create"]').click(); }
  else if (e.key === "u" && body.dataset.path && body.dataset.path !== "/") { location.href = uiHref(parentOf(body.dataset.path)); }
});

// ---------- node page ----------
if (body.dataset.page === "node") nodePage();

function nodePage() {
  const PATH = body.dataset.path;
  const node = {
    version: Number(body.dataset.version),
    aversion: Number(body.dataset.aversion),
    numChildren: Number(body.dataset.numChildren),
  };

  // Tabs (remembered per browser).
  const tabs = $$('[role="tab"]');
  function selectTab(tab) {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      $("#" + t.getAttribute("aria-controls")).hidden = !on;
    }
    localStorage.setItem("roost-tab", tab.id);
  }
  tabs.forEach((t, i) => {
    t.addEventListener("click", () => selectTab(t));
    t.addEventListener("keydown", (e) => {
      if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
        const n = tabs[(i + (e.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
        selectTab(n); n.focus();
      }
    });
  });
  const savedTab = $("#" + localStorage.getItem("roost-tab"));
  if (savedTab) selectTab(savedTab);

  // ----- stat -----
  function showStat(s) {
    if (!s) return;
    const set = (k, text, title) => { const c = $(`[data-stat="${k}"]`); if (c) { c.textContent = text; c.title = String(title); } };
    set("czxid", hex(s.czxid), s.czxid); set("mzxid", hex(s.mzxid), s.mzxid); set("pzxid", hex(s.pzxid), s.pzxid);
    set("ctime", fmtTime(s.ctime), s.ctime); set("mtime", fmtTime(s.mtime), s.mtime);
    set("version", s.version, s.version); set("cversion", s.cversion, s.cversion); set("aversion", s.aversion, s.aversion);
    set("dataLength", fmtSize(s.dataLength), s.dataLength); set("numChildren", s.numChildren, s.numChildren);
    const owner = $('[data-stat="ephemeralOwner"]');
    if (owner) {
      owner.textContent = "";
      if (s.ephemeralOwner === "0x0") owner.textContent = "none (persistent)";
      else owner.append(el("a", { href: `${BASE}/ui/sessions#s-${s.ephemeralOwner}`, text: s.ephemeralOwner }));
    }
    node.aversion = s.aversion;
    node.numChildren = s.numChildren;
    const meta = $("#meta-line");
    if (meta) meta.textContent = `version ${s.version} · ${fmtSize(s.dataLength)} · modified ${fmtTime(s.mtime)}`;
  }

  // ----- editor -----
  const editor = $("#editor");
  const modeSel = $("#mode");
  let mode = "text", baseline = "", serverBytes = new Uint8Array(0), dirty = false;
  // Whether the node's data is gzip and the editor shows it decompressed.
  let gz = false;
  const gunzipBox = $("#gunzip");
  // Shows raw node data: decompressed when it is gzip (and the user wants that).
  async function present(raw) {
    gz = false;
    let bytes = raw;
    if (isGzip(raw) && HAS_GZIP && (!gunzipBox || gunzipBox.checked)) {
      try { bytes = await gunzip(raw); gz = true; } catch (_) { bytes = raw; }
    }
    const badge = $('[data-testid="gzip-badge"]');
    if (badge) badge.textContent = gz ? "gzip: shown decompressed, saved compressed" : "gzip";
    const bin = $('[data-testid="binary-badge"]');
    if (bin) bin.hidden = gz;
    if (gz && mode === "hex" && localStorage.getItem("roost-mode:" + PATH) !== "hex") {
      mode = guessMode(bytes); modeSel.value = mode;
    }
    showBytes(bytes);
  }
  async function displayText(raw) {
    let bytes = raw;
    if (gz && isGzip(raw)) { try { bytes = await gunzip(raw); } catch (_) { /* raw */ } }
    try { return render(bytes, mode); } catch (_) { return toHex(bytes); }
  }
  function setDirty(d) { dirty = d; $("#dirty").hidden = !d; }
  function showBytes(bytes) {
    serverBytes = bytes;
    try { editor.value = render(bytes, mode); }
    catch (_) { mode = "hex"; modeSel.value = mode; editor.value = render(bytes, mode); }
    baseline = editor.value;
    setDirty(false);
    $("#reformat").disabled = !REFORMAT_MODES.includes(mode);
  }
  if (editor) {
    const bytes = b64ToBytes(editor.dataset.b64);
    const key = "roost-mode:" + PATH;
    mode = localStorage.getItem(key) || guessMode(bytes);
    if (editor.dataset.binary === "true" && TEXT_MODES.includes(mode)) mode = "hex";
    modeSel.value = mode;
    showBytes(bytes);
    if (isGzip(bytes)) present(bytes);
    if (gunzipBox) gunzipBox.addEventListener("change", () => {
      if (dirty && !confirm("Discard unsaved edits?")) { gunzipBox.checked = !gunzipBox.checked; return; }
      present(b64ToBytes(editor.dataset.b64));
    });
    editor.addEventListener("input", () => setDirty(editor.value !== baseline));
    editor.addEventListener("keydown", (e) => {
      if (e.key === "Tab" && !e.shiftKey && !e.ctrlKey) {
        e.preventDefault();
        const { selectionStart: s, selectionEnd: t } = editor;
        editor.setRangeText("  ", s, t, "end");
        setDirty(editor.value !== baseline);
      }
    });
    modeSel.addEventListener("change", () => {
      const next = modeSel.value;
      const err = $("#mode-error");
      err.hidden = true;
      let bytes;
      try { bytes = parse(editor.value, mode); } catch (e) { err.textContent = `Cannot leave ${mode}: ${e.message}`; err.hidden = false; modeSel.value = mode; return; }
      try {
        const wasDirty = dirty;
        editor.value = render(bytes, next);
        baseline = wasDirty ? render(serverBytes, next) : editor.value;
        mode = next;
        localStorage.setItem(key, mode);
      } catch (_) {
        err.textContent = "The data is not valid UTF-8: use hex or base64."; err.hidden = false; modeSel.value = mode;
      }
      $("#reformat").disabled = !REFORMAT_MODES.includes(mode);
    });
    $("#reformat").addEventListener("click", async () => {
      const err = $("#mode-error");
      err.hidden = true;
      const before = editor.value;
      let text;
      try {
        if (mode === "json") text = reformatJson(before);
        else if (mode === "yaml") text = (await api("POST", BASE + "/api/v1/reformat", { format: "yaml", text: before })).text;
        else return;
      } catch (e) {
        err.textContent = "Not reformatted: " + (e instanceof ApiError ? e.message : e.message || String(e));
        err.hidden = false;
        return;
      }
      if (editor.value !== before) return; // edited meanwhile: keep the user's text
      editor.value = text;
      setDirty(editor.value !== baseline);
    });
    $("#wrap").addEventListener("change", (e) => editor.classList.toggle("wrap", e.target.checked));
    window.addEventListener("beforeunload", (e) => { if (dirty) { e.preventDefault(); e.returnValue = ""; } });
  }

  async function save(version) {
    let bytes;
    try { bytes = parse(editor.value, mode); } catch (e) { toast(`Cannot save: ${e.message}`, true); return; }
    let stored = bytes;
    if (gz) {
      try { stored = await gzip(bytes); } catch (e) { toast(`Cannot compress: ${e.message}`, true); return; }
    }
    try {
      const r = await api("PUT", apiNode(PATH), { data: bytesToB64(stored), encoding: "base64" }, { "If-Match": `"${version}"` });
      node.version = r.stat.version;
      showStat(r.stat);
      editor.dataset.b64 = bytesToB64(stored);
      serverBytes = bytes; baseline = editor.value; setDirty(false);
      $("#conflict").hidden = true; $("#changed").hidden = true;
      toast(`Saved (version ${r.stat.version})`);
    } catch (e) {
      if (e instanceof ApiError && e.body.error === "BadVersion") return showConflict();
      toast("Save failed: " + errText(e), true, 8000);
    }
  }
  let theirs = null;
  async function showConflict() {
    try {
      const cur = await api("GET", apiNode(PATH) + "?encoding=base64");
      theirs = cur;
      const shown = await displayText(b64ToBytes(cur.data || ""));
      $("#conflict-msg").textContent = `the node changed since you loaded it (you edited version ${node.version}, it is now version ${cur.stat.version}). Nothing was overwritten. Current data:`;
      $("#conflict-data").textContent = shown;
      $("#conflict-version").textContent = cur.stat.version;
      $("#conflict").hidden = false;
      $("#changed").hidden = true; // the conflict panel says it all
      showStat(cur.stat);
    } catch (e) { toast("Conflict, and the node cannot be read: " + errText(e), true, 8000); }
  }
  if ($("#save")) {
    $("#save").addEventListener("click", () => save(node.version));
    $("#take-theirs").addEventListener("click", () => {
      if (!theirs) return;
      node.version = theirs.stat.version;
      editor.dataset.b64 = theirs.data || "";
      present(b64ToBytes(theirs.data || ""));
      $("#conflict").hidden = true; $("#changed").hidden = true;
    });
    $("#keep-mine").addEventListener("click", () => { if (theirs) save(theirs.stat.version); });
  }
  async function reloadData() {
    try {
      const cur = await api("GET", apiNode(PATH) + "?encoding=base64");
      node.version = cur.stat.version;
      showStat(cur.stat);
      if (editor) { editor.dataset.b64 = cur.data || ""; await present(b64ToBytes(cur.data || "")); }
      $("#changed") && ($("#changed").hidden = true);
    } catch (e) { toast(errText(e), true); }
  }
  if ($("#reload-data")) $("#reload-data").addEventListener("click", reloadData);

  // ----- children list -----
  const list = { offset: 0, limit: 100, total: Number($("#child-count").textContent) || 0, desc: false, filter: "", regex: false };
  let listTimer = null;
  async function loadChildren() {
    const q = new URLSearchParams({ children: "true", offset: list.offset, limit: list.limit, order: list.desc ? "desc" : "asc" });
    if (list.filter) { q.set("filter", list.filter); if (list.regex) q.set("regex", "true"); }
    let r;
    try { r = await api("GET", apiNode(PATH) + "?" + q); }
    catch (e) { $("#filter").setCustomValidity(errText(e)); $("#filter").reportValidity(); return; }
    $("#filter").setCustomValidity("");
    const page = r.children;
    list.total = page.total;
    if (list.offset > 0 && list.offset >= page.total) { list.offset = Math.max(0, page.total - list.limit); return loadChildren(); }
    const ul = $("#children");
    const selected = new Set($$(".sel:checked", ul).map((c) => c.value));
    const before = new Set($$("li[data-path]", ul).map((li) => li.dataset.path));
    ul.textContent = "";
    if (PATH !== "/") ul.append(el("li", { class: "up" }, el("a", { href: uiHref(parentOf(PATH)), text: "../" })));
    for (const it of page.items) {
      const s = it.stat || { numChildren: 0, dataLength: 0, ephemeralOwner: "0x0" };
      ul.append(el("li", { "data-path": it.path, "data-testid": "child-row", class: before.size && !before.has(it.path) ? "flash" : null },
        READ_ONLY ? null : el("input", { type: "checkbox", class: "sel", value: it.path, "aria-label": "Select " + it.name, checked: selected.has(it.path) }),
        el("a", { href: uiHref(it.path), class: "name", text: it.name }),
        s.ephemeralOwner !== "0x0" ? el("span", { class: "badge", title: "ephemeral", text: "E" }) : null,
        el("span", { class: "meta" },
          s.numChildren > 0 ? el("span", { class: "count", title: "children", text: String(s.numChildren) }) : null,
          el("span", { class: "size", text: fmtSize(s.dataLength) }))));
    }
    if (!page.items.length) ul.append(el("li", { class: "muted empty", text: list.filter ? "No match" : "No child nodes" }));
    $("#child-count").textContent = list.filter ? `${page.total} of ${page.totalUnfiltered}` : String(page.total);
    $("#page-info").textContent = page.total ? `${list.offset + 1}–${list.offset + page.items.length} of ${page.total}` : "";
    $("#prev").disabled = list.offset === 0;
    $("#next").disabled = list.offset + list.limit >= page.total;
    updateBulk();
  }
  function scheduleChildren(ms = 250) { clearTimeout(listTimer); listTimer = setTimeout(loadChildren, ms); }
  $("#filter").addEventListener("input", (e) => { list.filter = e.target.value; list.offset = 0; scheduleChildren(200); });
  $("#filter").addEventListener("keydown", (e) => {
    if (e.key === "Enter") { const first = $("#children li[data-path] a"); if (first) first.click(); }
  });
  $("#filter-re").addEventListener("change", (e) => { list.regex = e.target.checked; list.offset = 0; scheduleChildren(0); });
  $("#sort").addEventListener("click", (e) => { list.desc = !list.desc; e.target.textContent = list.desc ? "Z→A" : "A→Z"; list.offset = 0; scheduleChildren(0); });
  $("#prev").addEventListener("click", () => { list.offset = Math.max(0, list.offset - list.limit); loadChildren(); });
  $("#next").addEventListener("click", () => { list.offset += list.limit; loadChildren(); });

  // Bulk selection and delete (one multi).
  function updateBulk() {
    const btn = $("#bulk-delete");
    if (!btn) return;
    const n = $$("#children .sel:checked").length;
    btn.disabled = n === 0;
    btn.textContent = n ? `Delete ${n} selected` : "Delete selected";
  }
  $("#children").addEventListener("change", updateBulk);
  if ($("#select-all")) {
    $("#select-all").addEventListener("change", (e) => { $$("#children .sel").forEach((c) => (c.checked = e.target.checked)); updateBulk(); });
    $("#bulk-delete").addEventListener("click", async () => {
      const paths = $$("#children .sel:checked").map((c) => c.value);
      if (!paths.length || !confirm(`Delete ${paths.length} node(s)? Nodes with children are refused (NotEmpty); nothing is deleted then.`)) return;
      try {
        await api("POST", BASE + "/api/v1/multi", { ops: paths.map((p) => ({ op: "delete", path: p })) });
        toast(`Deleted ${paths.length} node(s)`);
        $("#select-all").checked = false;
        loadChildren();
      } catch (e) { toast("Bulk delete failed: " + errText(e), true, 8000); }
    });
  }

  // ----- ACL editor -----
  function aclRow(a = { scheme: "world", id: "anyone", perms: "r" }) {
    return el("tr", { "data-testid": "acl-row" },
      el("td", {}, el("input", { class: "acl-scheme", value: a.scheme, "aria-label": "scheme" })),
      el("td", {}, el("input", { class: "acl-id", value: a.id, "aria-label": "id" })),
      ...["c", "d", "r", "w", "a"].map((l) => el("td", {}, el("input", { type: "checkbox", class: "acl-perm", "data-perm": l, "aria-label": l, checked: a.perms.includes(l) }))),
      el("td", {}, el("button", { type: "button", class: "icon acl-remove", "aria-label": "Remove entry", text: "✕" })));
  }
  $("#acl-rows").addEventListener("click", (e) => { if (e.target.classList.contains("acl-remove")) e.target.closest("tr").remove(); });
  if ($("#acl-add")) {
    $("#acl-add").addEventListener("click", () => { const r = aclRow(); $("#acl-rows").append(r); $(".acl-scheme", r).focus(); });
    $("#acl-save").addEventListener("click", async () => {
      const acl = $$("#acl-rows tr").map((tr) => ({
        scheme: $(".acl-scheme", tr).value.trim(), id: $(".acl-id", tr).value.trim(),
        perms: $$(".acl-perm:checked", tr).map((c) => c.dataset.perm).join(""),
      }));
      if (!acl.length) { toast("An ACL needs at least one entry", true); return; }
      const rec = $("#acl-recursive") && $("#acl-recursive").checked;
      if (rec && !confirm(`Set this ACL on ${PATH} and every node below it (one atomic multi)?`)) return;
      try {
        const r = await api("PUT", apiNode(PATH) + "?acl=true" + (rec ? "&recursive=true" : ""), { acl, version: node.aversion });
        showStat(r.stat);
        toast(`ACL applied${rec ? " to the subtree" : ""} (ACL version ${r.stat.aversion})`);
      } catch (e) { toast("ACL not applied: " + errText(e), true, 8000); }
    });
  }

  // ----- dialogs: create, delete, copy/move, import -----
  function openDialog(id, onOk) {
    const dlg = $("#" + id), form = $("form", dlg), err = $('[data-role="error"]', dlg);
    err.hidden = true;
    form.reset && form.reset();
    dlg.showModal();
    form.onsubmit = async (e) => {
      if (e.submitter && e.submitter.value === "cancel") return;
      e.preventDefault();
      try { await onOk(form); dlg.close(); }
      catch (ex) { err.textContent = errText(ex); err.hidden = false; }
    };
    return dlg;
  }
  const createDlg = $("#dlg-create");
  if (createDlg) $('select[name="mode"]', createDlg).addEventListener("change", (e) => createDlg.classList.toggle("show-ttl", e.target.value.includes("ttl")));
  const actions = {
    create: () => openDialog("dlg-create", async (f) => {
      const name = f.name.value.trim().replace(/^\/+/, "");
      const m = f.mode.value;
      const r = await api("POST", apiNode(join(PATH, name)), {
        data: f.data.value, mode: m, ttl: m.includes("ttl") ? Number(f.ttl.value) : undefined, createParents: f.parents.checked,
      });
      toast("Created " + r.path);
      loadChildren();
    }),
    delete: () => openDialog("dlg-delete", async (f) => {
      const rec = f.recursive && f.recursive.checked;
      const q = new URLSearchParams({ version: node.version });
      if (rec) q.set("recursive", "true");
      await api("DELETE", apiNode(PATH) + "?" + q);
      setDirty(false);
      location.href = uiHref(parentOf(PATH));
    }),
    copy: () => pathDialog("Duplicate to", "/api/v1/copy"),
    move: () => pathDialog("Move to", "/api/v1/move"),
    import: () => openDialog("dlg-import", async (f) => {
      const file = f.file.files[0];
      if (!file) throw new Error("choose a file");
      // Sent as bytes: the server recognises gzip (ZooNavigator's .gz export) by its magic number.
      const r = await api("POST", BASE + "/api/v1/import?path=" + encodeURIComponent(PATH), new Uint8Array(await file.arrayBuffer()));
      toast(`Imported ${r.created} node(s)`);
      loadChildren();
    }),
  };
  function pathDialog(title, endpoint) {
    const dlg = openDialog("dlg-path", async (f) => {
      const dest = f.dest.value.trim();
      await api("POST", BASE + endpoint, { source: PATH, destination: dest });
      setDirty(false);
      location.href = uiHref(dest);
    });
    $("h2", dlg).textContent = title;
    $('input[name="dest"]', dlg).value = PATH + "-copy";
  }
  $$("[data-action]").forEach((b) => b.addEventListener("click", () => actions[b.dataset.action]()));
  // Cancel is a plain button, so that Enter in a dialog submits it (the first submit
  // button of a form is the one Enter presses).
  $$("dialog [data-close]").forEach((b) => b.addEventListener("click", () => b.closest("dialog").close()));

  // ----- tree (lazy) -----
  const tree = $("#tree");
  const TREE_PAGE = 200;
  function treeItem(path, name, numChildren) {
    const li = el("li", { role: "treeitem", "data-path": path, "aria-expanded": numChildren > 0 ? "false" : null });
    const tw = el("button", { type: "button", class: "tw", tabindex: "-1", "aria-label": "Expand", text: numChildren > 0 ? "▸" : "" });
    const a = el("a", { href: uiHref(path), text: name, class: path === PATH ? "current" : "" });
    if (path === PATH) a.setAttribute("aria-current", "page");
    tw.addEventListener("click", () => toggle(li));
    a.addEventListener("keydown", (e) => {
      if (e.key === "ArrowRight" && li.getAttribute("aria-expanded") === "false") { e.preventDefault(); toggle(li); }
      else if (e.key === "ArrowLeft" && li.getAttribute("aria-expanded") === "true") { e.preventDefault(); toggle(li); }
      else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const all = $$("#tree a").filter((x) => x.offsetParent !== null);
        const i = all.indexOf(a);
        const n = all[i + (e.key === "ArrowDown" ? 1 : -1)];
        if (n) n.focus();
      }
    });
    li.append(el("div", {}, tw, a));
    return li;
  }
  async function fillTree(li) {
    const path = li.dataset.path;
    let r;
    try { r = await api("GET", apiNode(path) + `?children=true&limit=${TREE_PAGE}`); }
    catch (e) { li.append(el("div", { class: "more", text: errText(e) })); return; }
    let ul = $(":scope > ul", li);
    if (!ul) { ul = el("ul", { role: "group" }); li.append(ul); }
    const open = new Set($$(':scope > li[aria-expanded="true"]', ul).map((x) => x.dataset.path));
    ul.textContent = "";
    for (const it of r.children.items) {
      const child = treeItem(it.path, it.name, it.stat ? it.stat.numChildren : 0);
      ul.append(child);
      if (open.has(it.path)) await expand(child);
    }
    if (r.children.total > TREE_PAGE) ul.append(el("li", { class: "more" }, el("a", { href: uiHref(path), text: `… ${r.children.total - TREE_PAGE} more` })));
    $(".tw", li).textContent = r.children.total ? "▾" : "";
  }
  async function expand(li) {
    li.setAttribute("aria-expanded", "true");
    await fillTree(li);
    live.watchTree(li.dataset.path);
  }
  function toggle(li) {
    if (li.getAttribute("aria-expanded") === "true") {
      li.setAttribute("aria-expanded", "false");
      const ul = $(":scope > ul", li); if (ul) ul.remove();
      $(".tw", li).textContent = "▸";
      live.unwatchTree(li.dataset.path);
    } else expand(li);
  }
  async function initTree() {
    const root = treeItem("/", "/", 1);
    tree.append(root);
    await expand(root);
    // Open the ancestors of the current node.
    let cur = "/";
    for (const seg of PATH.split("/").filter(Boolean).slice(0, -1)) {
      cur = join(cur, seg);
      const li = $$("#tree li").find((x) => x.dataset.path === cur);
      if (!li || li.getAttribute("aria-expanded") === "true") continue;
      await expand(li);
    }
    const here = $$("#tree li").find((x) => x.dataset.path === PATH);
    if (here) here.scrollIntoView({ block: "nearest" });
  }

  // ----- live updates -----
  const live = {
    ws: null, lastZxid: null, subs: new Map(), retry: 500, acked: new Set(),
    connect() {
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      const ws = new WebSocket(`${proto}//${location.host}${BASE}/api/v1/watch`);
      this.ws = ws;
      ws.onopen = () => {
        this.retry = 500;
        $("#live").textContent = "live"; $("#live").classList.add("on");
        for (const [id, s] of this.subs) this.send({ type: "subscribe", id, ...s, since_zxid: this.lastZxid ?? undefined });
      };
      ws.onclose = (e) => {
        this.acked.clear(); $("#live").dataset.ready = "false";
        $("#live").textContent = e.reason ? "offline: " + e.reason : "offline"; $("#live").classList.remove("on");
        setTimeout(() => this.connect(), this.retry);
        this.retry = Math.min(this.retry * 2, 15000);
      };
      ws.onmessage = (m) => { try { this.onMessage(JSON.parse(m.data)); } catch (e) { console.error(e); } };
    },
    send(msg) { if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(msg)); },
    sub(id, path, mode, data = false) { this.subs.set(id, { path, mode, data }); this.send({ type: "subscribe", id, path, mode, data }); },
    unsub(id) { this.subs.delete(id); this.send({ type: "unsubscribe", id }); },
    watchTree(path) { this.sub("tree:" + path, path, "children"); },
    unwatchTree(path) { this.unsub("tree:" + path); },
    onMessage(m) {
      if (m.type === "resync") { reloadData(); loadChildren(); return; }
      if (m.type === "subscribed") {
        // Ready once the node and its children are watched (tests and users can rely on it).
        this.acked.add(m.id);
        $("#live").dataset.ready = String(this.acked.has("node") && this.acked.has("kids"));
        return;
      }
      if (m.sub === undefined || !m.path) return;
      if (typeof m.zxid === "number") this.lastZxid = Math.max(this.lastZxid ?? 0, m.zxid);
      if (m.sub === "node") onNodeEvent(m);
      else if (m.sub === "kids") {
        if (m.type !== "NodeChildrenChanged" || m.path === PATH) scheduleChildren();
        const row = $$("#children li").find((x) => x.dataset.path === m.path);
        if (row && m.type === "NodeDataChanged") row.classList.add("flash");
      } else if (typeof m.sub === "string" && m.sub.startsWith("tree:") && m.type === "NodeChildrenChanged") {
        const li = $$("#tree li").find((x) => x.dataset.path === m.path);
        if (li && li.getAttribute("aria-expanded") === "true") fillTree(li);
      }
    },
  };
  function onNodeEvent(m) {
    if (m.path !== PATH) return;
    if (m.type === "NodeDeleted") {
      toast("This node was deleted", true, 10000);
      $("#live").textContent = "deleted";
      return;
    }
    if (m.stat) showStat(m.stat);
    if (m.type === "NodeDataChanged" || m.type === "NodeCreated") {
      if (!editor) { location.reload(); return; }
      if (dirty) {
        $("#changed").hidden = false; // keep the user's edits; saving will report the conflict
      } else {
        node.version = m.stat.version;
        const bytes = m.encoding === "base64" ? b64ToBytes(m.data || "") : new TextEncoder().encode(m.data || "");
        editor.dataset.b64 = bytesToB64(bytes);
        present(bytes);
      }
    }
  }

  live.sub("node", PATH, "node", true);
  live.sub("kids", PATH, "children");
  live.connect();
  initTree();
}
