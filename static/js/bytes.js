// Node data as bytes and as the editor's text (text, JSON, YAML, XML, properties, base64, hex); gzip.
export function b64ToBytes(b64) {
  const bin = atob(b64 || "");
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
export function bytesToB64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}
export function utf8(bytes) { return new TextDecoder("utf-8", { fatal: true }).decode(bytes); }
export function toHex(bytes) {
  const lines = [];
  for (let i = 0; i < bytes.length; i += 16) {
    lines.push(Array.from(bytes.subarray(i, i + 16), (b) => b.toString(16).padStart(2, "0")).join(" "));
  }
  return lines.join("\n");
}
export function fromHex(text) {
  const clean = text.replace(/\s+/g, "");
  if (clean.length % 2 || /[^0-9a-fA-F]/.test(clean)) throw new Error("invalid hex");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.substr(i * 2, 2), 16);
  return out;
}
export const TEXT_MODES = ["text", "json", "yaml", "xml", "properties"];
export const REFORMAT_MODES = ["json", "yaml"];

// Re-indents JSON token by token: numbers and strings are kept exactly as written (no
// rounding of big numbers, no lost duplicate keys, escapes untouched). Throws on invalid JSON.
export function reformatJson(text) {
  JSON.parse(text); // validates (the message names the position)
  let out = "", depth = 0, i = 0;
  const nl = () => "\n" + "  ".repeat(depth);
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      out += text.slice(i, j + 1); i = j + 1; continue;
    }
    if (c === " " || c === "\t" || c === "\n" || c === "\r") { i++; continue; }
    if (c === "{" || c === "[") {
      let j = i + 1;
      while (" \t\n\r".includes(text[j])) j++;
      const close = c === "{" ? "}" : "]";
      if (text[j] === close) { out += c + close; i = j + 1; continue; } // {} and [] stay on one line
      depth++; out += c + nl(); i++; continue;
    }
    if (c === "}" || c === "]") { depth--; out += nl() + c; i++; continue; }
    if (c === ",") { out += "," + nl(); i++; continue; }
    if (c === ":") { out += ": "; i++; continue; }
    let j = i; // number, true, false, null
    while (j < text.length && !" \t\n\r,:]}".includes(text[j])) j++;
    out += text.slice(i, j); i = j;
  }
  return out;
}

// gzip: detected by its magic bytes, shown decompressed, re-compressed on save.
export const HAS_GZIP = typeof DecompressionStream === "function" && typeof CompressionStream === "function";
export function isGzip(bytes) { return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b; }
async function pipeBytes(bytes, stream) {
  const out = new Response(new Blob([bytes]).stream().pipeThrough(stream));
  return new Uint8Array(await out.arrayBuffer());
}
export const gunzip = (bytes) => pipeBytes(bytes, new DecompressionStream("gzip"));
export const gzip = (bytes) => pipeBytes(bytes, new CompressionStream("gzip"));

export function render(bytes, mode) {
  if (mode === "base64") return bytesToB64(bytes);
  if (mode === "hex") return toHex(bytes);
  return utf8(bytes); // throws on binary: caller falls back to hex
}
export function parse(text, mode) {
  if (mode === "base64") {
    try { return b64ToBytes(text.replace(/\s+/g, "")); } catch (_) { throw new Error("invalid base64"); }
  }
  if (mode === "hex") return fromHex(text);
  if (mode === "json" && text.trim() !== "") JSON.parse(text); // validate before saving
  return new TextEncoder().encode(text);
}
export function guessMode(bytes) {
  let text;
  try { text = utf8(bytes); } catch (_) { return "hex"; }
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/.test(text)) return "hex";
  const t = text.trim();
  if ((t.startsWith("{") || t.startsWith("[")) && t.length) { try { JSON.parse(t); return "json"; } catch (_) { /* text */ } }
  if (t.startsWith("<")) return "xml";
  if (looksLikeProperties(t)) return "properties";
  return "text";
}

// Java properties: every line a comment or key=value (at least one "=").
function looksLikeProperties(t) {
  const lines = t.split("\n").filter((l) => l.trim() !== "" && !/^\s*[#!]/.test(l));
  return lines.length > 0 && lines.every((l) => /^\s*[\w.\-/\[\]]+\s*[=:]/.test(l)) && lines.some((l) => /^\s*[\w.\-/\[\]]+\s*=/.test(l));
}

// Pretty-printing stops at this size: a browser's textarea slows down with its number of lines
// (a 1 MB JSON pretty-printed is 180,000 lines and takes seconds per key press). The same
// limits as the editor's highlighting (codeview.js).
export const PRETTY_LIMIT = 256 * 1024, PRETTY_LINES = 10_000;
export function lineCount(text) {
  let n = 1;
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) n++;
  return n;
}

// The text the editor shows for bytes in a mode: JSON is pretty-printed token by token (see
// reformatJson) when it is valid and the result stays under PRETTY_LIMIT; anything else
// exactly as stored.
export function renderForEditor(bytes, mode) {
  const text = render(bytes, mode);
  if (mode === "json" && text.trim() !== "" && text.length <= PRETTY_LIMIT) {
    try {
      const pretty = reformatJson(text);
      if (pretty.length <= PRETTY_LIMIT && lineCount(pretty) <= PRETTY_LINES) return pretty;
    } catch (_) { /* shown as it is */ }
  }
  return text;
}
