"""Billing runs over many subscriptions at once (the batch path: Core statements, mails queued unrendered,
on PostgreSQL a batch applied while the next is charged), on SQLite and PostgreSQL, against the embedded
sandbox. Subscriptions are seeded by `tests.support.seeds.seed_due_months` (the months before the due one
paid, one month due; every date from the domain's month rule)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from domain.five_plus_one import month_period
from tests.support import travel_to_day
from tests.conftest import Outbox
from tests.support.seeds import seed_due_months
from tests.support.shop import Shop, settings_env, shop, zl  # noqa: F401  (fixtures)
from web.platform import clock
from web.five_plus_one.billing import charge_due_months
from web.cards.models import Card
from web.five_plus_one.models import Subscription5p1, SubscriptionMonthRow
from web.payment_records.models import Payment
from web.tickets.models import Ticket

PAID_SUBJECT = "Kolejny bilet 5+1 opłacony"
FAILED_SUBJECT = "Nie udało się pobrać opłaty za bilet 5+1"


def _seed(shop: Shop, count: int, **options: Any) -> list[int]:
    return seed_due_months(shop.engine, shop.sandbox.store, count, **options)


def _run(shop: Shop) -> Any:
    return shop.run(charge_due_months, shop.engine, shop.sandbox.gateway(notification_url=""),
                    shop.app.state.purposes, shop.app.state.settings, batch=4, concurrency=3)


def _month(db: Any, sub_id: int, index: int) -> SubscriptionMonthRow:
    return db.one(SubscriptionMonthRow, SubscriptionMonthRow.subscription_id == sub_id,
                  SubscriptionMonthRow.month_index == index)


def _due(db: Any, sub_id: int) -> SubscriptionMonthRow:
    return db.one(SubscriptionMonthRow, SubscriptionMonthRow.subscription_id == sub_id,
                  SubscriptionMonthRow.state == "due")


def test_r_5p1_6_batches_mixing_paid_declined_and_no_longer_eligible_cards(shop: Shop, db, mails: Outbox) -> None:
    paying = _seed(shop, 9)
    declining = _seed(shop, 3, behaviour="renewals_fail", email_prefix="odmowa")
    due = _due(db, paying[0])  # month 2, or month 3 on the few days no month 2 starts in the charge window
    first_day = db.one(Subscription5p1, Subscription5p1.id == paying[0]).first_day
    assert (due.starts_on, due.ends_on) == month_period(first_day, 1, due.month_index)

    report = _run(shop)
    assert (report.charged, report.declined, report.unanswered) == (9, 3, 0)
    assert shop.sandbox.count_charges() == 9 and db.count(Ticket) == 9 and db.count(Payment) == 12
    for sub_id in paying:
        assert _month(db, sub_id, due.month_index).state == "paid"
    retry_on = clock.today() + timedelta(days=1)  # EKP_RETRY_EVERY_DAYS, while still before the month starts
    for sub_id in declining:
        month = _month(db, sub_id, due.month_index)
        assert month.state == "failed" and month.next_attempt_on == (retry_on if retry_on < due.starts_on else None)
    paid_mail = mails.last(f"bench{paying[0]}@example.pl")
    assert paid_mail.subject == PAID_SUBJECT
    assert f"{due.starts_on:%d.%m.%Y} – {due.ends_on:%d.%m.%Y}, {zl(due.price)}" in paid_mail.text
    assert mails.last(f"odmowa{declining[0]}@example.pl").subject == FAILED_SUBJECT

    again = _run(shop)  # the same day: nothing is due any more, nothing is charged twice
    assert (again.charged, again.declined) == (0, 0)
    assert shop.sandbox.count_charges() == 9 and db.count(Payment) == 12

    # The next month's window: one card's resident status ends before that month, another card is blocked.
    months_before = due.month_index
    next_start, next_end = month_period(first_day, 1, due.month_index + 1)
    assert next_start == due.ends_on + timedelta(days=1)
    lapsed, blocked = paying[0], paying[1]
    with shop.engine.begin() as conn:
        conn.execute(update(Card.__table__).where(Card.__table__.c.id == lapsed)
                     .values(resident_until=next_start - timedelta(days=1)))
        conn.execute(update(Card.__table__).where(Card.__table__.c.id == blocked).values(blocked=True))
    charge_days_before = shop.app.state.settings.charge_days_before
    travel_to_day(next_start - timedelta(days=charge_days_before))

    report = _run(shop)
    assert report.charged == 7 and report.declined == 0
    assert shop.sandbox.count_charges() == 16 and db.count(Ticket) == 16
    for sub_id in paying[2:]:
        month = _month(db, sub_id, due.month_index + 1)
        assert month.state == "paid" and (month.starts_on, month.ends_on) == (next_start, next_end)
    for sub_id in (lapsed, blocked):
        sub = db.one(Subscription5p1, Subscription5p1.id == sub_id)
        assert (sub.status, sub.end_reason) == ("cancelled", "not_eligible")
        assert db.count(SubscriptionMonthRow, SubscriptionMonthRow.subscription_id == sub_id) == months_before
    for sub_id in declining:  # the due month started unpaid: the cycle is broken, nothing more is charged
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
    assert all(db.count(SubscriptionMonthRow, SubscriptionMonthRow.subscription_id == i,
                        SubscriptionMonthRow.state != "paid") == 0 for i in ids)
    assert _run(shop).charged == 0  # a second run the same day finds nothing due


class SlowTpay:
    """The embedded sandbox behind Tpay-like latency (each call waits `latency` s first); notes how many
    calls are in flight at once."""

    def __init__(self, inner: Any, latency: float) -> None:
        self.inner, self.latency, self.in_flight, self.most = inner, latency, 0, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def _slow(self, call: Any, charge: Any) -> Any:
        import anyio

        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await anyio.sleep(self.latency)
            return await call(charge)
        finally:
            self.in_flight -= 1

    async def open_token_charge(self, charge: Any) -> Any:
        return await self._slow(self.inner.open_token_charge, charge)

    async def charge_token(self, charge: Any) -> Any:
        return await self._slow(self.inner.charge_token, charge)


def test_billing_charges_with_bounded_concurrency_so_tpays_latency_does_not_serialize_the_run(shop: Shop) -> None:
    """Issue 19: each month is two calls to Tpay; with EKP_BILLING_CONCURRENCY calls in flight at once a
    run of 24 months at 0.25 s a call takes about 2 x 24 / 8 x 0.25 = 1.5 s, not 2 x 24 x 0.25 = 12 s."""
    import time

    _seed(shop, 24)
    slow = SlowTpay(shop.sandbox.gateway(notification_url=""), latency=0.25)
    from dataclasses import replace

    settings = replace(shop.app.state.settings, billing_concurrency=8)
    started = time.monotonic()
    report = shop.run(charge_due_months, shop.engine, slow, shop.app.state.purposes, settings)
    took = time.monotonic() - started
    assert report.charged == 24 and shop.sandbox.count_charges() == 24
    assert slow.most == 8  # bounded, and used
    assert took < 6, took
    shop.run(slow.aclose)
