"""HTTP throughput and latency of EKP pages next to a bare Litestar "hello" app, over loopback.

Starts, each with uvicorn in its own subprocess (1 worker, --no-access-log, --log-level warning):
  (a) EKP on a fresh SQLite database in a temporary directory, with the demo data loaded, and
  (b) a bare Litestar app answering "Hello, world!",
logs in as the demo passenger by posting the login form with its CSRF token, then drives

  hello    GET /          on the bare app
  login    GET /login     on EKP (anonymous)
  account  GET /account   on EKP (logged in: session cookie)

with N concurrent keep-alive clients for a fixed time, each measurement repeated (default 3 times,
interleaved) and reported as medians, plus the account/hello throughput ratio.

Load generators (--tool): `httpx` (default) is asyncio + httpx in this process, each simulated
client with its own AsyncClient and keep-alive connection. Being Python it can be the bottleneck
against a fast server, so the table shows how busy it was (client CPU). `asyncio` is a minimal
keep-alive HTTP/1.1 client on asyncio streams, about ten times lighter; `wrk` uses wrk(1) when it
is installed (`apt-get install wrk`). Only 127.0.0.1 is ever targeted.

Run: .venv/bin/python benchmarks/http_load.py [--concurrency 32] [--duration 10] [--repeats 3] [--tool httpx|asyncio|wrk]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
DEMO_EMAIL = "anna@demo.ekp"
DEMO_PASSWORD = "Demo1234"
HELLO_APP = textwrap.dedent(
    '''
    from litestar import Litestar, get


    @get("/", sync_to_thread=False)
    def hello() -> str:
        return "Hello, world!"


    app = Litestar(route_handlers=[hello])
    '''
)
CSRF_INPUT = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    headers: dict[str, str]
    expect: bytes  # a piece of the body that proves the right page came back


@dataclass(frozen=True)
class Result:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    client_cpu: float | None  # share of one core the load generator used; None for wrk

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


# --- servers -------------------------------------------------------------------------------------


def _uvicorn(app: str, port: int, env: dict[str, str], log: Path, *extra: str, workers: int = 1) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", app, *extra, "--host", HOST, "--port", str(port), "--workers", str(workers),
               "--no-access-log", "--log-level", "warning"]
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server for {url} exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server for {url} did not become ready in {timeout} s:\n{log.read_text(errors='replace')}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@contextmanager
def servers(work: Path, workers: int = 1, database_url: str | None = None,
            redis_url: str | None = None) -> Iterator[tuple[str, str]]:
    """Start EKP (with demo data; `workers` uvicorn processes, on `database_url` and `redis_url` when given, else the
    embedded SQLite) and the bare hello app; yield their base URLs."""
    ekp_port, hello_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EKP_")}
    env.update(EKP_VAR_DIR=str(work / "var"), EKP_HOST=HOST, EKP_PORT=str(ekp_port),
               EKP_BASE_URL=f"http://{HOST}:{ekp_port}", EKP_DEV_PAGES="false", PYTHONUNBUFFERED="1")
    if database_url:
        env["EKP_DATABASE_URL"] = database_url
    if redis_url:
        env["EKP_REDIS_URL"] = redis_url
    log = work / "servers.log"
    loaded = subprocess.run([sys.executable, "-m", "web.cli", "demo", "load"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    if loaded.returncode != 0:
        raise SystemExit(f"ekp demo load failed:\n{loaded.stdout}\n{loaded.stderr}")
    (work / "hello_app.py").write_text(HELLO_APP)
    hello_env = dict(env, PYTHONPATH=str(work))
    started: list[subprocess.Popen[bytes]] = []
    try:
        started.append(_uvicorn("web.app:app_from_env", ekp_port, env, log, "--factory", workers=workers))
        started.append(_uvicorn("hello_app:app", hello_port, hello_env, log, "--app-dir", str(work)))
        ekp, hello = f"http://{HOST}:{ekp_port}", f"http://{HOST}:{hello_port}"
        _wait_ready(started[0], f"{ekp}/healthz", log)
        _wait_ready(started[1], f"{hello}/", log)
        yield ekp, hello
    finally:
        for process in started:
            _stop(process)
        problems = log.read_text(errors="replace").strip() if log.exists() else ""
        if problems:
            print(f"\nserver output (warnings and errors):\n{problems[-3000:]}", file=sys.stderr)


def logged_in_cookie(ekp: str) -> str:
    """Post the login form with its CSRF token as the demo passenger; return the Cookie header."""
    with httpx.Client(base_url=ekp, timeout=10) as client:
        form = client.get("/login")
        form.raise_for_status()
        match = CSRF_INPUT.search(form.text)
        if not match:
            raise SystemExit("no CSRF token in the login form")
        answer = client.post("/login", data={"_csrf_token": match.group(1), "email": DEMO_EMAIL,
                                             "password": DEMO_PASSWORD, "next": "/account"})
        if answer.status_code not in (302, 303) or not answer.headers.get("location", "").endswith("/account"):
            raise SystemExit(f"login as {DEMO_EMAIL} failed: {answer.status_code} {answer.text[:300]}")
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
        check = httpx.get(f"{ekp}/account", headers={"Cookie": cookie}, timeout=10)
        if check.status_code != 200 or b"Anna" not in check.content:
            raise SystemExit(f"the session cookie does not open /account: {check.status_code}")
        return cookie


# --- load generators -------------------------------------------------------------------------------


def _run_loop(coroutine):  # type: ignore[no-untyped-def]
    """Run on uvloop when it is there (uvicorn[standard] brings it): a lighter client, fairer numbers."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


async def _drive(client_loop, concurrency: int, seconds: float, warmup: float) -> Result:  # type: ignore[no-untyped-def]
    """Run `concurrency` copies of `client_loop(measure_from, stop_at, record)` and summarise them."""
    latencies: list[float] = []
    errors = 0

    def record(sent: float, done: float, ok: bool) -> None:
        nonlocal errors
        latencies.append(done - sent)
        errors += not ok

    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + seconds
    cpu_before = time.process_time()
    await asyncio.gather(*(client_loop(measure_from, stop_at, record) for _ in range(concurrency)))
    cpu = time.process_time() - cpu_before
    elapsed = time.perf_counter() - start
    latencies.sort()
    return Result(requests=len(latencies), errors=errors, seconds=seconds, p50_ms=percentile(latencies, 0.50) * 1000,
                  p99_ms=percentile(latencies, 0.99) * 1000, client_cpu=cpu / elapsed)


def httpx_load(target: Target, concurrency: int, seconds: float, warmup: float) -> Result:
    """asyncio + httpx. Each simulated client has its own AsyncClient with one keep-alive connection:
    one shared pool of 32 connections is several times slower in httpcore and would measure itself."""

    async def client_loop(measure_from: float, stop_at: float, record) -> None:  # type: ignore[no-untyped-def]
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(limits=limits, timeout=30, headers=target.headers) as client:
            while (sent := time.perf_counter()) < stop_at:
                try:
                    response = await client.get(target.url)
                    ok = response.status_code == 200 and target.expect in response.content
                except httpx.HTTPError:
                    ok = False
                if sent >= measure_from:
                    record(sent, time.perf_counter(), ok)

    return _run_loop(_drive(client_loop, concurrency, seconds, warmup))


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 response: (status, body, server keeps the connection open)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    keep_alive = headers.get("connection", "").lower() != "close"
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append((await reader.readexactly(size + 2))[:-2])
        await reader.readuntil(b"\r\n")  # no trailers are sent here
        body = b"".join(parts)
    else:
        body, keep_alive = await reader.read(), False
    return status, body, keep_alive


def asyncio_load(target: Target, concurrency: int, seconds: float, warmup: float) -> Result:
    """A minimal keep-alive HTTP/1.1 client on asyncio streams: far lighter than httpx, no extra tool."""
    parts = httpx.URL(target.url)
    host, port, path = parts.host, parts.port or 80, parts.raw_path.decode()
    if host != HOST:
        raise SystemExit(f"refusing to load anything but {HOST}")
    extra = "".join(f"{name}: {value}\r\n" for name, value in target.headers.items())
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: ekp-http-load\r\n{extra}\r\n".encode("latin-1")

    async def client_loop(measure_from: float, stop_at: float, record) -> None:  # type: ignore[no-untyped-def]
        connection = None
        while (sent := time.perf_counter()) < stop_at:
            try:
                if connection is None:
                    connection = await asyncio.open_connection(host, port)
                reader, writer = connection
                writer.write(request)
                status, body, keep_alive = await _read_response(reader)
                ok = status == 200 and target.expect in body
                if not keep_alive:
                    writer.close()
                    connection = None
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                ok, connection = False, None
            if sent >= measure_from:
                record(sent, time.perf_counter(), ok)
        if connection is not None:
            connection[1].close()

    return _run_loop(_drive(client_loop, concurrency, seconds, warmup))


_WRK_LATENCY = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_WRK_REQUESTS = re.compile(r"(\d+) requests in ([\d.]+)(ms|s|m)")
_WRK_ERRORS = re.compile(r"Non-2xx or 3xx responses: (\d+)|Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _wrk_seconds(seconds: float) -> str:
    return f"{max(1, round(seconds))}s"  # wrk takes whole seconds


def wrk_load(target: Target, concurrency: int, seconds: float, warmup: float) -> Result:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (apt-get install wrk), use --tool httpx")
    header_args = [arg for name, value in target.headers.items() for arg in ("-H", f"{name}: {value}")]
    threads = str(min(concurrency, max(1, (os.cpu_count() or 1))))
    if warmup > 0:
        subprocess.run([wrk, "-t", threads, "-c", str(concurrency), "-d", _wrk_seconds(warmup), *header_args, target.url],
                       capture_output=True, check=True)
    out = subprocess.run([wrk, "-t", threads, "-c", str(concurrency), "-d", _wrk_seconds(seconds), "--latency",
                          *header_args, target.url], capture_output=True, text=True, check=True).stdout
    latency = {int(p): float(v) * _UNIT[u] for p, v, u in _WRK_LATENCY.findall(out)}
    count, took, unit = _WRK_REQUESTS.search(out).groups()  # type: ignore[union-attr]
    errors = sum(int(n) for groups in _WRK_ERRORS.findall(out) for n in groups if n)
    return Result(requests=int(count), errors=errors, seconds=float(took) * _UNIT[unit] / 1000,
                  p50_ms=latency.get(50, float("nan")), p99_ms=latency.get(99, float("nan")), client_cpu=None)


# --- report ----------------------------------------------------------------------------------------


def report(results: dict[str, list[Result]], concurrency: int, tool: str) -> None:
    print(f"\n{tool}, {concurrency} concurrent clients, median of {len(next(iter(results.values())))} runs "
          f"(machine: {os.cpu_count()} CPUs)\n")
    header = f"{'target':<9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'client CPU':>11}   runs (req/s)"
    print(header)
    print("-" * len(header))
    medians: dict[str, float] = {}
    for name, runs in results.items():
        medians[name] = statistics.median(r.rps for r in runs)
        cpu = "-" if runs[0].client_cpu is None else f"{statistics.median(r.client_cpu or 0 for r in runs):.0%}"
        print(f"{name:<9} {medians[name]:>9.0f} {statistics.median(r.p50_ms for r in runs):>8.2f} "
              f"{statistics.median(r.p99_ms for r in runs):>8.2f} {sum(r.errors for r in runs):>7} {cpu:>11}   "
              + ", ".join(f"{r.rps:.0f}" for r in runs))
    if medians.get("hello"):
        for name in ("login", "account"):
            if name in medians:
                print(f"\n{name}/hello throughput ratio: {medians[name] / medians['hello']:.1%}", end="")
        print()
    if tool != "wrk" and any((r.client_cpu or 0) > 0.85 for runs in results.values() for r in runs):
        print("\nnote: the httpx client used most of a core in some runs, so those numbers show the client's limit, "
              "not the server's; compare with --tool asyncio or --tool wrk.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent keep-alive clients (default 32)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per run (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load before each run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per target; medians are reported (default 3)")
    parser.add_argument("--tool", choices=["httpx", "asyncio", "wrk"], default="httpx",
                        help="load generator: httpx (default), asyncio (raw streams, lighter), wrk (if installed)")
    parser.add_argument("--targets", default="hello,login,account", help="comma-separated subset to run")
    parser.add_argument("--workers", type=int, default=1, help="EKP's uvicorn worker processes (default 1)")
    parser.add_argument("--database-url", help="EKP_DATABASE_URL for EKP (default: the embedded SQLite)")
    parser.add_argument("--redis-url", help="EKP_REDIS_URL for EKP's sessions and rate limits (default: the database)")
    args = parser.parse_args()
    if args.concurrency < 1 or args.duration <= 0 or args.repeats < 1:
        parser.error("concurrency and repeats must be at least 1, duration above 0")
    load = {"httpx": httpx_load, "asyncio": asyncio_load, "wrk": wrk_load}[args.tool]

    with tempfile.TemporaryDirectory(prefix="ekp-bench-") as tmp, servers(Path(tmp), args.workers, args.database_url,
                                                                          args.redis_url) as (ekp, hello):
        cookie = logged_in_cookie(ekp)
        targets = [
            Target("hello", f"{hello}/", {}, b"Hello, world!"),
            Target("login", f"{ekp}/login", {}, b'name="_csrf_token"'),
            Target("account", f"{ekp}/account", {"Cookie": cookie}, b"/account/password"),
        ]
        wanted = {name.strip() for name in args.targets.split(",")}
        targets = [t for t in targets if t.name in wanted]
        results: dict[str, list[Result]] = {t.name: [] for t in targets}
        for run in range(1, args.repeats + 1):  # interleaved, so background noise spreads over all targets
            for target in targets:
                result = load(target, args.concurrency, args.duration, args.warmup)
                results[target.name].append(result)
                print(f"run {run} {target.name:<8} {result.rps:8.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                      f"p99 {result.p99_ms:6.2f} ms  errors {result.errors}", flush=True)
        report(results, args.concurrency, args.tool)


if __name__ == "__main__":
    main()
