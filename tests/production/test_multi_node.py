"""Issue 18: production configuration under test. Two `ekp run` nodes with their own `var/`, one PostgreSQL (the
test one), one Redis, a load balancer in front; the client alternates between the nodes. Whatever one node
started, the other carries on; jobs run on both at once do each item once; a node killed mid-request loses
nothing. PostgreSQL only (production's database); runs in `scripts/test` and `.ci/run` like every test."""

from __future__ import annotations

import base64
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from domain import ticket_record as tr
from domain.five_plus_one import month_period
from tests.conftest import DEFAULT_PASSWORD, Browser, make_pesel
from tests.support.nodes import CountingSmtp, LoadBalancer, Node, cluster, node_env
from tests.support.redis_server import flush
from tests.support.shop import GOOD_CARD, add_card, card_expiry
from tests.support.tickets import bind, make_ticket, present, verify_online
from web.platform import clock as web_clock
from web.platform.db import transaction
from web.platform.models import OutboxMail
from web.five_plus_one.models import SubscriptionMonthRow
from web.payment_records.models import Payment
from web.tickets.models import Ticket

pytestmark = [pytest.mark.multinode,
              pytest.mark.parametrize("db_backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)]


def _ticket_keys() -> str:
    key = tr.generate_private_key()
    return f"3:{key.private_numbers().private_value:064x}"


@pytest.fixture
def installation(db_url: str, _redis_url: dict[str, Any], tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Two nodes of one installation behind a load balancer, mail to a counting SMTP server; the payment
    sandbox (the operator) is one, shared by both (its database and credentials)."""
    redis_url = _redis_url["get"]()
    flush(redis_url)
    balancer, smtp = LoadBalancer(), CountingSmtp()
    sandbox_key = "5a" * 32
    for name in ("a", "b"):
        (tmp_path / f"var-{name}").mkdir()
        (tmp_path / f"var-{name}" / "sandbox_key").write_text(sandbox_key)
    env = node_env(db_url, redis_url, balancer.url, _ticket_keys(), EKP_SANDBOX_DB=str(tmp_path / "operator.db"),
                   EKP_SANDBOX_BACKOFF="0.2", EKP_SMTP_URL=f"smtp://127.0.0.1:{smtp.port}")
    try:
        # B runs as deploy/ runs it: several worker processes (their metrics summed in one scrape).
        with cluster(tmp_path, env, args={"b": ("--workers", "2")}) as nodes:
            balancer.backends = [node.port for node in nodes]
            yield {"a": nodes[0], "b": nodes[1], "smtp": smtp, "balancer": balancer}
    finally:
        balancer.close()
        smtp.close()


def _on(browser: Browser, node: Node) -> Browser:
    """The same browser (cookies and all), now talking to `node`."""
    browser.client.base_url = node.url  # type: ignore[attr-defined]
    return browser


def _finish(*processes: subprocess.Popen[str]) -> list[str]:
    outputs = []
    for process in processes:
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, output
        outputs.append(output)
    return outputs


def test_two_nodes_share_everything_and_lose_nothing(installation, users, db, engine):
    """One installation, started once (the steps share it; the last one kills node A)."""
    _sessions_rate_limits_and_tickets_carry_across_nodes(installation, users, db)
    _jobs_on_both_nodes_at_once_do_each_item_once(installation, users, db, engine)
    _a_node_killed_mid_request_loses_nothing(installation, users, db, engine)


def _sessions_rate_limits_and_tickets_carry_across_nodes(installation, users, db):  # type: ignore[no-untyped-def]
    node_a, node_b = installation["a"], installation["b"]
    passenger = users.create("jan@example.pl")
    users.create("kontroler@example.pl", role="inspector", pesel=None, first_name="Ewa", last_name="Kontrola")
    browser = node_a.browser()
    # A session started on A works on B.
    browser.login("jan@example.pl")
    assert _on(browser, node_b).get("/account", follow_redirects=False).status_code == 200
    # A rate limit counted on A holds on B (5 wrong passwords per account and address).
    attacker = node_a.browser()
    for n in range(5):
        node = node_a if n % 2 == 0 else node_b
        assert _on(attacker, node).submit("/login", {"email": "jan@example.pl", "password": "Zle12345"}).status_code == 401
    blocked = _on(attacker, node_b).submit("/login", {"email": "jan@example.pl", "password": DEFAULT_PASSWORD})
    assert blocked.status_code == 429
    # A ticket issued on A verifies on B (EKP_TICKET_KEYS shared; neither node made a key of its own).
    ticket = make_ticket(db, passenger)
    phone = tr.generate_private_key()
    bound = bind(_on(browser, node_a), ticket.id, phone)
    assert bound.status_code == 201, bound.text
    record = base64.b64decode(bound.json()["record"])
    inspector = node_b.browser()
    inspector.login("kontroler@example.pl")
    assert verify_online(inspector, present(phone, record))["valid"] is True
    assert not list(node_a.var_dir.glob("ticket_issuer_key_*")) and not list(node_b.var_dir.glob("ticket_issuer_key_*"))
    # B's metrics (scraped directly from this machine): every worker's requests, and the shared numbers.
    metrics = node_b.client().get("/metrics")
    assert metrics.status_code == 200
    assert re.search(r'^ekp_requests_total\{[^}]*path="/login"[^}]*status_code="429"[^}]*\} [1-9]', metrics.text, re.MULTILINE), \
        metrics.text[:3000]
    assert 'ekp_payments{status="held_for_review"} 0.0' in metrics.text
    assert list((node_b.var_dir / "prometheus").glob("*.db")), "multiprocess metrics files"


def _jobs_on_both_nodes_at_once_do_each_item_once(installation, users, db, engine):  # type: ignore[no-untyped-def]
    node_a, node_b, smtp = installation["a"], installation["b"], installation["smtp"]
    # ekp mail send on both at once: every mail delivered once.
    with transaction(engine) as session:
        for n in range(40):
            session.add(OutboxMail(to_address=f"osoba{n}@example.pl", subject=f"Wiadomość {n}", text_body="x",
                                   html_body="<p>x</p>"))
    _finish(node_a.cli("mail", "send"), node_b.cli("mail", "send"))
    assert sorted(subject for _, subject in smtp.received) == sorted(f"Wiadomość {n}" for n in range(40))
    assert db.count(OutboxMail, OutboxMail.sent_at.is_(None)) == 0  # type: ignore[union-attr]
    # A 5+1 subscription bought on A, paid at the operator, back on B; month 2 charged by two billing runs at once.
    user = users.create("ala@example.pl", pesel=make_pesel(date(1985, 3, 4)), first_name="Ala")
    card = add_card(engine, user, client_code="300200100")
    browser = node_a.browser()
    browser.login(user.email)
    bought = browser.submit("/5plus1", {"card_id": str(card.id), "variant": "normal", "auto_renew": "on",
                                        "first_day": web_clock.today().isoformat(), "consent": "on"}, action="/5plus1/buy")
    assert bought.status_code == 303, bought.text[:2000]
    pay_path = urlsplit(bought.headers["location"]).path
    paid = _on(browser, node_b).client.post(pay_path, data={"number": GOOD_CARD, "expiry": card_expiry(), "cvc": "123",
                                                            "action": "pay"}, follow_redirects=False)
    assert paid.status_code == 303, paid.text[:2000]
    back = urlsplit(paid.headers["location"])
    assert browser.get(back.path + "?" + back.query).status_code == 200
    _wait(lambda: db.count(Ticket, Ticket.user_id == user.id) == 1)
    [ticket1] = db.all(Ticket, Ticket.user_id == user.id)
    month1 = db.one(SubscriptionMonthRow, SubscriptionMonthRow.id == ticket1.subscription_month_id)
    starts_on, _ = month_period(month1.starts_on, 1, 2)  # month 2, planned when it is charged
    due_day = (starts_on - timedelta(days=2)).isoformat()
    outputs = _finish(node_a.cli("billing", "run", EKP_TEST_TODAY=due_day),
                      node_b.cli("billing", "run", EKP_TEST_TODAY=due_day))
    assert db.one(SubscriptionMonthRow, SubscriptionMonthRow.month_index == 2).state == "paid", outputs
    assert db.count(Payment, Payment.kind == "token", Payment.user_id == user.id) == 1, "charged once"
    assert sum("months charged: 1" in output for output in outputs) == 1, outputs


def _a_node_killed_mid_request_loses_nothing(installation, users, db, engine):  # type: ignore[no-untyped-def]
    node_a, node_b = installation["a"], installation["b"]
    user = users.create("ola@example.pl", pesel=make_pesel(date(1990, 7, 8), serial=456, male=False), first_name="Ola")
    card = add_card(engine, user, client_code="400300200")
    browser = node_a.browser()
    browser.login(user.email)
    bought = browser.submit("/5plus1", {"card_id": str(card.id), "variant": "normal",
                                        "first_day": web_clock.today().isoformat(), "consent": "on"}, action="/5plus1/buy")
    assert bought.status_code == 303, bought.text[:2000]
    pay_path = urlsplit(bought.headers["location"]).path
    # The payer pays at the operator; its notification comes back through the load balancer.
    paid = browser.client.post(pay_path, data={"number": GOOD_CARD, "expiry": card_expiry(), "cvc": "123",
                                               "action": "pay"}, follow_redirects=False)
    assert paid.status_code == 303
    back = urlsplit(paid.headers["location"])
    # The payer's return reaches A, and A dies while answering it (SIGKILL: no cleanup at all).
    import threading

    outcome: dict[str, Any] = {}

    def come_back() -> None:
        try:
            outcome["status"] = browser.client.get(back.path + "?" + back.query, timeout=10).status_code
        except Exception as exc:  # noqa: BLE001 - the connection dies with the node
            outcome["error"] = type(exc).__name__

    request = threading.Thread(target=come_back)
    request.start()
    node_a.kill()
    request.join(timeout=15)
    # The other node answers: the same session, the same return page (the payer reloads).
    again = _on(browser, node_b).get(back.path + "?" + back.query)
    assert again.status_code == 200
    assert _on(browser, node_b).get("/account", follow_redirects=False).status_code == 200
    _wait(lambda: db.count(Ticket, Ticket.user_id == user.id) == 1)
    time.sleep(1.0)  # notifications still arriving (through the balancer, to B) change nothing more
    [payment] = db.all(Payment, Payment.user_id == user.id)
    assert payment.status == "paid" and payment.applied_at is not None
    assert db.count(Ticket, Ticket.user_id == user.id) == 1, "the payment outcome applied once"


def _wait(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.1)
