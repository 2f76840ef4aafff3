// The tree pane: lazily loaded, kept current by live child watches, keyboard-navigable.
import { $, $$, el } from "./dom.js";
import { state } from "./state.js";
import { api, apiNode, uiHref, join, errText } from "./api.js";
import { subscribe, unsubscribe } from "./live.js";

const TREE_PAGE = 200;

const findItem = (path) => $$("#tree li").find((x) => x.dataset.path === path);

function treeItem(path, name, numChildren) {
  const li = el("li", { role: "treeitem", "data-path": path, "aria-expanded": numChildren > 0 ? "false" : null });
  const tw = el("button", { type: "button", class: "tw", tabindex: "-1", "aria-label": "Expand", text: numChildren > 0 ? "▸" : "" });
  const current = path === state.path;
  const a = el("a", { href: uiHref(path), text: name, class: current ? "current" : "" });
  if (current) a.setAttribute("aria-current", "page");
  tw.addEventListener("click", () => toggle(li));
  a.addEventListener("keydown", (e) => {
    if (e.key === "ArrowRight" && li.getAttribute("aria-expanded") === "false") { e.preventDefault(); toggle(li); }
    else if (e.key === "ArrowLeft" && li.getAttribute("aria-expanded") === "true") { e.preventDefault(); toggle(li); }
    else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const all = $$("#tree a").filter((x) => x.offsetParent !== null);
      const n = all[all.indexOf(a) + (e.key === "ArrowDown" ? 1 : -1)];
      if (n) n.focus();
    }
  });
  li.append(el("div", {}, tw, a));
  return li;
}

// The child of `path` on the way to the page's node, when the page's node is below it.
function stepToCurrent(path) {
  const prefix = path === "/" ? "/" : path + "/";
  if (!state.path.startsWith(prefix) || state.path === path) return null;
  const name = state.path.slice(prefix.length).split("/")[0];
  return prefix + name;
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
  // A deep link past the first page (/big/item-10000): the way to the page's node is
  // shown anyway, after the page it is not on.
  const step = stepToCurrent(path);
  if (step && !r.children.items.some((it) => it.path === step)) {
    const kids = step === state.path ? state.node.numChildren : 1;
    const child = treeItem(step, step.slice(step.lastIndexOf("/") + 1), kids);
    child.classList.add("pinned");
    ul.append(child);
    if (open.has(step)) await expand(child);
  }
  if (r.children.total > TREE_PAGE) ul.append(el("li", { class: "more" }, el("a", { href: uiHref(path), text: `… ${r.children.total - TREE_PAGE} more` })));
  $(".tw", li).textContent = r.children.total ? "▾" : "";
}

// Marks a collapsed item as having children or not (after an import, a create, a live event).
async function markExpandable(li) {
  let r;
  try { r = await api("GET", apiNode(li.dataset.path) + "?children=true&limit=1"); } catch (_) { return; }
  const has = r.children.total > 0;
  if (has) li.setAttribute("aria-expanded", "false"); else li.removeAttribute("aria-expanded");
  $(".tw", li).textContent = has ? "▸" : "";
}

// The tree item of `path` changed its children: refill it, or update its arrow.
export function refreshTreeItem(path) {
  const li = findItem(path);
  if (!li) return;
  if (li.getAttribute("aria-expanded") === "true") fillTree(li); else markExpandable(li);
}

function onTreeEvent(m) {
  if (m.type !== "NodeChildrenChanged") return;
  refreshTreeItem(m.path);
}

async function expand(li) {
  li.setAttribute("aria-expanded", "true");
  await fillTree(li);
  subscribe("tree:" + li.dataset.path, li.dataset.path, "children", false, onTreeEvent);
}

function toggle(li) {
  if (li.getAttribute("aria-expanded") === "true") {
    li.setAttribute("aria-expanded", "false");
    const ul = $(":scope > ul", li); if (ul) ul.remove();
    $(".tw", li).textContent = "▸";
    unsubscribe("tree:" + li.dataset.path);
  } else expand(li);
}

export async function initTree() {
  const root = treeItem("/", "/", 1);
  $("#tree").append(root);
  await expand(root);
  // Open the ancestors of the current node.
  let cur = "/";
  for (const seg of state.path.split("/").filter(Boolean).slice(0, -1)) {
    cur = join(cur, seg);
    const li = findItem(cur);
    if (!li || li.getAttribute("aria-expanded") === "true") continue;
    await expand(li);
  }
  const here = findItem(state.path);
  if (here) {
    here.scrollIntoView({ block: "nearest" });
    // Deep nodes: scroll sideways so that the whole name shows, from its arrow on.
    const pane = $("#tree").closest(".tree-pane");
    const row = $(":scope > div", here);
    const paneBox = pane.getBoundingClientRect();
    let box = row.getBoundingClientRect();
    if (box.right > paneBox.right - 4) pane.scrollLeft += box.right - paneBox.right + 8;
    box = row.getBoundingClientRect();
    if (box.left < paneBox.left) pane.scrollLeft -= paneBox.left - box.left + 4;
  }
}
