"""The payment gateway port: what the rest of EKP may ask of a payment operator.

Everything here is gateway-neutral.  Amounts are integer grosze (1/100 PLN), never floats.
Adapters (`payments.tpay.TpayGateway`, the built-in sandbox) implement `PaymentGateway`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "ACKNOWLEDGEMENT",
    "CardNotice",
    "ChargeResult",
    "CreatedPayment",
    "GatewayError",
    "GatewayTimeout",
    "JSON_ACKNOWLEDGEMENT",
    "NotificationRejected",
    "PaymentError",
    "PaymentGateway",
    "PaymentOutcome",
    "Notification",
    "PaymentRequest",
    "PaymentStatus",
    "RejectReason",
    "Refund",
    "RefundResult",
    "SavedCard",
    "TokenCharge",
    "TransactionStatus",
]

#: The body a webhook must answer with once a form (payment) notification has been accepted (Tpay's convention).
ACKNOWLEDGEMENT = "TRUE"
#: ... and once a JSON notification (tokenization, token update) has been accepted.
JSON_ACKNOWLEDGEMENT = '{"result":true}'


@dataclass(frozen=True)
class Acknowledgement:
    """What the webhook answers the gateway: each operator has its own convention (Tpay: 200 `TRUE`, or 400
    `FALSE - <reason>` for a notification it should resend or drop)."""

    body: str
    media_type: str = "text/plain"
    status_code: int = 200


class PaymentStatus(enum.StrEnum):
    """Where a payment stands, as far as the gateway is concerned."""

    PENDING = "pending"  # created, the payer has not finished yet
    PAID = "paid"  # money taken
    FAILED = "failed"  # declined, cancelled or abandoned; no money taken
    REFUNDED = "refunded"  # (partly) given back on our request
    CHARGEBACK = "chargeback"  # the card holder disputed the payment with their bank


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """A payment the payer completes on the gateway's hosted page."""

    amount: int  # grosze, > 0
    description: str  # shown to the payer
    payer_email: str
    payer_name: str
    reference: str  # our reference; also the idempotency key (Tpay: hiddenDescription / tr_crc)
    success_url: str  # where the payer is sent back after paying
    error_url: str  # where the payer is sent back after a failure or cancel
    save_card: bool = False  # ask for a reusable card token (Tpay: cardPaymentData.save)
    currency: str = "PLN"

    def __post_init__(self) -> None:
        _check_amount(self.amount)
        _check_currency(self.currency)
        if not self.reference:
            raise ValueError("reference must not be empty")

    def __repr__(self) -> str:  # keep personal data out of logs and tracebacks
        return f"PaymentRequest(reference={self.reference!r}, amount={self.amount}, currency={self.currency!r})"


@dataclass(frozen=True, slots=True)
class CreatedPayment:
    """The gateway's answer to `create_payment`: send the payer to `redirect_url`."""

    transaction_id: str  # the gateway's id (Tpay: transactionId, e.g. "01H...")
    title: str  # the gateway's transaction title (Tpay: title == tr_id in notifications)
    redirect_url: str
    reference: str


@dataclass(frozen=True, slots=True)
class TokenCharge:
    """Charge a saved card without the payer (e.g. a monthly renewal)."""

    token: str
    amount: int  # grosze, > 0
    description: str
    reference: str  # idempotency key: the same reference never charges twice
    payer_email: str
    payer_name: str
    currency: str = "PLN"
    # The gateway transaction opened for this charge by `open_token_charge` and recorded by the caller
    # before paying: given, the adapter asks where it stands and pays it only if it was never paid.
    transaction_id: str | None = None

    def __post_init__(self) -> None:
        _check_amount(self.amount)
        _check_currency(self.currency)
        if not self.reference:
            raise ValueError("reference must not be empty")
        if not self.token:
            raise ValueError("token must not be empty")

    def __repr__(self) -> str:
        return f"TokenCharge(reference={self.reference!r}, amount={self.amount}, currency={self.currency!r})"


@dataclass(frozen=True, slots=True)
class ChargeResult:
    """Synchronous outcome of a token charge: PAID or FAILED."""

    status: PaymentStatus
    transaction_id: str
    title: str
    reference: str
    amount: int
    error_code: str | None = None  # gateway's machine code when FAILED (e.g. "declined")

    @property
    def paid(self) -> bool:
        return self.status is PaymentStatus.PAID


@dataclass(frozen=True, slots=True)
class Refund:
    """Give money back for a paid transaction.  `amount=None` refunds what is left."""

    transaction_id: str
    amount: int | None = None  # grosze; None = full refund
    reason: str = ""

    def __post_init__(self) -> None:
        if self.amount is not None:
            _check_amount(self.amount)


@dataclass(frozen=True, slots=True)
class RefundResult:
    transaction_id: str
    amount: int | None  # grosze refunded by this request (None when the gateway refunded "all")
    status: str  # gateway's refund status, e.g. "correct" / "pending"


@dataclass(frozen=True, slots=True)
class SavedCard:
    """A reusable card token and what may be shown about the card.  Never the number itself."""

    token: str
    brand: str = ""  # e.g. "Visa", "Mastercard"; "" when the gateway did not say
    last4: str = ""
    expiry_month: int | None = None  # None when the gateway did not say (never a reason to refuse a payment)
    expiry_year: int | None = None  # four digits

    @property
    def expiry(self) -> str | None:
        """"MM/YYYY", or None when unknown."""
        if self.expiry_month is None or self.expiry_year is None:
            return None
        return f"{self.expiry_month:02d}/{self.expiry_year}"

    def __repr__(self) -> str:
        return f"SavedCard(brand={self.brand!r}, last4='****', expiry={self.expiry})"


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    """A verified notification from the gateway.  Only produced after signature checks pass.

    The web layer must still compare `amount`/`currency` with its own record for `reference`
    and treat the outcome idempotently (the same notification may arrive many times).
    """

    status: PaymentStatus
    title: str  # Tpay tr_id (the transaction title); keep it, it identifies the transaction
    reference: str  # our reference (Tpay tr_crc)
    amount: int  # grosze, the transaction amount
    paid_amount: int  # grosze actually paid (Tpay tr_paid)
    currency: str = "PLN"
    card: SavedCard | None = None  # set when a card was saved during this payment
    error_code: str | None = None  # Tpay tr_error when not "none"
    test_mode: bool = False
    # A test notification sent from the operator's merchant panel (Tpay: tr_id like "TR-XXXX-TST…X"): it
    # is verified and acknowledged, never applied to anything.
    panel_test: bool = False

    def __repr__(self) -> str:
        return (
            f"PaymentOutcome(status={self.status.value!r}, title={self.title!r}, reference={self.reference!r},"
            f" amount={self.amount}, paid_amount={self.paid_amount}, card_saved={self.card is not None})"
        )


#: Alias used by callers who think of it as "the notification".
Notification = PaymentOutcome


@dataclass(frozen=True, slots=True)
class CardNotice:
    """A verified JSON notification about a card token, not about a payment (Tpay: `{"type":
    "tokenization", "data": {...}}` and `{"type": "token_update", "data": {...}}`).  Acknowledge it
    with `JSON_ACKNOWLEDGEMENT`."""

    kind: str  # "tokenization" | "token_update"
    token: str
    card: SavedCard | None = None  # what Tpay said about the card (tokenization)
    tokenization_id: str | None = None

    acknowledgement = JSON_ACKNOWLEDGEMENT

    def __repr__(self) -> str:
        return f"CardNotice(kind={self.kind!r}, tokenization_id={self.tokenization_id!r})"


@dataclass(frozen=True, slots=True)
class TransactionStatus:
    """A transaction as the gateway sees it now (for reconciliation jobs)."""

    transaction_id: str
    title: str
    status: PaymentStatus
    amount: int
    paid_amount: int
    reference: str
    currency: str = "PLN"
    error_code: str | None = None  # why a failed transaction failed (e.g. "cancelled" by the payer), if said


class PaymentError(Exception):
    """Base of every error raised by a payment adapter."""


class GatewayTimeout(PaymentError):
    """The gateway did not answer in time; the outcome is unknown (retry with the same reference)."""


class GatewayError(PaymentError):
    """The gateway answered with an error or with something we could not understand."""

    def __init__(self, code: str, message: str = "", status_code: int | None = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.status_code = status_code


class RejectReason(enum.StrEnum):
    """Why a notification was not accepted (machine codes; never shown to passengers)."""

    MISSING_SIGNATURE = "missing_signature"
    MALFORMED_SIGNATURE = "malformed_signature"
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    UNTRUSTED_X5U = "untrusted_x5u"
    CERTIFICATE_UNAVAILABLE = "certificate_unavailable"
    UNTRUSTED_CERTIFICATE = "untrusted_certificate"
    BAD_SIGNATURE = "bad_signature"
    BAD_CHECKSUM = "bad_checksum"
    WRONG_MERCHANT = "wrong_merchant"
    MALFORMED_BODY = "malformed_body"


class NotificationRejected(PaymentError):
    """A notification failed verification.  Answer it with HTTP 400 and do not act on it."""

    def __init__(self, reason: RejectReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


@runtime_checkable
class PaymentGateway(Protocol):
    """What EKP needs from a payment operator.  All methods are coroutines."""

    async def create_payment(self, request: PaymentRequest) -> CreatedPayment:
        """Register a payment; send the payer to the returned `redirect_url`.  Idempotent per reference."""
        ...

    async def open_token_charge(self, charge: TokenCharge) -> CreatedPayment:
        """Open the gateway transaction for a token charge without moving money, so the caller can
        record its id durably before `charge_token(replace(charge, transaction_id=...))` pays it."""
        ...

    async def charge_token(self, charge: TokenCharge) -> ChargeResult:
        """Charge a saved card now.  Repeating the same `reference` returns the first result; with
        `charge.transaction_id` the gateway is asked about that transaction and it is paid only once."""
        ...

    async def refund(self, refund: Refund) -> RefundResult:
        """Refund a paid transaction fully or partly."""
        ...

    async def parse_notification(self, body: bytes, headers: Mapping[str, str]) -> PaymentOutcome | CardNotice:
        """Verify a raw webhook request and return its outcome (or a card notice), or raise `NotificationRejected`.

        `body` must be the raw request body (signatures cover the exact bytes).
        """
        ...

    def acknowledge(self, accepted: bool, reason: str = "") -> Acknowledgement:
        """The webhook's answer to a notification: accepted (applied, or nothing to apply), or refused with
        `reason` (a short code, never a secret)."""
        ...

    async def get_status(self, transaction_id: str) -> TransactionStatus:
        """Ask the gateway where a transaction stands (reconciliation)."""
        ...

    async def aclose(self) -> None:
        """Release HTTP connections."""
        ...


def _check_amount(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError("amount must be a positive integer number of grosze")


def _check_currency(currency: str) -> None:
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        raise ValueError("currency must be an ISO 4217 code such as 'PLN'")
