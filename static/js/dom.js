// DOM helpers shared by every module.
export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

// Builds an element: attributes (class, text, on<event> handlers, booleans) and children.
// Text always goes through textContent, so hostile names stay text.
export function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
  return e;
}

export function toast(msg, isErr = false, ms = 4000) {
  const t = el("div", { class: isErr ? "err" : "", text: msg });
  $("#toast").append(t);
  setTimeout(() => t.remove(), ms);
}
