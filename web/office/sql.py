"""The SQL pieces the office's live queries and its daily roll-up share: a period's UTC bounds, hourly groups in
SQL on either database, the kinds of ride (web.office.queries and web.office.rollup both read them)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from domain.office import Period
from web.platform import clock

RIDE_KINDS = ("fare", "companion", "credit_ride")


def utc_bounds(period: Period) -> tuple[datetime, datetime]:
    start = datetime.combine(period.first, time(0), clock.WARSAW).astimezone(UTC)
    end = datetime.combine(period.last + timedelta(days=1), time(0), clock.WARSAW).astimezone(UTC)
    return start, end


def hour_bucket(session: Session, column: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return func.date_trunc("hour", func.timezone("UTC", column))
    return func.strftime("%Y-%m-%d %H:00:00", column)


def as_utc(bucket: Any) -> datetime:
    if isinstance(bucket, str):
        bucket = datetime.fromisoformat(bucket)
    if bucket.tzinfo is None:
        bucket = bucket.replace(tzinfo=UTC)
    return bucket.astimezone(UTC)


def hourly(session: Session, column: Any, values: Iterable[Any], *where: Any,
            extra: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """(UTC hour, *extra group columns, *values) grouped in SQL."""
    bucket = hour_bucket(session, column).label("bucket")
    query = select(bucket, *extra, *values).where(*where).group_by(bucket, *extra)
    return [tuple(row) for row in session.execute(query)]
