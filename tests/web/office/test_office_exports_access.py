"""Every export of the back office (each dashboard's every chart as CSV, issue 17) answers 403 to a passenger,
an inspector and a staff member, on SQLite and PostgreSQL; the admin gets each one."""

from __future__ import annotations

import pytest

from tests.conftest import VALID_PESEL


@pytest.mark.parametrize("role", ["passenger", "inspector", "staff"])
def test_every_dashboard_export_is_403_for_passengers_inspectors_and_staff(browser, new_browser, users, role):  # type: ignore[no-untyped-def]
    users.create("admin@example.pl", role="admin", pesel=None)
    browser.login("admin@example.pl")
    exports = []
    for key in ("5plus1", "purse", "inspections", "health"):
        page = browser.get(f"/office/dashboards/{key}")
        assert page.status_code == 200
        charts = sorted(set(part.split('"')[0] for part in page.text.split(f"/office/dashboards/{key}/")[1:]))
        assert charts, key
        for chart in charts:
            path = f"/office/dashboards/{key}/{chart.split('?')[0]}"
            assert browser.get(path).status_code == 200, path
            exports.append(path)
    assert len(exports) >= 19  # 4 + 6 + 3 + 6 charts and tables
    other = new_browser()
    users.create("someone@example.pl", role=role, pesel=VALID_PESEL if role == "passenger" else None)
    other.login("someone@example.pl")
    for path in exports:
        assert other.get(path).status_code == 403, path
