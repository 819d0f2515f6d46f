// The start page: says when it shows the last saved state (offline), and asks the service worker to keep
// the ticket page it links to, so the installed app reaches the ticket from its start screen offline.
import { keepForOffline } from "./offline-cache.js";

const banner = document.getElementById("home-offline");

function showState() {
  if (banner) banner.hidden = navigator.onLine;
}

window.addEventListener("online", showState);
window.addEventListener("offline", showState);
showState();

if (navigator.onLine) {
  const paths = [location.pathname];
  document.querySelectorAll("a[data-offline-ticket]").forEach((a) => paths.push(new URL(a.href).pathname));
  keepForOffline(paths);
}

// "Pokaż bilet do kontroli" without loading another page (issue 15: a tap to a scannable code in < 300 ms).
// While the start page is idle, and only when this phone already holds the ticket (its key and record in
// IndexedDB), load the ticket scripts and the code writer's wasm; a tap then shows the ticket view in place of
// the start page at the ticket page's URL (history.pushState: back closes it; reloading that URL, or the
// manifest's shortcut, opens the ticket page itself). The code is signed with the current time at the tap,
// exactly as on the ticket page. Before it is ready, or for a phone that is not bound, the link opens the page.
const passRoot = document.getElementById("home-pass");
const homeRoot = document.getElementById("home");
const passLink = passRoot && document.querySelector(`a[data-ticket-id="${passRoot.dataset.ticketId}"]`);
let pass = null;

async function preparePass() {
  // No ticket database on this phone (never bound here): nothing to load. (Opening it would create it empty.)
  if (!window.indexedDB) return;
  if (indexedDB.databases && !(await indexedDB.databases()).some((db) => db.name === "ekp-tickets")) return;
  const { TicketPass, warmUpWriter } = await import("./ticket-pass.js");
  const candidate = new TicketPass(passRoot);
  if (!(await candidate.load())) return;
  await warmUpWriter();
  candidate.setUpTools();
  candidate.watchConnection();
  pass = candidate;
  passRoot.dataset.ready = "yes";
}

function openPass() {
  homeRoot.hidden = true;
  passRoot.hidden = false;
  window.scrollTo(0, 0);
  document.title = `${passRoot.querySelector("h1").textContent} · ${document.title.split(" · ").pop()}`;
  pass.show();
  if (navigator.onLine) setTimeout(() => pass.refreshRecord(), 1000);  // after the code is drawn
}

function closePass() {
  if (pass) pass.hide();
  passRoot.hidden = true;
  homeRoot.hidden = false;
  document.title = homeTitle;
}

const homeTitle = document.title;
if (passRoot && homeRoot && passLink) {
  passLink.addEventListener("click", (event) => {
    if (!pass || !pass.record || event.ctrlKey || event.metaKey || event.shiftKey || event.button) return;
    event.preventDefault();
    history.pushState({ ekpPass: pass.ticketId }, "", passLink.href);
    openPass();
  });
  window.addEventListener("popstate", (event) => {
    if (!(event.state && event.state.ekpPass)) closePass();
    else if (pass) openPass();
    else location.reload();  // the view's URL without the view ready: the ticket page itself
  });
  const idle = window.requestIdleCallback || ((run) => setTimeout(run, 200));
  idle(() => preparePass().catch((error) => console.warn("the ticket view is not ready", error)), { timeout: 2000 });
}
