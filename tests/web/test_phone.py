"""Issue 15 (the passenger's phone), items 5–8: forms, finish, the operator profile, content, compression."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from tests.conftest import page_text
from web.clock import WARSAW


def _travel_to(clock, year: int, month: int, day: int) -> None:  # type: ignore[no-untyped-def]
    clock.travel(datetime(year, month, day, 12, tzinfo=WARSAW).astimezone(timezone.utc) - clock.now())


@pytest.mark.parametrize(("day", "monthly"), [((2024, 7, 31), "80,00"), ((2024, 8, 1), "90,00"),
                                              ((2026, 3, 1), "90,00"), ((2026, 3, 2), "99,00")])
def test_r_5p1_2_landing_page_states_the_prices_in_force(browser, clock, day, monthly):
    _travel_to(clock, *day)
    text = page_text(browser.get("/").text)
    assert "za połowę" not in text
    assert f"Pięć miesięcy po {monthly} zł, szósty za 20,00 zł" in text


# --------------------------------------------------------------------------- compression and caching


@pytest.mark.parametrize("path", ["/", "/login", "/terms"])
def test_pages_are_sent_compressed(client, path):
    response = client.get(path, headers={"accept-encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers.get("content-encoding") == "gzip"
    assert "accept-encoding" in response.headers.get("vary", "").lower()
    assert "<!doctype html>" in response.text.lower()  # httpx decoded it


def test_pages_not_compressed_for_clients_that_do_not_ask(client):
    response = client.get("/login", headers={"accept-encoding": "identity"})
    assert response.status_code == 200 and "content-encoding" not in response.headers


@pytest.mark.parametrize("path", ["/static/css/app.css", "/static/js/app.js", "/static/vendor/htmx/htmx.min.js",
                                  "/manifest.webmanifest", "/favicon.ico", "/sw.js"])
def test_static_files_set_no_cookie(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert "set-cookie" not in response.headers, response.headers.get_list("set-cookie")


def test_static_assets_are_hashed_cached_for_a_year_and_compressed(client):
    html = client.get("/login").text
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert assets and any("htmx" in asset for asset in assets)
    for asset in assets:
        assert re.search(r"\?v=[0-9a-f]{10}$", asset), asset  # a new file is a new URL
        response = client.get(asset.replace("&amp;", "&"), headers={"accept-encoding": "gzip"})
        assert response.status_code == 200, asset
        assert "max-age=31536000" in response.headers["cache-control"], asset
        if asset.endswith((".css", ".js")) or ".js?" in asset or ".css?" in asset:
            assert response.headers.get("content-encoding") == "gzip", asset
