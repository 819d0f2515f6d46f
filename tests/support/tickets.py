"""Mobile tickets in tests: a ticket row on a card, binding phones over HTTP, presenting and verifying codes
online (the terminal endpoint) and offline (the trust list, as the inspector's phone does)."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization

from domain import ticket_record as tr
from web.platform import clock
from web.cards.models import Card
from web.tickets.models import Ticket


def raw_public(key: Any) -> bytes:
    """WebCrypto's exportKey("raw"): the 65-byte uncompressed point."""
    public = key.public_key() if hasattr(key, "public_key") else key
    return public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def make_ticket(db: Any, user: Any, *, carrier_type: str = "mKK", client_code: str = "1234567890",
                holder: str = "Jan Kowalski", start: int = -2, end: int = 27, blocked: bool = False) -> Ticket:
    """A card of ``carrier_type`` and a 5+1 ticket on it from ``start`` to ``end`` days from today."""
    today = clock.today()
    with db.session() as session:
        card = Card(carrier_type=carrier_type, client_code=client_code, holder_name=holder, pesel_hash="x" * 64,
                    account_id=user.id, blocked=blocked)
        session.add(card)
        session.flush()
        ticket = Ticket(user_id=user.id, card_id=card.id, product="5P1", variant="normal", holder_name=holder,
                        valid_from=today + timedelta(days=start), valid_until=today + timedelta(days=end), price=8900)
        session.add(ticket)
        session.flush()
        session.refresh(ticket)
    return ticket


def bind(browser: Any, ticket_id: int, key: Any, label: str = "Telefon") -> Any:
    """POST /tickets/<id>/devices as the phone's page does (JSON, CSRF header)."""
    return browser.client.post(f"/tickets/{ticket_id}/devices",
                               json={"public_key": base64.b64encode(raw_public(key)).decode(), "label": label},
                               headers={**browser.headers, "x-csrftoken": browser.csrf()})


def present(phone: Any, record: bytes, at: datetime | None = None) -> bytes:
    """The phone's presentation of its static record at ``at`` (default: now)."""
    return tr.sign_presentation(phone, record, int((at or clock.now()).timestamp()))


def verify_online(inspector: Any, code: bytes) -> dict[str, Any]:
    """POST /api/inspection/verify (a handheld terminal) -> the verdict JSON."""
    response = inspector.client.post("/api/inspection/verify", json={"code": base64.b64encode(code).decode()})
    assert response.status_code == 200, response.text
    return response.json()


def trust_list(inspector: Any) -> tr.TrustList:
    """The inspector's phone syncs: GET /api/inspection/trust-list, parsed."""
    response = inspector.client.get("/api/inspection/trust-list")
    assert response.status_code == 200, response.text
    return tr.read_trust_list(response.json())


def verify_offline(trust: tr.TrustList, code: bytes, now: datetime | None = None) -> tr.Verdict:
    """What the inspector's phone decides without network, with its cached trust list."""
    return tr.verify(code, trust.issuer_keys, trust.revoked, now or clock.now(), trust.freshness_seconds,
                     trust.revoked_devices)
