// EKP: after logout, forget what this browser kept for the account that just left: pages cached for offline
// use (tickets, the scanner), the ticket keys in IndexedDB and the inspector's trust list. The logout answer
// also sends `Clear-Site-Data`; this covers browsers that ignore it and plain-HTTP LAN installations.
"use strict";

(async () => {
  try {
    if (window.caches) {
      const keys = await caches.keys();
      await Promise.all(keys.map((key) => caches.delete(key)));
    }
  } catch (_) { /* nothing cached */ }
  try {
    if (window.indexedDB) indexedDB.deleteDatabase("ekp-tickets");
  } catch (_) { /* no database */ }
  try {
    localStorage.removeItem("ekp-trust-list");
    sessionStorage.clear();
  } catch (_) { /* storage off */ }
  document.documentElement.dataset.browserCleared = "1";
})();
