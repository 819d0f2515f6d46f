"""R-5P1-8 on the web: binding a mobile ticket to a phone (max 2), the signed static record, the
inspectors' trust list, the terminal verification endpoint with its verdicts, card look-up, the
inspection log and role checks."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from domain import ticket_record as tr
from tests.conftest import page_text
from web.platform import clock as web_clock
from web.cards.models import Card
from web.tickets.models import Inspection, Ticket, TicketDevice
from web.tickets import service

def raw_public(key: Any) -> bytes:
    """WebCrypto's exportKey("raw"): the 65-byte uncompressed point."""
    public = key.public_key() if hasattr(key, "public_key") else key
    return public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def make_ticket(db: Any, user: Any, *, carrier_type: str = "mKK", client_code: str = "1234567890",
                holder: str = "Jan Kowalski", variant: str = "normal", start: int = -2, end: int = 27,
                blocked: bool = False) -> Ticket:
    today = web_clock.today()
    with db.session() as session:
        card = Card(carrier_type=carrier_type, client_code=client_code, holder_name=holder, pesel_hash="x" * 64,
                    account_id=user.id, blocked=blocked)
        session.add(card)
        session.flush()
        ticket = Ticket(user_id=user.id, card_id=card.id, product="5P1", variant=variant, holder_name=holder,
                        valid_from=today + timedelta(days=start), valid_until=today + timedelta(days=end), price=8900)
        session.add(ticket)
        session.flush()
        session.refresh(ticket)
    return ticket


def post_json(browser: Any, path: str, body: dict[str, Any], *, csrf: bool = True) -> Any:
    headers = {"x-csrftoken": browser.csrf()} if csrf else {}
    return browser.client.post(path, json=body, headers=headers)


def bind(browser: Any, ticket_id: int, key: Any, label: str = "Telefon") -> Any:
    return post_json(browser, f"/tickets/{ticket_id}/devices",
                     {"public_key": base64.b64encode(raw_public(key)).decode(), "label": label})


@pytest.fixture
def passenger(browser: Any, users: Any) -> tuple[Any, Any]:
    user = users.create("jan@example.pl", birth_date=None)
    browser.login(user.email)
    return browser, user


@pytest.fixture
def inspector(new_browser: Any, users: Any) -> tuple[Any, Any]:
    user = users.create("kontroler@example.pl", role="inspector", pesel=None, first_name="Ewa", last_name="Kontrola")
    other = new_browser()
    other.login(user.email)
    return other, user


def issuer(settings: Any) -> service.IssuerKeys:
    return service.issuer_keys(settings.var_dir)


def test_r_5p1_8_binding_signs_a_record_naming_the_phone(passenger: Any, db: Any, settings: Any) -> None:
    browser, user = passenger
    ticket = make_ticket(db, user, holder="Łucja Żak-Nowak")
    device = tr.generate_private_key()
    response = bind(browser, ticket.id, device)
    assert response.status_code == 201, response.text
    answer = response.json()
    record = tr.decode_static(base64.b64decode(answer["record"]))
    fields = record.fields
    assert fields.ticket_id == ticket.id
    assert fields.key_id == answer["issuer_key_id"] == 1
    assert fields.device_public_key == tr.compressed_device_key(raw_public(device))
    assert fields.product_code == "5P1-N"
    assert fields.holder_initials == "ŁŻN"
    assert fields.birth_year == user.birth_date.year
    start, end = web_clock.to_local(fields.valid_from), web_clock.to_local(fields.valid_until)
    assert (start.date(), start.hour, start.minute) == (ticket.valid_from, 0, 0)
    assert (end.date(), end.hour, end.minute) == (ticket.valid_until + timedelta(days=1), 0, 0)
    # The phone's presentation of that record verifies with the published issuer keys.
    now = web_clock.now()
    code = tr.sign_presentation(device, record.raw, int(now.timestamp()))
    assert tr.verify(code, issuer(settings).public, frozenset(), now).valid
    assert db.one(TicketDevice).label == "Telefon"


def test_r_5p1_8_issuer_key_is_created_once_in_var(settings: Any, tmp_path: Any) -> None:
    first = service.issuer_keys(tmp_path / "fresh-var")
    assert (tmp_path / "fresh-var" / "ticket_issuer_key_1.pem").exists()
    service._keys_cache.clear()
    again = service.issuer_keys(tmp_path / "fresh-var")
    assert again.signing_id == first.signing_id == 1
    assert raw_public(again.signing_key) == raw_public(first.signing_key)


def test_r_5p1_8_binding_needs_csrf_and_a_valid_key(passenger: Any, db: Any) -> None:
    browser, user = passenger
    ticket = make_ticket(db, user)
    device = tr.generate_private_key()
    refused = post_json(browser, f"/tickets/{ticket.id}/devices",
                        {"public_key": base64.b64encode(raw_public(device)).decode()}, csrf=False)
    assert refused.status_code == 403
    bad = post_json(browser, f"/tickets/{ticket.id}/devices", {"public_key": base64.b64encode(b"\x04" + b"\x01" * 64).decode()})
    assert bad.status_code == 400
    assert bad.json()["error"] == "ticket.bad_key"
    garbage = post_json(browser, f"/tickets/{ticket.id}/devices", {"nope": 1})
    assert garbage.status_code == 400
    assert db.count(TicketDevice) == 0


def test_r_5p1_8_at_most_two_phones_per_ticket(passenger: Any, db: Any) -> None:
    browser, user = passenger
    ticket = make_ticket(db, user)
    phones = [tr.generate_private_key() for _ in range(3)]
    assert bind(browser, ticket.id, phones[0]).status_code == 201
    assert bind(browser, ticket.id, phones[1]).status_code == 201
    third = bind(browser, ticket.id, phones[2])
    assert third.status_code == 409
    assert third.json()["error"] == "ticket.device_limit"
    assert "2 telefonów" in third.json()["message"]
    # The same phone binding again is not a new device: it gets a freshly signed record.
    again = bind(browser, ticket.id, phones[0])
    assert again.status_code == 201
    assert db.count(TicketDevice) == 2
    # Unbinding one (from the tickets page) makes room for another phone.
    first = db.all(TicketDevice)[0]
    listing = browser.get("/tickets")
    assert "Odłącz telefon" in listing.text and "(2/2)" in page_text(listing.text)
    response = browser.post(f"/tickets/devices/{first.id}/unbind", {"next": "/tickets"})
    assert response.status_code == 303
    assert bind(browser, ticket.id, phones[2]).status_code == 201
    assert db.count(TicketDevice, TicketDevice.unbound_at.is_(None)) == 2  # type: ignore[union-attr]


def test_r_5p1_8_refresh_only_for_a_bound_phone(passenger: Any, db: Any) -> None:
    browser, user = passenger
    ticket = make_ticket(db, user)
    phone = tr.generate_private_key()
    assert bind(browser, ticket.id, phone).status_code == 201
    key = {"public_key": base64.b64encode(raw_public(phone)).decode()}
    assert post_json(browser, f"/tickets/{ticket.id}/devices/refresh", key).status_code == 200
    device = db.one(TicketDevice)
    assert browser.post(f"/tickets/devices/{device.id}/unbind", {}).status_code == 303
    gone = post_json(browser, f"/tickets/{ticket.id}/devices/refresh", key)
    assert gone.status_code == 410
    assert db.count(TicketDevice, TicketDevice.unbound_at.is_(None)) == 0  # type: ignore[union-attr]


def test_r_5p1_8_plastic_and_foreign_tickets_cannot_be_bound(passenger: Any, db: Any, users: Any) -> None:
    browser, user = passenger
    plastic = make_ticket(db, user, carrier_type="KKM", client_code="5555")
    answer = bind(browser, plastic.id, tr.generate_private_key())
    assert answer.status_code == 409 and answer.json()["error"] == "ticket.not_mobile"
    shown = browser.get(f"/tickets/{plastic.id}/show")
    assert shown.status_code == 200
    assert "X-EKP-Offline" not in shown.headers
    assert "karcie plastikowej" in page_text(shown.text) and 'id="aztec"' not in shown.text
    other = users.create("ola@example.pl", pesel=None, birth_date=datetime(1985, 5, 5).date())
    foreign = make_ticket(db, other, client_code="777")
    assert bind(browser, foreign.id, tr.generate_private_key()).status_code == 404
    assert browser.get(f"/tickets/{foreign.id}/show").status_code == 404
    ended = make_ticket(db, user, client_code="888", start=-40, end=-10)
    assert bind(browser, ended.id, tr.generate_private_key()).json()["error"] == "ticket.ended"


def test_r_5p1_8_show_page_is_offline_capable(passenger: Any, db: Any) -> None:
    browser, user = passenger
    ticket = make_ticket(db, user)
    response = browser.get(f"/tickets/{ticket.id}/show")
    assert response.status_code == 200
    assert response.headers["X-EKP-Offline"] == "1"
    text = page_text(response.text)
    assert "Pokaż bilet do kontroli" in text and "Jan Kowalski" in text and "Bilet 5plus1 normalny" in text
    assert "co 30 s" in text
    assert 'data-refresh-seconds="30"' in response.text
    assert "js/ticket-show.js" in response.text
    assert '<a href="/tickets" class="tab" aria-current="page">' in response.text  # the bottom tab bar


def test_r_5p1_8_passenger_pages_need_a_passenger(client: Any, inspector: Any, db: Any) -> None:
    other, _ = inspector
    assert client.get("/tickets", follow_redirects=False).status_code == 303
    assert other.get("/tickets").status_code == 403
    page = other.get("/inspect")
    assert page.status_code == 200
    assert '<a href="/inspect" class="tab" aria-current="page">' in page.text
    assert page.headers["X-EKP-Offline"] == "1"


def test_r_5p1_8_trust_list_for_inspectors_only(passenger: Any, inspector: Any, db: Any, settings: Any,
                                                new_browser: Any) -> None:
    browser, user = passenger
    revoked = make_ticket(db, user, client_code="1")
    blocked = make_ticket(db, user, client_code="2", blocked=True)
    fine = make_ticket(db, user, client_code="3")
    old = make_ticket(db, user, client_code="4", start=-60, end=-30)
    with db.session() as session:
        for ticket in (revoked, old):
            row = session.get(Ticket, ticket.id)
            row.revoked_at = web_clock.now()
    other, _ = inspector
    response = other.get("/api/inspection/trust-list")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    keys, revoked_ids, _ = tr.parse_trust_list(response.json())
    assert set(keys) == {1}
    assert raw_public(keys[1]) == raw_public(issuer(settings).signing_key.public_key())
    assert revoked_ids == {revoked.id, blocked.id}
    assert fine.id not in revoked_ids
    assert browser.get("/api/inspection/trust-list").status_code == 403
    anonymous = new_browser().get("/api/inspection/trust-list")
    assert anonymous.status_code == 401 and anonymous.json()["status"] == 401


def _presentation(browser: Any, db: Any, user: Any, at: datetime, **ticket: Any) -> tuple[bytes, Ticket]:
    row = make_ticket(db, user, **ticket)
    phone = tr.generate_private_key()
    record = base64.b64decode(bind(browser, row.id, phone).json()["record"])
    return tr.sign_presentation(phone, record, int(at.timestamp())), row


def verify_code(other: Any, code: bytes) -> Any:
    return other.client.post("/api/inspection/verify", json={"code": base64.b64encode(code).decode()})


def test_r_5p1_8_verify_endpoint_verdicts(passenger: Any, inspector: Any, db: Any, clock: Any) -> None:
    browser, user = passenger
    other, inspector_user = inspector
    now = clock.now()
    code, ticket = _presentation(browser, db, user, now, client_code="11")
    valid = verify_code(other, code)
    assert valid.status_code == 200, valid.text
    body = valid.json()
    assert body["valid"] is True and body["code"] == "valid" and body["message"] == "Bilet ważny"
    assert body["ticket"]["ticket_id"] == ticket.id
    assert body["ticket"]["holder_name"] == "Jan Kowalski"
    assert body["ticket"]["holder_initials"] == "JK"
    assert body["ticket"]["birth_year"] == user.birth_date.year
    assert body["ticket"]["first_day"] == ticket.valid_from.isoformat()
    assert body["ticket"]["last_day"] == ticket.valid_until.isoformat()

    stale_code, _ = _presentation(browser, db, user, now - timedelta(seconds=tr.DEFAULT_FRESHNESS_SECONDS + 1), client_code="12")
    stale = verify_code(other, stale_code).json()
    assert stale["code"] == "stale" and stale["valid"] is False and "zrzut ekranu" in stale["message"]
    assert stale["ticket"]["ticket_id"] is not None

    revoked_code, revoked_ticket = _presentation(browser, db, user, now, client_code="13")
    with db.session() as session:
        session.get(Ticket, revoked_ticket.id).revoked_at = now
    assert verify_code(other, revoked_code).json()["code"] == "revoked"

    forged = bytearray(code)
    forged[70] ^= 0x01  # inside the issuer signature
    forged_answer = verify_code(other, bytes(forged)).json()
    assert forged_answer["code"] == "forged" and forged_answer["ticket"] is None

    upcoming_code, _ = _presentation(browser, db, user, now, client_code="14", start=3, end=33)
    assert verify_code(other, upcoming_code).json()["code"] == "not_yet_valid"

    assert verify_code(other, b"\x01not a ticket").json()["code"] == "malformed"

    logged = db.all(Inspection)
    assert len(logged) == 6
    assert {row.inspector_id for row in logged} == {inspector_user.id}
    assert {row.method for row in logged} == {"terminal"}
    assert [row.verdict for row in logged] == ["valid", "stale", "revoked", "forged", "not_yet_valid", "malformed"]
    assert logged[0].ticket_id == ticket.id and logged[3].ticket_id is None


def test_r_5p1_8_expired_ticket_verdict(passenger: Any, inspector: Any, db: Any, clock: Any, settings: Any) -> None:
    browser, user = passenger
    other, _ = inspector
    row = make_ticket(db, user, start=-5, end=-1)
    phone = tr.generate_private_key()
    fields = tr.TicketFields(key_id=1, ticket_id=row.id, product_code="5P1-N",
                             valid_from=service.validity_utc(row)[0], valid_until=service.validity_utc(row)[1],
                             holder_initials="JK", birth_year=1990, device_public_key=tr.compressed_device_key(raw_public(phone)))
    record = tr.sign_static(issuer(settings).signing_key, fields)
    code = tr.sign_presentation(phone, record, int(clock.now().timestamp()))
    answer = verify_code(other, code).json()
    assert answer["code"] == "expired" and answer["message"] == "Bilet wygasł"


def test_r_5p1_8_verify_endpoint_input_and_roles(passenger: Any, inspector: Any, new_browser: Any) -> None:
    browser, _ = passenger
    other, _ = inspector
    assert other.client.post("/api/inspection/verify", json={"code": "%%%"}).status_code == 400
    assert other.client.post("/api/inspection/verify", json={}).status_code == 400
    assert other.client.post("/api/inspection/verify", content=b"code=AA",
                             headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 415
    assert browser.client.post("/api/inspection/verify", json={"code": "AA=="}).status_code == 403
    assert new_browser().client.post("/api/inspection/verify", json={"code": "AA=="}).status_code == 401


def test_r_5p1_8_offline_scans_are_logged(inspector: Any, db: Any, clock: Any) -> None:
    other, inspector_user = inspector
    at = int(clock.now().timestamp()) - 120
    response = other.client.post("/api/inspection/log", json={"scans": [
        {"code": "valid", "ticket_id": 999, "at": at}, {"code": "stale", "ticket_id": None, "at": at},
        {"code": "made-up", "ticket_id": 1, "at": at}, "junk"]})
    assert response.status_code == 200 and response.json() == {"logged": 2}
    rows = db.all(Inspection)
    assert {(r.verdict, r.ticket_id, r.method) for r in rows} == {("valid", None, "scan"), ("stale", None, "scan")}
    assert all(r.inspector_id == inspector_user.id for r in rows)
    page = other.get("/inspect")
    assert "Ostatnie kontrole" in page.text and "Kod nieaktualny" in page_text(page.text)


def test_r_5p1_8_plastic_card_lookup(passenger: Any, inspector: Any, db: Any) -> None:
    browser, user = passenger
    other, _ = inspector
    ticket = make_ticket(db, user, carrier_type="KKM", client_code="9876543")
    make_ticket(db, user, carrier_type="KK", client_code="1111", start=-60, end=-31)
    found = other.get("/inspect/card?client_code=9876543")
    assert found.status_code == 200
    text = page_text(found.text)
    assert "Ważny bilet na dziś" in text and "Jan Kowalski" in text and str(ticket.id) in text
    none_valid = page_text(other.get("/inspect/card?client_code=1111").text)
    assert "Brak ważnego biletu na dziś" in none_valid
    assert "Nie ma karty" in page_text(other.get("/inspect/card?client_code=000").text)
    assert other.get("/inspect/card?client_code=%3Cx%3E").status_code == 422
    assert [r.verdict for r in db.all(Inspection)] == ["valid", "no_ticket", "card_not_found"]
    assert browser.get("/inspect/card?client_code=9876543").status_code == 403


def test_zxing_wasm_is_self_hosted(client: Any) -> None:
    wasm = client.get("/static/vendor/zxing/writer/zxing_writer.wasm")
    assert wasm.status_code == 200 and wasm.headers["content-type"] == "application/wasm"
    module = client.get("/static/vendor/zxing/es/reader/index.js")
    assert module.status_code == 200 and "javascript" in module.headers["content-type"]
