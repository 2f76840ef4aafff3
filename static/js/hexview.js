// Read-only hex dump: offsets, 16 bytes per row in hex, and the printable ASCII of each row.
// Three plain-text columns (no element per byte), so a 1 MB node renders in one go.
import { el } from "./dom.js";

export function hexDumpColumns(bytes) {
  const off = [], hex = [], asc = [];
  const width = Math.max(8, (bytes.length ? bytes.length - 1 : 0).toString(16).length);
  for (let i = 0; i < bytes.length; i += 16) {
    const row = bytes.subarray(i, i + 16);
    off.push(i.toString(16).padStart(width, "0"));
    let h = "", a = "";
    for (let k = 0; k < 16; k++) {
      if (k < row.length) {
        h += row[k].toString(16).padStart(2, "0");
        a += row[k] >= 0x20 && row[k] < 0x7f ? String.fromCharCode(row[k]) : ".";
      } else h += "  ";
      if (k < 15) h += k === 7 ? "  " : " ";
    }
    hex.push(h); asc.push(a);
  }
  return { off: off.join("\n"), hex: hex.join("\n"), asc: asc.join("\n") };
}

// Fills `box` with the dump of `bytes`.
export function renderHexDump(box, bytes) {
  const c = hexDumpColumns(bytes);
  box.textContent = "";
  if (!bytes.length) { box.append(el("p", { class: "muted small", text: "No bytes (empty data)." })); return; }
  box.append(
    el("pre", { class: "hx-off", "data-testid": "hex-offsets", "aria-label": "Offsets", text: c.off }),
    el("pre", { class: "hx-hex", "data-testid": "hex-bytes", "aria-label": "Bytes in hex", text: c.hex }),
    el("pre", { class: "hx-asc", "data-testid": "hex-ascii", "aria-label": "ASCII", text: c.asc }),
  );
}
