"""How fast `charge_due_months` charges due 5+1 months against the in-process payment sandbox.

Seeds N active subscriptions whose month 2 is due today (month 1 paid, a saved sandbox card token each),
by direct inserts, then times one billing run: months/s, CPU per month (the whole process: our side,
the sandbox, PostgreSQL's client side), and memory. Runs on SQLite and, when EKP_TEST_POSTGRES_URL (or
--postgres URL) is given, on PostgreSQL (in a throwaway database next to the given one).

Run: .venv/bin/python benchmarks/billing_run.py [--counts 2000 20000 100000] [--postgres URL]
     [--gateway sandbox|instant|both] [--db sqlite|postgres|both] [--trace-memory]

Memory: "RSS growth" is how far the run pushed the process's peak RSS past where seeding left it;
--trace-memory adds tracemalloc's peak of the run's Python allocations, but tracing every allocation
slows the run 4-5x, so a traced run's months/s mean nothing. (Until 2026-11-22 every run was traced:
the older figures in git history are the traced speed, a quarter to a third of the real one; the
"before" column below is the old code timed by this script, untraced.)

Issue 5's target: >= 1,000 months/s against the sandbox, memory flat as the count grows. Shared 2-core
box, load average 3-6 from other work (so +-30 %), 2026-11-22, untraced, batch 200, concurrency 8:

                               before (61fb4f3)          after
    sqlite    sandbox   2000:     126 months/s  5,850 us   1,900-2,150 months/s  450-520 us CPU/month
    sqlite    sandbox  20000:         -                    1,905 months/s  497 us
    sqlite    sandbox 100000:         -                    1,652 months/s  532 us
    postgres  sandbox   2000:     129 months/s  5,950 us   1,200-1,470 months/s  540-590 us
    postgres  sandbox  20000:         -                    1,205 months/s  589 us
    postgres  sandbox 100000:         -                    1,131 months/s  724 us
    sqlite    instant   2000:     567 months/s  1,470 us   2,350 months/s  408 us
    postgres  instant   2000:     459 months/s  1,580 us   1,330 months/s  526 us
    traced peak: 2.2-4.2 MiB at 2,000 and at 20,000 months, 3.2 MiB at 100,000 (SQLite); before: 6-7 MiB
    at 2,000 and 10,000. Flat.

What changed (where the time went before, per month):
  * the sandbox, ~4.5 ms: the Tpay adapter's two HTTP calls (create, pay) through httpx's ASGI transport
    into the sandbox's Litestar app, with a store transaction per statement. (From 2026-11-22 to issue 19
    the embedded sandbox's gateway took an in-process shortcut, one call creating and charging at once,
    ~100 us; issue 19 removed it: the charge is Tpay's two calls over the adapter's HTTP path again, and
    the sandbox's writes are raw DB-API statements. Figures since then: benchmarks/README.md.)
  * the confirmation mail, about half of our side's ~1.5 ms: three Jinja renders and a SQLModel object
    in the billing transaction.
    The mail is now queued unrendered (template, language, JSON context; migration 0007) in one INSERT
    per batch, and rendered when the outbox row is read (SMTP sender, /dev/mail).
  * ORM objects, most of the rest: subscriptions, months, cards, passengers and payments were loaded as ORM
    objects and written by the unit of work, tickets built as SQLModel objects. Now Core rows in, the
    domain decides as before, and per batch: one INSERT ... RETURNING for planned months, one UPDATE
    ... RETURNING per claim group, one executemany UPDATE each for months and subscriptions, one INSERT
    each for payments, events, tickets, mails. Unusual subscriptions (something to review, a card no
    longer eligible) took an ORM path until issue 14; now they are the same Core rows and statements.
  * PostgreSQL: IN lists of 200-500 ids were hundreds of parameters psycopg parses at each send; now one
    array parameter (= ANY). A batch's answers are applied while the next batch is claimed and charged,
    so PostgreSQL's round trips overlap our CPU (SQLite has one writer: batches take turns).

Where the ~450-600 us of CPU per month go now (cProfile of a 4,000-month SQLite run, threads inlined):
the gateway call ~27 % (nearly all of it the sandbox's own SQLite transaction: two SELECTs, two
INSERTs, COMMIT), applying the answers ~29 % (Core statements, executemany parameter processing -
about eight DateTime binds per month on SQLite -, the domain's settle, JSON of the mail context),
reviewing, claiming and recording ~23 %, and the event loop (a task per charge, thread hops) ~20 %.
On PostgreSQL the wall time per month is above the CPU: the server's share and the round trips
(~0.3 ms/month), partly overlapped by applying one batch while the next is charged.

Not in the figures: with a notification URL (the app's own configuration) the sandbox also signs a
webhook per charge (RS256, ~0.4 ms CPU) and delivers it over HTTP, as Tpay's servers would; the run
here passes no URL and so measures our side plus the gateway's answer.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from payments.sandbox import Sandbox, SandboxSettings  # noqa: E402
from tests.support.seeds import seed_due_months  # noqa: E402  (months built by the domain's rules)


# --------------------------------------------------------------------------- the benchmark


class InstantGateway:
    """Answers every token charge at once with PAID: isolates our side (planning, claiming, recording,
    tickets, mail) from the gateway's. Counts charges per reference like the sandbox does."""

    def __init__(self) -> None:
        self.charges: dict[str, int] = {}

    async def open_token_charge(self, charge: Any) -> Any:
        from payments import CreatedPayment

        return CreatedPayment(f"ta_{charge.reference}", f"TR-{charge.reference}", "", charge.reference)

    async def charge_token(self, charge: Any) -> Any:
        from payments import ChargeResult, PaymentStatus

        self.charges[charge.reference] = self.charges.get(charge.reference, 0) + 1
        return ChargeResult(PaymentStatus.PAID, f"ta_{charge.reference}", f"TR-{len(self.charges)}", charge.reference,
                            charge.amount)

    def count_charges(self) -> int:
        return sum(self.charges.values())

    async def aclose(self) -> None:
        return None


def _prepare_database(kind: str, workdir: Path, postgres_url: str | None) -> str:
    from web.platform.migrate import upgrade
    from web.platform.settings import load_settings

    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'ekp-bench.db'}"
    else:
        from sqlalchemy.engine import make_url

        assert postgres_url
        base = make_url(postgres_url)
        name = f"{base.database or 'ekp'}_billing_bench"
        admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = base.set(database=name).render_as_string(hide_password=False)
    upgrade(load_settings(_env(workdir, url)))
    return url


def _env(workdir: Path, url: str) -> dict[str, str]:
    return {"EKP_ENV": "test", "EKP_VAR_DIR": str(workdir / "var"), "EKP_DATABASE_URL": url,
            "EKP_BASE_URL": "http://bench.local", "EKP_SECRET_KEY": "11" * 32, "EKP_PESEL_KEY": "22" * 32,
            "EKP_SCHEDULER": "false"}


def run_once(kind: str, count: int, postgres_url: str | None, concurrency: int, gateway_kind: str = "sandbox",
             trace_memory: bool = False) -> dict[str, Any]:
    from web.five_plus_one.billing import charge_due_months
    from web.platform.db import make_engine
    from web.purposes import payment_purposes
    from web.platform.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="ekp-billing-bench-") as tmp:
        workdir = Path(tmp)
        url = _prepare_database(kind, workdir, postgres_url)
        settings = load_settings(_env(workdir, url))
        purposes = payment_purposes(settings)
        engine = make_engine(url)
        # No notification URL: the sandbox answers token charges synchronously and queues no webhooks,
        # so the run measures our side plus the gateway round trip, not a delivery loop.
        # The sandbox stands in for Tpay's servers: its own SQLite file (a commit per API call, fsynced)
        # goes to tmpfs when there is one, so the run measures our side rather than the sandbox's disk.
        sandbox_dir = Path(tempfile.mkdtemp(prefix="ekp-sandbox-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
        sandbox = Sandbox(SandboxSettings(public_url="http://bench.local/sandbox-pay", db_path=str(sandbox_dir / "sandbox.db")))
        t0 = time.perf_counter()
        seed_due_months(engine, sandbox.store, count)
        seeded = time.perf_counter() - t0

        instant = InstantGateway() if gateway_kind == "instant" else None

        async def charge() -> Any:
            gateway = instant if instant is not None else sandbox.gateway(notification_url="")
            try:
                return await charge_due_months(engine, gateway, purposes, settings, concurrency=concurrency)
            finally:
                await gateway.aclose()

        if trace_memory:
            tracemalloc.start()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0, cpu0 = time.perf_counter(), time.process_time()
        report = asyncio.run(charge())
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        peak = tracemalloc.get_traced_memory()[1] if trace_memory else 0
        tracemalloc.stop()
        rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
        charged = instant.count_charges() if instant is not None else sandbox.count_charges()
        with engine.connect() as conn:
            paid = conn.execute(sa.text("SELECT COUNT(*) FROM subscription_months WHERE month_index = 2 AND state = 'paid'")).scalar_one()
        engine.dispose()
        sandbox.close()
        shutil.rmtree(sandbox_dir, ignore_errors=True)
        assert report.charged == count == charged == paid, (report, charged, paid)
        return {"db": kind, "gateway": gateway_kind, "months": count, "seconds": elapsed, "rate": count / elapsed, "seed_s": seeded,
                "cpu_us": cpu / count * 1e6, "peak_mib": peak / 2**20, "rss_growth_mib": rss_growth / 1024,
                "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--postgres", default=os.environ.get("EKP_TEST_POSTGRES_URL"))
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--trace-memory", action="store_true",
                        help="trace the run's Python allocations (tracemalloc) for its peak; slows the run down ~2x, "
                             "so months/s of a traced run are not comparable")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--gateway", choices=["sandbox", "instant", "both"], default="sandbox",
                        help="sandbox: the in-process Tpay-style sandbox; instant: a stub that answers PAID at once")
    args = parser.parse_args(argv)
    # One INFO line per HTTP call to the sandbox would cost more than the charge it reports.
    for name in ("httpx", "payments.tpay", "payments.sandbox"):
        logging.getLogger(name).setLevel(logging.WARNING)
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    if "postgres" in kinds and not args.postgres:
        print("PostgreSQL skipped: set EKP_TEST_POSTGRES_URL or pass --postgres URL")
        kinds.remove("postgres")
    gateways = ["sandbox", "instant"] if args.gateway == "both" else [args.gateway]
    print(f"{'db':9} {'gateway':8} {'months':>8} {'seconds':>9} {'months/s':>9} {'CPU us/month':>13} "
          f"{'traced peak MiB':>16} {'RSS growth MiB':>15} {'seed s':>7}")
    for kind in kinds:
        for gateway in gateways:
            for count in args.counts:
                r = run_once(kind, count, args.postgres, args.concurrency, gateway, args.trace_memory)
                peak = f"{r['peak_mib']:.1f}" if args.trace_memory else "-"
                print(f"{r['db']:9} {r['gateway']:8} {r['months']:>8} {r['seconds']:>9.2f} {r['rate']:>9.0f} {r['cpu_us']:>13.0f} "
                      f"{peak:>16} {r['rss_growth_mib']:>15.1f} {r['seed_s']:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
