// Validation of the editor's text per mode, with the line (and column) of the first problem:
// JSON (own scanner, so the position never depends on the browser's message), XML (the
// browser's DOMParser), YAML (basic structural checks, not a full parser).
// Each returns null when valid, else { line, col, message } (1-based line and column).

export function lineCol(text, pos) {
  let line = 1, start = 0;
  for (let i = text.indexOf("\n"); i !== -1 && i < pos; i = text.indexOf("\n", i + 1)) { line++; start = i + 1; }
  return { line, col: pos - start + 1 };
}

class JsonProblem extends Error {
  constructor(pos, message) { super(message); this.pos = pos; }
}

export function validateJson(text) {
  let i = 0;
  const n = text.length;
  const ws = () => { while (i < n && (text[i] === " " || text[i] === "\t" || text[i] === "\n" || text[i] === "\r")) i++; };
  const fail = (msg) => { throw new JsonProblem(i, msg); };
  const what = () => (i >= n ? "end of data" : `“${text[i]}”`);
  function string() {
    i++; // opening quote
    while (i < n) {
      const c = text[i];
      if (c === '"') { i++; return; }
      if (c === "\\") {
        const e = text[i + 1];
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.substr(i + 2, 4))) { i++; fail("bad \\u escape (four hex digits expected)"); }
          i += 6; continue;
        }
        if (!'"\\/bfnrt'.includes(e) || e === undefined) { i++; fail(`bad escape \\${e === undefined ? "" : e}`); }
        i += 2; continue;
      }
      if (c < " ") fail(c === "\n" ? "string not closed on this line" : "control character in a string");
      i++;
    }
    fail("string not closed");
  }
  function number() {
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m) fail(`invalid number at ${what()}`);
    i += m[0].length;
  }
  function value(depth) {
    if (depth > 2000) fail("nested too deeply");
    ws();
    const c = text[i];
    if (c === "{") {
      i++; ws();
      if (text[i] === "}") { i++; return; }
      for (;;) {
        ws();
        if (text[i] !== '"') fail(`expected a key in quotes, found ${what()}`);
        string(); ws();
        if (text[i] !== ":") fail(`expected “:” after the key, found ${what()}`);
        i++;
        value(depth + 1); ws();
        if (text[i] === ",") { i++; ws(); if (text[i] === "}") fail("trailing comma before “}”"); continue; }
        if (text[i] === "}") { i++; return; }
        fail(`expected “,” or “}”, found ${what()}`);
      }
    }
    if (c === "[") {
      i++; ws();
      if (text[i] === "]") { i++; return; }
      for (;;) {
        value(depth + 1); ws();
        if (text[i] === ",") { i++; ws(); if (text[i] === "]") fail("trailing comma before “]”"); continue; }
        if (text[i] === "]") { i++; return; }
        fail(`expected “,” or “]”, found ${what()}`);
      }
    }
    if (c === '"') return string();
    if (c === "-" || (c >= "0" && c <= "9")) return number();
    for (const lit of ["true", "false", "null"]) if (text.startsWith(lit, i)) { i += lit.length; return; }
    fail(`unexpected ${what()}`);
  }
  try {
    value(0); ws();
    if (i < n) fail(`unexpected ${what()} after the end of the JSON value`);
    return null;
  } catch (e) {
    if (!(e instanceof JsonProblem)) throw e;
    return { ...lineCol(text, e.pos), message: e.message };
  }
}

export function validateXml(text) {
  if (typeof DOMParser !== "function") return null;
  const doc = new DOMParser().parseFromString(text, "application/xml");
  const err = doc.getElementsByTagName("parsererror")[0];
  if (!err) return null;
  const msg = err.textContent || "not well-formed";
  // Chromium: "error on line 3 at column 5: Opening and ending tag mismatch: a line 0 and b"
  const m = /line (\d+) at column (\d+):\s*([^\n]*)/.exec(msg);
  if (m) return { line: Number(m[1]), col: Number(m[2]), message: m[3].trim() || "not well-formed" };
  return { line: 1, col: 1, message: msg.replace(/\s+/g, " ").trim().slice(0, 200) };
}

// YAML, the mistakes people make by hand (basic checks, not a parser): tabs in indentation,
// quotes and flow brackets never closed, a key or item indented under a key or item that
// already has a scalar value.
const YAML_KEY = /^(?:-\s+)*("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"[\]{},][^#]*?)\s*:(?:\s+(.*))?$/;
export function validateYaml(text) {
  const lines = text.split("\n");
  let flow = 0, flowAt = null, q = null, qAt = null;
  let prev = null; // { indent, scalar: whether the line's key or item has a value on it }
  for (let k = 0; k < lines.length; k++) {
    const line = lines[k].replace(/\r$/, "");
    const at = (col, message) => ({ line: k + 1, col, message });
    const lead = /^[ \t]*/.exec(line)[0];
    const body = line.slice(lead.length);
    const inside = q !== null || flow > 0; // continuing a quoted scalar or a flow collection
    if (!inside) {
      if (body === "" || body.startsWith("#")) continue;
      if (lead.includes("\t")) return at(lead.indexOf("\t") + 1, "tab in indentation (YAML indents with spaces)");
      if (/^(---|\.\.\.)(\s|$)/.test(line)) { prev = null; continue; }
    }
    for (let c = 0; c < body.length; c++) {
      const ch = body[c];
      if (q) {
        if (q === '"' && ch === "\\") { c++; continue; }
        if (ch === q) { if (q === "'" && body[c + 1] === "'") { c++; continue; } q = null; }
        continue;
      }
      if ((ch === '"' || ch === "'") && (c === 0 || /[\s,[{]/.test(body[c - 1]))) { q = ch; qAt = at(lead.length + c + 1); continue; }
      if (ch === "#" && (c === 0 || /\s/.test(body[c - 1]))) break;
      if (ch === "[" || ch === "{") { if (flow === 0) flowAt = at(lead.length + c + 1); flow++; }
      if (ch === "]" || ch === "}") { flow--; if (flow < 0) return at(lead.length + c + 1, `“${ch}” without its opening bracket`); }
    }
    if (inside) { prev = null; continue; }
    const indent = lead.length;
    const isItem = /^-(\s|$)/.test(body);
    const key = YAML_KEY.exec(body);
    if (prev && prev.scalar && indent > prev.indent && (key || isItem)) {
      return at(indent + 1, "indented under a line that already has a value (a missing “:” or a wrong indent?)");
    }
    let value = key ? (key[2] || "").trim() : isItem ? body.replace(/^(-\s*)+/, "").trim() : "";
    if (/^[|>]/.test(value)) {
      // A block scalar: its more-indented lines are text.
      let j = k + 1;
      while (j < lines.length && (lines[j].trim() === "" || /^\s*/.exec(lines[j])[0].length > indent)) j++;
      k = j - 1;
      prev = null;
      continue;
    }
    value = value.replace(/(^|\s)#.*$/, "").trim();
    // A key after "- " sits at the column after the dashes.
    const keyIndent = key && isItem ? indent + /^(-\s+)+/.exec(body)[0].length : indent;
    prev = { indent: keyIndent, scalar: value !== "" && !/^[&!]\S*$/.test(value) && (key !== null || isItem) };
  }
  if (q) return { ...qAt, message: `quoted string (${q}) never closed` };
  if (flow > 0) return { ...flowAt, message: "flow collection ([ or {) never closed" };
  return null;
}

export const VALIDATORS = { json: validateJson, xml: validateXml, yaml: validateYaml };

export function validate(text, mode) {
  const v = VALIDATORS[mode];
  if (!v || text.trim() === "") return null;
  return v(text);
}
