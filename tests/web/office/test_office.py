"""The operator's back office (issue 17), through HTTP on SQLite and PostgreSQL: the admin role signs in with
two factors (R-AUTH-3); every office page and export answers 403 to passengers, inspectors and staff; the
dashboards' figures; devices registered with a credential shown once that works on the device API, renamed,
disabled; a meter's cash against its booked coins; the card registry previewed and applied; accounts found
by e-mail, card or exact PESEL; staff accounts created and disabled; everything in the audit log."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from domain.purse import CardKind
from tests.conftest import VALID_PESEL, field_errors, page_text
from tests.support.purse import make_card, meter, tap
from web.platform import clock as web_clock
from web.platform.db import transaction
from web.platform.models import AuditEvent
from web.accounts.models import User
from web.cards.models import Card
from web.office.models import MeterCashCollection, RegistryImport
from web.purse.models import Device
from web.tickets.models import Inspection

ADMIN = "admin@example.pl"


@pytest.fixture
def office(browser, users):  # type: ignore[no-untyped-def]
    users.create(ADMIN, role="admin", pesel=None)
    browser.login(ADMIN)
    return browser


def office_paths(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(method, path) of every office route, path parameters filled in with plausible values."""
    found = []
    for route in app.routes:
        if not route.path.startswith("/office"):
            continue
        for method in sorted(getattr(route, "methods", {"GET"}) - {"HEAD", "OPTIONS"}):
            path = route.path.replace("{key:str}", "purse").replace("{chart:str}", "fares.csv")
            path = re.sub(r"\{\w+:int\}", "1", path)
            found.append((method, path))
    return found


def test_r_auth_3_admin_signs_in_with_password_and_a_code_and_reaches_the_office(browser, users):
    users.create(ADMIN, role="admin", pesel=None)
    step = browser.submit("/login", {"email": ADMIN, "password": "Haslo1234"})
    assert step.status_code == 303 and step.headers["location"] == "/login/code"
    assert browser.get("/office", follow_redirects=False).status_code in (302, 303)  # the password alone: nothing
    browser.login(ADMIN)
    page = browser.get("/office")
    assert page.status_code == 200 and "Biuro operatora" in page_text(page.text)


def test_r_auth_3_a_new_admin_enrols_a_second_factor_at_first_sign_in(browser, users):
    users.create(ADMIN, role="admin", pesel=None, totp_secret="")
    step = browser.submit("/login", {"email": ADMIN, "password": "Haslo1234"})
    assert step.status_code == 303 and step.headers["location"] == "/login/enrol"


@pytest.mark.parametrize("role", ["passenger", "inspector", "staff"])
def test_every_office_page_and_export_is_403_for_passengers_inspectors_and_staff(app, browser, users, role):
    users.create("someone@example.pl", role=role, pesel=VALID_PESEL if role == "passenger" else None)
    browser.login("someone@example.pl")
    paths = office_paths(app)
    assert len(paths) >= 15 and ("GET", "/office/dashboards/purse/fares.csv") in paths
    for method, path in paths:
        response = browser.get(path) if method == "GET" else browser.post(path, {})
        assert response.status_code == 403, (method, path, response.status_code)


def test_office_asks_anonymous_visitors_to_sign_in(app, browser):
    for method, path in office_paths(app):
        if method == "GET":
            assert browser.get(path, follow_redirects=False).status_code == 303, path


# --------------------------------------------------------------------------- dashboards


def test_every_dashboard_renders_charts_with_tables_and_csv_links(office):
    for key in ("5plus1", "purse", "inspections", "health"):
        page = office.get(f"/office/dashboards/{key}")
        assert page.status_code == 200, key
        assert 'type="application/json"' in page.text and "<canvas data-chart=" in page.text
        assert "/static/vendor/chartjs/chart.umd.min.js?v=" in page.text
        assert "<script>" not in page.text  # no inline script: the CSP stays strict
        assert ".csv?from=" in page.text and "<table" in page.text


def test_chart_js_is_served_from_our_origin_with_a_long_cache(office):
    page = office.get("/office/dashboards/purse")
    for src in re.findall(r'<script src="([^"]+)"', page.text):
        assert src.startswith("/static/"), src
        response = office.get(src.replace("&amp;", "&"))
        assert response.status_code == 200, src
    chart = office.get("/static/vendor/chartjs/chart.umd.min.js")
    assert "max-age=31536000" in chart.headers["cache-control"]


def test_bad_period_is_explained_next_to_the_field_and_the_default_is_shown(office):
    page = office.get("/office/dashboards/purse?from=2026-13-01")
    assert page.status_code == 422
    assert field_errors(page.text, "from") == ["Podaj datę w formacie RRRR-MM-DD."]
    too_long = office.get("/office/dashboards/purse?from=2020-01-01&to=2026-01-01")
    assert too_long.status_code == 422 and field_errors(too_long.text, "from")
    assert office.get("/office/dashboards/purse/fares.csv?to=x").status_code == 422
    assert office.get("/office/dashboards/nope").status_code in (400, 404)
    assert office.get("/office/dashboards/purse/nope.csv").status_code == 404


def _csv(response) -> list[list[str]]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_purse_dashboard_counts_rides_fares_top_ups_and_parking_in_sql(office, client, engine, settings):
    with transaction(engine) as session:
        from web.purse import service as purse_service

        _v, validator = purse_service.add_device(session, "validator", "=BUS 7")  # a formula-looking name
        _m, meter_credential = purse_service.add_device(session, "parking-meter", "Parkometr Rynek")
    make_card(engine, settings, "5001", balance=2000)
    make_card(engine, settings, "5002", kind=CardKind.BEARER, balance=1000)
    assert tap(client, validator, "5001").json()["accepted"]
    assert tap(client, validator, "5001", b=1).json()["accepted"]  # baggage: a companion fare
    assert tap(client, validator, "5002", vehicle="BUS-8", b=2).json()["accepted"]  # suburban
    at = web_clock.now().isoformat()
    assert meter(client, meter_credential, "top-up",
                 {"event_id": "m-1", "at": at, "card_number": "5002", "coins": [200, 500]}).json()["accepted"]
    page = office.get("/office/dashboards/purse")
    assert page.status_code == 200
    fares = {row[0]: row[1:] for row in _csv(office.get("/office/dashboards/purse/fares.csv"))[1:]}
    assert fares["normalny"] == ["1", "2.80"] and fares["podmiejski"] == ["1", "3.40"]
    assert fares["współpasażerowie, bagaż"] == ["1", "2.80"]
    lines = _csv(office.get("/office/dashboards/purse/rides-per-line.csv"))
    assert lines[1] == ["'=BUS 7", "3"]  # neutralised: a spreadsheet shows text, runs nothing
    topups = {row[0]: row[1:] for row in _csv(office.get("/office/dashboards/purse/topups.csv"))[1:]}
    assert topups["parkometr"][:2] == ["1", "7.00"] and topups["kasa"][0] == "2"
    heat = _csv(office.get("/office/dashboards/purse/rides-heatmap.csv"))
    assert len(heat) == 1 + 7 * 24 and sum(int(r[2]) for r in heat[1:]) == 3


def test_inspection_dashboard_counts_checks_per_day_and_verdicts(office, engine, db):
    with transaction(engine) as session:
        for verdict, method in (("valid", "scan"), ("valid", "terminal"), ("forged", "scan"), ("expired", "card")):
            session.add(Inspection(method=method, verdict=verdict, at=web_clock.now()))
        session.add(Inspection(method="scan", verdict="valid", at=web_clock.now() - timedelta(days=90)))
    verdicts = dict(_csv(office.get("/office/dashboards/inspections/verdicts.csv"))[1:])
    assert verdicts == {"ważny": "2", "podrobiony": "1", "wygasły": "1"}
    days = _csv(office.get("/office/dashboards/inspections/checks.csv"))
    assert days[0] == ["dzień", "wszystkie", "ważne", "nieważne"] and len(days) == 1 + 30
    assert days[-1] == [web_clock.today().isoformat(), "4", "2", "2"]


def test_health_dashboard_shows_backlogs_and_devices(office, engine):
    with transaction(engine) as session:
        from web.purse import service as purse_service

        purse_service.add_device(session, "validator", "Kasownik 12")
    page = office.get("/office/dashboards/health")
    assert page.status_code == 200
    devices = _csv(office.get("/office/dashboards/health/devices.csv"))
    assert devices[1][:4] == ["Kasownik 12", "validator", "tak", "nigdy"]


def test_five_plus_one_dashboard_renders_on_an_empty_database(office):
    months = _csv(office.get("/office/dashboards/5plus1/month-of-six.csv"))
    assert [r[0] for r in months[1:]] == ["1/6", "2/6", "3/6", "4/6", "5/6", "6/6"]
    assert len(_csv(office.get("/office/dashboards/5plus1/charges.csv"))) == 31


# --------------------------------------------------------------------------- devices


def test_an_admin_adds_a_device_its_credential_is_shown_once_and_works_on_the_device_api(office, client, engine,
                                                                                          settings, db):
    page = office.submit("/office/devices", {"kind": "validator", "name": "BUS 101"})
    assert page.status_code == 200
    credential = re.search(r'id="credential">([^<]+)<', page.text).group(1)  # type: ignore[union-attr]
    device = db.one(Device, Device.name == "BUS 101")
    assert credential.startswith(f"{device.id}.") and credential.split(".", 1)[1] not in str(db.dump())
    assert credential not in office.get("/office/devices").text  # shown once
    make_card(engine, settings, "6001", balance=1000)
    assert tap(client, credential, "6001").json()["accepted"]
    assert "tap" in page_text(office.get(f"/office/devices/{device.id}").text)
    renamed = office.submit(f"/office/devices/{device.id}", {"name": "BUS 102"}, action=f"/office/devices/{device.id}/rename")
    assert renamed.status_code == 303 and db.one(Device, Device.id == device.id).name == "BUS 102"
    disabled = office.submit(f"/office/devices/{device.id}", {}, action=f"/office/devices/{device.id}/disable")
    assert disabled.status_code == 303
    assert tap(client, credential, "6001").status_code == 401
    actions = [e.action for e in db.all(AuditEvent) if e.action.startswith("office.device")]
    assert actions == ["office.device.added", "office.device.renamed", "office.device.disabled"]


def test_device_form_errors_are_next_to_the_fields(office, db):
    page = office.submit("/office/devices", {"kind": "toaster", "name": "x"})
    assert page.status_code == 422 and field_errors(page.text, "kind")
    page = office.submit("/office/devices", {"kind": "validator", "name": "  "})
    assert page.status_code == 422 and field_errors(page.text, "name")
    page = office.submit("/office/devices", {"kind": "validator", "name": "x" * 81})
    assert page.status_code == 422 and field_errors(page.text, "name")
    assert db.count(Device) == 0
    assert office.get("/office/devices/99").status_code == 404
    assert office.get("/office/devices/99999999999").status_code == 400


def test_meter_cash_collected_against_booked_coins_with_the_difference_flagged(office, client, engine, settings, db):
    with transaction(engine) as session:
        from web.purse import service as purse_service

        device, credential = purse_service.add_device(session, "parking-meter", "Parkometr Ratuszowa")
        device_id = device.id
    make_card(engine, settings, "6101", kind=CardKind.BEARER)
    at = web_clock.now().isoformat()
    assert meter(client, credential, "top-up",
                 {"event_id": "c-1", "at": at, "card_number": "6101", "coins": [500, 200]}).json()["accepted"]
    today = web_clock.today().isoformat()
    bad = office.submit(f"/office/devices/{device_id}", {"day": today, "amount": "6,5zł!"},
                        action=f"/office/devices/{device_id}/cash")
    assert bad.status_code == 422 and field_errors(bad.text, "amount") and db.count(MeterCashCollection) == 0
    saved = office.submit(f"/office/devices/{device_id}", {"day": today, "amount": "6,50"},
                          action=f"/office/devices/{device_id}/cash")
    assert saved.status_code == 303
    page = office.get(f"/office/devices/{device_id}")
    row = re.search(r'<tr class="flagged">(.*?)</tr>', page.text, re.S)
    assert row and "-0,50" in page_text(row.group(1)).replace("\u00a0", " ")
    office.submit(f"/office/devices/{device_id}", {"day": today, "amount": "7"}, action=f"/office/devices/{device_id}/cash")
    assert 'class="flagged"' not in office.get(f"/office/devices/{device_id}").text
    assert db.one(MeterCashCollection).amount == 700


# --------------------------------------------------------------------------- card registry


REGISTRY = "type,client_code,pesel,holder_name,resident_from,resident_until,blocked\n"


def upload(browser, action: str, text: str, page: str = "/office/registry"):  # type: ignore[no-untyped-def]
    opened = browser.get(page)
    token = re.search(r'name="_csrf_token" value="([^"]+)"', opened.text).group(1)  # type: ignore[union-attr]
    return browser.client.post(action, data={"_csrf_token": token}, files={"file": ("karty.csv", text.encode(), "text/csv")},
                               headers=browser.headers, follow_redirects=False)


def test_registry_csv_preview_shows_added_updated_unlinked_and_applies_in_chunks(office, users, engine, settings, db):
    from web.cards.service import import_registry

    holder = users.create("anna@example.pl", pesel=VALID_PESEL)
    with transaction(engine) as session:
        import_registry(session, settings, REGISTRY + f"KKM,100200300,{VALID_PESEL},Anna Nowak,,,no\n"
                                                      f"KKM,100200301,{VALID_PESEL},Anna Nowak,,,no\n")
        card = session.scalars(select(Card).where(Card.client_code == "100200300")).one()
        card.account_id = holder.id
    changed_hands = REGISTRY + ("KKM,100200300,02270803624,Jan Kowalski,,,no\n"
                                f"KKM,100200301,{VALID_PESEL},Anna Nowak,,,yes\n"
                                "KKM,100200302,02270803624,Jan Kowalski,,,no\n")
    preview = upload(office, "/office/registry/preview", changed_hands)
    assert preview.status_code == 200, preview.text[:3000]
    text = page_text(preview.text)
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', preview.text))
    assert counts == {"added": "1", "updated": "2", "unlinked": "1", "unchanged": "0"}, text
    assert db.one(Card, Card.client_code == "100200300").account_id == holder.id  # nothing written yet
    assert db.count(Card) == 2
    import_id = db.one(RegistryImport).id
    other = upload(office, f"/office/registry/{import_id}/apply", changed_hands + "KKM,100200303,02270803624,J K,,,no\n")
    assert other.status_code == 422  # only the file that was previewed
    applied = upload(office, f"/office/registry/{import_id}/apply", changed_hands)
    assert applied.status_code == 303
    assert db.count(Card) == 3 and db.one(Card, Card.client_code == "100200300").account_id is None
    again = upload(office, f"/office/registry/{import_id}/apply", changed_hands)
    assert again.status_code == 422 and "już zastosowany" in page_text(again.text)
    history = page_text(office.get("/office/registry").text)
    assert "karty.csv" in history and "zastosowany" in history
    assert [e.action for e in db.all(AuditEvent) if e.action.startswith("office.registry")] == [
        "office.registry.previewed", "office.registry.applied"]


def test_registry_errors_are_listed_with_line_numbers_and_nothing_can_be_applied(office, db):
    preview = upload(office, "/office/registry/preview", REGISTRY + "KKM,1,123,X,,,no\nXXX,100200300,44051401359,A,,,no\n")
    assert preview.status_code == 422
    section = preview.text.split('data-testid="registry-preview"')[1].split("</section>")[0]
    rows = re.findall(r"<tr><td>(\d+)</td><td>", section)
    assert rows == ["2", "3"] and "Zastosuj import" not in preview.text
    assert db.one(RegistryImport).status == "refused" and db.count(Card) == 0
    not_utf8 = upload(office, "/office/registry/preview", "")
    assert not_utf8.status_code == 422 and field_errors(not_utf8.text, "file")


def test_registry_is_applied_in_chunks_with_the_same_counts(engine, settings, users, db):
    from web.office import service

    users.create(ADMIN, role="admin", pesel=None)
    admin_id = db.user(ADMIN).id
    raw = (REGISTRY + "".join(f"KKM,{100200400 + n},{VALID_PESEL},Anna Nowak,,,no\n" for n in range(7))).encode()
    preview = service.preview_registry(engine, settings, admin_id, "k.csv", raw, None)
    assert preview.report.added == 7 and db.count(Card) == 0
    report = service.apply_registry(engine, settings, admin_id, preview.import_id, raw, None, chunk=3)
    assert report.added == 7 and db.count(Card) == 7


# --------------------------------------------------------------------------- tariffs, accounts, audit


def test_tariffs_page_reads_the_tariff_files(office):
    text = page_text(office.get("/office/tariffs").text).replace("\u00a0", " ")
    assert "w mocy" in text and "80,00 zł" in text and "2,80 zł" in text


def test_accounts_are_found_by_email_card_and_exact_pesel_only(office, users, engine, settings, db):
    anna = users.create("anna@example.pl", pesel=VALID_PESEL)
    make_card(engine, settings, "70010001")
    with transaction(engine) as session:
        from web.purse.models import PurseCardRow

        session.scalars(select(PurseCardRow).where(PurseCardRow.number == "70010001")).one().account_id = anna.id
    for query in ("anna@example.pl", VALID_PESEL, "70010001"):
        page = office.get(f"/office/accounts?q={query}")
        assert page.status_code == 200 and "anna@example.pl" in page.text, query
    assert "anna@example.pl" not in office.get(f"/office/accounts?q={VALID_PESEL[:10]}").text
    assert "anna@example.pl" not in office.get("/office/accounts?q=44051401358").text  # bad checksum: no match
    detail = office.get(f"/office/accounts/{anna.id}")
    assert detail.status_code == 200 and "70010001" in detail.text and VALID_PESEL not in detail.text
    searches = [e for e in db.all(AuditEvent) if e.action == "office.accounts.searched"]
    assert searches and all(VALID_PESEL not in e.detail for e in searches)


def test_admin_creates_and_disables_a_staff_account_which_is_signed_out_at_once(office, new_browser, db, engine,
                                                                                settings):
    bad = office.submit("/office/accounts", {"role": "admin", "email": "x@example.pl", "first_name": "A",
                                             "last_name": "B", "password": "Haslo1234"})
    assert bad.status_code == 422 and field_errors(bad.text, "role")
    weak = office.submit("/office/accounts", {"role": "staff", "email": "ewa@example.pl", "first_name": "Ewa",
                                              "last_name": "Nowak", "password": "abc"})
    assert weak.status_code == 422 and field_errors(weak.text, "password") and db.user("ewa@example.pl") is None
    made = office.submit("/office/accounts", {"role": "staff", "email": "ewa@example.pl", "first_name": "Ewa",
                                              "last_name": "Nowak", "password": "Haslo1234"})
    assert made.status_code == 303
    ewa = db.user("ewa@example.pl")
    assert ewa.role == "staff" and not ewa.has_totp  # enrols at first sign-in
    from tests.conftest import TEST_TOTP_SECRET
    from web.accounts.twofactor import set_secret

    with transaction(engine) as session:
        set_secret(session, settings, session.get(User, ewa.id), TEST_TOTP_SECRET)
    desk = new_browser()
    desk.login("ewa@example.pl")
    assert desk.get("/desk").status_code == 200
    done = office.submit("/office/accounts", {}, action=f"/office/accounts/{ewa.id}/disable")
    assert done.status_code == 303 and db.user("ewa@example.pl").disabled_at is not None
    assert desk.get("/desk", follow_redirects=False).status_code in (302, 303)
    again = desk.submit("/login", {"email": "ewa@example.pl", "password": "Haslo1234"})
    assert again.status_code != 303 or again.headers["location"] not in ("/login/code", "/account")
    refused = office.submit("/office/accounts", {}, action=f"/office/accounts/{db.user(ADMIN).id}/disable")
    assert refused.status_code == 422


def test_every_admin_action_is_in_the_searchable_audit_log(office, db):
    office.submit("/office/devices", {"kind": "validator", "name": "BUS 5"})
    office.get("/office/dashboards/purse/fares.csv")
    page = office.get("/office/audit?action=office.")
    text = page_text(page.text)
    assert "office.device.added" in text and "office.export" in text
    only = page_text(office.get("/office/audit?action=office.export").text)
    assert "office.export" in only and "office.device.added" not in only
    assert office.get("/office/audit?user=abc").status_code == 422


def test_five_plus_one_dashboard_counts_subscriptions_months_charges_and_revenue(office, users, engine, settings):
    from web.five_plus_one.models import Subscription5p1, SubscriptionMonthRow
    from web.payment_records.models import Payment

    anna = users.create("anna@example.pl", pesel=VALID_PESEL)
    today = web_clock.today()
    with transaction(engine) as session:
        card = Card(carrier_type="KKM", client_code="100200300", holder_name="Anna Nowak", pesel_hash="x" * 64)
        session.add(card)
        session.flush()
        subs = [Subscription5p1(user_id=anna.id, card_id=card.id, variant=variant, first_day=today - timedelta(days=40),
                                status=status, ended_on=today if status != "active" else None)
                for variant, status in (("normal", "active"), ("reduced", "active"), ("normal", "cancelled"),
                                        ("normal", "broken"))]
        session.add_all(subs)
        session.flush()
        for sub, index in ((subs[0], 2), (subs[1], 6)):
            session.add(SubscriptionMonthRow(subscription_id=sub.id, cycle=1, month_index=index, state="paid",
                                             starts_on=today - timedelta(days=5), ends_on=today + timedelta(days=25),
                                             price=8000 if index < 6 else 1000, paid_on=today))
        session.add(SubscriptionMonthRow(subscription_id=subs[0].id, cycle=1, month_index=3, state="due",
                                         starts_on=today, ends_on=today + timedelta(days=30), price=8000))
        for n, (status, kind) in enumerate((("paid", "token"), ("failed", "token"), ("failed", "token"))):
            session.add(Payment(reference=f"r-{n}", purpose="5p1_month", subject_id=1, user_id=anna.id, kind=kind,
                                amount=8000, status=status))
    page = office.get("/office/dashboards/5plus1")
    assert page.status_code == 200 and "Aktywne subskrypcje" in page_text(page.text)
    months = dict(_csv(office.get("/office/dashboards/5plus1/month-of-six.csv"))[1:])
    assert months["2/6"] == "1" and months["6/6"] == "1" and months["1/6"] == "0"
    subscriptions = _csv(office.get("/office/dashboards/5plus1/subscriptions.csv"))
    assert subscriptions[-1] == [today.isoformat(), "4", "1", "1"]
    charges = _csv(office.get("/office/dashboards/5plus1/charges.csv"))
    assert charges[-1] == [today.isoformat(), "1", "1", "2", "2"]
    revenue = _csv(office.get("/office/dashboards/5plus1/revenue.csv"))
    assert revenue[1] == [today.strftime("%Y-%m"), "80.00", "0.00", "10.00"]
