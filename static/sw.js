// EKP service worker: caches the app shell, the static files pages load, and the pages marked for offline
// use (home, mobile tickets: `X-EKP-Offline: 1`), those per account (`X-EKP-Cache-Key`): the pages of one
// account are kept in their own cache, and a page of another account (or the sign-in page) drops them, so a
// phone never shows the previous person's ticket. Signing out deletes every cache (static/js/logout.js).
const CACHE = "ekp-v6";  // bump when vendor files or modules imported by a relative URL (unversioned URLs) change
const PAGES = "ekp-pages-";  // + the account's key
const ACCOUNT = "ekp-account";  // which account's pages are kept
const SHELL = ["/offline", "/static/css/app.css", "/static/js/app.js", "/static/js/phone.js", "/operator.css",
  "/static/vendor/htmx/htmx.min.js", "/static/icons/icon.svg"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  const keep = (k) => k === CACHE || k === ACCOUNT || k.startsWith(PAGES);
  event.waitUntil(
    caches.keys().then((keys) => Promise.all(keys.filter((k) => !keep(k)).map((k) => caches.delete(k)))).then(() => self.clients.claim())
  );
});

function pageKey(url) {
  const u = new URL(url, location.origin);
  return u.origin + u.pathname;  // "/home?source=pwa" and "/home" are one page
}

async function accountKey() {
  const hit = await (await caches.open(ACCOUNT)).match("/__ekp/account");
  return hit ? hit.text() : "";
}

async function forgetPages(exceptKey) {
  const keys = await caches.keys();
  await Promise.all(keys.filter((k) => k.startsWith(PAGES) && k !== PAGES + exceptKey).map((k) => caches.delete(k)));
  const account = await caches.open(ACCOUNT);
  if (exceptKey) await account.put("/__ekp/account", new Response(exceptKey));
  else await account.delete("/__ekp/account");
}

async function keepPage(url, response) {
  const key = response.headers.get("X-EKP-Cache-Key") || "";
  if (!response.ok || response.headers.get("X-EKP-Offline") !== "1" || !/^[0-9a-f]{8,64}$/.test(key)) return;
  if ((await accountKey()) !== key) await forgetPages(key);
  await (await caches.open(PAGES + key)).put(pageKey(url), response);
}

async function offlinePage(request) {
  const key = await accountKey();
  if (key) {
    const pages = await caches.open(PAGES + key);
    const path = new URL(request.url).pathname;
    let hit = await pages.match(pageKey(request.url));
    if (!hit && path === "/") hit = await pages.match(pageKey("/home"));
    if (!hit && path === "/tickets/current") {
      const tickets = (await pages.keys()).filter((r) => /\/tickets\/\d+\/show$/.test(new URL(r.url).pathname));
      if (tickets.length) hit = await pages.match(tickets[tickets.length - 1]);
    }
    if (hit) return hit;
  }
  return (await caches.match("/offline")) || new Response(NO_CONNECTION, {
    status: 503, headers: { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" } });
}

// Offline with nothing kept (e.g. just after signing out, which empties every cache): a plain page, no account.
const NO_CONNECTION = '<!doctype html><html lang="pl"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
  + "<title>Brak połączenia · EKP</title></head><body><main><h1>Brak połączenia z internetem</h1>"
  + "<p>Połącz się z internetem i zaloguj się, aby pokazać bilet.</p></main></body></html>";

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET" || new URL(request.url).origin !== location.origin) return;
  const url = new URL(request.url);
  if (url.pathname.startsWith("/static/") || url.pathname === "/operator.css") {
    // Static files (and the operator's colours) are versioned by ?v=hash: the exact URL from the cache, else the network (a new
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
    // Pages: network first; offline, this account's last copy of an offline page, else the offline page.
    event.respondWith(
      fetch(request).then((response) => {
        const copy = response.clone();
        if (response.ok && new URL(response.url || request.url).pathname === "/login") {
          event.waitUntil(forgetPages(""));  // nobody is signed in here: no one's pages stay
        } else {
          event.waitUntil(keepPage(response.url || request.url, copy));
        }
        return response;
      }).catch(() => offlinePage(request))
    );
  }
});

// Offline tickets, the start page and the inspector's scanner: a page asks the worker to keep itself, the
// pages it links to for offline use, and the scripts, styles and wasm it loaded (those fetched before the
// worker took control are not cached yet).
self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type !== "ekp-cache" || !Array.isArray(data.urls)) return;
  const keep = async (cache, raw) => {
    const url = new URL(raw, location.origin);
    if (url.origin !== location.origin) return;
    if (url.pathname.startsWith("/static/") || url.pathname === "/operator.css") {
      if (await cache.match(url.href)) return;
      const response = await fetch(url.href);
      if (response.ok) await cache.put(url.href, response);
      return;
    }
    const response = await fetch(url.href, { credentials: "same-origin" });
    if (!response.redirected) await keepPage(url.href, response);
  };
  event.waitUntil(
    caches.open(CACHE)
      .then((cache) => Promise.all(data.urls.slice(0, 50).map((u) => keep(cache, String(u)).catch(() => {}))))
      .then(() => { if (event.source) event.source.postMessage({ type: "ekp-cached" }); })
  );
});
