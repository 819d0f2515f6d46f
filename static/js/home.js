// The start page: says when it shows the last saved state (offline), and asks the service worker to keep
// the ticket page it links to, so the installed app reaches the ticket from its start screen offline.
const banner = document.getElementById("home-offline");

function showState() {
  if (banner) banner.hidden = navigator.onLine;
}

window.addEventListener("online", showState);
window.addEventListener("offline", showState);
showState();

if ("serviceWorker" in navigator && navigator.onLine) {
  const urls = [location.pathname];
  document.querySelectorAll("a[data-offline-ticket]").forEach((a) => urls.push(new URL(a.href).pathname));
  for (const entry of performance.getEntriesByType("resource")) {
    const url = new URL(entry.name);
    if (url.origin === location.origin && (url.pathname.startsWith("/static/") || url.pathname === "/operator.css")) urls.push(url.pathname + url.search);
  }
  navigator.serviceWorker.ready.then((registration) => {
    if (registration.active) registration.active.postMessage({ type: "ekp-cache", urls });
  }).catch(() => {});
}
