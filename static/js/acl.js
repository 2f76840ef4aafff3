// The ACL tab: edit the entries, apply to the node or its whole subtree. Rows are checked
// here first, so that an error names its row; a digest entry written as user:password is
// offered to be hashed (stored as written, it would lock that user out).
import { $, $$, el, toast } from "./dom.js";
import { state } from "./state.js";
import { api, apiNode, errText } from "./api.js";
import { showStat } from "./editor.js";
import { askConfirm } from "./dialogs.js";
import { followIfJob } from "./jobs.js";
import { bytesToB64 } from "./bytes.js";
import { sha1 } from "./sha1.js";

function aclRow(a = { scheme: "world", id: "anyone", perms: "r" }) {
  return el("tr", { "data-testid": "acl-row" },
    el("td", {}, el("input", { class: "acl-scheme", value: a.scheme, "aria-label": "scheme" })),
    el("td", {}, el("input", { class: "acl-id", value: a.id, "aria-label": "id" })),
    ...["c", "d", "r", "w", "a"].map((l) => el("td", { "data-label": l }, el("input", { type: "checkbox", class: "acl-perm", "data-perm": l, "aria-label": l, checked: a.perms.includes(l) }))),
    el("td", {}, el("button", { type: "button", class: "icon acl-remove", "aria-label": "Remove entry", text: "✕" })));
}

// The digest id ZooKeeper compares: user:base64(sha1(user:password)).
export function digestOf(userPassword) {
  const user = userPassword.slice(0, userPassword.indexOf(":"));
  return user + ":" + bytesToB64(sha1(new TextEncoder().encode(userPassword)));
}
// user:hash has a 28-character base64 SHA-1 after the first colon.
const looksHashed = (id) => /^[^:]+:[A-Za-z0-9+/]{27}=$/.test(id);

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}(\/([0-9]|[12]\d|3[0-2]))?$/;
// Why an entry is invalid, or null.
function rowProblem(a) {
  if (!a.perms) return "no permission ticked";
  switch (a.scheme) {
    case "world": return a.id === "anyone" ? null : "the world scheme has the one id anyone";
    case "auth": return null;
    case "digest": return /^[^:]+:.+$/.test(a.id) ? null : "a digest id is user:hash";
    case "ip": return IPV4.test(a.id) || (a.id.includes(":") && /^[0-9a-fA-F:]+(\/\d{1,3})?$/.test(a.id)) ? null : "not an IP address or network (10.0.0.0/8)";
    case "x509": case "sasl": case "super": return a.id ? null : "the id is empty";
    default: return `unknown scheme ${JSON.stringify(a.scheme)} (world, auth, digest, ip, x509, sasl)`;
  }
}

function readRows() {
  return $$("#acl-rows tr").map((tr) => ({
    tr,
    scheme: $(".acl-scheme", tr).value.trim(), id: $(".acl-id", tr).value.trim(),
    perms: $$(".acl-perm:checked", tr).map((c) => c.dataset.perm).join(""),
  }));
}

function showProblem(text) {
  const p = $("#acl-problem");
  p.textContent = text;
  p.hidden = !text;
}

async function apply() {
  showProblem("");
  const rows = readRows();
  rows.forEach((r) => r.tr.removeAttribute("aria-invalid"));
  if (!rows.length) { toast("An ACL needs at least one entry", true); return; }
  const bad = rows.map((r, i) => [r, i, rowProblem(r)]).find(([, , why]) => why);
  if (bad) {
    const [r, i, why] = bad;
    r.tr.setAttribute("aria-invalid", "true");
    showProblem(`Row ${i + 1} (${r.scheme}:${r.id}): ${why}. Nothing was applied.`);
    $(".acl-id", r.tr).focus();
    return;
  }
  for (const r of rows.filter((x) => x.scheme === "digest" && !looksHashed(x.id))) {
    const hashed = digestOf(r.id);
    const user = r.id.slice(0, r.id.indexOf(":"));
    const ok = await askConfirm(
      `digest:${r.id} looks like user:password. ZooKeeper compares digest ids with the hash of user:password, ` +
      `so stored as written it would lock ${user} out. Store digest:${hashed} instead?`, "Hash it", "Keep as written");
    if (ok) $(".acl-id", r.tr).value = r.id = hashed;
  }
  const acl = rows.map(({ scheme, id, perms }) => ({ scheme, id, perms }));
  const rec = $("#acl-recursive") && $("#acl-recursive").checked;
  if (rec && !(await askConfirm(`Set this ACL on ${state.path} and every node below it? Up to the multi limit this is one atomic multi; a larger subtree is changed by a job in batches, parents first (not atomic).`, "Apply to the subtree"))) return;
  try {
    const r = await api("PUT", apiNode(state.path) + "?acl=true" + (rec ? "&recursive=true&job=auto" : ""), { acl, version: state.node.aversion });
    if (r.job) {
      const j = await followIfJob(r);
      if (j && j.state === "done") toast("ACL applied to the subtree: " + j.outcome);
      else if (j) showProblem("ACL job " + j.state + ": " + j.outcome);
      return;
    }
    showStat(r.stat);
    toast(`ACL applied${rec ? " to the subtree" : ""} (ACL version ${r.stat.aversion})`);
  } catch (e) {
    showProblem("ACL not applied: " + errText(e));
    toast("ACL not applied: " + errText(e), true, 8000);
  }
}

export function initAcl() {
  $("#acl-rows").addEventListener("click", (e) => { if (e.target.classList.contains("acl-remove")) e.target.closest("tr").remove(); });
  if (!$("#acl-add")) return;
  $("#acl-add").addEventListener("click", () => { const r = aclRow(); $("#acl-rows").append(r); $(".acl-scheme", r).focus(); });
  $("#acl-save").addEventListener("click", apply);
}
