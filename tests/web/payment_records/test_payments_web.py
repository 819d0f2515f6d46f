"""Payments wired into the web app (issue 4), on SQLite and PostgreSQL, with the embedded sandbox.

The sandbox is the real one mounted at /sandbox-pay; the gateway talks to it exactly as to Tpay (OAuth,
JSON API, JWS-signed notifications). Its notifications are delivered by its own deliverer (with its
retries and back-off) to our `/payments/notify`; the only thing the tests change is the deliverer's
HTTP transport, which reaches the app in-process instead of over a socket and can be switched off to
play "our server is down" (the e2e tests deliver over real TCP).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy.engine import Engine

from tests.conftest import BASE_URL, Browser, Outbox, Users
from tests.support.shop import DECLINED_CARD, Shop, confirmations, settings_env, shop  # noqa: F401  (fixtures)
from web.platform import clock
from web.platform.db import transaction
from web.five_plus_one.models import Subscription5p1, SubscriptionMonthRow
from web.payment_records.models import Payment, PaymentEvent
from web.tickets.models import Ticket


# --------------------------------------------------------------------------- exactly once


def test_same_notification_five_times_concurrently_is_applied_once(shop: Shop, browser: Browser, mails: Outbox, db) -> None:
    user, card = shop.resident(browser)
    shop.webhook.online = False  # hold the sandbox's own delivery back: we deliver it ourselves
    purchase = shop.pay(browser, shop.buy(browser, card))
    [(body, signature)] = shop.notifications(purchase.transaction_id)

    barrier = threading.Barrier(5)
    answers: list[httpx.Response] = []

    def deliver() -> None:
        barrier.wait()
        answers.append(shop.notify(body, signature))

    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert [(a.status_code, a.text) for a in answers] == [(200, "TRUE")] * 5  # every copy is acknowledged
    payment = shop.payment(purchase.reference)
    assert payment.status == "paid" and payment.applied_at is not None
    assert db.count(PaymentEvent, PaymentEvent.payment_id == payment.id, PaymentEvent.source == "webhook") == 5
    assert db.count(Ticket) == 1
    assert confirmations(mails, user.email) == 1
    month = db.one(SubscriptionMonthRow)
    assert month.state == "paid"
    assert db.one(Subscription5p1).status == "active"

    # The sandbox's own (late) delivery is acknowledged too, and changes nothing.
    shop.webhook.online = True
    shop.wait_delivered(purchase.transaction_id)
    assert db.count(Ticket) == 1 and confirmations(mails, user.email) == 1


def test_webhook_before_return(shop: Shop, browser: Browser, mails: Outbox, db) -> None:
    user, card = shop.resident(browser)
    purchase = shop.pay(browser, shop.buy(browser, card))
    shop.wait_delivered(purchase.transaction_id)
    payment = shop.wait_applied(purchase.reference)
    assert payment.status == "paid" and payment.gateway_title and payment.gateway_title.startswith("TR-SBX-")

    page = shop.come_back(browser, purchase)
    assert page.status_code == 200 and "Płatność przyjęta" in page.text
    assert payment.gateway_title in page.text
    sources = [e.source for e in db.all(PaymentEvent, PaymentEvent.payment_id == payment.id)]
    assert sources == ["created", "webhook"]  # the return found it settled: nothing asked, nothing applied
    assert db.count(Ticket) == 1 and confirmations(mails, user.email) == 1
    sub = db.one(Subscription5p1)
    assert sub.card_token and sub.card_last4 == "1111"


def test_return_before_webhook(shop: Shop, browser: Browser, mails: Outbox, db) -> None:
    user, card = shop.resident(browser)
    shop.webhook.online = False
    purchase = shop.pay(browser, shop.buy(browser, card))

    page = shop.come_back(browser, purchase)  # reconciles with the gateway (GET /transactions/{id})
    assert page.status_code == 200 and "Płatność przyjęta" in page.text
    payment = shop.payment(purchase.reference)
    assert payment.status == "paid"
    assert db.count(Ticket) == 1 and confirmations(mails, user.email) == 1

    shop.webhook.online = True  # the webhook arrives afterwards (retried by the sandbox)
    shop.wait_delivered(purchase.transaction_id)
    sources = [e.source for e in db.all(PaymentEvent, PaymentEvent.payment_id == payment.id)]
    assert sources == ["created", "return", "webhook"]
    assert db.count(Ticket) == 1 and confirmations(mails, user.email) == 1
    # The card token came with the webhook (the status query does not carry it): later months can be charged.
    assert db.one(Subscription5p1).card_token
    tab = browser.get("/5plus1")
    assert "Aktywny bilet" in tab.text and payment.gateway_title in tab.text


def test_hosted_payment_records_the_gateways_transaction_title_and_page(shop: Shop, browser: Browser, db) -> None:
    """Sending the payer to the payment page records the gateway's transaction, title and page on our
    payment (`record_gateway_ids`, the same call that records token charges' transactions)."""
    _, card = shop.resident(browser)
    shop.webhook.online = False
    purchase = shop.buy(browser, card)
    payment = shop.payment(purchase.reference)
    assert payment.status == "pending"
    assert payment.gateway_transaction_id == purchase.transaction_id
    assert payment.gateway_title and payment.gateway_title.startswith("TR-SBX-")
    assert payment.redirect_url and payment.redirect_url.endswith(purchase.pay_path)


def test_return_while_pending_says_waiting(shop: Shop, browser: Browser, db) -> None:
    _, card = shop.resident(browser)
    shop.webhook.online = False
    purchase = shop.buy(browser, card)  # not paid yet: the passenger came back some other way
    page = browser.get(f"/payments/return/{purchase.reference}?back=/5plus1")
    assert page.status_code == 200 and "Czekamy na potwierdzenie" in page.text
    assert shop.payment(purchase.reference).applied_at is None
    assert db.count(Ticket) == 0


def test_return_page_of_someone_elses_payment_is_not_found(shop: Shop, browser: Browser, new_browser, db) -> None:
    _, card = shop.resident(browser)
    purchase = shop.buy(browser, card)
    other = new_browser()
    shop.users.create("ola@example.pl")
    other.login("ola@example.pl")
    assert other.get(f"/payments/return/{purchase.reference}").status_code == 404


# --------------------------------------------------------------------------- bad notifications


def _tamper(body: bytes, **changes: str) -> bytes:
    fields = dict(parse_qsl(body.decode()))
    fields.update(changes)
    return urlencode(fields).encode()


def test_forged_and_tampered_notifications_are_rejected_and_change_nothing(shop: Shop, browser: Browser, mails: Outbox,
                                                                            db, caplog: pytest.LogCaptureFixture) -> None:
    user, card = shop.resident(browser)
    shop.webhook.online = False
    purchase = shop.pay(browser, shop.buy(browser, card))
    [(body, signature)] = shop.notifications(purchase.transaction_id)
    header, _, sig = signature.split(".")

    cases = {
        "unsigned": (body, None),
        "garbage signature": (body, "not-a-jws"),
        "amount changed": (_tamper(body, tr_amount="0.01", tr_paid="0.01"), signature),
        "status changed to declined": (_tamper(body, tr_status="FALSE", tr_error="declined"), signature),
        "signature of another body": (_tamper(body, tr_crc="someone-elses"), signature),
        "signature bytes altered": (body, f"{header}..{sig[:-4]}AAAA"),
        "header not ours (alg none)": (body, f"eyJhbGciOiJub25lIn0..{sig}"),
    }
    # A notification correctly signed by *another* signer (an attacker's key and certificate).
    from cryptography.hazmat.primitives.asymmetric import rsa

    from payments.signing import sign_detached

    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases["signed with another key, our x5u"] = (body, sign_detached(body, attacker, shop.sandbox.x5u))
    cases["signed with another key, foreign x5u"] = (body, sign_detached(body, attacker, "https://evil.example/x509/x.pem"))
    cases["x5u on a lookalike host"] = (body, sign_detached(body, attacker, f"{shop.sandbox.public_url}.evil.example/x509/x.pem"))

    caplog.set_level("WARNING", logger="ekp.payments")
    for name, (forged_body, forged_signature) in cases.items():
        answer = shop.notify(forged_body, forged_signature)
        assert answer.status_code == 400 and answer.text.startswith("FALSE"), name
    payment = shop.payment(purchase.reference)
    assert payment.applied_at is None and payment.status == "pending"
    assert db.count(PaymentEvent, PaymentEvent.payment_id == payment.id) == 1  # only "created"
    assert db.count(Ticket) == 0 and confirmations(mails, user.email) == 0
    # Logged without personal or card data.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "rejected" in logged
    assert user.email not in logged and "1111" not in logged and "4111" not in logged

    # The genuine notification still works afterwards.
    assert shop.notify(body, signature).text == "TRUE"
    assert shop.payment(purchase.reference).status == "paid"
    assert db.count(Ticket) == 1


def test_wrong_amount_currency_or_unknown_reference_is_rejected(shop: Shop, browser: Browser, db) -> None:
    """Signed correctly by the gateway, but not what we asked for: the outcome is checked against our record."""
    from web.payment_records import service as records

    _, card = shop.resident(browser)
    shop.webhook.online = False
    purchase = shop.pay(browser, shop.buy(browser, card))
    payment = shop.payment(purchase.reference)

    def apply(outcome: records.Outcome) -> str:
        try:
            with transaction(shop.engine) as session:
                records.apply_outcome(session, shop.app.state.purposes, outcome, "webhook")
        except records.OutcomeRejected as exc:
            return exc.code
        return "applied"

    assert apply(records.Outcome(purchase.reference, "paid", amount=payment.amount + 1)) == "amount_mismatch"
    assert apply(records.Outcome(purchase.reference, "paid", amount=payment.amount, currency="EUR")) == "currency_mismatch"
    assert apply(records.Outcome("5p1-999-1-1-1", "paid", amount=payment.amount)) == "unknown_reference"
    assert shop.payment(purchase.reference).applied_at is None
    assert db.count(PaymentEvent, PaymentEvent.payment_id == payment.id) == 1
    assert db.count(Ticket) == 0

    # Over HTTP: a genuinely signed notification whose transaction we never created (unknown reference).
    from payments.signing import legacy_md5sum, sign_detached

    s = shop.sandbox.settings
    fields = {"id": s.merchant_id, "tr_id": "TR-SBX-UNKNOWN1", "tr_date": "2026-01-01 10:00:00", "tr_crc": "nobody-knows",
              "tr_amount": "80.00", "tr_paid": "80.00", "tr_desc": "x", "tr_status": "TRUE", "tr_error": "none",
              "tr_email": "x@example.pl", "test_mode": "1"}
    fields["md5sum"] = legacy_md5sum(s.merchant_id, fields["tr_id"], "80.00", fields["tr_crc"], s.security_code)
    body = urlencode(fields).encode()
    answer = shop.notify(body, sign_detached(body, shop.sandbox._private_key, shop.sandbox.x5u))
    assert answer.status_code == 400 and "unknown_reference" in answer.text

    # ... and one for our reference with another amount.
    fields |= {"tr_crc": purchase.reference, "tr_amount": "1.00", "tr_paid": "1.00"}
    fields["md5sum"] = legacy_md5sum(s.merchant_id, fields["tr_id"], "1.00", fields["tr_crc"], s.security_code)
    body = urlencode(fields).encode()
    answer = shop.notify(body, sign_detached(body, shop.sandbox._private_key, shop.sandbox.x5u))
    assert answer.status_code == 400 and "amount_mismatch" in answer.text
    assert shop.payment(purchase.reference).applied_at is None and db.count(Ticket) == 0

    # ... and one for our reference and amount in another currency (tr_currency; Tpay omits it for PLN).
    payment = shop.payment(purchase.reference)
    amount = f"{payment.amount // 100}.{payment.amount % 100:02d}"
    fields |= {"tr_amount": amount, "tr_paid": amount, "tr_currency": "EUR"}
    fields["md5sum"] = legacy_md5sum(s.merchant_id, fields["tr_id"], amount, fields["tr_crc"], s.security_code)
    body = urlencode(fields).encode()
    answer = shop.notify(body, sign_detached(body, shop.sandbox._private_key, shop.sandbox.x5u))
    assert answer.status_code == 400 and "currency_mismatch" in answer.text
    assert shop.payment(purchase.reference).applied_at is None and db.count(Ticket) == 0


def test_replayed_notification_changes_nothing(shop: Shop, browser: Browser, mails: Outbox, db) -> None:
    user, card = shop.resident(browser)
    purchase = shop.pay(browser, shop.buy(browser, card))
    shop.wait_delivered(purchase.transaction_id)
    shop.wait_applied(purchase.reference)
    [(body, signature)] = shop.notifications(purchase.transaction_id)

    clock.travel(timedelta(days=3))  # replayed days later
    for _ in range(3):
        assert shop.notify(body, signature).text == "TRUE"
    assert db.count(Ticket) == 1 and confirmations(mails, user.email) == 1
    month = db.one(SubscriptionMonthRow)
    assert month.state == "paid" and month.paid_on == clock.today() - timedelta(days=3)


def test_declined_payment_gets_no_notification_and_the_return_page_fails_it_once(shop: Shop, browser: Browser, db) -> None:
    """As at Tpay (issue 19): a declined payment gets no notification (tr_status has no FALSE); the payer's
    return asks the gateway, which says declined (`payments.status`), and the failure is applied once. A
    second attempt's paid notification is not mixed up with the first."""
    user, card = shop.resident(browser)
    purchase = shop.pay(browser, shop.buy(browser, card), DECLINED_CARD)
    assert shop.notifications(purchase.transaction_id) == []
    page = shop.come_back(browser, purchase)
    assert "Płatność nieudana" in page.text
    payment = shop.payment(purchase.reference)
    assert payment.status == "failed" and payment.applied_at is not None
    assert shop.come_back(browser, purchase).status_code == 200
    assert db.count(PaymentEvent, PaymentEvent.payment_id == payment.id, PaymentEvent.source == "return") == 1
    assert db.count(Ticket) == 0
    assert db.one(SubscriptionMonthRow).state == "failed"
    tab = browser.get("/5plus1")
    assert "Kup bilet 5plus1" in tab.text

    again = shop.pay(browser, shop.buy(browser, card))
    shop.wait_delivered(again.transaction_id)
    assert shop.wait_applied(again.reference).status == "paid"
    assert shop.payment(purchase.reference).status == "failed" and db.count(Ticket) == 1


# --------------------------------------------------------------------------- faults


class FlakyGateway:
    """The real gateway, except that token charges time out *after* the gateway has charged."""

    def __init__(self, inner: Any, failures: int = 1) -> None:
        self.inner, self.failures = inner, failures

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def charge_token(self, charge: Any) -> Any:
        from payments import GatewayTimeout

        result = await self.inner.charge_token(charge)
        if self.failures > 0:
            self.failures -= 1
            raise GatewayTimeout("no answer within 15 s")
        return result


def test_gateway_timeout_during_token_charge_is_asked_again_and_charged_once(shop: Shop, browser: Browser, db) -> None:
    _, card = shop.resident(browser)
    first_day = clock.today() + timedelta(days=1)
    purchase = shop.pay(browser, shop.buy(browser, card, first_day))
    shop.wait_delivered(purchase.transaction_id)
    shop.wait_applied(purchase.reference)
    month1 = db.one(SubscriptionMonthRow)

    # Month 2's charge window opens 3 days before it starts.
    clock.travel(month1.ends_on + timedelta(days=1) - timedelta(days=3) - clock.today())
    from web.five_plus_one.billing import charge_due_months

    shop.webhook.online = False  # the charge's notification does not reach us either: only re-asking can tell
    flaky = FlakyGateway(shop.gateway)
    report = shop.run(charge_due_months, shop.engine, flaky, shop.app.state.purposes, shop.app.state.settings)
    assert report.unanswered == 1 and report.charged == 0
    [token_payment] = db.all(Payment, Payment.kind == "token")
    assert token_payment.status == "pending" and token_payment.applied_at is None
    assert shop.sandbox.count_charges(reference=token_payment.reference) == 1  # the gateway did charge
    month2 = db.one(SubscriptionMonthRow, SubscriptionMonthRow.month_index == 2)
    assert month2.state == "charging"

    # The next run (after the stuck-charge delay) asks again with the same reference.
    clock.travel(timedelta(minutes=10))
    report = shop.billing_run()
    assert report.charged == 1
    assert db.count(Payment, Payment.kind == "token") == 1
    assert shop.sandbox.count_charges(reference=token_payment.reference) == 1  # still one charge
    assert shop.payment(token_payment.reference).status == "paid"
    assert db.one(SubscriptionMonthRow, SubscriptionMonthRow.month_index == 2).state == "paid"
    assert db.count(Ticket) == 2

    # The late notification and further runs on the same day change nothing.
    shop.webhook.online = True
    shop.wait_delivered(shop.payment(token_payment.reference).gateway_transaction_id)
    report = shop.billing_run()
    assert report.charged == 0
    assert shop.sandbox.count_charges(token=db.one(Subscription5p1).card_token) == 2  # month 1 (hosted) + month 2


def test_server_restart_between_payment_and_notification(make_app: Callable[..., Litestar], engine: Engine, users: Users,
                                                        mails: Outbox, db) -> None:
    """Pay while our server is down (the sandbox cannot deliver); a new app on the same database and the same
    sandbox store resumes the delivery and applies the outcome once."""
    first = make_app()
    with TestClient(first, base_url=BASE_URL) as client:
        shop = Shop(first, client, engine, users)
        browser = Browser(client)
        user, card = shop.resident(browser)
        shop.webhook.online = False
        purchase = shop.pay(browser, shop.buy(browser, card))
        cookies = dict(client.cookies)
    assert shop.payment(purchase.reference).applied_at is None

    second = make_app()  # "restarted": a new process would build exactly this
    with TestClient(second, base_url=BASE_URL, cookies=cookies) as client:
        shop2 = Shop(second, client, engine, users)
        shop2.sandbox.deliverer.wake()
        shop2.wait_delivered(purchase.transaction_id)
        payment = shop2.wait_applied(purchase.reference)
        assert payment.status == "paid"
        page = Browser(client).get(purchase.return_path)
        assert "Płatność przyjęta" in page.text
    assert db.count(Ticket) == 1 and confirmations(mails, user.email) == 1
    assert db.one(Subscription5p1).card_token


def test_server_restart_and_no_notification_return_reconciles(make_app: Callable[..., Litestar], engine: Engine,
                                                              users: Users, mails: Outbox, db) -> None:
    first = make_app()
    with TestClient(first, base_url=BASE_URL) as client:
        shop = Shop(first, client, engine, users)
        browser = Browser(client)
        user, card = shop.resident(browser)
        shop.webhook.online = False
        purchase = shop.pay(browser, shop.buy(browser, card))
        cookies = dict(client.cookies)

    second = make_app()
    with TestClient(second, base_url=BASE_URL, cookies=cookies) as client:
        shop2 = Shop(second, client, engine, users)
        shop2.webhook.online = False  # the notification never comes
        page = Browser(client).get(purchase.return_path)
        assert "Płatność przyjęta" in page.text
    assert shop.payment(purchase.reference).status == "paid"
    assert db.count(Ticket) == 1 and confirmations(mails, user.email) == 1


def test_json_card_notification_and_panel_test_notification_are_acknowledged_as_tpay_expects(shop: Shop, browser: Browser,
                                                                                            db) -> None:
    """Issue 19, items 4 and 8: Tpay's JSON notifications ({"type": "tokenization"|"token_update", "data": ...},
    tpay-openapi-php 2.4.x Model/Objects/NotificationBody/Tokenization.php, TokenUpdate.php) are verified and
    answered {"result":true}; a test notification from Tpay's panel (tr_id "TR-…-TST…X") is acknowledged and
    applies nothing. Before, both got 400 and Tpay would resend them forever."""
    import json

    from payments.signing import legacy_md5sum, sign_detached

    def signed(body: bytes) -> str:
        return sign_detached(body, shop.sandbox._private_key, shop.sandbox.x5u)

    payments_before = db.count(Payment)
    for document in ({"type": "tokenization", "data": {"tokenizationId": "TO-1", "token": "tok-x", "cardBrand": "Visa",
                                                       "cardTail": "1111", "tokenExpiryDate": "1230"}},
                     {"type": "token_update", "data": {"token": "tok-x"}}):
        body = json.dumps(document).encode()
        answer = shop.client.post("/payments/notify", content=body,
                                  headers={"content-type": "application/json", "x-jws-signature": signed(body)})
        assert (answer.status_code, answer.json()) == (200, {"result": True})
        forged = shop.client.post("/payments/notify", content=body + b" ",
                                  headers={"content-type": "application/json", "x-jws-signature": signed(body)})
        assert forged.status_code == 400

    s = shop.sandbox.settings
    fields = {"id": s.merchant_id, "tr_id": "TR-BRX-TST4NLJX", "tr_date": "2026-01-01 10:00:00", "tr_crc": "test",
              "tr_amount": "1", "tr_paid": "1", "tr_desc": "test", "tr_status": "TRUE", "tr_error": "none",
              "tr_email": "test@example.pl", "test_mode": "1"}
    fields["md5sum"] = legacy_md5sum(s.merchant_id, fields["tr_id"], "1.00", fields["tr_crc"], s.security_code)
    body = urlencode(fields).encode()
    answer = shop.notify(body, signed(body))
    assert (answer.status_code, answer.text) == (200, "TRUE")
    assert db.count(Payment) == payments_before and db.count(Ticket) == 0


class DiesAfterPaying:
    """The real gateway; the billing run is killed after Tpay took the money and before its answer is
    read: the whole run is cancelled at that point, so nothing after it runs (as with SIGKILL, except
    that the test's event loop survives)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.scope, self.killed = inner, None, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def charge_token(self, charge: Any) -> Any:
        import anyio

        await self.inner.charge_token(charge)
        self.killed = True
        self.scope.cancel()
        await anyio.sleep(1)  # never returns: cancelled here
        raise AssertionError("not killed")

    async def run(self, fn: Any, *args: Any) -> None:
        import anyio

        with anyio.CancelScope() as self.scope:
            await fn(*args)


class Counting:
    def __init__(self, inner: Any) -> None:
        self.inner, self.opened, self.charged = inner, 0, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def open_token_charge(self, charge: Any) -> Any:
        self.opened += 1
        return await self.inner.open_token_charge(charge)

    async def charge_token(self, charge: Any) -> Any:
        self.charged += 1
        return await self.inner.charge_token(charge)


def test_r_pay_1_billing_killed_between_recording_a_charge_and_tpays_answer_charges_the_month_once(
        shop: Shop, browser: Browser, db) -> None:
    """Issue 19, item 7: Tpay does not deduplicate on hiddenDescription, so the charge attempt and its Tpay
    transaction id are committed before paying; a restarted process (no memory of the first) asks Tpay
    about that transaction instead of opening a new one."""
    _, card = shop.resident(browser)
    purchase = shop.pay(browser, shop.buy(browser, card, clock.today() + timedelta(days=1)))
    shop.wait_delivered(purchase.transaction_id)
    shop.wait_applied(purchase.reference)
    month1 = db.one(SubscriptionMonthRow)
    clock.travel(month1.ends_on + timedelta(days=1) - timedelta(days=3) - clock.today())
    from web.five_plus_one.billing import charge_due_months

    shop.webhook.online = False  # the charge's notification cannot tell us either
    dying = DiesAfterPaying(shop.gateway)
    shop.run(dying.run, charge_due_months, shop.engine, dying, shop.app.state.purposes, shop.app.state.settings)
    assert dying.killed
    [token_payment] = db.all(Payment, Payment.kind == "token")
    assert token_payment.applied_at is None
    assert token_payment.gateway_transaction_id  # recorded (committed) before the money moved
    assert shop.sandbox.count_charges(reference=token_payment.reference) == 1

    # Restart: a new gateway with no memory of the first process.
    clock.travel(timedelta(minutes=10))
    fresh = Counting(shop.sandbox.gateway(f"{BASE_URL}/payments/notify"))
    report = shop.run(charge_due_months, shop.engine, fresh, shop.app.state.purposes, shop.app.state.settings)
    assert report.charged == 1 and fresh.opened == 0  # asked about the recorded transaction, opened none
    assert shop.sandbox.count_charges(reference=token_payment.reference) == 1
    payment = shop.payment(token_payment.reference)
    assert payment.status == "paid" and payment.gateway_transaction_id == token_payment.gateway_transaction_id
    assert db.one(SubscriptionMonthRow, SubscriptionMonthRow.month_index == 2).state == "paid"
    assert db.count(Ticket) == 2
    shop.run(fresh.aclose)
