// EKP service worker: caches the app shell and pages marked for offline use (e.g. ticket pages).
const CACHE = "ekp-v2";  // bump when vendor files (unversioned URLs) change
const SHELL = ["/offline", "/static/css/app.css", "/static/js/app.js", "/static/vendor/htmx/htmx.min.js", "/static/icons/icon.svg"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k)))).then(() => self.clients.claim())
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET" || new URL(request.url).origin !== location.origin) return;
  const url = new URL(request.url);
  if (url.pathname.startsWith("/static/")) {
    // Static files are versioned by ?v=hash: the exact URL from the cache, else the network (a new
    // version has a new URL); offline, any cached version of the file rather than nothing.
    event.respondWith(
      caches.match(request).then((hit) => hit || fetch(request).then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(request, copy));
        }
        return response;
      }).catch(() => caches.match(request, { ignoreSearch: true })))
    );
    return;
  }
  if (request.mode === "navigate") {
    // Pages: network first; offline, the last copy of an offline-capable page, else the offline page.
    event.respondWith(
      fetch(request).then((response) => {
        if (response.ok && response.headers.get("X-EKP-Offline") === "1") {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(request, copy));
        }
        return response;
      }).catch(() => caches.match(request).then((hit) => hit || caches.match("/offline")))
    );
  }
});

// Offline tickets and the inspector's scanner: a page asks the worker to keep itself and the
// scripts, styles and wasm it loaded (those fetched before the worker took control are not cached yet).
self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type !== "ekp-cache" || !Array.isArray(data.urls)) return;
  const keep = async (cache, raw) => {
    const url = new URL(raw, location.origin);
    if (url.origin !== location.origin) return;
    if (url.pathname.startsWith("/static/")) {
      if (await cache.match(url.href)) return;
      const response = await fetch(url.href);
      if (response.ok) await cache.put(url.href, response);
      return;
    }
    const response = await fetch(url.href, { credentials: "same-origin" });
    if (response.ok && response.headers.get("X-EKP-Offline") === "1") await cache.put(url.href, response);
  };
  event.waitUntil(
    caches.open(CACHE)
      .then((cache) => Promise.all(data.urls.slice(0, 50).map((u) => keep(cache, u).catch(() => {}))))
      .then(() => { if (event.source) event.source.postMessage({ type: "ekp-cached" }); })
  );
});
