"""A local fake of Tpay's OpenAPI and notification sender, with its own CA chain (tests only).

It answers in Tpay's shapes, taken from Tpay's published client and plugins: the card attempt's outcome
nested as `payments.status` (`correct` / `declined`, reason in `payments.reason`) while a declined
transaction's own `status` stays `pending`, the paid amount as `payments.amountPaid`
(tpay-openapi-php 2.4.x `src/Api/Transactions/TransactionsApi.php` answers as read by Tpay's Magento
plugin `Model/ApiFacade/Transaction/TransactionApiFacade.php` and WooCommerce `includes/...Card.php`),
and form notifications whose md5sum hashes `tr_amount` with two decimals
(`src/Webhook/JWSVerifiedPaymentNotification.php`: `Util::numberFormat`)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from litestar import Litestar, Request, Response, get, post
from litestar.params import FromPath

from payments.signing import legacy_md5sum, sign_detached
from payments.tpay import md5_amount

MERCHANT_ID = "01234"
SECURITY_CODE = "fake-security-code"
CLIENT_ID = "fake-client"
CLIENT_SECRET = "fake-secret"


@dataclass
class CertificateAuthority:
    root_key: rsa.RSAPrivateKey
    root: x509.Certificate
    signer_key: rsa.RSAPrivateKey
    signer: x509.Certificate

    @property
    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)

    @property
    def signer_pem(self) -> bytes:
        return self.signer.public_bytes(serialization.Encoding.PEM)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(name: str = "Fake Tpay") -> CertificateAuthority:
    """Root CA + notification signing certificate, like Tpay's tpay-jws-root.pem / notifications-jws.pem."""
    now = dt.datetime.now(dt.UTC)
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} Root CA"))
        .issuer_name(_name(f"{name} Root CA"))
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    signer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signer = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} notifications"))
        .issuer_name(root.subject)
        .public_key(signer_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    return CertificateAuthority(root_key, root, signer_key, signer)


@dataclass
class FakeTpay:
    ca: CertificateAuthority
    base_url: str = ""
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    token_requests: int = 0
    cert_requests: int = 0
    tokens: set[str] = field(default_factory=set)
    transactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    pay_calls: int = 0
    declined_tokens: set[str] = field(default_factory=set)
    fail_next: int | None = None  # answer the next API call with this HTTP status
    delay_next: float = 0.0
    served_pem: bytes | None = None  # serve this instead of the genuine signing certificate
    refund_answer: dict[str, Any] | None = None  # answer refunds with this instead of Tpay's usual one
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    @property
    def x5u(self) -> str:
        return f"{self.base_url}/x509/notifications-jws.pem"

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    def notification(
        self,
        *,
        tr_id: str = "TR-FAKE-0001",
        amount: str = "12.34",
        crc: str = "ref-1",
        status: str = "TRUE",
        card: dict[str, str] | None = None,
        md5sum: str | None = None,
        merchant_id: str = MERCHANT_ID,
        extra: dict[str, str] | None = None,
    ) -> bytes:
        fields = {
            "id": merchant_id,
            "tr_id": tr_id,
            "tr_date": "2026-11-21 12:00:00",
            "tr_crc": crc,
            "tr_amount": amount,
            "tr_paid": amount if status == "TRUE" else "0.00",
            "tr_desc": "Bilet",
            "tr_status": status,
            "tr_error": "none",
            "tr_email": "jan@example.com",
            "test_mode": "0",
            "md5sum": md5sum or legacy_md5sum(merchant_id, tr_id, md5_amount(amount), crc, SECURITY_CODE),
            **(card or {}),
            **(extra or {}),
        }
        return urlencode(fields).encode()

    def sign(self, body: bytes, *, x5u: str | None = None, key: rsa.RSAPrivateKey | None = None) -> str:
        return sign_detached(body, key or self.ca.signer_key, x5u or self.x5u)

    # --------------------------------------------------------------- the ASGI app
    def app(self) -> Litestar:
        fake = self

        async def guard(request: Request[Any, Any, Any]) -> Response[Any] | None:
            if fake.delay_next:
                delay, fake.delay_next = fake.delay_next, 0.0
                await asyncio.sleep(delay)
            auth = request.headers.get("authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in fake.tokens:
                return Response({"result": "failed", "errors": [{"errorCode": "unauthorized"}]}, status_code=401)
            if fake.fail_next is not None:
                status, fake.fail_next = fake.fail_next, None
                return Response(
                    {"result": "failed", "errors": [{"errorCode": "internal_error", "errorMessage": "boom"}]},
                    status_code=status,
                )
            return None

        @post("/oauth/auth", status_code=200)
        async def oauth(request: Request[Any, Any, Any]) -> dict[str, Any]:
            form = await request.form()
            fake.token_requests += 1
            if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
                return Response({"error": "invalid_client"}, status_code=401)  # type: ignore[return-value]
            token = secrets.token_hex(8)
            fake.tokens.add(token)
            return {"access_token": token, "token_type": "Bearer", "expires_in": 7200, "scope": ""}

        @post("/transactions", status_code=200)
        async def create(request: Request[Any, Any, Any]) -> Any:
            if (denied := await guard(request)) is not None:
                return denied
            body = await request.json()
            fake.requests.append(("POST", "/transactions", body))
            n = next(fake._ids)
            tx = {
                "transactionId": f"01FAKE{n:04d}",
                "title": f"TR-FAKE-{n:04d}",
                "status": "pending",
                "amount": body["amount"],
                "hiddenDescription": body.get("hiddenDescription"),
            }
            fake.transactions[tx["transactionId"]] = tx
            return {
                "result": "success",
                **tx,
                "transactionPaymentUrl": f"https://secure.tpay.com/?title={tx['title']}",
            }

        @post("/transactions/{tx_id:str}/pay", status_code=200)
        async def pay(request: Request[Any, Any, Any], tx_id: FromPath[str]) -> Any:
            if (denied := await guard(request)) is not None:
                return denied
            body = await request.json()
            fake.requests.append(("POST", f"/transactions/{tx_id}/pay", body))
            fake.pay_calls += 1
            tx = fake.transactions[tx_id]
            declined = body["cardPaymentData"]["token"] in fake.declined_tokens
            # Tpay: a declined card attempt leaves the transaction pending; the attempt says declined.
            tx["status"] = "pending" if declined else "correct"
            tx["payments"] = {
                "status": "declined" if declined else "correct",
                "method": "sale",
                "amountPaid": 0 if declined else tx["amount"],
                **({"reason": "card_declined"} if declined else {}),
            }
            return {"result": "success", **tx}

        @post("/transactions/{tx_id:str}/refunds", status_code=200)
        async def refund(request: Request[Any, Any, Any], tx_id: FromPath[str]) -> Any:
            if (denied := await guard(request)) is not None:
                return denied
            body = await request.json()
            fake.requests.append(("POST", f"/transactions/{tx_id}/refunds", body))
            fake.transactions[tx_id]["status"] = "refund"
            return fake.refund_answer or {"result": "success", "status": "correct"}

        @get("/transactions/{tx_id:str}")
        async def status(request: Request[Any, Any, Any], tx_id: FromPath[str]) -> Any:
            if (denied := await guard(request)) is not None:
                return denied
            tx = fake.transactions[tx_id]
            paid = tx["amount"] if tx["status"] in ("correct", "refund") else 0
            payments = tx.get("payments") or {"status": "pending", "method": "", "amountPaid": 0}
            return {"result": "success", **tx, "payments": {**payments, "amountPaid": paid}}

        @get("/x509/notifications-jws.pem", sync_to_thread=False)
        def signer_cert() -> Response[bytes]:
            fake.cert_requests += 1
            return Response(fake.served_pem or fake.ca.signer_pem, media_type="application/x-pem-file")

        @get("/x509/tpay-jws-root.pem", sync_to_thread=False)
        def root_cert() -> Response[bytes]:
            return Response(fake.ca.root_pem, media_type="application/x-pem-file")

        return Litestar([oauth, create, pay, refund, status, signer_cert, root_cert], openapi_config=None)
