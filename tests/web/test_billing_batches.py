"""Billing runs over many subscriptions at once (the batch path: Core statements, mails queued unrendered,
on PostgreSQL a batch applied while the next is charged), on SQLite and PostgreSQL, against the embedded
sandbox. Subscriptions are seeded by `benchmarks.billing_run.seed_due_months` (month 1 paid, month 2 due)."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update

from tests.conftest import Outbox
from tests.web.test_payments_web import Shop, settings_env, shop  # noqa: F401  (fixtures)
from web import clock
from web.billing import charge_due_months
from web.models import Card, Payment, Subscription5p1, SubscriptionMonthRow, Ticket

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PAID_SUBJECT = "Kolejny bilet 5+1 opłacony"
FAILED_SUBJECT = "Nie udało się pobrać opłaty za bilet 5+1"


def _seed(shop: Shop, count: int, **options: Any) -> list[int]:
    sys.path.insert(0, str(PROJECT_ROOT))
    from benchmarks.billing_run import seed_due_months

    return seed_due_months(shop.engine, shop.sandbox.store, count, **options)


def _run(shop: Shop) -> Any:
    return shop.run(charge_due_months, shop.engine, shop.sandbox.gateway(notification_url=""),
                    shop.app.state.settings, batch=4, concurrency=3)


def _month(db: Any, sub_id: int, index: int) -> SubscriptionMonthRow:
    return db.one(SubscriptionMonthRow, SubscriptionMonthRow.subscription_id == sub_id,
                  SubscriptionMonthRow.month_index == index)


def test_r_5p1_6_batches_mixing_paid_declined_and_no_longer_eligible_cards(shop: Shop, db, mails: Outbox) -> None:
    paying = _seed(shop, 9)
    declining = _seed(shop, 3, behaviour="renewals_fail", email_prefix="odmowa")
    month2_start = _month(db, paying[0], 2).starts_on

    report = _run(shop)
    assert (report.charged, report.declined, report.unanswered) == (9, 3, 0)
    assert shop.sandbox.count_charges() == 9 and db.count(Ticket) == 9 and db.count(Payment) == 12
    for sub_id in paying:
        assert _month(db, sub_id, 2).state == "paid"
    for sub_id in declining:
        month = _month(db, sub_id, 2)
        assert month.state == "failed" and month.next_attempt_on == clock.today() + timedelta(days=1)
    paid_mail = mails.last(f"bench{paying[0]}@example.pl")
    assert paid_mail.subject == PAID_SUBJECT
    assert f"{month2_start:%d.%m.%Y} – {month2_start + timedelta(days=29):%d.%m.%Y}, 80,00" in paid_mail.text
    assert mails.last(f"odmowa{declining[0]}@example.pl").subject == FAILED_SUBJECT

    again = _run(shop)  # the same day: nothing is due any more, nothing is charged twice
    assert (again.charged, again.declined) == (0, 0)
    assert shop.sandbox.count_charges() == 9 and db.count(Payment) == 12

    # Month 3's window: one card's resident status ends before month 3, another card is blocked.
    month3_start = month2_start + timedelta(days=30)
    lapsed, blocked = paying[0], paying[1]
    with shop.engine.begin() as conn:
        conn.execute(update(Card.__table__).where(Card.__table__.c.id == lapsed)
                     .values(resident_until=month3_start - timedelta(days=1)))
        conn.execute(update(Card.__table__).where(Card.__table__.c.id == blocked).values(blocked=True))
    clock.travel(timedelta(days=(month3_start - timedelta(days=3) - clock.today()).days))

    report = _run(shop)
    assert report.charged == 7 and report.declined == 0
    assert shop.sandbox.count_charges() == 16 and db.count(Ticket) == 16
    for sub_id in paying[2:]:
        assert _month(db, sub_id, 3).state == "paid"
    for sub_id in (lapsed, blocked):
        sub = db.one(Subscription5p1, Subscription5p1.id == sub_id)
        assert (sub.status, sub.end_reason) == ("cancelled", "not_eligible")
        assert db.count(SubscriptionMonthRow, SubscriptionMonthRow.subscription_id == sub_id) == 2
    for sub_id in declining:  # month 2 started unpaid: the cycle is broken, nothing more is charged
        sub = db.one(Subscription5p1, Subscription5p1.id == sub_id)
        assert (sub.status, sub.end_reason) == ("broken", "month_not_paid")
        assert mails.last(f"odmowa{sub_id}@example.pl").subject == "Cykl biletu 5+1 został przerwany"
    assert db.count(Payment, Payment.status == "paid") == 16 and db.count(Payment) == 19


def test_r_5p1_6_many_batches_each_month_charged_and_applied_once(shop: Shop, db) -> None:
    """Several batches on PostgreSQL overlap (one applied while the next is charged): every month is
    charged and applied exactly once, and the report adds up."""
    ids = _seed(shop, 23)
    report = _run(shop)
    assert report.subscriptions == 23 and report.charged == 23
    assert shop.sandbox.count_charges() == 23 and db.count(Ticket) == 23 and db.count(Payment) == 23
    assert db.count(Payment, Payment.applied_at.is_not(None)) == 23  # type: ignore[union-attr]
    assert all(_month(db, i, 2).state == "paid" for i in ids)
    assert _run(shop).charged == 0  # a second run the same day finds nothing due
