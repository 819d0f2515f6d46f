// Asks the service worker to keep pages for the installed app offline: the given paths and every script,
// style and wasm this page has loaded from the app itself (the start page and the ticket page both use it).
export function keepForOffline(paths) {
  if (!("serviceWorker" in navigator)) return;
  const urls = [...paths];
  for (const entry of performance.getEntriesByType("resource")) {
    const url = new URL(entry.name);
    if (url.origin === location.origin && (url.pathname.startsWith("/static/") || url.pathname === "/operator.css")) urls.push(url.pathname + url.search);
  }
  navigator.serviceWorker.ready.then((registration) => {
    if (registration.active) registration.active.postMessage({ type: "ekp-cache", urls });
  }).catch(() => {});
}
