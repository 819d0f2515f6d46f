"""The built-in Tpay-style payment sandbox: a separate Litestar (ASGI) app.

It speaks the subset of Tpay's OpenAPI that EKP uses (`/oauth/auth`, `/transactions`,
`/transactions/{id}/pay`, `/transactions/{id}/refunds`, `GET /transactions/{id}`), hosts the card page
(the only place a card number is typed), saves card tokens, and sends Tpay-shaped notifications over
real HTTP, retried with back-off until acknowledged: form notifications (Tpay's `BasicPayment` fields,
`tr_status` `TRUE` or `CHARGEBACK`, never `FALSE`: a declined payment gets no notification, as at Tpay;
`md5sum`) answered `TRUE`, and JSON card notifications (`{"type": "tokenization" | "token_update",
"data": {...}}`) answered `{"result":true}`, all signed with a detached RS256 JWS whose `x5u` names its
signing certificate, issued by its own root certificate (`/x509/notifications-jws.pem`,
`/x509/tpay-jws-root.pem`, as Tpay's).  Like Tpay it deduplicates nothing on the merchant's reference:
each `POST /transactions` opens a new transaction; one transaction is paid at most once.  Its state
lives in its own SQLite file, so it can be mounted in the EKP process (default) or run on its own host.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from litestar import Litestar, Request, Response, get, post
from litestar.handlers import asgi
from litestar.params import FromPath, FromQuery
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.template.config import TemplateConfig
from litestar.types import Receive, Scope, Send

from ..amounts import grosze_to_wire, wire_to_grosze
from ..signing import legacy_md5sum, sign_detached
from ..tpay import TpayGateway
from .cards import TEST_CARDS, CardBehaviour, validate_card_form
from .delivery import NotificationDeliverer
from .store import SandboxStore

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
TOKEN_TTL = 7200


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    public_url: str  # where browsers (and x5u fetchers) reach the sandbox, e.g. http://localhost:8000/sandbox-pay
    db_path: str = "var/sandbox.db"
    client_id: str = "sandbox"
    client_secret: str = "sandbox"
    merchant_id: str = "1010"
    security_code: str = "sandbox-security-code"
    backoff_base: float = 5.0  # seconds before the first retry; doubles each time
    backoff_max: float = 3600.0
    max_attempts: int = 25
    delivery_timeout: float = 10.0
    poll_interval: float = 30.0
    today: Callable[[], dt.date] = dt.date.today  # the calendar card expiry is checked against (tests pin it)
    # The merchant's URL: notification and payer return URLs must lie under it (empty: any http(s) URL, for a
    # sandbox serving several test merchants). Otherwise the sandbox posts signed notifications wherever a
    # caller asks (server-side request forgery) and sends payers anywhere (open redirect).
    callback_base: str = ""


def url_under(url: str, base: str) -> bool:
    """Whether `url` is `base` or below it: same scheme, host and port, no user info, a path under base's
    path (on a segment boundary). Not a string prefix: `http://app.example@evil.example` and
    `http://app.example.evil.example` start like `http://app.example` and lie elsewhere."""
    try:
        target, root = urlsplit(url), urlsplit(base)
        target_port, root_port = target.port, root.port
    except ValueError:
        return False
    if target.scheme not in ("http", "https") or target.scheme != root.scheme.lower():
        return False
    if "@" in target.netloc or not target.hostname or target.hostname != (root.hostname or "").lower():
        return False
    default = 443 if target.scheme == "https" else 80
    if (target_port or default) != (root_port or default):
        return False
    root_path = root.path.rstrip("/")
    return not root_path or target.path == root_path or target.path.startswith(root_path + "/")


def _allowed_callback(url: str, base: str) -> bool:
    if len(url) > 2000:
        return False
    if not base:
        scheme = urlsplit(url).scheme
        return scheme in ("http", "https")
    return url_under(url, base)


def _decline_reason(card: dict[str, Any], today: dt.date) -> str | None:
    """Why a token charge on this saved card is declined (None: it is paid)."""
    if (card["exp_year"], card["exp_month"]) < (today.year, today.month):
        return "card_expired"
    if card["behaviour"] == CardBehaviour.RENEWALS_FAIL:
        return "declined"
    return None


def _new_signing_chain() -> tuple[str, str, str]:
    """(root certificate, signer's private key, signer certificate), PEM: a root CA and the notification
    signing certificate it issues, as Tpay's `tpay-jws-root.pem` and `notifications-jws.pem`. The root's
    private key signs the signer's certificate and is then thrown away."""
    now = dt.datetime.now(dt.UTC)
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EKP payment sandbox root CA")])
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signer = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EKP payment sandbox notifications")]))
        .issuer_name(root_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return root.public_bytes(pem).decode(), key_pem, signer.public_bytes(pem).decode()


class _ApiError(Exception):
    def __init__(self, status_code: int, code: str, message: str = "") -> None:
        super().__init__(code)
        self.status_code, self.code, self.message = status_code, code, message


def _api_error_response(exc: _ApiError) -> Response[Any]:
    return Response(
        {"result": "failed", "errors": [{"errorCode": exc.code, "errorMessage": exc.message}]},
        status_code=exc.status_code,
    )


def _json_object(value: object) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one (a missing or malformed part of a request body)."""
    return value if isinstance(value, dict) else {}


def format_pln(grosze: int) -> str:
    zl, gr = divmod(grosze, 100)
    return f"{zl:,}".replace(",", "\u00a0") + f",{gr:02d}\u00a0zł"


# An ASGI app as plain mappings, the way httpx's ASGITransport types it. Litestar types the same scope and
# messages as TypedDicts, which are not MutableMappings to mypy; at run time both are the same dicts.
_ASGIMessage = MutableMapping[str, Any]
_PlainASGIApp = Callable[
    [_ASGIMessage, Callable[[], Awaitable[_ASGIMessage]], Callable[[_ASGIMessage], Awaitable[None]]], Awaitable[None]
]


class _StripPrefix:
    """ASGI wrapper: lets in-process HTTP clients use the sandbox's public URLs (with the mount prefix)."""

    def __init__(self, app: Litestar, prefix: str) -> None:
        self.app = cast("_PlainASGIApp", app)  # Litestar is an ASGI app; only its scope types are narrower
        self.prefix = prefix.rstrip("/")

    async def __call__(
        self, scope: _ASGIMessage, receive: Callable[[], Awaitable[_ASGIMessage]],
        send: Callable[[_ASGIMessage], Awaitable[None]],
    ) -> None:
        path: str = scope.get("path", "")
        if self.prefix and scope["type"] == "http" and (path == self.prefix or path.startswith(self.prefix + "/")):
            rest = path[len(self.prefix) :] or "/"
            scope = {**scope, "path": rest, "raw_path": rest.encode()}
        await self.app(scope, receive, send)


class Sandbox:
    """One sandbox instance: its store, signing key, notification deliverer and ASGI `app`."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.public_url = settings.public_url.rstrip("/")
        self.store = SandboxStore(settings.db_path)
        self._private_key, self.certificate_pem, self.root_certificate_pem = self._load_or_create_signing()
        self.deliverer = NotificationDeliverer(
            self.store,
            backoff_base=settings.backoff_base,
            backoff_max=settings.backoff_max,
            max_attempts=settings.max_attempts,
            timeout=settings.delivery_timeout,
            poll_interval=settings.poll_interval,
        )
        self._access_tokens: dict[str, float] = {}
        self.app = self._build_app()

    # ------------------------------------------------------------------ lifecycle & wiring
    @property
    def x5u(self) -> str:
        return f"{self.public_url}/x509/notifications-jws.pem"

    @property
    def root_url(self) -> str:
        return f"{self.public_url}/x509/tpay-jws-root.pem"

    async def start(self) -> None:
        """Start delivering notifications (resumes deliveries left pending by an earlier run)."""
        self.deliverer.start()
        self.deliverer.wake()

    async def stop(self) -> None:
        await self.deliverer.stop()

    def close(self) -> None:
        self.store.close()

    def count_charges(self, *, token: str | None = None, reference: str | None = None) -> int:
        """Successful charges (hosted payments and token charges) recorded by the sandbox."""
        return self.store.count_charges(token=token, reference=reference)

    def asgi_transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport that reaches this sandbox in-process at its public URLs."""
        return httpx.ASGITransport(app=_StripPrefix(self.app, urlsplit(self.public_url).path))

    def gateway(self, notification_url: str, *, in_process: bool = True, timeout: float = 15.0) -> TpayGateway:
        """The Tpay adapter, talking to this sandbox as to Tpay: every call (OAuth, transactions, the
        two-call token charge, refunds, statuses) goes over the adapter's HTTP client; `in_process`
        only routes it through an ASGI transport instead of a socket. Notifications are verified
        against the sandbox's root certificate (pinned, as `EKP_TPAY_ROOT_CERT` pins Tpay's)."""
        options: dict[str, Any] = dict(
            client_id=self.settings.client_id,
            client_secret=self.settings.client_secret,
            security_code=self.settings.security_code,
            merchant_id=self.settings.merchant_id,
            notification_url=notification_url,
            api_url=self.public_url,
            root_cert=self.root_certificate_pem,
            x5u_prefix=f"{self.public_url}/x509/",
            timeout=timeout,
        )
        if in_process:
            options["transport"] = self.asgi_transport()
        return TpayGateway(**options)

    def mount_handler(self, path: str = "/sandbox-pay") -> Any:
        """A Litestar route handler that mounts this sandbox under `path` in another Litestar app."""
        app = self.app

        @asgi(path, is_mount=True, copy_scope=True)
        async def payment_sandbox(scope: Scope, receive: Receive, send: Send) -> None:
            await app(scope, receive, send)

        return payment_sandbox

    def _load_or_create_signing(self) -> tuple[rsa.RSAPrivateKey, str, str]:
        """The signer's key, its certificate and the root certificate that issued it (as Tpay's
        `notifications-jws.pem` is issued by `tpay-jws-root.pem`); made at the first start, then kept."""
        stored = self.store.load_signing()
        if stored is None:
            stored = self.store.save_signing(*_new_signing_chain())
        private_key = serialization.load_pem_private_key(stored[1].encode(), password=None)
        assert isinstance(private_key, rsa.RSAPrivateKey)
        return private_key, stored[2], stored[0]

    # ------------------------------------------------------------------ notifications
    def _payment_notification(self, tx: dict[str, Any], tr_status: str,
                              card: dict[str, Any] | None = None) -> tuple[str, str, str] | None:
        """(url, body, signature) of a form notification, or None when the transaction has no
        notification URL. `tr_status` is one of Tpay's: TRUE (paid) or CHARGEBACK (money returned)."""
        if not tx["notify_url"]:
            return None
        assert tr_status in ("TRUE", "PAID", "CHARGEBACK")  # Tpay's set (tpay-openapi-php TransactionStatus.php)
        amount = grosze_to_wire(tx["amount"])
        merchant = self.settings.merchant_id
        # Tpay's names (tpay-openapi-php `Model/Objects/NotificationBody/BasicPayment.php`).
        fields = {
            "id": merchant,
            "tr_id": tx["title"],
            "tr_date": dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
            "tr_crc": tx["reference"],
            "tr_amount": amount,
            "tr_paid": grosze_to_wire(tx["amount"]),
            "tr_desc": tx["description"],
            "tr_status": tr_status,
            "tr_error": tx["error_code"] or "none",
            "tr_email": tx["payer_email"],
            "test_mode": "1",
            "md5sum": legacy_md5sum(merchant, tx["title"], amount, tx["reference"], self.settings.security_code),
        }
        if card is not None:
            fields |= {  # tpay-openapi-php `Model/Fields/Notification/CardToken.php`, `CardBrand.php`, ...
                "card_token": card["token"],
                "tokenPaymentData_cardBrand": card["brand"],
                "tokenPaymentData_cardTail": card["last4"],
                "tokenPaymentData_cardExpiryDate": f"{card['exp_month']:02d}{card['exp_year'] % 100:02d}",
            }
        body = urlencode(fields)
        return tx["notify_url"], body, sign_detached(body.encode(), self._private_key, self.x5u)

    def _card_notification(self, url: str, kind: str, card: dict[str, Any],
                           tokenization_id: str = "") -> tuple[str, str, str]:
        """A JSON card notification (tpay-openapi-php `Model/Objects/NotificationBody/Tokenization.php`,
        `TokenUpdate.php`; the `type`/`data` envelope as `Webhook/JWSVerifiedPaymentNotification.php` reads it)."""
        data: dict[str, str] = {"token": card["token"]}
        if kind == "tokenization":
            data = {"tokenizationId": tokenization_id, **data, "cardBrand": card["brand"], "cardTail": card["last4"],
                    "tokenExpiryDate": f"{card['exp_month']:02d}{card['exp_year'] % 100:02d}"}
        body = json.dumps({"type": kind, "data": data}, separators=(",", ":"))
        return url, body, sign_detached(body.encode(), self._private_key, self.x5u)

    def _queue(self, tx_id: str, delivery: tuple[str, str, str] | None) -> None:
        if delivery is None:
            return
        self.store.add_delivery(tx_id, *delivery, time.time())
        self._wake_deliverer()

    def _wake_deliverer(self) -> None:
        if not self.deliverer.running:
            self.deliverer.start()
        self.deliverer.wake()

    def _notify(self, tx_id: str, tr_status: str, *, with_card: bool = False) -> None:
        tx = self.store.transaction(tx_id)
        if tx is None:
            return
        card = self.store.card(tx["card_token"]) if with_card and tx["card_token"] else None
        self._queue(tx_id, self._payment_notification(tx, tr_status, card))
        if card is not None and tx["notify_url"]:
            # As after a Tpay card tokenization: the token in a JSON notification of its own too.
            self._queue(tx_id, self._card_notification(tx["notify_url"], "tokenization", card, f"TO-{tx['title']}"))
        log.info("sandbox notification queued for %s (%s)", tx["title"], tr_status)

    def notify_token_update(self, token: str) -> int:
        """Tell the merchant that a saved card's token was updated (`{"type": "token_update"}`), e.g.
        after the bank renewed the card; sent to the notification URL of the payment that saved it."""
        card = self.store.card(token)
        tx = self.store.transaction_saving(token)
        if card is None or tx is None or not tx["notify_url"]:
            return 0
        self._queue(tx["id"], self._card_notification(tx["notify_url"], "token_update", card))
        return 1

    # ------------------------------------------------------------------ payment outcomes
    def _pay_hosted(self, tx: dict[str, Any], brand: str, last4: str, exp_month: int, exp_year: int, behaviour: str) -> str:
        token = None
        if tx["save_card"]:
            token = self.store.save_card(brand, last4, exp_month, exp_year, behaviour)
        if self.store.update_transaction(
            tx["id"], only_if_status="pending", status="correct", paid_at=time.time(), card_token=token,
            pending_behaviour=None, error_code=None,
        ):
            self.store.record_charge(tx["id"], tx["reference"], token, tx["amount"], True)
            self._notify(tx["id"], "TRUE", with_card=True)
        success_url: str = tx["success_url"]  # a NOT NULL text column of the row
        return success_url

    def _decline_hosted(self, tx: dict[str, Any], error_code: str) -> str:
        # No notification: Tpay sends none for a declined payment (its tr_status has no FALSE); the
        # merchant learns it from the payer's return or by asking (`GET /transactions/{id}`).
        self.store.update_transaction(
            tx["id"], only_if_status="pending", status="declined", error_code=error_code, pending_behaviour=None
        )
        error_url: str = tx["error_url"]  # a NOT NULL text column of the row
        return error_url

    # ------------------------------------------------------------------ API operations
    def _check_auth(self, request: Request[Any, Any, Any]) -> None:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        expires = self._access_tokens.get(token)
        if expires is None or expires < time.time():
            raise _ApiError(401, "unauthorized", "missing or expired access token")

    def _issue_token(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        client_id, client_secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        ok = secrets.compare_digest(client_id, self.settings.client_id) and secrets.compare_digest(
            client_secret, self.settings.client_secret
        )
        if not ok:
            raise _ApiError(401, "invalid_client", "bad client credentials")
        token = secrets.token_hex(20)
        now = time.time()
        self._access_tokens = {t: e for t, e in self._access_tokens.items() if e > now}
        self._access_tokens[token] = now + TOKEN_TTL
        return {
            "issued_at": int(now),
            "scope": "",
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL,
            "client_id": client_id,
            "access_token": token,
        }

    def api_create(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _ApiError(400, "invalid_body", "JSON object expected")
        try:
            amount = wire_to_grosze(body.get("amount"))
        except ValueError as exc:
            raise _ApiError(400, "invalid_amount", "amount must be a number with at most 2 decimals") from exc
        if amount <= 0:
            raise _ApiError(400, "invalid_amount", "amount must be positive")
        reference = str(body.get("hiddenDescription") or "")
        description = str(body.get("description") or "")
        payer = _json_object(body.get("payer"))
        if not reference or not description or not payer.get("email"):
            raise _ApiError(400, "missing_field", "hiddenDescription, description and payer.email are required")
        callbacks = _json_object(body.get("callbacks"))
        payer_urls = _json_object(callbacks.get("payerUrls"))
        notification = _json_object(callbacks.get("notification"))
        card_data = _json_object(_json_object(body.get("pay")).get("cardPaymentData"))
        for url in (payer_urls.get("success"), payer_urls.get("error"), notification.get("url")):
            if url and not _allowed_callback(str(url), self.settings.callback_base):
                raise _ApiError(400, "invalid_url", "notification and return URLs must lie under the merchant's URL")
        values = {
            "reference": reference[:255],
            "kind": "hosted" if payer_urls else "token",
            "amount": amount,
            "currency": "PLN",
            "description": description[:255],
            "payer_email": str(payer.get("email"))[:255],
            "payer_name": str(payer.get("name") or "")[:255],
            "success_url": str(payer_urls.get("success") or ""),
            "error_url": str(payer_urls.get("error") or ""),
            "notify_url": str(notification.get("url") or ""),
            "save_card": bool(card_data.get("save")),
        }
        tx = self.store.create_transaction(values)  # always a new one: Tpay does not deduplicate on hiddenDescription
        token = str(card_data.get("token") or "")
        if token and not payer_urls:
            # Tpay's one-call form (`pay.groupId` 103 with `pay.cardPaymentData.token`): opened and paid at once.
            return self._pay_with_token(tx["id"], token)
        return self._transaction_json(tx) | {"transactionPaymentUrl": f"{self.public_url}/pay/{tx['id']}"}

    def _pay_with_token(self, tx_id: str, token: str) -> dict[str, Any]:
        today = self.settings.today()

        def decide(card: dict[str, Any] | None) -> str | None:
            if card is None:
                raise _ApiError(400, "invalid_token", "unknown card token")
            return _decline_reason(card, today)

        def notification(tx: dict[str, Any], _card: dict[str, Any] | None) -> tuple[str, str, str] | None:
            # Paid: a TRUE notification, queued with the charge; declined: none, as at Tpay.
            return None if tx["error_code"] else self._payment_notification(tx, "TRUE")

        tx, decided = self.store.pay_with_token(tx_id, token, decide, notification)
        if tx is None:
            raise _ApiError(404, "transaction_not_found", "no such transaction")
        if decided and tx["notify_url"] and not tx["error_code"]:
            self._wake_deliverer()
        return self._transaction_json(tx)

    def api_pay(self, tx_id: str, body: Any) -> dict[str, Any]:
        card_data = body.get("cardPaymentData") if isinstance(body, dict) else None
        token = str(card_data.get("token") or "") if isinstance(card_data, dict) else ""
        if not token:
            raise _ApiError(400, "missing_field", "cardPaymentData.token is required")
        if body.get("method") != "sale":  # what every official saved-card call sends
            raise _ApiError(400, "missing_field", 'method "sale" is required with a card token')
        # A transaction already decided answers with its first result and is never charged again.
        return self._pay_with_token(tx_id, token)

    def api_refund(self, tx_id: str, body: Any) -> dict[str, Any]:
        tx = self._get_tx(tx_id)
        if tx["status"] not in ("correct", "refund"):
            raise _ApiError(400, "not_refundable", "only paid transactions can be refunded")
        remaining = tx["amount"] - tx["refunded"]
        raw = body.get("amount") if isinstance(body, dict) else None
        try:
            amount = remaining if raw in (None, "") else wire_to_grosze(raw)
        except ValueError as exc:
            raise _ApiError(400, "invalid_amount", "bad refund amount") from exc
        if amount <= 0 or amount > remaining:
            raise _ApiError(400, "invalid_amount", "refund exceeds what is left to refund")
        self.store.update_transaction(tx["id"], status="refund", refunded=tx["refunded"] + amount)
        self._notify(tx["id"], "CHARGEBACK")
        return {"result": "success", "status": "correct", "transactionId": tx["id"], "amount": float(grosze_to_wire(amount))}

    def _get_tx(self, tx_id: FromPath[str]) -> dict[str, Any]:
        tx = self.store.transaction(tx_id)
        if tx is None:
            raise _ApiError(404, "transaction_not_found", "no such transaction")
        return tx

    @staticmethod
    def _transaction_json(tx: dict[str, Any]) -> dict[str, Any]:
        """A transaction as Tpay's OpenAPI answers it: the card attempt's outcome nested as
        `payments.status` ("correct" / "declined", reason in `payments.reason`), the paid amount as
        `payments.amountPaid`; a declined transaction's own `status` stays "pending", as at Tpay."""
        paid = tx["amount"] if tx["status"] in ("correct", "refund") else 0
        attempt = {"pending": "pending", "correct": "correct", "refund": "correct", "declined": "declined"}
        payments: dict[str, Any] = {
            "status": attempt.get(tx["status"], "pending"),
            "method": "sale" if tx["card_token"] or tx["status"] != "pending" else "",
            "amountPaid": float(grosze_to_wire(paid)),
        }
        if tx["status"] == "declined" and tx["error_code"]:
            payments["reason"] = tx["error_code"]
        return {
            "result": "success",
            "transactionId": tx["id"],
            "title": tx["title"],
            "status": "pending" if tx["status"] == "declined" else tx["status"],
            "amount": float(grosze_to_wire(tx["amount"])),
            "amountRefunded": float(grosze_to_wire(tx["refunded"])),
            "currency": tx["currency"],
            "hiddenDescription": tx["reference"],
            "description": tx["description"],
            "payments": payments,
        }

    # ------------------------------------------------------------------ the Litestar app
    def _build_app(self) -> Litestar:
        sandbox = self

        def page_context(tx: dict[str, Any], **extra: Any) -> dict[str, Any]:
            return {
                "tx": tx,
                "amount": format_pln(tx["amount"]),
                "test_cards": TEST_CARDS,
                "errors": {},
                "values": {},
                **extra,
            }

        @get("/", sync_to_thread=False)
        def index() -> Template:
            return Template(template_name="index.html", context={"test_cards": TEST_CARDS})

        @post("/oauth/auth", status_code=200)
        async def oauth(request: Request[Any, Any, Any]) -> Response[Any]:
            form = {k: str(v) for k, v in (await request.form()).items()}
            basic = None
            header = request.headers.get("authorization", "")
            if header.lower().startswith("basic "):
                try:
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    basic = (user, password)
                except (ValueError, binascii.Error):
                    basic = ("", "")
            try:
                return Response(sandbox._issue_token(form, basic))
            except _ApiError as exc:
                return Response({"error": exc.code}, status_code=401)

        async def api(request: Request[Any, Any, Any], call: Any) -> Response[Any]:
            try:
                sandbox._check_auth(request)
                body = await request.json() if request.method != "GET" else None
                return Response(call(body), status_code=200)
            except _ApiError as exc:
                return _api_error_response(exc)
            except ValueError:
                return _api_error_response(_ApiError(400, "invalid_body", "JSON expected"))

        @post("/transactions", status_code=200)
        async def create_transaction(request: Request[Any, Any, Any]) -> Response[Any]:
            return await api(request, sandbox.api_create)

        @post("/transactions/{tx_id:str}/pay", status_code=200)
        async def pay_transaction(request: Request[Any, Any, Any], tx_id: FromPath[str]) -> Response[Any]:
            return await api(request, lambda body: sandbox.api_pay(tx_id, body))

        @post("/transactions/{tx_id:str}/refunds", status_code=200)
        async def refund_transaction(request: Request[Any, Any, Any], tx_id: FromPath[str]) -> Response[Any]:
            return await api(request, lambda body: sandbox.api_refund(tx_id, body))

        @get("/transactions/{tx_id:str}")
        async def get_transaction(request: Request[Any, Any, Any], tx_id: FromPath[str]) -> Response[Any]:
            return await api(request, lambda _body: sandbox._transaction_json(sandbox._get_tx(tx_id)))

        @get("/x509/notifications-jws.pem", sync_to_thread=False)
        def certificate() -> Response[str]:
            return Response(sandbox.certificate_pem, media_type="application/x-pem-file")

        @get("/x509/tpay-jws-root.pem", sync_to_thread=False)
        def root_certificate() -> Response[str]:
            return Response(sandbox.root_certificate_pem, media_type="application/x-pem-file")

        @post("/_sandbox/cards/{token:str}/token-update", status_code=200)
        async def token_update(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[Any]:
            """Play the bank renewing a saved card: a signed `token_update` notification (merchant's credentials)."""
            return await api(request, lambda _body: {"result": "success", "queued": sandbox.notify_token_update(token)})

        @get("/_sandbox/charges", sync_to_thread=False)
        def charges(token: FromQuery[str | None] = None, reference: FromQuery[str | None] = None) -> dict[str, int]:
            return {"count": sandbox.count_charges(token=token, reference=reference)}

        @get("/pay/{tx_id:str}", sync_to_thread=False)
        def pay_page(tx_id: FromPath[str]) -> Response[Any]:
            tx = sandbox.store.transaction(tx_id)
            if tx is None:
                return Template(template_name="message.html", context={"kind": "not_found"}, status_code=404)
            if tx["status"] != "pending":
                return Template(template_name="message.html", context={"kind": "done", "tx": tx})
            if tx["pending_behaviour"]:
                return Redirect(f"{sandbox.public_url}/3ds/{tx_id}", status_code=303)
            return Template(template_name="pay.html", context=page_context(tx))

        @post("/pay/{tx_id:str}", status_code=303)
        async def pay_submit(request: Request[Any, Any, Any], tx_id: FromPath[str]) -> Response[Any]:
            tx = sandbox.store.transaction(tx_id)
            if tx is None:
                return Template(template_name="message.html", context={"kind": "not_found"}, status_code=404)
            if tx["status"] != "pending":
                return Redirect(tx["success_url"] if tx["status"] == "correct" else tx["error_url"], status_code=303)
            form = await request.form()
            if form.get("action") == "cancel":
                return Redirect(sandbox._decline_hosted(tx, "cancelled"), status_code=303)
            card, errors = validate_card_form(
                str(form.get("number", "")), str(form.get("expiry", "")), str(form.get("cvc", "")), sandbox.settings.today()
            )
            if card is None:
                # Re-show the form with messages; the card number and CVC are never echoed back.
                context = page_context(tx, errors=errors, values={"expiry": str(form.get("expiry", ""))[:7]})
                return Template(template_name="pay.html", context=context, status_code=422)
            behaviour = card.card.behaviour
            if behaviour is CardBehaviour.DECLINED:
                return Redirect(sandbox._decline_hosted(tx, "declined"), status_code=303)
            if behaviour is CardBehaviour.REQUIRES_3DS:
                sandbox.store.update_transaction(
                    tx_id, only_if_status="pending", pending_brand=card.card.brand, pending_last4=card.last4,
                    pending_exp_month=card.expiry_month, pending_exp_year=card.expiry_year,
                    pending_behaviour=behaviour.value,
                )
                return Redirect(f"{sandbox.public_url}/3ds/{tx_id}", status_code=303)
            url = sandbox._pay_hosted(
                tx, card.card.brand, card.last4, card.expiry_month, card.expiry_year, behaviour.value
            )
            return Redirect(url, status_code=303)

        @get("/3ds/{tx_id:str}", sync_to_thread=False)
        def threeds_page(tx_id: FromPath[str]) -> Template:
            tx = sandbox.store.transaction(tx_id)
            if tx is None:
                return Template(template_name="message.html", context={"kind": "not_found"}, status_code=404)
            if tx["status"] != "pending" or not tx["pending_behaviour"]:
                return Template(template_name="message.html", context={"kind": "done", "tx": tx})
            return Template(template_name="threeds.html", context=page_context(tx))

        @post("/3ds/{tx_id:str}", status_code=303)
        async def threeds_submit(request: Request[Any, Any, Any], tx_id: FromPath[str]) -> Response[Any]:
            tx = sandbox.store.transaction(tx_id)
            if tx is None:
                return Template(template_name="message.html", context={"kind": "not_found"}, status_code=404)
            if tx["status"] != "pending" or not tx["pending_behaviour"]:
                return Redirect(tx["success_url"] if tx["status"] == "correct" else tx["error_url"], status_code=303)
            form = await request.form()
            if form.get("decision") == "approve":
                url = sandbox._pay_hosted(
                    tx, tx["pending_brand"], tx["pending_last4"], tx["pending_exp_month"], tx["pending_exp_year"],
                    tx["pending_behaviour"],
                )
            else:
                url = sandbox._decline_hosted(tx, "3ds_failed")
            return Redirect(url, status_code=303)

        return Litestar(
            route_handlers=[
                index, oauth, create_transaction, pay_transaction, refund_transaction, get_transaction,
                certificate, root_certificate, token_update, charges, pay_page, pay_submit, threeds_page, threeds_submit,
            ],
            template_config=TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine),
            on_startup=[self.start],
            on_shutdown=[self.stop],
            openapi_config=None,
        )


def settings_from_env(environ: dict[str, str] | None = None) -> SandboxSettings:
    """Settings for a stand-alone sandbox host, from `EKP_SANDBOX_*` variables."""
    import os

    env = os.environ if environ is None else environ
    public_url = env.get("EKP_SANDBOX_PUBLIC_URL", "http://127.0.0.1:8100")
    return SandboxSettings(
        public_url=public_url,
        db_path=env.get("EKP_SANDBOX_DB", "var/sandbox.db"),
        client_id=env.get("EKP_SANDBOX_CLIENT_ID", "sandbox"),
        client_secret=env.get("EKP_SANDBOX_CLIENT_SECRET", "sandbox"),
        merchant_id=env.get("EKP_SANDBOX_MERCHANT_ID", "1010"),
        security_code=env.get("EKP_SANDBOX_SECURITY_CODE", "sandbox-security-code"),
        backoff_base=float(env.get("EKP_SANDBOX_BACKOFF_BASE", "5")),
        callback_base=env.get("EKP_SANDBOX_CALLBACK_BASE", env.get("EKP_BASE_URL", "http://127.0.0.1:8000")),
    )


def standalone_app() -> Litestar:
    """Stand-alone sandbox on its own host: `uvicorn payments.sandbox.app:standalone_app --factory`."""
    return Sandbox(settings_from_env()).app
