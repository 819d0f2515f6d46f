"""E-purse cards, ledger checks and device calls shared by the e-purse, desk and device tests."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select

from domain.purse import CardKind, RegisteredFare
from tests.conftest import VALID_PESEL
from web.platform import clock as web_clock
from web.platform.db import transaction
from domain.purse_tariff import PurseTariff
from web.purse.models import PurseCardRow
from web.platform.protect import pesel_hash
from web.platform.settings import read_tariffs
from web.purse import service


def purse_tariff() -> PurseTariff:
    """The e-purse tariff the test settings load (the default file; the app reads it once, at start-up)."""
    return read_tariffs().purse


def make_card(engine, settings, number: str, *, kind: CardKind = CardKind.PERSONAL, balance: int = 0,
              fare: RegisteredFare = RegisteredFare.NORMAL, pesel: str | None = VALID_PESEL) -> int:
    with transaction(engine) as session:
        row = service.issue_card(session, number=number, kind=kind, issued_on=web_clock.today(),
                                 holder_name="Jan Kowalski" if kind is CardKind.PERSONAL else "",
                                 pesel_hash=pesel_hash(settings.pesel_key, pesel) if pesel and kind is CardKind.PERSONAL else None,
                                 registered_fare=fare if kind is CardKind.PERSONAL else RegisteredFare.NORMAL)
        card_id = row.id
        if balance:
            service.top_up_at_service_point(session, number, balance, tariff=settings.purse_tariff)
    return card_id  # type: ignore[return-value]


def assert_balance_is_ledger_sum(engine) -> None:
    with transaction(engine) as session:
        for row in session.scalars(select(PurseCardRow)):
            assert row.balance == service.ledger_sum(session, row.id), row.number  # type: ignore[arg-type]


def balance_of(engine, number: str) -> int:
    with transaction(engine) as session:
        return session.scalars(select(PurseCardRow.balance).where(PurseCardRow.number == number)).one()


def tap_body(number: str | None, *, t: int = 0, b: int = 0, s: bool = False, at: datetime | None = None,
             vehicle: str = "BUS-7", stop: str = "Dworzec", event_id: str | None = None) -> dict[str, Any]:
    return {"event_id": event_id or uuid.uuid4().hex, "at": (at or web_clock.now()).isoformat(),
            "card_number": number, "vehicle_id": vehicle, "stop_id": stop, "buttons": {"t": t, "b": b, "s": s}}


def tap(client, credential: str, number: str | None, **kw: Any):
    return client.post("/api/devices/validator/taps", json=tap_body(number, **kw),
                       headers={"Authorization": f"Bearer {credential}"})


def meter(client, credential: str, action: str, body: dict[str, Any]):
    return client.post(f"/api/devices/meter/{action}", json=body, headers={"Authorization": f"Bearer {credential}"})


def bearer_card_and_validator(engine, number: str) -> str:
    """A bearer card with 100 zł and a new validator; returns the validator's credential."""
    with transaction(engine) as session:
        service.issue_card(session, number=number, kind=CardKind.BEARER, issued_on=web_clock.today())
        service.top_up_at_service_point(session, number, 10_000, tariff=purse_tariff())
        return service.add_device(session, "validator", "Kasownik")[1]


def validator_tap(number: str) -> service.Tap:
    return service.Tap(event_id=uuid.uuid4().hex, at=web_clock.now(), card_number=number, vehicle_id="BUS-1",
                       stop_id="Dworzec")
