// The node actions' dialogs: create, delete, duplicate/move, import.
import { $, $$, toast } from "./dom.js";
import { state } from "./state.js";
import { api, apiNode, apiUrl, uiHref, join, parentOf, errText, ApiError } from "./api.js";
import { setDirty } from "./editor.js";
import { loadChildren } from "./children.js";
import { refreshTreeItem } from "./tree.js";
import { followIfJob } from "./jobs.js";

// A ZooKeeper error of a dialog's action as a sentence that says what to do.
function readableError(e, dialog) {
  if (!(e instanceof ApiError)) return errText(e);
  const sentence = explain(e, dialog);
  // The ZooKeeper name stays, for searching docs and logs.
  return sentence ? `${sentence} [${e.body.error}]` : errText(e);
}
function explain(e, dialog) {
  const where = e.body.path ? ` (${e.body.path})` : "";
  switch (e.body.error) {
    case "NoNode":
      return dialog === "dlg-create" || dialog === "dlg-path"
        ? `A parent of the new node does not exist${where}. Tick “create missing parents” to create it too.`
        : `The node no longer exists${where}.`;
    case "NodeExists": return `A node with that path exists already${where}. Choose another name.`;
    case "NoAuth": return `Not permitted${where}: the node's ACL does not grant your identities this. Log in with one it grants.`;
    case "NotEmpty": return `The node has children${where}. Tick the subtree box to delete them too.`;
    case "BadVersion": return `The node changed meanwhile${where}: reload the page and try again.`;
    default: return null;
  }
}

// Opens a dialog whose form runs onOk on submit; an error stays in the dialog.
function openDialog(id, onOk) {
  const dlg = $("#" + id), form = $("form", dlg), err = $('[data-role="error"]', dlg);
  err.hidden = true;
  if (form.reset) form.reset();
  dlg.showModal();
  form.onsubmit = async (e) => {
    if (e.submitter && e.submitter.value === "cancel") return;
    e.preventDefault();
    try { await onOk(form); dlg.close(); }
    catch (ex) { err.textContent = readableError(ex, id); err.hidden = false; }
  };
  return dlg;
}

// An in-page yes/no question (not the browser's confirm(), which blocks the page and
// cannot be styled or read by assistive tools the same way).
export function askConfirm(message, okLabel = "OK", cancelLabel = "Cancel") {
  const dlg = $("#dlg-confirm");
  $("[data-role=message]", dlg).textContent = message;
  $("[data-role=ok]", dlg).textContent = okLabel;
  $("[data-role=cancel]", dlg).textContent = cancelLabel;
  return new Promise((resolve) => {
    dlg.returnValue = "";
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), { once: true });
    dlg.showModal();
  });
}

// Follows a started job (an answer with {job}) after its dialog closed; `then` runs once
// it is done (or at once when the server did the work atomically).
function afterJob(answer, then) {
  if (!answer || !answer.job) { then(); return; }
  setTimeout(async () => {
    const j = await followIfJob(answer);
    if (j && j.state === "done") then();
    else loadChildren();
  }, 0);
}

function pathDialog(title, endpoint) {
  const dlg = openDialog("dlg-path", async (f) => {
    const dest = f.dest.value.trim();
    // Atomic up to the multi limit; a larger subtree is copied (moved) by a job in batches.
    const r = await api("POST", apiUrl(endpoint + "?job=auto"), { source: state.path, destination: dest, createParents: f.parents.checked });
    afterJob(r, () => { setDirty(false); location.href = uiHref(dest); });
  });
  $("h2", dlg).textContent = title;
  $('input[name="dest"]', dlg).value = state.path + "-copy";
}

const actions = {
  create: () => openDialog("dlg-create", async (f) => {
    const name = f.name.value.trim().replace(/^\/+/, "");
    const m = f.mode.value;
    const r = await api("POST", apiNode(join(state.path, name)), {
      data: f.data.value, mode: m, ttl: m.includes("ttl") ? Number(f.ttl.value) : undefined, createParents: f.parents.checked,
    });
    // Open the new node (a sequential node's name is the one ZooKeeper gave it); unsaved
    // edits of this page are guarded by the browser's leave-page question.
    location.href = uiHref(r.path);
  }),
  delete: () => openDialog("dlg-delete", async (f) => {
    const rec = f.recursive && f.recursive.checked;
    const q = new URLSearchParams({ version: state.node.version });
    if (rec) { q.set("recursive", "true"); q.set("job", "auto"); }
    const r = await api("DELETE", apiNode(state.path) + "?" + q);
    afterJob(r, () => { setDirty(false); location.href = uiHref(parentOf(state.path)); });
  }),
  // On a NoNode page: create the missing node itself (and its missing parents), then show it.
  "create-here": async () => {
    try {
      await api("POST", apiNode(state.path), { data: "", mode: "persistent", createParents: true });
      location.reload();
    } catch (e) { toast("Not created: " + errText(e), true, 8000); }
  },
  copy: () => pathDialog("Duplicate to", "/copy"),
  move: () => pathDialog("Move to", "/move"),
  import: () => openDialog("dlg-import", async (f) => {
    const file = f.file.files[0];
    if (!file) throw new Error("choose a file");
    // Sent as bytes: the server recognises gzip (ZooNavigator's .gz export) by its magic number.
    const r = await api("POST", apiUrl("/import?path=" + encodeURIComponent(state.path)), new Uint8Array(await file.arrayBuffer()));
    toast(`Imported ${r.created} node(s)`);
    loadChildren();
    refreshTreeItem(state.path);
  }),
};

export function initDialogs() {
  const createDlg = $("#dlg-create");
  if (createDlg) $('select[name="mode"]', createDlg).addEventListener("change", (e) => {
    createDlg.classList.toggle("show-ttl", e.target.value.includes("ttl"));
    createDlg.classList.toggle("show-eph", e.target.value.startsWith("ephemeral"));
  });
  $$("[data-action]").forEach((b) => b.addEventListener("click", () => actions[b.dataset.action]()));
  // Cancel is a plain button, so that Enter in a dialog submits it (the first submit
  // button of a form is the one Enter presses).
  $$("dialog [data-close]").forEach((b) => b.addEventListener("click", () => b.closest("dialog").close()));
}
