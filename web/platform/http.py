"""Helpers every controller uses: forms, the current user, running a use case in a transaction, pages."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Protocol, TypeVar

import anyio
from litestar import Litestar, MediaType, Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.params import PathParameter
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.response import Redirect, Response, Template
from sqlmodel import Session

from web.platform import i18n
from web.platform.db import transaction
from web.platform.ratelimit import DEVICE_COOKIE, DEVICE_DAYS, device_token_of, new_device_token
from web.platform.sessions import SESSION_REMEMBER, SESSION_ROTATE
from web.platform.settings import Settings

T = TypeVar("T")

MAX_ROW_ID = 2**31 - 1  # the largest INTEGER primary key (PostgreSQL's int4; SQLite's rowids fit too)
RowId = Annotated[int, PathParameter(ge=1, le=MAX_ROW_ID, description="A row id (1 to 2^31-1)")]
"""A database id in a URL path: anything outside 1..2^31-1 is refused (400) before it reaches the database."""


def wait_text(seconds: int) -> str:
    """The message for a throttled attempt: how many minutes to wait (at least one)."""
    minutes = max(1, math.ceil(seconds / 60))
    return i18n.ngettext(
        "Zbyt wiele prób. Spróbuj ponownie za %(num)s minutę.",
        "Zbyt wiele prób. Spróbuj ponownie za %(num)s minut.",
        minutes,
    )


def known_device_token(request: ASGIConnection) -> str | None:
    """The browser's known-device token (R-AUTH-1), if its cookie holds one we could have issued."""
    return device_token_of(request.cookies.get(DEVICE_COOKIE))


async def remember_device(request: Request, response: Any, email: str) -> None:
    """Mark this browser as known for the account (R-AUTH-1): its sign-ins are not held up by an attack
    on the account from elsewhere. Called once a sign-in has passed every step."""
    token = known_device_token(request) or new_device_token()
    await request.app.state.limiter.remember_device(email, token)
    response.set_cookie(DEVICE_COOKIE, token, max_age=DEVICE_DAYS * 24 * 3600, path="/", httponly=True,
                        secure=settings_of(request).secure_cookies, samesite="lax")


def api_problem(request: Request, status: int, code: str, detail: str, title: str | None = None,
                headers: dict[str, str] | None = None) -> Response[dict[str, Any]]:
    """Every /api error, one shape (RFC 9457 problem details, `application/problem+json`, made by Litestar's
    problem-details plugin): `{status, title, detail, code}`, `detail` the text to show, `code` a stable id."""
    if title is None:
        title = {401: i18n._("Brak dostępu"), 403: i18n._("Brak dostępu"), 404: i18n._("Nie ma takiej strony"),
                 429: i18n._("Za dużo prób"), 500: i18n._("Coś poszło nie tak")}.get(
            status, i18n._("Nie udało się") if status >= 500 else i18n._("Nieprawidłowe żądanie"))
    problem = ProblemDetailsException(status_code=status, title=title, detail=detail, extra={"code": code},
                                      headers=headers)
    return problem.to_response(request)


def settings_of(request: ASGIConnection) -> Settings:
    return request.app.state.settings


def client_ip(request: ASGIConnection) -> str:
    return request.client.host if request.client else "unknown"


def clean_text(value: str) -> str:
    """Text from outside as it may be stored: a NUL byte (which PostgreSQL cannot store in text, and no
    person types) becomes U+FFFD, so every later check sees a character it refuses instead of the database
    failing on it."""
    return value.replace("\x00", "\ufffd")


async def form_of(request: Request) -> dict[str, str]:
    form = await request.form()
    return {clean_text(key): clean_text(value) if isinstance(value, str) else "" for key, value in form.items()}


def checked(form: dict[str, str], name: str) -> bool:
    return form.get(name, "") in {"on", "1", "true", "yes"}


async def in_transaction(request: ASGIConnection, use_case: Callable[..., T], *args: Any) -> T:
    """Run `use_case(session, *args)` in a worker thread, in one transaction (commit or roll back)."""
    engine = request.app.state.engine
    language = i18n.current_language.get()

    def run() -> T:
        token = i18n.current_language.set(language)
        try:
            with transaction(engine) as session:
                return use_case(session, *args)
        finally:
            i18n.current_language.reset(token)

    return await anyio.to_thread.run_sync(run)


CLEAR_BROWSER = "_clear_browser"  # set at logout: the next page clears what the browser kept (static/js/logout.js)
# Sent with the logout answer: browsers drop their HTTP cache and the site's storage (service worker caches,
# IndexedDB, localStorage). Cookies stay: the session cookie now names an empty session.
CLEAR_SITE_DATA = '"cache", "storage"'


class Account(Protocol):
    """What the platform knows of a signed-in account: the accounts area's `User` row (web.accounts.models).
    The platform imports no area: the app factory hands it the loader (`app.state.account_loader`)."""

    @property
    def id(self) -> int | None: ...
    @property
    def role(self) -> str: ...
    @property
    def language(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def password_changed_at(self) -> datetime | None: ...
    @property
    def is_active(self) -> bool: ...


AccountLoader = Callable[[Session, int], Any]
"""Loads an account row by id (None when there is none): `web.accounts.current.load_account`, which the app
factory puts in `app.state.account_loader`."""
def session_stamp(user: Account) -> str:
    """What a session remembers of its account besides the id: when the account was created (an id
    freed by an erased account and given to a new one never opens the old sessions) and when its
    password last changed (a change or reset ends every other session)."""
    changed = user.password_changed_at.isoformat() if user.password_changed_at else "-"
    return f"{user.created_at.isoformat()}|{changed}"


def _load_user(session: Session, loader: AccountLoader, user_id: int, stamp: str | None) -> Any:
    user: Account | None = loader(session, user_id)
    if user is None or not user.is_active or session_stamp(user) != stamp:
        return None
    return user


# Users just loaded, per process, for a moment: a page view that follows another within USER_CACHE_SECONDS
# skips one database round trip. Treat cached users as read-only. A password change, reset or erasure
# forgets the user here at once; other processes notice within USER_CACHE_SECONDS.
USER_CACHE_SECONDS = 2.0
_user_cache: dict[tuple[int, str | None], tuple[float, Any]] = {}
# Requests of one user that miss the cache together wait for one load, not one each: a page open in 30
# tabs (or 30 concurrent requests) once sent 30 worker threads after the same row when the entry expired,
# and the event loop waited for the convoy (a 2-second stall, measured).
_user_loads: dict[tuple[int, str | None], asyncio.Future[Any]] = {}


def forget_user(user_id: int) -> None:
    for key in [k for k in _user_cache if k[0] == user_id]:
        _user_cache.pop(key, None)


def session_data(request: ASGIConnection) -> dict[str, Any]:
    """The request's session (`web.app.RequestSetup`, through `web.platform.sessions.Sessions`, keeps a plain dict
    in the scope), read and written like a dict. A request without a session (static files, the device API)
    gets an empty one, kept in its scope for the rest of the request and never saved."""
    session = request.scope.get("session")
    if not isinstance(session, dict):
        session = {}
        request.scope["session"] = session
    return session


async def current_user(request: ASGIConnection) -> Account | None:
    """The signed-in account (the accounts area's `User`; the platform does not know the class, `Account` is what
    it uses of it), or None."""
    state = request.scope.setdefault("state", {})  # what request.state wraps, without a State object per access
    if "user" in state:
        return state["user"]
    user = None
    session = request.scope.get("session")
    if isinstance(session, dict) and isinstance(session.get("uid"), int):
        key = (session["uid"], session.get("pwd"))
        cached = _user_cache.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            user = cached[1]
        elif (loading := _user_loads.get(key)) is not None:
            user = await asyncio.shield(loading)
        else:
            loading = _user_loads[key] = asyncio.get_running_loop().create_future()
            try:
                user = await in_transaction(request, _load_user, request.app.state.account_loader, *key)
            except BaseException as exc:
                loading.set_exception(exc)
                loading.exception()  # retrieved here: the waiting requests get it, nobody else must
                raise
            else:
                loading.set_result(user)
                if user is not None:
                    if len(_user_cache) > 10_000:
                        _user_cache.clear()
                    _user_cache[key] = (time.monotonic() + USER_CACHE_SECONDS, user)
            finally:
                _user_loads.pop(key, None)
        if user is None:
            session.clear()
    state["user"] = user
    return user


async def signed_in_user(request: ASGIConnection) -> Account:
    """The signed-in user, in a handler guarded by `requires_login` or `requires_role` (so never None there);
    without one the request is refused (401) as the guard would have refused it."""
    user = await current_user(request)
    if user is None:
        raise NotAuthorizedException()
    return user


def login_session(request: Request, user: Account, remember: bool) -> None:
    session = session_data(request)
    flashes = session.get("_flash", [])
    session.clear()
    session.update(
        {
            "uid": user.id,
            "pwd": session_stamp(user),
            SESSION_ROTATE: True,
            SESSION_REMEMBER: remember,
            "lang": user.language,
            "_flash": flashes,
        }
    )
    session[CSRF_BOUND] = request.cookies.get(CSRF_COOKIE, "")
    request.state.user = user


CSRF_COOKIE = "csrftoken"  # Litestar's CSRFConfig.cookie_name
CSRF_BOUND = "_csrf_cookie"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}
CSRF_EXEMPT = ("/api/", "/payments/notify", "/sandbox-pay/")  # as CSRFConfig.exclude: no cookie-based forms


async def csrf_bound_to_session(request: Request) -> None:
    """`before_request`: the CSRF token of a signed-in session is the one its browser had when it signed in.
    Litestar checks that the form's token matches the CSRF cookie (double submit); a cookie set later from
    elsewhere (a sibling subdomain, a cookie-tossing page) with a token of its own is refused here (403,
    "Formularz wygasł"). Sessions signed in before this check existed carry no binding and are left alone."""
    if request.method in _SAFE_METHODS or request.url.path.startswith(CSRF_EXEMPT):
        return
    session = request.scope.get("session")
    if not isinstance(session, dict) or not session.get("uid") or CSRF_BOUND not in session:
        return
    bound = session[CSRF_BOUND]
    if bound and request.cookies.get(CSRF_COOKIE, "") != bound:
        raise PermissionDeniedException(detail="CSRF token not bound to this session")


HANDLER_FREE = "ekp_handler_free"  # marks a guard that never looks at its handler argument (see run_guards_uncopied)


async def requires_login(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    if await current_user(connection) is None:
        raise NotAuthorizedException()


setattr(requires_login, HANDLER_FREE, True)


def requires_role(*roles: str) -> Callable[[ASGIConnection, BaseRouteHandler], Any]:
    async def guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
        user = await current_user(connection)
        if user is None:
            raise NotAuthorizedException()
        if user.role not in roles:
            raise PermissionDeniedException()

    setattr(guard, HANDLER_FREE, True)
    return guard


def run_guards_uncopied(app: Litestar) -> None:
    """Litestar runs a route's guards with a shallow copy of its handler (`copy(handler)`: about sixty attributes
    set one by one, per request; issue 18). EKP's own guards (`requires_login`, `requires_role`) never look at the
    handler, so for a handler guarded only by them the same guards run in the same order, with the same
    exceptions, on the handler itself. A handler with any other guard keeps Litestar's way."""
    for route in app.routes:
        for handler, _ in getattr(route, "route_handler_map", {}).values():
            guards = handler.resolve_guards()
            if guards and all(getattr(guard, HANDLER_FREE, False) for guard in guards) and hasattr(handler, "__dict__"):
                handler.authorize_connection = _uncopied(tuple(guards), handler)


def _uncopied(guards: tuple[Callable[..., Any], ...], handler: BaseRouteHandler) -> Callable[..., Any]:
    async def authorize_connection(connection: ASGIConnection) -> None:
        for guard in guards:
            await guard(connection, handler)

    return authorize_connection


def flash(request: ASGIConnection, message: str, category: str = "info") -> None:
    session_data(request).setdefault("_flash", []).append({"message": message, "category": category})


def take_flashes(request: ASGIConnection) -> list[dict[str, str]]:
    session = request.scope.get("session")
    if not isinstance(session, dict):
        return []
    return session.pop("_flash", [])


async def page(request: ASGIConnection, template: str, *, status_code: int = 200, **context: Any) -> Template:
    """Render a full page (or its partial for htmx), with the current user and flashes in the context."""
    context.setdefault("user", await current_user(request))
    context["flashes"] = take_flashes(request)
    session = request.scope.get("session")
    context["clear_browser"] = isinstance(session, dict) and bool(session.pop(CLEAR_BROWSER, False))
    context["settings"] = settings_of(request)
    # media type named: Litestar would guess it from the template name's suffix, with pathlib, on every page
    return Template(template_name=template, context=context, status_code=status_code, media_type=MediaType.HTML)


def redirect(path: str) -> Redirect:
    return Redirect(path=path, status_code=303)


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths are allowed as a redirect or a link target (no open redirects).

    Browsers drop tabs and line breaks from URLs and read a backslash as a slash, so `/<tab>/evil.example`
    and `/\\evil.example` mean `//evil.example`: any whitespace, control character or backslash refuses."""
    if (target and len(target) <= 2000 and target.startswith("/") and not target.startswith("//")
            and "\\" not in target and not any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in target)):
        return target
    return default


def offline_headers(request: ASGIConnection, user: Account) -> dict[str, str]:
    """Headers of a page the service worker keeps for offline use (home, a mobile ticket): marked for it,
    never stored by HTTP caches, and filed under a key of this account (a keyed hash of its id, not the id)
    so a phone that signs in as someone else never shows the previous person's page. Signing out clears
    the whole cache (static/js/logout.js, Clear-Site-Data)."""
    key = hmac.new(settings_of(request).secret_key, f"offline-pages:{user.id}:{session_stamp(user)}".encode(),
                   hashlib.sha256).hexdigest()[:24]
    return {"X-EKP-Offline": "1", "X-EKP-Cache-Key": key, "Cache-Control": "no-store"}


# Only files are compressed: every handler carries SKIP_COMPRESSION from the app's opt and file routes turn it
# off. Pages never are: each carries the CSRF token beside text the visitor chose, and a compressed answer's
# size would leak the token (BREACH).
SKIP_COMPRESSION = "skip_compression"
FILES_OPT = {SKIP_COMPRESSION: False}
