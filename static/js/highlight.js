// Syntax highlighting for the editor: small tokenizers for JSON, YAML, XML and Java-style
// properties, written for this project (no library). Each returns a list of [class, text]
// tokens covering the whole input; lineHtmls() and lineDivs() turn them into one <div> per line, so the
// editor can number lines and mark a line with an error.

const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" };
export const escapeHtml = (s) => s.replace(/[&<>"]/g, (c) => ESC[c]);

// Runs a global regex with capture groups over text; groups are given classes by `classes`
// (index = group number); text between matches is plain.
function scan(text, re, classes, out = []) {
  re.lastIndex = 0;
  let last = 0, m;
  while ((m = re.exec(text)) !== null) {
    if (m[0] === "") { re.lastIndex++; continue; }
    if (m.index > last) out.push(["", text.slice(last, m.index)]);
    let pos = m.index;
    for (let g = 1; g < m.length; g++) {
      if (m[g] === undefined) continue;
      const at = text.indexOf(m[g], pos);
      if (at > pos) out.push(["", text.slice(pos, at)]);
      out.push([classes[g] || "", m[g]]);
      pos = at + m[g].length;
    }
    const end = m.index + m[0].length;
    if (end > pos) out.push(["", text.slice(pos, end)]);
    last = end;
  }
  if (last < text.length) out.push(["", text.slice(last)]);
  return out;
}

// JSON: a string followed by ':' is a key.
const JSON_RE = /("(?:[^"\\\n]|\\.)*")(?=\s*:)|("(?:[^"\\\n]|\\.)*"?)|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|\b(true|false|null)\b|([{}[\],:])/g;
export function tokensJson(text) {
  return scan(text, JSON_RE, [null, "t-key", "t-str", "t-num", "t-lit", "t-punct"]);
}

// YAML, line by line: comments, document markers, keys, sequence dashes, quoted strings,
// numbers and literals, anchors/aliases/tags.
const YAML_LIT = /^(?:true|false|yes|no|on|off|null|~|True|False|Yes|No|TRUE|FALSE|NULL|Null)$/;
const YAML_NUM = /^[-+]?(?:\d[\d_]*(?:\.\d*)?(?:[eE][-+]?\d+)?|0x[0-9a-fA-F]+|0o[0-7]+|\.inf|\.nan)$/;
const YAML_VALUE_RE = /("(?:[^"\\]|\\.)*"?|'(?:[^']|'')*'?)|((?:^|\s)#.*$)|([&*][^\s,[\]{}]+|![^\s]*)|([[\]{},])|([^\s"'#&*!,[\]{}][^,[\]{}#]*?)(?=\s*(?:[,[\]{}]|\s#|$))/g;
function yamlValue(v, out) {
  const toks = scan(v, YAML_VALUE_RE, [null, "t-str", "t-comment", "t-meta", "t-punct", "t-plain"]);
  for (const t of toks) {
    if (t[0] === "t-plain") {
      const s = t[1].trim();
      t[0] = YAML_NUM.test(s) ? "t-num" : YAML_LIT.test(s) ? "t-lit" : "t-str";
    }
    out.push(t);
  }
}
const YAML_KEY_RE = /^(\s*(?:-\s+)*)("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"[\]{},][^#]*?)(\s*:)(?=\s|$)/;
export function tokensYaml(text) {
  const out = [];
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (i > 0) out.push(["", "\n"]);
    let m;
    if (/^\s*#/.test(line)) { out.push(["t-comment", line]); return; }
    if (/^(---|\.\.\.)(\s|$)/.test(line)) { out.push(["t-meta", line.slice(0, 3)]); yamlValue(line.slice(3), out); return; }
    if (/^%/.test(line)) { out.push(["t-meta", line]); return; }
    if ((m = YAML_KEY_RE.exec(line))) {
      const dash = m[1].match(/^(\s*)(.*)$/);
      out.push(["", dash[1]]);
      if (dash[2]) out.push(["t-punct", dash[2]]);
      out.push(["t-key", m[2]], ["t-punct", m[3]]);
      yamlValue(line.slice(m[0].length), out);
      return;
    }
    const d = /^(\s*)(-)(?=\s|$)/.exec(line);
    if (d) { out.push(["", d[1]], ["t-punct", "-"]); yamlValue(line.slice(d[0].length), out); return; }
    yamlValue(line, out);
  });
  return out;
}

// XML: comments, CDATA, processing instructions, doctype, tags with attributes, entities.
const XML_RE = /(<!--[\s\S]*?(?:-->|$))|(<!\[CDATA\[[\s\S]*?(?:\]\]>|$))|(<\?[\s\S]*?(?:\?>|$))|(<!DOCTYPE[^>]*>?)|(<\/?[\w:.-]+)((?:\s+[^\s=>/]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?)*)(\s*\/?>)?|(&(?:#\d+|#x[0-9a-fA-F]+|\w+);)/g;
const ATTR_RE = /([^\s=>/]+)(\s*=\s*)?("[^"]*"|'[^']*'|[^\s>]+)?/g;
export function tokensXml(text) {
  const out = [];
  XML_RE.lastIndex = 0;
  let last = 0, m;
  while ((m = XML_RE.exec(text)) !== null) {
    if (m[0] === "") { XML_RE.lastIndex++; continue; }
    if (m.index > last) out.push(["", text.slice(last, m.index)]);
    if (m[1]) out.push(["t-comment", m[1]]);
    else if (m[2]) out.push(["t-str", m[2]]);
    else if (m[3] || m[4]) out.push(["t-meta", m[3] || m[4]]);
    else if (m[5]) {
      out.push(["t-tag", m[5]]);
      if (m[6]) scan(m[6], ATTR_RE, [null, "t-attr", "t-punct", "t-str"], out);
      if (m[7]) out.push(["t-tag", m[7]]);
    } else if (m[8]) out.push(["t-lit", m[8]]);
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(["", text.slice(last)]);
  return out;
}

// Java properties: # and ! comments, key, separator (=, : or blanks), value; a trailing
// backslash continues the value on the next line.
export function tokensProperties(text) {
  const out = [];
  let cont = false;
  text.split("\n").forEach((line, i) => {
    if (i > 0) out.push(["", "\n"]);
    const continues = /(^|[^\\])(\\\\)*\\$/.test(line);
    if (cont) { out.push(["t-str", line]); cont = continues; return; }
    cont = continues;
    if (/^\s*[#!]/.test(line)) { out.push(["t-comment", line]); cont = false; return; }
    const m = /^(\s*)((?:[^\s=:\\]|\\.)+)(\s*[=:]\s*|\s+)?(.*)$/.exec(line);
    if (!m) { out.push(["", line]); return; }
    out.push(["", m[1]], ["t-key", m[2]]);
    if (m[3]) out.push(["t-punct", m[3]]);
    if (m[4]) out.push(["t-str", m[4]]);
  });
  return out;
}

export const TOKENIZERS = { json: tokensJson, yaml: tokensYaml, xml: tokensXml, properties: tokensProperties };

// Tokens to HTML, one string per line (the spans of that line; a token spanning lines is split).
export function lineHtmls(tokens) {
  const lines = [];
  let cur = "";
  for (const [cls, text] of tokens) {
    const parts = text.split("\n");
    parts.forEach((p, k) => {
      if (k > 0) { lines.push(cur); cur = ""; }
      if (p === "") return;
      cur += cls ? `<span class="${cls}">${escapeHtml(p)}</span>` : escapeHtml(p);
    });
  }
  lines.push(cur);
  return lines;
}

// One <div class="l" data-n="label"> per line (labels from label(i)); the line with index
// `bad` (0-based) gets class "bad".
export function lineDivs(htmls, label = (i) => i + 1, bad = -1) {
  return htmls.map((h, i) => `<div class="l${i === bad ? " bad" : ""}" data-n="${label(i)}">${h}</div>`);
}

// Plain text as lines (no tokens), e.g. the text and hex modes.
export function plainTokens(text) { return [["", text]]; }
