"""Payment operators are a registry (issue 14): `payments.GATEWAYS` names each adapter with its factory and its
settings, EKP's settings read and check an adapter's settings from EKP_<GATEWAY>_<OPTION>, the app builds the
gateway through it, and the webhook answers in the operator's own convention (`gateway.acknowledge`). Adding an
operator is one adapter module plus one entry: this test adds one without touching EKP."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest
from litestar.testing import TestClient

import payments
from payments import Acknowledgement, GatewayAdapter, GatewayOption, NotificationRejected, PaymentOutcome, RejectReason
from web.platform.settings import SettingsError


class AcmeGateway(payments.PaymentGateway):
    """A made-up operator that answers notifications with JSON, the way PayU does. It implements the port
    (`payments.PaymentGateway`), as every adapter must: the app hands handlers the gateway by dependency injection,
    which checks that; the methods this test does not use keep the port's empty bodies."""

    def __init__(self, *, notification_url: str, pos_id: str, api_url: str = "https://acme.example") -> None:
        self.notification_url, self.pos_id, self.api_url = notification_url, pos_id, api_url

    async def parse_notification(self, body: bytes, headers: Mapping[str, str]) -> PaymentOutcome:
        if body == b"bad":
            raise NotificationRejected(RejectReason.BAD_SIGNATURE)
        return PaymentOutcome(status=payments.PaymentStatus.PAID, title="acme-1", reference="", amount=0,
                              paid_amount=0, panel_test=True)

    def acknowledge(self, accepted: bool, reason: str = "") -> Acknowledgement:
        if accepted:
            return Acknowledgement('{"status":"OK"}', media_type="application/json")
        return Acknowledgement(f'{{"status":"ERROR","reason":"{reason}"}}', media_type="application/json",
                               status_code=400)

    async def aclose(self) -> None:
        pass


@pytest.fixture
def acme(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = dict(payments.GATEWAYS)
    registry["acme"] = GatewayAdapter("acme", AcmeGateway, (GatewayOption("pos_id", required=True),
                                                            GatewayOption("api_url", url=True)))
    monkeypatch.setattr(payments, "GATEWAYS", MappingProxyType(registry))


def test_a_registered_operator_is_configured_from_its_own_settings(acme, make_settings) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SettingsError) as refused:
        make_settings(EKP_PAYMENTS="acme", EKP_ACME_API_URL="ftp://acme.example")
    problems = "\n".join(refused.value.problems)
    assert "EKP_ACME_POS_ID: required when EKP_PAYMENTS=acme" in problems
    assert "EKP_ACME_API_URL='ftp://acme.example'" in problems
    settings = make_settings(EKP_PAYMENTS="acme", EKP_ACME_POS_ID="145227")
    assert settings.gateway_options == {"pos_id": "145227"}
    assert "145227" not in repr(settings)
    with pytest.raises(SettingsError, match="expected tpay or sandbox or acme"):
        make_settings(EKP_PAYMENTS="payu")


def test_the_webhook_answers_in_the_registered_operators_convention(acme, make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(EKP_PAYMENTS="acme", EKP_ACME_POS_ID="145227")
    gateway = app.state.payments.gateway
    assert isinstance(gateway, AcmeGateway) and gateway.pos_id == "145227"
    assert gateway.notification_url.endswith("/payments/notify")
    with TestClient(app) as client:
        accepted = client.post("/payments/notify", content=b"test")
        assert (accepted.status_code, accepted.text) == (200, '{"status":"OK"}')
        assert accepted.headers["content-type"].startswith("application/json")
        refused = client.post("/payments/notify", content=b"bad")
        assert refused.status_code == 400 and refused.json() == {"status": "ERROR", "reason": "bad_signature"}


def test_tpay_keeps_its_true_and_false_answers() -> None:
    gateway = payments.make_gateway("tpay", client_id="c", client_secret="s", security_code="k",
                                    notification_url="https://ekp.example/payments/notify")
    assert gateway.acknowledge(True) == Acknowledgement("TRUE")
    assert gateway.acknowledge(False, "bad_signature") == Acknowledgement("FALSE - bad_signature", status_code=400)
