"""The 5+1 subscription through the web app (issue 5), on SQLite and PostgreSQL, with the controllable
clock (`web.platform.clock.travel`) and billing runs (`charge_due_months`) against the embedded sandbox.

The passenger buys on /5plus1 and pays on the sandbox page; later months are charged by billing runs with
the saved card token; the sandbox's notifications reach our webhook in-process (see test_payments_web).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy.engine import Engine

from tests.support import travel_to_day
from tests.conftest import Browser, Outbox, page_text
from tests.support.seeds import seed_due_months
from tests.support.shop import (  # noqa: F401  (fixtures)
    CONFIRMATION_SUBJECT,
    GOOD_CARD,
    RENEWALS_FAIL_CARD,
    Purchase,
    Shop,
    add_card,
    settings_env,
    shop,
    tariff_price,
    zl,
)
from web.platform import clock
from web.five_plus_one.models import Subscription5p1, SubscriptionMonthRow
from web.payment_records.models import Payment
from web.tickets.models import Ticket

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def travel_to(day: date) -> None:
    travel_to_day(day)


def months(db: Any) -> list[SubscriptionMonthRow]:
    return sorted(db.all(SubscriptionMonthRow), key=lambda m: (m.cycle, m.month_index))


def subjects(mails: Outbox, to: str) -> list[str]:
    return [m.subject for m in mails.to(to)]


def bought(shop: Shop, browser: Browser, card: Any, first_day: date, *, number: str = GOOD_CARD, auto_renew: bool = False,
           variant: str = "normal") -> Any:
    purchase = shop.pay(browser, shop.buy(browser, card, first_day, auto_renew=auto_renew, variant=variant), number)
    shop.wait_delivered(purchase.transaction_id)
    shop.wait_applied(purchase.reference)
    return purchase


def tab_after_travel(browser: Browser, email: str) -> str:
    """The tab's text, logging in again first (time travel outlives the session)."""
    browser.login(email)
    return page_text(browser.get("/5plus1").text)


def charge_window(month_start: date) -> date:
    return month_start - timedelta(days=3)  # EKP_CHARGE_DAYS_BEFORE default


# --------------------------------------------------------------------------- R-5P1-1 eligibility


@pytest.mark.parametrize(
    ("card", "reason"),
    [
        (None, "Nie masz jeszcze karty na koncie"),
        ({"resident": False}, "mogą kupić wyłącznie mieszkańcy ze statusem Karty Krakowskiej"),
        ({"resident_until": date(2020, 12, 31), "resident_from": date(2019, 1, 1)}, "Status Karty Krakowskiej na Twojej karcie wygasł"),
        ({"resident_from": date(2098, 1, 1)}, "jeszcze nie obowiązuje"),
        ({"blocked": True}, "jest zablokowana"),
    ],
    ids=["no-cards", "no-resident-status", "expired", "not-yet-valid", "blocked"],
)
def test_r_5p1_1_tab_explains_why_passenger_cannot_buy(shop: Shop, browser: Browser, engine: Engine, card: Any, reason: str) -> None:
    user = shop.users.create("ola@example.pl")
    if card is not None:
        add_card(engine, user, **card)
    browser.login(user.email)
    page = browser.get("/5plus1")
    assert page.status_code == 200
    text = page_text(page.text)
    assert reason in text
    assert "Przejdź do Moich kart" in text
    assert 'action="/5plus1/buy"' not in page.text


def test_r_5p1_1_account_without_pesel_is_refused(shop: Shop, browser: Browser) -> None:
    user = shop.users.create("olena@example.pl", pesel=None)
    browser.login(user.email)
    assert "Twoje konto nie ma numeru PESEL" in page_text(browser.get("/5plus1").text)


def test_r_5p1_1_buying_on_a_card_without_status_is_refused_by_the_server(shop: Shop, browser: Browser, engine: Engine, db) -> None:
    user, good = shop.resident(browser)
    plain = add_card(engine, user, resident=False, client_code="100200301")
    response = browser.submit("/5plus1", {"card_id": str(plain.id), "variant": "normal",
                                          "first_day": clock.today().isoformat(), "consent": "on"}, action="/5plus1/buy")
    assert response.status_code == 409
    assert "mieszkańcy ze statusem Karty Krakowskiej" in page_text(response.text)
    assert db.count(Subscription5p1) == 0 and db.count(Payment) == 0


# --------------------------------------------------------------------------- purchase


def test_r_5p1_2_schedule_shown_before_paying_and_purchase_confirmed(shop: Shop, browser: Browser, mails: Outbox, db) -> None:
    user, card = shop.resident(browser)
    first_day = clock.today() + timedelta(days=5)
    schedule = browser.htmx("/5plus1/schedule", {"card_id": str(card.id), "variant": "normal", "first_day": first_day.isoformat()})
    assert schedule.status_code == 200
    text = page_text(schedule.text)
    monthly = zl(tariff_price(1, first_day))  # the price in force on the first day (R-5P1-2)
    assert schedule.text.count("<tr") >= 6 and text.count(monthly) == 5 and "20,00" in text
    reduced = page_text(browser.htmx("/5plus1/schedule", {"card_id": str(card.id), "variant": "reduced",
                                                           "first_day": first_day.isoformat()}).text)
    assert reduced.count(zl(tariff_price(1, first_day, "reduced"))) == 5 and "10,00" in reduced

    # Consent is required; a day in the past is refused.
    no_consent = browser.submit("/5plus1", {"card_id": str(card.id), "variant": "normal", "first_day": first_day.isoformat()},
                                action="/5plus1/buy")
    assert no_consent.status_code == 422 and "Zaznacz zgodę" in page_text(no_consent.text)
    past = browser.submit("/5plus1", {"card_id": str(card.id), "variant": "normal", "consent": "on",
                                      "first_day": (clock.today() - timedelta(days=1)).isoformat()}, action="/5plus1/buy")
    assert past.status_code == 422 and "nie może być w przeszłości" in page_text(past.text)
    assert db.count(Subscription5p1) == 0

    purchase = bought(shop, browser, card, first_day, auto_renew=True)
    back = page_text(shop.come_back(browser, purchase).text)
    assert "Płatność przyjęta" in back and monthly in back
    tab = page_text(browser.get("/5plus1").text)
    assert "Następny bilet" in tab  # month 1 starts in 5 days
    assert "Następne obciążenie" in tab and "Ponawiaj subskrypcję automatycznie: TAK" in tab
    assert "Visa •••• 1111" in tab
    payment = shop.payment(purchase.reference)
    assert payment.gateway_title in tab  # the operator's payment reference in the history

    mail = mails.last(user.email)
    assert mail.subject == CONFIRMATION_SUBJECT
    assert mail.text.count(monthly) >= 5 and "20,00" in mail.text  # the schedule

    travel_to(first_day)
    tab = tab_after_travel(browser, user.email)
    assert "Aktywny bilet" in tab and "miesiąc 1 z 6" in tab
    ticket = db.one(Ticket)
    assert ticket.valid_from == first_day and ticket.price == tariff_price(1, first_day) and ticket.card_id == card.id


def test_r_5p1_3_start_on_31_january(shop: Shop, browser: Browser, db) -> None:
    today = clock.today()
    travel_to(date(today.year + 1, 1, 20))  # a non-leap January ahead (2027 from 2026)
    year = clock.today().year
    _, card = shop.resident(browser)
    first_day = date(year, 1, 31)
    html = browser.htmx("/5plus1/schedule", {"card_id": str(card.id), "variant": "normal", "first_day": first_day.isoformat()}).text
    text = page_text(html)
    leap = year % 4 == 0
    expected = [
        ("31.01", "29.02" if leap else "28.02"), ("01.03", "30.03"), ("31.03", "30.04"),
        ("01.05", "30.05"), ("31.05", "30.06"), ("01.07", "30.07"),
    ]
    for start, end in expected:
        assert f"{start}.{year}" in text and f"{end}.{year}" in text, (start, end, text)

    bought(shop, browser, card, first_day)
    [month1] = months(db)
    assert (month1.starts_on, month1.ends_on) == (first_day, date(year, 2, 29 if leap else 28))
    travel_to(charge_window(date(year, 3, 1)))
    assert shop.billing_run().charged == 1
    month2 = months(db)[1]
    assert (month2.starts_on, month2.ends_on) == (date(year, 3, 1), date(year, 3, 30))
    assert [(t.valid_from, t.valid_until) for t in sorted(db.all(Ticket), key=lambda t: t.valid_from)] == [
        (first_day, month1.ends_on), (date(year, 3, 1), date(year, 3, 30))]


# --------------------------------------------------------------------------- R-5P1-4..6 charging


def test_r_5p1_4_5_full_cycle_with_auto_renewal_into_the_next(shop: Shop, browser: Browser, mails: Outbox, db) -> None:
    user, card = shop.resident(browser)
    first_day = clock.today() + timedelta(days=1)
    purchase = bought(shop, browser, card, first_day, auto_renew=True)
    token = db.one(Subscription5p1).card_token

    for expected_index in range(2, 7):
        last = months(db)[-1]
        expected_price = tariff_price(expected_index, last.ends_on + timedelta(days=1))
        travel_to(charge_window(last.ends_on + timedelta(days=1)) - timedelta(days=1))
        assert shop.billing_run().charged == 0  # the window has not opened yet
        travel_to(charge_window(last.ends_on + timedelta(days=1)))
        report = shop.billing_run()
        assert report.charged == 1, (expected_index, report)
        month = months(db)[-1]
        assert (month.cycle, month.month_index, month.price, month.state) == (1, expected_index, expected_price, "paid")
        assert shop.billing_run().charged == 0  # a second run the same day charges nothing

    travel_to(months(db)[-1].starts_on)
    tab = tab_after_travel(browser, user.email)
    assert "miesiąc 6 z 6" in tab and "Aktywny bilet" in tab
    next_start = months(db)[-1].ends_on + timedelta(days=1)
    assert zl(tariff_price(1, next_start)) in tab  # next charge: month 1 of cycle 2 at the normal price

    # R-5P1-5: auto-renewal starts the next cycle at the monthly price.
    travel_to(charge_window(months(db)[-1].ends_on + timedelta(days=1)))
    assert shop.billing_run().charged == 1
    renewal = months(db)[-1]
    assert (renewal.cycle, renewal.month_index, renewal.price, renewal.state) == (2, 1, tariff_price(1, next_start), "paid")
    assert db.count(Ticket) == 7
    assert shop.sandbox.count_charges(token=token) == 7  # month 1 on the page + six token charges
    # One charge per month, each with its own payment record; all paid.
    assert sorted(p.status for p in db.all(Payment)) == ["paid"] * 7
    sent = subjects(mails, user.email)
    assert sent.count(CONFIRMATION_SUBJECT) == 1
    assert sent.count("Kolejny bilet 5+1 opłacony") == 5
    assert sent.count("Subskrypcja 5+1 odnowiona na kolejne 6 miesięcy") == 1
    assert shop.payment(purchase.reference).status == "paid"


def test_r_5p1_5_without_auto_renewal_the_subscription_ends_after_month_6(shop: Shop, browser: Browser, db) -> None:
    _, card = shop.resident(browser)
    bought(shop, browser, card, clock.today() + timedelta(days=1), auto_renew=False)
    for _ in range(5):
        travel_to(charge_window(months(db)[-1].ends_on + timedelta(days=1)))
        assert shop.billing_run().charged == 1
    last = months(db)[-1]
    travel_to(charge_window(last.ends_on + timedelta(days=1)))
    assert shop.billing_run().charged == 0
    travel_to(last.ends_on + timedelta(days=1))
    shop.billing_run()
    sub = db.one(Subscription5p1)
    assert sub.status == "ended" and sub.end_reason == "cycle_completed"
    assert db.count(Ticket) == 6


def test_r_5p1_6_cycle_broken_by_declined_renewal(shop: Shop, browser: Browser, mails: Outbox, db) -> None:
    user, card = shop.resident(browser)
    first_day = clock.today() + timedelta(days=1)
    bought(shop, browser, card, first_day, number=RENEWALS_FAIL_CARD, auto_renew=True)
    month1 = months(db)[0]
    month2_start = month1.ends_on + timedelta(days=1)

    travel_to(charge_window(month2_start))
    report = shop.billing_run()
    assert report.declined == 1 and report.charged == 0
    month2 = months(db)[1]
    assert month2.state == "failed" and month2.next_attempt_on == clock.today() + timedelta(days=1)
    assert "Nie udało się pobrać opłaty za bilet 5+1" in subjects(mails, user.email)
    browser.login(user.email)
    tab = browser.get("/5plus1")
    assert "Zapłać" in tab.text and f'action="/5plus1/pay/{month2.id}"' in tab.text

    # Retried every day until the day before the month starts, declined each time.
    for _ in range(2):
        clock.travel(timedelta(days=1))
        assert shop.billing_run().declined == 1
    clock.travel(timedelta(days=1))
    assert clock.today() == month2_start
    shop.billing_run()
    sub = db.one(Subscription5p1)
    assert sub.status == "broken" and sub.end_reason == "month_not_paid"
    assert months(db)[1].state == "missed"
    assert "Cykl biletu 5+1 został przerwany" in subjects(mails, user.email)
    # Nothing more is charged; the paid ticket of month 1 stayed valid through its last day.
    assert db.count(Ticket) == 1 and db.one(Ticket).valid_until == month1.ends_on
    token = sub.card_token
    assert shop.sandbox.count_charges(token=token) == 1
    assert shop.sandbox.store.count_charges(token=token, succeeded=False) == 3  # three declined attempts
    clock.travel(timedelta(days=40))
    assert shop.billing_run().charged == 0 and db.count(Payment) == 4  # month 1 + three declined attempts
    tab = tab_after_travel(browser, user.email)
    assert "Kup bilet 5plus1" in tab  # may buy again, starting a fresh cycle


def test_r_5p1_6_pay_now_saves_the_cycle(shop: Shop, browser: Browser, db) -> None:
    user, card = shop.resident(browser)
    bought(shop, browser, card, clock.today() + timedelta(days=1), number=RENEWALS_FAIL_CARD)
    travel_to(charge_window(months(db)[0].ends_on + timedelta(days=1)))
    assert shop.billing_run().declined == 1
    month2 = months(db)[1]
    browser.login(user.email)
    response = browser.submit("/5plus1", {}, action=f"/5plus1/pay/{month2.id}")
    assert response.status_code == 303
    pay_path = response.headers["location"].split("testserver.local", 1)[-1]
    tx_id = pay_path.rsplit("/", 1)[1]
    purchase = Purchase(shop.sandbox.store.transaction(tx_id)["reference"], tx_id, pay_path)
    shop.pay(browser, purchase, GOOD_CARD)
    shop.wait_delivered(tx_id)
    shop.wait_applied(purchase.reference)
    assert months(db)[1].state == "paid"
    sub = db.one(Subscription5p1)
    assert sub.status == "active"
    travel_to(months(db)[1].starts_on)
    shop.billing_run()
    assert db.one(Subscription5p1).status == "active" and db.count(Ticket) == 2


def test_r_5p1_7_cancellation_mid_cycle(shop: Shop, browser: Browser, mails: Outbox, db) -> None:
    user, card = shop.resident(browser)
    bought(shop, browser, card, clock.today() + timedelta(days=1), auto_renew=True)
    travel_to(charge_window(months(db)[0].ends_on + timedelta(days=1)))
    assert shop.billing_run().charged == 1
    travel_to(months(db)[1].starts_on + timedelta(days=3))
    browser.login(user.email)

    response = browser.submit("/5plus1", {}, action="/5plus1/cancel")
    assert response.status_code == 303
    sub = db.one(Subscription5p1)
    assert sub.status == "cancelled" and sub.end_reason == "cancelled_by_passenger"
    assert "Subskrypcja 5+1 anulowana" in subjects(mails, user.email)
    tab = tab_after_travel(browser, user.email)
    assert "Aktywny bilet" in tab and "miesiąc 2 z 6" in tab  # the paid ticket stays valid
    assert "Następne obciążenie" not in tab

    for _ in range(3):
        travel_to(charge_window(months(db)[-1].ends_on + timedelta(days=1)))
        assert shop.billing_run().charged == 0
        clock.travel(timedelta(days=31))
    assert db.count(Ticket) == 2 and db.count(SubscriptionMonthRow) == 2
    assert shop.sandbox.count_charges(token=sub.card_token) == 2
    assert all(t.revoked_at is None for t in db.all(Ticket))


def use_tariff_5p1(app: Any, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app as started with EKP_TARIFF_5P1=path (tariffs are read once, at start-up, into the settings)."""
    from dataclasses import replace

    from web.platform.settings import read_tariffs
    from web.purposes import payment_purposes

    settings = replace(app.state.settings, tariff_5p1_path=path, tariffs=read_tariffs(path_5p1=path))
    monkeypatch.setattr(app.state, "settings", settings)
    monkeypatch.setattr(app.state, "purposes", payment_purposes(settings))


def test_r_5p1_2_price_change_applies_to_months_charged_after_it(shop: Shop, browser: Browser, db, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    user, card = shop.resident(browser)
    first_day = clock.today() + timedelta(days=1)
    old = tmp_path / "tariff-2024.toml"
    old.write_text('name = "Bilet 5+1"\nreduced_percent = 50\n\n[[prices]]\neffective_from = 2024-01-01\n'
                   'monthly_normal = "80.00"\nplus_one_normal = "20.00"\n', encoding="utf-8")
    use_tariff_5p1(shop.app, old, monkeypatch)
    bought(shop, browser, card, first_day)
    travel_to(charge_window(months(db)[0].ends_on + timedelta(days=1)))
    assert shop.billing_run().charged == 1  # month 2 planned now, at 80 zł

    # The operator announces a new price from the day month 3 starts (a new file, read at the next start).
    month3_start = months(db)[1].ends_on + timedelta(days=1)
    new = tmp_path / "tariff-new.toml"
    new.write_text(old.read_text(encoding="utf-8") + f'\n[[prices]]\neffective_from = {month3_start.isoformat()}\n'
                   'monthly_normal = "95.00"\nplus_one_normal = "25.00"\n', encoding="utf-8")
    use_tariff_5p1(shop.app, new, monkeypatch)
    tab = tab_after_travel(browser, user.email)
    assert "95,00" in tab  # the next charge shows the new price

    for _ in range(4):
        travel_to(charge_window(months(db)[-1].ends_on + timedelta(days=1)))
        assert shop.billing_run().charged == 1
    assert [m.price for m in months(db)] == [8000, 8000, 9500, 9500, 9500, 2500]
    assert [t.price for t in sorted(db.all(Ticket), key=lambda t: t.valid_from)] == [8000, 8000, 9500, 9500, 9500, 2500]


# --------------------------------------------------------------------------- overlapping billing runs


def _seed(shop_or_store: Any, engine: Engine, count: int) -> list[int]:
    return seed_due_months(engine, shop_or_store, count)


def test_r_5p1_6_two_billing_runs_at_once_charge_each_month_once(shop: Shop, engine: Engine, db) -> None:
    count = 40
    _seed(shop.sandbox.store, engine, count)
    months_each = db.count(SubscriptionMonthRow) // count  # the paid ones and the due one
    settings = shop.app.state.settings
    from web.five_plus_one.billing import charge_due_months

    barrier = threading.Barrier(2)
    reports: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        async def main() -> Any:
            gateway = shop.sandbox.gateway(notification_url="")  # its own HTTP client on this thread's loop
            try:
                barrier.wait()
                return await charge_due_months(engine, gateway, shop.app.state.purposes, settings, batch=7, concurrency=4)
            finally:
                await gateway.aclose()

        try:
            reports.append(anyio.run(main))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors, errors
    assert sum(r.charged for r in reports) == count
    assert db.count(Payment) == count  # one payment record per month: nothing claimed twice
    assert shop.sandbox.count_charges() == count
    assert db.count(Ticket) == count
    assert db.count(SubscriptionMonthRow, SubscriptionMonthRow.state == "paid") == months_each * count


@pytest.mark.postgres
def test_r_5p1_6_two_ekp_billing_run_processes_charge_each_month_once(db_backend: str, settings_env: dict[str, str],
                                                                      engine: Engine, db) -> None:
    if db_backend != "postgres":
        pytest.skip("two processes against one database: the PostgreSQL row-claiming case")
    from payments.sandbox.store import SandboxStore

    var_dir = Path(settings_env["EKP_VAR_DIR"])
    store = SandboxStore(var_dir / "sandbox.db")
    count = 60
    _seed(store, engine, count)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("EKP_")}, **settings_env, "EKP_PAYMENTS": "sandbox",
           clock.PIN_VARIABLE: clock.pin_text()}  # the processes' clock is the test's
    processes = [subprocess.Popen([sys.executable, "-m", "web.cli", "billing", "run"], cwd=PROJECT_ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    charged = [int(out.split("months charged: ")[1].split(",")[0]) for out in outputs]
    assert sum(charged) == count, outputs
    assert db.count(Payment) == count
    assert store.count_charges() == count
    assert db.count(Ticket) == count
    store.close()


def test_r_5p1_9_confirmation_on_screen_and_by_mail_and_the_ticket_on_the_tab(shop: Shop, browser: Browser, mails: Outbox,
                                                                                db) -> None:
    user, card = shop.resident(browser)
    purchase = bought(shop, browser, card, clock.today())  # valid from today
    screen = page_text(shop.come_back(browser, purchase).text)
    assert "Płatność przyjęta" in screen
    mail = mails.last(user.email)
    assert mail.subject == CONFIRMATION_SUBJECT
    assert "Pierwszy miesiąc jest opłacony" in mail.text and "/5plus1" in mail.text
    assert "<table" in mail.html  # the schedule, in the HTML part too
    tab = page_text(browser.get("/5plus1").text)
    assert "Aktywny bilet" in tab and "miesiąc 1 z 6" in tab
    assert db.count(Ticket) == 1
