"""Parking-meter events keep the device-event rules the validator keeps (issue 12, items 9 and 10): an event id
answers only its own event (R-VAL-7) and a meter's clock far ahead is refused (R-VAL-8), on both databases."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.support.purse import assert_balance_is_ledger_sum, balance_of, make_card, meter
from web.platform import clock as web_clock
from web.platform.db import transaction
from web.purse import service


@pytest.fixture
def meter_credential(engine) -> str:
    with transaction(engine) as session:
        return service.add_device(session, "parking-meter", "Parkometr Rynek")[1]


def test_r_val_7_a_meter_top_up_id_reused_for_another_card_is_refused_not_answered_with_the_first(
        client, engine, settings, meter_credential) -> None:
    make_card(engine, settings, "4101")
    make_card(engine, settings, "4102")
    at = web_clock.now().isoformat()
    event_id = uuid.uuid4().hex
    first = meter(client, meter_credential, "top-up", {"event_id": event_id, "at": at, "card_number": "4101",
                                                        "coins": [500, 500]})
    assert first.status_code == 200 and first.json()["accepted"], first.text
    again = meter(client, meter_credential, "top-up", {"event_id": event_id, "at": at, "card_number": "4101",
                                                        "coins": [500, 500]})
    assert again.status_code == 200 and again.json() == first.json()  # the same event: a replay
    other = meter(client, meter_credential, "top-up", {"event_id": event_id, "at": at, "card_number": "4102",
                                                        "coins": [500, 500]})
    assert other.status_code == 409, other.text
    assert other.json()["code"] == "purse.device.event_id_reused"
    assert "4101" not in other.text
    assert (balance_of(engine, "4101"), balance_of(engine, "4102")) == (1000, 0)
    assert_balance_is_ledger_sum(engine)


def test_r_val_7_a_parking_ticket_id_reused_for_other_presses_is_refused(client, engine, settings,
                                                                        meter_credential) -> None:
    make_card(engine, settings, "4103", balance=2000)
    at = web_clock.now().isoformat()
    event_id = uuid.uuid4().hex
    first = meter(client, meter_credential, "accept", {"event_id": event_id, "at": at, "card_number": "4103",
                                                        "presses": 1})
    assert first.status_code == 200, first.text
    assert meter(client, meter_credential, "accept", {"event_id": event_id, "at": at, "card_number": "4103",
                                                       "presses": 1}).json() == first.json()
    other = meter(client, meter_credential, "accept", {"event_id": event_id, "at": at, "card_number": "4103",
                                                        "presses": 3})
    assert other.status_code == 409 and other.json()["code"] == "purse.device.event_id_reused"
    assert_balance_is_ledger_sum(engine)


def test_r_val_8_a_meter_event_dated_in_the_future_is_refused_and_books_nothing(client, engine, settings,
                                                                               meter_credential) -> None:
    make_card(engine, settings, "4104")
    ahead = (web_clock.now() + timedelta(hours=2)).isoformat()
    answer = meter(client, meter_credential, "top-up", {"event_id": uuid.uuid4().hex, "at": ahead,
                                                         "card_number": "4104", "coins": [500]})
    assert answer.status_code == 422 and answer.json()["code"] == "purse.device.future_event", answer.text
    assert balance_of(engine, "4104") == 0
    old = "1970-01-01T00:00:00+00:00"
    answer = meter(client, meter_credential, "top-up", {"event_id": uuid.uuid4().hex, "at": old,
                                                         "card_number": "4104", "coins": [500]})
    assert answer.status_code in (200, 422)  # booked at the meter's time (and flagged), never a 500
    assert_balance_is_ledger_sum(engine)
