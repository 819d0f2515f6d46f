"""Observability: request ids, structured logs that never carry personal data or secrets, Prometheus
metrics (HTTP through `litestar.plugins.prometheus`, business numbers computed when scraped), and the
health (`/healthz`) and readiness (`/readyz`) checks.

Nothing here adds a database query to an ordinary request: the business gauges are read from the database
only when `/metrics` is scraped, and the counters kept in the process (taps) are plain increments.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
import sqlalchemy as sa
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlmodel import col

from web.platform import clock
from web.platform.db import affected

# ---------------------------------------------------------------------------------------------- request id

REQUEST_ID_HEADER = "x-request-id"
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("ekp_request_id", default="-")
_GOOD_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")


def request_id_of(scope: Scope) -> str:
    """The id of this request (set by `with_request_id`), for error pages."""
    return str(scope.get("ekp_request_id") or request_id.get())


def with_request_id(app: ASGIApp, *, trust_header: bool,
                    more_headers: Callable[[Scope, list[tuple[bytes, bytes]]], None] | None = None) -> ASGIApp:
    """Give every HTTP request an id: the `X-Request-ID` a trusted reverse proxy set (only when
    EKP_TRUSTED_PROXIES is configured, and only a plain token of 8–64 characters), else a new random one.
    The id is in every log record of the request and in the response's `X-Request-ID` (and error pages).

    `more_headers(scope, headers)`, if given, adds the app's own headers to every response's start after the id,
    in the same send wrapper (the app's security headers: one wrapper per request instead of two, issue 18)."""

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        given = None
        if trust_header:
            for name, value in scope.get("headers", []):
                if name == b"x-request-id":
                    candidate = value.decode("latin-1")
                    if _GOOD_ID.fullmatch(candidate):
                        given = candidate
                    break
        rid = given or secrets.token_hex(8)
        scope["ekp_request_id"] = rid  # type: ignore[typeddict-unknown-key]
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                if not isinstance(headers, list):
                    headers = message["headers"] = list(headers)
                headers.append(header)
                if more_headers is not None:
                    more_headers(scope, headers)
            await send(message)

        token = request_id.set(rid)
        try:
            await app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)

    return handler


# ------------------------------------------------------------------------------------------------- logging

# What must never reach a log line, whoever wrote the message: PESEL numbers (11 digits), payment card
# numbers (13-19 digits, spaced or not), and values of anything named like a secret.
_REDACTIONS = [
    (re.compile(r"(?<![\w])(?:\d[ -]?){12,18}\d(?![\w])"), "[digits]"),
    (re.compile(r"(?<![\w])\d{11}(?![\w])"), "[digits]"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    (re.compile(r"(?i)\b([\w-]*(?:password|passwd|haslo|token|secret|pesel|cvc|cvv|card_number|session|csrf|"
                r"authorization|cookie|totp|recovery|(?:security|auth|reset|activation)_?code)[\w-]*)"
                r"(\"?\s*[:=]\s*\"?)([^\s\"',;&]+)"), r"\1\2[redacted]"),
]


def redact(text_: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text_ = pattern.sub(replacement, text_)
    return text_


class _Formatter(logging.Formatter):
    def __init__(self, json_lines: bool) -> None:
        super().__init__()
        self.json_lines = json_lines

    def format(self, record: logging.LogRecord) -> str:
        message = redact(record.getMessage())
        error = redact(self.formatException(record.exc_info)) if record.exc_info else None
        rid = request_id.get()
        if self.json_lines:
            entry: dict[str, Any] = {
                "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname, "logger": record.name, "message": message,
            }
            if rid != "-":
                entry["request_id"] = rid
            if error:
                entry["error"] = error
            return json.dumps(entry, ensure_ascii=False)
        moment = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%d %H:%M:%S")
        line = f"{moment} {record.levelname} {record.name}" + (f" [{rid}]" if rid != "-" else "") + f": {message}"
        return line + ("\n" + error if error else "")


# Libraries that log statement parameters, request headers or bodies at INFO/DEBUG (session ids, mail
# links, card tokens): never below WARNING, whatever EKP_LOG_LEVEL says.
QUIET_LOGGERS = ("sqlalchemy", "httpx", "httpcore", "urllib3", "asyncio", "aiosmtplib", "multipart",
                 "python_multipart", "redis", "psycopg", "alembic", "uvicorn.access")


def configure_logging(log_format: str = "text", level: str = "INFO", stream: IO[str] | None = None, *,
                      force: bool = False) -> logging.Handler | None:
    """One handler on the root logger: JSON lines (`EKP_LOG_FORMAT=json`) or plain text, with the request
    id and secrets redacted. Like `logging.basicConfig`, leaves a root logger that has other handlers
    (e.g. pytest's) alone unless `force`; returns the handler it added (tests remove it again)."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    root = logging.getLogger()
    ours = [old for old in root.handlers if getattr(old, "_ekp", False)]
    if not force and len(ours) < len(root.handlers):
        return None
    for old in ours:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_Formatter(log_format == "json"))
    handler._ekp = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    return handler


# ------------------------------------------------------------------------------------------------- metrics

TAPS = Counter("ekp_taps", "Validator taps answered by this process, by outcome (booked, replayed, refused)",
               ["outcome"])


def count_taps(results: list[Any], problem_type: type) -> None:
    for result in results:
        if isinstance(result, problem_type):
            TAPS.labels("refused").inc()
        else:
            TAPS.labels("replayed" if result[1] else "booked").inc()


class BusinessCollector:
    """Numbers read from the database when `/metrics` is scraped (the same on every node)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Any]:
        from web.platform.models import JobRun

        with self.engine.connect() as conn:
            backlog = conn.execute(text("SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL")).scalar()
            failed = conn.execute(text("SELECT count(*) FROM mail_outbox WHERE failed_at IS NOT NULL")).scalar()
            payments = conn.execute(text("SELECT status, count(*) FROM payments GROUP BY status")).all()
            charges = conn.execute(text("SELECT status, count(*) FROM payments WHERE kind = 'token' GROUP BY status")).all()
            jobs = conn.execute(select(col(JobRun.job), col(JobRun.runs), col(JobRun.failures), col(JobRun.last_success_at))).all()
        yield GaugeMetricFamily("ekp_outbox_backlog", "Mail waiting in the outbox (not sent, not given up)", value=backlog or 0)
        yield GaugeMetricFamily("ekp_outbox_failed", "Mail given up (ekp mail failed)", value=failed or 0)
        by_status = GaugeMetricFamily("ekp_payments", "Payments by status (pending, held_for_review (R-PAY-2), "
                                      "refund_due, paid, failed, ...)", labels=["status"])
        counts = dict(payments)
        for status in ("pending", "held_for_review", "refund_due"):
            counts.setdefault(status, 0)
        for status, number in sorted(counts.items()):
            by_status.add_metric([status], number)
        yield by_status
        by_outcome = GaugeMetricFamily("ekp_charges", "Saved-card (5+1 monthly) charges by outcome", labels=["outcome"])
        for status, number in sorted(dict(charges).items()):
            by_outcome.add_metric([status], number)
        yield by_outcome
        runs = CounterMetricFamily("ekp_job_runs", "Job runs (cron `ekp ...` commands and in-process jobs)", labels=["job"])
        failures = CounterMetricFamily("ekp_job_failures", "Job runs that failed", labels=["job"])
        last = GaugeMetricFamily("ekp_job_last_success_timestamp_seconds", "When a job last succeeded", labels=["job"])
        for job, number, failed_runs, succeeded_at in jobs:
            runs.add_metric([job], number)
            failures.add_metric([job], failed_runs)
            if succeeded_at is not None:
                last.add_metric([job], succeeded_at.timestamp())
        yield runs
        yield failures
        yield last


JOB_NAMES = ("billing", "mail", "reconcile", "purge", "rollup", "cards")


FAILURES_KEPT = timedelta(days=30)
JOB_FAILURES = sa.Table(  # migration 0018: one row per failed run (the error is a summary: the exception's type)
    "job_failures", sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True), sa.Column("job", sa.String(32), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False), sa.Column("error", sa.String(300), nullable=False))


@contextmanager
def job_run(engine: Engine, job: str) -> Iterator[None]:
    """Record one run of `job` in `job_runs` (runs, failures, last success), for the metrics, and a failure also in
    `job_failures` (for the back office's health dashboard); a failure is counted and raised on. The error kept is
    the exception's type and the run's length, never its message (which may hold a URL or an address)."""
    assert job in JOB_NAMES
    started = time.monotonic()
    try:
        yield
    except BaseException as exc:
        _record(engine, job, ok=False, error=f"{type(exc).__name__} after {time.monotonic() - started:.1f} s")
        raise
    _record(engine, job, ok=True, error=None)


def _record(engine: Engine, job: str, *, ok: bool, error: str | None) -> None:
    from sqlalchemy import insert, update
    from sqlalchemy.exc import IntegrityError

    from web.platform.models import JobRun

    table = JobRun.__table__  # type: ignore[attr-defined]
    now = clock.now()
    changes: dict[str, Any] = {"runs": table.c.runs + 1, "failures": table.c.failures + (0 if ok else 1), "last_run_at": now}
    if ok:
        changes["last_success_at"] = now
    else:
        changes["last_error"] = error
    try:
        if not ok:  # the health dashboard's recent failures (issue 17); a month of them is kept
            with engine.begin() as conn:
                conn.execute(JOB_FAILURES.delete().where(JOB_FAILURES.c.at < now - FAILURES_KEPT))
                conn.execute(JOB_FAILURES.insert().values(job=job, at=now, error=(error or "")[:300]))
        for _ in range(2):
            try:
                with engine.begin() as conn:
                    if affected(conn.execute(update(table).where(table.c.job == job).values(**changes))) == 0:
                        conn.execute(insert(table).values(job=job, runs=1, failures=0 if ok else 1, last_run_at=now,
                                                          last_success_at=now if ok else None, last_error=error))
                return
            except IntegrityError:  # another node inserted the row at the same moment: update it
                continue
    except Exception:  # the record is for monitoring; never fail the job for it
        logging.getLogger("ekp.jobs").warning("could not record the run of job %s", job, exc_info=True)
