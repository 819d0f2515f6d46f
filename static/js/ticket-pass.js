// "Pokaż bilet do kontroli": binds the ticket to this phone (non-extractable WebCrypto key in IndexedDB) and
// shows a device-signed Aztec code, redrawn with a fresh timestamp every REFRESH_SECONDS, offline; keeps the
// screen awake while the code shows (Wake Lock API), with a bright high-contrast mode and full screen.
// Used by the ticket page (ticket-show.js) and by the start page's in-page ticket view (home.js), which shows
// the code without loading another page when this phone already holds the ticket.
import { decodeStatic, exportDevicePublicKey, generateDeviceKey, signPresentation } from "./ticket-record.js";
import { drawAztec, warmUpWriter } from "./aztec.js";
import { keepForOffline } from "./offline-cache.js";

export { warmUpWriter };

const DB_NAME = "ekp-tickets";
const DEVICE_KEY = "device";

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => {
      request.result.createObjectStore("keys");
      request.result.createObjectStore("records", { keyPath: "ticketId" });
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function idb(db, store, mode, action) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(store, mode);
    const request = action(tx.objectStore(store));
    tx.oncomplete = () => resolve(request.result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

function b64encode(bytes) {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
}

function b64decode(text) {
  return Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));
}

function sameBytes(a, b) {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

const two = (n) => String(n).padStart(2, "0");

/** The compressed form of a raw P-256 point (as the server stores it), in hex. */
function compressedHex(raw) {
  const bytes = raw.length === 65 ? [2 + (raw[64] & 1), ...raw.slice(1, 33)] : [...raw];
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join("");
}

export class TicketPass {
  constructor(root) {
    this.root = root;
    this.ticketId = Number(root.dataset.ticketId);
    this.period = Number(root.dataset.refreshSeconds) || 30;
    this.texts = document.getElementById("pass-texts").dataset;
    this.status = document.getElementById("pass-status");
    this.codeBox = document.getElementById("pass-code");
    this.bindBox = document.getElementById("pass-bind");
    this.canvas = document.getElementById("aztec");
    this.clock = document.getElementById("pass-clock");
    this.countdown = document.getElementById("pass-countdown");
    this.progress = document.getElementById("pass-progress");
    this.nextDrawAt = 0;
    this.drawing = false;
    this.timer = null;
    this.watching = false;
  }

  say(text) {
    this.status.textContent = text || "";
  }

  /** Open IndexedDB and read this phone's key and the ticket's saved record: true when the record is bound to
   * this key (the code can be drawn at once, also offline). */
  async load() {
    if (!window.crypto || !crypto.subtle || !window.indexedDB) return false;
    this.db = await openDb();
    this.keyPair = await idb(this.db, "keys", "readonly", (s) => s.get(DEVICE_KEY));
    const saved = await idb(this.db, "records", "readonly", (s) => s.get(this.ticketId));
    if (this.keyPair && saved && (await this.recordMatchesKey(saved.record))) {
      this.record = saved.record;
      return true;
    }
    return false;
  }

  async start() {
    if (!window.crypto || !crypto.subtle || !window.indexedDB) {
      this.say(this.texts.unsupported);
      return;
    }
    const bound = await this.load();
    document.getElementById("bind-button").addEventListener("click", () => this.bind());
    this.setUpTools();
    if (bound) {
      this.show();
      if (navigator.onLine) this.refreshRecord();
    } else {
      this.bindBox.hidden = false;
      if (!navigator.onLine) this.say(this.texts.offlineBind);
    }
    await this.markThisPhone();
    this.watchConnection();
  }

  watchConnection() {
    window.addEventListener("offline", () => this.say(this.record ? this.texts.offline : this.texts.offlineBind));
    window.addEventListener("online", () => this.say(""));
  }

  async recordMatchesKey(record) {
    try {
      const mine = await exportDevicePublicKey(this.keyPair.publicKey);
      return sameBytes(decodeStatic(record).devicePublicKey, mine);
    } catch {
      return false;
    }
  }

  async deviceKey() {
    if (!this.keyPair) {
      this.keyPair = await generateDeviceKey();
      await idb(this.db, "keys", "readwrite", (s) => s.put(this.keyPair, DEVICE_KEY));
    }
    return b64encode(await exportDevicePublicKey(this.keyPair.publicKey));
  }

  async post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": this.root.dataset.csrf },
      body: JSON.stringify(body),
    });
  }

  async saveRecord(answer) {
    this.record = b64decode(answer.record);
    await idb(this.db, "records", "readwrite", (s) => s.put({ ticketId: this.ticketId, record: this.record, deviceId: answer.device_id, savedAt: Date.now() }));
  }

  async bind() {
    const button = document.getElementById("bind-button");
    button.disabled = true;
    this.say(this.texts.binding);
    try {
      // No name sent: the server names the phone by its browser and system (the User-Agent); it can be renamed.
      const response = await this.post(this.root.dataset.bindUrl, { public_key: await this.deviceKey() });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) {
        this.say(answer.message || this.texts.error);
        return;
      }
      await this.saveRecord(answer);
      this.bindBox.hidden = true;
      this.say(this.texts.bound);
      this.show();
      await this.reloadDevices();
    } catch {
      this.say(navigator.onLine ? this.texts.error : this.texts.offlineBind);
    } finally {
      button.disabled = false;
    }
  }

  async refreshRecord() {
    try {
      const response = await this.post(this.root.dataset.refreshUrl, { public_key: await this.deviceKey() });
      if (response.status === 410) {
        await idb(this.db, "records", "readwrite", (s) => s.delete(this.ticketId));
        this.record = null;
        this.codeBox.hidden = true;
        this.hide();
        if (this.bindBox) this.bindBox.hidden = false;
        this.say(this.texts.unbound);
        return;
      }
      if (response.ok) await this.saveRecord(await response.json());
    } catch {
      // Offline or the server is unreachable: the saved record keeps working.
    }
  }

  show() {
    this.codeBox.hidden = false;
    if (this.root.classList.contains("pass-bright")) document.documentElement.classList.add("pass-bright-page");
    if (!this.timer) {
      // Signs and draws now; the rest waits until the code is on the screen.
      this.timer = setInterval(() => this.tick(), 250);
      this.tick().finally(() => {
        this.keepAwake();
        this.warmOfflineCache();
      });
    } else {
      this.keepAwake();
    }
    if (this.watching) return;
    this.watching = true;
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && this.timer) {
        this.nextDrawAt = 0;
        this.keepAwake();  // the browser releases the lock whenever the page is hidden
      }
    });
  }

  /** The start page's view closed: no more codes, the screen may sleep, full screen and bright mode left. */
  hide() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.nextDrawAt = 0;
    if (this.wakeLock && !this.wakeLock.released) this.wakeLock.release().catch(() => {});
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    document.documentElement.classList.remove("pass-bright-page");
  }

  /** Keep the screen on while the code shows (Wake Lock API where the browser has it). */
  async keepAwake() {
    if (!("wakeLock" in navigator) || document.visibilityState !== "visible") return;
    if (this.wakeLock && !this.wakeLock.released) return;
    try {
      this.wakeLock = await navigator.wakeLock.request("screen");
      document.getElementById("pass-awake").hidden = false;
      this.root.dataset.awake = "yes";
      this.wakeLock.addEventListener("release", () => { this.root.dataset.awake = "no"; });
    } catch {
      // Refused (battery saver, no user gesture yet): the screen follows the phone's own timeout.
    }
  }

  setUpTools() {
    const bright = document.getElementById("pass-bright");
    bright.addEventListener("click", () => {
      const on = !this.root.classList.contains("pass-bright");
      this.root.classList.toggle("pass-bright", on);
      document.documentElement.classList.toggle("pass-bright-page", on);
      bright.setAttribute("aria-pressed", on ? "true" : "false");
      bright.textContent = on ? this.texts.brightOff : this.texts.brightOn;
      this.keepAwake();
    });
    const full = document.getElementById("pass-fullscreen");
    if (full && this.root.requestFullscreen && document.fullscreenEnabled) {
      full.hidden = false;
      full.addEventListener("click", () => {
        if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
        else this.codeBox.requestFullscreen({ navigationUI: "hide" }).catch(() => {});
        this.keepAwake();
      });
    }
  }

  /** Mark this phone in the list of phones holding the ticket ("ten telefon"). */
  async markThisPhone() {
    if (!this.keyPair) return;
    try {
      const mine = compressedHex(await exportDevicePublicKey(this.keyPair.publicKey));
      document.querySelectorAll("#pass-devices [data-device-key]").forEach((li) => {
        const badge = li.querySelector(".this-phone");
        if (badge) badge.hidden = li.dataset.deviceKey !== mine;
      });
    } catch {
      // no key yet
    }
  }

  /** After binding: the list of phones and their count as the server has them now. */
  async reloadDevices() {
    try {
      const response = await fetch(this.root.dataset.devicesUrl, { credentials: "same-origin" });
      if (!response.ok) return;
      const box = document.getElementById("pass-devices");
      box.replaceChildren(document.createRange().createContextualFragment(await response.text()));
      box.querySelectorAll("form[data-confirm]").forEach((form) => {
        form.addEventListener("submit", (event) => { if (!window.confirm(form.dataset.confirm)) event.preventDefault(); });
      });
      await this.markThisPhone();
    } catch {
      // offline: the list updates on the next visit
    }
  }

  async tick() {
    const now = Date.now();
    const d = new Date(now);
    this.clock.textContent = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
    if (this.record && now >= this.nextDrawAt && !this.drawing) await this.draw(now);
    const left = Math.max(0, Math.ceil((this.nextDrawAt - now) / 1000));
    this.countdown.textContent = String(left);
    this.progress.style.width = `${Math.min(100, (100 * (this.nextDrawAt - now)) / (this.period * 1000))}%`;
  }

  async draw(now) {
    this.drawing = true;
    try {
      const ts = Math.floor(now / 1000);
      const bytes = await signPresentation(this.keyPair, this.record, ts);
      await drawAztec(this.canvas, bytes);
      this.canvas.dataset.timestamp = String(ts);
      this.nextDrawAt = (ts + this.period) * 1000;
    } catch (error) {
      this.say(this.texts.error);
      this.nextDrawAt = now + 5000;
      console.warn("drawing the ticket code failed", error);
    } finally {
      this.drawing = false;
    }
  }

  /** Ask the service worker to keep this page and every script, style and wasm it loaded. */
  warmOfflineCache() {
    keepForOffline([location.pathname, "/home"]);
  }
}

