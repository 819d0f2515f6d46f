"""Litestar's CSRF middleware (double-submit cookie), with a shorter path for safe requests (issue 18).

A GET, HEAD or OPTIONS only needs the CSRF cookie (the token the page's forms carry) and, for a browser
without one, a new token and its `Set-Cookie`. Litestar's middleware built a `Request`, parsed its content type
and looked up the CSRF header for every request, and a `Cookie` dataclass and a `SimpleCookie` for each new
cookie (about a tenth of the login page). Here a safe request reads the cookie header once and the new cookie's
header is the configured one with the token put in. Every other request (POST, PUT, ...) goes through
Litestar's own check unchanged; the tokens, the cookie and its attributes are Litestar's.
"""

from __future__ import annotations

import re

from litestar.config.csrf import CSRFConfig
from litestar._parsers import parse_cookie_string
from litestar.datastructures import Cookie
from litestar.middleware._utils import should_bypass_middleware
from litestar.middleware.csrf import CSRFMiddleware, generate_csrf_token
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

_PLAIN_TOKEN = re.compile(r"[0-9a-f]{1,200}")
_MARK = "ekpcsrftokenmark"


def csrf_cookie_header(config: CSRFConfig, token: str) -> bytes:
    """The `Set-Cookie` value Litestar's middleware sets for `token` (Cookie(...).to_header(header=""))."""
    return Cookie(key=config.cookie_name, value=token, path=config.cookie_path, secure=config.cookie_secure,
                  httponly=config.cookie_httponly, samesite=config.cookie_samesite,
                  domain=config.cookie_domain).to_header(header="").encode("latin-1")


class CSRFWithSafeShortcut(CSRFMiddleware):
    def __init__(self, app: ASGIApp, config: CSRFConfig) -> None:
        super().__init__(app, config)
        before, _, after = csrf_cookie_header(config, _MARK).partition(_MARK.encode())
        self._cookie_around = (before, after)
        self._safe = frozenset(config.safe_methods)

    def _new_cookie(self, token: str) -> bytes:
        if _PLAIN_TOKEN.fullmatch(token):  # Litestar's tokens are hex: nothing to quote
            before, after = self._cookie_around
            return before + token.encode() + after
        return csrf_cookie_header(self.config, token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in self._safe or should_bypass_middleware(
            scope=scope, scopes=self.scopes, exclude_opt_key=self.config.exclude_from_csrf_key,
            exclude_path_pattern=self.exclude,
        ):
            await super().__call__(scope, receive, send)
            return
        state = ScopeState.from_scope(scope)
        cookies = state.cookies
        if not isinstance(cookies, dict):
            cookies = {}
            for name, value in scope["headers"]:
                if name == b"cookie":  # the first cookie header, as Litestar's Request reads it
                    cookies = parse_cookie_string(value.decode("latin-1"))
                    break
            state.cookies = cookies
        csrf_cookie = cookies.get(self.config.cookie_name)
        token = state.csrf_token = csrf_cookie or generate_csrf_token(secret=self.config.secret)
        if csrf_cookie is not None:
            await self.app(scope, receive, send)
            return
        set_cookie = (b"set-cookie", self._new_cookie(token))

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                if not isinstance(headers, list):
                    headers = message["headers"] = list(headers)
                headers.append(set_cookie)
            await send(message)

        await self.app(scope, receive, send_with_cookie)
