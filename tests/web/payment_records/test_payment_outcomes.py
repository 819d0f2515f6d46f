"""Payment outcomes on every path (R-PAY-1..4), on SQLite and PostgreSQL, with the embedded sandbox.

An outcome is applied by one use case whether it arrives by the webhook, the return page, `ekp payments
reconcile` or a billing run's token charge: a payment for something no longer wanted is refunded on every
path (R-PAY-4), paying less than due holds the payment for staff (R-PAY-2), and a refund or chargeback
takes back what the payment bought (R-PAY-3). The gateway's notifications are signed with the sandbox's
own key, as the operator's are, so they pass every check a real one passes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.conftest import Browser, Outbox, page_text
from tests.support.purse import assert_balance_is_ledger_sum, balance_of, make_card
from tests.support.shop import Purchase, Shop, add_card, settings_env, shop  # noqa: F401  (fixtures)
from web.platform import clock
from web.five_plus_one.models import Subscription5p1, SubscriptionMonthRow
from web.payment_records.models import Payment, PaymentEvent
from web.purse.models import PurseLedgerEntry
from web.tickets.models import Ticket

PROJECT_ROOT = Path(__file__).resolve().parents[3]


# --------------------------------------------------------------------------- helpers


def signed_notification(shop: Shop, reference: str, *, status: str, amount: str, paid: str) -> tuple[bytes, str]:
    """A notification about our transaction `reference`, signed by the gateway (the sandbox's key)."""
    from payments.signing import legacy_md5sum, sign_detached

    tx = shop.sandbox.store.transaction_by_reference(reference)
    s = shop.sandbox.settings
    fields = {"id": s.merchant_id, "tr_id": tx["title"], "tr_date": "2026-01-01 10:00:00", "tr_crc": reference,
              "tr_amount": amount, "tr_paid": paid, "tr_desc": "x", "tr_status": status, "tr_error": "none",
              "tr_email": "x@example.pl", "test_mode": "1"}
    fields["md5sum"] = legacy_md5sum(s.merchant_id, fields["tr_id"], amount, reference, s.security_code)
    body = urlencode(fields).encode()
    return body, sign_detached(body, shop.sandbox._private_key, shop.sandbox.x5u)


def staff_desk(new_browser: Any, users: Any) -> Browser:
    users.create("bok@example.pl", role="staff", pesel=None)
    desk = new_browser()
    desk.login("bok@example.pl")
    return desk


def passenger(shop: Shop, browser: Browser, email: str, client_code: str) -> Any:
    from tests.conftest import make_pesel

    born = clock.today().replace(year=1980)
    pesel = make_pesel(born, serial=int(client_code[-3:]))
    user = shop.users.create(email, pesel=pesel)
    card = add_card(shop.engine, user, client_code=client_code)
    browser.login(email)
    return user, card


def pay_unheard(shop: Shop, browser: Browser, purchase: Purchase) -> Purchase:
    """Pay on the gateway's page while our webhook is unreachable (it stays so): only the gateway knows."""
    shop.webhook.online = False
    return shop.pay(browser, purchase)


def tickets_of(db: Any, subscription_id: int) -> list[Ticket]:
    months = [m.id for m in db.all(SubscriptionMonthRow, SubscriptionMonthRow.subscription_id == subscription_id)]
    return db.all(Ticket, Ticket.subscription_month_id.in_(months))  # type: ignore[union-attr]


class LostAnswerGateway:
    """The real gateway, except that the first token charge's answer is lost after the gateway charged."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.lost = inner, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def charge_token(self, charge: Any) -> Any:
        from payments import GatewayTimeout

        result = await self.inner.charge_token(charge)
        if not self.lost:
            self.lost = True
            raise GatewayTimeout("no answer within 15 s")
        return result


def reconcile_in_a_new_process(settings_env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("EKP_")}, **settings_env, "EKP_PAYMENTS": "sandbox",
           clock.PIN_VARIABLE: clock.pin_text()}  # the process's clock is the test's
    return subprocess.run([sys.executable, "-m", "web.cli", "payments", "reconcile", "--older-than", "0", *extra],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)


# --------------------------------------------------------------------------- R-PAY-1 / R-PAY-4: every path


def test_r_pay_1_ekp_payments_reconcile_in_a_new_process_applies_paid_refund_needed_and_charged_back(
        shop: Shop, browser: Browser, new_browser: Any, settings_env: dict[str, str], db) -> None:
    shop.webhook.online = False  # no notification reaches us in this test: only reconciliation can tell
    # Ala pays; we never hear of it.
    ala_browser = new_browser()
    _, ala_card = passenger(shop, ala_browser, "ala@example.pl", "100200301")
    ala = pay_unheard(shop, ala_browser, shop.buy(ala_browser, ala_card))
    # Bob leaves the payment page, buys again and pays; then completes the first page too (R-PAY-4).
    _, bob_card = passenger(shop, browser, "bob@example.pl", "100200302")
    abandoned = shop.buy(browser, bob_card)
    second = shop.pay(browser, shop.buy(browser, bob_card))
    assert "Płatność przyjęta" in shop.come_back(browser, second).text  # the return page applied it
    pay_unheard(shop, browser, abandoned)
    # Cyryl pays and disputes the payment with his bank; the chargeback is all the gateway says now (R-PAY-3).
    cyryl_browser = new_browser()
    _, cyryl_card = passenger(shop, cyryl_browser, "cyryl@example.pl", "100200303")
    cyryl = pay_unheard(shop, cyryl_browser, shop.buy(cyryl_browser, cyryl_card))
    shop.sandbox.store.update_transaction(cyryl.transaction_id, status="chargeback")

    run = reconcile_in_a_new_process(settings_env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "pending payments asked about: 3" in run.stdout, run.stdout

    assert shop.payment(ala.reference).status == "paid"
    [ala_sub] = db.all(Subscription5p1, Subscription5p1.card_id == ala_card.id)
    [ala_ticket] = tickets_of(db, ala_sub.id)
    assert ala_ticket.revoked_at is None and ala_sub.status == "active"

    assert shop.payment(abandoned.reference).status == "refunded"
    assert shop.sandbox.store.transaction(abandoned.transaction_id)["status"] == "refund"  # the money went back
    assert shop.payment(second.reference).status == "paid"
    assert db.count(Ticket, Ticket.card_id == bob_card.id) == 1

    assert shop.payment(cyryl.reference).status == "chargeback"
    [cyryl_sub] = db.all(Subscription5p1, Subscription5p1.card_id == cyryl_card.id)
    [cyryl_ticket] = tickets_of(db, cyryl_sub.id)
    assert cyryl_ticket.revoked_at is not None and cyryl_sub.status == "cancelled"

    # Again: nothing more is applied, nothing refunded twice.
    again = reconcile_in_a_new_process(settings_env)
    assert again.returncode == 0 and "pending payments asked about: 0" in again.stdout, again.stdout + again.stderr
    assert shop.sandbox.store.transaction(abandoned.transaction_id)["refunded"] == shop.payment(abandoned.reference).amount


def test_r_pay_4_a_refund_the_gateway_refused_is_retried_by_reconciliation(shop: Shop, browser: Browser, db) -> None:
    from payments import GatewayError
    from web.payment_records.reconcile import reconcile_pending_payments

    _, card = shop.resident(browser)
    abandoned = shop.buy(browser, card)
    second = shop.pay(browser, shop.buy(browser, card))
    shop.come_back(browser, second)
    refund = shop.gateway.refund

    async def refused(_refund: Any) -> Any:
        raise GatewayError("internal_error", "try later")

    shop.gateway.refund = refused  # type: ignore[method-assign]
    try:
        pay_unheard(shop, browser, abandoned)
        shop.come_back(browser, abandoned)  # the return page applies it and asks for the refund: refused
    finally:
        shop.gateway.refund = refund  # type: ignore[method-assign]
    assert shop.payment(abandoned.reference).status == "refund_due"
    assert shop.sandbox.store.transaction(abandoned.transaction_id)["status"] == "correct"

    report = shop.run(reconcile_pending_payments, shop.engine, shop.gateway, shop.app.state.purposes, older_than_seconds=0)
    assert report.refunded == 1, report
    assert shop.payment(abandoned.reference).status == "refunded"
    assert shop.sandbox.store.transaction(abandoned.transaction_id)["status"] == "refund"
    report = shop.run(reconcile_pending_payments, shop.engine, shop.gateway, shop.app.state.purposes, older_than_seconds=0)
    assert report.refunded == 0
    assert db.count(Ticket) == 1


def test_r_pay_4_billing_refunds_a_charge_that_arrived_for_a_cancelled_month(shop: Shop, browser: Browser, db) -> None:
    """A token charge whose answer was lost; meanwhile the passenger cancelled; the next run learns it was paid."""
    from web.five_plus_one.billing import charge_due_months

    user, card = shop.resident(browser)
    purchase = shop.pay(browser, shop.buy(browser, card, clock.today() + timedelta(days=1)))
    shop.wait_delivered(purchase.transaction_id)
    shop.wait_applied(purchase.reference)
    month1 = db.one(SubscriptionMonthRow)
    clock.travel(month1.ends_on + timedelta(days=1) - timedelta(days=3) - clock.today())
    shop.webhook.online = False
    report = shop.run(charge_due_months, shop.engine, LostAnswerGateway(shop.gateway), shop.app.state.purposes,
                      shop.app.state.settings)
    assert report.unanswered == 1
    browser.login(user.email)  # weeks later
    assert browser.submit("/5plus1", {}, action="/5plus1/cancel").status_code == 303
    assert db.one(Subscription5p1).status == "cancelled"

    clock.travel(timedelta(minutes=10))
    shop.billing_run()
    [token_payment] = db.all(Payment, Payment.kind == "token")
    from web.payment_records.models import PaymentEvent
    print("MONTHS", [(m.month_index, m.state) for m in db.all(SubscriptionMonthRow)], db.one(Subscription5p1).status)
    print("EVENTS", [(e.source, e.status, e.detail) for e in db.all(PaymentEvent, PaymentEvent.payment_id == token_payment.id)])
    assert token_payment.status == "refunded"
    assert shop.sandbox.store.transaction(token_payment.gateway_transaction_id)["status"] == "refund"
    assert db.count(Ticket) == 1


# --------------------------------------------------------------------------- R-PAY-2: paid in full


@pytest.fixture
def purse_passenger(shop: Shop, browser: Browser) -> tuple[Browser, int]:
    user = shop.users.create()
    card_id = make_card(shop.engine, shop.app.state.settings, "7001", balance=1000)
    browser.login(user.email)
    assert browser.submit("/purse", {"number": "7001"}, action="/purse/link").status_code == 303
    return browser, card_id


def start_top_up(shop: Shop, browser: Browser, card_id: int, amount: str) -> str:
    sent = browser.submit("/purse", {"amount": amount, "action": "pay"}, action=f"/purse/{card_id}/top-up")
    assert sent.status_code == 303 and "/sandbox-pay/" in sent.headers["location"]
    tx_id = sent.headers["location"].rsplit("/", 1)[1]
    return shop.sandbox.store.transaction(tx_id)["reference"]


def test_r_pay_2_underpayment_is_held_for_review(shop: Shop, purse_passenger: tuple[Browser, int], new_browser: Any,
                                                 users: Any, engine, db) -> None:
    browser, card_id = purse_passenger
    shop.webhook.online = False
    reference = start_top_up(shop, browser, card_id, "20,00")
    body, signature = signed_notification(shop, reference, status="TRUE", amount="20.00", paid="0.01")
    for _ in range(2):
        answer = shop.notify(body, signature)
        assert (answer.status_code, answer.text) == (200, "TRUE")  # acknowledged: the gateway must stop resending
    payment = shop.payment(reference)
    assert payment.status == "held_for_review" and payment.applied_at is not None
    assert balance_of(engine, "7001") == 1000  # nothing credited
    assert db.count(PurseLedgerEntry, PurseLedgerEntry.payment_id == payment.id) == 0
    # A later "paid in full" for the same payment does not slip past the review either.
    full, full_signature = signed_notification(shop, reference, status="TRUE", amount="20.00", paid="20.00")
    assert shop.notify(full, full_signature).text == "TRUE"
    assert shop.payment(reference).status == "held_for_review" and balance_of(engine, "7001") == 1000

    desk = staff_desk(new_browser, users)
    queue = page_text(desk.get("/desk").text)
    assert "Płatności do sprawdzenia" in queue and reference in queue
    assert "Wstrzymana do sprawdzenia: zapłacono 0,01 zł z 20,00 zł" in queue
    assert_balance_is_ledger_sum(engine)


def test_r_pay_2_token_charge_and_status_query_paid_less_are_held_too(shop: Shop, browser: Browser, db) -> None:
    """Reconciliation reads the paid amount from the gateway's status as well."""
    from web.payment_records.reconcile import reconcile_pending_payments

    _, card = shop.resident(browser)
    purchase = pay_unheard(shop, browser, shop.buy(browser, card))
    tx = shop.sandbox.store.transaction(purchase.transaction_id)
    original = shop.gateway.get_status

    async def underpaid(transaction_id: str) -> Any:
        from dataclasses import replace

        return replace(await original(transaction_id), paid_amount=tx["amount"] - 1)

    shop.gateway.get_status = underpaid  # type: ignore[method-assign]
    try:
        shop.run(reconcile_pending_payments, shop.engine, shop.gateway, shop.app.state.purposes, older_than_seconds=0)
    finally:
        shop.gateway.get_status = original  # type: ignore[method-assign]
    assert shop.payment(purchase.reference).status == "held_for_review"
    assert db.count(Ticket) == 0
    assert db.one(SubscriptionMonthRow).state == "charging"


# --------------------------------------------------------------------------- R-PAY-3: reversal


def test_r_pay_3_chargeback_of_a_top_up_takes_the_money_back_into_debt(shop: Shop, purse_passenger: tuple[Browser, int],
                                                                       new_browser: Any, users: Any, engine, db) -> None:
    browser, card_id = purse_passenger
    reference = start_top_up(shop, browser, card_id, "50,01")
    body, signature = signed_notification(shop, reference, status="TRUE", amount="50.01", paid="50.01")
    shop.webhook.online = False
    assert shop.notify(body, signature).text == "TRUE"
    assert balance_of(engine, "7001") == 1000 + 5001 + 500  # payment and its 10 % bonus
    from domain.ledger import EntryKind, LedgerEntry
    from web.platform.db import transaction
    from web.purse.models import PurseCardRow
    from web.purse import service as purse_service

    with transaction(engine) as session:  # most of it is spent (a day of parking) before the chargeback
        row = session.get(PurseCardRow, card_id)
        purse_service.book_entry(session, row, [LedgerEntry(EntryKind.PARKING, -6000, "meter")], at=clock.now(), place="Rynek")
    assert balance_of(engine, "7001") == 501

    chargeback, chargeback_signature = signed_notification(shop, reference, status="CHARGEBACK", amount="50.01", paid="50.01")
    for _ in range(3):
        assert shop.notify(chargeback, chargeback_signature).text == "TRUE"
    payment = shop.payment(reference)
    assert payment.status == "refunded"
    assert balance_of(engine, "7001") == 501 - 5501  # into debt: the next top-up repays it first (R-TOP-4)
    entries = db.all(PurseLedgerEntry, PurseLedgerEntry.payment_id == payment.id)
    assert sorted(e.kind for e in entries) == ["bonus", "reversal", "topup"]
    assert_balance_is_ledger_sum(engine)

    queue = page_text(staff_desk(new_browser, users).get("/desk").text)
    assert reference in queue and "cofnięto" in queue


def test_r_pay_3_chargeback_of_a_5p1_month_revokes_its_ticket_for_inspectors(shop: Shop, browser: Browser, mails: Outbox,
                                                                            new_browser: Any, users: Any, db) -> None:
    from web.platform.db import transaction
    from web.tickets.service import revoked_ticket_ids

    user, card = shop.resident(browser)
    purchase = shop.pay(browser, shop.buy(browser, card))
    shop.wait_delivered(purchase.transaction_id)
    payment = shop.wait_applied(purchase.reference)
    [ticket] = db.all(Ticket)
    amount = f"{payment.amount // 100}.{payment.amount % 100:02d}"
    body, signature = signed_notification(shop, purchase.reference, status="CHARGEBACK", amount=amount, paid=amount)
    for _ in range(2):
        assert shop.notify(body, signature).text == "TRUE"

    assert shop.payment(purchase.reference).status == "refunded"
    [ticket] = db.all(Ticket)
    assert ticket.revoked_at is not None
    with transaction(shop.engine) as session:
        assert ticket.id in revoked_ticket_ids(session, clock.today())  # on the inspectors' next sync
    sub = db.one(Subscription5p1)
    assert sub.status == "cancelled" and sub.end_reason == "payment_reversed"
    assert db.one(SubscriptionMonthRow).state == "cancelled"
    assert "Aktywny bilet" not in browser.get("/5plus1").text
    assert mails.last(user.email).subject == "Płatność za bilet 5+1 została cofnięta"
    # Billing charges nothing more on this subscription.
    clock.travel(timedelta(days=40))
    assert shop.billing_run().charged == 0

    queue = page_text(staff_desk(new_browser, users).get("/desk").text)
    assert purchase.reference in queue and "cofnięto" in queue


def test_r_pay_3_our_own_refund_of_a_second_payment_reverses_nothing(shop: Shop, browser: Browser, db) -> None:
    """The refund of money that bought nothing comes back as the gateway's CHARGEBACK notification."""
    _, card = shop.resident(browser)
    abandoned = shop.buy(browser, card)
    second = shop.pay(browser, shop.buy(browser, card))
    shop.come_back(browser, second)
    shop.pay(browser, abandoned)
    shop.come_back(browser, abandoned)
    shop.wait_delivered(abandoned.transaction_id, count=2)  # TRUE, then CHARGEBACK for our refund
    assert shop.payment(abandoned.reference).status == "refunded"
    assert shop.payment(second.reference).status == "paid"
    [ticket] = db.all(Ticket)
    assert ticket.revoked_at is None
    assert db.one(Subscription5p1, Subscription5p1.status == "active")


def test_r_pay_1_one_batch_with_a_repeat_an_unknown_reference_and_a_chargeback_applies_each_once(
        shop: Shop, browser: Browser, db) -> None:
    """`apply_outcomes` is the one way every path applies outcomes (`apply_outcome` is it for one): in one
    batch a repeated report applies nothing more and an unknown reference is refused without stopping the
    others; a chargeback afterwards takes back what the payment bought."""
    from web.payment_records import service as records
    from web.platform.db import transaction

    _, card = shop.resident(browser)
    first = pay_unheard(shop, browser, shop.buy(browser, card))
    amount = shop.payment(first.reference).amount
    paid = records.Outcome(first.reference, "paid", amount=amount, transaction_id=first.transaction_id)
    with transaction(shop.engine) as session:
        applied = records.apply_outcomes(session, shop.app.state.purposes, [paid, records.Outcome("5p1-999-1-1-1", "paid", amount=amount), paid],
                                         "reconcile")
    assert [(a.settled, a.rejected) for a in applied] == [(records.Settled(), None), (None, "unknown_reference"),
                                                          (None, None)]
    assert shop.payment(first.reference).status == "paid"
    [ticket] = db.all(Ticket)
    assert ticket.revoked_at is None

    with transaction(shop.engine) as session:
        [chargeback] = records.apply_outcomes(session, shop.app.state.purposes, [records.Outcome(first.reference, "chargeback", amount=amount)],
                                              "reconcile")
    assert chargeback.settled == records.Settled(reversed=True)
    assert shop.payment(first.reference).status == "chargeback"
    assert db.one(Ticket).revoked_at is not None
    assert db.one(Subscription5p1).status == "cancelled"


def test_r_pay_3_a_refund_of_a_payment_never_heard_of_applies_it_then_takes_it_back_in_one_call(
        shop: Shop, browser: Browser, db) -> None:
    from web.payment_records import service as records
    from web.platform.db import transaction

    _, card = shop.resident(browser)
    purchase = pay_unheard(shop, browser, shop.buy(browser, card))
    amount = shop.payment(purchase.reference).amount
    with transaction(shop.engine) as session:
        payment, settled = records.apply_outcome(session, shop.app.state.purposes, records.Outcome(purchase.reference, "refunded", amount=amount),
                                                 "reconcile")
        assert payment.status == "refunded" and payment.applied_at is not None
        payment_id = payment.id
    assert settled == records.Settled(reversed=True)
    assert db.one(Ticket).revoked_at is not None
    events = [(e.source, e.status) for e in db.all(PaymentEvent, PaymentEvent.payment_id == payment_id)]
    assert events == [("created", "pending"), ("reconcile", "refunded"), ("reversal", "refunded")]
