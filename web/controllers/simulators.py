"""Device simulators in the PWA (staff and demo users): a bus validator and a parking meter that
call the real device API from the browser, with a simulator device credential the server provides."""

from __future__ import annotations

from litestar import Request, Router, get
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.response import Template

from web.http import current_user, in_transaction, page, settings_of
from web.services import purse as service

DEMO_DOMAIN = "@demo.ekp"


async def staff_or_demo(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    user = await current_user(connection)
    if user is None:
        raise NotAuthorizedException()
    if user.role not in ("staff", "inspector") and not user.email.endswith(DEMO_DOMAIN):
        raise PermissionDeniedException()


async def _simulator(request: Request, kind: str, template: str) -> Template:
    secret = settings_of(request).secret_key
    credential = await in_transaction(request, service.simulator_credential, secret, kind)
    tariff = service.purse_tariff()
    return await page(request, template, credential=credential, coins=tariff.top_up.meter_coins)


@get("/simulators/validator", guards=[staff_or_demo])
async def validator(request: Request) -> Template:
    return await _simulator(request, "validator", "simulators/validator.html")


@get("/simulators/meter", guards=[staff_or_demo])
async def meter(request: Request) -> Template:
    return await _simulator(request, "parking-meter", "simulators/meter.html")


router = Router(path="/", route_handlers=[validator, meter], include_in_schema=False)
