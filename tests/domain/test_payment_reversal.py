"""Payment outcomes in the domain: paid in full (R-PAY-2) and reversal of what a payment bought (R-PAY-3)."""

from __future__ import annotations

from datetime import date

from domain.five_plus_one import (
    EndReason,
    MonthState,
    Notice,
    Subscription,
    SubscriptionMonth,
    SubscriptionStatus,
    on_payment_reversed,
)
from domain.ledger import EntryKind, LedgerEntry, balance, reversal_of
from domain.payment_outcomes import paid_in_full
from domain.tariff_5p1 import TicketVariant

TODAY = date(2026, 3, 10)


def _sub(status: SubscriptionStatus = SubscriptionStatus.ACTIVE) -> Subscription:
    return Subscription(TicketVariant.NORMAL, date(2026, 2, 1), auto_renew=False, status=status)


def _month(index: int, state: MonthState) -> SubscriptionMonth:
    return SubscriptionMonth(1, index, date(2026, index + 1, 1), date(2026, index + 2, 1), 2000, state,
                             attempts=1, paid_on=TODAY if state is MonthState.PAID else None)


def test_r_pay_2_paid_only_when_the_amount_paid_equals_the_amount_due() -> None:
    assert paid_in_full(2000, 2000)
    assert paid_in_full(2000, None)  # the report states no separate paid amount (a token charge's answer)
    assert not paid_in_full(2000, 1)
    assert not paid_in_full(2000, 1999)
    assert not paid_in_full(2000, 2001)
    assert not paid_in_full(2000, 0)


def test_r_pay_3_reversed_month_is_taken_back_and_the_subscription_cancelled() -> None:
    months = [_month(1, MonthState.PAID), _month(2, MonthState.PAID), _month(3, MonthState.DUE)]
    decision = on_payment_reversed(_sub(), months, months[1], TODAY)
    assert decision.subscription.status is SubscriptionStatus.CANCELLED
    assert decision.subscription.end_reason is EndReason.PAYMENT_REVERSED
    assert decision.subscription.ended_on == TODAY
    assert decision.revoke_ticket_for is not None and decision.revoke_ticket_for.position == (1, 2)
    assert {m.position: m.state for m in decision.months} == {(1, 2): MonthState.CANCELLED, (1, 3): MonthState.CANCELLED}
    assert decision.notices == (Notice.PAYMENT_REVERSED,)
    assert not decision.refund and decision.issue_ticket_for is None  # month 1 keeps its ticket


def test_r_pay_3_reversal_on_a_closed_subscription_only_takes_the_month_back() -> None:
    months = [_month(1, MonthState.PAID)]
    sub = _sub(SubscriptionStatus.CANCELLED)
    decision = on_payment_reversed(sub, months, months[0], TODAY)
    assert decision.subscription == sub
    assert [m.state for m in decision.months] == [MonthState.CANCELLED]
    assert decision.revoke_ticket_for is not None


def test_r_pay_3_a_month_not_paid_has_nothing_to_take_back() -> None:
    for state in (MonthState.CANCELLED, MonthState.CHARGING, MonthState.FAILED):
        month = _month(1, state)
        decision = on_payment_reversed(_sub(), [month], month, TODAY)
        assert decision.duplicate and not decision.months and decision.revoke_ticket_for is None


def test_r_pay_3_top_up_reversal_takes_back_payment_bonus_and_repaid_credit() -> None:
    booked = [LedgerEntry(EntryKind.CREDIT_REPAYMENT, 280), LedgerEntry(EntryKind.TOPUP, 4721),
              LedgerEntry(EntryKind.BONUS, 500)]
    entry = reversal_of(booked)
    assert entry == LedgerEntry(EntryKind.REVERSAL, -5501, "payment_reversed")
    # Spent meanwhile: the card's balance goes below zero (a debt the next top-up repays first).
    card = [LedgerEntry(EntryKind.CREDIT_RIDE, -280), *booked, LedgerEntry(EntryKind.PARKING, -5000)]
    assert balance([*card, entry]) == -280 - 5000
    # Taken back once: nothing is left to take.
    assert reversal_of([*booked, entry]) is None
    assert reversal_of([]) is None
