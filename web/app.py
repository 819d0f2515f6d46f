"""The Litestar application factory: wires settings, database, sessions, CSRF, pages and jobs."""

from __future__ import annotations

import gc
import hashlib
import logging
import time
from functools import lru_cache
from typing import Any, cast
from urllib.parse import quote

from litestar import Litestar, Request
from litestar.datastructures import State
from litestar.di import Provide
from markupsafe import Markup, escape
from litestar.config.compression import CompressionConfig
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import HTTPException, NotAuthorizedException, NotFoundException, PermissionDeniedException
from litestar.middleware import DefineMiddleware
from litestar.plugins.htmx import HTMXPlugin, HTMXRequest
from litestar.plugins.problem_details import ProblemDetailsPlugin
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from litestar.response import Redirect, Response, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send
from sqlalchemy.engine import Engine

import web.tables  # noqa: F401  (every table on SQLModel.metadata, whichever areas this process touches first)
from web import jobs
from web.platform import clock
from web.platform import i18n
from web.platform.csrf import CSRFWithSafeShortcut
from web.accounts import controllers as accounts
from web.accounts.current import load_account
from web.cards import controllers as cards
from web.desk import controllers as desk
from web.simulators import dev
from web.five_plus_one import controllers as five_plus_one
from web.pages import controllers as pages
from web.accounts import twofactor_controllers as twofactor
from web.payment_records import controllers as payment_pages
from web.pages import payments as payment_history_pages
from web.purse import devices
from web.purse import controllers as purse_pages
from web.purse import simulators
from web.tickets import inspection
from web.platform import ops
from web.tickets import controllers as tickets
from web.card_applications import controller as card_applications
from web.platform.gateway import SANDBOX_PREFIX, build_payments
from web.platform.http import FILES_OPT, SKIP_COMPRESSION, api_problem, csrf_bound_to_session, run_guards_uncopied
from web.platform.observe import configure_logging, request_id_of, with_request_id
from web.office import controllers as office
from web.platform.openapi import openapi_config
from web.accounts.service import ErasureSteps
from web.cards.service import CardIsInUse
from payments import PaymentGateway
from web.payment_records.interface import PaymentPurposes
from web.purposes import card_in_use_question, gdpr_erasure_steps, payment_purposes
from web.platform.db import make_engine
from web.platform.ratelimit import RateLimiter
from web.platform.sessions import COOKIE as SESSION_COOKIE, Sessions
from web.platform.settings import PROJECT_ROOT, Settings, load_settings, start_warnings
from web.platform.store import make_store
from web.platform.templating import PageTemplates, environment

log = logging.getLogger("ekp")
STATIC_DIR = PROJECT_ROOT / "static"
NODE_MODULES = PROJECT_ROOT / "node_modules"

CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; media-src 'self' blob:; worker-src 'self'; frame-ancestors 'none'; "
    "base-uri 'self'; form-action 'self'"
)


# The sandbox payment page stands for another host (the payment operator's): its own look, inline styles.
SANDBOX_CSP = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; "
    "base-uri 'self'; form-action 'self'"
)


def _encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode(), value.encode()) for name, value in headers.items()]


_SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "permissions-policy": "camera=(self), geolocation=(), microphone=()",
    "cross-origin-opener-policy": "same-origin",
}
PAGE_HEADERS = _encoded({"content-security-policy": CSP, **_SECURITY_HEADERS})
SANDBOX_HEADERS = _encoded({"content-security-policy": SANDBOX_CSP, **_SECURITY_HEADERS})
# Where the public address is https, browsers are told to use nothing else for a year (HSTS).
HSTS = _encoded({"strict-transport-security": "max-age=31536000; includeSubDomains"})


_SANDBOX_PATH = SANDBOX_PREFIX.encode() + b"/"
_SECURITY_NAMES = frozenset(name for name, _ in PAGE_HEADERS + SANDBOX_HEADERS + HSTS)


def security_headers(scope: Scope, headers: list[tuple[bytes, bytes]]) -> None:
    """Security headers on every response, also those no route produced (e.g. the 404 page), which
    Litestar sends without running the app's middleware. A header the response set itself stays.
    Called by the outermost layer (`with_request_id`) on each response's start."""
    raw = scope.get("raw_path") or scope.get("path", "").encode()
    wanted = SANDBOX_HEADERS if raw.startswith(_SANDBOX_PATH) else PAGE_HEADERS
    settings = getattr(scope["app"].state, "settings", None) if "app" in scope else None
    if settings is not None and settings.base_url.startswith("https://"):
        wanted = wanted + HSTS
    for name, _ in headers:
        if name.lower() in _SECURITY_NAMES:  # the response set one of them itself: that one stays
            present = {name.lower() for name, _ in headers}
            headers.extend(header for header in wanted if header[0] not in present)
            return
    headers.extend(wanted)


# What each module of the operator profile serves (domain/operator.py): a module turned off answers 404 there.
MODULE_PATHS = {
    "krakow_cards": ("/cards", "/5plus1", "/tickets", "/inspect", "/api/inspection", "/desk/link-card"),
    "purse": ("/purse", "/api/devices", "/desk/purse", "/simulators"),
    "parking": ("/api/devices/meter", "/simulators/meter"),
}


def closed_prefixes(settings: Settings) -> tuple[str, ...]:
    modules = settings.profile.modules
    return tuple(prefix for module, prefixes in MODULE_PATHS.items() if not getattr(modules, module)
                 for prefix in prefixes)


class RequestSetup:
    """What every routed request gets before its handler, in one ASGI layer (issue 18; three middlewares before,
    each a coroutine call more and the cookie header read twice), in this order:

    1. a route of a module the operator does not run does not exist (404, before any guard or body);
    2. the server-side session (`web.platform.sessions.Sessions`: read from the store, saved and its
       cookie set when the response starts), except where `Sessions.applies_to` says no session;
    3. the language: the session's, else the `lang` cookie, else `Accept-Language`, else the default."""

    def __init__(self, app: ASGIApp, sessions: Sessions) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        closed = state.closed_prefixes
        path = scope.get("path", "")
        if closed and any(path == prefix or path.startswith(prefix + "/") for prefix in closed):
            raise NotFoundException()
        session_id = lang_cookie = accept = None
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                for part in value.decode("latin-1").split(";"):
                    key, _, val = part.strip().partition("=")
                    if key == SESSION_COOKIE:
                        if session_id is None and 20 <= len(val) <= 100:  # the first plausible one
                            session_id = val
                    elif key == "lang":  # the last one
                        lang_cookie = val
            elif name == b"accept-language":
                accept = value.decode("latin-1")
        if self.sessions.applies_to(scope):
            session_id, original = await self.sessions.open(scope, session_id)
            send = self.sessions.saving(scope, send, session_id, original)
        session = scope.get("session")
        chosen = session.get("lang") if isinstance(session, dict) else None
        i18n.current_language.set(i18n.pick_language(chosen or lang_cookie, accept, state.settings.default_language))
        await self.app(scope, receive, send)


# Paths that serve files only: no CSRF cookie is set on them.
STATIC_PATHS = ["^/static/", "^/sw\\.js$", "^/manifest\\.webmanifest$", "^/favicon\\.ico$", "^/operator\\.css$"]
# Front-end packages served from node_modules under /static/vendor/<name>/ (no CDN), linked with static_url.
VENDOR_DIRS = {
    "vendor/htmx/": NODE_MODULES / "htmx.org" / "dist",
    "vendor/zxing/": NODE_MODULES / "zxing-wasm" / "dist",
    "vendor/chartjs/": NODE_MODULES / "chart.js" / "dist",
    "vendor/chartjs-matrix/": NODE_MODULES / "chartjs-chart-matrix" / "dist",
}


@lru_cache(maxsize=256)
def static_url(path: str) -> Markup:
    """The URL of a file under static/ (or a vendor package's, `vendor/htmx/...`), with its content's hash, so
    browsers may cache it for a year."""
    file = STATIC_DIR / path
    for prefix, directory in VENDOR_DIRS.items():
        if path.startswith(prefix):
            file = directory / path[len(prefix):]
    version = hashlib.sha256(file.read_bytes()).hexdigest()[:10] if file.is_file() else "0"
    return Markup(escape(f"/static/{path}?v={version}"))


_ERROR_CODES = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                415: "unsupported_media_type", 500: "server_error"}


def _error_page(request: Request, status: int, title: str, text: str, headers: dict[str, str] | None = None) -> Response:
    if request.headers.get("accept", "").startswith("application/json") or request.url.path.startswith("/api/"):
        return api_problem(request, status, f"http.{_ERROR_CODES.get(status, status)}", text, title, headers)
    return Template(
        template_name="error.html",
        context={"status": status, "title": title, "text": text, "user": None, "flashes": [],
                 "settings": request.app.state.settings, "request_id": request_id_of(request.scope)},
        status_code=status,
        headers=headers,
    )


def not_authorized(request: HTMXRequest, _: Exception) -> Response:
    if request.htmx:
        return Response(content="", status_code=401, headers={"HX-Redirect": f"/login?next={quote(request.url.path)}"})
    return Redirect(path=f"/login?next={quote(request.url.path)}", status_code=303)


def forbidden(request: Request, exc: Exception) -> Response:
    if "CSRF" in str(getattr(exc, "detail", "")):
        return _error_page(request, 403, i18n._("Formularz wygasł"),
                           i18n._("Odśwież stronę i wyślij formularz jeszcze raz."))
    return _error_page(request, 403, i18n._("Brak dostępu"), i18n._("Ta strona jest dostępna tylko dla uprawnionych osób."))


def not_found(request: Request, _: Exception) -> Response:
    return _error_page(request, 404, i18n._("Nie ma takiej strony"), i18n._("Sprawdź adres albo wróć na stronę główną."))


def http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 403 and "CSRF" in str(exc.detail):
        return _error_page(request, 403, i18n._("Formularz wygasł"),
                           i18n._("Odśwież stronę i wyślij formularz jeszcze raz."))
    if exc.status_code >= 500:
        return server_error(request, exc)
    if exc.status_code == 400:
        return _error_page(request, 400, i18n._("Nieprawidłowe żądanie"),
                           i18n._("Adres strony albo wysłane dane są nieprawidłowe."))
    # e.g. 405 carries `Allow`: keep the headers the exception names
    return _error_page(request, exc.status_code, i18n._("Nie udało się"), i18n._("Nie można obsłużyć tego żądania."),
                       headers=dict(exc.headers or {}))


def server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error_page(request, 500, i18n._("Coś poszło nie tak"),
                       i18n._("Przepraszamy, wystąpił błąd po naszej stronie. Spróbuj ponownie za chwilę."))


def provide_purposes(state: State) -> PaymentPurposes:
    """The payment purposes built at start-up (`web.purposes.payment_purposes`), for handlers that apply an outcome."""
    purposes: PaymentPurposes = state.purposes
    return purposes


def provide_erasure_steps(state: State) -> ErasureSteps:
    """Each area's GDPR erasure step (`web.purposes.gdpr_erasure_steps`), for the account's deletion."""
    steps: ErasureSteps = state.erasure_steps
    return steps


def provide_card_in_use(state: State) -> CardIsInUse:
    """The cards area's question answered by 5+1 (`web.purposes.card_in_use_question`), for unlinking a card."""
    question: CardIsInUse = state.card_in_use
    return question


def provide_gateway(state: State) -> PaymentGateway:
    """The payment operator's adapter built at start-up (`web.platform.gateway.build_payments`, from the registry
    `payments.GATEWAYS`), for handlers that open, check or settle a payment."""
    gateway: PaymentGateway = state.payments.gateway
    return gateway


def create_app(settings: Settings | None = None, engine: Engine | None = None, *, start_jobs: bool | None = None) -> Litestar:
    settings = settings or load_settings()
    for warning in start_warnings(settings):
        log.warning("WARNING: %s", warning)
    engine = engine or make_engine(settings.database_url)
    store = make_store(settings.redis_url, engine)
    purposes = payment_purposes(settings)
    erasure_steps = gdpr_erasure_steps()
    card_in_use = card_in_use_question()
    payments = build_payments(settings)
    env = environment()
    env.globals["static_url"] = static_url

    def on_startup(app: Litestar) -> None:
        run_guards_uncopied(app)  # also handlers registered after create_app
        app.state.settings = settings
        app.state.closed_prefixes = closed_prefixes(settings)
        app.state.engine = engine
        app.state.store = store
        app.state.limiter = RateLimiter(store)
        app.state.payments = payments
        app.state.purposes = purposes
        app.state.account_loader = load_account  # how the platform's sessions load the signed-in account
        app.state.erasure_steps = erasure_steps
        app.state.card_in_use = card_in_use

    async def start_sandbox(app: Litestar) -> None:
        if payments.sandbox is not None:
            await payments.sandbox.start()

    async def shut_down(app: Litestar) -> None:
        tap_connections = getattr(app.state, "tap_connections", None)
        if tap_connections is not None:
            await tap_connections.close()
        if payments.sandbox is not None:
            await payments.sandbox.stop()
        await payments.gateway.aclose()
        close_store = getattr(store, "_shutdown", None)  # the Redis store's connection pool
        if close_store is not None:
            await close_store()

    route_handlers: list[Any] = [
        pages.router,
        accounts.router,
        twofactor.router,
        cards.router,
        desk.router,
        five_plus_one.router,
        payment_pages.router, payment_history_pages.router,
        devices.router, purse_pages.router,
        tickets.router,
        inspection.router,
        card_applications.router,
        ops.router,
        office.router,
        create_static_files_router(path="/static", directories=[STATIC_DIR],
                                   cache_control=CacheControlHeader(max_age=31536000, public=True), include_in_schema=False, opt=FILES_OPT),
        create_static_files_router(path="/static/vendor/htmx", directories=[NODE_MODULES / "htmx.org" / "dist"],
                                   cache_control=CacheControlHeader(max_age=31536000, public=True), include_in_schema=False, opt=FILES_OPT,
                                   name="vendor_htmx"),
        create_static_files_router(path="/static/vendor/zxing", directories=[NODE_MODULES / "zxing-wasm" / "dist"],
                                   cache_control=CacheControlHeader(max_age=31536000, public=True), include_in_schema=False, opt=FILES_OPT,
                                   name="vendor_zxing"),
        create_static_files_router(path="/static/vendor/chartjs", directories=[VENDOR_DIRS["vendor/chartjs/"]],
                                   cache_control=CacheControlHeader(max_age=31536000, public=True), include_in_schema=False, opt=FILES_OPT,
                                   name="vendor_chartjs"),
        create_static_files_router(path="/static/vendor/chartjs-matrix", directories=[VENDOR_DIRS["vendor/chartjs-matrix/"]],
                                   cache_control=CacheControlHeader(max_age=31536000, public=True), include_in_schema=False, opt=FILES_OPT,
                                   name="vendor_chartjs_matrix"),
    ]
    if settings.dev_pages:
        route_handlers.append(dev.router)
        route_handlers.append(simulators.router)  # staff only; never a device credential in a page
    if payments.sandbox is not None:
        route_handlers.append(payments.sandbox.mount_handler(SANDBOX_PREFIX))

    csrf_config = CSRFConfig(
        secret=settings.secret_key.hex(),
        cookie_secure=settings.secure_cookies,
        cookie_httponly=False,
        cookie_samesite="lax",
        # Files carry no form: no CSRF cookie on them (a cookie-free, cacheable answer); probes and metrics neither.
        exclude=["/api/", "/payments/notify", "/sandbox-pay/", "^/healthz$", "^/readyz$", "^/metrics$", *STATIC_PATHS],
    )
    run_jobs = settings.scheduler if start_jobs is None else start_jobs
    lifespan = [jobs.scheduler_lifespan] if run_jobs else []

    app = Litestar(
        route_handlers=route_handlers,
        # What handlers are given by name (Litestar's dependency injection), each built once above by web.purposes
        # and kept in app.state: `purposes: NamedDependency[PaymentPurposes]`, `gateway`, `erasure_steps`,
        # `card_in_use`.
        dependencies={"purposes": Provide(provide_purposes, sync_to_thread=False),
                      "gateway": Provide(provide_gateway, sync_to_thread=False),
                      "erasure_steps": Provide(provide_erasure_steps, sync_to_thread=False),
                      "card_in_use": Provide(provide_card_in_use, sync_to_thread=False)},
        on_startup=[on_startup, start_sandbox],
        on_shutdown=[shut_down],
        lifespan=lifespan,
        template_config=TemplateConfig(engine=PageTemplates.from_environment(env)),
        # Files gzip-compressed (brotli would need a package not installed). Pages are not: each carries the
        # CSRF token beside text the visitor chose, and a compressed answer's size would leak the token (BREACH);
        # uncompressed a page is 4-8 KB.
        compression_config=CompressionConfig(backend="gzip", minimum_size=512, gzip_compress_level=6,
                                             exclude_opt_key=SKIP_COMPRESSION),
        opt={SKIP_COMPRESSION: True},
        middleware=[
            prometheus_config().middleware,
            DefineMiddleware(
                RequestSetup,
                sessions=Sessions(
                    store=store,
                    hours=settings.session_hours,
                    remember_days=settings.session_days_remember,
                    secure=settings.secure_cookies,
                ),
            ),
            # Innermost, where Litestar puts its own CSRF middleware (given as csrf_config); see web/platform/csrf.py.
            DefineMiddleware(CSRFWithSafeShortcut, config=csrf_config),
        ],
        before_request=csrf_bound_to_session,
        exception_handlers={
            NotAuthorizedException: not_authorized,
            PermissionDeniedException: forbidden,
            NotFoundException: not_found,
            HTTPException: http_error,
            Exception: server_error,
        },
        openapi_config=openapi_config(staff_only=settings.is_production),
        plugins=[HTMXPlugin(), ProblemDetailsPlugin()],  # every request is an HTMXRequest: `request.htmx` says whether htmx sent it
        debug=False,
    )
    on_startup(app)  # the same state before start-up: tests and tools call handlers on an app not yet started
    # Outermost: every answer (a 404 no route produced too) carries the request's id, and every log line of it.
    # The security headers are added there too (a 404 no route produced gets them as well).
    app.asgi_handler = with_request_id(app.asgi_handler, trust_header=bool(settings.trusted_proxies),
                                       more_headers=security_headers)
    return app


class _RouteMetrics(PrometheusMiddleware):
    """Requests counted by route (the path template, e.g. `/tickets/{ticket_id:int}`), method and status."""

    def _get_default_labels(self, request: Request) -> dict[str, str | int | float]:
        return {"method": request.method, "path": request.scope.get("path_template") or "other",
                "status_code": 200, "app_name": self._config.app_name}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Litestar's PrometheusMiddleware.__call__ (the same metrics and labels) without a `Request` object and
        label dicts per request, the metrics' children looked up once per label set (issue 18: it was a tenth of
        a page's CPU)."""
        config = self._config
        if scope["type"] != "http" or config.labels or config.exemplars:
            await super().__call__(scope, receive, send)
            return
        method = cast("HTTPScope", scope)["method"]
        if config.excluded_http_methods and method in config.excluded_http_methods:
            await self.app(scope, receive, send)
            return
        path = scope.get("path_template") or "other"
        children = self._children
        in_progress = children.get((method, path))
        if in_progress is None:
            labels = self._labels(method, path, 200)
            in_progress = children[(method, path)] = self.requests_in_progress(labels).labels(*labels.values())
        span = [time.perf_counter(), 0.0, 200]

        async def wrapped_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                span[2] = message["status"]
            elif message["type"] == "http.response.body":
                span[1] = time.perf_counter() - span[0]
            await send(message)

        in_progress.inc()
        try:
            await self.app(scope, receive, wrapped_send)
        finally:
            in_progress.dec()
            status = span[2]
            done = children.get((method, path, status))
            if done is None:
                if len(children) > 10_000:
                    children.clear()
                labels = self._labels(method, path, status)
                values = [*labels.values()]
                done = children[(method, path, status)] = (
                    self.request_count(labels).labels(*values), self.request_time(labels).labels(*values),
                    self.requests_error_count(labels).labels(*values) if status >= 500 else None)
            count, duration, errors = done
            if errors is not None:
                errors.inc()
            count.inc()
            duration.observe(span[1])

    def _labels(self, method: str, path: str, status: int | float) -> dict[str, str | int | float]:
        return {"method": method, "path": path, "status_code": status, "app_name": self._config.app_name}

    @property
    def _children(self) -> dict[tuple[Any, ...], Any]:
        children = self.__dict__.get("_label_children")
        if children is None:
            children = self.__dict__["_label_children"] = {}
        return children


def prometheus_config() -> PrometheusConfig:
    """HTTP metrics (`ekp_requests_total`, `ekp_request_duration_seconds`, ...): no I/O on the request's path."""
    return PrometheusConfig(app_name="ekp", prefix="ekp", middleware_class=_RouteMetrics,
                            exclude=["^/static/", "^/metrics$"],
                            buckets=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])


def _freeze_startup_heap(app: Litestar) -> None:
    """Move everything built at start-up (modules, SQLAlchemy's metadata, compiled templates, routes) out of
    the garbage collector's sight. Otherwise every full collection walks it again: measured 46 ms, a
    pause every visitor at that moment waits through."""
    gc.collect()
    gc.freeze()


def app_from_env() -> Litestar:
    """Entry point for ASGI servers (`uvicorn --factory web.app:app_from_env`, `ekp run`); a served
    process, unlike the many apps tests build, also freezes its start-up heap."""
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    clock.start_at(settings.test_clock)
    app = create_app(settings)
    app.on_startup.append(_freeze_startup_heap)
    return app
