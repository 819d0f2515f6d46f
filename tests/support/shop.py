"""The running app with its payment sandbox and the steps a passenger and the operator take (`Shop`),
shared by the payment, 5+1 and billing tests. Import the fixtures into a test module by name:

    from tests.support.shop import Shop, settings_env, shop  # noqa: F401  (fixtures)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from tests.conftest import BASE_URL, Browser, Outbox, Users
from web.platform import clock
from web.platform.db import transaction
from web.cards.models import Card
from web.payment_records.models import Payment

GOOD_CARD = "4111 1111 1111 1111"
DECLINED_CARD = "4000 0000 0000 0002"
THREE_DS_CARD = "4000 0000 0000 3220"
RENEWALS_FAIL_CARD = "4000 0000 0000 0341"
CONFIRMATION_SUBJECT = "Potwierdzenie zakupu biletu 5+1"
WAIT = 15.0


def tariff_price(month_index: int, starts_on: date, variant: str = "normal") -> int:
    """What the 5+1 tariff in force charges for month `month_index` starting on `starts_on` (grosze)."""
    from domain.tariff_5p1 import TicketVariant, price_for_month
    from web.platform.settings import read_tariffs

    return price_for_month(read_tariffs().five_plus_one, TicketVariant(variant), month_index, starts_on)


def zl(grosze: int) -> str:
    """An amount as pages and mails write it, without the currency ("99,00")."""
    from domain.money import format_pln

    return format_pln(grosze, symbol=False)


def card_expiry() -> str:
    """A card expiry (MM/YY) four years after the app's today, whatever day the tests run on."""
    return f"12/{(clock.today().year + 4) % 100:02d}"


# --------------------------------------------------------------------------- the shop around the sandbox


class Webhook(httpx.AsyncBaseTransport):
    """The sandbox deliverer's way to our webhook: in-process, and switchable off ("server down")."""

    def __init__(self, app: Litestar) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.online = True
        self.posts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.online:
            raise httpx.ConnectError("EKP is not running", request=request)
        self.posts += 1
        return await self.inner.handle_async_request(request)


@dataclass
class Purchase:
    reference: str
    transaction_id: str
    pay_path: str
    return_path: str | None = None


class Shop:
    """The running app with its sandbox, plus the steps a passenger and the operator take."""

    def __init__(self, app: Litestar, client: TestClient, engine: Engine, users: Users) -> None:
        self.app, self.client, self.engine, self.users = app, client, engine, users
        self.sandbox = app.state.payments.sandbox
        self.gateway = app.state.payments.gateway
        self.webhook = Webhook(app)
        self.connect_webhook()

    def connect_webhook(self) -> None:
        deliverer = self.sandbox.deliverer
        old = deliverer._client
        deliverer._client = httpx.AsyncClient(transport=self.webhook, base_url=BASE_URL)
        if old is not None:
            self.client.blocking_portal.call(old.aclose)

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a coroutine function on the app's event loop (where the gateway's HTTP clients live)."""
        return self.client.blocking_portal.call(lambda: fn(*args, **kwargs))

    # people and cards -------------------------------------------------------
    def resident(self, browser: Browser, email: str = "jan@example.pl", *, resident_until: date = date(2099, 12, 31),
                 resident: bool = True) -> tuple[Any, Card]:
        user = self.users.create(email)
        card = add_card(self.engine, user, resident=resident, resident_until=resident_until)
        browser.login(user.email)
        return user, card

    # buying -----------------------------------------------------------------
    def buy(self, browser: Browser, card: Card, first_day: date | None = None, *, variant: str = "normal",
            auto_renew: bool = False) -> Purchase:
        first_day = first_day or clock.today()
        form = {"card_id": str(card.id), "variant": variant, "first_day": first_day.isoformat(), "consent": "on"}
        if auto_renew:
            form["auto_renew"] = "on"
        response = browser.submit("/5plus1", form, action="/5plus1/buy")
        assert response.status_code == 303, response.text[:3000]
        pay_path = urlsplit(response.headers["location"]).path
        assert pay_path.startswith("/sandbox-pay/pay/"), pay_path
        tx_id = pay_path.rsplit("/", 1)[1]
        reference = self.sandbox.store.transaction(tx_id)["reference"]
        return Purchase(reference, tx_id, pay_path)

    def pay(self, browser: Browser, purchase: Purchase, number: str = GOOD_CARD, *, three_ds: str | None = None) -> Purchase:
        """Type the card on the sandbox page (and answer 3-D Secure); remember where it sends us back."""
        page = browser.client.get(purchase.pay_path)
        assert page.status_code == 200 and "Płatność testowa" in page.text
        response = browser.client.post(purchase.pay_path, data={"number": number, "expiry": card_expiry(), "cvc": "123",
                                                                 "action": "pay"}, follow_redirects=False)
        assert response.status_code == 303, response.text[:2000]
        location = response.headers["location"]
        if "/3ds/" in location:
            assert three_ds in ("approve", "deny"), "this card asks for 3-D Secure"
            response = browser.client.post(urlsplit(location).path, data={"decision": three_ds}, follow_redirects=False)
            assert response.status_code == 303
            location = response.headers["location"]
        parts = urlsplit(location)
        purchase.return_path = parts.path + (f"?{parts.query}" if parts.query else "")
        assert purchase.return_path.startswith(f"/payments/return/{purchase.reference}")
        return purchase

    def come_back(self, browser: Browser, purchase: Purchase) -> httpx.Response:
        assert purchase.return_path
        return browser.get(purchase.return_path)

    # what happened ----------------------------------------------------------
    def payment(self, reference: str) -> Payment:
        with transaction(self.engine) as session:
            payment = session.scalars(select(Payment).where(Payment.reference == reference)).one()
            session.expunge(payment)
            return payment

    def wait_applied(self, reference: str, timeout: float = WAIT) -> Payment:
        deadline = time.monotonic() + timeout
        while True:
            payment = self.payment(reference)
            if payment.applied_at is not None:
                return payment
            assert time.monotonic() < deadline, f"payment {reference} was never applied"
            time.sleep(0.05)

    def wait_delivered(self, transaction_id: str, count: int = 1, timeout: float = WAIT) -> list[dict[str, Any]]:
        """The sandbox's notifications for a transaction, once `count` of them were acknowledged."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.sandbox.store.deliveries_for(transaction_id)
            if sum(1 for r in rows if r.get("delivered_at")) >= count:
                return rows
            assert time.monotonic() < deadline, f"notification for {transaction_id} not acknowledged: {rows}"
            time.sleep(0.05)

    def notifications(self, transaction_id: str) -> list[tuple[bytes, str]]:
        """The sandbox's payment (form) notifications for a transaction; `card_notifications` has the JSON ones."""
        return [(r["body"].encode(), r["signature"]) for r in self.sandbox.store.deliveries_for(transaction_id)
                if not r["body"].startswith("{")]

    def card_notifications(self, transaction_id: str) -> list[tuple[bytes, str]]:
        return [(r["body"].encode(), r["signature"]) for r in self.sandbox.store.deliveries_for(transaction_id)
                if r["body"].startswith("{")]

    def notify(self, body: bytes, signature: str | None) -> httpx.Response:
        headers = {"content-type": "application/x-www-form-urlencoded"}
        if signature is not None:
            headers["x-jws-signature"] = signature
        return self.client.post("/payments/notify", content=body, headers=headers)

    def billing_run(self, settings: Any = None) -> Any:
        from web.five_plus_one.billing import charge_due_months

        from web.purposes import payment_purposes

        # Another configuration is another start-up: its purposes are built from it, as the app factory does.
        purposes = self.app.state.purposes if settings is None else payment_purposes(settings)
        return self.run(charge_due_months, self.engine, self.gateway, purposes, settings or self.app.state.settings)


def add_card(engine: Engine, user: Any, *, resident: bool = True, resident_until: date = date(2099, 12, 31),
             resident_from: date = date(2020, 1, 1), blocked: bool = False, client_code: str = "100200300") -> Card:
    """A registry card matching the user's PESEL, already linked to the account."""
    card = Card(carrier_type="KKM", client_code=client_code, holder_name=f"{user.first_name} {user.last_name}",
                pesel_hash=user.pesel_hash or "", has_resident_status=resident,
                resident_from=resident_from if resident else None, resident_until=resident_until if resident else None,
                blocked=blocked, account_id=user.id, linked_at=clock.now())
    with transaction(engine) as session:
        session.add(card)
        session.flush()
        session.refresh(card)
        session.expunge(card)
    return card


def rows(engine: Engine, model: Any, *where: Any) -> list[Any]:
    with transaction(engine) as session:
        found = list(session.scalars(select(model).where(*where)))
        for row in found:
            session.expunge(row)
        return found


def confirmations(mails: Outbox, to: str) -> int:
    return sum(1 for mail in mails.to(to) if mail.subject == CONFIRMATION_SUBJECT)


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    # Retry unacknowledged notifications quickly (the sandbox doubles the delay after each attempt).
    return {**settings_env, "EKP_SANDBOX_BACKOFF": "0.2"}


@pytest.fixture
def shop(app: Litestar, client: TestClient, engine: Engine, users: Users) -> Iterator[Shop]:
    yield Shop(app, client, engine, users)
