"""Validator taps per second through the device API over loopback, with p50/p99 latency.

Starts EKP with uvicorn (1 worker unless --workers, in a subprocess) on a fresh SQLite database in a temporary
directory, and on PostgreSQL too when EKP_TEST_POSTGRES_URL is set (a fresh database next to it).
Registers one validator per client and N e-purse cards, then drives `POST /api/devices/validator/taps`
with C concurrent keep-alive clients for a fixed time. Client i taps cards i, i+C, i+2C, ... (mod N),
so with the defaults no two clients share a card (tests/web/purse/test_purse_concurrency.py covers one hot card).

The load generator runs on the same machine and shares its cores with the server (and PostgreSQL): it is a
lean asyncio HTTP/1.1 client (about 0.1-0.2 ms of CPU per request; --httpx uses httpx, about 1 ms). Each
line reports the CPU both sides spent per tap and the load average, so a busy machine shows in the numbers.

Run: .venv/bin/python benchmarks/taps.py [--concurrency 16] [--duration 10] [--cards 64] [--workers 1] [--repeats 1]
                                         [--httpx]
     .venv/bin/python benchmarks/taps.py --breakdown [--repeats 3]   # CPU per tap by layer, in this process
Target (issue 7): at least 1,000 taps/s with p99 under 50 ms.

Where a tap's CPU goes (shared 2-core machine, load average 2-3 from other work, 16 clients, 1 worker; medians;
`--breakdown` measures the first four rows in process, the HTTP run the last ones). Taps run on the event loop
(web/purse/taps_on_loop.py, the one path since issue 14): on PostgreSQL on asynchronous psycopg connections,
on SQLite synchronously, one at a time, waiting asynchronously when another writer is at work (before issue 14
SQLite taps went to a worker thread then, which is what the 'worker threads' figure below measured):

                                                  SQLite            PostgreSQL
    the tap's transaction (service)               0.27-0.37 ms      0.40 ms        (before: 0.47-0.54 / 0.72)
    Litestar: routing, middleware, JSON in/out    0.08-0.10 ms      0.09 ms
    running sixteen at once (worker threads /     0.08-0.18 ms      ~0.01 ms       (PostgreSQL in worker threads,
      the event loop's interleaving)                                                earlier: 0.60 ms)
    whole app in process                          0.43-0.64 ms      0.50 ms        (before: 1.03-1.13 / 1.60-1.74)
    server over HTTP (+ uvicorn, httptools,       0.56-0.74 ms      0.61-0.68 ms   (before: 1.20-1.43 / 1.85-1.97)
      socket system calls)
    PostgreSQL backends                                   -         0.29-0.35 ms   (before: 0.48-0.53)
    load generator                                0.12-0.15 ms      0.12-0.14 ms

Both databases meet the target: in one run (--duration 4 --repeats 3, load average 2.0-2.4) SQLite 1,311 taps/s
(p99 29.5 ms) and PostgreSQL 1,474 taps/s (p99 16.8 ms); before this work 670-780 (p99 43-44 ms) and 490-520
(p99 55-59 ms). (The PostgreSQL measured is scripts/test-postgres's, with fsync and synchronous_commit off: durable
commits add a WAL flush to each tap's latency, not CPU.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(env: dict[str, str], cards: int, clients: int) -> list[str]:
    from domain.purse import CardKind
    from web.platform import clock
    from web.platform.db import make_engine, transaction
    from web.platform.migrate import upgrade
    from web.purse import service as purse
    from web.platform.settings import load_settings

    settings = load_settings(env)
    upgrade(settings)
    engine = make_engine(settings.database_url)
    with transaction(engine) as session:
        for i in range(cards):
            purse.issue_card(session, number=f"9{i:07d}", kind=CardKind.BEARER, issued_on=clock.today())
            purse.top_up_at_service_point(session, f"9{i:07d}", 10_000_000, tariff=settings.purse_tariff)
        credentials = [purse.add_device(session, "validator", f"bench {i}")[1] for i in range(clients)]
    engine.dispose()
    return credentials


def postgres_url(base: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(base)
    name = f"{url.database or 'ekp'}_bench_taps"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def tap_body(index: int, n: int, clients: int, cards: int) -> dict:
    return {"event_id": uuid.uuid4().hex, "at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
            "card_number": f"9{(index + n * clients) % cards:07d}", "vehicle_id": f"B{index}-{n}",
            "stop_id": "S", "buttons": {"t": 0, "b": 0, "s": False}}


async def drive_httpx(base: str, credentials: list[str], cards: int, duration: float) -> tuple[int, list[float], int]:
    """The load with httpx.AsyncClient (about a millisecond of client CPU per request)."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + duration

    async def client(index: int) -> None:
        nonlocal errors
        headers = {"Authorization": f"Bearer {credentials[index]}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
            n = 0
            while time.perf_counter() < stop_at:
                body = tap_body(index, n, len(credentials), cards)
                started = time.perf_counter()
                response = await http.post("/api/devices/validator/taps", json=body)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200 or not response.json().get("accepted"):
                    errors += 1
                n += 1

    await asyncio.gather(*(client(i) for i in range(len(credentials))))
    return len(latencies), latencies, errors


async def drive_raw(base: str, credentials: list[str], cards: int, duration: float) -> tuple[int, list[float], int]:
    """The same load over plain asyncio streams: one keep-alive HTTP/1.1 connection per client, the request
    written as bytes and the response read by its Content-Length, so the load generator (which shares the
    machine's cores with the server) spends far less CPU per request than httpx."""
    host, port = base.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + duration

    async def client(index: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        head = (f"POST /api/devices/validator/taps HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Authorization: Bearer {credentials[index]}\r\nContent-Type: application/json\r\n")
        n = 0
        try:
            while time.perf_counter() < stop_at:
                payload = json.dumps(tap_body(index, n, len(credentials), cards)).encode()
                started = time.perf_counter()
                writer.write(f"{head}Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if status_line.split()[1:2] != [b"200"] or not json.loads(body).get("accepted"):
                    errors += 1
                n += 1
        finally:
            writer.close()

    await asyncio.gather(*(client(i) for i in range(len(credentials))))
    return len(latencies), latencies, errors


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (uvicorn's workers), from Linux /proc; 0.0 elsewhere."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            if stat.parent.name == str(pid) or fields[1] == str(pid):
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            continue
    return total


def backend_cpu_seconds(database: str) -> float:
    """CPU time of the PostgreSQL backends serving `database` (their process title names it), from Linux /proc;
    the server's shared processes (WAL writer, checkpointer) are not included."""
    total = 0.0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            title = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace").split()
            if title[:1] == ["postgres:"] and database in title[1:3]:
                fields = (proc / "stat").read_text().rpartition(")")[2].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            continue
    return total


def run(label: str, database_url: str, args: argparse.Namespace) -> None:
    """One server on a fresh database, `args.repeats` measured windows of `args.duration` seconds; a line per
    window and one of medians."""
    from sqlalchemy.engine import make_url

    database = make_url(database_url).database if database_url.startswith("postgresql") else None
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("EKP_")},
               "EKP_ENV": "test", "EKP_VAR_DIR": tmp, "EKP_DATABASE_URL": database_url,
               "EKP_BASE_URL": f"http://127.0.0.1:{port}", "EKP_SECRET_KEY": "33" * 32, "EKP_PESEL_KEY": "44" * 32,
               "EKP_SCHEDULER": "false"}
        credentials = prepare(env, args.cards, args.concurrency)
        server = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "web.app:app_from_env", "--host",
                                   "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning",
                                   "--workers", str(args.workers)],
                                  cwd=ROOT, env=env)
        rows: list[dict[str, float]] = []
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"{label}: the server did not start")
                time.sleep(0.2)
            drive = drive_httpx if args.httpx else drive_raw
            asyncio.run(drive(f"http://127.0.0.1:{port}", credentials, args.cards, 1.0))  # warm-up
            for _ in range(args.repeats):
                server_cpu, own_cpu = cpu_seconds(server.pid), time.process_time()
                db_cpu = backend_cpu_seconds(database) if database else 0.0
                count, latencies, errors = asyncio.run(drive(f"http://127.0.0.1:{port}", credentials, args.cards,
                                                             args.duration))
                server_cpu, own_cpu = cpu_seconds(server.pid) - server_cpu, time.process_time() - own_cpu
                db_cpu = backend_cpu_seconds(database) - db_cpu if database else 0.0
                latencies.sort()
                per_tap = 1000 / max(count, 1)
                rows.append({"rate": count / args.duration, "p50": statistics.median(latencies) * 1000,
                             "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
                             "errors": errors, "count": count, "server": server_cpu * per_tap,
                             "db": db_cpu * per_tap, "client": own_cpu * per_tap, "load": os.getloadavg()[0]})
                report(label, rows[-1], args, database is not None)
        finally:
            server.terminate()
            server.wait(timeout=30)
    if len(rows) > 1:
        median = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
        report(f"{label} med", median, args, database is not None)


def breakdown(label: str, database_url: str, args: argparse.Namespace) -> None:
    """--breakdown: where a tap's CPU goes, measured inside this process (no HTTP server, no sockets), each layer
    `args.repeats` times, medians. The load generator's own work (building the request) is measured apart and
    taken off every layer."""
    import contextlib
    import logging
    from datetime import UTC, datetime

    from web.app import create_app
    from web.purse import service as purse
    from web.purse import taps_on_loop
    from web.platform.settings import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("EKP_")},
               "EKP_ENV": "test", "EKP_VAR_DIR": tmp, "EKP_DATABASE_URL": database_url,
               "EKP_BASE_URL": "http://127.0.0.1:9", "EKP_SECRET_KEY": "33" * 32, "EKP_PESEL_KEY": "44" * 32,
               "EKP_SCHEDULER": "false"}
        logging.getLogger("alembic").setLevel(logging.WARNING)
        credentials = prepare(env, args.cards, args.concurrency)
        app = create_app(load_settings(env))
        engine = app.state.engine
        clients, taps = len(credentials), 100 * len(credentials)
        counter = iter(range(10**9))

        def request(index: int) -> bytes:
            return json.dumps(tap_body(index, next(counter), clients, args.cards)).encode()

        def tap_of(index: int) -> purse.Tap:
            body = json.loads(request(index))
            return purse.Tap(body["event_id"], datetime.now(UTC), body["card_number"], body["vehicle_id"], body["stop_id"])

        async def service_taps_on_loop(count: int) -> None:  # the app's one path, one tap after another
            pool = taps_on_loop.tap_connections(engine)
            try:
                for i in range(count):
                    await taps_on_loop.tap_with_credential(pool, credentials[i % clients], tap_of(i % clients),
                                                           app.state.settings.purse_tariff)
            finally:
                await pool.close()

        def service_layer() -> None:
            run_async(service_taps_on_loop(taps))

        async def asgi_tap(index: int) -> None:
            payload = request(index)
            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                     "scheme": "http", "path": "/api/devices/validator/taps", "raw_path": b"/api/devices/validator/taps",
                     "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2),
                     "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {credentials[index]}".encode()),
                                 (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
                     "state": {}}
            sent: list[dict] = []

            async def receive() -> dict:
                return {"type": "http.request", "body": payload, "more_body": False}

            async def send(message: dict) -> None:
                sent.append(message)

            await app(scope, receive, send)
            if sent[0]["status"] != 200:
                raise SystemExit(f"{label}: tap answered {sent[0]['status']}: {sent[1].get('body')!r}")

        async def concurrently() -> None:
            async def client(index: int) -> None:
                for _ in range(taps // clients):
                    await asgi_tap(index)
            await asyncio.gather(*(client(i) for i in range(clients)))

        def cpu_per_tap(work: Any) -> float:
            started = time.process_time()
            work()
            return (time.process_time() - started) * 1000 / taps

        try:
            import uvloop
            run_async: Any = uvloop.run
        except ImportError:
            run_async = asyncio.run
        constant = ({"event_id": "-", "accepted": True, "code": "ok", "message": "-", "amount": 0, "balance": 0,
                     "amount_text": "0,00 zł", "balance_text": "0,00 zł", "display": ["-"], "signal": "ok"}, False)

        @contextlib.contextmanager
        def service_answers_constant() -> Any:
            saved = taps_on_loop.tap_with_credential

            async def constant_on_loop(*_a: Any) -> Any:
                return constant

            taps_on_loop.tap_with_credential = constant_on_loop  # type: ignore[assignment]
            try:
                yield
            finally:
                taps_on_loop.tap_with_credential = saved

        def framework_only() -> None:
            with service_answers_constant():
                run_async(concurrently())

        layers: dict[str, list[float]] = {"request": [], "service": [], "framework": [], "app": []}
        run_async(concurrently())  # warm-up
        for _ in range(args.repeats):
            layers["request"].append(cpu_per_tap(lambda: [request(i % clients) for i in range(taps)]))
            layers["service"].append(cpu_per_tap(service_layer))
            layers["framework"].append(cpu_per_tap(framework_only))
            layers["app"].append(cpu_per_tap(lambda: run_async(concurrently())))
        engine.dispose()
    median = {name: statistics.median(values) for name, values in layers.items()}
    service = median["service"] - median["request"]
    framework = median["framework"] - median["request"]
    whole = median["app"] - median["request"]
    print(f"{label:<14} CPU ms/tap in process, medians of {args.repeats}: service (the tap's transaction) {service:.2f}; "
          f"Litestar with the service answering a constant {framework:.2f}; the whole app, {clients} concurrent "
          f"callers {whole:.2f} (the rest, {whole - service - framework:.2f}: running sixteen at once - worker threads "
          f"on SQLite when another writer is busy, the event loop's interleaving on PostgreSQL)",
          flush=True)


def report(label: str, row: dict[str, float], args: argparse.Namespace, has_db: bool) -> None:
    db = f", PostgreSQL backends {row['db']:.2f}" if has_db else ""
    print(f"{label:<14} {row['rate']:>7.0f} {row['p50']:>7.1f} {row['p99']:>7.1f} {row['errors']:>6.0f}  ({row['count']:.0f} "
          f"taps, {args.concurrency} clients, {args.cards} cards, {args.duration:.0f} s, {args.workers} worker(s); "
          f"CPU ms/tap: server {row['server']:.2f}{db}, load generator {row['client']:.2f}; load avg "
          f"{row['load']:.1f} on {os.cpu_count()} CPUs)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--cards", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--repeats", type=int, default=1, help="measured windows per database (and their medians)")
    parser.add_argument("--httpx", action="store_true", help="drive the load with httpx (more client CPU per request)")
    parser.add_argument("--breakdown", action="store_true",
                        help="instead: CPU per tap of the service, the framework and the whole app, in this process")
    args = parser.parse_args()
    if args.breakdown:
        with tempfile.TemporaryDirectory() as tmp:
            breakdown("sqlite", f"sqlite:///{tmp}/bench.db", args)
        if os.environ.get("EKP_TEST_POSTGRES_URL"):
            breakdown("postgresql", postgres_url(os.environ["EKP_TEST_POSTGRES_URL"]), args)
        return
    print(f"{'database':<14} {'taps/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        run("sqlite", f"sqlite:///{tmp}/bench.db", args)
    if os.environ.get("EKP_TEST_POSTGRES_URL"):
        run("postgresql", postgres_url(os.environ["EKP_TEST_POSTGRES_URL"]), args)
    else:
        print("postgresql: skipped (set EKP_TEST_POSTGRES_URL)")


if __name__ == "__main__":
    main()
