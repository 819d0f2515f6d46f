"""E-mail through an outbox: a request only writes a row; delivery happens after, with retries.

With `EKP_SMTP_URL` unset the mail stays in the outbox and the dev-only page `/dev/mail` shows it.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
import anyio
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from web import clock, i18n
from web.models import EmailToken, OutboxMail
from web.templating import environment

log = logging.getLogger("ekp.mail")
MAX_ATTEMPTS = 12


def queue_mail(session: Session, to: str, template: str, language: str = "pl", **context: object) -> OutboxMail:
    """Render `templates/mail/<template>.{txt,html}` in `language` and put it in the outbox."""
    env = environment()
    token = i18n.current_language.set(language)
    try:
        subject = env.get_template(f"mail/{template}.subject.txt").render(**context).strip()
        text = env.get_template(f"mail/{template}.txt").render(**context)
        html = env.get_template(f"mail/{template}.html").render(subject=subject, **context)
    finally:
        i18n.current_language.reset(token)
    mail = OutboxMail(to_address=to, subject=subject, text_body=text, html_body=html)
    session.add(mail)
    return mail


def _retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


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
        self.sender = sender

    async def send(self, mail: OutboxMail) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = mail.to_address
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


def _claim_due(engine: Engine, limit: int) -> list[OutboxMail]:
    with Session(engine, expire_on_commit=False) as session:
        query = (
            select(OutboxMail)
            .where(OutboxMail.sent_at.is_(None), OutboxMail.next_attempt_at <= clock.now(), OutboxMail.attempts < MAX_ATTEMPTS)  # type: ignore[union-attr]
            .order_by(OutboxMail.id)  # type: ignore[arg-type]
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
            won = session.execute(
                update(OutboxMail)
                .where(OutboxMail.id == mail.id, OutboxMail.attempts == mail.attempts, OutboxMail.sent_at.is_(None))  # type: ignore[union-attr]
                .values(attempts=mail.attempts + 1, next_attempt_at=clock.now() + _retry_delay(mail.attempts + 1))
                .execution_options(synchronize_session=False)
            ).rowcount
            if won == 1:
                mail.attempts += 1
                claimed.append(mail)
        session.commit()
        return claimed


def _record(engine: Engine, mail_id: int, error: str | None) -> None:
    with Session(engine) as session:
        mail = session.get(OutboxMail, mail_id)
        if mail is None:
            return
        if error is None:
            mail.sent_at = clock.now()
            mail.last_error = None
            if mail.email_token_id is not None:
                # "valid for 3 hours from sending": from when the mail really left, not when it was queued.
                session.execute(update(EmailToken).where(EmailToken.id == mail.email_token_id, EmailToken.used_at.is_(None))  # type: ignore[union-attr]
                                .values(sent_at=mail.sent_at))
        else:
            mail.last_error = error[:500]
        session.commit()


async def deliver_outbox(engine: Engine, sender: SmtpSender, limit: int = 50) -> tuple[int, int]:
    """Send what is due; returns (sent, failed). Safe to run on many nodes at once."""
    mails = await anyio.to_thread.run_sync(_claim_due, engine, limit)
    sent = failed = 0
    for mail in mails:
        try:
            await sender.send(mail)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            failed += 1
            log.warning("mail %s not delivered (attempt %s): %s", mail.id, mail.attempts, type(exc).__name__)
            await anyio.to_thread.run_sync(_record, engine, mail.id, f"{type(exc).__name__}: {exc}")
        else:
            sent += 1
            await anyio.to_thread.run_sync(_record, engine, mail.id, None)
    return sent, failed
