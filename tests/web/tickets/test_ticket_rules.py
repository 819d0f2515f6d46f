"""R-TKT-1..4 through HTTP: two phones at most (unbound phones stop verifying, online and offline; changes
of phone are limited and shown), fresh codes, revocation that names its reason. The shared issuer key of
R-TKT-3 (two app processes, one database) is in test_ticket_issuer_keys.py."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest

from domain import ticket_phones
from domain import ticket_record as tr
from tests.conftest import page_text
from tests.support.tickets import bind, make_ticket, present, trust_list, verify_offline, verify_online
from web.cards.models import Card
from web.tickets.models import Ticket, TicketDevice
from web.tickets import service


@pytest.fixture
def passenger(browser: Any, users: Any) -> tuple[Any, Any]:
    user = users.create("jan@example.pl", birth_date=None)
    browser.login(user.email)
    return browser, user


@pytest.fixture
def inspector(new_browser: Any, users: Any) -> Any:
    user = users.create("kontroler@example.pl", role="inspector", pesel=None, first_name="Ewa", last_name="Kontrola")
    other = new_browser()
    other.login(user.email)
    return other


def _unbind(browser: Any, db: Any, ticket_id: int, phone: Any) -> None:
    key = tr.compressed_device_key(phone.public_key()).hex()
    row = db.one(TicketDevice, TicketDevice.ticket_id == ticket_id, TicketDevice.public_key == key,
                 TicketDevice.unbound_at.is_(None))  # type: ignore[union-attr]
    assert browser.post(f"/tickets/devices/{row.id}/unbind", {"next": "/tickets"}).status_code == 303


def _verifying(inspector: Any, records: dict[int, tuple[Any, bytes]]) -> tuple[set[int], set[int]]:
    """Which phones' codes verify now: (online at the terminal endpoint, offline with a fresh trust list)."""
    trust = trust_list(inspector)
    online, offline = set(), set()
    for number, (phone, record) in records.items():
        code = present(phone, record)
        if verify_online(inspector, code)["valid"]:
            online.add(number)
        if verify_offline(trust, code).valid:
            offline.add(number)
    return online, offline


def test_r_tkt_1_six_phones_in_turn_never_more_than_two_verify(passenger: Any, inspector: Any, db: Any,
                                                               clock: Any) -> None:
    browser, user = passenger
    ticket = make_ticket(db, user, start=-2, end=60)
    phones = [tr.generate_private_key() for _ in range(6)]
    records: dict[int, tuple[Any, bytes]] = {}
    active: list[int] = []
    refused: list[int] = []
    for number, phone in enumerate(phones):
        if len(active) == ticket_phones.MAX_PHONES:  # make room: the oldest phone is unbound
            _unbind(browser, db, ticket.id, phones[active.pop(0)])
            online, offline = _verifying(inspector, records)
            assert online == offline == set(active), f"after unbinding, before phone {number}"
        response = bind(browser, ticket.id, phone, label=f"Telefon {number}")
        if response.status_code == 201:
            records[number] = (phone, base64.b64decode(response.json()["record"]))
            active.append(number)
        else:
            assert response.status_code == 409, response.text
            assert response.json()["error"] == "ticket.change_limit"
            refused.append(number)
        online, offline = _verifying(inspector, records)
        assert len(online) <= 2 and len(offline) <= 2, f"phone {number}: {online=} {offline=}"
        assert online == offline == set(active), f"phone {number}"
    # Two phones free, then two changes in 30 days: phones 4 and 5 are refused, with the date it opens.
    assert refused == [4, 5]
    refusal = bind(browser, ticket.id, phones[4]).json()
    assert "2 razy w ciągu 30 dni" in refusal["message"]
    assert refusal["next_change_at"] is not None
    # The limit is a rolling window: 30 days after the first change a phone may change again.
    clock.travel(timedelta(days=30, minutes=1))
    browser.login(user.email)  # the sessions ended meanwhile
    inspector.login("kontroler@example.pl")
    assert active == [3]  # phone 4 takes the free place
    response = bind(browser, ticket.id, phones[4])
    assert response.status_code == 201, response.text
    records[4] = (phones[4], base64.b64decode(response.json()["record"]))
    online, offline = _verifying(inspector, records)
    assert online == offline == {3, 4}


def test_r_tkt_1_an_unbound_phone_bound_again_is_a_change(passenger: Any, inspector: Any, db: Any) -> None:
    browser, user = passenger
    ticket = make_ticket(db, user)
    first, second = tr.generate_private_key(), tr.generate_private_key()
    assert bind(browser, ticket.id, first).status_code == 201
    assert bind(browser, ticket.id, second).status_code == 201
    # The same phone asking again is not a new phone: a fresh record, no change used.
    assert bind(browser, ticket.id, first).status_code == 201
    for _ in range(ticket_phones.PHONE_CHANGES):
        _unbind(browser, db, ticket.id, first)
        response = bind(browser, ticket.id, first)
        assert response.status_code == 201, response.text
    record = base64.b64decode(response.json()["record"])
    assert verify_online(inspector, present(first, record))["valid"]
    assert verify_offline(trust_list(inspector), present(first, record)).valid
    _unbind(browser, db, ticket.id, first)
    refused = bind(browser, ticket.id, first)
    assert refused.status_code == 409 and refused.json()["error"] == "ticket.change_limit"
    answer = verify_online(inspector, present(first, record))
    assert answer["code"] == "revoked" and answer["revocation"] == "device_unbound"


def test_r_tkt_1_changes_left_are_shown_to_the_passenger(passenger: Any, db: Any) -> None:
    browser, user = passenger
    ticket = make_ticket(db, user)
    text = page_text(browser.get("/tickets").text)
    assert "Zmiany telefonu w ciągu 30 dni: wykorzystano 0 z 2." in text
    phones = [tr.generate_private_key() for _ in range(4)]
    for number, phone in enumerate(phones):
        if number >= 2:
            _unbind(browser, db, ticket.id, phones[number - 2])
        assert bind(browser, ticket.id, phone).status_code == 201
    text = page_text(browser.get("/tickets").text)
    assert "Limit zmian telefonu wykorzystany (2 w ciągu 30 dni)" in text
    assert "Następna zmiana możliwa od" in text
    shown = page_text(browser.get(f"/tickets/{ticket.id}/show").text)
    assert "Limit zmian telefonu wykorzystany" in shown


def test_r_tkt_2_codes_are_fresh_only_within_90_seconds(passenger: Any, inspector: Any, db: Any,
                                                        clock: Any) -> None:
    browser, user = passenger
    ticket = make_ticket(db, user)
    phone = tr.generate_private_key()
    record = base64.b64decode(bind(browser, ticket.id, phone).json()["record"])
    now = clock.now().replace(microsecond=0)
    clock.travel(now - clock.now())  # whole seconds, so the boundary is exact
    trust = trust_list(inspector)
    assert trust.freshness_seconds == tr.DEFAULT_FRESHNESS_SECONDS == 90
    for offset, expected in ((-90, "valid"), (90, "valid"), (-91, "stale"), (91, "stale")):
        code = present(phone, record, now + timedelta(seconds=offset))
        assert verify_online(inspector, code)["code"] == expected, offset
        assert verify_offline(trust, code, now).code == expected, offset


def test_r_tkt_4_revocation_names_its_reason_online_and_offline(passenger: Any, inspector: Any, db: Any) -> None:
    browser, user = passenger
    refunded = make_ticket(db, user, client_code="101")
    blocked = make_ticket(db, user, client_code="102")
    codes = {}
    for ticket in (refunded, blocked):
        phone = tr.generate_private_key()
        codes[ticket.id] = (phone, base64.b64decode(bind(browser, ticket.id, phone).json()["record"]))
    with db.session() as session:
        assert service.revoke_ticket(session, refunded.id, "refunded") is True
        assert service.revoke_ticket(session, refunded.id, "chargeback") is False  # already revoked: kept
        session.get(Card, blocked.card_id).blocked = True
    trust = trust_list(inspector)
    expected = {refunded.id: ("refunded", "zwrot"), blocked.id: ("card_blocked", "karta zablokowana")}
    for ticket_id, (why, words) in expected.items():
        phone, record = codes[ticket_id]
        answer = verify_online(inspector, present(phone, record))
        assert answer["code"] == "revoked" and answer["revocation"] == why
        assert words in answer["message"].lower()
        offline = verify_offline(trust, present(phone, record))
        assert offline.code == "revoked" and offline.revocation == why
    assert db.one(Ticket, Ticket.id == refunded.id).revoked_reason == "refunded"
    with db.session() as session, pytest.raises(ValueError):
        service.revoke_ticket(session, blocked.id, "because")
