"""`ekp`: the single command line of EKP. Each command prints what it did."""

from __future__ import annotations

import getpass
import shutil
import sys
from datetime import timedelta

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

import web.tables  # noqa: F401  (every table on SQLModel.metadata: a command may touch any, e.g. the outbox's link to email_tokens)
from web.platform import clock
from web.platform.observe import configure_logging
from web.platform.settings import Settings, SettingsError, load_settings, start_warnings


def _settings():
    try:
        settings = load_settings()
    except SettingsError as exc:
        click.echo("EKP cannot start; fix these settings:", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        sys.exit(2)
    configure_logging(settings.log_format, settings.log_level)
    clock.start_at(settings.test_clock)
    return settings


@contextmanager
def _recorded(settings: Settings, job: str) -> Iterator[None]:
    """Count this run of a scheduled job (and a failure) in `job_runs`, for the metrics of every node."""
    from web.platform.db import make_engine
    from web.platform.observe import job_run

    engine = make_engine(settings.database_url)
    try:
        with job_run(engine, job):
            yield
    finally:
        engine.dispose()


@click.group()
def main() -> None:
    """EKP — Electronic Passenger Account."""
    configure_logging()  # EKP_LOG_FORMAT and EKP_LOG_LEVEL apply once the settings are read


@main.command()
@click.option("--host", default=None, help="Address to listen on (default EKP_HOST or 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default EKP_PORT or 8000).")
@click.option("--workers", default=1, show_default=True, help="Worker processes.")
@click.option("--no-migrate", is_flag=True, help="Do not upgrade the database first.")
@click.option("--demo/--no-demo", default=None, help="Load demo data first (default: on with the embedded SQLite database).")
def run(host: str | None, port: int | None, workers: int, no_migrate: bool, demo: bool | None) -> None:
    """Upgrade the database if needed, then serve the app."""
    import uvicorn

    from web.simulators import demo as demo_data
    from web.platform.migrate import upgrade

    import os

    # The app process reads its settings from the environment: pass the chosen address on.
    if host:
        os.environ["EKP_HOST"] = host
    if port:
        os.environ["EKP_PORT"] = str(port)
    settings = _settings()
    if not no_migrate:
        upgrade(settings)
        click.echo(f"database ready: {_safe_url(settings.database_url)}")
    if demo if demo is not None else (settings.is_sqlite and not settings.is_production):
        for line in demo_data.load(settings):
            click.echo(line)
    host = host or settings.host
    port = port or settings.port
    for warning in start_warnings(settings):
        click.secho(f"WARNING: {warning}", fg="red", bold=True, err=True)
    click.echo(f"EKP on http://{host}:{port}  (payments: {settings.payments}, mail: "
               f"{'SMTP' if settings.smtp_url else 'outbox at /dev/mail'})")
    if workers > 1:  # every worker's metrics in one scrape (prometheus_client's multiprocess mode)
        metrics_dir = settings.var_dir / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    # JSON logs: uvicorn's own lines go through the same handler (log_config=None leaves logging to EKP).
    logging_options: dict[str, Any] = {"log_config": None} if settings.log_format == "json" else {}
    uvicorn.run("web.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=settings.log_level.lower(), access_log=False, **logging_options, **proxy_options(settings))


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for X-Forwarded-For: believed only from EKP_TRUSTED_PROXIES (R-AUTH-1).

    Without any, the client address is the connection's peer: a header a client sends itself never
    changes the address rate limits count (uvicorn would otherwise trust 127.0.0.1 by default)."""
    if not settings.trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(settings.trusted_proxies)}


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@main.group()
def db() -> None:
    """Database commands."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from web.platform.migrate import upgrade

    settings = _settings()
    upgrade(settings, revision)
    click.echo(f"database upgraded to {revision}: {_safe_url(settings.database_url)}")


@main.group()
def users() -> None:
    """Staff and inspector accounts."""


@users.command("add")
@click.option("--role", type=click.Choice(["inspector", "staff", "admin", "passenger"]), required=True)
@click.option("--email", required=True)
@click.option("--first-name", required=True)
@click.option("--last-name", required=True)
@click.option("--password", envvar="EKP_NEW_USER_PASSWORD", default=None,
              help="Password (or EKP_NEW_USER_PASSWORD; asked for when not given).")
def users_add(role: str, email: str, first_name: str, last_name: str, password: str | None) -> None:
    """Create an active account with ROLE (no PESEL needed for staff, inspectors and admins).

    Staff, inspectors and admins (the back office, /office) enrol their second factor (TOTP) at their first sign-in, before any staff page."""
    from web.accounts.people import add_user

    settings = _settings()
    if password is None:
        if not sys.stdin.isatty():
            raise click.UsageError("give --password or EKP_NEW_USER_PASSWORD when not on a terminal")
        password = getpass.getpass("Password: ")
    try:
        user = add_user(settings, role=role, email=email, first_name=first_name, last_name=last_name, password=password)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"added {role} {user.email} (id {user.id})")
    if role in ("staff", "inspector", "admin"):
        click.echo("two-factor sign-in (R-AUTH-3): they enrol at their first sign-in — after the password, the page "
                   "shows a QR code for an authenticator app, then ten recovery codes (shown once)")


@main.group()
def demo() -> None:
    """Demo data for a first look."""


@demo.command("load")
def demo_load() -> None:
    """Add demo passengers, staff and an inspector (idempotent)."""
    from web.simulators import demo as demo_data
    from web.platform.migrate import upgrade

    settings = _settings()
    upgrade(settings)
    for line in demo_data.load(settings):
        click.echo(line)


@main.group()
def cards() -> None:
    """The operator's card registry."""


@cards.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
def cards_import(csv_file: str) -> None:
    """Import or update the card registry from the operator's CSV export (all rows or none)."""
    from pathlib import Path

    from web.platform.db import make_engine, transaction
    from web.cards.service import import_registry

    settings = _settings()
    raw = Path(csv_file).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise click.ClickException("the file is not UTF-8 text; export it as UTF-8 CSV") from None
    engine = make_engine(settings.database_url)
    try:
        with transaction(engine) as session:
            report = import_registry(session, settings, text)
            if not report.ok:
                session.rollback()
    finally:
        engine.dispose()
    if not report.ok:
        click.echo(f"nothing imported: {len(report.problems)} bad row(s) in {csv_file}", err=True)
        for problem in report.problems:
            click.echo(f"  line {problem.line}: {problem.reason}", err=True)
        sys.exit(1)
    click.echo(f"cards imported from {csv_file}: {report.added} added, {report.updated} updated, "
               f"{report.unchanged} unchanged")


@cards.command("expire")
def cards_expire() -> None:
    """Card applications and e-purse cards (issue 16): invalidate cards not collected in 30 days (R-KKM-4),
    send the expiry and entitlement-end reminders (R-KKM-5, R-KKM-6), delete old photos and scans.
    Idempotent; safe on many nodes at once."""
    from web.card_applications.service import run_card_jobs
    from web.platform.db import make_engine

    settings = _settings()
    engine = make_engine(settings.database_url)
    try:
        with _recorded(settings, "cards"):
            report = run_card_jobs(engine, settings)
        click.echo(str(report))
    finally:
        engine.dispose()


@main.group()
def billing() -> None:
    """Automatic monthly charges (5+1)."""


@billing.command("run")
def billing_run() -> None:
    """Charge every month that is due now; idempotent, safe to run on many nodes at once."""
    import anyio

    from web.five_plus_one.billing import charge_due_months
    from web.platform.db import make_engine
    from web.platform.gateway import build_payments
    from web.purposes import payment_purposes

    settings = _settings()
    purposes = payment_purposes(settings)  # what each paid month (or other payment) settles (R-PAY-1)

    async def run() -> str:
        payments = build_payments(settings)
        if payments.sandbox is not None:
            await payments.sandbox.start()
        engine = make_engine(settings.database_url)
        try:
            report = await charge_due_months(engine, payments.gateway, purposes, settings)
        finally:
            engine.dispose()  # (tests run commands in-process: no connection left for the garbage collector)
            if payments.sandbox is not None:
                await payments.sandbox.stop()
            await payments.gateway.aclose()
        return str(report)

    with _recorded(settings, "billing"):
        click.echo(anyio.run(run))


@main.group("payments")
def payments_group() -> None:
    """Payments at the gateway."""


@payments_group.command("reconcile")
@click.option("--older-than", default=600, show_default=True, help="Seconds a payment must have been pending.")
def payments_reconcile(older_than: int) -> None:
    """Ask the gateway about payments left pending and apply what it says (idempotent); ask again for
    refunds still owed."""
    import anyio

    from web.platform.db import make_engine
    from web.platform.gateway import build_payments
    from web.payment_records.reconcile import reconcile_pending_payments
    from web.purposes import payment_purposes

    settings = _settings()
    purposes = payment_purposes(settings)  # what each payment settles or reverses (R-PAY-1)

    async def run() -> str:
        payments = build_payments(settings)
        if payments.sandbox is not None:
            await payments.sandbox.start()
        engine = make_engine(settings.database_url)
        try:
            return str(await reconcile_pending_payments(engine, payments.gateway, purposes,
                                                         older_than_seconds=older_than))
        finally:
            engine.dispose()
            if payments.sandbox is not None:
                await payments.sandbox.stop()
            await payments.gateway.aclose()

    with _recorded(settings, "reconcile"):
        click.echo(anyio.run(run))


@main.group()
def mail() -> None:
    """The e-mail outbox."""


@mail.command("send")
def mail_send() -> None:
    """Deliver due mail from the outbox over EKP_SMTP_URL (for cron)."""
    import anyio

    from web.platform.db import make_engine
    from web.platform.mail import SmtpSender, deliver_outbox

    settings = _settings()
    if not settings.smtp_url:
        raise click.ClickException("EKP_SMTP_URL is not set; mail stays in the outbox")
    engine = make_engine(settings.database_url)
    try:
        with _recorded(settings, "mail"):
            sent, failed = anyio.run(deliver_outbox, engine, SmtpSender(settings.smtp_url, settings.mail_from), 50,
                                     timedelta(hours=settings.mail_retry_hours))
    finally:
        engine.dispose()
    click.echo(f"mail sent: {sent}, not delivered: {failed} (retried for {settings.mail_retry_hours} h after queueing, "
               "then listed by `ekp mail failed`)")


@mail.command("failed")
@click.option("--limit", type=click.IntRange(1, 10_000), default=200, show_default=True)
def mail_failed(limit: int) -> None:
    """Mail given up (undelivered for EKP_MAIL_RETRY_HOURS, a link no longer usable, or a bad address), newest
    first: when it was queued and given up, attempts, recipient, subject and why."""
    from web.platform.db import make_engine

    settings = _settings()
    engine = make_engine(settings.database_url)
    try:
        _print_failed_mail(engine, limit)
    finally:
        engine.dispose()


def _print_failed_mail(engine, limit: int) -> None:
    from sqlalchemy import select
    from sqlmodel import Session, col

    from web.platform.models import OutboxMail

    with Session(engine) as session:
        mails = list(session.scalars(select(OutboxMail).where(col(OutboxMail.failed_at).is_not(None))
                                     .order_by(col(OutboxMail.failed_at).desc(), col(OutboxMail.id).desc())
                                     .limit(limit)))
        if not mails:
            click.echo("no failed mail")
            return
        for mail in mails:
            queued = clock.to_local(mail.created_at).strftime("%Y-%m-%d %H:%M")
            failed_at = clock.to_local(mail.failed_at).strftime("%Y-%m-%d %H:%M")  # type: ignore[arg-type]
            click.echo(f"#{mail.id}\tqueued {queued}\tfailed {failed_at}\tattempts {mail.attempts}\t{mail.to_address}\t"
                       f"{mail.subject}\t{mail.last_error or ''}")


@main.group()
def devices() -> None:
    """Bus validators and parking meters of the e-purse card (the device API)."""


@devices.command("add")
@click.option("--kind", type=click.Choice(["validator", "parking-meter"]), required=True)
@click.option("--name", required=True, help="Where it is, e.g. the bus number or the meter's street.")
def devices_add(kind: str, name: str) -> None:
    """Register a device; prints its id and its secret once (only a hash of the secret is kept)."""
    from web.platform.db import make_engine, transaction
    from web.purse.service import add_device

    settings = _settings()
    engine = make_engine(settings.database_url)
    with transaction(engine) as session:
        device, credential = add_device(session, kind, name)
    engine.dispose()
    click.echo(f"added {kind} {device.name!r} (id {device.id})")
    click.echo(f"credential (shown once): {credential}")
    click.echo(f"the device sends: Authorization: Bearer {credential}")


@devices.command("disable")
@click.argument("device_id", type=int)
def devices_disable(device_id: int) -> None:
    """Take a device out of service (lost, stolen, replaced): its credential is refused from now on."""
    from web.platform.db import make_engine, transaction
    from web.purse.service import disable_device

    settings = _settings()
    engine = make_engine(settings.database_url)
    with transaction(engine) as session:
        disabled = disable_device(session, device_id)
    engine.dispose()
    if not disabled:
        raise click.ClickException(f"no active device with id {device_id}")
    click.echo(f"device {device_id} disabled; its credential is refused from now on")


@main.group()
def tickets() -> None:
    """Mobile tickets: the issuer keys every node shares (EKP_TICKET_KEYS)."""


@tickets.command("new-key")
@click.option("--id", "key_id", type=click.IntRange(0, 0xFFFF), required=True,
              help="The new key's id (0-65535), different from every key still in EKP_TICKET_KEYS.")
def tickets_new_key(key_id: int) -> None:
    """Print a new issuer key as an EKP_TICKET_KEYS entry `<id>:<64 hex digits>` (keep it secret).

    Rotation: append the entry to EKP_TICKET_KEYS on every node (it verifies), then move it to the
    front (it signs); drop the old entry once the tickets it signed have expired (40 days).
    """
    from domain import ticket_record as tr

    key = tr.generate_private_key()
    click.echo(f"{key_id}:{key.private_numbers().private_value:064x}")
@devices.command("flagged")
@click.option("--days", type=click.IntRange(1, 3650), default=7, show_default=True,
              help="Events received in the last DAYS days.")
def devices_flagged(days: int) -> None:
    """Device events flagged for staff (R-VAL-8): taps older than the offline window on arrival (`stale`: check
    the device's clock) and taps on a card already blocked at their time, uploaded later (`blocked_card`)."""
    from datetime import timedelta

    from web.platform.db import make_engine, transaction
    from web.purse.service import flagged_events

    settings = _settings()
    engine = make_engine(settings.database_url)
    with transaction(engine) as session:
        events = flagged_events(session, since=clock.now() - timedelta(days=days))
    engine.dispose()
    for e in events:
        event_at = clock.to_local(e.event_at).isoformat(timespec="seconds") if e.event_at else "-"
        click.echo(f"{clock.to_local(e.received_at).isoformat(timespec='seconds')}  {e.flag:<12}  "
                   f"device {e.device_id} ({e.device_name})  event {e.event_id}  card {e.card_number or '-'}  "
                   f"device time {event_at}  answered {e.code}")
    click.echo(f"{len(events)} flagged event(s) in the last {days} day(s)")


if __name__ == "__main__":  # pragma: no cover
    main()


@main.group()
def office() -> None:
    """The back office (/office)."""


@office.command("rollup")
def office_rollup() -> None:
    """Roll up the dashboards' figures of closed days (Europe/Warsaw) that are missing or stale (late data,
    e.g. an offline validator's batch for a past day). Idempotent; safe on many nodes at once; run hourly."""
    from web.platform.db import make_engine
    from web.office.rollup import refresh

    settings = _settings()
    with _recorded(settings, "rollup"):
        engine = make_engine(settings.database_url)
        try:
            click.echo(str(refresh(engine)))
        finally:
            engine.dispose()
