"""The device simulators (a bus validator and a parking meter in the app, for staff where dev pages are on).

The browser never holds a device credential: the simulator pages post to the app, which acts as the
simulator device of that kind, in one transaction, through the same use cases as the device API. A
simulator acts only on demo cards or with no city card at all (`domain.trust.simulator_may_use`), so it can
never move a real card's money; a disabled simulator device stays disabled (never made again).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from domain.purse_tariff import PurseTariff
from domain.trust import simulator_may_use
from web.purse.models import Device, PurseCardRow
from web.purse import service as purse


class SimulatorRefused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def is_disabled(session: Session, kind: str) -> bool:
    """Whether the simulator device of `kind` was taken out of service (read only: the page shows it)."""
    active = session.scalars(
        select(col(Device.active)).where(col(Device.kind) == kind, col(Device.simulator).is_(True))
        .order_by(col(Device.id))
    ).first()
    return active is False


def _device_for(session: Session, kind: str, card_number: str | None) -> Device:
    device = purse.simulator_device(session, kind)
    if device is None:
        raise SimulatorRefused("simulator.disabled")
    demo = session.scalars(select(col(PurseCardRow.demo)).where(col(PurseCardRow.number) == card_number)).first() \
        if card_number else None
    if not simulator_may_use(card_number is not None, bool(demo)):
        raise SimulatorRefused("simulator.real_card")
    return device


def validator(session: Session, card_number: str | None) -> purse.KnownDevice:
    """The validator simulator's device, to tap `card_number` with (web.purse.taps_on_loop.tap_as, which
    checks the device and the demo card again in the tap's own transaction)."""
    device = _device_for(session, "validator", card_number)
    assert device.id is not None
    return purse.KnownDevice(device.id, device.name, device.kind, device.secret_hash, simulator=True)


def meter_insert(session: Session, card_number: str | None, at: datetime, *,
                 tariff: PurseTariff) -> tuple[dict[str, Any], bool]:
    _device_for(session, "parking-meter", card_number)
    return purse.meter_insert(session, card_number, at, tariff=tariff), False


def meter_quote(session: Session, card_number: str | None, at: datetime, presses: int, *,
                tariff: PurseTariff) -> tuple[dict[str, Any], bool]:
    _device_for(session, "parking-meter", card_number)
    return purse.meter_quote(session, card_number, at, presses, tariff=tariff), False


def meter_accept(session: Session, event_id: str, card_number: str | None, at: datetime,
                 presses: int, *, tariff: PurseTariff) -> tuple[dict[str, Any], bool]:
    device = _device_for(session, "parking-meter", card_number)
    return purse.meter_accept(session, device, event_id, card_number, at, presses, tariff=tariff)


def meter_top_up(session: Session, event_id: str, card_number: str | None, at: datetime,
                 coins: list[int], *, tariff: PurseTariff) -> tuple[dict[str, Any], bool]:
    device = _device_for(session, "parking-meter", card_number)
    return purse.meter_top_up(session, device, event_id, card_number, at, coins, tariff=tariff)


def meter_cancel(session: Session, coins: list[int]) -> tuple[dict[str, Any], bool]:
    _device_for(session, "parking-meter", None)
    return purse.meter_cancel(coins), False
