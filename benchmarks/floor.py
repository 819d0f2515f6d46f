"""EKP's pages next to their same-work floors, in one run: how close to the floor the pages are.

A *floor* is the least a page's work can cost with this stack: a minimal Litestar app (1 uvicorn worker,
like EKP) doing what the page must do and nothing else, measured back to back with EKP:

  floor-login    GET /login: makes a CSRF token, sets its cookie and renders the login page's exact HTML
                 (captured from EKP at start-up) with Jinja2, the token filled in;
  floor-account  GET /account: reads the session id from its cookie, finds the session and then the user
                 in EKP's own SQLite database with one indexed SELECT each (on the event loop, one
                 read-only connection) and renders the account page's exact HTML with Jinja2 (name, e-mail
                 and CSRF token filled in).

Both floors send EKP's security headers too, so the responses are byte for byte the size of EKP's.
Targets, each measured with wrk (or `--tool asyncio`) and interleaved over `--repeats` runs:
  floor-login, login, floor-account, account  (and `hello`, the bare Litestar app, with --hello)

For every run it prints throughput, p50/p99 and the server's CPU per request (from /proc: the uvicorn
process's user+system time over the measured window); the summary has medians and the EKP/floor ratios.
The issue's targets: /account at least 70 % of its floor, /login at least 80 %, p99 under 50 ms at 32 clients.
The summary also gives floor CPU / EKP CPU per request, steadier than throughput when the machine is busy.

Run: .venv/bin/python benchmarks/floor.py [--tool wrk|asyncio] [--concurrency 32] [--duration 6] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from http_load import (  # benchmarks/ is not a package: found through sys.path above
    DEMO_EMAIL,
    HELLO_APP,
    HOST,
    PROJECT_ROOT,
    Result,
    Target,
    _stop,
    _uvicorn,
    _wait_ready,
    asyncio_load,
    free_port,
    logged_in_cookie,
    wrk_load,
)

FLOOR_APP = textwrap.dedent(
    '''
    """The same-work floors of EKP's /login and /account (written and started by benchmarks/floor.py)."""
    import json
    import os
    import secrets
    import sqlite3

    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from litestar import Litestar, Request, get
    from litestar.response import Response

    env = Environment(loader=FileSystemLoader(os.environ["FLOOR_TEMPLATES"]), autoescape=select_autoescape(["html"]))
    ACCOUNT = env.get_template("account.html")
    LOGIN = env.get_template("login.html")
    HEADERS = json.loads(os.environ["FLOOR_HEADERS"])
    db = sqlite3.connect(f"file:{os.environ['FLOOR_DB']}?mode=ro", uri=True, check_same_thread=False)


    @get("/login", sync_to_thread=False)
    def login() -> Response:
        token = secrets.token_hex(32)
        response = Response(LOGIN.render(csrf=token), media_type="text/html", headers=HEADERS)
        response.set_cookie("csrftoken", token, path="/", samesite="lax")
        return response


    @get("/account", sync_to_thread=False)
    def account(request: Request) -> Response:
        session_id = request.cookies.get("ekp_session")
        row = db.execute("SELECT value, expires_at FROM kv_store WHERE key = ?",
                         (f"ekp:session:{session_id}",)).fetchone()
        user = None
        if row is not None:
            uid = json.loads(row[0]).get("uid")
            user = db.execute("SELECT first_name, last_name, email FROM users WHERE id = ?", (uid,)).fetchone()
        if user is None:
            return Response("", status_code=303, headers={"location": "/login"})
        html = ACCOUNT.render(full_name=f"{user[0]} {user[1]}", email=user[2],
                              csrf=request.cookies.get("csrftoken", ""))
        return Response(html, media_type="text/html", headers=HEADERS)


    app = Litestar(route_handlers=[login, account])
    '''
)
CSRF_VALUE = re.compile(r'(name="_csrf_token"\s+value=")([^"]+)(")')
SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy",
                    "permissions-policy", "cross-origin-opener-policy")


def _as_template(html: str, replacements: dict[str, str]) -> str:
    """A captured page as a Jinja template: the CSRF token (and the given texts) become variables."""
    if any(marker in html for marker in ("{{", "{%", "{#")):
        raise SystemExit("the captured page contains Jinja syntax; cannot make a floor template of it")
    html = CSRF_VALUE.sub(r"\1{{ csrf }}\3", html)
    for text, variable in replacements.items():
        if text not in html:
            raise SystemExit(f"{text!r} not found in the captured page")
        html = html.replace(text, f"{{{{ {variable} }}}}")
    return html


@dataclass
class Measured:
    result: Result
    cpu_us: float  # server CPU per request over the measured window


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def measure(load, target: Target, pid: int, args: argparse.Namespace) -> Measured:  # type: ignore[no-untyped-def]
    if args.warmup > 0:  # warm-up apart, so the CPU figure covers only the measured window
        load(target, args.concurrency, args.warmup, 0)
    before = _cpu_seconds(pid)
    result = load(target, args.concurrency, args.duration, 0)
    spent = _cpu_seconds(pid) - before
    return Measured(result, spent / max(1, result.requests) * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent keep-alive clients (default 32)")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds measured per run (default 6)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load before each run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per target; medians are reported (default 3)")
    parser.add_argument("--tool", choices=["wrk", "asyncio"], default="wrk", help="load generator (default wrk)")
    parser.add_argument("--hello", action="store_true", help="also measure the bare Litestar hello app")
    args = parser.parse_args()
    if args.concurrency < 1 or args.duration <= 0 or args.repeats < 1:
        parser.error("concurrency and repeats must be at least 1, duration above 0")
    load = {"wrk": wrk_load, "asyncio": asyncio_load}[args.tool]

    with tempfile.TemporaryDirectory(prefix="ekp-floor-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("EKP_")}
        ekp_port, floor_port, hello_port = free_port(), free_port(), free_port()
        env.update(EKP_VAR_DIR=str(work / "var"), EKP_HOST=HOST, EKP_PORT=str(ekp_port),
                   EKP_BASE_URL=f"http://{HOST}:{ekp_port}", EKP_DEV_PAGES="false", PYTHONUNBUFFERED="1")
        log = work / "servers.log"
        loaded = subprocess.run([sys.executable, "-m", "web.cli", "demo", "load"], cwd=PROJECT_ROOT, env=env,
                                capture_output=True, text=True, timeout=300, check=False)
        if loaded.returncode != 0:
            raise SystemExit(f"ekp demo load failed:\n{loaded.stdout}\n{loaded.stderr}")

        processes = {}

        def start(name: str, app: str, port: int, app_env: dict[str, str], ready: str, *extra: str) -> str:
            process = _uvicorn(app, port, app_env, log, *extra)
            stack.callback(_stop, process)
            processes[name] = process
            base = f"http://{HOST}:{port}"
            _wait_ready(process, base + ready, log)
            return base

        ekp = start("ekp", "web.app:app_from_env", ekp_port, env, "/healthz", "--factory")
        cookie = logged_in_cookie(ekp)
        login_html = httpx.get(f"{ekp}/login", timeout=10)
        account_html = httpx.get(f"{ekp}/account", headers={"Cookie": cookie}, timeout=10)
        name = re.search(r"<dd>([^<]+)</dd>", account_html.text).group(1)  # type: ignore[union-attr]  # first fact: the name
        templates = work / "floor_templates"
        templates.mkdir()
        (templates / "login.html").write_text(_as_template(login_html.text, {}))
        (templates / "account.html").write_text(_as_template(account_html.text, {name: "full_name", DEMO_EMAIL: "email"}))
        headers = {h: login_html.headers[h] for h in SECURITY_HEADERS if h in login_html.headers}
        (work / "floor_app.py").write_text(FLOOR_APP)
        (work / "hello_app.py").write_text(HELLO_APP)
        import json

        floor_env = dict(env, PYTHONPATH=str(work), FLOOR_TEMPLATES=str(templates), FLOOR_HEADERS=json.dumps(headers),
                         FLOOR_DB=str(work / "var" / "ekp.db"))
        floor = start("floor", "floor_app:app", floor_port, floor_env, "/login", "--app-dir", str(work))
        pids = {"ekp": processes["ekp"].pid, "floor": processes["floor"].pid}
        targets = []
        if args.hello:
            start("hello", "hello_app:app", hello_port, dict(env, PYTHONPATH=str(work)), "/", "--app-dir", str(work))
            pids["hello"] = processes["hello"].pid
            targets.append(("hello", "hello", Target("hello", f"http://{HOST}:{hello_port}/", {}, b"Hello")))
        targets += [
            ("floor-login", "floor", Target("floor-login", f"{floor}/login", {}, b'name="_csrf_token"')),
            ("login", "ekp", Target("login", f"{ekp}/login", {}, b'name="_csrf_token"')),
            ("floor-account", "floor", Target("floor-account", f"{floor}/account", {"Cookie": cookie}, b"/account/password")),
            ("account", "ekp", Target("account", f"{ekp}/account", {"Cookie": cookie}, b"/account/password")),
        ]
        check = httpx.get(f"{floor}/account", headers={"Cookie": cookie}, timeout=10)
        if check.status_code != 200 or len(check.content) != len(account_html.content):
            print(f"note: floor account page {len(check.content)} bytes, EKP's {len(account_html.content)}", file=sys.stderr)

        results: dict[str, list[Measured]] = {name: [] for name, _, _ in targets}
        for run in range(1, args.repeats + 1):  # interleaved: background noise spreads over every target
            for name, server, target in targets:
                measured = measure(load, target, pids[server], args)
                results[name].append(measured)
                r = measured.result
                print(f"run {run} {name:<14} {r.rps:8.0f} req/s  p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:7.2f} ms  "
                      f"server CPU {measured.cpu_us:6.0f} us/request  errors {r.errors}", flush=True)

    print(f"\n{args.tool}, {args.concurrency} clients, 1 worker each, medians of {args.repeats} runs "
          f"(machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})\n")
    header = f"{'target':<14} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11} {'errors':>7}"
    print(header)
    print("-" * len(header))
    rps: dict[str, float] = {}
    for name, runs in results.items():
        rps[name] = statistics.median(m.result.rps for m in runs)
        print(f"{name:<14} {rps[name]:>8.0f} {statistics.median(m.result.p50_ms for m in runs):>8.2f} "
              f"{statistics.median(m.result.p99_ms for m in runs):>8.2f} {statistics.median(m.cpu_us for m in runs):>11.0f} "
              f"{sum(m.result.errors for m in runs):>7}")
    print()
    for page, target in (("login", 0.80), ("account", 0.70)):
        ratio = rps[page] / rps[f"floor-{page}"]
        per_run = ", ".join(f"{a.result.rps / f.result.rps:.0%}" for a, f in zip(results[page], results[f"floor-{page}"]))
        # CPU per request is steadier than throughput on a busy machine: floor CPU / EKP CPU is the throughput
        # ratio the page would have if the server had its core to itself.
        cpu = statistics.median(m.cpu_us for m in results[f"floor-{page}"]) / statistics.median(m.cpu_us for m in results[page])
        print(f"{page}/floor-{page}: {ratio:.1%} of the floor's throughput (target {target:.0%}; per run {per_run}); "
              f"by server CPU per request {cpu:.1%}")


if __name__ == "__main__":
    main()
