"""Kraków carriers (nośniki) and the resident status they may carry (R-CARD-1, R-CARD-4, R-5P1-8).

A carrier is the thing a period ticket is bound to: a plastic card or a mobile one in an app.
Plastic vs mobile is a property of the *type*, never of a single card (R-CARD-1). It decides how
an inspector checks a 5+1 ticket (R-5P1-8): a plastic card is looked up by its number (the ticket
is not written to the chip), a mobile carrier shows an Aztec code generated on the phone.

Resident status ("Karta Krakowska") is registry data with its own validity period (R-CARD-4); the
passenger cannot set it. `resident_status_on` says what that status is on a given day.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from types import MappingProxyType


class CarrierType(StrEnum):
    """Public carrier codes used by ZTP/KMK Kraków (R-CARD-1). The value is the public code."""

    KKM = "KKM"
    MKKM = "mKKM"
    KK = "KK"
    MKK = "mKK"
    KKR3_PLUS = "KKR3+"
    ELS = "ELS"
    ELD = "ELD"
    MKA = "MKA"


@dataclass(frozen=True)
class CarrierInfo:
    """What the system knows about a carrier type: its public code, Polish name and form."""

    type: CarrierType
    name_pl: str
    is_mobile: bool

    @property
    def code(self) -> str:
        return self.type.value

    @property
    def is_plastic(self) -> bool:
        return not self.is_mobile


CARRIERS: Mapping[CarrierType, CarrierInfo] = MappingProxyType(
    {
        CarrierType.KKM: CarrierInfo(CarrierType.KKM, "Krakowska Karta Miejska", is_mobile=False),
        CarrierType.MKKM: CarrierInfo(
            CarrierType.MKKM, "mobilna Krakowska Karta Miejska", is_mobile=True
        ),
        CarrierType.KK: CarrierInfo(CarrierType.KK, "Karta Krakowska", is_mobile=False),
        CarrierType.MKK: CarrierInfo(CarrierType.MKK, "mobilna Karta Krakowska", is_mobile=True),
        CarrierType.KKR3_PLUS: CarrierInfo(
            CarrierType.KKR3_PLUS, "Krakowska Karta Rodzinna 3+", is_mobile=False
        ),
        CarrierType.ELS: CarrierInfo(
            CarrierType.ELS, "Elektroniczna Legitymacja Studencka", is_mobile=False
        ),
        CarrierType.ELD: CarrierInfo(
            CarrierType.ELD, "Elektroniczna Legitymacja Doktoranta", is_mobile=False
        ),
        CarrierType.MKA: CarrierInfo(
            CarrierType.MKA, "Małopolska Karta Aglomeracyjna", is_mobile=False
        ),
    }
)


class UnknownCarrierType(ValueError):
    """A code that is none of the public carrier codes."""


_BY_FOLDED_CODE = {ct.value.casefold(): ct for ct in CarrierType}


def carrier_type_from_code(code: str) -> CarrierType:
    """Parse a carrier code as typed or imported ("mKKM", "MKKM", "KKR 3+", " kk ").

    Matching ignores case and spaces: the eight public codes stay distinct that way.
    """
    folded = "".join(code.split()).casefold()
    try:
        return _BY_FOLDED_CODE[folded]
    except KeyError:
        raise UnknownCarrierType(code) from None


def carrier_info(carrier_type: CarrierType) -> CarrierInfo:
    return CARRIERS[carrier_type]


def display_name(carrier_type: CarrierType) -> str:
    """Polish display name, e.g. "mobilna Karta Krakowska"."""
    return CARRIERS[carrier_type].name_pl


def is_mobile(carrier_type: CarrierType) -> bool:
    return CARRIERS[carrier_type].is_mobile


def carrier_choices() -> tuple[CarrierInfo, ...]:
    """All carrier types in a stable order, for the "Add card" type picker (R-CARD-2)."""
    return tuple(CARRIERS[ct] for ct in CarrierType)


class InspectionMethod(StrEnum):
    """How an inspector checks a 5+1 ticket on this carrier (R-5P1-8)."""

    CARD_LOOKUP = "card_lookup"  # plastic: not written to the card; inspector looks the card up
    AZTEC_CODE = "aztec_code"  # mobile: the passenger generates an Aztec code on the phone


def inspection_method(carrier_type: CarrierType) -> InspectionMethod:
    return InspectionMethod.AZTEC_CODE if is_mobile(carrier_type) else InspectionMethod.CARD_LOOKUP


@dataclass(frozen=True)
class ResidentStatus:
    """ "Karta Krakowska" resident status of a card, as the card registry states it (R-CARD-4).

    Both ends are inclusive days. `valid_from=None` means "since ever", `valid_until=None` means
    "open-ended" (the registry gives no end date).
    """

    valid_from: date | None = None
    valid_until: date | None = None

    def __post_init__(self) -> None:
        if (
            self.valid_from is not None
            and self.valid_until is not None
            and self.valid_until < self.valid_from
        ):
            raise ValueError("resident status ends before it starts")


class ResidentStatusState(StrEnum):
    NONE = "none"  # the card has no resident status at all
    NOT_YET_VALID = "not_yet_valid"
    VALID = "valid"
    EXPIRED = "expired"


def resident_status_on(status: ResidentStatus | None, day: date) -> ResidentStatusState:
    """The resident status of a card on `day` (R-CARD-4); both ends of the period count."""
    if status is None:
        return ResidentStatusState.NONE
    if status.valid_from is not None and day < status.valid_from:
        return ResidentStatusState.NOT_YET_VALID
    if status.valid_until is not None and day > status.valid_until:
        return ResidentStatusState.EXPIRED
    return ResidentStatusState.VALID


@dataclass(frozen=True)
class LinkedCard:
    """A card linked to a passenger's account, as the domain needs to see it.

    `card_id` is whatever the web layer identifies the card by (row id or client code).
    """

    card_id: Hashable
    carrier_type: CarrierType
    resident_status: ResidentStatus | None = None
    blocked: bool = False

    @property
    def is_mobile(self) -> bool:
        return is_mobile(self.carrier_type)

    def resident_status_on(self, day: date) -> ResidentStatusState:
        return resident_status_on(self.resident_status, day)
