// The one state object the modules share: what the page is about and what the user holds.
const body = document.body;
const csrfMeta = document.querySelector('meta[name="csrf-token"]');

export const state = {
  base: body.dataset.base || "",
  csrf: csrfMeta ? csrfMeta.content : "",
  readOnly: body.dataset.readonly === "true",
  // The ZooKeeper session holding this browser session's ephemeral nodes ("" if none).
  ownSession: body.dataset.ownSession || "",
  page: body.dataset.page || "",
  // The node page's node (empty elsewhere).
  path: body.dataset.path || "",
  node: {
    version: Number(body.dataset.version),
    aversion: Number(body.dataset.aversion),
    numChildren: Number(body.dataset.numChildren),
  },
  // Whether the editor holds edits not saved yet.
  dirty: false,
};
