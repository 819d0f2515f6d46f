"""Issue 13, edges that hold under attack: open redirects, /dev/mail, e-mail addresses, one person one
account (R-AUTH-2), mail retried while it still means something. Each finding reproduced through HTTP."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Browser
from tests.support.shop import Shop, settings_env, shop  # noqa: F401  (fixtures)


# --------------------------------------------------------------------------- open redirect (item 7)

@pytest.mark.parametrize("back", ["https://evil.example", "//evil.example", "/\\evil.example", "/\t/evil.example",
                                  "javascript:alert(1)"])
def test_payment_return_never_links_to_another_site(shop: Shop, browser: Browser, back: str) -> None:
    _, card = shop.resident(browser)
    shop.webhook.online = False
    purchase = shop.buy(browser, card)
    page = browser.get(f"/payments/return/{purchase.reference}", params={"back": back})
    assert page.status_code == 200
    links = re.findall(r'href="([^"]*)"', page.text)
    assert not any("evil.example" in link or link.startswith("javascript") for link in links), links
    assert "evil.example" not in page.text
    assert '<a class="button" href="/">' in page.text


def test_payment_return_keeps_a_same_site_back_link(shop: Shop, browser: Browser) -> None:
    _, card = shop.resident(browser)
    shop.webhook.online = False
    purchase = shop.buy(browser, card)
    page = browser.get(f"/payments/return/{purchase.reference}", params={"back": "/5plus1"})
    assert '<a class="button" href="/5plus1">' in page.text


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example", "/\t/evil.example", "/\n/evil.example"])
def test_login_next_never_leaves_the_site(browser: Browser, users, target: str) -> None:
    users.create("jan@example.pl")
    response = browser.submit("/login", {"email": "jan@example.pl", "password": "Haslo1234", "next": target})
    assert response.status_code == 303 and response.headers["location"] == "/account"
