// The connection-lost banner: shown while this member does not answer (the live stream
// is down or a request got no answer), with links to the same page on the other members.
import { $, $$ } from "./dom.js";

export function connectionLost() {
  const banner = $("#conn-lost");
  if (!banner || !banner.hidden) return;
  for (const a of $$(".member-link", banner)) {
    a.href = `${location.protocol}//${a.dataset.host}${location.port ? ":" + location.port : ""}${location.pathname}${location.search}`;
  }
  banner.hidden = false;
}

export function connectionBack() {
  const banner = $("#conn-lost");
  if (banner) banner.hidden = true;
}
