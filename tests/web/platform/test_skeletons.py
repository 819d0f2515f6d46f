"""Page skeletons (web.platform.skeletons, issue 18): /account and /login rendered once per shape, the per-request values
filled in; byte for byte the ordinary render, one person's data never in another's page."""

from __future__ import annotations

from datetime import date

import jinja2
import pytest

from tests.conftest import DEFAULT_PASSWORD, with_check_digit
from web.platform import skeletons
from web.accounts import controllers as accounts
from web.platform.skeletons import SkeletonMiss, Slots, StandIn, _split


@pytest.fixture(autouse=True)
def _fresh_skeletons():
    skeletons.forget_skeletons()
    yield
    skeletons.forget_skeletons()


def _ordinary(monkeypatch, browser, path: str) -> str:
    with monkeypatch.context() as patch:
        patch.setattr(accounts, "skeleton_page", lambda *args, **kwargs: None)
        return browser.get(path).text


def test_account_page_is_rendered_once_then_filled_in(browser, users, monkeypatch):
    users.create("jan@example.pl")
    browser.login("jan@example.pl")
    assert "Witaj" in browser.get("/account").text  # the login's flash: rendered the ordinary way
    assert browser.get("/account").status_code == 200  # the skeleton rendered
    renders = []
    original = jinja2.Template.render
    monkeypatch.setattr(jinja2.Template, "render", lambda self, *a, **k: renders.append(self.name) or original(self, *a, **k))
    response = browser.get("/account")
    assert response.status_code == 200 and "Jan Kowalski" in response.text
    assert renders == []
    assert response.headers["content-type"].startswith("text/html")
    assert "content-security-policy" in response.headers


def test_account_page_from_the_skeleton_is_the_ordinary_page_byte_for_byte(new_browser, users, monkeypatch):
    users.create("ala@example.pl", first_name='Ala <b>&"\'', last_name="Nowak-Żółć")
    users.create("ola@example.pl", first_name="Ola", last_name="O'Brien <script>")
    for email in ("ala@example.pl", "ola@example.pl"):
        browser = new_browser()
        browser.login(email)
        browser.get("/account")  # the login's flash
        fast = browser.get("/account").text
        assert fast == browser.get("/account").text
        assert fast == _ordinary(monkeypatch, browser, "/account")
        assert "<script>" not in fast and "<b>" not in fast


def test_account_pages_of_two_people_each_show_only_their_own_data(new_browser, users):
    users.create("ala@example.pl", first_name="Ala", last_name="Alowa")
    users.create("ola@example.pl", first_name="Ola", last_name="Olowa", pesel=with_check_digit("0227080362"))
    ala, ola = new_browser(), new_browser()
    ala.login("ala@example.pl")
    ola.login("ola@example.pl")
    first, second = ala.get("/account").text, ola.get("/account").text
    assert "Ala Alowa" in first and "ala@example.pl" in first and "Ola" not in first
    assert "Ola Olowa" in second and "ola@example.pl" in second and "Ala" not in second and "ala@" not in second
    assert "02\u2022\u2022\u2022\u2022\u2022\u2022\u2022" + with_check_digit("0227080362")[-2:] in second and "02\u2022" not in first
    assert ala.token != ola.token and ala.token in first and ola.token in second and ala.token not in second


def test_account_page_with_a_flash_or_a_date_of_birth_is_rendered_the_ordinary_way(browser, users):
    users.create("bez@example.pl", pesel=None, birth_date=date(1990, 7, 1))
    browser.login("bez@example.pl")
    assert "01.07.1990" in browser.get("/account").text
    form = {"current_password": "wrong-password", "password": "NoweHaslo9", "password_repeat": "NoweHaslo9"}
    assert browser.post("/account/password", form).status_code == 422
    assert browser.post("/account/password", {**form, "current_password": DEFAULT_PASSWORD}).status_code == 303
    assert "Hasło zostało zmienione." in browser.get("/account").text  # the flash, shown once
    assert "Hasło zostało zmienione." not in browser.get("/account").text


def test_login_page_from_the_skeleton_is_the_ordinary_page_byte_for_byte(browser, monkeypatch):
    for path in ("/login", '/login?next=/tickets%3Fa%3D1%26b%3D"%3C%3E', "/login?next=//evil.example"):
        fast = browser.get(path).text
        assert fast == browser.get(path).text
        assert fast == _ordinary(monkeypatch, browser, path)
    assert 'value="/tickets?a=1&amp;b=&#34;&lt;&gt;"' in browser.get('/login?next=/tickets%3Fa%3D1%26b%3D"%3C%3E').text


def test_a_stand_in_refuses_what_it_was_not_given_so_the_template_cannot_bake_in_a_person():
    user = StandIn("user", role="passenger")
    assert user.role == "passenger" and bool(user)
    with pytest.raises(SkeletonMiss):
        _ = user.phone
    env = jinja2.Environment(autoescape=True)
    with pytest.raises(SkeletonMiss):
        env.from_string("{{ user.phone }}").render(user=user)


def test_a_slot_changed_by_a_filter_refuses_the_skeleton():
    slots = Slots()
    assert _split(f"<p>{slots.name.upper()}</p>", slots) is None
    skeleton = _split(f"<p>{slots.name}</p><i>{slots.mail}</i>{slots.name}", slots)
    assert skeleton is not None
    assert skeleton.fill({"name": "A", "mail": "B"}) == "<p>A</p><i>B</i>A"
