"""The dashboards' daily roll-up (issue 17): per Warsaw day, the figures the 5+1 and e-purse dashboards sum over a
period, kept in `dashboard_rollups` for closed days so that a dashboard reads a few hundred summed rows instead of
a year of ledger entries; today (and any day not rolled up yet, or made stale by late data) is read live.

One day's figures are *records*: (metric, key) → [count, amount]. The same function computes them for the roll-up
and for the live days, so a dashboard's numbers are the same either way (tests compare them with a whole-period
live computation).

- e-purse (`purse_ledger`): `heat` "weekday:hour" rides; `line` device id → rides; `fare` category → rides and
  fares paid (positive grosze); `topup` channel → top-ups and paid-in grosze; `bonus` channel → bonus grosze;
  `meter` device id → parking tickets and grosze.
- 5+1: `sub_new` new subscriptions (created that day); `revenue` normal | reduced | plus1 → grosze of the months
  paid that day (a paid month is final and paid on the day it is booked: `paid_on` is that day).

The job (`refresh`, hourly in-process and `ekp office rollup` from cron) is safe on many nodes: each day is
computed in its own transaction under a lock on its `dashboard_rollup_days` row (PostgreSQL), replacing the day's
rows (an idempotent upsert of the day). Late data — an offline validator's batch of taps booked for a past day,
a subscription row inserted with an old time — is found by the rows added since the job's high-water mark (the
ledger's and subscriptions' ids, `dashboard_rollup_marks`): their days are marked stale and recomputed, and
until then the dashboards read those days live. The mark only moves past rows recorded more than `MARK_LAG` ago,
so a transaction still open when the job looks (ids are not committed in order) is found next time."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import case, func, select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, SQLModel, col

from domain.office import Period, fare_category
from web.platform import clock
from web.five_plus_one.interface import Subscription5p1, SubscriptionMonthRow
from web.purse.interface import PurseLedgerEntry
from web.office.sql import RIDE_KINDS, as_utc, hourly, utc_bounds

log = logging.getLogger("ekp.office.rollup")

ROLLUP_DAYS = 400  # how far back the job keeps days (a period is at most 366 days; revenue reads from its month's 1st)
MARK_LAG = timedelta(minutes=10)  # the high-water mark passes only rows recorded at least this long ago
GRACE = timedelta(minutes=15)  # a day is rolled up once it has been over this long (transactions straddling midnight)
PURSE_METRICS = ("heat", "line", "fare", "topup", "bonus", "meter")
FIVE_METRICS = ("sub_new", "revenue")
CHANNELS = ("kasa", "parkometr", "online")

Records = dict[tuple[str, str], list[int]]  # (metric, key) -> [count, amount]

_metadata = sa.MetaData()
ROLLUPS = sa.Table(
    "dashboard_rollups", _metadata,
    sa.Column("day", sa.Date, primary_key=True), sa.Column("metric", sa.String(16), primary_key=True),
    sa.Column("key", sa.String(96), primary_key=True), sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False))
DAYS = sa.Table(
    "dashboard_rollup_days", _metadata,
    sa.Column("day", sa.Date, primary_key=True), sa.Column("computed_at", sa.DateTime(timezone=True)),
    sa.Column("stale", sa.Boolean, nullable=False))
MARKS = sa.Table(
    "dashboard_rollup_marks", _metadata,
    sa.Column("source", sa.String(32), primary_key=True), sa.Column("last_id", sa.BigInteger, nullable=False))


def _new_records() -> Records:
    return defaultdict(lambda: [0, 0])


# --------------------------------------------------------------------------- one range's records, live


def _day_bucket(session: Session, column: Any) -> Any:
    """A UTC day, except its last two hours, each its own bucket: a Warsaw day starts at 22:00 or 23:00 UTC the
    day before (UTC+2 or UTC+1), so every bucket lies in one Warsaw day — 3 groups a day instead of 24."""
    if session.get_bind().dialect.name == "postgresql":
        utc = func.timezone("UTC", column)
        return case((sa.extract("hour", utc) >= 22, func.date_trunc("hour", utc)), else_=func.date_trunc("day", utc))
    return case((func.strftime("%H", column) >= "22", func.strftime("%Y-%m-%d %H:00:00", column)),
                else_=func.strftime("%Y-%m-%d 00:00:00", column))


def purse_records(session: Session, first: date, last: date) -> dict[date, Records]:
    """The e-purse records of each Warsaw day from `first` to `last`, from the ledger (grouped by UTC hour in SQL,
    folded into Warsaw days here: exact across the clock changes)."""
    start, end = utc_bounds(Period(first, last))
    e = PurseLedgerEntry
    out: dict[date, Records] = defaultdict(_new_records)
    in_range = (col(e.at) >= start, col(e.at) < end)
    for bucket, count in hourly(session, e.at, [func.count()], col(e.kind).in_(RIDE_KINDS), *in_range):
        local = clock.to_local(as_utc(bucket))
        out[local.date()][("heat", f"{local.weekday()}:{local.hour}")][0] += int(count)
    online = case((col(e.place) == "online", 1), else_=0).label("online")
    bucket = _day_bucket(session, e.at).label("bucket")
    extra: list[Any] = [col(e.device_id), col(e.kind), col(e.detail), online]
    groups = session.execute(select(bucket, *extra, func.count(), func.sum(col(e.amount))).where(*in_range)
                             .group_by(bucket, *extra)).all()
    for bucket, device_id, kind, detail, is_online, count, amount in groups:
        records = out[clock.to_local(as_utc(bucket)).date()]
        count, amount = int(count), int(amount or 0)
        device = "" if device_id is None else str(device_id)
        if kind in RIDE_KINDS:
            records[("line", device)][0] += count
            fare = records[("fare", fare_category(kind, detail or ""))]
            fare[0] += count
            fare[1] += -amount
        elif kind in ("topup", "credit_repayment", "bonus"):
            channel = "online" if is_online else "parkometr" if detail == "parking_meter" else "kasa"
            if kind == "bonus":
                records[("bonus", channel)][1] += amount
            else:
                topup = records[("topup", channel)]
                topup[0] += count if kind == "topup" else 0
                topup[1] += amount
        elif kind == "parking":
            meter = records[("meter", device)]
            meter[0] += count
            meter[1] += -amount
    return out


def five_plus_one_records(session: Session, first: date, last: date) -> dict[date, Records]:
    """The 5+1 records of each Warsaw day from `first` to `last`."""
    start, end = utc_bounds(Period(first, last))
    s, m = Subscription5p1, SubscriptionMonthRow
    out: dict[date, Records] = defaultdict(_new_records)
    for bucket, count in hourly(session, s.created_at, [func.count()], s.created_at >= start, s.created_at < end):
        out[clock.to_local(as_utc(bucket)).date()][("sub_new", "")][0] += int(count)
    index, price, variant = col(m.month_index), col(m.price), col(s.variant)
    revenue = session.execute(
        select(col(m.paid_on),
               func.sum(case((index == 6, price), else_=0)),
               func.sum(case((sa.and_(index < 6, variant == "normal"), price), else_=0)),
               func.sum(case((sa.and_(index < 6, variant == "reduced"), price), else_=0)),
               func.count())
        .join(s, col(s.id) == col(m.subscription_id))
        .where(col(m.state) == "paid", col(m.paid_on) >= first, col(m.paid_on) <= last)
        .group_by(col(m.paid_on))).all()
    for day, plus1, normal, reduced, paid in revenue:
        records = out[day]
        records[("revenue", "paid")][0] += int(paid)  # months paid (a month of a free "+1" counts too)
        for key, amount in (("normal", normal), ("reduced", reduced), ("plus1", plus1)):
            if amount:
                records[("revenue", key)][1] += int(amount)
    return out


def day_records(session: Session, first: date, last: date) -> dict[date, Records]:
    records = purse_records(session, first, last)
    for day, found in five_plus_one_records(session, first, last).items():
        records[day].update(found)
    return records


# --------------------------------------------------------------------------- what a dashboard reads


@dataclass
class Figures:
    """A period's records: summed over the period (`totals`) and per day for the metrics that need days."""

    totals: Records
    per_day: dict[date, Records]
    live_days: int  # how many of the period's days were read live (today, days not rolled up or stale)


def _runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Contiguous runs of days, as (first, last)."""
    runs: list[tuple[date, date]] = []
    for day in sorted(days):
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), clock.WARSAW).astimezone(UTC)


def _table(name: str) -> sa.Table:
    return SQLModel.metadata.tables[name]


def late_days(session: Session, today: date, since: date) -> set[date]:
    """Days from `since` to yesterday with rows added after the job's high-water marks (late data the roll-up
    has not seen yet)."""
    marks: dict[str, int] = {r[0]: r[1] for r in session.execute(select(MARKS.c.source, MARKS.c.last_id))}
    found: set[date] = set()
    bounds = (_start_of(since), _start_of(today))
    for name, column in (("purse_ledger", "at"), ("subscriptions_5p1", "created_at")):
        table = _table(name)
        at = table.c[column]
        # the hours holding such rows, grouped by UTC hour in SQL (exact in Warsaw days)
        hours = hourly(session, at, [func.count()], table.c.id > int(marks.get(name, 0)), at >= bounds[0],
                        at < bounds[1])
        found.update(clock.to_local(as_utc(bucket)).date() for bucket, _count in hours)
    return found


def figures(session: Session, first: date, last: date, today: date, metrics: tuple[str, ...],
            daily: tuple[str, ...] = ()) -> Figures:
    """The records of the days from `first` to `last` for `metrics`: closed days from the roll-up, the rest live.
    `daily` metrics are also returned per day."""
    rolled = set(session.scalars(
        select(DAYS.c.day).where(DAYS.c.day >= first, DAYS.c.day <= last, DAYS.c.day < today,
                                 DAYS.c.stale.is_(False))).all())
    if rolled:
        rolled -= late_days(session, today, min(rolled))
    totals: Records = _new_records()
    per_day: dict[date, Records] = defaultdict(_new_records)
    if rolled:
        chosen = [d for d in Period(first, last).each_day() if d in rolled]
        in_rolled = sa.or_(*[ROLLUPS.c.day.between(a, b) for a, b in _runs(chosen)])
        for metric, key, count, amount in session.execute(
                select(ROLLUPS.c.metric, ROLLUPS.c.key, func.sum(ROLLUPS.c.count), func.sum(ROLLUPS.c.amount))
                .where(in_rolled, ROLLUPS.c.metric.in_(metrics)).group_by(ROLLUPS.c.metric, ROLLUPS.c.key)):
            cell = totals[(metric, key)]
            cell[0] += int(count)
            cell[1] += int(amount)
        if daily:
            for day, metric, key, count, amount in session.execute(
                    select(ROLLUPS.c.day, ROLLUPS.c.metric, ROLLUPS.c.key, ROLLUPS.c.count, ROLLUPS.c.amount)
                    .where(in_rolled, ROLLUPS.c.metric.in_(daily))):
                cell = per_day[day][(metric, key)]
                cell[0] += int(count)
                cell[1] += int(amount)
    live = [d for d in Period(first, last).each_day() if d not in rolled]
    compute = purse_records if set(metrics) <= set(PURSE_METRICS) else (
        five_plus_one_records if set(metrics) <= set(FIVE_METRICS) else day_records)
    for a, b in _runs(live):
        for day, records in compute(session, a, b).items():
            if not first <= day <= last:
                continue
            for (metric, key), (count, amount) in records.items():
                if metric not in metrics:
                    continue
                totals[(metric, key)][0] += count
                totals[(metric, key)][1] += amount
                if metric in daily:
                    per_day[day][(metric, key)][0] += count
                    per_day[day][(metric, key)][1] += amount
    return Figures(totals, per_day, len(live))


# --------------------------------------------------------------------------- the job


@dataclass
class RollupReport:
    computed: int = 0
    stale_marked: int = 0

    def __str__(self) -> str:
        return f"roll-up: {self.computed} day(s) computed, {self.stale_marked} marked stale by late data"


def _upsert(conn: Connection, table: sa.Table, values: dict[str, Any], keys: list[str], update: dict[str, Any]) -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    if conn.dialect.name == "postgresql":
        pg = postgresql.insert(table).values(**values)
        conn.execute(pg.on_conflict_do_update(index_elements=keys, set_=update) if update
                     else pg.on_conflict_do_nothing(index_elements=keys))
    else:
        lite = sqlite.insert(table).values(**values)
        conn.execute(lite.on_conflict_do_update(index_elements=keys, set_=update) if update
                     else lite.on_conflict_do_nothing(index_elements=keys))


def _mark_late(engine: Engine, now: datetime, today: date) -> int:
    """Mark the days of late rows stale and move the high-water marks."""
    marked = 0
    with engine.begin() as conn:
        with Session(bind=conn) as session:
            late = late_days(session, today, today - timedelta(days=ROLLUP_DAYS))
        for day in sorted(late):
            _upsert(conn, DAYS, {"day": day, "computed_at": None, "stale": True}, ["day"], {"stale": True})
            marked += 1
        marks = {r[0]: r[1] for r in conn.execute(select(MARKS.c.source, MARKS.c.last_id))}
        for table, recorded in ((_table("purse_ledger"), "recorded_at"), (_table("subscriptions_5p1"), "created_at")):
            old = int(marks.get(table.name, 0))
            new = conn.execute(select(func.max(table.c.id)).where(table.c.id > old, table.c[recorded] < now - MARK_LAG)).scalar()
            if new is not None:
                _upsert(conn, MARKS, {"source": table.name, "last_id": int(new)}, ["source"],
                        {"last_id": sa.func.greatest(MARKS.c.last_id, int(new)) if conn.dialect.name == "postgresql"
                         else sa.func.max(MARKS.c.last_id, int(new))})
    return marked


def _compute_day(engine: Engine, day: date, now: datetime) -> bool:
    """Recompute one day's rows unless another node just did (its day row locked meanwhile)."""
    with engine.begin() as conn:
        _upsert(conn, DAYS, {"day": day, "computed_at": None, "stale": True}, ["day"], {})
        locked = select(DAYS.c.computed_at, DAYS.c.stale).where(DAYS.c.day == day)
        if conn.dialect.name == "postgresql":
            locked = locked.with_for_update()
        computed_at, stale = conn.execute(locked).one()
        if computed_at is not None and not stale:
            return False
        with Session(bind=conn) as session:
            records = day_records(session, day, day).get(day, {})
        conn.execute(ROLLUPS.delete().where(ROLLUPS.c.day == day))
        rows = [{"day": day, "metric": metric, "key": key[:96], "count": count, "amount": amount}
                for (metric, key), (count, amount) in sorted(records.items()) if count or amount]
        if rows:
            conn.execute(ROLLUPS.insert(), rows)
        conn.execute(DAYS.update().where(DAYS.c.day == day).values(computed_at=now, stale=False))
    return True


def refresh(engine: Engine, now: datetime | None = None) -> RollupReport:
    """Roll up every closed day of the last ROLLUP_DAYS days that is missing or stale. Idempotent."""
    now = now or clock.now()
    today = clock.to_local(now).date()
    report = RollupReport(stale_marked=_mark_late(engine, now, today))
    with engine.connect() as conn:
        done = set(conn.execute(select(DAYS.c.day).where(DAYS.c.stale.is_(False),
                                                         DAYS.c.day >= today - timedelta(days=ROLLUP_DAYS))).scalars())
    closed = [today - timedelta(days=n) for n in range(ROLLUP_DAYS, 0, -1)]
    for day in closed:
        if day in done or now < _start_of(day + timedelta(days=1)) + GRACE:
            continue
        if _compute_day(engine, day, now):
            report.computed += 1
    return report
