// The ACL tab: edit the entries, apply to the node or its whole subtree.
import { $, $$, el, toast } from "./dom.js";
import { state } from "./state.js";
import { api, apiNode, errText } from "./api.js";
import { showStat } from "./editor.js";

function aclRow(a = { scheme: "world", id: "anyone", perms: "r" }) {
  return el("tr", { "data-testid": "acl-row" },
    el("td", {}, el("input", { class: "acl-scheme", value: a.scheme, "aria-label": "scheme" })),
    el("td", {}, el("input", { class: "acl-id", value: a.id, "aria-label": "id" })),
    ...["c", "d", "r", "w", "a"].map((l) => el("td", { "data-label": l }, el("input", { type: "checkbox", class: "acl-perm", "data-perm": l, "aria-label": l, checked: a.perms.includes(l) }))),
    el("td", {}, el("button", { type: "button", class: "icon acl-remove", "aria-label": "Remove entry", text: "✕" })));
}

export function initAcl() {
  $("#acl-rows").addEventListener("click", (e) => { if (e.target.classList.contains("acl-remove")) e.target.closest("tr").remove(); });
  if (!$("#acl-add")) return;
  $("#acl-add").addEventListener("click", () => { const r = aclRow(); $("#acl-rows").append(r); $(".acl-scheme", r).focus(); });
  $("#acl-save").addEventListener("click", async () => {
    const acl = $$("#acl-rows tr").map((tr) => ({
      scheme: $(".acl-scheme", tr).value.trim(), id: $(".acl-id", tr).value.trim(),
      perms: $$(".acl-perm:checked", tr).map((c) => c.dataset.perm).join(""),
    }));
    if (!acl.length) { toast("An ACL needs at least one entry", true); return; }
    const rec = $("#acl-recursive") && $("#acl-recursive").checked;
    if (rec && !confirm(`Set this ACL on ${state.path} and every node below it (one atomic multi)?`)) return;
    try {
      const r = await api("PUT", apiNode(state.path) + "?acl=true" + (rec ? "&recursive=true" : ""), { acl, version: state.node.aversion });
      showStat(r.stat);
      toast(`ACL applied${rec ? " to the subtree" : ""} (ACL version ${r.stat.aversion})`);
    } catch (e) { toast("ACL not applied: " + errText(e), true, 8000); }
  });
}
