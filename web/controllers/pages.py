"""Home, the Terms and GDPR notice, language choice, the PWA's service worker (health checks: `ops`)."""

from __future__ import annotations

from litestar import Request, Router, get, post
from litestar.response import File, Response, Template

from domain.tariff_5p1 import period_in_force
from web import clock, i18n
from web.http import current_user, form_of, in_transaction, page, redirect, safe_next, settings_of
from web.tariffs import tariff_5p1
from web.templating import TEMPLATES_DIR, theme_css

STATIC_DIR = TEMPLATES_DIR.parent / "static"


@get("/")
async def home(request: Request) -> Template:
    # The 5+1 prices in force today, from the tariff (never written into the page's text).
    return await page(request, "home.html", prices_5p1=period_in_force(tariff_5p1(), clock.today()))


@get("/terms")
async def terms(request: Request) -> Template:
    return await page(request, "legal/terms.html")


@get("/privacy")
async def privacy(request: Request) -> Template:
    return await page(request, "legal/privacy.html")


@get("/help")
async def help_page(request: Request) -> Template:
    return await page(request, "legal/help.html")


@get("/operator.css", include_in_schema=False)
async def operator_css(request: Request) -> Response:
    # Linked with its content's hash (templating.theme_url): cached like the static files.
    return Response(theme_css(settings_of(request).profile), media_type="text/css",
                    headers={"Cache-Control": "public, max-age=31536000"})


@get("/offline")
async def offline(request: Request) -> Template:
    return await page(request, "offline.html")


@post("/language")
async def set_language(request: Request) -> Response:
    form = await form_of(request)
    language = form.get("language", "")
    target = safe_next(form.get("next"), "/")
    response = redirect(target)
    if language in i18n.LANGUAGES:
        request.scope["session"]["lang"] = language
        settings = settings_of(request)
        response.set_cookie("lang", language, max_age=365 * 86400, httponly=True, samesite="lax",
                            secure=settings.secure_cookies or settings.is_production)
        user = await current_user(request)
        if user is not None:
            await in_transaction(request, _save_language, user.id, language)
    return response


def _save_language(session, user_id: int, language: str) -> None:  # type: ignore[no-untyped-def]
    from web.models import User

    user = session.get(User, user_id)
    if user is not None:
        user.language = language


@get("/sw.js", include_in_schema=False)
async def service_worker() -> File:
    # Served from the root so its scope covers the whole app.
    return File(path=STATIC_DIR / "sw.js", media_type="text/javascript", headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"})


@get("/manifest.webmanifest", include_in_schema=False)
async def manifest() -> File:
    return File(path=STATIC_DIR / "manifest.webmanifest", media_type="application/manifest+json")


@get("/favicon.ico", include_in_schema=False)
async def favicon() -> File:
    # Browsers ask for /favicon.ico on every page without a <link rel=icon> (e.g. the payment sandbox).
    return File(path=STATIC_DIR / "icons" / "icon-192.png", media_type="image/png",
                headers={"Cache-Control": "public, max-age=604800"})


router = Router(path="/", route_handlers=[home, terms, privacy, help_page, operator_css, offline, set_language, service_worker,
                                          manifest, favicon])
