"""R-PAY-1 with Tpay's behaviour (issue 19): `ekp billing run` killed between recording a charge and Tpay's
answer, then started again, charges the month once.

Tpay (and the sandbox, which speaks like it) does not deduplicate on our reference: a second `POST
/transactions` for the same month is a second transaction, which a second `/pay` would charge again. The
billing run therefore commits each charge's Tpay transaction id before paying, and a restarted run asks
Tpay about that transaction (`GET /transactions/{id}`) instead of opening a new one. Here the run is a real
`ekp billing run` process, ended with `os._exit` (no clean-up, as with a kill) through the tests-only
`EKP_TEST_BILLING_CRASH_AT` hook, on SQLite and PostgreSQL; the sandbox store is shared with the app of
the test, as two processes on one host share it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import Browser
from tests.support.shop import Shop, settings_env, shop  # noqa: F401  (fixtures)
from web.platform import clock
from web.five_plus_one.billing import CRASH_EXIT_CODE, CRASH_VARIABLE
from web.five_plus_one.models import SubscriptionMonthRow
from web.payment_records.models import Payment
from web.tickets.models import Ticket

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def billing_run_process(settings_env: dict[str, str], crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("EKP_")}, **settings_env, "EKP_PAYMENTS": "sandbox",
           clock.PIN_VARIABLE: clock.pin_text()}  # the process's clock is the test's
    if crash_at:
        env[CRASH_VARIABLE] = crash_at
    return subprocess.run([sys.executable, "-m", "web.cli", "billing", "run"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def month_two_due(shop: Shop, browser: Browser, db) -> None:  # type: ignore[no-untyped-def]
    _, card = shop.resident(browser)
    purchase = shop.pay(browser, shop.buy(browser, card, clock.today() + timedelta(days=1)))
    shop.wait_delivered(purchase.transaction_id)
    shop.wait_applied(purchase.reference)
    month1 = db.one(SubscriptionMonthRow)
    clock.travel(month1.ends_on + timedelta(days=1) - timedelta(days=3) - clock.today())
    shop.webhook.online = False  # no notification reaches the app: only the billing runs can tell


@pytest.mark.parametrize("crash_at", ["recorded", "answered"])
def test_r_pay_1_billing_process_killed_around_tpays_answer_and_restarted_charges_the_month_once(
        shop: Shop, browser: Browser, settings_env: dict[str, str], db, crash_at: str) -> None:
    month_two_due(shop, browser, db)

    killed = billing_run_process(settings_env, crash_at)
    assert killed.returncode == CRASH_EXIT_CODE, killed.stdout + killed.stderr
    [token_payment] = db.all(Payment, Payment.kind == "token")
    assert token_payment.applied_at is None and token_payment.status == "pending"
    assert token_payment.gateway_transaction_id  # committed before the money moved
    reference, transaction_id = token_payment.reference, token_payment.gateway_transaction_id
    [opened] = shop.sandbox.store.transactions_by_reference(reference)
    assert opened["id"] == transaction_id
    # "recorded": killed before /pay; "answered": Tpay took the money, the process died before applying it.
    assert shop.sandbox.count_charges(reference=reference) == (1 if crash_at == "answered" else 0)

    clock.travel(timedelta(minutes=10))
    restarted = billing_run_process(settings_env)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert "months charged: 1" in restarted.stdout, restarted.stdout

    assert shop.sandbox.count_charges(reference=reference) == 1  # charged once
    assert [t["id"] for t in shop.sandbox.store.transactions_by_reference(reference)] == [transaction_id]  # none opened
    payment = shop.payment(reference)
    assert payment.status == "paid" and payment.gateway_transaction_id == transaction_id
    assert db.one(SubscriptionMonthRow, SubscriptionMonthRow.month_index == 2).state == "paid"
    assert db.count(Ticket) == 2

    again = billing_run_process(settings_env)  # nothing more is due
    assert again.returncode == 0 and "months charged: 0" in again.stdout, again.stdout
    assert shop.sandbox.count_charges(reference=reference) == 1
