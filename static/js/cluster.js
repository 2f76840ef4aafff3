// The cluster and sessions pages, live: a server-sent event stream
// (/api/v1/cluster/stream) re-renders the members, the timeline, sessions and watches.
// The rows come display-ready from the server (one formatter: src/http/cluster_feed.rs).
import { $, el } from "./dom.js";
import { state } from "./state.js";
import { connectionLost, connectionBack } from "./connection.js";


function memberRow(m) {
  return el("tr", { class: m.leader ? "leader" : null, "data-testid": "member", "data-id": String(m.id), "data-role": m.role, "data-leader": String(m.leader), "data-state": m.state },
    el("td", { "data-label": "Id" }, String(m.id), m.this ? " " : null, m.this ? el("span", { class: "badge", text: "this node" }) : null),
    el("td", { "data-label": "Address" }, el("code", { text: m.address })),
    el("td", { "data-label": "Role", text: (m.leader ? "★ " : "") + m.role }),
    el("td", { "data-label": "Last zxid" }, el("code", { text: m.zxid })),
    el("td", { "data-label": "Connections", text: String(m.connections) }),
    el("td", { "data-label": "Latency", text: m.latency }),
    el("td", { "data-label": "Znodes", text: String(m.znodes) }),
    el("td", { "data-label": "Lag", text: m.lag }),
    el("td", { "data-label": "State" }, el("span", { class: "badge " + (m.state === "up" ? "ok" : "bad"), text: m.state })));
}

function renderCluster(v) {
  const tbody = $("#members");
  tbody.replaceChildren(...v.members.map(memberRow));
  const term = $('[data-testid="term"]');
  if (term) term.textContent = "term " + v.term;
  $("#timeline").replaceChildren(...v.events.map((e) =>
    el("li", { "data-kind": e.kind }, el("time", { text: e.at }), " " + e.text)));
}

const sessionHref = (id) => `${state.base}/ui/sessions#s-${id}`;

function renderSessions(rows) {
  const tbody = $("#session-rows");
  const onSessionsPage = tbody.dataset.link === "anchor";
  tbody.replaceChildren(...rows.map((s) => {
    const eph = s.ephemerals.length
      ? s.ephemerals.flatMap((e, i) => [i ? el("br") : null, el("a", { href: e.href }, el("code", { text: e.name }))])
      : [onSessionsPage ? null : el("span", { class: "muted", text: "none" })];
    return el("tr", { id: onSessionsPage ? "s-" + s.id : null, "data-session": s.id },
      el("td", { "data-label": "Session" }, onSessionsPage ? el("code", { text: s.id }) : el("a", { href: sessionHref(s.id) }, el("code", { text: s.id }))),
      el("td", { "data-label": "Timeout", text: s.timeout }),
      el("td", { "data-label": "Client" }, el("code", { text: s.client })),
      el("td", { "data-label": "Ephemerals" }, ...eph));
  }));
  $("#session-count").textContent = String(rows.length);
  $("#sessions-empty").hidden = rows.length > 0;
  tbody.closest("table").hidden = rows.length === 0 && !onSessionsPage;
}

function renderWatches(rows) {
  const tbody = $("#watch-rows");
  tbody.replaceChildren(...rows.map(([p, ids]) => el("tr", {},
    el("td", { "data-label": "Path" }, el("a", { href: p.href }, el("code", { text: p.name }))),
    el("td", { "data-label": "Sessions" }, ...ids.flatMap((id, i) => [i ? " " : null, el("a", { href: sessionHref(id) }, el("code", { text: id }))])))));
  $("#watch-count").textContent = String(rows.length);
  $("#watches-empty").hidden = rows.length > 0;
  tbody.closest("table").hidden = rows.length === 0;
}

// `what`: which tables the page has ("cluster", "sessions", "watches").
export function initLiveTables(what) {
  const q = new URLSearchParams();
  if (what.includes("sessions")) q.set("sessions", "true");
  if (what.includes("watches")) q.set("watches", "true");
  const badge = $("#live");
  const es = new EventSource(`${state.base}/api/v1/cluster/stream?${q}`);
  es.onopen = () => { connectionBack(); badge.textContent = "live"; badge.classList.add("on"); badge.dataset.ready = "true"; };
  es.onerror = () => { connectionLost(); badge.textContent = "offline"; badge.classList.remove("on"); badge.dataset.ready = "false"; };
  es.addEventListener("cluster", (e) => { if (what.includes("cluster")) renderCluster(JSON.parse(e.data)); });
  es.addEventListener("sessions", (e) => renderSessions(JSON.parse(e.data)));
  es.addEventListener("watches", (e) => renderWatches(JSON.parse(e.data)));
  // After a page's last hash link the row may only now exist.
  es.addEventListener("sessions", () => { if (location.hash && !document.querySelector(":target")) { const t = document.getElementById(location.hash.slice(1)); if (t) t.scrollIntoView(); } }, { once: true });
  return es;
}


