"""Where a page's CPU time goes: EKP's request path peeled layer by layer, in one process, no network.

`http_load.py` measures pages over loopback, where the ASGI server, the kernel and the load generator share
the two cores with the app. This script calls the ASGI apps directly (a minimal ASGI scope, the response
collected in memory) and reports the CPU time (`time.process_time`) each request costs, median of several
rounds, so that the layers can be compared:

  bare hello         a bare Litestar app, `GET /` -> "Hello, world!" (what http_load.py compares with)
  ekp plain          the same handler registered on EKP's app (CSRF, session and language middleware,
                     security headers, exception handlers), anonymous
  ekp plain+user     that handler behind EKP's login guard, logged in (session read, current user)
  login page         GET /login, anonymous (a full page: layout, form, CSRF token)
  account page       GET /account, logged in (the page of issue 2's target)
  template only      rendering accounts/account.html with the page's context, no request at all

The two extra handlers exist only inside this script (registered on the app object it builds); EKP itself
has no such routes. The database is a fresh SQLite file with the demo data (`ekp demo load`).

Run: .venv/bin/python benchmarks/page_costs.py [--requests 500] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CSRF_INPUT = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')


def _scope(path: str, cookie: str | None) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1"), (b"accept-language", b"pl")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {}, "extensions": {}}


async def _request(app: Any, path: str, cookie: str | None) -> tuple[int, int]:
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(_scope(path, cookie), receive, send)
    body = sum(len(m.get("body", b"")) for m in messages if m["type"] == "http.response.body")
    return messages[0]["status"], body


def _median_cpu_us(run_many: Any, requests: int, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.process_time()
        run_many(requests)
        samples.append((time.process_time() - started) / requests * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500, help="requests per round (default 500)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per case; the median is reported (default 7)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ekp-page-costs-"))
    os.environ.update(EKP_VAR_DIR=str(work / "var"), EKP_SCHEDULER="false", EKP_DEV_PAGES="false")
    subprocess.run([sys.executable, "-m", "web.cli", "demo", "load"], cwd=ROOT, env=os.environ, check=True,
                   capture_output=True)

    import logging

    from litestar import Litestar, get
    from litestar.testing import TestClient

    from web.platform import i18n
    from web.app import create_app
    from web.platform.http import requires_login

    logging.getLogger("httpx").setLevel(logging.WARNING)

    @get("/", sync_to_thread=False)
    def hello() -> str:
        return "Hello, world!"

    @get("/bench-plain", sync_to_thread=False)
    def plain() -> str:
        return "Hello, world!"

    @get("/bench-plain-user", guards=[requires_login])
    async def plain_user() -> str:
        return "Hello, world!"

    bare = Litestar(route_handlers=[hello])
    ekp = create_app()
    ekp.register(plain)
    ekp.register(plain_user)

    with TestClient(ekp, base_url="http://127.0.0.1") as client:  # runs start-up, logs in as the demo passenger
        token = CSRF_INPUT.search(client.get("/login").text).group(1)  # type: ignore[union-attr]
        client.post("/login", data={"_csrf_token": token, "email": "anna@demo.ekp", "password": "Demo1234"})
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
        account_html = client.get("/account").text
        if "Anna" not in account_html:
            raise SystemExit("login as the demo passenger failed")

    cases = [
        ("bare hello", bare, "/", None),
        ("ekp plain", ekp, "/bench-plain", None),
        ("ekp plain+user", ekp, "/bench-plain-user", cookie),
        ("login page", ekp, "/login", None),
        ("account page", ekp, "/account", cookie),
    ]
    results: dict[str, float] = {}
    for name, app, path, case_cookie in cases:
        status, size = asyncio.run(_request(app, path, case_cookie))
        if status != 200:
            raise SystemExit(f"{name}: {path} answered {status}")

        def run_many(n: int, app: Any = app, path: str = path, case_cookie: str | None = case_cookie) -> None:
            async def many() -> None:
                for _ in range(n):
                    await _request(app, path, case_cookie)
            asyncio.run(many())

        results[name] = _median_cpu_us(run_many, args.requests, args.rounds)
        print(f"{name:<16} {results[name]:8.1f} us CPU per request   ({size} bytes)")

    # The account page's template alone, with the context the handler gives it.
    from types import SimpleNamespace

    from web.platform.settings import load_settings
    from web.platform.templating import page_environment

    user = SimpleNamespace(full_name="Anna Nowak", email="anna@demo.ekp", role="passenger", birth_date=None)
    context = {"user": user, "masked_pesel": "*******1458", "errors": {}, "flashes": [], "request": None,
               "settings": load_settings(), "csrf_input": '<input type="hidden" name="_csrf_token" value="x" />',
               "csrf_token": lambda: "x"}
    i18n.current_language.set("pl")
    template = page_environment("pl").get_template("accounts/account.html")
    template.render(context)
    results["template only"] = _median_cpu_us(lambda n: [template.render(context) for _ in range(n)],
                                              args.requests, args.rounds)
    print(f"{'template only':<16} {results['template only']:8.1f} us CPU per render")

    hello_us = results["bare hello"]
    print(f"\nper request, relative to the bare app: plain x{results['ekp plain'] / hello_us:.1f}, "
          f"plain+user x{results['ekp plain+user'] / hello_us:.1f}, login x{results['login page'] / hello_us:.1f}, "
          f"account x{results['account page'] / hello_us:.1f}")


if __name__ == "__main__":
    main()
