"""How fast the back office's dashboards render on a year of data (issue 17's target: each < 300 ms on
PostgreSQL with 1 M taps and 100 k subscriptions).

Seeds a year by direct inserts (`--scale 1` = 1 000 000 validator taps, each with its device event, 100 000 5+1
subscriptions with 3 months and 2 payments each, 100 000 inspections, 50 000 top-ups, 50 000 parking tickets,
20 000 e-purse cards, 70 devices; `--scale 0.1` a tenth of each), then signs an admin in (password + TOTP) and
rolls up the closed days (web.office.rollup.refresh, timed; then again, with nothing to do) and
times `GET /office/dashboards/<key>` through the whole app in-process (guards, queries, template): the default
period (the last 30 days) and a whole year (`?from=` a year ago). Median and worst of `--rounds` renders after
one warm-up render.

Run: .venv/bin/python benchmarks/dashboards.py [--scale 1] [--db sqlite|postgres|both] [--postgres URL]
     [--rounds 5] [--keep] [--reuse]
(PostgreSQL: EKP_TEST_POSTGRES_URL or --postgres; a throwaway database `<name>_dashboards_bench` is created
next to it. `scripts/test-postgres start DIR PORT` prints such a URL.)
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BATCH = 10_000
DASHBOARDS = ("5plus1", "purse", "inspections", "health")
# Boardings per hour of the day (a weekday's commuter peaks), a weekend day has half as many.
HOUR_WEIGHTS = [1, 0, 0, 0, 1, 4, 10, 14, 12, 7, 6, 6, 7, 7, 9, 12, 14, 12, 8, 6, 4, 3, 2, 1]
FARE_DETAILS = ["city:normal"] * 6 + ["city:off_50", "city:off_30", "short:normal", "suburban:normal", "city:free"]
VERDICTS = ["valid"] * 12 + ["stale", "forged", "revoked", "expired", "not_yet_valid"]


def _env(workdir: Path, url: str) -> dict[str, str]:
    return {"EKP_ENV": "test", "EKP_VAR_DIR": str(workdir / "var"), "EKP_DATABASE_URL": url,
            "EKP_BASE_URL": "http://bench.local", "EKP_SECRET_KEY": "11" * 32, "EKP_PESEL_KEY": "22" * 32,
            "EKP_SCHEDULER": "false"}


def _prepare_database(kind: str, workdir: Path, postgres_url: str | None) -> str:
    from web.platform.migrate import upgrade
    from web.platform.settings import load_settings

    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'ekp-dashboards.db'}"
    else:
        from sqlalchemy.engine import make_url

        assert postgres_url
        base = make_url(postgres_url)
        name = f"{base.database or 'ekp'}_dashboards_bench"
        admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = base.set(database=name).render_as_string(hide_password=False)
    upgrade(load_settings(_env(workdir, url)))
    return url


def _moment(rng: random.Random, now: datetime, days: int = 365) -> datetime:
    """A time in the last `days` days, at an hour drawn from the daily profile (UTC here; close enough)."""
    while True:
        day = rng.randrange(days)
        moment = (now - timedelta(days=day)).replace(hour=rng.choices(range(24), HOUR_WEIGHTS)[0],
                                                     minute=rng.randrange(60), second=rng.randrange(60))
        if moment.weekday() < 5 or rng.random() < 0.5:
            return moment if moment <= now else moment - timedelta(days=1)


def _insert(engine: sa.Engine, table: sa.Table, rows: Any) -> int:
    count = 0
    batch: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for row in rows:
            batch.append(row)
            if len(batch) >= BATCH:
                conn.execute(table.insert(), batch)
                count += len(batch)
                batch = []
        if batch:
            conn.execute(table.insert(), batch)
            count += len(batch)
    return count


def seed(engine: sa.Engine, scale: float, now: datetime, today: date) -> dict[str, int]:
    from web.accounts.models import User
    from web.cards.models import Card
    from web.five_plus_one.models import Subscription5p1, SubscriptionMonthRow
    from web.payment_records.models import Payment
    from web.purse.models import Device, DeviceEvent, PurseCardRow, PurseLedgerEntry
    from web.tickets.models import Inspection

    rng = random.Random(17)
    n = {"taps": int(1_000_000 * scale), "subscriptions": int(100_000 * scale), "inspections": int(100_000 * scale),
         "topups": int(50_000 * scale), "parking": int(50_000 * scale), "purse_cards": max(100, int(20_000 * scale))}
    people = max(10, n["subscriptions"] // 10)
    t = lambda model: model.__table__  # noqa: E731
    _insert(engine, t(Device), ({"kind": "validator" if i < 50 else "parking-meter", "name": f"Urządzenie {i}",
                                 "secret_hash": "0" * 64, "active": True, "simulator": False, "created_at": now}
                                for i in range(70)))
    _insert(engine, t(User), ({"email": f"p{i}@bench.local", "first_name": "Jan", "last_name": "Bench",
                               "role": "passenger", "password_hash": "x", "birth_date": date(1980, 1, 1),
                               "language": "pl", "activated_at": now, "created_at": now} for i in range(people)))
    _insert(engine, t(Card), ({"carrier_type": "KKM", "client_code": f"{100000000 + i}", "holder_name": "Jan Bench",
                               "pesel_hash": f"{i:064d}", "has_resident_status": True, "blocked": False,
                               "account_id": i + 1, "updated_at": now} for i in range(people)))
    _insert(engine, t(PurseCardRow), ({"number": f"{70000000 + i}", "kind": "bearer", "registered_fare": "normal",
                                       "issued_on": today, "holder_name": "", "balance": rng.choice([500, 1000, -280]),
                                       "demo": False, "updated_at": now} for i in range(n["purse_cards"])))

    def subscriptions() -> Any:
        for i in range(n["subscriptions"]):
            created = _moment(rng, now)
            status = rng.choices(["active", "cancelled", "ended", "broken"], [70, 12, 12, 6])[0]
            yield {"user_id": i % people + 1, "card_id": i % people + 1, "variant": rng.choice(["normal", "reduced"]),
                   "first_day": created.date(), "auto_renew": True, "status": status, "created_at": created,
                   "end_reason": None, "ended_on": None if status == "active" else
                   min(today, created.date() + timedelta(days=rng.randrange(1, 180)))}

    _insert(engine, t(Subscription5p1), subscriptions())
    with engine.connect() as conn:
        firsts = conn.execute(sa.select(t(Subscription5p1).c.id, t(Subscription5p1).c.first_day)).all()

    def months() -> Any:
        for sub_id, first in firsts:
            for index in range(1, 4):
                starts = first + timedelta(days=30 * (index - 1))
                paid = starts <= today
                yield {"subscription_id": sub_id, "cycle": 1, "month_index": index, "starts_on": starts,
                       "ends_on": starts + timedelta(days=29), "price": 8000 if index < 6 else 2000,
                       "state": "paid" if paid else "due", "attempts": 1 if paid else 0,
                       "paid_on": starts - timedelta(days=3) if paid else None, "next_attempt_on": None,
                       "updated_at": now}

    _insert(engine, t(SubscriptionMonthRow), months())

    def payments() -> Any:
        for i, (sub_id, first) in enumerate(firsts):
            for k in range(2):
                created = datetime.combine(first + timedelta(days=30 * k), datetime.min.time(), timezone.utc)
                if created > now:
                    continue
                yield {"reference": f"bench-{i}-{k}", "purpose": "5p1_month", "subject_id": sub_id,
                       "user_id": sub_id % people + 1, "kind": "hosted" if k == 0 else "token", "amount": 8000,
                       "currency": "PLN", "status": rng.choices(["paid", "failed", "pending"], [90, 8, 2])[0],
                       "created_at": created, "updated_at": created}

    _insert(engine, t(Payment), payments())

    def ledger() -> Any:
        cards = n["purse_cards"]
        for _ in range(n["taps"]):
            at = _moment(rng, now)
            kind = rng.choices(["fare", "companion", "credit_ride"], [85, 10, 5])[0]
            yield {"card_id": rng.randrange(cards) + 1, "at": at, "kind": kind, "amount": -280,
                   "detail": "baggage" if kind == "companion" else rng.choice(FARE_DETAILS), "place": "BUS / Dworzec",
                   "device_id": rng.randrange(50) + 1, "payment_id": None, "staff_id": None, "recorded_at": at}
        for _ in range(n["topups"]):
            at = _moment(rng, now)
            meter = rng.random() < 0.4
            yield {"card_id": rng.randrange(cards) + 1, "at": at, "kind": "topup", "amount": 2000,
                   "detail": "parking_meter" if meter else "service_point", "place": "online" if rng.random() < 0.3 else "",
                   "device_id": 51 + rng.randrange(20) if meter else None, "payment_id": None, "staff_id": None,
                   "recorded_at": at}
        for _ in range(n["parking"]):
            at = _moment(rng, now)
            yield {"card_id": rng.randrange(cards) + 1, "at": at, "kind": "parking", "amount": -200, "detail": "60min",
                   "place": "Parkometr", "device_id": 51 + rng.randrange(20), "payment_id": None, "staff_id": None,
                   "recorded_at": at}

    _insert(engine, t(PurseLedgerEntry), ledger())
    _insert(engine, t(DeviceEvent), ({"device_id": rng.randrange(50) + 1, "event_id": f"e{i}", "action": "tap",
                                      "response": "{}", "received_at": (at := _moment(rng, now)),
                                      "flag": "stale" if rng.random() < 0.001 else None, "event_at": at}
                                     for i in range(n["taps"])))
    _insert(engine, t(Inspection), ({"at": _moment(rng, now), "method": rng.choice(["scan", "terminal", "card"]),
                                     "verdict": rng.choice(VERDICTS)} for _ in range(n["inspections"])))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
    return n


def _signed_in_client(app: Any, engine: sa.Engine, settings: Any) -> Any:
    import pyotp
    from litestar.testing import TestClient

    from web.platform.db import transaction
    from web.accounts.people import create_active_user
    from web.accounts.twofactor import set_secret

    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    with transaction(engine) as session:
        user = create_active_user(session, settings, role="admin", email="admin@bench.example.pl", first_name="Adam",
                                  last_name="Biuro", password="Bench1234")
        set_secret(session, settings, user, secret)
    client = TestClient(app, base_url="http://bench.local")
    client.__enter__()
    token = re.search(r'name="_csrf_token" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    step = client.post("/login", data={"email": "admin@bench.example.pl", "password": "Bench1234", "_csrf_token": token},
                       follow_redirects=False)
    assert step.headers.get("location") == "/login/code", step.status_code
    token = re.search(r'name="_csrf_token" value="([^"]+)"', client.get("/login/code").text).group(1)  # type: ignore[union-attr]
    done = client.post("/login/code", data={"code": pyotp.TOTP(secret).now(), "_csrf_token": token},
                       follow_redirects=False)
    assert done.status_code == 303, done.status_code
    return client


def _reused_url(postgres_url: str) -> str:
    from sqlalchemy.engine import make_url

    base = make_url(postgres_url)
    return base.set(database=f"{base.database or 'ekp'}_dashboards_bench").render_as_string(hide_password=False)


def run(kind: str, scale: float, postgres_url: str | None, rounds: int, keep: bool = False,
        reuse: bool = False) -> None:
    from web.platform import clock
    from web.app import create_app
    from web.platform.db import make_engine
    from web.platform.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="ekp-dashboards.") as tmp:
        workdir = Path(tmp)
        if reuse and kind == "postgres":  # the database a --keep run left (seeded then)
            url = _reused_url(postgres_url)  # type: ignore[arg-type]
            from web.platform.migrate import upgrade

            upgrade(load_settings(_env(workdir, url)))
            settings = load_settings(_env(workdir, url))
            engine = make_engine(url)
            with engine.begin() as conn:
                conn.execute(sa.text("DELETE FROM users WHERE email = 'admin@bench.example.pl'"))
        else:
            url = _prepare_database(kind, workdir, postgres_url)
            settings = load_settings(_env(workdir, url))
            engine = make_engine(url)
            started = time.perf_counter()
            counts = seed(engine, scale, clock.now(), clock.today())
            print(f"{kind}: seeded {counts} in {time.perf_counter() - started:.0f} s")
        # the daily roll-up of closed days (issue 17), as the hourly job / `ekp office rollup` keeps it
        from web.office.rollup import refresh

        started = time.perf_counter()
        report = refresh(engine)
        print(f"{kind}: {report} in {time.perf_counter() - started:.1f} s; again: ", end="")
        started = time.perf_counter()
        print(f"{refresh(engine)} in {time.perf_counter() - started:.2f} s")
        app = create_app(settings, engine, start_jobs=False)
        client = _signed_in_client(app, engine, settings)
        year_ago = (clock.today() - timedelta(days=364)).isoformat()
        try:
            for key in DASHBOARDS:
                for label, query in (("30 days", ""), ("a year", f"?from={year_ago}")):
                    if key == "health" and query:
                        continue
                    path = f"/office/dashboards/{key}{query}"
                    assert client.get(path).status_code == 200, path
                    times = []
                    for _ in range(rounds):
                        t0 = time.perf_counter()
                        response = client.get(path)
                        times.append((time.perf_counter() - t0) * 1000)
                        assert response.status_code == 200
                    print(f"{kind:8} {key:12} {label:8}  median {statistics.median(times):7.1f} ms   "
                          f"worst {max(times):7.1f} ms")
        finally:
            client.__exit__(None, None, None)
            engine.dispose()
            if kind == "postgres" and not keep:
                from sqlalchemy.engine import make_url

                base = make_url(postgres_url)  # type: ignore[arg-type]
                admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
                admin.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="1 = 1 M taps and 100 k subscriptions")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="postgres")
    parser.add_argument("--postgres", default=os.environ.get("EKP_TEST_POSTGRES_URL"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="PostgreSQL: keep the seeded database")
    parser.add_argument("--reuse", action="store_true", help="PostgreSQL: time the database a --keep run left")
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    for kind in kinds:
        if kind == "postgres" and not args.postgres:
            print("PostgreSQL skipped: set EKP_TEST_POSTGRES_URL or pass --postgres URL")
            continue
        run(kind, args.scale, args.postgres, args.rounds, keep=args.keep, reuse=args.reuse)


if __name__ == "__main__":
    main()
