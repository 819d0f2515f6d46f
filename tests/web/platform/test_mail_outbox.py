"""The mail outbox (SQLite and PostgreSQL): delivery, retry with back-off while SMTP is down, and no
mail sent twice when two workers deliver at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import aiosmtplib
from sqlalchemy import select

from web.platform import clock
from web.platform.db import transaction
from web.platform.mail import _claim_due, deliver_outbox, queue_mail
from web.platform.models import OutboxMail
from web.accounts.models import User
from web.platform.settings import demo_operator


class FakeSmtp:
    def __init__(self, fail: int = 0) -> None:
        self.sent: list[str] = []
        self.fail = fail

    async def send(self, mail: OutboxMail) -> None:
        if self.fail:
            self.fail -= 1
            raise aiosmtplib.SMTPConnectError("down")
        self.sent.append(mail.to_address)


def _queue(engine, users) -> None:  # type: ignore[no-untyped-def]
    users.create("poczta@example.pl")
    with transaction(engine) as session:
        user = session.scalars(select(User)).one()
        queue_mail(session, user.email, "activate", operator=demo_operator(), user=user, link="http://x/activate/abc", hours=3)


def test_mail_is_delivered_once(engine, users, db):
    _queue(engine, users)
    smtp = FakeSmtp()
    assert asyncio.run(deliver_outbox(engine, smtp)) == (1, 0)
    assert asyncio.run(deliver_outbox(engine, smtp)) == (0, 0)
    assert smtp.sent == ["poczta@example.pl"]
    assert db.one(OutboxMail).sent_at is not None


def test_mail_is_retried_with_back_off_while_smtp_is_down(engine, users, db):
    _queue(engine, users)
    smtp = FakeSmtp(fail=1)
    assert asyncio.run(deliver_outbox(engine, smtp)) == (0, 1)
    assert asyncio.run(deliver_outbox(engine, smtp)) == (0, 0)  # not due yet
    clock.travel(timedelta(minutes=1))
    assert asyncio.run(deliver_outbox(engine, smtp)) == (1, 0)
    mail = db.one(OutboxMail)
    assert mail.attempts == 2 and mail.sent_at is not None


def test_a_claimed_mail_is_not_claimed_again_by_another_worker(engine, users):
    _queue(engine, users)
    first = _claim_due(engine, 10)
    second = _claim_due(engine, 10)
    assert len(first) + len(second) == 1


def test_r_acc_3_link_validity_counts_from_delivery_not_from_queueing(browser, engine, db):
    """SMTP down for 2 hours: the 3-hour window starts when the activation mail really leaves."""
    from tests.conftest import registration_form
    from web.accounts.models import EmailToken

    browser.register(**registration_form(email="opozniony@example.pl"))
    clock.travel(timedelta(hours=2))
    assert asyncio.run(deliver_outbox(engine, FakeSmtp())) == (1, 0)
    token = db.one(EmailToken)
    assert token.sent_at >= clock.now() - timedelta(minutes=1)
    link = db.one(OutboxMail).text_body.split("/activate/")[1].split()[0]
    clock.travel(timedelta(hours=2, minutes=59))
    assert browser.get(f"/activate/{link}").status_code == 200  # 4 h 59 min after queueing, still valid


class KeepingSmtp(FakeSmtp):
    def __init__(self) -> None:
        super().__init__()
        self.mails: list[tuple[str, str, str]] = []

    async def send(self, mail: OutboxMail) -> None:
        self.mails.append((mail.subject, mail.text_body, mail.html_body))
        await super().send(mail)


def test_deferred_mail_is_rendered_when_delivered_and_in_the_dev_outbox(engine, db, browser):
    """A billing run queues its mails unrendered (template, language, JSON context); the SMTP sender and
    /dev/mail render them, in the mail's language, with its dates."""
    from datetime import date

    from web.platform.mail import deferred_mail, queue_deferred_mails

    month = {"starts_on": date(2026, 12, 3), "ends_on": date(2027, 1, 1), "price": 8000}
    with transaction(engine) as session:
        queue_deferred_mails(session, [
            deferred_mail("jan@example.pl", "five_plus_one", "pl", operator=demo_operator(), user={"first_name": "Jan"}, notice="month_paid",
                          month=month, schedule=None, link="http://x/5plus1"),
            deferred_mail("ann@example.pl", "five_plus_one", "en", operator=demo_operator(), user={"first_name": "Ann"}, notice="month_paid",
                          month=month, schedule=[(2, date(2026, 12, 3), date(2027, 1, 1), 8000)], link="http://x/5plus1"),
        ])
    stored = db.all(OutboxMail)
    assert [m.template for m in stored] == ["five_plus_one", "five_plus_one"]
    smtp = KeepingSmtp()
    assert asyncio.run(deliver_outbox(engine, smtp)) == (2, 0)
    (subject, text, html), (subject_en, text_en, _) = smtp.mails
    assert subject == "Kolejny bilet 5+1 opłacony" and "Dzień dobry, Jan!" in text
    assert "03.12.2026 – 01.01.2027, 80,00" in text and "80,00" in html and "Harmonogram" not in text
    assert subject_en != subject and "Ann" in text_en and "  2. 03.12.2026 – 01.01.2027" in text_en
    local = {"x-test-client-ip": "127.0.0.1"}  # /dev/mail is served only to this machine
    page = browser.get("/dev/mail", headers=local)
    assert page.status_code == 200 and "Dzień dobry, Jan!" in page.text
    assert "Dzień dobry, Jan!" in browser.get(f"/dev/mail/{stored[0].id}", headers=local).text
    with engine.connect() as conn:  # the row itself stays as queued
        assert conn.execute(select(OutboxMail.__table__.c.text_body)).scalars().all() == ["", ""]


def test_a_deferred_mail_that_cannot_be_rendered_is_not_sent_empty_and_does_not_hold_back_others(engine, db):
    from web.platform.mail import deferred_mail, queue_deferred_mails

    with transaction(engine) as session:
        queue_deferred_mails(session, [deferred_mail("a@example.pl", "no_such_template", "pl", operator=demo_operator()),
                                       deferred_mail("b@example.pl", "five_plus_one", "pl", operator=demo_operator(), user={"first_name": "B"},
                                                     notice="month_paid", month=None, schedule=None, link="http://x")])
    smtp = FakeSmtp()
    assert asyncio.run(deliver_outbox(engine, smtp)) == (1, 1)
    assert smtp.sent == ["b@example.pl"]
    broken = db.one(OutboxMail, OutboxMail.to_address == "a@example.pl")
    assert broken.sent_at is None and "no_such_template" in broken.last_error
