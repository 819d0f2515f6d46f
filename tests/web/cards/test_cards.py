"""City cards through the web and the CLI, on SQLite and PostgreSQL (R-CARD-1..4).

The registry import (report of bad rows, all or nothing, idempotent re-import), linking a card by type +
client code + the account's PESEL (one identical answer for every mismatch, the confirmation step, the
rate limit, audit without PESEL), the list, unlinking, htmx partials and CSRF.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select

from tests.conftest import VALID_PESEL, Browser, make_pesel, page_text
from web.platform import clock as web_clock
from web.platform.db import transaction
from web.platform.models import AuditEvent
from web.accounts.models import User
from web.cards.models import Card
from web.five_plus_one.models import Subscription5p1
from web.platform.protect import pesel_hash
from web.cards.service import ImportReport, import_registry

JAN_PESEL = VALID_PESEL  # the `users.create()` default
EWA_PESEL = "02270803624"
HEADER = "type,client_code,pesel,holder_name,resident_from,resident_until,blocked"

MISMATCH = "Podane dane nie są zgodne z danymi w rejestrze kart. Sprawdź typ karty i kod klienta."
LINKED_ELSEWHERE = ("Tej karty nie można dodać, bo jest już przypisana do innego konta. "
                    "Skontaktuj się z Biurem Obsługi Klienta.")
NO_PESEL = "Twoje konto nie ma numeru PESEL, więc karty nie można przypisać online."
TOO_MANY = "Zbyt wiele prób. Spróbuj ponownie za 60 minut."
QUESTION = "Czy dodać kartę do konta?"
IN_USE = "Tej karty nie można odłączyć, bo korzysta z niej aktywna subskrypcja biletu 5+1."

_ALERT = re.compile(r'<div class="alert alert-error" role="alert">.*?</div>', re.S)


def registry_csv(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def standard_registry() -> str:
    today = web_clock.today()
    return registry_csv(
        f"KKM,100200300,{JAN_PESEL},Jan Kowalski,{today - timedelta(days=30)},{today + timedelta(days=365)},no",
        f"mKK,MK4405140,{JAN_PESEL},Jan Kowalski,,,no",
        f"KKM,555666777,{EWA_PESEL},Ewa Zielińska,,,no",
        f"KKM,900900900,{JAN_PESEL},Jan Kowalski,,,yes",
    )


def load(engine: Any, settings: Any, text: str) -> ImportReport:
    with transaction(engine) as session:
        return import_registry(session, settings, text)


@pytest.fixture
def registry(engine: Any, settings: Any) -> Any:
    """The standard registry, imported; returns a lookup `(type, code) -> Card`."""
    report = load(engine, settings, standard_registry())
    assert report.ok and report.added == 4

    def card(carrier_type: str, code: str) -> Card:
        from sqlmodel import Session

        with Session(engine) as session:
            found = session.scalars(select(Card).where(Card.carrier_type == carrier_type, Card.client_code == code)).one()
            session.expunge(found)
            return found

    return card


def alert(html: str) -> str:
    """The error block of the add-card step (exact HTML)."""
    found = _ALERT.findall(html)
    assert len(found) == 1, f"expected one error block:\n{html[:3000]}"
    return found[0]


def add(browser: Browser, carrier_type: str, code: str) -> Any:
    return browser.submit("/cards/add", {"carrier_type": carrier_type, "client_code": code})


def link_directly(db: Any, card_id: int, user_id: int) -> None:
    with db.session() as session:
        card = session.get(Card, card_id)
        card.account_id, card.linked_at = user_id, web_clock.now()


def card_row(db: Any, card_id: int) -> Card:
    return db.one(Card, Card.id == card_id)


# =========================================================================== import


def test_import_report_lists_every_bad_row_and_applies_nothing(engine, settings, db) -> None:
    text = registry_csv(
        f"KKM,100200300,{JAN_PESEL},Jan Kowalski,,,no",
        f"KKX,100200301,{JAN_PESEL},Jan Kowalski,,,no",
        f"KKM,100200302,{JAN_PESEL}0,Jan Kowalski,,,no",
        f"KK,100200303,{JAN_PESEL},Jan Kowalski,2025-02-30,,no",
        f"KKM,100200300,{EWA_PESEL},Ewa Zielińska,,,no",
    )
    report = load(engine, settings, text)
    assert not report.ok
    assert [(p.line, p.reason) for p in report.problems] == [
        (3, "type 'KKX' is not a carrier type (KKM, mKKM, KK, mKK, KKR3+, ELS, ELD, MKA)"),
        (4, "pesel must be 11 digits"),
        (5, "resident_from/resident_until must be dates as YYYY-MM-DD or DD.MM.YYYY"),
        (6, "the same card (KKM 100200300) is already on line 2"),
    ]
    assert (report.added, report.updated, report.unchanged) == (0, 0, 0)
    assert db.count(Card) == 0


def test_reimport_is_idempotent_and_counts_added_updated_unchanged(engine, settings, db) -> None:
    first = load(engine, settings, standard_registry())
    assert (first.added, first.updated, first.unchanged, first.problems) == (4, 0, 0, [])
    again = load(engine, settings, standard_registry())
    assert (again.added, again.updated, again.unchanged) == (0, 0, 4)
    assert db.count(Card) == 4
    # The same file written differently (semicolons, BOM, codes with spaces, other date format) changes nothing.
    today = web_clock.today()
    rewritten = "\ufeff" + registry_csv(
        f"kkm;100 200 300;{JAN_PESEL};Jan  Kowalski;{(today - timedelta(days=30)).strftime('%d.%m.%Y')};"
        f"{today + timedelta(days=365)};NO",
        f"MKK;mk-4405140;{JAN_PESEL};Jan Kowalski;;;0",
        header=HEADER.replace(",", ";"),
    )
    same = load(engine, settings, rewritten)
    assert (same.added, same.updated, same.unchanged, same.problems) == (0, 0, 2, [])
    changed = load(engine, settings, registry_csv(
        f"KKM,555666777,{EWA_PESEL},Ewa Zielińska,,,yes",  # now blocked
        f"ELS,123456,{EWA_PESEL},Ewa Zielińska,,,no",  # new
        f"mKK,MK4405140,{JAN_PESEL},Jan Kowalski,,,no",  # as it was
    ))
    assert (changed.added, changed.updated, changed.unchanged) == (1, 1, 1)
    assert db.count(Card) == 5
    assert db.one(Card, Card.client_code == "555666777").blocked is True


def test_r_card_4_reimport_updates_resident_status_and_the_card_stays_linked(engine, settings, db, logged_in, registry) -> None:
    browser, jan = logged_in
    card = registry("mKK", "MK4405140")
    link_directly(db, card.id, jan.id)
    assert "brak" in page_text(browser.get("/cards").text)

    report = load(engine, settings, registry_csv(f"mKK,MK4405140,{JAN_PESEL},Jan Kowalski,2024-01-01,2099-12-31,no"))
    assert (report.added, report.updated, report.unchanged) == (0, 1, 0)
    row = card_row(db, card.id)
    assert (row.has_resident_status, row.resident_from, row.resident_until, row.account_id) == (
        True, date(2024, 1, 1), date(2099, 12, 31), jan.id)
    text = page_text(browser.get("/cards").text)
    assert "Karta Krakowska ważny do 31.12.2099" in text or "Karta Krakowska ważny do 31 gru 2099" in text

    # The registry takes the status away (e.g. it expired and was not renewed): the card shows it as expired.
    load(engine, settings, registry_csv(f"mKK,MK4405140,{JAN_PESEL},Jan Kowalski,2024-01-01,2024-12-31,no"))
    assert "wygasł" in page_text(browser.get("/cards").text)
    load(engine, settings, registry_csv(f"mKK,MK4405140,{JAN_PESEL},Jan Kowalski,,,no"))
    row = card_row(db, card.id)
    assert (row.has_resident_status, row.resident_from, row.resident_until) == (False, None, None)


def test_registry_giving_the_card_to_another_person_unlinks_it(engine, settings, db, users, registry) -> None:
    jan = users.create()
    card = registry("KKM", "100200300")
    link_directly(db, card.id, jan.id)
    load(engine, settings, registry_csv(f"KKM,100200300,{EWA_PESEL},Ewa Zielińska,,,no"))
    assert card_row(db, card.id).account_id is None


def test_the_registry_never_stores_a_pesel_in_clear(engine, settings, db) -> None:
    load(engine, settings, standard_registry())
    for table, row in db.dump():
        assert not any(JAN_PESEL in str(v) or EWA_PESEL in str(v) for v in row), (table, row)
    assert db.one(Card, Card.client_code == "555666777").pesel_hash == pesel_hash(settings.pesel_key, EWA_PESEL)


# --------------------------------------------------------------------------- the CLI


def run_cli(settings_env: dict[str, str], *args: str) -> Any:
    from web.cli import main

    return CliRunner().invoke(main, list(args), env=settings_env, catch_exceptions=False)


def test_cli_import_reports_bad_rows_with_line_numbers_and_exits_1(settings_env, tmp_path: Path, db) -> None:
    path = tmp_path / "rejestr.csv"
    path.write_text(registry_csv(
        f"KKM,100200300,{JAN_PESEL},Jan Kowalski,,,no",
        f"KKM,12,{JAN_PESEL},Jan Kowalski,,,no",
        f"KKM,100200301,{JAN_PESEL},,,,no",
        f"KKM,100200302,{JAN_PESEL},Jan Kowalski,,,może",
    ), encoding="utf-8")
    result = run_cli(settings_env, "cards", "import", str(path))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"nothing imported: 3 bad row(s) in {path}",
        "  line 3: client_code must be 4-20 letters or digits",
        "  line 4: holder_name is missing",
        "  line 5: blocked must be yes/no (or 1/0)",
    ]
    assert JAN_PESEL not in result.output
    assert db.count(Card) == 0


def test_cli_import_and_reimport(settings_env, tmp_path: Path, db) -> None:
    path = tmp_path / "rejestr.csv"
    path.write_bytes(("\ufeff" + standard_registry().replace(",", ";")).encode("utf-8"))
    first = run_cli(settings_env, "cards", "import", str(path))
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == f"cards imported from {path}: 4 added, 0 updated, 0 unchanged"
    again = run_cli(settings_env, "cards", "import", str(path))
    assert again.stdout.strip() == f"cards imported from {path}: 0 added, 0 updated, 4 unchanged"
    assert db.count(Card) == 4


def test_cli_refuses_a_file_that_is_not_utf8(settings_env, tmp_path: Path, db) -> None:
    path = tmp_path / "rejestr.csv"
    path.write_bytes(registry_csv(f"KKM,100200300,{EWA_PESEL},Ewa Zielińska,,,no").encode("cp1250"))
    result = run_cli(settings_env, "cards", "import", str(path))
    assert result.exit_code == 1
    assert "not UTF-8" in result.stderr
    assert db.count(Card) == 0


# =========================================================================== linking (R-CARD-2, R-CARD-3)


def test_r_card_2_add_page_lists_every_carrier_type_with_its_form(logged_in) -> None:
    browser, _ = logged_in
    html = browser.get("/cards/add").text
    for code, form in [("KKM", "plastikowa"), ("mKKM", "mobilna"), ("KK", "plastikowa"), ("mKK", "mobilna"),
                       ("KKR3+", "plastikowa"), ("ELS", "plastikowa"), ("ELD", "plastikowa"), ("MKA", "plastikowa")]:
        assert re.search(rf'<option value="{re.escape(code)}"\s*>{re.escape(code)} — [^<]*\({form}\)</option>', html), code


def test_r_card_2_every_mismatch_kind_gives_an_identical_answer(logged_in, registry, db) -> None:
    browser, jan = logged_in
    attempts = {
        "wrong_type": ("KK", "100200300"),  # the code exists, as a KKM
        "wrong_code": ("KKM", "100200399"),
        "nonexistent_code": ("KKM", "ZZZZ0000"),
        "someone_elses_pesel": ("KKM", "555666777"),  # type and code right, Ewa's card
    }
    responses = {kind: add(browser, *typed) for kind, typed in attempts.items()}
    assert {kind: r.status_code for kind, r in responses.items()} == dict.fromkeys(attempts, 422)
    blocks = {kind: alert(r.text) for kind, r in responses.items()}
    assert len(set(blocks.values())) == 1
    assert page_text(blocks["wrong_type"]) == MISMATCH

    def without_what_was_typed(kind: str) -> str:
        carrier_type, code = attempts[kind]
        html = responses[kind].text.replace(f'value="{code}"', 'value=""')
        return re.sub(r'(<option value="[^"]*")\s*(selected)?>', r"\1 >", html)

    # Apart from echoing the typed values back into the form, the pages are byte for byte the same.
    assert len({without_what_was_typed(kind) for kind in attempts}) == 1
    assert {r.headers.get("content-type") for r in responses.values()} == {"text/html; charset=utf-8"}
    # Nothing was linked, and the audit log cannot tell the kinds apart either.
    assert card_row(db, registry("KKM", "555666777").id).account_id is None
    events = db.all(AuditEvent, AuditEvent.action.like("card.%"))
    assert [(e.action, e.detail) for e in events] == [
        ("card.link.mismatch", "type=KK"), ("card.link.mismatch", "type=KKM"),
        ("card.link.mismatch", "type=KKM"), ("card.link.mismatch", "type=KKM")]


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_r_card_2_same_typed_data_gives_byte_identical_responses_whatever_the_registry_holds(
    logged_in, engine, settings, htmx: bool,
) -> None:
    browser, _ = logged_in
    typed = {"carrier_type": "KKM", "client_code": "100200300"}
    registries = {
        "wrong_type": f"KK,100200300,{JAN_PESEL},Jan Kowalski,,,no",
        "wrong_code": f"KKM,100200301,{JAN_PESEL},Jan Kowalski,,,no",
        "nonexistent_code": None,
        "someone_elses_pesel": f"KKM,100200300,{EWA_PESEL},Ewa Zielińska,,,no",
        # Five kinds: the fifth failure is still answered, a sixth would meet the rate limit.
        "someone_elses_blocked_card_linked_to_her": f"KKM,100200300,{EWA_PESEL},Ewa Zielińska,,,yes",
    }
    ewa = None
    browser.get("/cards/add")
    answers = {}
    for kind, line in registries.items():
        with transaction(engine) as session:
            session.execute(delete(Card))
        if line:
            load(engine, settings, registry_csv(line))
        if kind == "someone_elses_blocked_card_linked_to_her":
            with transaction(engine) as session:
                ewa = ewa or User(email="ewa@example.pl", first_name="Ewa", last_name="Zielińska", password_hash="x",
                                  birth_date=date(2002, 7, 8), role="passenger")
                session.add(ewa)
                session.flush()
                for card in session.scalars(select(Card)):
                    card.account_id = ewa.id
        response = browser.htmx("/cards/add", typed) if htmx else browser.post("/cards/add", typed)
        answers[kind] = (response.status_code, response.content)
        if kind == "wrong_type":
            assert MISMATCH in page_text(response.text)
            assert ("<html" in response.text) is not htmx
    assert len(set(answers.values())) == 1, {kind: status for kind, (status, _) in answers.items()}


def test_r_card_2_match_shows_the_summary_and_asks_then_yes_links(logged_in, registry, db) -> None:
    browser, jan = logged_in
    card = registry("KKM", "100200300")
    response = add(browser, "kkm", " 1002-0030 0 ")
    assert response.status_code == 200
    text = page_text(response.text)
    assert QUESTION in text
    for shown in ["Krakowska Karta Miejska (KKM)", "plastikowa", "100200300", "Jan Kowalski", "Karta Krakowska ważny do"]:
        assert shown in text, shown
    assert card_row(db, card.id).account_id is None  # nothing is linked before "Tak"

    linked = browser.post("/cards/add/confirm", {"answer": "yes"})
    assert linked.status_code == 303 and linked.headers["location"] == "/cards"
    row = card_row(db, card.id)
    assert row.account_id == jan.id and row.linked_at is not None
    listing = page_text(browser.get("/cards").text)
    assert "Karta została dodana do Twojego konta." in listing
    assert "100200300" in listing and "Karta Krakowska ważny do" in listing
    assert [e.action for e in db.all(AuditEvent, AuditEvent.action.like("card.%"))] == ["card.link.match", "card.linked"]


def test_r_card_2_no_does_not_link(logged_in, registry, db) -> None:
    browser, _ = logged_in
    card = registry("mKK", "MK4405140")
    assert QUESTION in page_text(add(browser, "mKK", "MK4405140").text)
    response = browser.post("/cards/add/confirm", {"answer": "no"})
    assert response.status_code == 303 and response.headers["location"] == "/cards"
    assert card_row(db, card.id).account_id is None
    # The pending choice is gone: a late "Tak" without a new search does not link either.
    late = browser.post("/cards/add/confirm", {"answer": "yes"})
    assert late.status_code == 410
    assert "Potwierdzenie wygasło. Wyszukaj kartę jeszcze raz." in page_text(late.text)
    assert card_row(db, card.id).account_id is None


def test_r_card_2_yes_without_a_search_links_nothing(logged_in, registry, db) -> None:
    browser, _ = logged_in
    response = browser.post("/cards/add/confirm", {"answer": "yes", "card_id": str(registry("KKM", "100200300").id)})
    assert response.status_code == 410
    assert db.count(Card, Card.account_id.is_not(None)) == 0


def test_r_card_2_confirmation_expires_after_ten_minutes(logged_in, registry, db, clock) -> None:
    browser, _ = logged_in
    card = registry("KKM", "100200300")
    assert add(browser, "KKM", "100200300").status_code == 200
    clock.travel(timedelta(minutes=11))
    response = browser.post("/cards/add/confirm", {"answer": "yes"})
    assert response.status_code == 410
    assert card_row(db, card.id).account_id is None


def test_r_card_3_several_cards_with_and_without_resident_status(logged_in, registry, db) -> None:
    browser, jan = logged_in
    for carrier_type, code in [("KKM", "100200300"), ("mKK", "MK4405140")]:
        assert add(browser, carrier_type, code).status_code == 200
        assert browser.post("/cards/add/confirm", {"answer": "yes"}).status_code == 303
    assert db.count(Card, Card.account_id == jan.id) == 2
    html = browser.get("/cards").text
    items = re.findall(r'<li class="card-item">(.*?)</li>', html, re.S)
    assert len(items) == 2
    kkm, mkk = (page_text(item) for item in items)
    assert "Krakowska Karta Miejska KKM" in kkm and "plastikowa" in kkm and "Karta Krakowska ważny do" in kkm
    assert "mobilna Karta Krakowska mKK" in mkk and "mobilna" in mkk and "brak" in mkk


def test_r_card_3_card_already_on_my_account(logged_in, registry, db) -> None:
    browser, jan = logged_in
    card = registry("KKM", "100200300")
    link_directly(db, card.id, jan.id)
    response = add(browser, "KKM", "100200300")
    assert response.status_code == 409
    assert page_text(alert(response.text)) == "Ta karta jest już przypisana do Twojego konta."


def test_r_card_3_card_linked_to_another_account_is_refused_with_customer_service_advice(
    logged_in, users, registry, db,
) -> None:
    browser, jan = logged_in
    ewa = users.create("ewa@example.pl", first_name="Ewa", pesel=EWA_PESEL)
    card = registry("KKM", "100200300")  # Jan's card in the registry, still linked to Ewa's account
    link_directly(db, card.id, ewa.id)
    response = add(browser, "KKM", "100200300")
    assert response.status_code == 409
    assert page_text(alert(response.text)) == LINKED_ELSEWHERE
    assert QUESTION not in response.text
    assert card_row(db, card.id).account_id == ewa.id


def test_r_card_3_race_card_linked_elsewhere_between_search_and_yes(logged_in, users, registry, db) -> None:
    browser, jan = logged_in
    card = registry("KKM", "100200300")
    assert QUESTION in page_text(add(browser, "KKM", "100200300").text)
    ewa = users.create("ewa@example.pl", first_name="Ewa", pesel=EWA_PESEL)
    link_directly(db, card.id, ewa.id)
    response = browser.post("/cards/add/confirm", {"answer": "yes"})
    assert response.status_code == 409
    assert page_text(alert(response.text)) == LINKED_ELSEWHERE
    assert card_row(db, card.id).account_id == ewa.id


def test_r_card_2_blocked_card_is_refused(logged_in, registry, db) -> None:
    browser, _ = logged_in
    response = add(browser, "KKM", "900900900")
    assert response.status_code == 409
    assert "Ta karta jest zablokowana" in page_text(alert(response.text))
    assert card_row(db, registry("KKM", "900900900").id).account_id is None


def test_r_card_2_account_without_pesel_gets_the_service_desk_explanation(browser, users, registry, db) -> None:
    users.create("olena@example.pl", first_name="Olena", pesel=None, birth_date=date(1990, 5, 17))
    browser.login("olena@example.pl")
    page = browser.get("/cards/add")
    assert page.status_code == 200
    assert NO_PESEL in page_text(page.text) and "Biura Obsługi Klienta" in page_text(page.text)
    assert 'name="client_code"' not in page.text
    response = browser.post("/cards/add", {"carrier_type": "KKM", "client_code": "100200300"})
    assert response.status_code == 409
    assert NO_PESEL in page_text(response.text)
    assert db.count(Card, Card.account_id.is_not(None)) == 0


@pytest.mark.parametrize("fields, field, message", [
    ({"carrier_type": "", "client_code": "100200300"}, "carrier_type", "Wybierz typ karty z listy."),
    ({"carrier_type": "XYZ", "client_code": "100200300"}, "carrier_type", "Wybierz typ karty z listy."),
    ({"carrier_type": "KKM", "client_code": ""}, "client_code", "Wpisz kod klienta wydrukowany na karcie."),
    ({"carrier_type": "KKM", "client_code": "12"}, "client_code", "Kod klienta to od 4 do 20 liter lub cyfr"),
])
def test_form_errors_are_shown_next_to_the_field_and_do_not_count_as_attempts(logged_in, registry, db, fields, field, message) -> None:
    from tests.conftest import field_errors

    browser, _ = logged_in
    for _ in range(6):
        response = browser.submit("/cards/add", fields)
        assert response.status_code == 422
    assert any(message in e for e in field_errors(response.text, field))
    assert db.count(AuditEvent, AuditEvent.action.like("card.%")) == 0
    assert add(browser, "KKM", "100200300").status_code == 200


# --------------------------------------------------------------------------- brute-force protection


def test_rate_limit_after_5_failures_per_account_with_a_retry_message(logged_in, registry, db, clock) -> None:
    browser, jan = logged_in
    for attempt in range(5):
        assert add(browser, "KKM", f"1111000{attempt}").status_code == 422
    refused = add(browser, "KKM", "100200300")  # even the right data now waits
    assert refused.status_code == 429
    assert TOO_MANY in page_text(alert(refused.text))
    assert QUESTION not in refused.text
    htmx = browser.htmx("/cards/add", {"carrier_type": "KKM", "client_code": "100200300"})
    assert TOO_MANY in page_text(htmx.text) and "<html" not in htmx.text
    clock.travel(timedelta(minutes=59))
    assert "Spróbuj ponownie za 1 minutę." in page_text(add(browser, "KKM", "100200300").text)
    clock.travel(timedelta(minutes=1, seconds=1))
    assert QUESTION in page_text(add(browser, "KKM", "100200300").text)


def test_rate_limit_successful_attempts_do_not_count(logged_in, registry) -> None:
    browser, _ = logged_in
    for attempt in range(4):
        assert add(browser, "KKM", f"1111000{attempt}").status_code == 422
    for _ in range(3):
        assert add(browser, "KKM", "100200300").status_code == 200
    assert add(browser, "mKK", "MK4405140").status_code == 200
    assert add(browser, "KKM", "11110009").status_code == 422  # the 5th failure is still answered
    assert add(browser, "KKM", "100200300").status_code == 429


def test_rate_limit_per_ip_across_accounts(users, new_browser, registry) -> None:
    shared_ip = "10.20.30.40"
    for n in range(5):
        users.create(f"p{n}@example.pl", pesel=make_pesel(date(1980, 1, 1 + n), serial=n))
        browser = new_browser(ip=shared_ip)
        browser.login(f"p{n}@example.pl")
        for attempt in range(4):  # under the per-account limit of 5
            assert add(browser, "KKM", f"2222000{attempt}").status_code == 422
    users.create("late@example.pl", pesel=make_pesel(date(1980, 2, 1), serial=77))
    late = new_browser(ip=shared_ip)
    late.login("late@example.pl")
    refused = add(late, "KKM", "22220000")
    assert refused.status_code == 429 and TOO_MANY in page_text(refused.text)
    elsewhere = new_browser(ip="10.20.30.41")
    elsewhere.login("late@example.pl")
    assert add(elsewhere, "KKM", "22220000").status_code == 422


def test_audit_records_every_attempt_and_never_the_pesel(logged_in, users, registry, db, settings) -> None:
    browser, jan = logged_in
    ewa = users.create("ewa@example.pl", first_name="Ewa", pesel=EWA_PESEL)
    add(browser, "KKM", "555666777")  # Ewa's card
    add(browser, "KK", "100200300")
    add(browser, "KKM", "900900900")  # blocked
    add(browser, "KKM", "100200300")
    browser.post("/cards/add/confirm", {"answer": "yes"})
    card = registry("KKM", "100200300")
    browser.submit(f"/cards/{card.id}/unlink", {})
    link_directly(db, registry("mKK", "MK4405140").id, ewa.id)
    add(browser, "mKK", "MK4405140")  # linked elsewhere

    events = db.all(AuditEvent, AuditEvent.action.like("card.%"))
    assert [e.action for e in events] == [
        "card.link.mismatch", "card.link.mismatch", "card.link.blocked", "card.link.match", "card.linked",
        "card.unlinked", "card.link.linked_elsewhere"]
    assert all(e.user_id == jan.id and e.ip for e in events)
    secrets = [JAN_PESEL, EWA_PESEL, pesel_hash(settings.pesel_key, JAN_PESEL), pesel_hash(settings.pesel_key, EWA_PESEL)]
    for event in db.all(AuditEvent):
        for secret in secrets:
            assert secret not in f"{event.action} {event.detail} {event.ip}", event
    # A mismatch does not even keep the code that was typed.
    assert all("555666777" not in e.detail and "100200300" not in e.detail for e in events)


# =========================================================================== my cards, unlinking


def test_my_cards_never_shows_another_users_card_and_unlink_is_404(logged_in, users, registry, db) -> None:
    browser, jan = logged_in
    ewa = users.create("ewa@example.pl", first_name="Ewa", pesel=EWA_PESEL)
    mine, hers = registry("KKM", "100200300"), registry("KKM", "555666777")
    link_directly(db, mine.id, jan.id)
    link_directly(db, hers.id, ewa.id)
    listing = browser.get("/cards").text
    assert "100200300" in listing and "555666777" not in listing and "Ewa" not in listing
    assert browser.get(f"/cards/{hers.id}/unlink").status_code == 404
    token = browser.csrf()
    assert browser.post(f"/cards/{hers.id}/unlink", {"_csrf_token": token}).status_code == 404
    assert browser.get(f"/cards/{registry('mKK', 'MK4405140').id}/unlink").status_code == 404  # linked to nobody
    assert browser.get("/cards/999999/unlink").status_code == 404
    assert card_row(db, hers.id).account_id == ewa.id


def test_unlink_with_confirmation(logged_in, registry, db) -> None:
    browser, jan = logged_in
    card = registry("KKM", "100200300")
    link_directly(db, card.id, jan.id)
    confirm = browser.get(f"/cards/{card.id}/unlink")
    assert confirm.status_code == 200
    assert "Odłączyć kartę od konta?" in page_text(confirm.text) and "100200300" in confirm.text
    assert card_row(db, card.id).account_id == jan.id  # opening the page changes nothing
    response = browser.submit(f"/cards/{card.id}/unlink", {})
    assert response.status_code == 303 and response.headers["location"] == "/cards"
    assert card_row(db, card.id).account_id is None
    listing = page_text(browser.get("/cards").text)
    assert "Karta została odłączona od konta." in listing and "100200300" not in listing
    # It can be added again.
    assert QUESTION in page_text(add(browser, "KKM", "100200300").text)


@pytest.mark.parametrize("status", ["active", "pending_first_payment"])
def test_unlink_refused_while_an_open_subscription_uses_the_card(logged_in, registry, db, status: str) -> None:
    browser, jan = logged_in
    card = registry("KKM", "100200300")
    link_directly(db, card.id, jan.id)
    with db.session() as session:
        session.add(Subscription5p1(user_id=jan.id, card_id=card.id, variant="normal", first_day=web_clock.today(),
                                    status=status))
    response = browser.submit(f"/cards/{card.id}/unlink", {})
    assert response.status_code == 409
    assert IN_USE in page_text(response.text)
    assert card_row(db, card.id).account_id == jan.id
    with db.session() as session:
        for sub in session.scalars(select(Subscription5p1)):
            sub.status = "cancelled"
    assert browser.submit(f"/cards/{card.id}/unlink", {}).status_code == 303
    assert card_row(db, card.id).account_id is None


# =========================================================================== htmx and CSRF


def test_htmx_steps_return_partials(logged_in, registry, db) -> None:
    browser, jan = logged_in
    step = browser.get("/cards/add", headers={"hx-request": "true"})
    assert step.status_code == 200
    assert step.text.lstrip().startswith('<div id="add-step">') and "<html" not in step.text
    assert 'hx-post="/cards/add"' in browser.get("/cards/add").text

    mismatch = browser.htmx("/cards/add", {"carrier_type": "KKM", "client_code": "100200399"})
    assert mismatch.text.lstrip().startswith('<div id="add-step">') and "<html" not in mismatch.text
    assert page_text(alert(mismatch.text)) == MISMATCH
    # htmx (2.x) swaps only 2xx/3xx answers by default: a refusal the passenger must see comes as 200.
    assert mismatch.status_code == 200

    match = browser.htmx("/cards/add", {"carrier_type": "KKM", "client_code": "100200300"})
    assert match.status_code == 200
    assert match.text.lstrip().startswith('<div id="add-step">') and QUESTION in page_text(match.text)
    assert 'hx-post="/cards/add/confirm"' in match.text

    done = browser.htmx("/cards/add/confirm", {"answer": "yes"})
    assert done.status_code == 200 and done.headers["hx-redirect"] == "/cards"
    assert card_row(db, registry("KKM", "100200300").id).account_id == jan.id

    browser.htmx("/cards/add", {"carrier_type": "mKK", "client_code": "MK4405140"})
    declined = browser.htmx("/cards/add/confirm", {"answer": "no"})
    assert declined.status_code == 200 and declined.headers["hx-redirect"] == "/cards"
    assert card_row(db, registry("mKK", "MK4405140").id).account_id is None

    expired = browser.htmx("/cards/add/confirm", {"answer": "yes"})
    assert "Potwierdzenie wygasło" in page_text(expired.text) and "<html" not in expired.text
    assert expired.status_code == 200


def test_csrf_is_enforced(logged_in, registry, db) -> None:
    browser, jan = logged_in
    card = registry("KKM", "100200300")
    typed = {"carrier_type": "KKM", "client_code": "100200300"}
    assert browser.post("/cards/add", typed, csrf=False).status_code == 403
    assert browser.post("/cards/add", {**typed, "_csrf_token": "forged"}, csrf=False).status_code == 403
    no_header = browser.client.post("/cards/add", data=typed, headers={"hx-request": "true"})
    assert no_header.status_code == 403
    assert browser.post("/cards/add", typed).status_code == 200  # with the token: the summary
    assert browser.post("/cards/add/confirm", {"answer": "yes"}, csrf=False).status_code == 403
    assert card_row(db, card.id).account_id is None
    link_directly(db, card.id, jan.id)
    assert browser.post(f"/cards/{card.id}/unlink", csrf=False).status_code == 403
    assert card_row(db, card.id).account_id == jan.id
    assert db.count(AuditEvent, AuditEvent.action == "card.linked") == 0


def test_cards_pages_need_a_logged_in_passenger(browser, users, registry) -> None:
    for path in ["/cards", "/cards/add", f"/cards/{registry('KKM', '100200300').id}/unlink"]:
        response = browser.get(path, follow_redirects=False)
        assert response.status_code in (302, 303) and response.headers["location"].startswith("/login"), path
    users.create("kontroler@example.pl", role="inspector", pesel=None, birth_date=date(1980, 1, 1))
    browser.login("kontroler@example.pl")
    assert browser.get("/cards", follow_redirects=False).status_code in (403, 404)


def test_htmx_requests_are_told_apart_by_litestars_htmx_request(new_browser, logged_in) -> None:
    """Litestar's HTMXRequest (`request.htmx`) decides: `HX-Request: true` only; a signed-out htmx call is sent
    to the sign-in page by `HX-Redirect`, a page request by a redirect."""
    stranger = new_browser(ip="10.0.0.7").client
    signed_out = stranger.get("/cards/add", headers={"hx-request": "true"}, follow_redirects=False)
    assert signed_out.status_code == 401 and signed_out.headers["hx-redirect"] == "/login?next=/cards/add"
    plain = stranger.get("/cards/add", follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"] == "/login?next=/cards/add"
    browser, _ = logged_in
    not_htmx = browser.get("/cards/add", headers={"hx-request": "false"})
    assert "<html" in not_htmx.text
