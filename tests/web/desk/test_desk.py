"""The customer-service desk for staff (SQLite and PostgreSQL): cash top-ups with a receipt (R-TOP-1),
loss reports and replacement cards that take the balance along (R-KKM-7), and linking a card to an
account registered without PESEL after an ID check."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from domain.purse import CardKind
from tests.conftest import page_text
from tests.support.purse import assert_balance_is_ledger_sum, balance_of, make_card
from web.platform.db import transaction
from web.platform.models import AuditEvent
from web.cards.models import Card
from web.purse.models import PurseCardRow, PurseLedgerEntry


def staff_browser(browser, users):  # type: ignore[no-untyped-def]
    users.create("bok@example.pl", role="staff", pesel=None)
    browser.login("bok@example.pl")
    return browser


def test_desk_is_for_staff_only(browser, users):
    users.create("jan@example.pl")
    browser.login("jan@example.pl")
    assert browser.get("/desk").status_code == 403


def test_r_top_1_cash_top_up_at_the_desk_prints_a_receipt_with_the_bonus(browser, users, engine, settings):
    make_card(engine, settings, "70020001")
    desk = staff_browser(browser, users)
    response = desk.submit("/desk/purse/70020001", {"amount": "60"}, action="/desk/purse/70020001/top-up")
    assert response.status_code == 200
    text = page_text(response.text)
    assert "Paragon fiskalny" in text
    assert "6,00 zł" in text  # 10 % bonus on 60 zł (R-TOP-3)
    assert balance_of(engine, "70020001") == 6600
    assert_balance_is_ledger_sum(engine)


def test_r_top_1_desk_minimum_is_refused_next_to_the_field_and_nothing_is_booked(browser, users, engine, settings):
    make_card(engine, settings, "70020002")
    desk = staff_browser(browser, users)
    response = desk.submit("/desk/purse/70020002", {"amount": "4,99"}, action="/desk/purse/70020002/top-up")
    assert response.status_code == 422
    assert 'id="amount-errors"' in response.text and "ZA NISKA KWOTA" in response.text
    assert balance_of(engine, "70020002") == 0
    bad = desk.submit("/desk/purse/70020002", {"amount": "dużo"}, action="/desk/purse/70020002/top-up")
    assert bad.status_code == 422 and "Podaj kwotę w złotych" in page_text(bad.text)


def test_r_kkm_7_loss_at_the_desk_then_a_new_card_takes_the_balance(browser, users, engine, settings, clock):
    make_card(engine, settings, "70020003", balance=2000)
    desk = staff_browser(browser, users)
    refused = desk.submit("/desk/purse/70020003", {}, action="/desk/purse/70020003/loss")
    assert refused.status_code == 422  # the caller's identity must be confirmed
    reported = desk.submit("/desk/purse/70020003", {"identity_checked": "on"}, action="/desk/purse/70020003/loss")
    assert reported.status_code == 303
    too_early = desk.submit("/desk/purse/70020003", {"new_number": "70020004"}, action="/desk/purse/70020003/replace")
    assert too_early.status_code == 422 and "dopiero, gdy karta jest zablokowana" in page_text(too_early.text)
    with transaction(engine) as session:
        assert session.scalars(select(PurseCardRow).where(PurseCardRow.number == "70020004")).first() is None
    clock.travel(timedelta(days=1, hours=9))
    desk.login("bok@example.pl")  # the desk session ran out overnight
    moved = desk.submit("/desk/purse/70020003", {"new_number": "70020004"}, action="/desk/purse/70020003/replace")
    assert moved.status_code == 303 and moved.headers["location"] == "/desk/purse/70020004"
    assert balance_of(engine, "70020004") == balance_of(engine, "70020003") + 2000 == 2000
    assert_balance_is_ledger_sum(engine)


def test_bearer_cards_cannot_be_reported_lost(browser, users, engine, settings):
    make_card(engine, settings, "70020005", kind=CardKind.BEARER)
    desk = staff_browser(browser, users)
    page = desk.get("/desk/purse/70020005")
    assert "Utrata lub kradzież" not in page_text(page.text)


def test_desk_links_a_card_to_an_account_without_pesel(browser, users, engine):
    users.create("olena@example.pl", pesel=None, first_name="Olena")
    with transaction(engine) as session:
        session.add(Card(carrier_type="KKM", client_code="123456789", holder_name="Olena S.", pesel_hash="x" * 64))
    desk = staff_browser(browser, users)
    missing_id = desk.submit("/desk", {"email": "olena@example.pl", "carrier_type": "KKM", "client_code": "123456789"},
                             action="/desk/link-card")
    assert missing_id.status_code == 422
    linked = desk.submit("/desk", {"email": "olena@example.pl", "carrier_type": "KKM", "client_code": "123456789",
                                   "identity_checked": "on"}, action="/desk/link-card")
    assert linked.status_code == 303
    with transaction(engine) as session:
        card = session.scalars(select(Card)).one()
        assert card.account_id is not None
        assert session.scalars(select(AuditEvent).where(AuditEvent.action == "desk.card_linked")).first() is not None
    again = desk.submit("/desk", {"email": "olena@example.pl", "carrier_type": "KKM", "client_code": "123456789",
                                  "identity_checked": "on"}, action="/desk/link-card")
    assert again.status_code == 409


def test_desk_unknown_card_and_account(browser, users):
    desk = staff_browser(browser, users)
    assert desk.get("/desk?number=99999999").status_code == 404
    response = desk.submit("/desk", {"email": "nikt@example.pl", "carrier_type": "KKM", "client_code": "123456789",
                                     "identity_checked": "on"}, action="/desk/link-card")
    assert response.status_code == 422 and "Nie ma konta pasażera" in page_text(response.text)


# --------------------------------------------------------------------------- R-TOP-5 cash at the desk


def _audit(engine, action: str) -> list[AuditEvent]:
    with transaction(engine) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _ledger(engine, number: str) -> list[PurseLedgerEntry]:
    with transaction(engine) as session:
        card_id = session.scalars(select(PurseCardRow.id).where(PurseCardRow.number == number)).one()
        return list(session.scalars(select(PurseLedgerEntry).where(PurseLedgerEntry.card_id == card_id)
                                    .order_by(PurseLedgerEntry.id)))


@pytest.mark.parametrize("amount", ["1e7", "1E3", "nan", "NaN", "inf", "-Infinity", "snan", "-50", "+50", "1 000",
                                    "1.000,00", "1,000.00", "12.345", "12,", ",5", "0x10", "١٢", "50zł50", "", "9" * 400])
def test_r_top_5_desk_amount_is_a_plain_decimal_else_refused_next_to_the_field(browser, users, engine, settings,
                                                                             amount):
    make_card(engine, settings, "70020010")
    desk = staff_browser(browser, users)
    response = desk.submit("/desk/purse/70020010", {"amount": amount}, action="/desk/purse/70020010/top-up")
    assert response.status_code == 422, response.text[:500]
    assert "Paragon fiskalny" not in page_text(response.text)
    assert 'aria-invalid="true"' in response.text and "Podaj kwotę w złotych" in page_text(response.text)
    assert balance_of(engine, "70020010") == 0 and _audit(engine, "desk.top_up") == []


@pytest.mark.parametrize(("amount", "grosze"), [("12", 1200), ("12.5", 1250), ("12,50", 1250), (" 199,99 ", 19999),
                                                ("200", 20000)])
def test_r_top_5_plain_decimals_up_to_the_threshold_are_booked_at_once(browser, users, engine, settings, amount,
                                                                       grosze):
    make_card(engine, settings, "70020011", kind=CardKind.BEARER)
    desk = staff_browser(browser, users)
    response = desk.submit("/desk/purse/70020011", {"amount": amount}, action="/desk/purse/70020011/top-up")
    assert response.status_code == 200 and "Paragon fiskalny" in page_text(response.text)
    assert balance_of(engine, "70020011") == grosze


def test_r_top_5_desk_top_up_above_the_ceiling_is_refused(browser, users, engine, settings):
    make_card(engine, settings, "70020012")
    desk = staff_browser(browser, users)
    for amount in ("1000,01", "10000000", "99999999,99"):
        response = desk.submit("/desk/purse/70020012", {"amount": amount, "confirmed_amount": amount},
                               action="/desk/purse/70020012/top-up")
        assert response.status_code == 422
        assert "Najwyższa kwota doładowania w kasie to 1 000,00 zł" in page_text(response.text)
        assert 'aria-invalid="true"' in response.text and "Paragon fiskalny" not in page_text(response.text)
    assert balance_of(engine, "70020012") == 0 and _audit(engine, "desk.top_up") == []


def test_r_top_5_desk_top_up_above_the_threshold_needs_a_second_confirmation(browser, users, engine, settings):
    make_card(engine, settings, "70020013")
    desk = staff_browser(browser, users)
    first = desk.submit("/desk/purse/70020013", {"amount": "250"}, action="/desk/purse/70020013/top-up")
    assert first.status_code == 200
    text = page_text(first.text)
    assert "Paragon fiskalny" not in text and "Potwierdź wpłatę 250,00 zł" in text
    assert 'name="confirmed_amount" value="250,00"' in first.text
    assert balance_of(engine, "70020013") == 0
    # a confirmation of another amount confirms nothing
    other = desk.submit("/desk/purse/70020013", {"amount": "900", "confirmed_amount": "250,00"},
                        action="/desk/purse/70020013/top-up")
    assert "Paragon fiskalny" not in page_text(other.text) and "Potwierdź wpłatę 900,00 zł" in page_text(other.text)
    assert balance_of(engine, "70020013") == 0
    confirmed = desk.submit("/desk/purse/70020013", {"amount": "250", "confirmed_amount": "250,00"},
                            action="/desk/purse/70020013/top-up")
    assert confirmed.status_code == 200 and "Paragon fiskalny" in page_text(confirmed.text)
    assert balance_of(engine, "70020013") == 25000 + 3750  # 15 % bonus (R-TOP-3)
    assert_balance_is_ledger_sum(engine)


def test_r_top_5_desk_money_actions_name_the_staff_member(browser, users, engine, settings, clock):
    make_card(engine, settings, "70020014")
    staff = users.create("bok@example.pl", role="staff", pesel=None)
    browser.login("bok@example.pl")
    browser.submit("/desk/purse/70020014", {"amount": "60"}, action="/desk/purse/70020014/top-up")
    assert [(e.kind, e.staff_id) for e in _ledger(engine, "70020014")] == [("topup", staff.id), ("bonus", staff.id)]
    [event] = _audit(engine, "desk.top_up")
    assert event.user_id == staff.id and "amount=6000" in event.detail
    browser.submit("/desk/purse/70020014", {"identity_checked": "on"}, action="/desk/purse/70020014/loss")
    clock.travel(timedelta(days=1, hours=9))
    browser.login("bok@example.pl")
    moved = browser.submit("/desk/purse/70020014", {"new_number": "70020015"}, action="/desk/purse/70020014/replace")
    assert moved.status_code == 303
    [out] = [e for e in _ledger(engine, "70020014") if e.kind == "transfer_out"]
    [into] = _ledger(engine, "70020015")
    assert (out.staff_id, into.staff_id, into.amount) == (staff.id, staff.id, 6600)
    [replaced] = _audit(engine, "desk.card_replaced")
    assert replaced.user_id == staff.id
    assert_balance_is_ledger_sum(engine)


class TestDeskLimitsFromSettings:
    @pytest.fixture
    def settings_env(self, settings_env):  # type: ignore[no-untyped-def]
        return {**settings_env, "EKP_DESK_TOPUP_MAX": "300", "EKP_DESK_TOPUP_CONFIRM_ABOVE": "50,50"}

    def test_r_top_5_ceiling_and_threshold_are_configurable(self, browser, users, engine, settings):
        make_card(engine, settings, "70020016", kind=CardKind.BEARER)
        desk = staff_browser(browser, users)
        over = desk.submit("/desk/purse/70020016", {"amount": "300,01", "confirmed_amount": "300,01"},
                           action="/desk/purse/70020016/top-up")
        assert over.status_code == 422 and "300,00 zł" in page_text(over.text)
        ask = desk.submit("/desk/purse/70020016", {"amount": "50,51"}, action="/desk/purse/70020016/top-up")
        assert "Potwierdź wpłatę 50,51 zł" in page_text(ask.text) and balance_of(engine, "70020016") == 0
        at_once = desk.submit("/desk/purse/70020016", {"amount": "50,50"}, action="/desk/purse/70020016/top-up")
        assert "Paragon fiskalny" in page_text(at_once.text) and balance_of(engine, "70020016") == 5050
