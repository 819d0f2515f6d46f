"""R-TKT-3 Issuer keys: every node signs and verifies with the same issuer keys (EKP_TICKET_KEYS), keys
have ids and rotate, an old key verifies until its tickets expire. Two real app processes with their own
`var/` and one database: a code issued on A verifies on B."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from domain import ticket_record as tr
from tests.conftest import PESEL_KEY_HEX, SECRET_KEY_HEX, Browser
from tests.support.nodes import Node
from tests.support.tickets import bind, make_ticket, present, raw_public, trust_list, verify_offline, verify_online
from web.platform.settings import SettingsError



def key_entry(key_id: int, key: Any | None = None) -> str:
    """One EKP_TICKET_KEYS entry: `<key id>:<64 hex digits of the P-256 private scalar>`."""
    key = key or tr.generate_private_key()
    return f"{key_id}:{key.private_numbers().private_value:064x}"


@pytest.fixture
def two_nodes(db_url: str, tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    keys = f"{key_entry(7)},{key_entry(6)}"
    shared = {"EKP_ENV": "test", "EKP_DATABASE_URL": db_url, "EKP_SECRET_KEY": SECRET_KEY_HEX,
              "EKP_PESEL_KEY": PESEL_KEY_HEX, "EKP_SCHEDULER": "false", "EKP_TICKET_KEYS": keys}
    nodes = [Node("a", tmp_path / "var-a", shared), Node("b", tmp_path / "var-b", shared)]
    try:
        for node in nodes:
            node.env["EKP_BASE_URL"] = node.url  # each node is its own public address here
            node.start()
        for node in nodes:
            node.wait_ready()
        yield nodes[0], nodes[1]
    finally:
        for node in nodes:
            node.stop()


def test_r_tkt_3_a_code_issued_on_one_node_verifies_on_another(two_nodes: tuple[Node, Node], users: Any,
                                                               db: Any) -> None:
    node_a, node_b = two_nodes
    passenger = users.create("jan@example.pl")
    users.create("kontroler@example.pl", role="inspector", pesel=None, first_name="Ewa", last_name="Kontrola")
    ticket = make_ticket(db, passenger)
    on_a = node_a.browser()
    on_a.login("jan@example.pl")
    phone = tr.generate_private_key()
    bound = bind(on_a, ticket.id, phone)
    assert bound.status_code == 201, bound.text
    assert bound.json()["issuer_key_id"] == 7  # the first key of EKP_TICKET_KEYS signs
    record = base64.b64decode(bound.json()["record"])
    on_b = node_b.browser()
    on_b.login("kontroler@example.pl")
    answer = verify_online(on_b, present(phone, record))
    assert answer["valid"] is True, answer
    trust = trust_list(on_b)
    assert set(trust.issuer_keys) == {6, 7}
    assert verify_offline(trust, present(phone, record)).valid
    # Neither node wrote a key of its own into var/.
    assert not list(node_a.var_dir.glob("ticket_issuer_key_*")) and not list(node_b.var_dir.glob("ticket_issuer_key_*"))


# --- configuration and rotation (in-process) ---------------------------------------------------------


def test_r_tkt_3_production_requires_ticket_keys(make_settings: Any) -> None:
    production = {"EKP_ENV": "production", "EKP_SMTP_URL": "smtp://mail.example.pl:25", "EKP_PAYMENTS": "tpay",
                  "EKP_TPAY_CLIENT_ID": "id", "EKP_TPAY_CLIENT_SECRET": "secret", "EKP_TPAY_SECURITY_CODE": "code", "EKP_PHOTO_KEY": "22" * 32}
    with pytest.raises(SettingsError) as missing:
        make_settings(**production)
    assert any(p.startswith("EKP_TICKET_KEYS: required") for p in missing.value.problems)
    assert make_settings(**production, EKP_TICKET_KEYS=key_entry(1)).ticket_keys[0][0] == 1


@pytest.mark.parametrize("value", [
    "1", "x:" + "11" * 32, "70000:" + "11" * 32, "1:zz", "1:" + "11" * 31, "1:" + "00" * 32, "1:" + "ff" * 32,
    f"1:{'11' * 32},1:{'22' * 32}", ",",
])
def test_r_tkt_3_bad_ticket_keys_are_listed(make_settings: Any, value: str) -> None:
    with pytest.raises(SettingsError) as bad:
        make_settings(EKP_TICKET_KEYS=value)
    problem = next(p for p in bad.value.problems if p.startswith("EKP_TICKET_KEYS"))
    assert "11" * 32 not in problem and "22" * 32 not in problem  # a secret is never echoed
    assert "<key id>:<64 hex digits>" in problem


def test_r_tkt_3_rotation_old_key_verifies_until_its_tickets_expire(passenger_and_inspector: Any, db: Any) -> None:
    old, new = tr.generate_private_key(), tr.generate_private_key()
    passenger, inspector, user = passenger_and_inspector(EKP_TICKET_KEYS=key_entry(1, old))
    ticket = make_ticket(db, user)
    phone = tr.generate_private_key()
    record = base64.b64decode(bind(passenger, ticket.id, phone).json()["record"])
    assert tr.decode_static(record).fields.key_id == 1
    # Rotate: key 2 signs, key 1 stays to verify what it signed.
    passenger, inspector, _ = passenger_and_inspector(EKP_TICKET_KEYS=f"{key_entry(2, new)},{key_entry(1, old)}",
                                                      user=user)
    assert verify_online(inspector, present(phone, record))["valid"]
    assert set(trust_list(inspector).issuer_keys) == {1, 2}
    refreshed = passenger.client.post(f"/tickets/{ticket.id}/devices/refresh",
                                      json={"public_key": base64.b64encode(raw_public(phone)).decode()},
                                      headers={"x-csrftoken": passenger.csrf()})
    assert refreshed.status_code == 200 and refreshed.json()["issuer_key_id"] == 2
    # Once key 1 is retired, its records are refused as unknown; the refreshed record still verifies.
    _, inspector, _ = passenger_and_inspector(EKP_TICKET_KEYS=key_entry(2, new), user=user)
    assert verify_online(inspector, present(phone, record))["code"] == "unknown_key"
    assert verify_online(inspector, present(phone, base64.b64decode(refreshed.json()["record"])))["valid"]


@pytest.fixture
def passenger_and_inspector(make_app: Any, users: Any) -> Iterator[Any]:
    """(passenger browser, inspector browser, passenger) on a fresh app with these settings."""
    from litestar.testing import TestClient

    opened: list[Any] = []
    people: dict[str, Any] = {}

    def make(user: Any = None, **overrides: str) -> tuple[Browser, Browser, Any]:
        if not people:
            people["passenger"] = users.create("jan@example.pl")
            people["inspector"] = users.create("kontroler@example.pl", role="inspector", pesel=None)
        client = TestClient(make_app(**overrides), base_url="http://testserver.local")
        client.__enter__()
        opened.append(client)
        inspector_client = TestClient(client.app, base_url="http://testserver.local")
        inspector_client.blocking_portal = client.blocking_portal
        passenger, inspector = Browser(client), Browser(inspector_client)
        passenger.login("jan@example.pl")
        inspector.login("kontroler@example.pl")
        return passenger, inspector, people["passenger"]

    yield make
    for client in reversed(opened):
        client.__exit__(None, None, None)


def test_r_tkt_3_ekp_tickets_new_key_prints_an_entry_the_settings_accept(make_settings: Any) -> None:
    from click.testing import CliRunner

    from web.cli import main

    result = CliRunner().invoke(main, ["tickets", "new-key", "--id", "3"], catch_exceptions=False)
    assert result.exit_code == 0
    entry = result.output.strip()
    assert entry.startswith("3:") and len(entry) == 2 + 64
    assert make_settings(EKP_TICKET_KEYS=entry).ticket_keys[0][0] == 3
    assert CliRunner().invoke(main, ["tickets", "new-key", "--id", "70000"]).exit_code != 0
