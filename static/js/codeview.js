// The editor's view: a transparent <textarea> (where the user types; it keeps the caret,
// selection, undo and keyboard behaviour of the browser) over a <pre> that shows the same text
// highlighted, one numbered line per <div>. The <pre> follows the textarea's size and scroll.
// Above HIGHLIGHT_LIMIT characters the textarea is shown alone (plain text), and the page says so.
import { TOKENIZERS, lineHtmls, lineDivs, plainTokens } from "./highlight.js";
import { fmtSize } from "./format.js";
import { lineCount } from "./bytes.js";

// Above either limit the editor is a plain textarea: re-highlighting and laying out more lines
// than this per key press makes typing lag.
export const HIGHLIGHT_LIMIT = 256 * 1024, HIGHLIGHT_LINES = 10_000;

// Offsets of the hex editor's lines (bytes before each line), as 8 hex digits.
function hexLabels(text) {
  const offsets = [];
  let at = 0;
  for (const line of text.split("\n")) {
    offsets.push(at.toString(16).padStart(8, "0"));
    at += (line.match(/[0-9a-fA-F]{2}/g) || []).length;
  }
  return (i) => offsets[i];
}

export class CodeView {
  constructor(box, textarea, pre, note) {
    this.box = box; this.ta = textarea; this.pre = pre; this.note = note;
    this.mode = "text"; this.bad = -1; this.frame = 0; this.plain = false;
    // The line <div>s as rendered (HTML strings), to replace only the lines that changed.
    this.shown = [];
    box.classList.add("on");
    textarea.addEventListener("input", () => this.refresh());
    textarea.addEventListener("scroll", () => this.syncScroll());
    if (typeof ResizeObserver === "function") new ResizeObserver(() => this.syncSize()).observe(textarea);
    else window.addEventListener("resize", () => this.syncSize());
  }

  setMode(mode) { this.mode = mode; this.box.dataset.mode = mode; this.bad = -1; this.shown = []; this.render(); }
  setWrap(on) { this.ta.classList.toggle("wrap", on); this.pre.classList.toggle("wrap", on); this.syncSize(); }
  // Marks line `index` (0-based; -1: none) as the one with a problem.
  setError(index) { if (index !== this.bad) { this.bad = index; this.render(); } }

  // Renders on the next frame (typing fast renders once per frame).
  refresh() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  render() {
    const text = this.ta.value;
    const lines = text.length > HIGHLIGHT_LIMIT ? Infinity : lineCount(text);
    const plain = lines > HIGHLIGHT_LINES;
    if (plain !== this.plain || plain) {
      this.plain = plain;
      this.box.classList.toggle("plain", plain);
      this.note.hidden = !plain;
      this.note.textContent = plain
        ? `Highlighting, line numbers and pretty-printing are off for text over ${fmtSize(HIGHLIGHT_LIMIT)} or ${HIGHLIGHT_LINES.toLocaleString("en")} lines (this is ${fmtSize(text.length)}${lines === Infinity ? "" : `, ${lines.toLocaleString("en")} lines`}), to keep typing fast.`
        : "";
    }
    if (plain) { this.pre.textContent = ""; this.shown = []; return; }
    const tokenize = TOKENIZERS[this.mode] || plainTokens;
    let tokens;
    try { tokens = tokenize(text); } catch (_) { tokens = plainTokens(text); }
    const label = this.mode === "hex" ? hexLabels(text) : undefined;
    const digits = this.mode === "hex" ? 8 : Math.max(2, String(lines).length);
    this.box.style.setProperty("--gutter", `${digits + 1}ch`);
    this.update(lineDivs(lineHtmls(tokens), label, this.bad));
    this.syncSize();
  }

  // Replaces the lines between the unchanged start and end: typing re-lays out one line, not
  // the whole text (a full re-render of 10,000 lines takes the browser a second).
  update(next) {
    const old = this.shown, pre = this.pre;
    if (!old.length || pre.children.length !== old.length + 1) {
      pre.innerHTML = next.join("") + '<div class="l-end"></div>';
      this.shown = next;
      return;
    }
    let p = 0;
    while (p < old.length && p < next.length && old[p] === next[p]) p++;
    let s = 0;
    while (s < old.length - p && s < next.length - p && old[old.length - 1 - s] === next[next.length - 1 - s]) s++;
    for (let k = p; k < old.length - s; k++) pre.children[p].remove();
    if (next.length - s > p) {
      const tpl = document.createElement("template");
      tpl.innerHTML = next.slice(p, next.length - s).join("");
      pre.insertBefore(tpl.content, pre.children[p]);
    }
    this.shown = next;
  }

  syncSize() {
    const ta = this.ta, s = this.pre.style;
    s.top = ta.offsetTop + ta.clientTop + "px"; s.left = ta.offsetLeft + ta.clientLeft + "px";
    s.width = ta.clientWidth + "px"; s.height = ta.clientHeight + "px";
    this.syncScroll();
  }
  syncScroll() { this.pre.scrollTop = this.ta.scrollTop; this.pre.scrollLeft = this.ta.scrollLeft; }

  // Puts the caret at the start of a line (1-based) and scrolls it into view.
  goToLine(line, col = 1) {
    const lines = this.ta.value.split("\n");
    let pos = 0;
    for (let i = 0; i < Math.min(line - 1, lines.length); i++) pos += lines[i].length + 1;
    pos += Math.max(0, col - 1);
    this.ta.focus();
    this.ta.setSelectionRange(pos, pos);
    const row = this.pre.querySelectorAll(".l")[line - 1];
    if (row) this.ta.scrollTop = Math.max(0, row.offsetTop - this.ta.clientHeight / 3);
    this.syncScroll();
  }
}
