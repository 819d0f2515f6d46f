"""The CSRF middleware's shortcut for safe requests (web/platform/csrf.py, issue 18): the same cookie and token as
Litestar's middleware; unsafe requests still checked by it."""

from __future__ import annotations

from litestar.config.csrf import CSRFConfig
from litestar.datastructures import Cookie

from tests.conftest import csrf_token_in
from web.platform.csrf import CSRFWithSafeShortcut, csrf_cookie_header


def test_a_new_browser_gets_litestars_csrf_cookie_and_its_token_in_the_page(client):
    response = client.get("/login")
    assert response.status_code == 200
    set_cookies = response.headers.get_list("set-cookie")
    csrf = [c for c in set_cookies if c.startswith("csrftoken=")]
    assert len(csrf) == 1
    token = csrf[0].split(";")[0].split("=", 1)[1]
    assert csrf_token_in(response.text) == token
    assert f'"x-csrftoken": "{token}"' in response.text
    assert "SameSite=lax" in csrf[0] and "Path=/" in csrf[0] and "HttpOnly" not in csrf[0]


def test_a_browser_with_the_cookie_keeps_its_token_and_gets_no_new_cookie(client):
    token = client.get("/login").cookies["csrftoken"]
    again = client.get("/login")
    assert not [c for c in again.headers.get_list("set-cookie") if c.startswith("csrftoken=")]
    assert csrf_token_in(again.text) == token


def test_the_raw_cookie_header_is_the_one_litestar_builds():
    config = CSRFConfig(secret="s" * 32, cookie_secure=True, cookie_samesite="lax", cookie_httponly=False)
    middleware = CSRFWithSafeShortcut(app=None, config=config)  # type: ignore[arg-type]
    for token in ("0123abcdef" * 8, 'odd "token";x'):
        expected = Cookie(key="csrftoken", value=token, path="/", secure=True, httponly=False,
                          samesite="lax").to_header(header="").encode("latin-1")
        assert middleware._new_cookie(token) == expected == csrf_cookie_header(config, token)


def test_a_form_without_the_token_is_still_refused(client):
    client.get("/login")
    response = client.post("/login", data={"email": "a@example.pl", "password": "x"})
    assert response.status_code == 403
    assert "Formularz wygasł" in response.text
    wrong = client.post("/login", data={"email": "a@example.pl", "password": "x", "_csrf_token": "0" * 128})
    assert wrong.status_code == 403
