"""The back office speaks English too (issue 17): its pages, charts, tables and CSV headers go through the i18n
catalogue like the rest of the app, in the admin's language."""

from __future__ import annotations

import pytest

from tests.conftest import field_errors, page_text


@pytest.fixture
def english_office(browser, users):  # type: ignore[no-untyped-def]
    users.create("admin@example.pl", role="admin", pesel=None, language="en")
    browser.login("admin@example.pl")
    return browser


def test_office_pages_render_in_english_when_the_admins_language_is_english(english_office):  # type: ignore[no-untyped-def]
    expected = {
        "/office": ["Devices", "Card registry (CSV import)", "Audit log", "System health"],
        "/office/dashboards/purse": ["E-purse (KKM card)", "Rides by hour", "Download CSV", "Show"],
        "/office/dashboards/5plus1": ["Active subscriptions", "Charges per day"],
        "/office/dashboards/inspections": ["Inspections per day", "Verdicts"],
        "/office/dashboards/health": ["Failed job runs", "Jobs: runs and last success", "Mail queue"],
        "/office/devices": ["Add a validator or a parking meter", "Add device", "Registered"],
        "/office/registry": ["Card registry (Kraków)", "Preview changes", "Import history"],
        "/office/tariffs": ["Normal month", "Short ride", "in force"],
        "/office/accounts": ["Add a customer service or inspector account", "Initial password", "Search"],
        "/office/audit": ["Audit log", "Text in the details"],
    }
    for path, texts in expected.items():
        page = english_office.get(path)
        assert page.status_code == 200, path
        text = page_text(page.text)
        for english in texts:
            assert english in text, (path, english)
        for polish in ("Urządzenia", "Pobierz CSV", "Dziennik zdarzeń", "Szukaj", "Taryfy"):
            assert polish not in text, (path, polish)
    header = english_office.get("/office/dashboards/health/failed-jobs.csv").content.decode("utf-8-sig").splitlines()[0]
    assert header == "job,when,error"


def test_office_field_errors_are_in_english_too(english_office):  # type: ignore[no-untyped-def]
    page = english_office.get("/office/dashboards/purse?from=2026-13-01")
    assert page.status_code == 422
    assert field_errors(page.text, "from") == ["Enter the date as YYYY-MM-DD."]
    added = english_office.post("/office/devices", {"kind": "validator", "name": ""})
    assert added.status_code == 422
    assert field_errors(added.text, "name") == ["Enter the device’s name (e.g. the vehicle number or the parking meter’s street)."]


def test_office_table_values_are_in_english_too(english_office):  # type: ignore[no-untyped-def]
    """Not only the headers: the states, weekdays and kinds inside the tables and CSVs are the admin's language."""
    health = page_text(english_office.get("/office/dashboards/health").text)
    for english in ("in progress at the payment operator", "held for review (R-PAY-2)", "refund due", "queued",
                    "given up"):
        assert english in health, english
    assert "w toku u operatora płatności" not in health and "zaniechane" not in health
    heat = english_office.get("/office/dashboards/purse/rides-heatmap.csv").content.decode("utf-8-sig").splitlines()
    assert {line.split(",")[0] for line in heat[1:]} == {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
