"""Tpay OpenAPI adapter (https://api.tpay.com).

* OAuth2 client credentials (`POST /oauth/auth`) with Authlib's OAuth 2.0 core (ClientAuth, OAuth2Token) over httpx; the token is cached
  and fetched again shortly before it expires (or after a 401).
* `POST /transactions` with the card group (103) and `cardPaymentData.save`, token charges
  (`POST /transactions` + `POST /transactions/{id}/pay` with `cardPaymentData.token`),
  `POST /transactions/{id}/refunds`, `GET /transactions/{id}`.
* Notifications: the detached JWS in `X-JWS-Signature` (RS256, certificate from `x5u` under Tpay's
  secure host, chained to Tpay's root) and the legacy `md5sum`.  Answer `TRUE` after accepting.

Nothing here logs card data, CVC or personal data (payer e-mail/name stay out of log records).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx

# Authlib's framework-independent OAuth 2.0 core (client authentication, the token request, the token and its
# expiry) over our own httpx client: its httpx integration is deprecated in Authlib 1.9 (it wants the `httpx2`
# fork), and client credentials need nothing more.
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749 import OAuth2Token
from authlib.oauth2.rfc6749.parameters import prepare_token_request

from .amounts import grosze_to_json_number, wire_to_grosze
from .port import (
    ACKNOWLEDGEMENT,
    Acknowledgement,
    CardNotice,
    ChargeResult,
    CreatedPayment,
    GatewayError,
    GatewayTimeout,
    NotificationRejected,
    PaymentOutcome,
    PaymentRequest,
    PaymentStatus,
    Refund,
    RefundResult,
    RejectReason,
    SavedCard,
    TokenCharge,
    TransactionStatus,
)
from .signing import JWS_HEADER, JwsVerifier, legacy_md5sum, md5sum_matches

log = logging.getLogger(__name__)

PRODUCTION_API_URL = "https://api.tpay.com"
SANDBOX_API_URL = "https://openapi.sandbox.tpay.com"
PRODUCTION_X5U_PREFIX = "https://secure.tpay.com/x509/"
SANDBOX_X5U_PREFIX = "https://secure.sandbox.tpay.com/x509/"
CARD_GROUP_ID = 103
MAX_CERT_BYTES = 64 * 1024

# A transaction's top-level `status` in Tpay's OpenAPI answers (`GET /transactions/{id}`, the answers of
# `POST /transactions` and `/pay`).  "success" is the envelope's `result`, never a payment status.
_STATUS_FROM_API = {
    "pending": PaymentStatus.PENDING,
    "correct": PaymentStatus.PAID,
    "paid": PaymentStatus.PAID,
    "refund": PaymentStatus.REFUNDED,
    "refunded": PaymentStatus.REFUNDED,
    "chargeback": PaymentStatus.CHARGEBACK,
    "declined": PaymentStatus.FAILED,
    "error": PaymentStatus.FAILED,
    "failed": PaymentStatus.FAILED,
    "failure": PaymentStatus.FAILED,
    "expired": PaymentStatus.FAILED,
    "canceled": PaymentStatus.FAILED,
    "cancelled": PaymentStatus.FAILED,
}

# The card attempt's own outcome, nested as `payments.status` (Tpay SDK 2.4.x, Magento/WooCommerce
# plugins read `$result['payments']['status']`): a declined token charge leaves the transaction's own
# `status` at "pending".
_PAYMENT_ATTEMPT_STATUS = {
    "correct": PaymentStatus.PAID,
    "paid": PaymentStatus.PAID,
    "declined": PaymentStatus.FAILED,
    "error": PaymentStatus.FAILED,
    "failed": PaymentStatus.FAILED,
    "failure": PaymentStatus.FAILED,
}

# Legacy notification `tr_status`: Tpay sends TRUE / PAID (paid) and CHARGEBACK (money went back to
# the payer: our refund or a card chargeback; the adapter reports it as REFUNDED).  Tpay sends no
# notification for a declined payment; FALSE is still read as one (older panels documented it).
_STATUS_FROM_NOTIFICATION = {
    "TRUE": PaymentStatus.PAID,
    "PAID": PaymentStatus.PAID,
    "FALSE": PaymentStatus.FAILED,
    "CHARGEBACK": PaymentStatus.REFUNDED,
}

# `tr_currency` may be the ISO 4217 letters or Tpay's numeric code.
_NUMERIC_CURRENCIES = {"985": "PLN", "978": "EUR", "840": "USD", "826": "GBP", "203": "CZK"}

MAX_HIDDEN_DESCRIPTION = 128  # Tpay's limit for hiddenDescription (our reference, echoed as tr_crc)
MAX_DESCRIPTION = 128
MAX_PAYER_NAME = 255

# Test notifications sent from Tpay's merchant panel carry a title like "TR-XXXX-TST1234X".
_PANEL_TEST_TITLE = re.compile(r"^TR-[A-Z0-9]+-TST[A-Z0-9]*X$", re.IGNORECASE)


def load_pem_setting(value: str | bytes | None) -> bytes | None:
    """A PEM given inline (`-----BEGIN ...`) or as a path to a file."""
    if value is None or value == "" or value == b"":
        return None
    if isinstance(value, bytes):
        return value
    if "-----BEGIN" in value:
        return value.encode()
    return Path(value).read_bytes()


def _status_from_api(value: object) -> PaymentStatus:
    status = _STATUS_FROM_API.get(str(value).lower())
    if status is None:
        raise GatewayError("unknown_status", f"unexpected transaction status {value!r}")
    return status


def _attempt(data: dict[str, Any]) -> dict[str, Any]:
    payments = data.get("payments")
    return payments if isinstance(payments, dict) else {}


def transaction_status(data: dict[str, Any]) -> PaymentStatus:
    """Where a Tpay transaction object stands: its own `status`, except that a card attempt's outcome
    in `payments.status` decides while the transaction itself still says "pending"."""
    status = _status_from_api(data.get("status", ""))
    if status is PaymentStatus.PENDING:
        attempt = _PAYMENT_ATTEMPT_STATUS.get(str(_attempt(data).get("status") or "").lower())
        if attempt is not None:
            return attempt
    return status


def _decline_reason(data: dict[str, Any]) -> str:
    attempt = _attempt(data)
    for value in (attempt.get("reason"), attempt.get("err_desc"), attempt.get("errorCode"), data.get("errorCode")):
        if value:
            return str(value)[:100]
    errors = attempt.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = errors[0].get("errorCode") or errors[0].get("errorMessage")
        if code:
            return str(code)[:100]
    return "declined"


def paid_amount(data: dict[str, Any]) -> int:
    """`payments.amountPaid` (Tpay nests it); 0 when absent."""
    value = _attempt(data).get("amountPaid")
    if value in (None, ""):
        value = data.get("amountPaid")  # not Tpay's place for it; read only when the nested one is absent
    return wire_to_grosze(value) if value not in (None, "") else 0


def charge_result(data: dict[str, Any], charge: TokenCharge, tx: tuple[str, str] | None = None) -> ChargeResult:
    """A token charge's answer (a Tpay transaction object) as a `ChargeResult`; `tx`: (id, title) when
    known from an earlier call, else read from the answer."""
    status = transaction_status(data)
    if status not in (PaymentStatus.PAID, PaymentStatus.FAILED, PaymentStatus.PENDING):
        raise GatewayError("unexpected_status", f"token charge answered {status.value}")
    if tx is None:
        try:
            tx = (str(data["transactionId"]), str(data["title"]))
        except KeyError as exc:
            raise GatewayError("bad_response", f"missing {exc.args[0]}") from exc
    error_code = _decline_reason(data) if status is PaymentStatus.FAILED else None
    return ChargeResult(status, tx[0], tx[1], charge.reference, charge.amount, error_code)


def parse_expiry(value: str) -> tuple[int, int] | None:
    """Card token expiry as Tpay sends it ("MMYY", also "MM/YY" or "YYYY-MM") -> (month, year)."""
    text = value.strip().replace("/", "")
    try:
        if len(text) == 4 and text.isdigit():
            month, year = int(text[:2]), 2000 + int(text[2:])
        elif len(text) == 7 and text[4] == "-":
            year, month = int(text[:4]), int(text[5:])
        else:
            return None
    except ValueError:
        return None
    return (month, year) if 1 <= month <= 12 else None


def saved_card(token: str, *, brand: str = "", tail: str = "", expiry: str = "") -> SavedCard:
    """A card token with what Tpay said about it; a missing or unreadable optional field is left empty."""
    parsed = parse_expiry(expiry) if expiry else None
    tail_digits = "".join(c for c in tail if c.isdigit())[-4:]
    return SavedCard(token=token[:200], brand=brand.strip()[:40], last4=tail_digits,
                     expiry_month=parsed[0] if parsed else None, expiry_year=parsed[1] if parsed else None)


def md5_amount(tr_amount: str) -> str:
    """`tr_amount` as Tpay hashes it: `number_format(tr_amount, 2, '.', '')` ("12.3" -> "12.30")."""
    value = Decimal(tr_amount.strip())
    if not value.is_finite():
        raise InvalidOperation
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):f}"


def notification_currency(value: str) -> str | None:
    text = value.strip().upper()
    if not text:
        return "PLN"  # Tpay omits it for PLN transactions
    if text.isdigit():
        return _NUMERIC_CURRENCIES.get(text.zfill(3))
    return text if len(text) == 3 and text.isalpha() else None


def parse_legacy_notification(
    body: bytes, *, security_code: str, merchant_id: str | None, currency: str = "PLN"
) -> PaymentOutcome:
    """Check the md5sum of a Tpay form notification and turn it into an outcome.

    Fields as in Tpay's `BasicPayment` notification model (tpay-openapi-php 2.4.x); the card saved
    with a payment comes as `card_token` with `tokenPaymentData_cardBrand` / `_cardTail` /
    `_cardExpiryDate`, any of which may be missing."""
    try:
        fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True).items()}
    except (UnicodeDecodeError, ValueError) as exc:
        raise NotificationRejected(RejectReason.MALFORMED_BODY, "not a form body") from exc
    required = ("id", "tr_id", "tr_amount", "tr_crc", "tr_status", "md5sum")
    if any(name not in fields for name in required):
        raise NotificationRejected(RejectReason.MALFORMED_BODY, "missing fields")
    if any(len(fields[name]) > 255 for name in required):
        raise NotificationRejected(RejectReason.MALFORMED_BODY, "field too long")
    try:
        hashed_amount = md5_amount(fields["tr_amount"])
    except (InvalidOperation, ValueError) as exc:
        raise NotificationRejected(RejectReason.MALFORMED_BODY, "bad amount") from exc
    expected = legacy_md5sum(fields["id"], fields["tr_id"], hashed_amount, fields["tr_crc"], security_code)
    if not md5sum_matches(expected, fields["md5sum"]):
        raise NotificationRejected(RejectReason.BAD_CHECKSUM)
    if merchant_id and fields["id"] != str(merchant_id):
        raise NotificationRejected(RejectReason.WRONG_MERCHANT)
    status = _STATUS_FROM_NOTIFICATION.get(fields["tr_status"].upper())
    if status is None:
        raise NotificationRejected(RejectReason.MALFORMED_BODY, "unknown tr_status")
    try:
        amount = wire_to_grosze(fields["tr_amount"])
        paid = wire_to_grosze(fields["tr_paid"]) if fields.get("tr_paid") else (amount if status is PaymentStatus.PAID else 0)
    except ValueError as exc:
        raise NotificationRejected(RejectReason.MALFORMED_BODY, "bad amount") from exc
    tx_currency = notification_currency(fields.get("tr_currency", "")) if "tr_currency" in fields else currency
    if tx_currency is None:
        raise NotificationRejected(RejectReason.MALFORMED_BODY, "unknown tr_currency")
    card = None
    token = fields.get("card_token", "")
    if token:
        card = saved_card(
            token,
            brand=fields.get("tokenPaymentData_cardBrand") or fields.get("card_brand", ""),
            tail=fields.get("tokenPaymentData_cardTail") or fields.get("card_tail", ""),
            expiry=fields.get("tokenPaymentData_cardExpiryDate") or fields.get("token_expiry_date", ""),
        )
    error = fields.get("tr_error", "")
    return PaymentOutcome(
        status=status,
        title=fields["tr_id"],
        reference=fields["tr_crc"],
        amount=amount,
        paid_amount=paid,
        currency=tx_currency,
        card=card,
        error_code=None if error in ("", "none") else error[:100],
        test_mode=fields.get("test_mode", "0") == "1",
        panel_test=bool(_PANEL_TEST_TITLE.match(fields["tr_id"])),
    )


def parse_json_notification(body: bytes) -> CardNotice:
    """A JSON notification about a card token: `{"type": "tokenization", "data": {"tokenizationId",
    "token", "cardBrand", "cardTail", "tokenExpiryDate" (MMYY)}}` or `{"type": "token_update", "data":
    {"token"}}` (tpay-openapi-php `src/Model/Objects/NotificationBody/Tokenization.php`, `TokenUpdate.php`)."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise NotificationRejected(RejectReason.MALFORMED_BODY, "not JSON") from exc
    if not isinstance(document, dict):
        raise NotificationRejected(RejectReason.MALFORMED_BODY, "not a JSON object")
    kind = document.get("type")
    # The fields are under "data" (or "msg_value"), as Tpay's client reads them
    # (tpay-openapi-php `Webhook/JWSVerifiedPaymentNotification.php::getSourceData`).
    data = document.get("data")
    if not isinstance(data, dict):
        data = document.get("msg_value")
    if not isinstance(data, dict):
        data = document  # a flat body (the token fields beside "type")
    if kind not in ("tokenization", "token_update"):
        raise NotificationRejected(RejectReason.MALFORMED_BODY, "unknown notification type")
    token = data.get("token")
    if not isinstance(token, str) or not token or len(token) > 200:
        raise NotificationRejected(RejectReason.MALFORMED_BODY, "missing token")

    def text(name: str) -> str:
        value = data.get(name)
        return str(value)[:64] if isinstance(value, str | int) and not isinstance(value, bool) else ""

    card = saved_card(token, brand=text("cardBrand"), tail=text("cardTail"), expiry=text("tokenExpiryDate"))
    tokenization_id = text("tokenizationId") or None
    return CardNotice(kind=kind, token=token, card=card, tokenization_id=tokenization_id)


class TpayGateway:
    """`PaymentGateway` backed by Tpay's OpenAPI (or anything speaking it, like our sandbox)."""

    acknowledgement = "TRUE"

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        security_code: str,
        notification_url: str,
        api_url: str = PRODUCTION_API_URL,
        merchant_id: str | None = None,
        root_cert: str | bytes | None = None,
        root_cert_url: str | None = None,
        x5u_prefix: str | None = None,
        timeout: float = 15.0,
        cert_cache_seconds: float = 3600.0,
        lang: str = "pl",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not client_id or not client_secret:
            raise ValueError("Tpay client id and secret are required")
        if not security_code:
            raise ValueError("Tpay notification security code (md5) is required")
        self.api_url = api_url.rstrip("/")
        self.merchant_id = merchant_id or None
        self.security_code = security_code
        self.notification_url = notification_url
        self.lang = lang
        if x5u_prefix is None:
            x5u_prefix = SANDBOX_X5U_PREFIX if self.api_url == SANDBOX_API_URL else PRODUCTION_X5U_PREFIX
        root_pem = load_pem_setting(root_cert)
        if root_pem is None and root_cert_url is None:
            # As in Tpay's own examples: the root is fetched over HTTPS from Tpay's host.  Pinning it with
            # EKP_TPAY_ROOT_CERT is preferred.
            root_cert_url = x5u_prefix.rstrip("/") + "/tpay-jws-root.pem"
        self._timeout = httpx.Timeout(timeout)
        self._client_auth = ClientAuth(client_id, client_secret, "client_secret_post")
        self._token_endpoint = f"{self.api_url}/oauth/auth"
        self._token: OAuth2Token | None = None
        self._plain = httpx.AsyncClient(timeout=self._timeout, transport=transport)
        self._token_lock = asyncio.Lock()
        self._verifier = JwsVerifier(
            allowed_x5u_prefix=x5u_prefix,
            fetch=self._fetch_certificate,
            root_pem=root_pem,
            root_url=root_cert_url,
            cache_seconds=cert_cache_seconds,
        )
        # In-process memory of idempotency keys; the web layer's own records are the durable guard.
        self._created: OrderedDict[str, CreatedPayment] = OrderedDict()
        self._charges: OrderedDict[str, ChargeResult] = OrderedDict()
        self._charge_tx: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._charge_locks: dict[str, list[Any]] = {}  # reference -> [lock, users]

    # ------------------------------------------------------------------ HTTP plumbing
    async def _fetch_certificate(self, url: str) -> bytes:
        response = await self._plain.get(url)
        response.raise_for_status()
        if len(response.content) > MAX_CERT_BYTES:
            raise ValueError("certificate response too large")
        return response.content

    async def _ensure_token(self, *, force: bool = False) -> str:
        """The access token (client credentials, `client_secret_post`), fetched again a minute before it expires."""
        async with self._token_lock:
            if force or self._token is None or self._token.is_expired(leeway=60):
                self._token = await self._fetch_token()
            return str(self._token["access_token"])

    async def _fetch_token(self) -> OAuth2Token:
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        body = prepare_token_request("client_credentials")
        url, headers, body = self._client_auth.prepare("POST", self._token_endpoint, headers, body)
        response = await self._plain.post(url, headers=headers, content=body)
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400 or not isinstance(data, dict) or not data.get("access_token"):
            error = data.get("error") if isinstance(data, dict) else None
            raise GatewayError("auth", str(error or f"http_{response.status_code}")[:100])
        return OAuth2Token.from_dict(data)

    async def _authorized(self, method: str, url: str, payload: dict[str, Any] | None) -> httpx.Response:
        token = await self._ensure_token()
        return await self._plain.request(method, url, json=payload, headers={"Authorization": f"Bearer {token}"})

    async def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.api_url}{path}"
        try:
            response = await self._authorized(method, url, payload)
            if response.status_code == 401:
                await self._ensure_token(force=True)
                response = await self._authorized(method, url, payload)
        except httpx.TimeoutException as exc:
            log.warning("tpay %s %s timed out", method, path)
            raise GatewayTimeout(f"{method} {path} timed out") from exc
        except httpx.HTTPError as exc:
            log.warning("tpay %s %s transport error: %s", method, path, type(exc).__name__)
            raise GatewayError("transport", type(exc).__name__) from exc
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400 or not isinstance(data, dict) or data.get("result") not in (None, "success"):
            code, message = f"http_{response.status_code}", ""
            if isinstance(data, dict):
                errors = data.get("errors") or []
                if errors and isinstance(errors[0], dict):
                    code = str(errors[0].get("errorCode") or code)
                    message = str(errors[0].get("errorMessage") or "")
            log.warning("tpay %s %s failed: %s", method, path, code)
            raise GatewayError(code, message, response.status_code)
        return data

    # ------------------------------------------------------------------ port
    def _transaction_body(
        self, *, amount: int, currency: str, description: str, reference: str, email: str, name: str
    ) -> dict[str, Any]:
        # Caught before anything is sent: Tpay would refuse these (or cut our reference, which is the
        # idempotency key echoed back as tr_crc).
        if currency != "PLN":
            raise GatewayError("unsupported_currency", "Tpay transactions are in PLN")
        if len(reference) > MAX_HIDDEN_DESCRIPTION:
            raise GatewayError("invalid_request", f"reference longer than {MAX_HIDDEN_DESCRIPTION} characters")
        if not name.strip():
            raise GatewayError("invalid_request", "payer name is empty")
        if not email.strip():
            raise GatewayError("invalid_request", "payer e-mail is empty")
        return {
            "amount": grosze_to_json_number(amount),
            "description": description[:MAX_DESCRIPTION],
            "hiddenDescription": reference,
            "lang": self.lang,
            "payer": {"email": email, "name": name.strip()[:MAX_PAYER_NAME]},
            "callbacks": {"notification": {"url": self.notification_url}},
        }

    async def create_payment(self, request: PaymentRequest) -> CreatedPayment:
        known = self._created.get(request.reference)
        if known is not None:
            return known
        body = self._transaction_body(
            amount=request.amount,
            currency=request.currency,
            description=request.description,
            reference=request.reference,
            email=request.payer_email,
            name=request.payer_name,
        )
        body["callbacks"]["payerUrls"] = {"success": request.success_url, "error": request.error_url}
        card_data: dict[str, Any] = {"save": 1} if request.save_card else {}
        body["pay"] = {"groupId": CARD_GROUP_ID, **({"cardPaymentData": card_data} if card_data else {})}
        data = await self._call("POST", "/transactions", body)
        try:
            created = CreatedPayment(
                transaction_id=str(data["transactionId"]),
                title=str(data["title"]),
                redirect_url=str(data["transactionPaymentUrl"]),
                reference=request.reference,
            )
        except KeyError as exc:
            raise GatewayError("bad_response", f"missing {exc.args[0]}") from exc
        log.info("payment created reference=%s title=%s", request.reference, created.title)
        _remember(self._created, request.reference, created)
        return created

    async def charge_token(self, charge: TokenCharge) -> ChargeResult:
        entry = self._charge_locks.get(charge.reference)
        if entry is None:
            entry = self._charge_locks[charge.reference] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                return await self._charge_token_once(charge)
        finally:
            entry[1] -= 1
            if entry[1] == 0:  # nobody holds or waits for it: a run of 100,000 charges keeps no locks
                self._charge_locks.pop(charge.reference, None)

    async def open_token_charge(self, charge: TokenCharge) -> CreatedPayment:
        """`POST /transactions` for a token charge: the transaction exists, no money moved yet."""
        tx = self._charge_tx.get(charge.reference)
        if tx is None:
            body = self._transaction_body(
                amount=charge.amount,
                currency=charge.currency,
                description=charge.description,
                reference=charge.reference,
                email=charge.payer_email,
                name=charge.payer_name,
            )
            data = await self._call("POST", "/transactions", body)
            try:
                tx = (str(data["transactionId"]), str(data["title"]))
            except KeyError as exc:
                raise GatewayError("bad_response", f"missing {exc.args[0]}") from exc
            _remember(self._charge_tx, charge.reference, tx)
        return CreatedPayment(transaction_id=tx[0], title=tx[1], redirect_url="", reference=charge.reference)

    async def _charge_token_once(self, charge: TokenCharge) -> ChargeResult:
        known = self._charges.get(charge.reference)
        if known is not None:
            return known
        if charge.transaction_id:
            tx = self._charge_tx.get(charge.reference)
            if tx is None or tx[0] != charge.transaction_id:
                # Opened by an earlier run (recorded by the caller): ask Tpay where it stands first.
                data = await self._call("GET", f"/transactions/{charge.transaction_id}")
                tx = (charge.transaction_id, str(data.get("title") or ""))
                result = charge_result(data, charge, tx)
                if result.status is not PaymentStatus.PENDING:
                    _remember(self._charges, charge.reference, result)
                    return result
                _remember(self._charge_tx, charge.reference, tx)
        else:
            tx = self._charge_tx.get(charge.reference)
            if tx is not None:
                # An earlier attempt in this process created (and maybe paid) the transaction: never pay it twice.
                current = await self._call("GET", f"/transactions/{tx[0]}")
                result = charge_result(current, charge, tx)
                if result.status is not PaymentStatus.PENDING:
                    _remember(self._charges, charge.reference, result)
                    return result
            else:
                created = await self.open_token_charge(charge)
                tx = (created.transaction_id, created.title)
        # As every official saved-card call does (tpay-openapi-php `Transactions::createPaymentByTransactionId`
        # callers in Tpay's Magento/WooCommerce/PrestaShop plugins): groupId 103, method "sale", the token.
        data = await self._call(
            "POST",
            f"/transactions/{tx[0]}/pay",
            {"groupId": CARD_GROUP_ID, "method": "sale", "cardPaymentData": {"token": charge.token}},
        )
        result = charge_result(data, charge, tx)
        log.info("token charge reference=%s title=%s status=%s", charge.reference, tx[1], result.status.value)
        if result.status is not PaymentStatus.PENDING:
            _remember(self._charges, charge.reference, result)
            self._charge_tx.pop(charge.reference, None)
        return result

    async def refund(self, refund: Refund) -> RefundResult:
        body: dict[str, Any] = {}
        if refund.amount is not None:
            body["amount"] = grosze_to_json_number(refund.amount)
        data = await self._call("POST", f"/transactions/{refund.transaction_id}/refunds", body)
        status = str(data.get("status") or "")
        if status.lower() not in ("correct", "pending", "refund", "done"):
            # An answer that does not say the refund was taken is not a refund: the caller asks the
            # transaction's status before counting the money as given back.
            log.warning("refund transaction=%s answered without a refund status", refund.transaction_id)
            raise GatewayError("bad_response", "refund answer without a status")
        log.info("refund transaction=%s amount=%s status=%s", refund.transaction_id, refund.amount, status)
        return RefundResult(refund.transaction_id, refund.amount, status)

    async def get_status(self, transaction_id: str) -> TransactionStatus:
        data = await self._call("GET", f"/transactions/{transaction_id}")
        try:
            amount = wire_to_grosze(data["amount"])
            paid = paid_amount(data)
            status = transaction_status(data)
            return TransactionStatus(
                transaction_id=str(data.get("transactionId", transaction_id)),
                title=str(data["title"]),
                status=status,
                amount=amount,
                paid_amount=paid,
                reference=str(data.get("hiddenDescription") or ""),
                currency=str(data.get("currency") or "PLN"),
                error_code=(_decline_reason(data) or None) if status is PaymentStatus.FAILED else None,
            )
        except (KeyError, ValueError) as exc:
            raise GatewayError("bad_response", "unreadable transaction") from exc

    def acknowledge(self, accepted: bool, reason: str = "") -> Acknowledgement:
        """Tpay wants 200 and `TRUE` for a notification it may stop resending; anything else makes it retry."""
        if accepted:
            return Acknowledgement(ACKNOWLEDGEMENT)
        return Acknowledgement(f"FALSE - {reason}", status_code=400)

    async def parse_notification(self, body: bytes, headers: Mapping[str, str]) -> PaymentOutcome | CardNotice:
        """Form notifications (a payment's outcome; JWS + md5sum) and JSON ones (a card token; JWS),
        told apart by the body as Tpay's client does (a JSON object vs. `tr_id=...`)."""
        signature = _header(headers, JWS_HEADER)
        try:
            await self._verifier.verify(body, signature)
            if body.lstrip()[:1] == b"{":
                notice = parse_json_notification(body)
                log.info("card notification accepted kind=%s", notice.kind)
                return notice
            outcome = parse_legacy_notification(body, security_code=self.security_code, merchant_id=self.merchant_id)
        except NotificationRejected as exc:
            log.warning("notification rejected: %s", exc.reason.value)
            raise
        log.info("notification accepted title=%s status=%s", outcome.title, outcome.status.value)
        return outcome

    async def aclose(self) -> None:
        await self._plain.aclose()

    async def __aenter__(self) -> TpayGateway:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def _remember(store: OrderedDict[str, Any], key: str, value: Any, limit: int = 10_000) -> None:
    store[key] = value
    store.move_to_end(key)
    while len(store) > limit:
        store.popitem(last=False)


__all__ = [
    "PRODUCTION_API_URL",
    "SANDBOX_API_URL",
    "TpayGateway",
    "load_pem_setting",
    "parse_json_notification",
    "parse_legacy_notification",
]
