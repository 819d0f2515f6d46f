// The inspector's scanner: camera -> zxing-wasm reader -> offline verification with the cached
// trust list (issuer keys, revoked tickets with the reason, phones unbound from a ticket) -> a
// full-screen verdict. Verdicts are logged to the server when online (queued in localStorage while
// offline).
import { DEFAULT_FRESHNESS_SECONDS, loadTrustList, verify } from "./ticket-record.js";
import { prepareZXingModule, readBarcodes } from "/static/vendor/zxing/es/reader/index.js";

const READER_WASM = "/static/vendor/zxing/reader/zxing_reader.wasm";
const TRUST_KEY = "ekp-trust-list";
const LOG_KEY = "ekp-scan-log";
const SCAN_EVERY_MS = 200;
const MAX_FRAME = 1024;
const OLD_LIST_SECONDS = 24 * 3600;

prepareZXingModule({
  overrides: { locateFile: (path, prefix) => (path.endsWith(".wasm") ? READER_WASM : prefix + path) },
  fireImmediately: false,
});

const root = document.getElementById("scanner");
const texts = JSON.parse(root.dataset.texts);
const el = (id) => document.getElementById(id);
const video = el("scan-video");
const frame = el("scan-frame");
const status = el("scan-status");
const verdictBox = el("verdict");
let trust = null;
let stream = null;
let timer = null;
let paused = false;

function readJson(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(key)) ?? fallback;
  } catch {
    return fallback;
  }
}

function localDate(seconds) {
  return new Date(seconds * 1000).toLocaleDateString("pl-PL", { timeZone: "Europe/Warsaw", day: "2-digit", month: "2-digit", year: "numeric" });
}

function localTime(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString("pl-PL", { timeZone: "Europe/Warsaw" });
}

function showTrustState() {
  const box = el("trust-state");
  if (!trust) {
    box.textContent = texts.no_trust;
    return;
  }
  const when = new Date(trust.generatedAt * 1000).toLocaleString("pl-PL", { timeZone: "Europe/Warsaw" });
  box.textContent = texts.trust_age.replace("{when}", when);
  if (Date.now() / 1000 - trust.generatedAt > OLD_LIST_SECONDS) box.textContent += " " + texts.trust_old;
}

async function useTrustDocument(document) {
  trust = await loadTrustList(document);
  showTrustState();
}

async function refreshTrustList() {
  const cached = readJson(TRUST_KEY, null);
  if (cached) {
    try {
      await useTrustDocument(cached);
    } catch {
      localStorage.removeItem(TRUST_KEY);
    }
  }
  if (!navigator.onLine) {
    showTrustState();
    return;
  }
  try {
    const response = await fetch(root.dataset.trustUrl, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) throw new Error(`trust list: HTTP ${response.status}`);
    const document = await response.json();
    await useTrustDocument(document);
    localStorage.setItem(TRUST_KEY, JSON.stringify(document));
  } catch {
    showTrustState();
  }
}

async function flushLog() {
  const queue = readJson(LOG_KEY, []);
  if (!queue.length || !navigator.onLine) return;
  try {
    const response = await fetch(root.dataset.logUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ scans: queue.slice(0, 200) }),
    });
    if (response.ok) localStorage.setItem(LOG_KEY, JSON.stringify(readJson(LOG_KEY, []).slice(queue.slice(0, 200).length)));
  } catch {
    // Still offline: try again later.
  }
}

function logVerdict(result) {
  const queue = readJson(LOG_KEY, []);
  queue.push({ code: result.code, ticket_id: result.ticket ? result.ticket.ticketId : null, at: Math.floor(Date.now() / 1000) });
  localStorage.setItem(LOG_KEY, JSON.stringify(queue.slice(-1000)));
  flushLog();
}

function addFact(list, label, value) {
  const dt = document.createElement("dt");
  dt.textContent = label;
  const dd = document.createElement("dd");
  dd.textContent = value;
  list.append(dt, dd);
}

function showVerdict(result) {
  paused = true;
  verdictBox.className = `verdict ${result.valid ? "verdict-valid" : "verdict-invalid"}`;
  verdictBox.dataset.code = result.code;
  el("verdict-title").textContent = result.valid ? texts.valid : texts.invalid;
  let reason = texts.reasons[result.code] || result.code;
  if (result.revocation) reason += `: ${texts.revocations[result.revocation] || result.revocation}`;
  el("verdict-reason").textContent = reason;
  verdictBox.dataset.revocation = result.revocation || "";
  const list = el("verdict-details");
  list.replaceChildren();
  const t = result.ticket;
  if (t) {
    const labels = texts.labels;
    addFact(list, labels.initials, t.holderInitials || "—");
    addFact(list, labels.birth_year, t.birthYear ? String(t.birthYear) : "—");
    addFact(list, labels.product, texts.products[t.productCode] || t.productCode);
    addFact(list, labels.validity, `${localDate(t.validFrom)} – ${localDate(t.validUntil - 60)}`);
    addFact(list, labels.ticket, String(t.ticketId));
    if (result.presentedAt) addFact(list, labels.presented, localTime(result.presentedAt));
  }
  verdictBox.hidden = false;
  el("verdict-next").focus();
  if (navigator.vibrate) navigator.vibrate(result.valid ? 80 : [80, 60, 80, 60, 80]);
}

async function check(bytes) {
  if (!trust) {
    status.textContent = texts.no_trust;
    return;
  }
  const result = await verify(bytes, trust.issuerKeys, trust.revoked, Date.now() / 1000,
    trust.freshnessSeconds || DEFAULT_FRESHNESS_SECONDS, trust.revokedDevices);
  showVerdict(result);
  logVerdict(result);
}

async function scanFrame() {
  if (paused || !stream || video.readyState < 2 || !video.videoWidth) return;
  const ratio = Math.min(1, MAX_FRAME / Math.max(video.videoWidth, video.videoHeight));
  frame.width = Math.round(video.videoWidth * ratio);
  frame.height = Math.round(video.videoHeight * ratio);
  const ctx = frame.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(video, 0, 0, frame.width, frame.height);
  const results = await readBarcodes(ctx.getImageData(0, 0, frame.width, frame.height), {
    formats: ["Aztec"], tryHarder: true, maxNumberOfSymbols: 1,
  });
  const hit = results.find((r) => r.isValid && r.bytes && r.bytes.length);
  if (hit && !paused) await check(hit.bytes);
}

function loop() {
  timer = setTimeout(async () => {
    try {
      await scanFrame();
    } catch (error) {
      console.warn("scan failed", error);
    }
    if (stream) loop();
  }, SCAN_EVERY_MS);
}

async function startCamera() {
  if (stream) return;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment", width: { ideal: 1280 } }, audio: false });
  } catch {
    status.textContent = texts.camera_error;
    return;
  }
  video.srcObject = stream;
  video.hidden = false;
  await video.play().catch(() => {});
  el("scan-start").hidden = true;
  el("scan-stop").hidden = false;
  status.textContent = texts.scanning;
  paused = false;
  loop();
}

function stopCamera() {
  clearTimeout(timer);
  if (stream) stream.getTracks().forEach((track) => track.stop());
  stream = null;
  video.hidden = true;
  el("scan-start").hidden = false;
  el("scan-stop").hidden = true;
  status.textContent = texts.stopped;
}

function warmOfflineCache() {
  if (!("serviceWorker" in navigator)) return;
  const urls = [location.pathname];
  for (const entry of performance.getEntriesByType("resource")) {
    const url = new URL(entry.name);
    if (url.origin === location.origin && (url.pathname.startsWith("/static/") || url.pathname === "/operator.css")) urls.push(url.pathname + url.search);
  }
  urls.push(READER_WASM);
  navigator.serviceWorker.ready.then((registration) => {
    if (registration.active) registration.active.postMessage({ type: "ekp-cache", urls });
  }).catch(() => {});
}

el("scan-start").addEventListener("click", startCamera);
el("scan-stop").addEventListener("click", stopCamera);
el("verdict-next").addEventListener("click", () => {
  verdictBox.hidden = true;
  paused = false;
  el("scan-start").focus();
});
window.addEventListener("online", () => { refreshTrustList(); flushLog(); });
refreshTrustList().then(flushLog);
// Load the reader's wasm now, while online, so scanning works without network later.
readBarcodes(new ImageData(8, 8), { formats: ["Aztec"] }).catch(() => {}).finally(warmOfflineCache);
