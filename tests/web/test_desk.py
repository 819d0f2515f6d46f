"""The customer-service desk for staff (SQLite and PostgreSQL): cash top-ups with a receipt (R-TOP-1),
loss reports and replacement cards that take the balance along (R-KKM-7), and linking a card to an
account registered without PESEL after an ID check."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from domain.purse import CardKind
from tests.conftest import page_text
from tests.support.purse import assert_balance_is_ledger_sum, balance_of, make_card
from web.db import transaction
from web.models import AuditEvent, Card, PurseCardRow


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
