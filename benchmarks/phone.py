"""The passenger's phone: Largest Contentful Paint and bytes per page view on a throttled Chromium.

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

Run: .venv/bin/python benchmarks/phone.py [--runs 3] [--pages landing,login,home,5plus1,tickets,purse]
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
from pathlib import Path

import httpx
from playwright.sync_api import (
    Browser,
    BrowserContext,
    CDPSession,
    Page,
    sync_playwright,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("EKP_E2E_CHROMIUM", "/usr/bin/chromium")
HOST = "127.0.0.1"
PHONE = {"viewport": {"width": 360, "height": 800}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True,
         "locale": "pl-PL", "timezone_id": "Europe/Warsaw"}
CPU_SLOWDOWN = 4
SLOW_4G = {"offline": False, "latency": 150, "downloadThroughput": 1_600_000 / 8, "uploadThroughput": 750_000 / 8}
TARGETS = {"cold_lcp": 1500.0, "warm_lcp": 500.0, "warm_bytes": 30 * 1024}
PAGES = {  # name: (path, signed in)
    "landing": ("/", False),
    "login": ("/login", False),
    "home": ("/account", True),  # the signed-in home: /account on this branch
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextmanager
def ekp_server(work: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EKP_")}
    env.update(EKP_VAR_DIR=str(work / "var"), EKP_HOST=HOST, EKP_PORT=str(port), EKP_BASE_URL=f"http://{HOST}:{port}",
               EKP_DEV_PAGES="false", EKP_SCHEDULER="false", PYTHONUNBUFFERED="1")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pages", default=",".join(PAGES))
    args = parser.parse_args()
    names = [name for name in args.pages.split(",") if name in PAGES]
    with tempfile.TemporaryDirectory(prefix="ekp-phone-") as tmp, ekp_server(Path(tmp)) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        state = signed_in_state(browser, url)
        print(f"CPU {CPU_SLOWDOWN}x slower, {SLOW_4G['latency']} ms RTT, "
              f"{SLOW_4G['downloadThroughput'] * 8 / 1e6:.1f} Mbit/s down; median of {args.runs} runs\n")
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
