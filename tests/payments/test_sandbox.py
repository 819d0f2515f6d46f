"""The Tpay-style sandbox served by uvicorn on loopback, driven over HTTP like a browser and a merchant.

It must answer as Tpay does (issue 19): notifications with Tpay's fields and `tr_status` values (TRUE,
CHARGEBACK; none for a declined payment), JSON card notifications, a signing certificate issued by a
separate root, and no deduplication on the merchant's reference."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import anyio
import httpx
import pytest
from litestar import Litestar, Request, Response, get, post
from litestar.testing import TestClient

from payments import CardNotice, make_gateway
from payments.port import PaymentOutcome, PaymentRequest, PaymentStatus, Refund, TokenCharge
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
            body = await request.body()
            receiver.received.append((body, dict(request.headers)))
            if body.startswith(b"{"):  # a JSON card notification: Tpay's acknowledgement for those
                return Response('{"result":true}', media_type="application/json")
            return Response("TRUE", media_type="text/plain")


        @get("/ok", sync_to_thread=False)
        def ok() -> str:
            return "ok"

        return Litestar([notify, ok], openapi_config=None)

    def payments(self) -> list[tuple[bytes, dict[str, str]]]:
        """The form (payment) notifications received, without the JSON card notifications."""
        return [(b, h) for b, h in self.received if not b.startswith(b"{")]


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


async def verified_outcomes(run: Running, count: int) -> list[PaymentOutcome]:
    """The payment notifications received (at least `count`), verified as Tpay's are."""
    await anyio.to_thread.run_sync(lambda: wait_for(lambda: len(run.receiver.payments()) >= count))
    async with run.gateway() as gateway:
        outcomes = [await gateway.parse_notification(body, headers) for body, headers in run.receiver.payments()]
    assert all(isinstance(o, PaymentOutcome) for o in outcomes)
    return outcomes  # type: ignore[return-value]


async def card_notices(run: Running, count: int) -> list[CardNotice]:
    await anyio.to_thread.run_sync(lambda: wait_for(
        lambda: len(run.receiver.received) - len(run.receiver.payments()) >= count))
    async with run.gateway() as gateway:
        notices = [await gateway.parse_notification(b, h) for b, h in run.receiver.received if b.startswith(b"{")]
    assert all(isinstance(n, CardNotice) for n in notices)
    return notices  # type: ignore[return-value]


async def no_payment_notification(run: Running, seconds: float = 0.5) -> None:
    await anyio.sleep(seconds)
    assert run.receiver.payments() == []


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

    # The card also comes in a JSON tokenization notification (Tpay's Tokenization.php fields).
    [notice] = await card_notices(running, 1)
    assert (notice.kind, notice.token) == ("tokenization", outcome.card.token)
    assert notice.card is not None and (notice.card.brand, notice.card.last4, notice.card.expiry) == ("Visa", "1111", "12/2039")

    charge = renewal(outcome.card.token, "renewal-2026-12")
    async with running.gateway() as gateway:  # the billing run: open, record the id, pay
        opened = await gateway.open_token_charge(charge)
        first = await gateway.charge_token(replace(charge, transaction_id=opened.transaction_id))
        assert await gateway.charge_token(replace(charge, transaction_id=opened.transaction_id)) == first
    async with running.gateway() as gateway:  # a restarted run with the recorded id: asks, pays nothing
        second = await gateway.charge_token(replace(charge, transaction_id=opened.transaction_id))
    assert first.paid and first == second and first.transaction_id == opened.transaction_id
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
    # As at Tpay: no notification for a declined payment (tr_status has no FALSE); asking tells.
    async with running.gateway() as gateway:
        status = await gateway.get_status(created.transaction_id)
    assert status.status is PaymentStatus.FAILED and status.paid_amount == 0
    await no_payment_notification(running)
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
    if status is PaymentStatus.PAID:
        [outcome] = await verified_outcomes(running, 1)
        assert outcome.status is status
    else:
        await no_payment_notification(running)
    async with running.gateway() as gateway:
        assert (await gateway.get_status(created.transaction_id)).status is status


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
    await anyio.sleep(0.3)
    assert len(running.receiver.payments()) == 1  # the first payment's; none for the declined charge


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
        # Another process opening the same reference gets another transaction, as at Tpay (no
        # deduplication on hiddenDescription): EKP keeps the first one's id and never opens it again.
        again = await gateway.create_payment(payment("order-6", save_card=False))
        assert again.transaction_id != created.transaction_id
        assert await gateway.create_payment(payment("order-6", save_card=False)) == again  # same process: remembered
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
        created = await gateway.create_payment(payment("order-7", save_card=False))  # one notification, no card
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
            Running(holder2["sandbox"], url2, f"{rec_url}/notify", receiver)
            await anyio.to_thread.run_sync(lambda: wait_for(lambda: len(receiver.payments()) == 1))
        holder2["sandbox"].close()
    assert len(receiver.attempts) > attempts_before
    body, headers = receiver.payments()[0]
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
        root = client.get("/sandbox-pay/x509/tpay-jws-root.pem")
        assert root.text == sandbox.root_certificate_pem != sandbox.certificate_pem
    await sandbox.stop()
    sandbox.close()


class Recording(httpx.AsyncBaseTransport):
    """The adapter's HTTP client's transport, noting every request it sends."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner, self.requests = inner, []  # type: ignore[var-annotated]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        return await self.inner.handle_async_request(request)


@pytest.mark.anyio
async def test_embedded_token_charge_goes_over_the_adapters_http_path_in_two_calls(tmp_path: Path, receiver) -> None:
    """Issue 19: no in-process shortcut. The embedded sandbox's gateway is the Tpay adapter itself; a token
    charge is `POST /transactions` then `POST /transactions/{id}/pay` through its HTTP client, as against
    Tpay; a declined charge is FAILED with the sandbox's code and gets no notification; unknown tokens are
    refused."""
    from payments import GatewayError
    from payments.tpay import TpayGateway

    rec, rec_url = receiver
    sandbox = Sandbox(SandboxSettings(public_url="http://testserver.local/sandbox-pay", db_path=str(tmp_path / "s.db"),
                                      backoff_base=BACKOFF, poll_interval=0.2))
    good = sandbox.store.save_card("Visa", "1111", 12, 2039, "succeeds")
    failing = sandbox.store.save_card("Visa", "0341", 12, 2039, "renewals_fail")
    recording = Recording(sandbox.asgi_transport())
    sandbox.asgi_transport = lambda: recording  # type: ignore[method-assign]
    try:
        async with make_gateway("sandbox", sandbox=sandbox, notification_url=f"{rec_url}/notify") as gateway:
            assert type(gateway) is TpayGateway
            first = await gateway.charge_token(renewal(good, "renewal-7"))
            declined = await gateway.charge_token(renewal(failing, "renewal-8"))
            with pytest.raises(GatewayError) as refused:
                await gateway.charge_token(renewal("sbx_tok_unknown", "renewal-9"))
        paths = [(m, p.replace("/sandbox-pay", "")) for m, p in recording.requests if p != "/sandbox-pay/oauth/auth"]
        assert paths[:2] == [("POST", "/transactions"), ("POST", f"/transactions/{first.transaction_id}/pay")]
        assert first.status is PaymentStatus.PAID
        assert declined.status is PaymentStatus.FAILED and declined.error_code == "declined"
        assert refused.value.code == "invalid_token"
        assert sandbox.count_charges(reference="renewal-7") == 1 and sandbox.count_charges() == 1
        assert sandbox.store.transaction_by_reference("renewal-9")["status"] == "pending"  # opened, never paid
        await anyio.to_thread.run_sync(lambda: wait_for(lambda: len(rec.received) >= 1))
        await anyio.sleep(0.3)
        async with sandbox.gateway(notification_url=f"{rec_url}/notify") as verifier:
            outcomes = [await verifier.parse_notification(b, h) for b, h in rec.received]
        assert [(o.reference, o.status) for o in outcomes] == [("renewal-7", PaymentStatus.PAID)]  # none for the decline
    finally:
        await sandbox.stop()
        sandbox.close()


@pytest.mark.anyio
async def test_sandbox_does_not_deduplicate_on_the_reference_like_tpay(running: Running) -> None:
    """Tpay opens a new transaction for every `POST /transactions`, whatever its hiddenDescription: two
    charges with the same reference and no recorded transaction id are two charges. (EKP's billing records
    the transaction id before paying; see tests/web/five_plus_one/test_billing_crash.py.) The one-call form
    (`pay.cardPaymentData.token` in `POST /transactions`) opens and pays at once."""
    token = running.sandbox.store.save_card("Visa", "1111", 12, 2039, "succeeds")
    body = {"amount": 45.0, "description": "Odnowienie", "hiddenDescription": "renewal-10",
            "payer": {"email": "anna@example.com", "name": "Anna Nowak"},
            "pay": {"groupId": 103, "cardPaymentData": {"token": token}}}
    auth = httpx.post(f"{running.url}/oauth/auth", data={"client_id": "sandbox", "client_secret": "sandbox"}).json()
    answer = httpx.post(f"{running.url}/transactions", json=body,
                        headers={"Authorization": f"Bearer {auth['access_token']}"}).json()
    assert answer["status"] == "correct" and answer["payments"]["status"] == "correct"
    assert answer["hiddenDescription"] == "renewal-10"
    async with running.gateway() as gateway:
        result = await gateway.charge_token(renewal(token, "renewal-10"))
    assert result.status is PaymentStatus.PAID and result.transaction_id != answer["transactionId"]
    assert running.sandbox.count_charges(reference="renewal-10") == 2
    assert len(running.sandbox.store.transactions_by_reference("renewal-10")) == 2


@pytest.mark.anyio
async def test_notifications_are_signed_by_a_certificate_issued_by_a_separate_root(running: Running) -> None:
    """As Tpay's: `/x509/notifications-jws.pem` is issued by `/x509/tpay-jws-root.pem`, and the adapter
    (which fetches the root from there when it is not pinned) checks the chain."""
    from cryptography import x509

    from payments.port import NotificationRejected
    from payments.signing import sign_detached

    signer = x509.load_pem_x509_certificate(httpx.get(f"{running.url}/x509/notifications-jws.pem").content)
    root = x509.load_pem_x509_certificate(httpx.get(f"{running.url}/x509/tpay-jws-root.pem").content)
    assert signer != root and signer.issuer == root.subject != signer.subject
    signer.verify_directly_issued_by(root)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not signer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    token = running.sandbox.store.save_card("Visa", "1111", 12, 2039, "succeeds")
    async with running.gateway() as gateway:
        await gateway.charge_token(renewal(token, "renewal-11"))
    [outcome] = await verified_outcomes(running, 1)  # verified with the root fetched from the sandbox
    assert outcome.status is PaymentStatus.PAID
    body, headers = running.receiver.payments()[0]
    # A notification signed by a key the root never certified is refused, even with the sandbox's x5u.
    from cryptography.hazmat.primitives.asymmetric import rsa

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    async with running.gateway() as gateway:
        with pytest.raises(NotificationRejected):
            await gateway.parse_notification(body, {**headers, "x-jws-signature": sign_detached(body, stranger, running.sandbox.x5u)})


@pytest.mark.anyio
async def test_token_update_notification_is_json_signed_and_acknowledged(running: Running) -> None:
    async with running.gateway() as gateway:
        created = await gateway.create_payment(payment("order-12"))
    pay_with(created.redirect_url, "5555555555554444")
    [outcome] = await verified_outcomes(running, 1)
    assert outcome.card is not None
    auth = httpx.post(f"{running.url}/oauth/auth", data={"client_id": "sandbox", "client_secret": "sandbox"}).json()
    assert httpx.post(f"{running.url}/_sandbox/cards/{outcome.card.token}/token-update").status_code == 401
    answer = httpx.post(f"{running.url}/_sandbox/cards/{outcome.card.token}/token-update", json={},
                        headers={"Authorization": f"Bearer {auth['access_token']}"})
    assert answer.json() == {"result": "success", "queued": 1}
    notices = await card_notices(running, 2)
    assert [(n.kind, n.token) for n in notices] == [("tokenization", outcome.card.token), ("token_update", outcome.card.token)]
    deliveries = running.sandbox.store.deliveries_for(created.transaction_id)
    assert all(d["delivered_at"] is not None for d in deliveries) and len(deliveries) == 3
