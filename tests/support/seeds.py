"""Data seeded by direct inserts for the billing tests and `benchmarks/billing_run.py`.

Every date comes from the domain's rules (`domain.five_plus_one.month_period`: each month runs from its
start day to the day before the same day next month, R-5P1-3), every price from the tariff
(`domain.tariff_5p1.price_for_month`): nothing here knows how long a month is.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from domain.five_plus_one import month_period, month_start
from domain.tariff_5p1 import TicketVariant, price_for_month
from payments.sandbox import store as sandbox_tables
from web.platform import clock
from web.accounts.models import User
from web.cards.models import Card
from web.five_plus_one.models import Subscription5p1, SubscriptionMonthRow
from web.platform.settings import read_tariffs

CHUNK = 5000
MAX_MONTH_LENGTH = 31


def first_day_for(starts_on: date, offset: int) -> date | None:
    """The latest first day of a subscription whose month `offset` (0-based) starts on `starts_on`, if any.

    Not every day starts a month: from 29, 30 or 31 January month 2 starts on 1 March (R-5P1-3 and the
    domain's rule for days a month lacks), so in a year without 29 February no month 2 starts on 29, 30
    or 31 March, while a month 3 does (from 29 January, 30 January, ...)."""
    for back in range(28 * offset, MAX_MONTH_LENGTH * offset + 1):
        candidate = starts_on - timedelta(days=back)
        if month_start(candidate, offset) == starts_on:
            return candidate
    return None


def due_month_layout(today: date, starts_in_days: int, charge_days_before: int = 3) -> tuple[date, int]:
    """(first day, index of the month due) for a subscription with exactly one month to charge today:
    month 2 starting `starts_in_days` from today, else the nearest day in the charge window
    (tomorrow .. `charge_days_before` days ahead) on which a month 2 starts, else a month 3."""
    wanted = today + timedelta(days=starts_in_days)
    window = [today + timedelta(days=d) for d in range(1, charge_days_before + 1)]
    targets = [wanted] + sorted((d for d in window if d != wanted), key=lambda d: (abs((d - wanted).days), d))
    for index in (2, 3):
        for target in targets:
            first_day = first_day_for(target, index - 1)
            if first_day is not None:
                return first_day, index
    raise AssertionError(f"no month 2 or 3 starts in the days after {today}")  # see the Hypothesis test


def seed_due_months(engine: sa.Engine, sandbox_store: Any, count: int, *, today: date | None = None,
                    starts_in_days: int = 2, behaviour: str = "succeeds", email_prefix: str = "bench") -> list[int]:
    """`count` ACTIVE subscriptions (own user, resident card, saved sandbox token), the months before
    the due one PAID and one month DUE: month 2 starting `starts_in_days` from `today`, or on the nearest
    day of the charge window that starts a month (`due_month_layout`), so each has exactly one month to
    charge today. Returns the subscription ids; the due month is the one row in state "due"."""
    today = today or clock.today()
    first_day, due_index = due_month_layout(today, starts_in_days)
    tariff = read_tariffs().five_plus_one  # the tariff the test settings load (the default file)
    months = []
    for index in range(1, due_index + 1):
        starts_on, ends_on = month_period(first_day, 1, index)
        paid = index < due_index
        months.append({"cycle": 1, "month_index": index, "starts_on": starts_on, "ends_on": ends_on,
                       "price": price_for_month(tariff, TicketVariant.NORMAL, index, starts_on),
                       "state": "paid" if paid else "due", "attempts": 1 if paid else 0, "next_attempt_on": None,
                       "paid_on": starts_on if paid else None})
    now = clock.now()
    ids: list[int] = []
    with engine.begin() as conn:
        base = conn.execute(sa.select(sa.func.coalesce(sa.func.max(User.id), 0))).scalar_one()  # type: ignore[arg-type]
    for start in range(0, count, CHUNK):
        n = min(CHUNK, count - start)
        numbers = range(base + start + 1, base + start + n + 1)
        tokens = [f"sbx_tok_bench{i:012d}" for i in numbers]
        with sandbox_store.engine.begin() as conn:
            conn.execute(sa.insert(sandbox_tables.cards), [
                {"token": t, "brand": "Visa", "last4": "1111", "exp_month": 12, "exp_year": today.year + 4,
                 "behaviour": behaviour, "created_at": time.time()} for t in tokens])
        with engine.begin() as conn:
            conn.execute(sa.insert(User.__table__), [  # type: ignore[attr-defined]
                {"id": i, "email": f"{email_prefix}{i}@example.pl", "first_name": "Jan", "last_name": f"Testowy{i}",
                 "role": "passenger", "password_hash": "x", "pesel_hash": f"{i:064d}", "birth_date": date(1980, 1, 1),
                 "language": "pl", "activated_at": now, "created_at": now} for i in numbers])
            conn.execute(sa.insert(Card.__table__), [  # type: ignore[attr-defined]
                {"id": i, "carrier_type": "KKM", "client_code": f"9{i:08d}", "holder_name": f"Jan Testowy{i}",
                 "pesel_hash": f"{i:064d}", "resident_from": date(2020, 1, 1), "resident_until": date(2099, 12, 31),
                 "has_resident_status": True, "blocked": False, "account_id": i, "linked_at": now, "updated_at": now}
                for i in numbers])
            conn.execute(sa.insert(Subscription5p1.__table__), [  # type: ignore[attr-defined]
                {"id": i, "user_id": i, "card_id": i, "variant": "normal", "first_day": first_day, "auto_renew": True,
                 "status": "active", "card_token": t, "card_brand": "Visa", "card_last4": "1111",
                 "card_expiry": f"12/{today.year + 4}", "created_at": now} for i, t in zip(numbers, tokens)])
            conn.execute(sa.insert(SubscriptionMonthRow.__table__), [  # type: ignore[attr-defined]
                {**month, "subscription_id": i, "updated_at": now} for i in numbers for month in months])
        ids.extend(numbers)
    if engine.dialect.name == "postgresql":  # explicit ids were inserted: move the sequences past them
        with engine.begin() as conn:
            for table in ("users", "cards", "subscriptions_5p1"):
                conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"))
    return ids
