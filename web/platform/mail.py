"""E-mail through an outbox: a request only writes a row; delivery happens after, with retries.

With `EKP_SMTP_URL` unset the mail stays in the outbox and the dev-only page `/dev/mail` shows it.
Mail is rendered when queued (`queue_mail`), or when read for delivery or display (`deferred_mail`).
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

from typing import Any

import aiosmtplib
import anyio
import sqlalchemy as sa
from sqlalchemy import event, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col

from domain.accounts import sender_address
from domain.operator import OperatorProfile
from web.platform import clock
from web.platform import i18n
from web.platform.db import affected
from web.platform.models import OutboxMail
from web.platform.templating import environment

log = logging.getLogger("ekp.mail")
# Undelivered mail is retried (back-off up to an hour) this long after it was queued, then marked failed
# (`failed_at`, `ekp mail failed`); EKP_MAIL_RETRY_HOURS sets it. A mail whose single-use link can no longer
# be used (used, or the account it would activate is already active) is given up at once.
DEFAULT_RETRY_FOR = timedelta(hours=72)


def _render(template: str, language: str, context: dict[str, Any]) -> tuple[str, str, str]:
    """Subject, text and HTML of `web/platform/templates/mail/<template>.*` in `language`."""
    env = environment()
    token = i18n.current_language.set(language)
    try:
        subject = env.get_template(f"mail/{template}.subject.txt").render(**context).strip()
        text = env.get_template(f"mail/{template}.txt").render(**context)
        html = env.get_template(f"mail/{template}.html").render(subject=subject, **context)
    finally:
        i18n.current_language.reset(token)
    return subject, text, html


def erase_mail_to(session: Session, address: str) -> None:
    """GDPR erasure: mail to `address`, sent or not, leaves the outbox."""
    from sqlalchemy import delete

    session.execute(delete(OutboxMail).where(col(OutboxMail.to_address) == address))


def mail_operator(profile: OperatorProfile) -> dict[str, str]:
    """What a mail shows of the operator (its header and footer), as plain values: the caller passes the profile
    of the settings loaded at start-up, and a deferred mail keeps these with its context."""
    return {"name": profile.name, "short_name": profile.short_name, "primary_colour": profile.primary_colour,
            "help_phone": profile.help_phone, "help_email": profile.help_email}


def queue_mail(session: Session, to: str, template: str, language: str = "pl", *, operator: OperatorProfile,
               **context: object) -> OutboxMail:
    """Render `web/platform/templates/mail/<template>.{txt,html}` in `language` and put it in the outbox;
    `operator`: the settings' operator profile (`settings.profile`), shown in the mail."""
    subject, text, html = _render(template, language, {**context, "mail_operator": mail_operator(operator)})
    mail = OutboxMail(to_address=to, subject=subject, text_body=text, html_body=html)
    session.add(mail)
    return mail


# --- mail rendered when it is read -----------------------------------------------------------------
#
# A billing run queues a confirmation per month; rendering three templates for each inside its
# transaction cost more than the rest of the month's work. A deferred mail is an outbox row with the
# template's name, the language and a JSON context (plain values: dicts, lists, str, int, dates), and
# empty subject and bodies; loading the row (the SMTP sender, /dev/mail, the tests' outbox) renders it
# (the load hook below, on OutboxMail). Templates read the context's dicts as objects: `user.first_name`.

def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    raise TypeError(f"not JSON serialisable in a mail context: {type(value).__name__}")


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        if "$date" in obj:
            return date.fromisoformat(obj["$date"])
        if "$datetime" in obj:
            return datetime.fromisoformat(obj["$datetime"])
    return obj


def deferred_mail(to: str, template: str, language: str = "pl", *, operator: OperatorProfile,
                  **context: Any) -> dict[str, Any]:
    """A `mail_outbox` row for `queue_deferred_mails`: rendered when read, not now (`operator` as for `queue_mail`,
    kept in the row's context)."""
    now = clock.now()
    context = {**context, "mail_operator": mail_operator(operator)}
    return {"to_address": to, "subject": "", "text_body": "", "html_body": "", "created_at": now, "attempts": 0,
            "next_attempt_at": now, "template": template, "language": language,
            "context": json.dumps(context, default=_encode, separators=(",", ":"), ensure_ascii=False)}


def queue_deferred_mails(session: Session, rows: list[dict[str, Any]]) -> None:
    """Put `deferred_mail` rows in the outbox: one INSERT."""
    if rows:
        session.execute(insert(OutboxMail.__table__), rows)  # type: ignore[attr-defined]


def render_deferred(mail: OutboxMail) -> None:
    """Fill a deferred mail's subject and bodies (not written back: the row stays as queued). A mail that
    cannot be rendered keeps them empty (logged); `deliver_outbox` then counts a failed attempt for it
    instead of sending an empty mail, and the other mails go on."""
    try:
        context = json.loads(mail.context or "{}", object_hook=_decode)
        subject, text, html = _render(mail.template, mail.language or "pl", context)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - one broken mail must not stop loading the others
        log.exception("mail %s: template %s could not be rendered", mail.id, mail.template)
        return
    for name, value in (("subject", subject), ("text_body", text), ("html_body", html)):
        set_committed_value(mail, name, value)


@event.listens_for(OutboxMail, "load")
def _render_deferred_mail(mail: OutboxMail, _context: object) -> None:
    """A deferred mail is rendered whenever its row is loaded (registered here, beside the renderer)."""
    if mail.template is not None and not mail.text_body:
        render_deferred(mail)


def _retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


def recipient_address(text: str) -> Address:
    """A mail's recipient as exactly one header address: never a list (`a,b@x.pl`), a display name
    (`a<b@x.pl`) or anything with control characters; ValueError otherwise (the mail is then given up)."""
    from domain.accounts import email_problem

    if email_problem(text):
        raise ValueError("not one plain e-mail address")
    address = Address(addr_spec=text)
    if address.addr_spec != text:
        raise ValueError("not one plain e-mail address")
    return address


class SmtpSender:
    def __init__(self, url: str, sender: str) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.hostname = parts.hostname or "localhost"
        self.port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.use_tls = parts.scheme == "smtps"
        self.start_tls = True if parts.scheme == "smtp+starttls" else False
        self.timeout = float(query.get("timeout", ["10"])[0])
        self.sender = sender_address(sender)

    async def send(self, mail: OutboxMail) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = recipient_address(mail.to_address)
        message["Subject"] = mail.subject
        message["Message-ID"] = make_msgid(domain="ekp")
        message.set_content(mail.text_body)
        message.add_alternative(mail.html_body, subtype="html")
        await aiosmtplib.send(
            message,
            hostname=self.hostname,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.use_tls,
            start_tls=self.start_tls,
            timeout=self.timeout,
        )


def _give_up(session: Session, mail_id: int, reason: str) -> bool:
    """Mark one undelivered mail failed (once, whichever worker gets there first)."""
    return affected(session.execute(
        update(OutboxMail)
        .where(col(OutboxMail.id) == mail_id, col(OutboxMail.sent_at).is_(None), col(OutboxMail.failed_at).is_(None))
        .values(failed_at=clock.now(), last_error=reason[:500])
        .execution_options(synchronize_session=False)
    )) == 1


# The single-use links the outbox delivers (OutboxMail.email_token_id) and their accounts: the accounts area's
# tables (web.accounts.models), named here as the outbox's foreign key names them, since the platform imports no
# area. The outbox reads whether a link can still be used and stamps when its mail left (R-ACC-3).
_LINKS = sa.table("email_tokens", sa.column("id", sa.Integer()), sa.column("user_id", sa.Integer()),
                  sa.column("purpose", sa.String()), sa.column("used_at", sa.DateTime()),
                  sa.column("sent_at", sa.DateTime()))
_ACCOUNTS = sa.table("users", sa.column("id", sa.Integer()), sa.column("activated_at", sa.DateTime()))


def give_up_stale(session: Session, retry_for: timedelta) -> int:
    """Mark failed the mail that no longer means anything: queued longer than `retry_for` ago, or carrying a
    single-use link that can no longer be used. Returns how many."""
    now = clock.now()
    waiting = (col(OutboxMail.sent_at).is_(None), col(OutboxMail.failed_at).is_(None))
    given_up = 0
    old = session.execute(select(col(OutboxMail.id), col(OutboxMail.to_address), col(OutboxMail.attempts), col(OutboxMail.last_error))
                          .where(*waiting, col(OutboxMail.created_at) <= now - retry_for)).all()
    hours = int(retry_for.total_seconds() // 3600)
    for mail_id, _to, attempts, last_error in old:
        if _give_up(session, mail_id, f"given up after {attempts} attempts in {hours} h; last error: {last_error or '-'}"):
            given_up += 1
            log.error("mail %s given up after %s attempts in %s h (see `ekp mail failed`): %s", mail_id, attempts, hours,
                      last_error)
    pointless = session.execute(
        select(col(OutboxMail.id))
        .join(_LINKS, _LINKS.c.id == OutboxMail.email_token_id)
        .join(_ACCOUNTS, _ACCOUNTS.c.id == _LINKS.c.user_id)
        .where(*waiting, _LINKS.c.used_at.is_not(None)
               | ((_LINKS.c.purpose == "activate") & _ACCOUNTS.c.activated_at.is_not(None)))
    ).scalars().all()
    for mail_id in pointless:
        if _give_up(session, mail_id, "given up: its link is no longer usable (already used, or the account is active)"):
            given_up += 1
            log.info("mail %s given up: its link is no longer usable", mail_id)
    return given_up


def _claim_due(engine: Engine, limit: int, retry_for: timedelta = DEFAULT_RETRY_FOR) -> list[OutboxMail]:
    with Session(engine, expire_on_commit=False) as session:
        if give_up_stale(session, retry_for):
            session.commit()
        query = (
            select(OutboxMail)
            .where(col(OutboxMail.sent_at).is_(None), col(OutboxMail.failed_at).is_(None), col(OutboxMail.next_attempt_at) <= clock.now())
            .order_by(col(OutboxMail.id))
            .limit(limit)
        )
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        mails = list(session.scalars(query))
        # Push the next attempt forward before sending, so another worker does not pick it up meanwhile.
        # Compare-and-set on the attempt count: where rows cannot be locked (SQLite), two workers that
        # read the same mail still send it once.
        claimed = []
        for mail in mails:
            won = affected(session.execute(
                update(OutboxMail)
                .where(col(OutboxMail.id) == mail.id, col(OutboxMail.attempts) == mail.attempts, col(OutboxMail.sent_at).is_(None))
                .values(attempts=mail.attempts + 1, next_attempt_at=clock.now() + _retry_delay(mail.attempts + 1))
                .execution_options(synchronize_session=False)
            ))
            if won == 1:
                mail.attempts += 1
                claimed.append(mail)
        session.commit()
        return claimed


def _record(engine: Engine, mail_id: int, error: str | None, give_up: bool = False) -> None:
    with Session(engine) as session:
        mail = session.get(OutboxMail, mail_id)
        if mail is None:
            return
        if give_up and error is not None:
            _give_up(session, mail_id, f"given up: {error}")
            session.commit()
            return
        if error is None:
            mail.sent_at = clock.now()
            mail.last_error = None
            if mail.email_token_id is not None:
                # "valid for 3 hours from sending": from when the mail really left, not when it was queued.
                session.execute(update(_LINKS).where(_LINKS.c.id == mail.email_token_id, _LINKS.c.used_at.is_(None))
                                .values(sent_at=mail.sent_at))
        else:
            mail.last_error = error[:500]
        session.commit()


async def deliver_outbox(engine: Engine, sender: SmtpSender, limit: int = 50,
                         retry_for: timedelta = DEFAULT_RETRY_FOR) -> tuple[int, int]:
    """Send what is due; returns (sent, failed). Safe to run on many nodes at once. Mail still undelivered
    `retry_for` after it was queued (or whose link can no longer be used) is marked failed first."""
    mails = await anyio.to_thread.run_sync(_claim_due, engine, limit, retry_for)
    sent = failed = 0
    for mail in mails:
        if mail.template is not None and not mail.text_body:
            failed += 1
            await anyio.to_thread.run_sync(_record, engine, mail.id, f"template {mail.template} could not be rendered")
            continue
        try:
            await sender.send(mail)
        except ValueError as exc:  # not one plain address: retrying cannot help
            failed += 1
            log.error("mail %s not sent, bad recipient address: %s", mail.id, exc)
            await anyio.to_thread.run_sync(_record, engine, mail.id, f"bad recipient address: {exc}", True)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            failed += 1
            log.warning("mail %s not delivered (attempt %s): %s", mail.id, mail.attempts, type(exc).__name__)
            await anyio.to_thread.run_sync(_record, engine, mail.id, f"{type(exc).__name__}: {exc}")
        else:
            sent += 1
            await anyio.to_thread.run_sync(_record, engine, mail.id, None)
    return sent, failed
