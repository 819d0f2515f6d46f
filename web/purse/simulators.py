"""Device simulators in the PWA (staff only, and only where dev pages are on): a bus validator and a parking
meter. The pages post to the endpoints below, which act as the simulator device on the server
(`web.purse.simulator`): no device credential ever reaches a browser, and a simulator acts only on demo
cards. Requests and answers have the device API's shape (web.purse.devices)."""

from __future__ import annotations

from functools import partial
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException, ValidationException
from litestar.handlers import BaseRouteHandler
from litestar.params import JSONBody
from litestar.response import Template

from web.purse.devices import (
    DeviceProblem,
    MeterAcceptIn,
    MeterCancelIn,
    MeterCardIn,
    MeterQuoteIn,
    MeterTopUpIn,
    TapIn,
    _answer,
    _coins,
    _moment,
    _problem,
    _tap,
    _text,
    tap_connections,
)
from web.platform.http import current_user, in_transaction, page, settings_of
from web.platform.messages import message
from web.purse import service as purse_service
from web.purse import simulator as service
from web.purse import taps_on_loop


async def staff_only(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    user = await current_user(connection)
    if user is None:
        raise NotAuthorizedException()
    if user.role != "staff":
        raise PermissionDeniedException()


def _refused(request: Request, exc: Exception) -> Response:
    code = exc.code if isinstance(exc, service.SimulatorRefused) else "simulator.real_card"
    return Response({"status": 403, "title": message("simulator.title"), "detail": message(code), "code": code},
                    status_code=403)


async def _act(request: Request, use_case: Any, *args: Any) -> Response:
    try:
        return _answer(await in_transaction(request, use_case, *args))
    except purse_service.TapProblem as problem:  # R-VAL-7/8, as the device API answers them
        raise DeviceProblem(problem.status, f"purse.device.{problem.code}") from None


async def _page(request: Request, kind: str, template: str) -> Template:
    disabled = await in_transaction(request, service.is_disabled, kind)
    return await page(request, template, disabled=disabled, coins=settings_of(request).purse_tariff.top_up.meter_coins)


@get("/validator")
async def validator(request: Request) -> Template:
    return await _page(request, "validator", "simulators/validator.html")


@get("/meter")
async def meter(request: Request) -> Template:
    return await _page(request, "parking-meter", "simulators/meter.html")


@post("/validator/tap", status_code=200)
async def validator_tap(request: Request, data: JSONBody[TapIn]) -> Response:
    tap = _tap(data)
    device = await in_transaction(request, service.validator, tap.card_number)
    try:
        return _answer(await taps_on_loop.tap_as(tap_connections(request), device, tap,
                                                       settings_of(request).purse_tariff))
    except purse_service.TapProblem as problem:  # R-VAL-7/8, as the device API answers them
        raise DeviceProblem(problem.status, f"purse.device.{problem.code}") from None
    except purse_service.DeviceRefused:  # disabled a moment ago
        raise service.SimulatorRefused("simulator.disabled") from None
    except purse_service.SimulatorCardRefused:
        raise service.SimulatorRefused("simulator.real_card") from None


@post("/meter/insert", status_code=200)
async def meter_insert(request: Request, data: JSONBody[MeterCardIn]) -> Response:
    return await _act(request, partial(service.meter_insert, tariff=settings_of(request).purse_tariff), _text(data.card_number, 20, required=False), _moment(data.at))


@post("/meter/quote", status_code=200)
async def meter_quote(request: Request, data: JSONBody[MeterQuoteIn]) -> Response:
    return await _act(request, partial(service.meter_quote, tariff=settings_of(request).purse_tariff), _text(data.card_number, 20, required=False), _moment(data.at),
                      max(0, min(data.presses, 500)))


@post("/meter/accept", status_code=200)
async def meter_accept(request: Request, data: JSONBody[MeterAcceptIn]) -> Response:
    return await _act(request, partial(service.meter_accept, tariff=settings_of(request).purse_tariff), _text(data.event_id, 64), _text(data.card_number, 20, required=False),
                      _moment(data.at), max(0, min(data.presses, 500)))


@post("/meter/top-up", status_code=200)
async def meter_top_up(request: Request, data: JSONBody[MeterTopUpIn]) -> Response:
    return await _act(request, partial(service.meter_top_up, tariff=settings_of(request).purse_tariff), _text(data.event_id, 64), _text(data.card_number, 20, required=False),
                      _moment(data.at), _coins(data.coins))


@post("/meter/cancel", status_code=200)
async def meter_cancel(request: Request, data: JSONBody[MeterCancelIn]) -> Response:
    return await _act(request, service.meter_cancel, _coins(data.coins))


router = Router(
    path="/simulators",
    route_handlers=[validator, meter, validator_tap, meter_insert, meter_quote, meter_accept, meter_top_up, meter_cancel],
    guards=[staff_only],
    exception_handlers={DeviceProblem: _problem, ValidationException: _problem, service.SimulatorRefused: _refused},
    include_in_schema=False,
)
