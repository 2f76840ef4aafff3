// Line diff (longest common subsequence) for the save-conflict view: the server's version
// ("theirs") against the editor's ("yours").
import { el } from "./dom.js";

// The DP table is (n+1)*(m+1) cells of the lines left after trimming the common start and end;
// beyond this many cells the middle is shown as all removed / all added (still correct, only
// less precise).
const MAX_CELLS = 4_000_000;

// Returns [{ op: " " | "-" | "+", text, a, b }]: "-" only in theirs, "+" only in yours;
// a and b are the 1-based line numbers in theirs and in yours (null where absent).
export function diffLines(theirs, yours) {
  const A = theirs.split("\n"), B = yours.split("\n");
  let pre = 0;
  while (pre < A.length && pre < B.length && A[pre] === B[pre]) pre++;
  let suf = 0;
  while (suf < A.length - pre && suf < B.length - pre && A[A.length - 1 - suf] === B[B.length - 1 - suf]) suf++;
  const a = A.slice(pre, A.length - suf), b = B.slice(pre, B.length - suf);
  const out = [];
  for (let i = 0; i < pre; i++) out.push({ op: " ", text: A[i], a: i + 1, b: i + 1 });
  const n = a.length, m = b.length;
  if ((n + 1) * (m + 1) <= MAX_CELLS) {
    // lcs[i][j]: LCS length of a[i..] and b[j..], in one flat array.
    const w = m + 1, lcs = new Uint32Array((n + 1) * w);
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        lcs[i * w + j] = a[i] === b[j] ? lcs[(i + 1) * w + j + 1] + 1 : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
      }
    }
    let i = 0, j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && a[i] === b[j]) { out.push({ op: " ", text: a[i], a: pre + i + 1, b: pre + j + 1 }); i++; j++; }
      else if (i < n && (j === m || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1])) { out.push({ op: "-", text: a[i], a: pre + i + 1, b: null }); i++; }
      else { out.push({ op: "+", text: b[j], a: null, b: pre + j + 1 }); j++; }
    }
  } else {
    a.forEach((t, i) => out.push({ op: "-", text: t, a: pre + i + 1, b: null }));
    b.forEach((t, j) => out.push({ op: "+", text: t, a: null, b: pre + j + 1 }));
  }
  for (let k = 0; k < suf; k++) {
    const ia = A.length - suf + k, ib = B.length - suf + k;
    out.push({ op: " ", text: A[ia], a: ia + 1, b: ib + 1 });
  }
  return out;
}

// The diff as a table-like block: unchanged runs longer than 2*context+1 lines fold to a
// "… n unchanged lines" row.
export function renderDiff(rows, context = 3) {
  const box = el("div", { class: "diff", role: "table", tabindex: "0", "aria-label": "Differences: − theirs (on the server), + yours" });
  const changed = rows.map((r) => r.op !== " ");
  const near = new Uint8Array(rows.length);
  changed.forEach((c, i) => { if (c) for (let k = Math.max(0, i - context); k <= Math.min(rows.length - 1, i + context); k++) near[k] = 1; });
  let skipped = 0;
  const flushSkip = () => {
    if (skipped) box.append(el("div", { class: "d-skip", role: "row", text: `… ${skipped} unchanged line${skipped > 1 ? "s" : ""}` }));
    skipped = 0;
  };
  rows.forEach((r, i) => {
    if (!near[i]) { skipped++; return; }
    flushSkip();
    const cls = r.op === "-" ? "d-del" : r.op === "+" ? "d-add" : "d-same";
    box.append(el("div", { class: "d-row " + cls, role: "row", "data-op": r.op },
      el("span", { class: "d-n", role: "cell", text: r.a === null ? "" : String(r.a) }),
      el("span", { class: "d-n", role: "cell", text: r.b === null ? "" : String(r.b) }),
      el("span", { class: "d-op", role: "cell", text: r.op === " " ? "" : r.op === "-" ? "−" : "+" }),
      el("span", { class: "d-text", role: "cell", text: r.text })));
  });
  flushSkip();
  return box;
}
