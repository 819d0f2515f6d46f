"""Contract tests: the Tpay adapter against answers and notifications written in Tpay's own shapes.

Every fixture below is written from Tpay's published client models and plugin code (field names and
nesting are taken as facts from the file cited in its comment: tpay-com/tpay-openapi-php, the SDK, and
tpay-com/tpay-magento2-basic, whose saved-card payment is the SDK's two calls); nothing here comes from
our sandbox. Where a shape is not in those files it says so (issue 19 is then the source, and
docs/payments.md lists it as unverified without a live merchant account).
The OpenAPI answers are served over HTTP through an httpx transport, the adapter's real path.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from payments import CardNotice, JSON_ACKNOWLEDGEMENT, make_gateway
from payments.port import GatewayError, PaymentOutcome, PaymentStatus, Refund, TokenCharge
from payments.signing import legacy_md5sum, sign_detached

from .fake_tpay import CLIENT_ID, CLIENT_SECRET, MERCHANT_ID, SECURITY_CODE, CertificateAuthority, make_ca

pytestmark = pytest.mark.anyio

API = "https://api.tpay.test"
X5U = "https://secure.tpay.test/x509/notifications-jws.pem"

# POST /transactions (token charge, first call): tpay-magento2-basic `Model/ApiFacade/CardTransaction/
# CardOpen.php` sends `amount` (float), `description`, `hiddenDescription`, `payer.email`/`.name`, `lang`,
# `pay.groupId` 103, `callbacks.notification.url`, and reads `$transaction['transactionId']` of the answer;
# `title`, `status`, `payments` and the other fields of the transaction object as in issue 19.
CREATED = {
    "result": "success",
    "requestId": "6b2c0c8b5b3d4c0e9a0f",
    "transactionId": "01JTPAYCONTRACT0000000001",
    "title": "TR-CNT-0001X",
    "posId": "ps_NyRBLzV5kelrOGxb",
    "status": "pending",
    "date": {"creation": "2026-11-29 10:00:00", "realization": None},
    "amount": 99.0,
    "currency": "PLN",
    "description": "Odnowienie",
    "hiddenDescription": "renewal-1",
    "payer": {"email": "jan@example.com", "name": "Jan Kowalski"},
    "payments": {"status": "pending", "method": "", "amountPaid": 0, "date": {"realization": None}},
    "transactionPaymentUrl": "https://secure.tpay.com/?title=TR-CNT-0001X",
}

# POST /transactions/{id}/pay with a declined saved card: tpay-magento2-basic `Model/ApiFacade/CardTransaction/
# CardOpen.php::processSavedCardPayment` sends {groupId: 103, cardPaymentData: {token}, method: 'sale'}
# (SDK `TransactionsApi::createPaymentByTransactionId`), counts the card paid only when `result` is
# 'success' and `$result['payments']['status']` is 'correct', and on 'declined' reads `payments.reason`
# (else `payments.err_desc`). The transaction's own `status` staying 'pending' is from issue 19, item 1.
PAY_DECLINED = {
    **CREATED,
    "status": "pending",
    "payments": {
        "status": "declined",
        "method": "sale",
        "amountPaid": 0,
        "date": {"realization": None},
        "reason": "(51) Insufficient funds",
        "err_desc": "Insufficient funds",
    },
}

# The same call paid (same file): payments.status 'correct'; payments.amountPaid as in issue 19.
PAY_CORRECT = {
    **CREATED,
    "status": "correct",
    "payments": {"status": "correct", "method": "sale", "amountPaid": 99.0, "date": {"realization": "2026-11-29 10:00:02"}},
}

# GET /transactions/{id} of a paid transaction (tpay-openapi-php `TransactionsApi::getTransactionById`, which
# returns Tpay's JSON as is): the paid amount nested as `payments.amountPaid`, no top-level amountPaid
# (issue 19, item 2; the SDK has no model of the answer to cite).
GET_PAID = {**PAY_CORRECT, "payments": {**PAY_CORRECT["payments"], "amountPaid": 99.0}}

# A refund answer that does not say what happened (`TransactionsApi::createRefundByTransactionId` returns
# Tpay's JSON as is; issue 19 item 8: an answer without `status` is not a done refund).
REFUND_WITHOUT_STATUS = {"result": "success", "requestId": "abc"}


class TpayAnswers:
    """Tpay's OpenAPI over an httpx transport: OAuth, then canned answers per (method, path)."""

    def __init__(self, answers: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/oauth/auth":
            return httpx.Response(200, json={"access_token": "t", "token_type": "Bearer", "expires_in": 7200})
        body = json.loads(request.content) if request.content else None
        self.calls.append((request.method, path, body))
        queue = self.answers[(request.method, path)]
        return httpx.Response(200, json=queue.pop(0) if len(queue) > 1 else queue[0])


def gateway(answers: TpayAnswers | None = None, ca: CertificateAuthority | None = None):
    ca = ca or make_ca("Contract Tpay")

    def transport(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("notifications-jws.pem"):
            return httpx.Response(200, content=ca.signer_pem)
        assert answers is not None
        return answers(request)

    return make_gateway(
        "tpay", client_id=CLIENT_ID, client_secret=CLIENT_SECRET, security_code=SECURITY_CODE,
        merchant_id=MERCHANT_ID, notification_url="https://ekp.example/payments/notify", api_url=API,
        root_cert=ca.root_pem.decode(), x5u_prefix="https://secure.tpay.test/x509/",
        transport=httpx.MockTransport(transport),
    ), ca


def renewal(reference: str = "renewal-1", **overrides: Any) -> TokenCharge:
    values = dict(token="tok-1", amount=9900, description="Odnowienie", reference=reference,
                  payer_email="jan@example.com", payer_name="Jan Kowalski")
    return TokenCharge(**(values | overrides))


# ---------------------------------------------------------------------------- OpenAPI answers


async def test_declined_renewal_in_payments_status_is_failed_and_not_paid_again() -> None:
    tid = CREATED["transactionId"]
    answers = TpayAnswers({("POST", "/transactions"): [CREATED], ("POST", f"/transactions/{tid}/pay"): [PAY_DECLINED],
                           ("GET", f"/transactions/{tid}"): [PAY_DECLINED]})
    gw, _ = gateway(answers)
    async with gw:
        result = await gw.charge_token(renewal())
        again = await gw.charge_token(renewal())
    assert result.status is PaymentStatus.FAILED
    assert result.error_code == "(51) Insufficient funds"
    assert again == result
    assert [c for c in answers.calls if c[1].endswith("/pay")].__len__() == 1


async def test_pay_sends_method_sale_with_the_token_as_tpays_clients_do() -> None:
    tid = CREATED["transactionId"]
    answers = TpayAnswers({("POST", "/transactions"): [CREATED], ("POST", f"/transactions/{tid}/pay"): [PAY_CORRECT]})
    gw, _ = gateway(answers)
    async with gw:
        result = await gw.charge_token(renewal())
    assert result.paid and result.transaction_id == tid and result.title == "TR-CNT-0001X"
    [pay] = [body for _, path, body in answers.calls if path.endswith("/pay")]
    assert pay == {"groupId": 103, "method": "sale", "cardPaymentData": {"token": "tok-1"}}


async def test_paid_amount_is_read_from_payments_amount_paid() -> None:
    tid = CREATED["transactionId"]
    gw, _ = gateway(TpayAnswers({("GET", f"/transactions/{tid}"): [GET_PAID]}))
    async with gw:
        status = await gw.get_status(tid)
    assert status.status is PaymentStatus.PAID and status.paid_amount == 9900 and status.amount == 9900
    assert status.reference == "renewal-1"


async def test_declined_attempt_read_by_reconciliation_is_failed() -> None:
    tid = CREATED["transactionId"]
    gw, _ = gateway(TpayAnswers({("GET", f"/transactions/{tid}"): [PAY_DECLINED]}))
    async with gw:
        status = await gw.get_status(tid)
    assert status.status is PaymentStatus.FAILED and status.paid_amount == 0


async def test_success_is_not_a_paid_status() -> None:
    tid = CREATED["transactionId"]
    gw, _ = gateway(TpayAnswers({("GET", f"/transactions/{tid}"): [{**CREATED, "status": "success"}]}))
    async with gw:
        with pytest.raises(GatewayError):
            await gw.get_status(tid)


async def test_refund_answer_without_status_is_not_counted_as_done() -> None:
    tid = CREATED["transactionId"]
    gw, _ = gateway(TpayAnswers({("POST", f"/transactions/{tid}/refunds"): [REFUND_WITHOUT_STATUS]}))
    async with gw:
        with pytest.raises(GatewayError):
            await gw.refund(Refund(tid))


async def test_recorded_transaction_is_asked_about_and_never_created_or_paid_again() -> None:
    # R-PAY-1 after a crash: the transaction id was recorded before paying; Tpay says it is paid.
    tid = CREATED["transactionId"]
    answers = TpayAnswers({("GET", f"/transactions/{tid}"): [GET_PAID]})
    gw, _ = gateway(answers)
    async with gw:
        result = await gw.charge_token(renewal(transaction_id=tid))
    assert result.paid and result.transaction_id == tid
    assert [(m, p) for m, p, _ in answers.calls] == [("GET", f"/transactions/{tid}")]


async def test_recorded_transaction_never_paid_is_paid_once() -> None:
    tid = CREATED["transactionId"]
    answers = TpayAnswers({("GET", f"/transactions/{tid}"): [CREATED], ("POST", f"/transactions/{tid}/pay"): [PAY_CORRECT]})
    gw, _ = gateway(answers)
    async with gw:
        result = await gw.charge_token(renewal(transaction_id=tid))
    assert result.paid
    assert [(m, p) for m, p, _ in answers.calls] == [("GET", f"/transactions/{tid}"), ("POST", f"/transactions/{tid}/pay")]


@pytest.mark.parametrize("change", [{"reference": "r" * 129}, {"payer_name": "  "}])
async def test_overlong_reference_and_empty_payer_name_are_caught_before_sending(change: dict[str, str]) -> None:
    answers = TpayAnswers({("POST", "/transactions"): [CREATED]})
    gw, _ = gateway(answers)
    async with gw:
        with pytest.raises(GatewayError) as info:
            await gw.charge_token(renewal(**change))
    assert info.value.code == "invalid_request" and answers.calls == []


# ---------------------------------------------------------------------------- notifications


def form_notification(*, amount: str = "99.00", extra: dict[str, str] | None = None, tr_id: str = "TR-CNT-0001X",
                      md5_amount: str | None = None) -> bytes:
    """Tpay's form notification: tpay-openapi-php `src/Model/Objects/NotificationBody/BasicPayment.php`
    (OBJECT_FIELDS: id, tr_id, tr_date, tr_crc, tr_amount, tr_paid, tr_desc, tr_status, tr_error, tr_email,
    md5sum, test_mode, wallet, masterpass, tr_channel, card_token; no expiry field); `tr_status` one of
    `src/Model/Fields/Notification/TransactionStatus.php`'s enum TRUE, PAID, CHARGEBACK (no FALSE); md5sum
    as in `src/Webhook/JWSVerifiedPaymentNotification.php::checkMd5`: md5(id . tr_id .
    Util::numberFormat(tr_amount) . tr_crc . secret), numberFormat giving two decimals."""
    fields = {
        "id": MERCHANT_ID, "tr_id": tr_id, "tr_date": "2026-11-29 10:00:02", "tr_crc": "renewal-1",
        "tr_amount": amount, "tr_paid": amount, "tr_desc": "Odnowienie", "tr_status": "TRUE", "tr_error": "none",
        "tr_email": "jan@example.com", "test_mode": "0",
        "md5sum": legacy_md5sum(MERCHANT_ID, tr_id, md5_amount or amount, "renewal-1", SECURITY_CODE),
    }
    return urlencode(fields | (extra or {})).encode()


async def parse(body: bytes) -> PaymentOutcome | CardNotice:
    gw, ca = gateway()
    async with gw:
        return await gw.parse_notification(body, {"X-JWS-Signature": sign_detached(body, ca.signer_key, X5U)})


async def test_paid_notification_with_card_token_but_no_expiry_is_accepted() -> None:
    # BasicPayment.php has `card_token` and no expiry field: a paid notification must never bounce on it.
    outcome = await parse(form_notification(extra={"card_token": "tok-new"}))
    assert isinstance(outcome, PaymentOutcome) and outcome.status is PaymentStatus.PAID
    assert outcome.card is not None and outcome.card.token == "tok-new" and outcome.card.expiry is None


async def test_token_payment_data_fields_are_read() -> None:
    # The saved card's details as Tpay names them: tpay-openapi-php `src/Model/Fields/Notification/
    # CardExpiryDate.php` (name 'tokenPaymentData_cardExpiryDate'); _cardBrand / _cardTail as in issue 19.
    outcome = await parse(form_notification(extra={
        "card_token": "tok-new", "tokenPaymentData_cardBrand": "Mastercard", "tokenPaymentData_cardTail": "4444",
        "tokenPaymentData_cardExpiryDate": "0728"}))
    assert isinstance(outcome, PaymentOutcome) and outcome.card is not None
    assert (outcome.card.brand, outcome.card.last4, outcome.card.expiry) == ("Mastercard", "4444", "07/2028")


async def test_md5sum_hashes_the_amount_with_two_decimals() -> None:
    # Tpay may send tr_amount as "99" or "12.5"; its md5sum covers "99.00" / "12.50".
    outcome = await parse(form_notification(amount="99", md5_amount="99.00"))
    assert isinstance(outcome, PaymentOutcome) and outcome.amount == 9900


async def test_tr_currency_is_read() -> None:
    outcome = await parse(form_notification(extra={"tr_currency": "EUR"}))
    assert isinstance(outcome, PaymentOutcome) and outcome.currency == "EUR"
    outcome = await parse(form_notification(extra={"tr_currency": "985"}))
    assert isinstance(outcome, PaymentOutcome) and outcome.currency == "PLN"


async def test_panel_test_notification_is_recognised() -> None:
    outcome = await parse(form_notification(tr_id="TR-BRX-TST4NLJX"))
    assert isinstance(outcome, PaymentOutcome) and outcome.panel_test


async def test_json_tokenization_notification_is_parsed_and_acknowledged_as_tpay_expects() -> None:
    # tpay-openapi-php `src/Model/Objects/NotificationBody/Tokenization.php`: tokenizationId, token, cardBrand,
    # cardTail, tokenExpiryDate (MMYY); the envelope {"type": "tokenization", "data": {...}} as
    # `src/Webhook/JWSVerifiedPaymentNotification.php::getNotificationObject` / `getSourceData` read it.
    body = json.dumps({"type": "tokenization", "data": {
        "tokenizationId": "TO-ABC-123", "token": "tok-json", "cardBrand": "Visa", "cardTail": "1111",
        "tokenExpiryDate": "1229"}}).encode()
    notice = await parse(body)
    assert isinstance(notice, CardNotice) and notice.kind == "tokenization" and notice.token == "tok-json"
    assert notice.card is not None and notice.card.expiry == "12/2029" and notice.card.last4 == "1111"
    assert notice.acknowledgement == JSON_ACKNOWLEDGEMENT == '{"result":true}'


async def test_json_token_update_notification_is_parsed() -> None:
    # tpay-openapi-php `src/Model/Objects/NotificationBody/TokenUpdate.php`: token.
    notice = await parse(json.dumps({"type": "token_update", "data": {"token": "tok-json"}}).encode())
    assert isinstance(notice, CardNotice) and notice.kind == "token_update" and notice.token == "tok-json"


async def test_json_notification_with_a_bad_signature_is_rejected() -> None:
    from payments.port import NotificationRejected

    body = json.dumps({"type": "token_update", "data": {"token": "tok-json"}}).encode()
    gw, ca = gateway()
    async with gw:
        with pytest.raises(NotificationRejected):
            await gw.parse_notification(body + b" ", {"X-JWS-Signature": sign_detached(body, ca.signer_key, X5U)})


async def test_json_notification_fields_under_msg_value_are_read() -> None:
    # `JWSVerifiedPaymentNotification.php::getSourceData` takes the fields from "data", else "msg_value".
    notice = await parse(json.dumps({"type": "token_update", "msg_value": {"token": "tok-mv"}}).encode())
    assert isinstance(notice, CardNotice) and notice.token == "tok-mv"


@pytest.mark.parametrize(("tr_status", "status"), [("TRUE", PaymentStatus.PAID), ("PAID", PaymentStatus.PAID),
                                                   ("CHARGEBACK", PaymentStatus.REFUNDED)])
async def test_every_tr_status_of_tpays_enum_is_read(tr_status: str, status: PaymentStatus) -> None:
    # tpay-openapi-php `src/Model/Fields/Notification/TransactionStatus.php`: enum TRUE, PAID, CHARGEBACK.
    outcome = await parse(form_notification(extra={"tr_status": tr_status}))
    assert isinstance(outcome, PaymentOutcome) and outcome.status is status


async def test_paid_notification_without_any_optional_field_is_accepted() -> None:
    # BasicPayment.php's required fields only (getRequiredFields): no test_mode, wallet, card_token, tr_currency.
    body = form_notification()
    fields = {k: v for k, v in (p.split("=", 1) for p in body.decode().split("&")) if k != "test_mode"}
    outcome = await parse("&".join(f"{k}={v}" for k, v in fields.items()).encode())
    assert isinstance(outcome, PaymentOutcome) and outcome.status is PaymentStatus.PAID and outcome.currency == "PLN"
