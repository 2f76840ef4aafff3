// The node's children: paged, filtered, sorted on the server; bulk selection and delete.
import { $, $$, el, toast } from "./dom.js";
import { state } from "./state.js";
import { api, apiNode, apiUrl, uiHref, parentOf, errText } from "./api.js";
import { fmtSize } from "./format.js";
import { askConfirm } from "./dialogs.js";

const list = { offset: 0, limit: 100, total: 0, desc: false, filter: "", regex: false };
let listTimer = null;

export async function loadChildren() {
  const q = new URLSearchParams({ children: "true", offset: list.offset, limit: list.limit, order: list.desc ? "desc" : "asc" });
  if (list.filter) { q.set("filter", list.filter); if (list.regex) q.set("regex", "true"); }
  let r;
  try { r = await api("GET", apiNode(state.path) + "?" + q); }
  catch (e) {
    // No stale rows under a filter that matched nothing: say why the list is empty.
    $("#filter").setCustomValidity(errText(e)); $("#filter").reportValidity();
    const ul = $("#children");
    ul.replaceChildren(el("li", { class: "error empty", "data-testid": "filter-error", text: errText(e) }));
    $("#child-count").textContent = "–"; $("#page-info").textContent = "";
    return;
  }
  $("#filter").setCustomValidity("");
  const page = r.children;
  list.total = page.total;
  if (list.offset > 0 && list.offset >= page.total) { list.offset = Math.max(0, page.total - list.limit); return loadChildren(); }
  const ul = $("#children");
  const selected = new Set($$(".sel:checked", ul).map((c) => c.value));
  const before = new Set($$("li[data-path]", ul).map((li) => li.dataset.path));
  ul.textContent = "";
  if (state.path !== "/") ul.append(el("li", { class: "up" }, el("a", { href: uiHref(parentOf(state.path)), text: "../" })));
  for (const it of page.items) {
    const s = it.stat || { numChildren: 0, dataLength: 0, ephemeralOwner: "0x0" };
    ul.append(el("li", { "data-path": it.path, "data-testid": "child-row", class: before.size && !before.has(it.path) ? "flash" : null },
      state.readOnly ? null : el("input", { type: "checkbox", class: "sel", value: it.path, "aria-label": "Select " + it.name, checked: selected.has(it.path) }),
      el("a", { href: uiHref(it.path), class: "name", text: it.name }),
      s.ephemeralOwner !== "0x0" ? el("span", { class: "badge", title: "ephemeral", text: "E" }) : null,
      el("span", { class: "meta" },
        s.numChildren > 0 ? el("span", { class: "count", title: "children", text: String(s.numChildren) }) : null,
        el("span", { class: "size", text: fmtSize(s.dataLength) }))));
  }
  if (!page.items.length) ul.append(el("li", { class: "muted empty", text: list.filter ? "No match" : "No child nodes" }));
  const cols = $(".cols");
  if (cols) cols.classList.toggle("leaf", page.totalUnfiltered === 0 && state.path !== "/");
  $("#child-count").textContent = list.filter ? `${page.total} of ${page.totalUnfiltered}` : String(page.total);
  $("#page-info").textContent = page.total ? `${list.offset + 1}–${list.offset + page.items.length} of ${page.total}` : "";
  $("#prev").disabled = list.offset === 0;
  $("#next").disabled = list.offset + list.limit >= page.total;
  updateBulk();
}

export function scheduleChildren(ms = 250) { clearTimeout(listTimer); listTimer = setTimeout(loadChildren, ms); }

// A live event under the page's node.
export function onChildEvent(m) {
  if (m.type !== "NodeChildrenChanged" || m.path === state.path) scheduleChildren();
  const row = $$("#children li").find((x) => x.dataset.path === m.path);
  if (row && m.type === "NodeDataChanged") row.classList.add("flash");
}

function updateBulk() {
  const btn = $("#bulk-delete");
  if (!btn) return;
  const n = $$("#children .sel:checked").length;
  btn.disabled = n === 0;
  btn.textContent = n ? `Delete ${n} selected` : "Delete selected";
}

export function initChildren() {
  list.total = Number($("#child-count").textContent) || 0;
  $("#filter").addEventListener("input", (e) => { list.filter = e.target.value; list.offset = 0; scheduleChildren(200); });
  $("#filter").addEventListener("keydown", (e) => {
    if (e.key === "Enter") { const first = $("#children li[data-path] a"); if (first) first.click(); }
  });
  $("#filter-re").addEventListener("change", (e) => { list.regex = e.target.checked; list.offset = 0; scheduleChildren(0); });
  $("#sort").addEventListener("click", (e) => { list.desc = !list.desc; e.target.textContent = list.desc ? "Z→A" : "A→Z"; list.offset = 0; scheduleChildren(0); });
  $("#prev").addEventListener("click", () => { list.offset = Math.max(0, list.offset - list.limit); loadChildren(); });
  $("#next").addEventListener("click", () => { list.offset += list.limit; loadChildren(); });

  // Bulk selection and delete (one multi).
  $("#children").addEventListener("change", updateBulk);
  if ($("#select-all")) {
    $("#select-all").addEventListener("change", (e) => { $$("#children .sel").forEach((c) => (c.checked = e.target.checked)); updateBulk(); });
    $("#bulk-delete").addEventListener("click", async () => {
      const paths = $$("#children .sel:checked").map((c) => c.value);
      if (!paths.length || !(await askConfirm(`Delete ${paths.length} node(s)? Nodes with children are refused (NotEmpty); nothing is deleted then.`, `Delete ${paths.length}`))) return;
      try {
        await api("POST", apiUrl("/multi"), { ops: paths.map((p) => ({ op: "delete", path: p })) });
        toast(`Deleted ${paths.length} node(s)`);
        $("#select-all").checked = false;
        loadChildren();
      } catch (e) { toast("Bulk delete failed: " + errText(e), true, 8000); }
    });
  }
}
