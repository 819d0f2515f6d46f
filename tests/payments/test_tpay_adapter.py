"""Contract tests: the Tpay adapter against a local fake of Tpay's OpenAPI (never the internet)."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from litestar import Litestar, Request, Response, post

from payments import make_gateway
from payments.port import (
    ChargeResult,
    GatewayError,
    GatewayTimeout,
    NotificationRejected,
    PaymentRequest,
    PaymentStatus,
    Refund,
    RejectReason,
    TokenCharge,
)
from payments.signing import check_x5u
from payments.tpay import TpayGateway

from .fake_tpay import CLIENT_ID, CLIENT_SECRET, MERCHANT_ID, SECURITY_CODE, FakeTpay, make_ca
from .servers import serve

pytestmark = pytest.mark.anyio


def gateway_for(fake: FakeTpay, **overrides) -> TpayGateway:
    settings = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "api_url": fake.base_url,
        "merchant_id": MERCHANT_ID,
        "security_code": SECURITY_CODE,
        "notification_url": "https://ekp.example/payments/notify",
        "root_cert": fake.ca.root_pem.decode(),
        "x5u_prefix": f"{fake.base_url}/x509/",
        "timeout": 2.0,
    }
    return make_gateway("tpay", **(settings | overrides))


def request(reference: str = "ekp-1", **overrides) -> PaymentRequest:
    values = {
        "amount": 1234,
        "description": "Bilet miesięczny",
        "payer_email": "jan@example.com",
        "payer_name": "Jan Kowalski",
        "reference": reference,
        "success_url": "https://ekp.example/ok",
        "error_url": "https://ekp.example/err",
        "save_card": True,
    }
    return PaymentRequest(**(values | overrides))


def charge(reference: str = "renewal-1", token: str = "tok-1") -> TokenCharge:
    return TokenCharge(
        token=token,
        amount=9900,
        description="Odnowienie",
        reference=reference,
        payer_email="jan@example.com",
        payer_name="Jan Kowalski",
    )


async def test_create_payment_sends_card_group_and_returns_redirect(fake_tpay: FakeTpay) -> None:
    async with gateway_for(fake_tpay) as gateway:
        created = await gateway.create_payment(request())
        again = await gateway.create_payment(request())
    assert created == again
    assert created.title == "TR-FAKE-0001" and created.transaction_id == "01FAKE0001"
    assert created.redirect_url.startswith("https://secure.tpay.com/")
    [(_, _, body)] = [r for r in fake_tpay.requests if r[1] == "/transactions"]
    assert body["amount"] == 12.34
    assert body["hiddenDescription"] == "ekp-1"
    assert body["pay"] == {"groupId": 103, "cardPaymentData": {"save": 1}}
    assert body["callbacks"]["payerUrls"] == {"success": "https://ekp.example/ok", "error": "https://ekp.example/err"}
    assert body["callbacks"]["notification"]["url"] == "https://ekp.example/payments/notify"
    assert body["payer"] == {"email": "jan@example.com", "name": "Jan Kowalski"}


async def test_oauth_token_is_cached_and_fetched_again_after_401(fake_tpay: FakeTpay) -> None:
    async with gateway_for(fake_tpay) as gateway:
        await gateway.create_payment(request("a"))
        await gateway.create_payment(request("b"))
        assert fake_tpay.token_requests == 1
        fake_tpay.revoke_tokens()
        await gateway.create_payment(request("c"))
        assert fake_tpay.token_requests == 2


async def test_bad_credentials_are_a_gateway_error(fake_tpay: FakeTpay) -> None:
    async with gateway_for(fake_tpay, client_secret="wrong") as gateway:
        with pytest.raises(GatewayError):
            await gateway.create_payment(request())


async def test_token_charge_paid_declined_and_idempotent(fake_tpay: FakeTpay) -> None:
    fake_tpay.declined_tokens.add("tok-bad")
    async with gateway_for(fake_tpay) as gateway:
        first = await gateway.charge_token(charge())
        repeat = await gateway.charge_token(charge())
        declined = await gateway.charge_token(charge("renewal-2", token="tok-bad"))
    assert first == repeat
    assert isinstance(first, ChargeResult) and first.paid and first.title.startswith("TR-FAKE-")
    assert fake_tpay.pay_calls == 2  # the repeated reference did not pay again
    assert declined.status is PaymentStatus.FAILED and declined.error_code
    pay_body = next(b for m, p, b in fake_tpay.requests if p.endswith("/pay"))
    assert pay_body == {"groupId": 103, "method": "sale", "cardPaymentData": {"token": "tok-1"}}


async def test_token_charge_retry_after_timeout_does_not_pay_twice(fake_tpay: FakeTpay) -> None:
    async with gateway_for(fake_tpay, timeout=0.3) as gateway:
        await gateway.create_payment(request("warm-up"))  # token fetched
        created = await gateway.charge_token(charge("r-9"))
        assert created.paid
    # A fresh process with the same reference goes through Tpay again, but the adapter in one process
    # remembers; here we check the in-process retry path after the pay call timed out:
    async with gateway_for(fake_tpay, timeout=0.3) as gateway:
        await gateway.create_payment(request("warm-up-2"))
        fake_tpay.delay_next = 0.0
        original_pay_calls = fake_tpay.pay_calls
        # make the pay call time out *after* the fake has processed it
        gateway._charge_tx["r-10"] = ("01FAKE9999", "TR-FAKE-9999")
        fake_tpay.transactions["01FAKE9999"] = {
            "transactionId": "01FAKE9999", "title": "TR-FAKE-9999", "status": "correct", "amount": 99.0,
            "hiddenDescription": "r-10",
        }
        result = await gateway.charge_token(charge("r-10"))
    assert result.paid and result.title == "TR-FAKE-9999"
    assert fake_tpay.pay_calls == original_pay_calls


async def test_refund_full_and_partial(fake_tpay: FakeTpay) -> None:
    async with gateway_for(fake_tpay) as gateway:
        created = await gateway.create_payment(request())
        partial = await gateway.refund(Refund(created.transaction_id, 500))
        full = await gateway.refund(Refund(created.transaction_id))
        status = await gateway.get_status(created.transaction_id)
    bodies = [b for m, p, b in fake_tpay.requests if p.endswith("/refunds")]
    assert bodies == [{"amount": 5.0}, {}]
    assert partial.amount == 500 and full.amount is None
    assert status.status is PaymentStatus.REFUNDED and status.reference == "ekp-1" and status.amount == 1234


async def test_get_status_for_reconciliation(fake_tpay: FakeTpay) -> None:
    async with gateway_for(fake_tpay) as gateway:
        created = await gateway.create_payment(request())
        pending = await gateway.get_status(created.transaction_id)
        fake_tpay.transactions[created.transaction_id]["status"] = "correct"
        paid = await gateway.get_status(created.transaction_id)
    assert pending.status is PaymentStatus.PENDING and pending.paid_amount == 0
    assert paid.status is PaymentStatus.PAID and paid.paid_amount == 1234 and paid.title == created.title


async def test_server_error_and_timeout(fake_tpay: FakeTpay) -> None:
    async with gateway_for(fake_tpay, timeout=0.3) as gateway:
        await gateway.create_payment(request("warm"))
        fake_tpay.fail_next = 500
        with pytest.raises(GatewayError) as info:
            await gateway.create_payment(request("x"))
        assert info.value.code == "internal_error" and info.value.status_code == 500
        fake_tpay.delay_next = 1.0
        with pytest.raises(GatewayTimeout):
            await gateway.create_payment(request("y"))


# ---------------------------------------------------------------------------- notifications


async def test_signed_notification_with_saved_card_is_accepted(fake_tpay: FakeTpay) -> None:
    card = {"card_token": "tok-abc", "card_brand": "Visa", "card_tail": "1111", "token_expiry_date": "1230"}
    body = fake_tpay.notification(card=card)
    async with gateway_for(fake_tpay) as gateway:
        outcome = await gateway.parse_notification(body, {"X-JWS-Signature": fake_tpay.sign(body)})
        again = await gateway.parse_notification(body, {"x-jws-signature": fake_tpay.sign(body)})
    assert outcome == again
    assert outcome.status is PaymentStatus.PAID and outcome.title == "TR-FAKE-0001"
    assert outcome.reference == "ref-1" and outcome.amount == 1234 and outcome.paid_amount == 1234
    assert outcome.card is not None
    assert (outcome.card.token, outcome.card.brand, outcome.card.last4) == ("tok-abc", "Visa", "1111")
    assert (outcome.card.expiry_month, outcome.card.expiry_year) == (12, 2030)
    assert fake_tpay.cert_requests == 1  # certificate cached
    assert "tok-abc" not in repr(outcome)


@pytest.mark.parametrize(("status", "expected"), [("FALSE", PaymentStatus.FAILED), ("CHARGEBACK", PaymentStatus.REFUNDED)])
async def test_notification_statuses(fake_tpay: FakeTpay, status: str, expected: PaymentStatus) -> None:
    body = fake_tpay.notification(status=status)
    async with gateway_for(fake_tpay) as gateway:
        outcome = await gateway.parse_notification(body, {"X-JWS-Signature": fake_tpay.sign(body)})
    assert outcome.status is expected


async def reject(fake: FakeTpay, body: bytes, headers: dict[str, str], **overrides) -> RejectReason:
    async with gateway_for(fake, **overrides) as gateway:
        with pytest.raises(NotificationRejected) as info:
            await gateway.parse_notification(body, headers)
    return info.value.reason


async def test_tampered_body_is_rejected(fake_tpay: FakeTpay) -> None:
    body = fake_tpay.notification()
    signature = fake_tpay.sign(body)
    tampered = body.replace(b"tr_amount=12.34", b"tr_amount=99.99")
    assert await reject(fake_tpay, tampered, {"X-JWS-Signature": signature}) is RejectReason.BAD_SIGNATURE


async def test_forged_signature_with_own_key_is_rejected(fake_tpay: FakeTpay) -> None:
    body = fake_tpay.notification()
    forger = make_ca("Forger")
    signature = fake_tpay.sign(body, key=forger.signer_key)  # claims Tpay's x5u, signed with another key
    assert await reject(fake_tpay, body, {"X-JWS-Signature": signature}) is RejectReason.BAD_SIGNATURE


async def test_missing_and_malformed_signature(fake_tpay: FakeTpay) -> None:
    body = fake_tpay.notification()
    assert await reject(fake_tpay, body, {}) is RejectReason.MISSING_SIGNATURE
    assert await reject(fake_tpay, body, {"X-JWS-Signature": "abc"}) is RejectReason.MALFORMED_SIGNATURE
    none_alg = "eyJhbGciOiJub25lIn0.." + "AAAA"
    assert await reject(fake_tpay, body, {"X-JWS-Signature": none_alg}) is RejectReason.UNSUPPORTED_ALGORITHM


@pytest.mark.parametrize(
    "x5u",
    [
        "http://127.0.0.1.evil.example:{port}/x509/notifications-jws.pem",
        "http://127.0.0.1:{port}@evil.example/x509/notifications-jws.pem",
        "http://evil.example/?u=http://127.0.0.1:{port}/x509/notifications-jws.pem",
        "http://127.0.0.1:{port}/other/notifications-jws.pem",
        "https://127.0.0.1:{port}/x509/notifications-jws.pem",
    ],
)
async def test_x5u_outside_trusted_prefix_is_rejected(fake_tpay: FakeTpay, x5u: str) -> None:
    port = fake_tpay.base_url.rsplit(":", 1)[1]
    body = fake_tpay.notification()
    signature = fake_tpay.sign(body, x5u=x5u.format(port=port))
    assert await reject(fake_tpay, body, {"X-JWS-Signature": signature}) is RejectReason.UNTRUSTED_X5U
    assert fake_tpay.cert_requests == 0


@pytest.mark.parametrize(
    "x5u",
    [
        "https://secure.tpay.com.evil.example/x509/notifications-jws.pem",
        "https://secure.tpay.com@evil.example/x509/notifications-jws.pem",
        "https://evil.example/https://secure.tpay.com/x509/notifications-jws.pem",
        "http://secure.tpay.com/x509/notifications-jws.pem",
        "https://secure.tpay.com:8443/x509/notifications-jws.pem",
        "https://secure.tpay.com/x509/../evil/notifications-jws.pem",
    ],
)
def test_production_x5u_prefix_is_checked_on_the_parsed_url(x5u: str) -> None:
    with pytest.raises(NotificationRejected) as info:
        check_x5u(x5u, "https://secure.tpay.com/x509/")
    assert info.value.reason is RejectReason.UNTRUSTED_X5U


def test_production_x5u_accepts_tpays_own_certificate_url() -> None:
    check_x5u("https://secure.tpay.com/x509/notifications-jws.pem", "https://secure.tpay.com/x509/")
    check_x5u("https://SECURE.tpay.com:443/x509/notifications-jws.pem", "https://secure.tpay.com:443/x509/")


async def test_certificate_not_chained_to_root_is_rejected(fake_tpay: FakeTpay) -> None:
    rogue = make_ca("Rogue")
    fake_tpay.served_pem = rogue.signer_pem  # Tpay's URL serves a certificate from another CA
    body = fake_tpay.notification()
    signature = fake_tpay.sign(body, key=rogue.signer_key)
    assert await reject(fake_tpay, body, {"X-JWS-Signature": signature}) is RejectReason.UNTRUSTED_CERTIFICATE


async def test_wrong_configured_root_is_rejected(fake_tpay: FakeTpay) -> None:
    body = fake_tpay.notification()
    other_root = make_ca("Other").root_pem.decode()
    reason = await reject(fake_tpay, body, {"X-JWS-Signature": fake_tpay.sign(body)}, root_cert=other_root)
    assert reason is RejectReason.UNTRUSTED_CERTIFICATE


async def test_wrong_md5sum_is_rejected(fake_tpay: FakeTpay) -> None:
    body = fake_tpay.notification(md5sum="0" * 32)
    assert await reject(fake_tpay, body, {"X-JWS-Signature": fake_tpay.sign(body)}) is RejectReason.BAD_CHECKSUM


async def test_other_merchant_is_rejected(fake_tpay: FakeTpay) -> None:
    body = fake_tpay.notification(merchant_id="99999")
    assert await reject(fake_tpay, body, {"X-JWS-Signature": fake_tpay.sign(body)}) is RejectReason.WRONG_MERCHANT


async def test_root_can_be_fetched_when_not_pinned(fake_tpay: FakeTpay) -> None:
    body = fake_tpay.notification()
    async with gateway_for(fake_tpay, root_cert=None) as gateway:
        outcome = await gateway.parse_notification(body, {"X-JWS-Signature": fake_tpay.sign(body)})
    assert outcome.status is PaymentStatus.PAID


def test_notification_sent_over_http_is_verified_and_acknowledged(fake_tpay: FakeTpay) -> None:
    """The fake sends a signed notification to a webhook that uses the adapter and answers TRUE."""
    outcomes = []

    def webhook_app(_base: str) -> Litestar:
        @post("/notify", status_code=200)
        async def notify(request: Request) -> Response[str]:
            async with gateway_for(fake_tpay) as gateway:
                try:
                    outcomes.append(await gateway.parse_notification(await request.body(), request.headers))
                except NotificationRejected as exc:
                    return Response(f"FALSE - {exc.reason.value}", status_code=400, media_type="text/plain")
            return Response(gateway.acknowledgement, media_type="text/plain")

        return Litestar([notify], openapi_config=None)

    with serve(webhook_app) as webhook:
        body = fake_tpay.notification()
        good = httpx.post(f"{webhook}/notify", content=body, headers={"X-JWS-Signature": fake_tpay.sign(body)})
        bad = httpx.post(f"{webhook}/notify", content=body + b"&x=1", headers={"X-JWS-Signature": fake_tpay.sign(body)})
    assert (good.status_code, good.text) == (200, "TRUE")
    assert bad.status_code == 400 and bad.text == "FALSE - bad_signature"
    assert [o.status for o in outcomes] == [PaymentStatus.PAID]


def test_expired_signing_certificate_is_accepted_like_tpays_client_with_a_warning(caplog) -> None:
    # Tpay's client checks the chain's signatures, not dates (docs/payments.md): a late renewal at Tpay
    # must not make every notification bounce.  A chain not signed by the root still fails (tests above).
    from payments.signing import check_chain

    ca = make_ca()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=200)
    with caplog.at_level("WARNING", logger="payments.signing"):
        assert check_chain([ca.signer], ca.root, later) == ca.signer
    assert "outside its validity" in caplog.text


def test_the_adapter_uses_no_deprecated_authlib_api():
    """Issue 14: Authlib's OAuth 2.0 core, not its httpx integration (deprecated in Authlib 1.9 for `httpx2`)."""
    import subprocess
    import sys
    from pathlib import Path

    PROJECT_ROOT = Path(__file__).resolve().parents[2]

    result = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", "import payments.tpay"],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "authlib.integrations" not in (PROJECT_ROOT / "payments" / "tpay.py").read_text(encoding="utf-8")
