"""Carrier types and resident status (R-CARD-1, R-CARD-4) and where a 5+1 ticket lives (R-5P1-8)."""

from __future__ import annotations

from datetime import date

import pytest

from domain.carriers import (
    CARRIERS,
    CarrierType,
    InspectionMethod,
    LinkedCard,
    ResidentStatus,
    ResidentStatusState,
    UnknownCarrierType,
    carrier_choices,
    carrier_type_from_code,
    display_name,
    inspection_method,
    is_mobile,
    resident_status_on,
)


def test_r_card_1_all_eight_public_codes_with_form():
    assert {ct.value for ct in CarrierType} == {
        "KKM", "mKKM", "KK", "mKK", "KKR3+", "ELS", "ELD", "MKA",
    }  # fmt: skip
    mobile = {ct.value for ct in CarrierType if is_mobile(ct)}
    assert mobile == {"mKKM", "mKK"}
    assert set(CARRIERS) == set(CarrierType)
    assert [c.type for c in carrier_choices()] == list(CarrierType)


def test_r_card_1_polish_display_names():
    assert display_name(CarrierType.KKM) == "Krakowska Karta Miejska"
    assert display_name(CarrierType.MKK) == "mobilna Karta Krakowska"
    assert display_name(CarrierType.MKA) == "Małopolska Karta Aglomeracyjna"
    assert all(info.name_pl for info in CARRIERS.values())
    assert CARRIERS[CarrierType.KK].is_plastic and CARRIERS[CarrierType.KK].code == "KK"


def test_r_card_1_mkkm_is_not_mkk():
    # The seed warns: mKKM (mobile city card) is not mKK (mobile Karta Krakowska).
    assert carrier_type_from_code("mKKM") is CarrierType.MKKM
    assert carrier_type_from_code("mKK") is CarrierType.MKK
    assert CarrierType.MKKM is not CarrierType.MKK


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("KKM", CarrierType.KKM),
        (" kkm ", CarrierType.KKM),
        ("MKKM", CarrierType.MKKM),
        ("KKR 3+", CarrierType.KKR3_PLUS),
        ("kkr3+", CarrierType.KKR3_PLUS),
        ("els", CarrierType.ELS),
        ("ELD", CarrierType.ELD),
    ],
)
def test_r_card_1_codes_parse_ignoring_case_and_spaces(text, expected):
    assert carrier_type_from_code(text) is expected


@pytest.mark.parametrize("text", ["", "KKR", "KK3+", "XYZ", "m KK M2"])
def test_r_card_1_unknown_codes_are_rejected(text):
    with pytest.raises(UnknownCarrierType):
        carrier_type_from_code(text)


def test_r_5p1_8_plastic_is_looked_up_mobile_shows_aztec():
    for ct in (CarrierType.KKM, CarrierType.KK, CarrierType.KKR3_PLUS, CarrierType.ELS,
               CarrierType.ELD, CarrierType.MKA):  # fmt: skip
        assert inspection_method(ct) is InspectionMethod.CARD_LOOKUP
    for ct in (CarrierType.MKKM, CarrierType.MKK):
        assert inspection_method(ct) is InspectionMethod.AZTEC_CODE


def test_r_card_4_resident_status_period_inclusive():
    status = ResidentStatus(valid_from=date(2025, 1, 1), valid_until=date(2025, 12, 31))
    assert resident_status_on(status, date(2024, 12, 31)) is ResidentStatusState.NOT_YET_VALID
    assert resident_status_on(status, date(2025, 1, 1)) is ResidentStatusState.VALID
    assert resident_status_on(status, date(2025, 12, 31)) is ResidentStatusState.VALID
    assert resident_status_on(status, date(2026, 1, 1)) is ResidentStatusState.EXPIRED


def test_r_card_4_no_status_and_open_ended_status():
    assert resident_status_on(None, date(2025, 5, 5)) is ResidentStatusState.NONE
    open_ended = ResidentStatus(valid_from=date(2020, 1, 1))
    assert resident_status_on(open_ended, date(2099, 1, 1)) is ResidentStatusState.VALID
    until_only = ResidentStatus(valid_until=date(2025, 6, 30))
    assert resident_status_on(until_only, date(1990, 1, 1)) is ResidentStatusState.VALID


def test_r_card_4_status_cannot_end_before_it_starts():
    with pytest.raises(ValueError):
        ResidentStatus(valid_from=date(2025, 2, 1), valid_until=date(2025, 1, 31))


def test_r_card_4_linked_card_reports_its_status_and_form():
    card = LinkedCard("c1", CarrierType.MKK, ResidentStatus(valid_until=date(2025, 3, 1)))
    assert card.is_mobile
    assert card.resident_status_on(date(2025, 3, 1)) is ResidentStatusState.VALID
    assert card.resident_status_on(date(2025, 3, 2)) is ResidentStatusState.EXPIRED
