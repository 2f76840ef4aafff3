// The node's Data tab (editor, modes, save, conflicts) and its Stat tab.
import { $, el, toast } from "./dom.js";
import { state } from "./state.js";
import { api, apiNode, apiUrl, ApiError, NetworkError, errText } from "./api.js";
import { fmtTime, fmtSize, hex } from "./format.js";
import { askConfirm } from "./dialogs.js";
import {
  b64ToBytes, bytesToB64, toHex, reformatJson, HAS_GZIP, isGzip, gunzip, gzip, render, renderForEditor, parse, guessMode,
  TEXT_MODES, REFORMAT_MODES,
} from "./bytes.js";
import { CodeView } from "./codeview.js";
import { validate } from "./validate.js";
import { diffLines, renderDiff } from "./diff.js";
import { renderHexDump } from "./hexview.js";

// Says so when a node belongs to the session of this browser session (made by its Create).
function markOwnSession(cell, owner) {
  if (owner && owner === state.ownSession) cell.append(el("span", { class: "muted", "data-testid": "own-session", text: " (this browser session)" }));
}
{
  const cell = $('[data-stat="ephemeralOwner"]');
  if (cell) markOwnSession(cell, cell.textContent.trim());
}

export function showStat(s) {
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
    else {
      owner.append(el("a", { href: `${state.base}/ui/sessions#s-${s.ephemeralOwner}`, text: s.ephemeralOwner }));
      markOwnSession(owner, s.ephemeralOwner);
    }
  }
  state.node.aversion = s.aversion;
  state.node.numChildren = s.numChildren;
  const meta = $("#meta-line");
  if (meta) meta.textContent = `version ${s.version} · ${fmtSize(s.dataLength)} · modified ${fmtTime(s.mtime)}`;
}

const editor = $("#editor");
const modeSel = $("#mode");
let mode = "text", baseline = "", serverBytes = new Uint8Array(0);
// Whether the node's data is gzip and the editor shows it decompressed.
let gz = false;
let theirs = null;
// The highlighted view over the textarea.
const view = editor ? new CodeView($("#code"), editor, $("#code-hl"), $("#hl-note")) : null;
// In hex mode: whether the read-only dump (offsets, hex, ASCII) is shown instead of the editor.
let hexDump = true;

export function setDirty(d) { state.dirty = d; const b = $("#dirty"); if (b) b.hidden = !d; }

// Checks the text for the mode (JSON, XML, YAML) and points at the first problem's line.
let validateTimer = 0;
function validateSoon() { clearTimeout(validateTimer); validateTimer = setTimeout(validateNow, 150); }
function validateNow() {
  const out = $("#validation");
  if (!out || !view) return;
  out.textContent = "";
  let problem = null;
  if (editor.value.length <= 4 * 1024 * 1024) {
    try { problem = validate(editor.value, mode); } catch (e) { problem = { line: 1, col: 1, message: String(e.message || e) }; }
  }
  view.setError(problem ? problem.line - 1 : -1);
  out.classList.toggle("error", !!problem);
  out.dataset.line = problem ? String(problem.line) : "";
  if (!problem) {
    if (["json", "xml", "yaml"].includes(mode) && editor.value.trim() !== "") out.textContent = `✓ ${mode === "yaml" ? "YAML: no problems found by the basic checks" : mode.toUpperCase() + " is well-formed"}`;
    return;
  }
  const name = mode === "json" ? "JSON" : mode === "xml" ? "XML" : "YAML";
  out.append(
    `${name}: line ${problem.line}, column ${problem.col}: ${problem.message} `,
    el("button", { type: "button", class: "small", "data-testid": "goto-error", text: `Go to line ${problem.line}`,
      onclick: () => view.goToLine(problem.line, problem.col) }),
  );
}

// Hex mode shows a dump (offsets, hex, ASCII) unless the user edits the bytes.
function showHexParts() {
  const dumpBox = $("#hexdump"), toggle = $("#hex-edit"), code = $("#code");
  if (!dumpBox) return;
  const dump = mode === "hex" && hexDump;
  toggle.hidden = mode !== "hex";
  toggle.textContent = hexDump ? "Edit bytes" : "Show dump";
  toggle.setAttribute("aria-pressed", String(!hexDump));
  code.hidden = dump;
  dumpBox.hidden = !dump;
  if (dump) {
    let bytes = serverBytes;
    if (state.dirty) { try { bytes = parse(editor.value, "hex"); } catch (_) { hexDump = false; return showHexParts(); } }
    renderHexDump(dumpBox, bytes);
  }
}

function modeChanged() {
  if (!view) return;
  view.setMode(mode);
  view.setWrap(mode !== "hex" && $("#wrap").checked);
  $("#wrap").disabled = mode === "hex"; // hex rows are 16 bytes, never wrapped
  showHexParts();
  validateNow();
}

// Shows raw node data: decompressed when it is gzip (and the user wants that).
async function present(raw) {
  gz = false;
  let bytes = raw;
  const gunzipBox = $("#gunzip");
  if (isGzip(raw) && HAS_GZIP && (!gunzipBox || gunzipBox.checked)) {
    try { bytes = await gunzip(raw); gz = true; } catch (_) { bytes = raw; }
  }
  const badge = $('[data-testid="gzip-badge"]');
  if (badge) badge.textContent = gz ? "gzip: shown decompressed, saved compressed" : "gzip";
  const bin = $('[data-testid="binary-badge"]');
  if (bin) bin.hidden = gz;
  if (gz && mode === "hex" && localStorage.getItem("roost-mode:" + state.path) !== "hex") {
    mode = guessMode(bytes); modeSel.value = mode;
  }
  showBytes(bytes);
}
async function displayText(raw) {
  let bytes = raw;
  if (gz && isGzip(raw)) { try { bytes = await gunzip(raw); } catch (_) { /* raw */ } }
  try { return renderForEditor(bytes, mode); } catch (_) { return toHex(bytes); }
}
function showBytes(bytes) {
  serverBytes = bytes;
  try { editor.value = renderForEditor(bytes, mode); }
  catch (_) { mode = "hex"; modeSel.value = mode; editor.value = render(bytes, mode); }
  baseline = editor.value;
  setDirty(false);
  $("#reformat").disabled = !REFORMAT_MODES.includes(mode);
  modeChanged();
}

async function save(version) {
  let stored;
  if (!state.dirty) {
    // Not edited: the stored bytes exactly as loaded (JSON shown pretty-printed, gzip shown
    // decompressed: neither is written back unless the user changed something).
    stored = b64ToBytes(editor.dataset.b64);
  } else {
    if (mode === "json") {
      const p = validate(editor.value, mode);
      if (p) { toast(`Cannot save: JSON line ${p.line}, column ${p.col}: ${p.message} (text mode stores it as it is)`, true, 8000); return; }
    }
    let bytes;
    try { bytes = parse(editor.value, mode); } catch (e) { toast(`Cannot save: ${e.message}`, true); return; }
    stored = bytes;
    if (gz) {
      try { stored = await gzip(bytes); } catch (e) { toast(`Cannot compress: ${e.message}`, true); return; }
    }
  }
  try {
    const r = await api("PUT", apiNode(state.path), { data: bytesToB64(stored), encoding: "base64" }, { "If-Match": `"${version}"` });
    state.node.version = r.stat.version;
    showStat(r.stat);
    if (state.dirty) serverBytes = gz ? await gunzip(stored) : stored;
    editor.dataset.b64 = bytesToB64(stored);
    baseline = editor.value; setDirty(false);
    $("#conflict").hidden = true; $("#changed").hidden = true;
    toast(`Saved (version ${r.stat.version})`);
  } catch (e) {
    if (e instanceof ApiError && e.body.error === "BadVersion") return showConflict();
    const why = e instanceof NetworkError
      ? `${e.message}. Nothing was saved; your edits are still here. Save again once it is back, or open this node on another member.`
      : errText(e);
    toast("Save failed: " + why, true, 10000);
  }
}

async function showConflict() {
  try {
    const cur = await api("GET", apiNode(state.path) + "?encoding=base64");
    theirs = cur;
    const shown = await displayText(b64ToBytes(cur.data || ""));
    $("#conflict-msg").textContent = `the node changed since you loaded it (you edited version ${state.node.version}, it is now version ${cur.stat.version}). Nothing was overwritten. The differences, − on the server (theirs), + in your editor (yours):`;
    $("#conflict-data").textContent = shown;
    const diffBox = $("#conflict-diff");
    diffBox.textContent = "";
    if (shown.length + editor.value.length <= 4 * 1024 * 1024) diffBox.append(renderDiff(diffLines(shown, editor.value)));
    else diffBox.append(el("p", { class: "muted small", text: "Too large to compare line by line; their full data is below." }));
    $("#conflict-version").textContent = cur.stat.version;
    $("#conflict").hidden = false;
    $("#changed").hidden = true; // the conflict panel says it all
    showStat(cur.stat);
  } catch (e) { toast("Conflict, and the node cannot be read: " + errText(e), true, 8000); }
}

export async function reloadData() {
  try {
    const cur = await api("GET", apiNode(state.path) + "?encoding=base64");
    state.node.version = cur.stat.version;
    showStat(cur.stat);
    if (editor) { editor.dataset.b64 = cur.data || ""; await present(b64ToBytes(cur.data || "")); }
    if ($("#changed")) $("#changed").hidden = true;
  } catch (e) { toast(errText(e), true); }
}

// A live event about the page's own node.
export function onNodeEvent(m) {
  if (m.path !== state.path) return;
  if (m.type === "NodeDeleted") {
    toast("This node was deleted", true, 10000);
    $("#live").textContent = "deleted";
    return;
  }
  if (m.stat) showStat(m.stat);
  if (m.type === "NodeDataChanged" || m.type === "NodeCreated") {
    if (!editor) { location.reload(); return; }
    if (state.dirty) {
      $("#changed").hidden = false; // keep the user's edits; saving will report the conflict
    } else {
      state.node.version = m.stat.version;
      const bytes = m.encoding === "base64" ? b64ToBytes(m.data || "") : new TextEncoder().encode(m.data || "");
      editor.dataset.b64 = bytesToB64(bytes);
      present(bytes);
    }
  }
}

export function initEditor() {
  if (editor) {
    const bytes = b64ToBytes(editor.dataset.b64);
    const key = "roost-mode:" + state.path;
    mode = localStorage.getItem(key) || guessMode(bytes);
    if (editor.dataset.binary === "true" && TEXT_MODES.includes(mode)) mode = "hex";
    modeSel.value = mode;
    showBytes(bytes);
    if (isGzip(bytes)) present(bytes);
    const gunzipBox = $("#gunzip");
    if (gunzipBox) gunzipBox.addEventListener("change", async () => {
      if (state.dirty && !(await askConfirm("Discard unsaved edits?", "Discard"))) { gunzipBox.checked = !gunzipBox.checked; return; }
      present(b64ToBytes(editor.dataset.b64));
    });
    editor.addEventListener("input", () => { setDirty(editor.value !== baseline); validateSoon(); });
    $("#hex-edit").addEventListener("click", () => {
      if (!hexDump) {
        try { parse(editor.value, "hex"); } catch (e) { toast(`Cannot show the dump: ${e.message}`, true); return; }
      }
      hexDump = !hexDump;
      showHexParts();
      if (!hexDump) editor.focus();
    });
    editor.addEventListener("keydown", (e) => {
      if (e.key === "Tab" && !e.shiftKey && !e.ctrlKey) {
        e.preventDefault();
        const { selectionStart: s, selectionEnd: t } = editor;
        editor.setRangeText("  ", s, t, "end");
        setDirty(editor.value !== baseline);
        view.refresh(); validateSoon();
      }
    });
    modeSel.addEventListener("change", () => {
      const next = modeSel.value;
      const err = $("#mode-error");
      err.hidden = true;
      let bytes;
      const wasDirty = state.dirty;
      if (!wasDirty) bytes = serverBytes;
      else if (TEXT_MODES.includes(mode) && TEXT_MODES.includes(next)) bytes = new TextEncoder().encode(editor.value); // text stays as typed, even when invalid
      else {
        try { bytes = parse(editor.value, mode); } catch (e) { err.textContent = `Cannot leave ${mode}: ${e.message}`; err.hidden = false; modeSel.value = mode; return; }
      }
      try {
        // Edited text moves to the new mode as it is; unedited data is shown the new mode's way.
        editor.value = wasDirty ? render(bytes, next) : renderForEditor(bytes, next);
        baseline = wasDirty ? renderForEditor(serverBytes, next) : editor.value;
        setDirty(editor.value !== baseline);
        mode = next;
        localStorage.setItem(key, mode);
      } catch (_) {
        err.textContent = "The data is not valid UTF-8: use hex or base64."; err.hidden = false; modeSel.value = mode;
      }
      $("#reformat").disabled = !REFORMAT_MODES.includes(mode);
      modeChanged();
    });
    $("#reformat").addEventListener("click", async () => {
      const err = $("#mode-error");
      err.hidden = true;
      const before = editor.value;
      let text;
      try {
        if (mode === "json") text = reformatJson(before);
        else if (mode === "yaml") text = (await api("POST", apiUrl("/reformat"), { format: "yaml", text: before })).text;
        else return;
      } catch (e) {
        err.textContent = "Not reformatted: " + (e instanceof ApiError ? e.message : e.message || String(e));
        err.hidden = false;
        return;
      }
      if (editor.value !== before) return; // edited meanwhile: keep the user's text
      editor.value = text;
      setDirty(editor.value !== baseline);
      view.refresh(); validateNow();
    });
    $("#wrap").addEventListener("change", (e) => view.setWrap(mode !== "hex" && e.target.checked));
    window.addEventListener("beforeunload", (e) => { if (state.dirty) { e.preventDefault(); e.returnValue = ""; } });
  }
  if ($("#save")) {
    $("#save").addEventListener("click", () => save(state.node.version));
    $("#take-theirs").addEventListener("click", () => {
      if (!theirs) return;
      state.node.version = theirs.stat.version;
      editor.dataset.b64 = theirs.data || "";
      present(b64ToBytes(theirs.data || ""));
      $("#conflict").hidden = true; $("#changed").hidden = true;
    });
    $("#keep-mine").addEventListener("click", () => { if (theirs) save(theirs.stat.version); });
  }
  if ($("#reload-data")) $("#reload-data").addEventListener("click", reloadData);
}
