// Roost navigator: progressive enhancement of the server-rendered pages.
// Native ES modules, no build step, no dependencies; everything is embedded in the binary.
// Talks to /api/v1 (REST) and /api/v1/watch (WebSocket).
import { $, $$ } from "./dom.js";
import { state } from "./state.js";
import { uiHref, parentOf } from "./api.js";
import * as live from "./live.js";
import { initTree } from "./tree.js";
import { initEditor, onNodeEvent, reloadData } from "./editor.js";
import { initChildren, loadChildren, onChildEvent } from "./children.js";
import { initAcl } from "./acl.js";
import { initDialogs } from "./dialogs.js";
import { initLiveTables } from "./cluster.js";
import { initJobs } from "./jobs.js";

// ---------- theme, address bar, keyboard (every page) ----------
function initTheme() {
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
}

function initAddressBar() {
  const form = $("#goto-form"), input = $("#goto");
  if (!form) return;
  if (state.path) input.value = state.path;
  form.addEventListener("submit", (e) => {
    const v = input.value.trim();
    if (v.startsWith("/")) { e.preventDefault(); location.href = uiHref(v.replace(/\/+$/, "") || "/"); }
  });
}

function onKey(e) {
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
  else if (e.key === "u" && state.path && state.path !== "/") { location.href = uiHref(parentOf(state.path)); }
}

// ---------- node page ----------
function initTabs() {
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
}

function nodePage() {
  initTabs();
  initEditor();
  initChildren();
  initAcl();
  initDialogs();
  live.subscribe("node", state.path, "node", true, onNodeEvent);
  live.subscribe("kids", state.path, "children", false, onChildEvent);
  live.connect({ ready: ["node", "kids"], resync: () => { reloadData(); loadChildren(); } });
  initTree();
  initJobs();
}

initTheme();
initAddressBar();
document.addEventListener("keydown", onKey);
if (state.page === "node") nodePage();
else if (state.page === "cluster") initLiveTables(["cluster", "sessions", "watches"]);
else if (state.page === "sessions") initLiveTables(["sessions"]);
