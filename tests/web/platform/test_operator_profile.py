"""Issue 15 item 7: one deployment serves one operator — its profile (name, colours, logo, help contacts,
legal texts) and its modules, read once at start-up from `EKP_OPERATOR` (the demo profile turns every module
on). A module turned off answers 404 on its routes and is gone from the navigation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import page_text
from tests.support.shop import add_card
from web.platform.settings import DEMO_OPERATOR, SettingsError, load_settings

ALL_ON = {"krakow_cards": True, "purse": True, "parking": True, "card_applications": True}
KRAKOW_ONLY = {"krakow_cards": True, "purse": False, "parking": False, "card_applications": False}
PURSE_ONLY = {"krakow_cards": False, "purse": True, "parking": False, "card_applications": False}


def operator_file(directory: Path, modules: dict[str, bool], **replace: str) -> Path:
    text = DEMO_OPERATOR.read_text(encoding="utf-8")
    head, _, _ = text.partition("[modules]")
    for old, new in replace.items():
        head = head.replace(old, new)
    body = head + "[modules]\n" + "".join(f"{key} = {'true' if on else 'false'}\n" for key, on in modules.items())
    path = directory / "operator.toml"
    path.write_text(body, encoding="utf-8")
    return path


@pytest.fixture
def modules() -> dict[str, bool]:
    return ALL_ON


@pytest.fixture
def settings_env(settings_env: dict[str, str], tmp_path: Path, modules: dict[str, bool]) -> dict[str, str]:
    return {**settings_env, "EKP_OPERATOR": str(operator_file(tmp_path, modules, **{
        'name = "Demonstracyjny operator komunikacji miejskiej"': 'name = "Miejski Zakład Komunikacji Testowo"',
        'short_name = "EKP"': 'short_name = "MZK Testowo"',
        'controller = "Demonstracyjny operator komunikacji miejskiej,': 'controller = "Miejski Zakład Komunikacji Testowo,',
        '"+48 12 000 00 00"': '"+48 94 123 45 67"',
        '"#0b4f8a"': '"#7a1f3d"'}))}


def _nav(html: str) -> str:
    return html.split('aria-label="Menu główne"', 1)[1].split("</nav>", 1)[0]


@pytest.mark.parametrize("modules", [PURSE_ONLY], ids=["purse-only"])
def test_kraków_module_off_answers_404_and_leaves_the_navigation(logged_in, modules):
    browser, _user = logged_in
    for path in ("/cards", "/cards/add", "/5plus1", "/tickets", "/inspect"):
        response = browser.get(path)
        assert response.status_code == 404, path
        assert "Nie ma takiej strony" in page_text(response.text)
    assert browser.client.post("/api/inspection/verify", json={}).status_code == 404
    nav = page_text(_nav(browser.get("/purse").text))
    assert "Portmonetka" in nav and "Moje karty" not in nav and "5plus1" not in nav and "Bilety" not in nav
    landing = page_text(browser.get("/").text)
    assert "Bilet 5+1" not in landing and "Portmonetka" in landing


@pytest.mark.parametrize("modules", [KRAKOW_ONLY], ids=["krakow-only"])
def test_purse_module_off_answers_404_and_leaves_the_navigation(logged_in, client, modules):
    browser, _user = logged_in
    for path in ("/purse",):
        assert browser.get(path).status_code == 404, path
    assert browser.client.post("/purse/link", data={}).status_code in (403, 404)  # CSRF or gone: never served
    for api in ("/api/devices/validator/taps", "/api/devices/meter/insert"):
        answer = client.post(api, json={})
        assert answer.status_code == 404 and answer.json()["status"] == 404, api
    nav = page_text(_nav(browser.get("/cards").text))
    assert "Karty" in nav and "Portmonetka" not in nav  # the bottom tab bar
    assert "Portmonetka" not in page_text(browser.get("/").text)


@pytest.mark.parametrize("modules", [{**ALL_ON, "parking": False}], ids=["no-parking"])
def test_parking_module_off_closes_the_meter_api_only(client, modules):
    assert client.post("/api/devices/meter/insert", json={}).status_code == 404
    assert client.post("/api/devices/validator/taps", json={}).status_code == 401  # still there: needs a device


def test_branding_help_and_legal_texts_come_from_the_profile(browser):
    home = browser.get("/").text
    assert "MZK Testowo" in page_text(home.split("</header>")[0])
    theme = browser.get("/operator.css")
    assert theme.status_code == 200 and theme.headers["content-type"].startswith("text/css")
    assert "--blue: #7a1f3d" in theme.text
    assert "set-cookie" not in theme.headers
    help_page = page_text(browser.get("/help").text)
    assert "+48 94 123 45 67" in help_page and "pomoc@ekp.localhost" in help_page and "pon.–pt. 8:00–18:00" in help_page
    privacy = page_text(browser.get("/privacy").text)
    assert "Administratorem danych jest Miejski Zakład Komunikacji Testowo, ul. Przykładowa 1" in privacy
    assert "iod@ekp.localhost" in privacy
    terms = page_text(browser.get("/terms").text)
    assert "Miejski Zakład Komunikacji Testowo" in terms and "Reklamacje" in terms
    assert "reklamacje@ekp.localhost" in terms and "w ciągu 14 dni" in terms


def test_kraków_card_and_the_e_purse_card_are_named_apart(logged_in, engine):
    browser, user = logged_in
    add_card(engine, user)  # a linked Kraków card (registry type KKM)
    purse = page_text(browser.get("/purse").text)
    assert "KKM" not in purse  # never "no KKM card" to a passenger holding a Kraków KKM card
    assert "Nie masz jeszcze karty z portmonetką" in purse
    cards = page_text(browser.get("/cards").text)
    assert "KKM" in cards and "100200300" in cards


def test_an_invalid_operator_profile_stops_the_start_listing_every_problem(settings_env, tmp_path):
    bad = operator_file(tmp_path, {**ALL_ON, "purse": False}, **{'"#083a66"': '"#dddddd"', 'short_name = "EKP"': 'short_name = ""'})
    with pytest.raises(SettingsError) as caught:
        load_settings({**settings_env, "EKP_OPERATOR": str(bad)})
    text = str(caught.value)
    assert "colours.primary_dark" in text and "short_name" in text and "modules.parking: needs modules.purse" in text
    with pytest.raises(SettingsError, match="cannot be read"):
        load_settings({**settings_env, "EKP_OPERATOR": str(tmp_path / "missing.toml")})
