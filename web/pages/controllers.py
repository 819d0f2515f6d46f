"""Home, the Terms and GDPR notice, language choice, the PWA's service worker (health checks: `ops`)."""

from __future__ import annotations

from litestar import Request, Router, get, post
from litestar.response import File, Response, Template

from domain import ticket_record as tr
from domain.tariff_5p1 import period_in_force
from web.platform import clock
from web.platform import i18n
from web.five_plus_one.interface import billing_policy
from web.tickets import interface as ticket_texts
from web.platform.http import (FILES_OPT, current_user, form_of, in_transaction, offline_headers, page, redirect,
                      requires_login, safe_next, session_data, settings_of, signed_in_user)
from web.pages import home as home_service
from web.platform.templating import WEB_DIR, theme_css

STATIC_DIR = WEB_DIR.parent / "static"


@get("/")
async def home(request: Request) -> Template | Response:
    if await current_user(request) is not None:
        return redirect("/home")  # signed in: the start page (also the installed app's start_url)
    # The 5+1 prices in force today, from the tariff (never written into the page's text).
    return await page(request, "home.html", prices_5p1=period_in_force(settings_of(request).tariff_5p1, clock.today()))


@get("/home", guards=[requires_login])
async def start(request: Request) -> Template:
    """The signed-in start page: for a passenger the ticket to show, the e-purse, the next charge and what
    needs doing; kept by the service worker for offline use (per account)."""
    user = await signed_in_user(request)
    assert user is not None
    view = None
    if user.role == "passenger":
        view = await in_transaction(request, home_service.home, user.id, clock.today(), billing_policy(settings_of(request)),
                                    settings_of(request).tariff_5p1)
    response = await page(request, "home/start.html", view=view, updated_at=clock.now(), today=clock.today(),
                          state_text=ticket_texts.state_text, product_name=ticket_texts.product_name,
                          refresh_seconds=tr.REFRESH_SECONDS, freshness_seconds=tr.DEFAULT_FRESHNESS_SECONDS)
    response.headers.update(offline_headers(request, user))
    return response


@get("/terms")
async def terms(request: Request) -> Template:
    return await page(request, "legal/terms.html")


@get("/privacy")
async def privacy(request: Request) -> Template:
    return await page(request, "legal/privacy.html")


@get("/help")
async def help_page(request: Request) -> Template:
    return await page(request, "legal/help.html")


@get("/operator.css", include_in_schema=False, opt=FILES_OPT)
async def operator_css(request: Request) -> Response:
    # Linked with its content's hash (templating.theme_url): cached like the static files.
    return Response(theme_css(settings_of(request).profile), media_type="text/css",
                    headers={"Cache-Control": "public, max-age=31536000"})


@get("/offline")
async def offline(request: Request) -> Template:
    # Cached by the service worker at install, for whoever is signed in then: shown without account links.
    return await page(request, "offline.html", user=None, offline_page=True)


@post("/language")
async def set_language(request: Request) -> Response:
    form = await form_of(request)
    language = form.get("language", "")
    target = safe_next(form.get("next"), "/")
    response = redirect(target)
    if language in i18n.LANGUAGES:
        session_data(request)["lang"] = language
        settings = settings_of(request)
        response.set_cookie("lang", language, max_age=365 * 86400, httponly=True, samesite="lax",
                            secure=settings.secure_cookies or settings.is_production)
        user = await current_user(request)
        if user is not None:
            await in_transaction(request, _save_language, user.id, language)
    return response


def _save_language(session, user_id: int, language: str) -> None:
    from web.accounts.interface import User

    user = session.get(User, user_id)
    if user is not None:
        user.language = language


@get("/sw.js", include_in_schema=False, opt=FILES_OPT)
async def service_worker() -> File:
    # Served from the root so its scope covers the whole app.
    return File(path=STATIC_DIR / "sw.js", media_type="text/javascript", headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"})


@get("/manifest.webmanifest", include_in_schema=False, opt=FILES_OPT)
async def manifest() -> File:
    return File(path=STATIC_DIR / "manifest.webmanifest", media_type="application/manifest+json")


@get("/favicon.ico", include_in_schema=False)
async def favicon() -> File:
    # Browsers ask for /favicon.ico on every page without a <link rel=icon> (e.g. the payment sandbox).
    return File(path=STATIC_DIR / "icons" / "icon-192.png", media_type="image/png",
                headers={"Cache-Control": "public, max-age=604800"})


router = Router(path="/", route_handlers=[home, start, terms, privacy, help_page, operator_css, offline, set_language,
                                          service_worker, manifest, favicon])
