"""The passenger's phone: Largest Contentful Paint and bytes per page view on a throttled Chromium, and the
time from a tap on "Pokaż bilet do kontroli" to a scannable Aztec code (warm, and from a cold offline start).

Starts EKP with the demo data on 127.0.0.1 (`uvicorn --factory web.app:app_from_env`, one worker), signs
in as the demo passenger `anna@demo.ekp` once (the signed-in state is reused), then for each page opens a
fresh browser context (empty cache: **cold**), loads the page, and loads it again in the same tab
(**warm**: cached assets, the renderer already up). Service workers are blocked in these contexts: the bytes a worker fetches are not
seen by the page's DevTools session, and the HTTP cache alone must keep a warm view small. Every load runs with, through the DevTools
protocol:

* `Emulation.setCPUThrottlingRate` rate 4 (a mid-range phone),
* `Network.emulateNetworkConditions` "slow 4G": 150 ms round trip, ~1.6 Mbit/s down, 750 kbit/s up.

Reported per page (median of `--runs`): LCP cold and warm (ms, from the PerformanceObserver of the page),
bytes over the network cold and warm (encoded: compressed bodies plus headers, from the protocol's
`Network.loadingFinished`), against the targets: LCP < 1500 ms cold, < 500 ms warm; < 30 KB a warm view.

Tap to code (`--tap`, on by default; `--no-tap` skips it): a 5+1 ticket on Anna's mobile card (mKK MK4405140) is
written to the database, one browser context **with its service worker** signs in, opens the ticket from `/home`
and binds it to this "phone" (a device key in IndexedDB), and waits until the worker keeps `/home`, the ticket
page and the zxing writer's wasm. Then per run, CPU throttled 4x as above:

* **warm**: `/home` open online (slow 4G on the page), the ticket page visited before; tap the button;
* **cold offline**: every page closed, the context set offline, a new page opens the manifest's start_url
  (`/home?source=pwa`) from the worker's cache; tap the button.

Timed in the page (an init script, not subject to the page's CSP): from the tap's first event (`pointerdown`,
`touchstart` or `click`, its `event.timeStamp`) to the first frame after the ticket page set `data-timestamp`
on the `#aztec` canvas (i.e. after `drawAztec` painted it), both as `performance.timeOrigin + ...`. After each
timed run the canvas is checked non-blank (dark and light pixels); once per mode a screenshot of it is decoded
with zxing-cpp (`tests/support/barcodes.py`), outside the timed part. Targets: < 300 ms warm, < 1000 ms cold offline.
The worker's own fetches are not throttled by the page's DevTools session (online, the ticket page comes
network-first through the worker).

Run: .venv/bin/python benchmarks/phone.py [--runs 3] [--pages landing,login,home,account,5plus1,tickets,purse] [--no-tap]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
from playwright.sync_api import (
    Browser,
    BrowserContext,
    CDPSession,
    Page,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))  # tests.support.barcodes, web.platform.models (benchmarks/ is not a package)
CHROMIUM = os.environ.get("EKP_E2E_CHROMIUM", "/usr/bin/chromium")
HOST = "127.0.0.1"
PHONE = {"viewport": {"width": 360, "height": 800}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True,
         "locale": "pl-PL", "timezone_id": "Europe/Warsaw"}
CPU_SLOWDOWN = 4
SLOW_4G = {"offline": False, "latency": 150, "downloadThroughput": 1_600_000 / 8, "uploadThroughput": 750_000 / 8}
TARGETS = {"cold_lcp": 1500.0, "warm_lcp": 500.0, "warm_bytes": 30 * 1024, "tap_warm": 300.0, "tap_cold_offline": 1000.0}
PAGES = {  # name: (path, signed in)
    "landing": ("/", False),
    "login": ("/login", False),
    "home": ("/home", True),  # the signed-in start page (and the installed app's start_url)
    "account": ("/account", True),
    "5plus1": ("/5plus1", True),
    "tickets": ("/tickets", True),
    "purse": ("/purse", True),
}
LCP_JS = """
() => new Promise((resolve) => {
  let last = null;
  new PerformanceObserver((list) => { for (const e of list.getEntries()) last = e.startTime; })
    .observe({ type: "largest-contentful-paint", buffered: true });
  setTimeout(() => resolve(last), 300);
})
"""


# Injected into every document of the tap context before its own scripts (DevTools' addScriptToEvaluateOnNewDocument:
# not subject to the page's CSP). Marks the tap on the ticket link (kept in sessionStorage across the navigation it
# starts) and the first frame after the ticket page drew a code (`data-timestamp` set on #aztec after drawAztec).
TAP_INIT_JS = """
(() => {
  const TAP = "ekp-bench-tap";
  const at = (stamp) => performance.timeOrigin + stamp;
  const onTap = (event) => {
    const link = event.target instanceof Element && event.target.closest("a[href*='/tickets/']");
    if (!link || sessionStorage.getItem(TAP)) return;
    sessionStorage.setItem(TAP, String(at(event.timeStamp || performance.now())));
  };
  for (const type of ["pointerdown", "touchstart", "click"]) addEventListener(type, onTap, { capture: true });
  new MutationObserver((records, observer) => {
    if (!records.some((r) => r.target.id === "aztec")) return;
    observer.disconnect();
    const drawn = at(performance.now());
    const nav = performance.getEntriesByType("navigation")[0];
    requestAnimationFrame(() => setTimeout(() => {
      window.__ekpBenchCode = { tap: Number(sessionStorage.getItem(TAP) || 0), page: at(nav ? nav.responseEnd : 0),
                                ready: at(nav ? nav.domContentLoadedEventEnd : 0), drawn, painted: at(performance.now()) };
    }, 0));
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-timestamp"] });
})();
"""
READY_JS = """
() => { const view = document.getElementById("home-pass");
        return view && view.dataset.ready === "yes" ? performance.now() : (view ? 0 : -1); }
"""
CODE_NOT_BLANK_JS = """
() => {
  const canvas = document.getElementById("aztec");
  if (!canvas || !canvas.width || !canvas.height) return false;
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let dark = 0, light = 0;
  for (let i = 0; i < data.length; i += 4) { if (data[i] < 128) dark += 1; else light += 1; }
  return dark > 0 && light > 0;
}
"""
KEPT_OFFLINE_JS = """
(ticket) => Promise.all([caches.match("/home"), caches.match(location.origin + "/tickets/" + ticket + "/show"),
  caches.match("/static/vendor/zxing/writer/zxing_writer.wasm")]).then((hits) => hits.every(Boolean))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def server_env(work: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EKP_")}
    env.update(EKP_VAR_DIR=str(work / "var"), EKP_HOST=HOST, EKP_PORT=str(port), EKP_BASE_URL=f"http://{HOST}:{port}",
               EKP_DEV_PAGES="false", EKP_SCHEDULER="false", PYTHONUNBUFFERED="1")
    return env


@contextmanager
def ekp_server(work: Path) -> Iterator[str]:
    port = free_port()
    env = server_env(work, port)
    loaded = subprocess.run([sys.executable, "-m", "web.cli", "demo", "load"], cwd=PROJECT_ROOT, env=env, check=False,
                            capture_output=True, text=True, timeout=300)
    if loaded.returncode != 0:
        raise SystemExit(f"ekp demo load failed:\n{loaded.stdout}\n{loaded.stderr}")
    log = work / "server.log"
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "uvicorn", "web.app:app_from_env", "--factory", "--host", HOST,
                                    "--port", str(port), "--workers", "1", "--no-access-log", "--log-level", "warning"],
                                   cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"EKP exited:\n{log.read_text(errors='replace')}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"EKP did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def signed_in_state(browser: Browser, url: str) -> dict:  # type: ignore[type-arg]
    context = browser.new_context(base_url=url, **PHONE)
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("Adres e-mail").fill("anna@demo.ekp")
    page.get_by_label("Hasło", exact=True).fill("Demo1234")
    page.get_by_role("button", name="Zaloguj", exact=True).click()
    page.wait_for_url(lambda u: "/login" not in u)
    state = context.storage_state()
    context.close()
    return state  # type: ignore[return-value]


def _throttle(context: BrowserContext, page: Page, received: list[int]) -> CDPSession:
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", SLOW_4G)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": CPU_SLOWDOWN})
    cdp.on("Network.loadingFinished", lambda event: received.append(int(event.get("encodedDataLength", 0))))
    return cdp


def _view(page: Page, path: str, received: list[int]) -> tuple[float | None, int]:
    received.clear()
    page.goto(path, wait_until="load")
    page.wait_for_timeout(200)
    return page.evaluate(LCP_JS), sum(received)


def measure(browser: Browser, url: str, path: str, state: dict | None) -> dict[str, float]:  # type: ignore[type-arg]
    """Cold: a new context (empty cache) opens the page. Warm: the same tab opens it again, as a passenger
    going back to it from another page of the app (the renderer is up, the assets are in the cache)."""
    # Service workers blocked: what a page view costs over HTTP with the browser's cache (a worker's own fetches
    # are not seen by the page's DevTools session, so its bytes would go uncounted).
    context = browser.new_context(base_url=url, storage_state=state, service_workers="block", **PHONE)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        received: list[int] = []
        cdp = _throttle(context, page, received)
        cold_lcp, cold_bytes = _view(page, path, received)
        page.goto("about:blank")
        warm_lcp, warm_bytes = _view(page, path, received)
        cdp.detach()
    finally:
        context.close()
    return {"cold_lcp": cold_lcp or float("nan"), "warm_lcp": warm_lcp or float("nan"),
            "cold_bytes": cold_bytes, "warm_bytes": warm_bytes}


def add_mobile_ticket(work: Path) -> int:
    """A 5+1 ticket for Anna on her mobile card (mKK MK4405140 from the demo registry), valid from two days ago for
    four weeks: rows written directly, as the e2e tests do (the demo data has no ticket)."""
    from sqlmodel import Session, select

    from web.platform import clock
    from web.platform.db import make_engine
    from web.accounts.models import User
    from web.cards.models import Card
    from web.tickets.models import Ticket
    from web.platform.settings import load_settings

    engine = make_engine(load_settings(server_env(work, 8000)).database_url)
    try:
        with Session(engine) as session:
            anna = session.exec(select(User).where(User.email == "anna@demo.ekp")).one()
            card = session.exec(select(Card).where(Card.carrier_type == "mKK", Card.client_code == "MK4405140")).one()
            if card.account_id is None:
                card.account_id = anna.id
            today = clock.today()
            ticket = Ticket(user_id=anna.id, card_id=card.id, product="5P1", variant="normal", holder_name=card.holder_name,
                            valid_from=today - timedelta(days=2), valid_until=today + timedelta(days=26), price=8900)
            session.add(ticket)
            session.commit()
            assert ticket.id is not None
            return ticket.id
    finally:
        engine.dispose()


def _poll(page: Page, script: str, arg: object = None, timeout: float = 30.0, every: float = 0.05) -> object:
    """page.evaluate until truthy (wait_for_function would need 'unsafe-eval' under the page's CSP)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = page.evaluate(script, arg)
        except PlaywrightError as error:  # the tap's navigation replaced the document under the call
            if "context was destroyed" not in str(error) and "navigat" not in str(error):
                raise
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"still false after {timeout} s: {script}")
        time.sleep(every)


def _decodes(page: Page) -> bool:
    from tests.support import barcodes

    return barcodes.decode_aztec_image(page.locator("#aztec").screenshot()) is not None


def bind_ticket(context: BrowserContext, ticket_id: int) -> None:
    """The earlier online visit: /home, one tap to the ticket, bind it to this phone, and wait until the service
    worker keeps the start page, the ticket page and the writer's wasm (not timed, not throttled)."""
    page = context.new_page()
    page.goto("/home")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.get_by_role("link", name="Pokaż bilet do kontroli").first.tap()
    page.wait_for_url(f"**/tickets/{ticket_id}/show")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.get_by_role("button", name="Przypisz bilet do tego telefonu").tap()
    _poll(page, "() => Number(document.getElementById('aztec').dataset.timestamp || 0) > 0")
    if not _decodes(page):
        raise SystemExit("the bound ticket's code does not decode")
    page.get_by_role("link", name="Start").tap()
    page.wait_for_url("**/home")
    _poll(page, KEPT_OFFLINE_JS, ticket_id, every=0.2)
    page.close()


def _tap_to_code(page: Page, ticket_id: int, check_decode: bool) -> tuple[float, float, float]:
    """Tap the start page's ticket button; ms from the tap to the first frame showing the drawn code, and from the
    tap to the ticket page's last byte and to its DOMContentLoaded (where the time goes); when the code is drawn in
    place on the start page (no page load): NaN and the ms from the start page's navigation to its ticket view
    being ready (before the tap)."""
    page.wait_for_timeout(300)  # the start page settled, as a passenger's thumb would find it
    # ... and its in-page ticket view prepared (home.js, on idle: scripts, IndexedDB, the writer's wasm); a tap
    # before that opens the ticket page. ms from the start page's navigation to ready, for the report.
    ready_at = _poll(page, READY_JS, timeout=10.0, every=0.02)
    page.evaluate("sessionStorage.removeItem('ekp-bench-tap')")
    page.get_by_role("link", name="Pokaż bilet do kontroli").first.tap()
    page.wait_for_url(f"**/tickets/{ticket_id}/show", wait_until="commit")
    mark = _poll(page, "() => window.__ekpBenchCode || null", every=0.02)
    assert isinstance(mark, dict)
    if not mark["tap"]:
        raise SystemExit("the tap was not seen by the page")
    if not page.evaluate(CODE_NOT_BLANK_JS):
        raise SystemExit("the ticket's code is blank")
    if check_decode and not _decodes(page):
        raise SystemExit("the ticket's code did not decode")
    tap = float(mark["tap"])
    if float(mark["page"]) < tap:  # drawn in place on the start page: no page load after the tap
        return float(mark["painted"]) - tap, float("nan"), float(ready_at)  # type: ignore[arg-type]
    return float(mark["painted"]) - tap, float(mark["page"]) - tap, float(mark["ready"]) - tap


def measure_tap(context: BrowserContext, ticket_id: int, start_url: str, decode: bool) -> dict[str, float]:
    """One warm and one cold-offline tap to code in the bound context (see the module's docstring)."""
    received: list[int] = []
    page = context.new_page()
    cdp = _throttle(context, page, received)
    page.goto("/home", wait_until="load")
    warm, warm_page, warm_ready = _tap_to_code(page, ticket_id, decode)
    cdp.detach()
    page.close()

    context.set_offline(True)
    try:
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": CPU_SLOWDOWN})
        page.goto(start_url, wait_until="load")
        if not page.locator("#home-offline").is_visible():
            raise SystemExit("the offline start page did not come from the service worker's cache")
        cold, cold_page, cold_ready = _tap_to_code(page, ticket_id, decode)
        cdp.detach()
        page.close()
    finally:
        context.set_offline(False)
    return {"tap_warm": warm, "tap_warm_page": warm_page, "tap_warm_ready": warm_ready,
            "tap_cold_offline": cold, "tap_cold_offline_page": cold_page, "tap_cold_offline_ready": cold_ready}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pages", default=",".join(PAGES))
    parser.add_argument("--tap", action=argparse.BooleanOptionalAction, default=True,
                        help="measure the tap on 'Pokaż bilet do kontroli' to a scannable code (default: on)")
    args = parser.parse_args()
    names = [name for name in args.pages.split(",") if name in PAGES]
    with tempfile.TemporaryDirectory(prefix="ekp-phone-") as tmp, ekp_server(Path(tmp)) as url, sync_playwright() as pw:
        ticket_id = add_mobile_ticket(Path(tmp)) if args.tap else 0
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        state = signed_in_state(browser, url)
        print(f"load average {os.getloadavg()[0]:.1f}; CPU {CPU_SLOWDOWN}x slower, {SLOW_4G['latency']} ms RTT, "
              f"{SLOW_4G['downloadThroughput'] * 8 / 1e6:.1f} Mbit/s down; median of {args.runs} runs\n")
        if args.tap:
            context = browser.new_context(base_url=url, storage_state=state, service_workers="allow", **PHONE)  # type: ignore[arg-type]
            context.add_init_script(TAP_INIT_JS)
            start_url = httpx.get(f"{url}/manifest.webmanifest", timeout=10).json()["start_url"]
            bind_ticket(context, ticket_id)
            taps = [measure_tap(context, ticket_id, start_url, decode=(i == 0)) for i in range(args.runs)]
            context.close()
            print("| tap on 'Pokaż bilet do kontroli' to a scannable code | median (ms) | runs (ms) "
                  "| of which: page in / DOM ready (ms) | target | |")
            print("|---|---|---|---|---|---|")
            for key, label in (("tap_warm", "warm: /home open, online, ticket visited before"),
                               ("tap_cold_offline", f"cold offline start at {start_url}")):
                values = [t[key] for t in taps]
                median = statistics.median(values)
                page_in = statistics.median(t[f"{key}_page"] for t in taps)
                ready = statistics.median(t[f"{key}_ready"] for t in taps)
                where = (f"in place (view ready {ready:.0f} ms after /home opened)" if page_in != page_in
                         else f"{page_in:.0f} / {ready:.0f}")
                print(f"| {label} | {median:.0f} | {', '.join(f'{v:.0f}' for v in values)} | {where} "
                      f"| < {TARGETS[key]:.0f} | "
                      f"{'met' if median < TARGETS[key] else 'MISSED'} |", flush=True)
            print(f"(code decoded with zxing-cpp after the first run of each; load average now {os.getloadavg()[0]:.1f})\n")
        print(f"| page    | LCP cold (ms) | LCP warm (ms) | bytes cold | bytes warm | targets (<{TARGETS['cold_lcp']:.0f} / "
              f"<{TARGETS['warm_lcp']:.0f} ms, <{TARGETS['warm_bytes'] // 1024} KB) |")
        print("|---------|---------------|---------------|------------|------------|------|")
        for name in names:
            path, signed_in = PAGES[name]
            runs = [measure(browser, url, path, state if signed_in else None) for _ in range(args.runs)]
            m = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            ok = (m["cold_lcp"] < TARGETS["cold_lcp"] and m["warm_lcp"] < TARGETS["warm_lcp"]
                  and m["warm_bytes"] < TARGETS["warm_bytes"])
            print(f"| {name:<7} | {m['cold_lcp']:>13.0f} | {m['warm_lcp']:>13.0f} | {m['cold_bytes'] / 1024:>7.1f} KB "
                  f"| {m['warm_bytes'] / 1024:>7.1f} KB | {'met' if ok else 'MISSED'} |", flush=True)
        browser.close()


if __name__ == "__main__":
    main()
