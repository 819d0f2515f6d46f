"""Scheduled work. In the embedded default an in-process loop runs it; in production the same
functions run as `ekp …` commands from cron, safe on many nodes at once (rows are claimed)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import anyio
from litestar import Litestar

from web.platform.mail import SmtpSender, deliver_outbox
from web.platform.observe import job_run
from web.platform.store import DatabaseStore

log = logging.getLogger("ekp.jobs")
MAIL_EVERY = 5.0
PURGE_EVERY = 3600.0
BILLING_EVERY = 3600.0
CARDS_EVERY = 3600.0
ROLLUP_EVERY = 3600.0


async def run_mail(app: Litestar) -> None:
    settings = app.state.settings
    if not settings.smtp_url:
        return  # mail stays in the outbox, shown at /dev/mail
    sender = SmtpSender(settings.smtp_url, settings.mail_from)
    while True:
        try:
            await deliver_outbox(app.state.engine, sender, retry_for=timedelta(hours=settings.mail_retry_hours))
        except Exception:  # keep the loop alive; the next round retries
            log.exception("mail delivery round failed")
        await anyio.sleep(MAIL_EVERY)


async def run_purge(app: Litestar) -> None:
    store = app.state.store
    while True:
        if isinstance(store, DatabaseStore):
            try:
                with job_run(app.state.engine, "purge"):  # counted like the other jobs (health dashboard)
                    await anyio.to_thread.run_sync(store.purge_expired)
            except Exception:
                log.exception("store purge failed")
        await anyio.sleep(PURGE_EVERY)


async def run_billing(app: Litestar) -> None:
    from web.five_plus_one.billing import charge_due_months
    from web.payment_records.reconcile import reconcile_pending_payments

    await anyio.sleep(5)
    while True:
        try:
            with job_run(app.state.engine, "billing"):  # counted in the metrics like `ekp billing run`
                report = await charge_due_months(app.state.engine, app.state.payments.gateway, app.state.purposes,
                                                 app.state.settings)
            if report.charged or report.declined or report.unanswered:
                log.info("billing: %s", report)
            with job_run(app.state.engine, "reconcile"):
                reconciled = await reconcile_pending_payments(app.state.engine, app.state.payments.gateway,
                                                              app.state.purposes)
            if reconciled.asked:
                log.info("reconciliation: %s", reconciled)
        except Exception:
            log.exception("billing run failed")
        await anyio.sleep(BILLING_EVERY)


async def card_jobs_round(app: Litestar) -> None:
    """One round of `ekp cards expire` in-process (issue 16): uncollected cards, reminders, old photos; counted in
    `job_runs` like the cron command, so a failing round shows on the health dashboard."""
    from web.card_applications.service import run_card_jobs as run_once

    try:
        with job_run(app.state.engine, "cards"):
            report = await anyio.to_thread.run_sync(run_once, app.state.engine, app.state.settings)
        if report.invalidated or report.reminders or report.photos_deleted:
            log.info("cards: %s", report)
    except Exception:
        log.exception("card jobs failed")


async def run_card_jobs(app: Litestar) -> None:
    await anyio.sleep(5)
    while True:
        await card_jobs_round(app)
        await anyio.sleep(CARDS_EVERY)


async def run_rollup(app: Litestar) -> None:
    """`ekp office rollup` in-process (issue 17): the back office's daily roll-up of closed days."""
    from web.office.rollup import refresh

    await anyio.sleep(5)
    while True:
        try:
            with job_run(app.state.engine, "rollup"):
                report = await anyio.to_thread.run_sync(refresh, app.state.engine)
            if report.computed or report.stale_marked:
                log.info("%s", report)
        except Exception:
            log.exception("dashboard roll-up failed")
        await anyio.sleep(ROLLUP_EVERY)


@asynccontextmanager
async def scheduler_lifespan(app: Litestar) -> AsyncIterator[None]:
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_mail, app)
        tg.start_soon(run_purge, app)
        tg.start_soon(run_billing, app)
        tg.start_soon(run_card_jobs, app)
        tg.start_soon(run_rollup, app)
        try:
            yield
        finally:
            tg.cancel_scope.cancel()
