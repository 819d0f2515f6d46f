"""The Tpay-style sandbox served by uvicorn on loopback, driven over HTTP like a browser and a merchant."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
import pytest
from litestar import Litestar, Request, Response, get, post
from litestar.testing import TestClient

from payments import make_gateway
from payments.port import PaymentRequest, PaymentStatus, Refund, TokenCharge
from payments.sandbox import Sandbox, SandboxSettings

from .servers import bind_loopback, serve, wait_for

BACKOFF = 0.05


@dataclass
class Receiver:
    """Our webhook stand-in: records notifications; fails the first `failures` deliveries."""

    failures: int = 0
    attempts: list[float] = field(default_factory=list)
    received: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)

    def app(self, _base: str) -> Litestar:
        receiver = self

        @post("/notify", status_code=200)
        async def notify(request: Request) -> Response[str]:
            receiver.attempts.append(time.monotonic())
            if receiver.failures > 0:
                receiver.failures -= 1
                return Response("FALSE", status_code=500, media_type="text/plain")
            receiver.received.append((await request.body(), dict(request.headers)))
            return Response("TRUE", media_type="text/plain")

        @get("/ok", sync_to_thread=False)
        def ok() -> str:
            return "ok"

        return Litestar([notify, ok], openapi_config=None)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    rec = Receiver()
    with serve(rec.app) as url:
        yield rec, url


@dataclass
class Running:
    sandbox: Sandbox
    url: str
    notify_url: str
    receiver: Receiver

    def gateway(self):
        return make_gateway("sandbox", api_url=self.url, notification_url=self.notify_url, timeout=5.0)


def start_sandbox(db: Path, sock=None):
    holder: dict[str, Sandbox] = {}

    def build(base: str):
        holder["sandbox"] = Sandbox(SandboxSettings(public_url=base, db_path=str(db), backoff_base=BACKOFF, poll_interval=0.2))
        return holder["sandbox"].app

    return holder, serve(build, sock)


@pytest.fixture
def running(tmp_path: Path, receiver) -> Iterator[Running]:
    rec, rec_url = receiver
    holder, server = start_sandbox(tmp_path / "sandbox.db")
    with server as url:
        yield Running(holder["sandbox"], url, f"{rec_url}/notify", rec)
    holder["sandbox"].close()


def payment(reference: str, *, save_card: bool = True, amount: int = 4500) -> PaymentRequest:
    return PaymentRequest(
        amount=amount,
        description="Bilet 30-dniowy",
        payer_email="anna@example.com",
        payer_name="Anna Nowak",
        reference=reference,
        success_url="https://ekp.example/platnosc/ok",
        error_url="https://ekp.example/platnosc/blad",
        save_card=save_card,
    )


def renewal(token: str, reference: str) -> TokenCharge:
    return TokenCharge(token=token, amount=4500, description="Odnowienie", reference=reference,
                       payer_email="anna@example.com", payer_name="Anna Nowak")


async def verified_outcomes(run: Running, count: int):
    await anyio.to_thread.run_sync(lambda: wait_for(lambda: len(run.receiver.received) >= count))
    async with run.gateway() as gateway:
        return [await gateway.parse_notification(body, headers) for body, headers in run.receiver.received]


def pay_with(url: str, number: str, expiry: str = "12/39", cvc: str = "123") -> httpx.Response:
    return httpx.post(url, data={"number": number, "expiry": expiry, "cvc": cvc, "action": "pay"})


@pytest.mark.anyio
async def test_successful_card_saves_token_and_renewal_charges_once(running: Running) -> None:
    async with running.gateway() as gateway:
        created = await gateway.create_payment(payment("order-1"))
    page = httpx.get(created.redirect_url)
    assert page.status_code == 200 and "Płatność testowa" in page.text and "45,00" in page.text

    answer = pay_with(created.redirect_url, "4111 1111 1111 1111")
    assert answer.status_code == 303 and answer.headers["location"] == "https://ekp.example/platnosc/ok"

    [outcome] = await verified_outcomes(running, 1)
    assert outcome.status is PaymentStatus.PAID and outcome.title == created.title
    assert outcome.reference == "order-1" and outcome.amount == 4500
    assert outcome.card is not None and (outcome.card.brand, outcome.card.last4) == ("Visa", "1111")
    assert (outcome.card.expiry_month, outcome.card.expiry_year) == (12, 2039)

    async with running.gateway() as gateway:  # two billing runs (two processes) with the same reference
        first = await gateway.charge_token(renewal(outcome.card.token, "renewal-2026-12"))
    async with running.gateway() as gateway:
        second = await gateway.charge_token(renewal(outcome.card.token, "renewal-2026-12"))
    assert first.paid and first == second
    assert running.sandbox.count_charges(reference="renewal-2026-12") == 1
    counted = httpx.get(f"{running.url}/_sandbox/charges", params={"reference": "renewal-2026-12"}).json()
    assert counted == {"count": 1}
    assert running.sandbox.count_charges(token=outcome.card.token) == 2  # the first payment and one renewal


@pytest.mark.anyio
async def test_declined_card_redirects_to_error_and_notifies_failure(running: Running) -> None:
    async with running.gateway() as gateway:
        created = await gateway.create_payment(payment("order-2"))
    answer = pay_with(created.redirect_url, "4000000000000002")
    assert answer.status_code == 303 and answer.headers["location"] == "https://ekp.example/platnosc/blad"
    [outcome] = await verified_outcomes(running, 1)
    assert outcome.status is PaymentStatus.FAILED and outcome.card is None and outcome.error_code == "declined"
    assert running.sandbox.count_charges() == 0


@pytest.mark.anyio
@pytest.mark.parametrize(("decision", "location", "status"), [
    ("approve", "https://ekp.example/platnosc/ok", PaymentStatus.PAID),
    ("deny", "https://ekp.example/platnosc/blad", PaymentStatus.FAILED),
])
async def test_3ds_card_asks_for_approval(running: Running, decision: str, location: str, status: PaymentStatus) -> None:
    async with running.gateway() as gateway:
        created = await gateway.create_payment(payment(f"order-3ds-{decision}"))
    answer = pay_with(created.redirect_url, "4000 0000 0000 3220")
    assert answer.status_code == 303 and "/3ds/" in answer.headers["location"]
    page = httpx.get(answer.headers["location"])
    assert page.status_code == 200 and "3-D Secure" in page.text and "3220" in page.text
    done = httpx.post(answer.headers["location"], data={"decision": decision})
    assert done.status_code == 303 and done.headers["location"] == location
    [outcome] = await verified_outcomes(running, 1)
    assert outcome.status is status


@pytest.mark.anyio
async def test_renewal_failing_card(running: Running) -> None:
    async with running.gateway() as gateway:
        created = await gateway.create_payment(payment("order-4"))
    assert pay_with(created.redirect_url, "4000000000000341").status_code == 303
    [outcome] = await verified_outcomes(running, 1)
    assert outcome.status is PaymentStatus.PAID and outcome.card is not None
    async with running.gateway() as gateway:
        result = await gateway.charge_token(renewal(outcome.card.token, "renewal-4"))
        repeat = await gateway.charge_token(renewal(outcome.card.token, "renewal-4"))
    assert result.status is PaymentStatus.FAILED and result.error_code == "declined" and repeat == result


@pytest.mark.anyio
async def test_card_form_validation_messages_in_polish(running: Running) -> None:
    async with running.gateway() as gateway:
        created = await gateway.create_payment(payment("order-5"))
    bad_luhn = pay_with(created.redirect_url, "4111111111111112", expiry="01/20", cvc="12")
    assert bad_luhn.status_code == 422
    assert "Nieprawidłowy numer karty" in bad_luhn.text
    assert "Karta straciła ważność" in bad_luhn.text
    assert "Kod CVC to 3 lub 4 cyfry." in bad_luhn.text
    assert "4111111111111112" not in bad_luhn.text
    empty = pay_with(created.redirect_url, "", expiry="13/30", cvc="")
    assert "Podaj numer karty." in empty.text and "od 01 do 12" in empty.text and "Podaj kod CVC" in empty.text
    unknown = pay_with(created.redirect_url, "4242424242424242")
    assert "To nie jest karta testowa" in unknown.text
    assert running.receiver.received == []


@pytest.mark.anyio
async def test_idempotent_create_refund_and_status(running: Running) -> None:
    async with running.gateway() as gateway:
        created = await gateway.create_payment(payment("order-6", save_card=False))
    async with running.gateway() as gateway:
        again = await gateway.create_payment(payment("order-6", save_card=False))
        assert again.transaction_id == created.transaction_id
        assert (await gateway.get_status(created.transaction_id)).status is PaymentStatus.PENDING
        assert pay_with(created.redirect_url, "5555555555554444").status_code == 303
        paid = await gateway.get_status(created.transaction_id)
        assert paid.status is PaymentStatus.PAID and paid.paid_amount == 4500 and paid.reference == "order-6"
        refund = await gateway.refund(Refund(created.transaction_id, 1000))
        assert refund.amount == 1000
        assert (await gateway.get_status(created.transaction_id)).status is PaymentStatus.REFUNDED
    outcomes = await verified_outcomes(running, 2)
    assert [o.status for o in outcomes] == [PaymentStatus.PAID, PaymentStatus.REFUNDED]
    assert outcomes[0].card is None


@pytest.mark.anyio
async def test_notification_retried_with_backoff_until_acknowledged(running: Running) -> None:
    running.receiver.failures = 2
    async with running.gateway() as gateway:
        created = await gateway.create_payment(payment("order-7"))
    pay_with(created.redirect_url, "4111111111111111")
    [outcome] = await verified_outcomes(running, 1)
    assert outcome.status is PaymentStatus.PAID
    attempts = running.receiver.attempts
    assert len(attempts) == 3
    assert attempts[1] - attempts[0] >= BACKOFF * 0.9 and attempts[2] - attempts[1] >= 2 * BACKOFF * 0.9
    [delivery] = running.sandbox.store.deliveries_for(created.transaction_id)
    assert delivery["attempts"] == 3 and delivery["delivered_at"] is not None


@pytest.mark.anyio
async def test_pending_delivery_resumes_after_restart(tmp_path: Path) -> None:
    receiver = Receiver(failures=10**6)  # down until we say so
    db = tmp_path / "sandbox.db"
    with serve(receiver.app) as rec_url:
        sock = bind_loopback()
        port = sock.getsockname()[1]
        holder, server = start_sandbox(db, sock)
        with server as url:
            run = Running(holder["sandbox"], url, f"{rec_url}/notify", receiver)
            async with run.gateway() as gateway:
                created = await gateway.create_payment(payment("order-8"))
            pay_with(created.redirect_url, "4111111111111111")
            await anyio.to_thread.run_sync(lambda: wait_for(lambda: len(receiver.attempts) >= 2))
        holder["sandbox"].close()
        assert receiver.received == []
        receiver.failures = 0
        attempts_before = len(receiver.attempts)
        sock2 = bind_loopback()  # a new process, possibly on another port: same store, same key
        holder2, server2 = start_sandbox(db, sock2)
        with server2 as url2:
            run2 = Running(holder2["sandbox"], url2, f"{rec_url}/notify", receiver)
            await anyio.to_thread.run_sync(lambda: wait_for(lambda: len(receiver.received) == 1))
        holder2["sandbox"].close()
    assert len(receiver.attempts) > attempts_before
    body, headers = receiver.received[0]
    # The notification was signed by the first run (x5u on the old port); verify it against run 2's key,
    # which is the same key loaded from the store.
    assert holder2["sandbox"].certificate_pem == holder["sandbox"].certificate_pem
    assert b"tr_status=TRUE" in body and port


@pytest.mark.anyio
async def test_embedded_sandbox_mounted_in_main_app(tmp_path: Path) -> None:
    """In-process: the main app mounts the sandbox; the gateway talks to it without a socket."""
    sandbox = Sandbox(SandboxSettings(public_url="http://testserver.local/sandbox-pay", db_path=str(tmp_path / "s.db")))

    @get("/", sync_to_thread=False)
    def home() -> str:
        return "EKP"

    main = Litestar([home, sandbox.mount_handler("/sandbox-pay")], openapi_config=None)
    async with make_gateway("sandbox", sandbox=sandbox, notification_url="http://127.0.0.1:9/notify") as gateway:
        created = await gateway.create_payment(payment("order-9"))
        status = await gateway.get_status(created.transaction_id)
    assert created.redirect_url.startswith("http://testserver.local/sandbox-pay/pay/")
    assert status.status is PaymentStatus.PENDING
    with TestClient(main) as client:
        page = client.get(created.redirect_url.replace("http://testserver.local", ""))
        assert page.status_code == 200 and "Płatność testowa" in page.text
        pem = client.get("/sandbox-pay/x509/notifications-jws.pem")
        assert pem.text == sandbox.certificate_pem
    await sandbox.stop()
    sandbox.close()


@pytest.mark.anyio
async def test_embedded_token_charge_is_one_in_process_call_idempotent_declined_and_notified(tmp_path: Path, receiver) -> None:
    """The embedded sandbox's gateway charges saved cards without HTTP, and still behaves like Tpay:
    one charge per reference (also across gateways), declines with the sandbox's code, unknown tokens
    refused, and a signed notification to our webhook."""
    from payments import GatewayError
    from payments.sandbox.app import SandboxGateway

    rec, rec_url = receiver
    sandbox = Sandbox(SandboxSettings(public_url="http://testserver.local/sandbox-pay", db_path=str(tmp_path / "s.db"),
                                      backoff_base=BACKOFF, poll_interval=0.2))
    good = sandbox.store.save_card("Visa", "1111", 12, 2039, "succeeds")
    failing = sandbox.store.save_card("Visa", "0341", 12, 2039, "renewals_fail")
    try:
        async with make_gateway("sandbox", sandbox=sandbox, notification_url=f"{rec_url}/notify") as gateway:
            assert isinstance(gateway, SandboxGateway)
            first = await gateway.charge_token(renewal(good, "renewal-7"))
            declined = await gateway.charge_token(renewal(failing, "renewal-8"))
            with pytest.raises(GatewayError) as refused:
                await gateway.charge_token(renewal("sbx_tok_unknown", "renewal-9"))
        async with sandbox.gateway(notification_url=f"{rec_url}/notify") as other:  # e.g. a second billing run
            again = await other.charge_token(renewal(good, "renewal-7"))
        assert first.status is PaymentStatus.PAID and again == first
        assert declined.status is PaymentStatus.FAILED and declined.error_code == "declined"
        assert refused.value.code == "invalid_token"
        assert sandbox.count_charges(reference="renewal-7") == 1 and sandbox.count_charges() == 1
        assert sandbox.store.transaction_by_reference("renewal-9") is None  # a refused call keeps nothing
        await anyio.to_thread.run_sync(lambda: wait_for(lambda: len(rec.received) >= 2))
        async with sandbox.gateway(notification_url=f"{rec_url}/notify") as verifier:
            outcomes = {o.reference: o for o in [await verifier.parse_notification(b, h) for b, h in rec.received]}
        assert outcomes["renewal-7"].status is PaymentStatus.PAID and outcomes["renewal-7"].title == first.title
        assert outcomes["renewal-8"].status is PaymentStatus.FAILED
    finally:
        await sandbox.stop()
        sandbox.close()


@pytest.mark.anyio
async def test_token_charge_in_one_http_call_then_the_two_call_way_answers_the_first_result(running: Running) -> None:
    """`POST /transactions` with `pay.cardPaymentData.token` creates and charges at once; the adapter's
    two-call way with the same reference then gets the first answer and charges nothing more."""
    token = running.sandbox.store.save_card("Visa", "1111", 12, 2039, "succeeds")
    body = {"amount": 45.0, "description": "Odnowienie", "hiddenDescription": "renewal-10",
            "payer": {"email": "anna@example.com", "name": "Anna Nowak"},
            "pay": {"groupId": 103, "cardPaymentData": {"token": token}}}
    auth = httpx.post(f"{running.url}/oauth/auth", data={"client_id": "sandbox", "client_secret": "sandbox"}).json()
    answer = httpx.post(f"{running.url}/transactions", json=body,
                        headers={"Authorization": f"Bearer {auth['access_token']}"}).json()
    assert answer["status"] == "correct" and answer["hiddenDescription"] == "renewal-10"
    async with running.gateway() as gateway:
        result = await gateway.charge_token(renewal(token, "renewal-10"))
    assert result.status is PaymentStatus.PAID and result.transaction_id == answer["transactionId"]
    assert running.sandbox.count_charges(reference="renewal-10") == 1
