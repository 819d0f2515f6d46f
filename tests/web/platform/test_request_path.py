"""The request path done with less CPU (issue 18, "pages close to the floor"), with the same behaviour: the login
guard without Litestar's per-request copy of the handler, the security headers added where the request id is, the
skeleton pages answered without Litestar's step-by-step response building."""

from __future__ import annotations

import asyncio
from typing import Any

import litestar.handlers.base
from litestar import Litestar, MediaType, get
from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.response import Response
from litestar.testing import TestClient

from tests.conftest import BASE_URL
from web.app import HSTS, PAGE_HEADERS
from web.platform.http import requires_login
from web.platform.skeletons import HTMLBytes


def _no_copies(monkeypatch) -> None:
    def refuse(_: Any) -> Any:
        raise AssertionError("the route handler was copied for its guards")

    monkeypatch.setattr(litestar.handlers.base, "copy", refuse)


def test_login_guard_answers_as_before_without_copying_the_handler(browser, users, monkeypatch):
    _no_copies(monkeypatch)
    anonymous = browser.get("/account", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login?next=/account"
    users.create("jan@example.pl")
    browser.login("jan@example.pl")
    assert browser.get("/account").status_code == 200
    assert browser.get("/card-applications").status_code == 200  # requires_role("passenger")
    assert browser.get("/desk/card-applications").status_code == 403  # requires_role("staff"), a passenger


def test_a_guard_of_another_kind_still_gets_its_copy_of_the_handler_after_ekps_own(make_app, users):
    calls: list[str] = []

    async def own_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
        calls.append(handler.handler_name)
        if connection.query_params.get("let") != "in":
            raise PermissionDeniedException()

    @get("/guarded-twice", guards=[requires_login, own_guard], sync_to_thread=False)
    def guarded() -> str:
        return "in"

    app = make_app()
    app.register(guarded)
    users.create("jan@example.pl")
    with TestClient(app, base_url=BASE_URL) as client:
        assert client.get("/guarded-twice", follow_redirects=False).status_code == 303  # requires_login, first
        assert calls == []
        from tests.conftest import Browser

        browser = Browser(client)
        browser.login("jan@example.pl")
        assert browser.get("/guarded-twice").status_code == 403
        assert browser.get("/guarded-twice?let=in").text == "in"
        assert calls == ["guarded", "guarded"]


def test_every_security_header_and_the_request_id_come_once_also_on_a_404_no_route_made(make_app, users):
    with TestClient(make_app(EKP_BASE_URL="https://ekp.example.pl"), base_url=BASE_URL) as client:
        for path in ("/login", "/nie-ma-takiej", "/static/nie-ma.css"):
            response = client.get(path)
            names = [name.lower() for name, _ in response.headers.multi_items()]
            for name, value in [*PAGE_HEADERS, *HSTS, (b"x-request-id", b"")]:
                assert names.count(name.decode()) == 1, (path, name)
                if value:
                    assert response.headers[name.decode()] == value.decode()


def _asgi_messages(app: Litestar, path: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        messages.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": [],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {}, "extensions": {}}
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    return messages


def test_an_html_bytes_page_is_litestars_html_response_byte_for_byte():
    body = "<p>Zażółć gęślą jaźń</p>".encode()

    def pages(status: int) -> list[Any]:
        @get(f"/fast/{status}", sync_to_thread=False, name=f"fast{status}")
        def fast() -> Response:
            return HTMLBytes(body, status)

        @get(f"/plain/{status}", sync_to_thread=False, name=f"plain{status}")
        def plain() -> Response:
            return Response(body, status_code=status, media_type=MediaType.HTML)

        return [fast, plain]

    @get("/fast-cookie", sync_to_thread=False)
    def fast_cookie() -> Response:
        response = HTMLBytes(body)
        response.set_cookie("a", "b")
        response.headers["x-extra"] = "1"
        return response

    @get("/plain-cookie", sync_to_thread=False)
    def plain_cookie() -> Response:
        response = Response(body, media_type=MediaType.HTML)
        response.set_cookie("a", "b")
        response.headers["x-extra"] = "1"
        return response

    app = Litestar(route_handlers=[*pages(200), *pages(422), fast_cookie, plain_cookie])
    for status in (200, 422):
        assert _asgi_messages(app, f"/fast/{status}") == _asgi_messages(app, f"/plain/{status}")
    assert _asgi_messages(app, "/fast-cookie") == _asgi_messages(app, "/plain-cookie")


def test_one_pass_over_the_cookies_keeps_the_rules_the_session_and_the_language_had(browser, users, client):
    users.create("jan@example.pl")
    browser.login("jan@example.pl")
    session_id = client.cookies["ekp_session"]
    client.cookies.clear()
    # the first plausible session id counts (a short one is skipped); the last `lang` cookie counts
    cookie = f"ekp_session=short; lang=pl; ekp_session={session_id}; ekp_session=x{session_id}; lang=en"
    page = client.get("/account", headers={"cookie": cookie}, follow_redirects=False)
    assert page.status_code == 200 and "Jan" in page.text
    assert '<html lang="en">' in client.get("/login", headers={"cookie": "lang=pl; lang=en"}).text
    assert '<html lang="pl">' in client.get("/login", headers={"cookie": "lang=en; lang=pl",
                                                               "accept-language": "en"}).text
