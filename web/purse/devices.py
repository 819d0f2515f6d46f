"""The device API (JSON): bus validators and parking meters of the Kołobrzeg e-purse card.

Every request carries `Authorization: Bearer <device_id>.<token>` (from `ekp devices add`). Every
event that moves money carries a device-generated `event_id` and the device's time `at`: sending the
same event again (a retry, a re-uploaded offline batch) returns the stored response and books nothing
(the response then has the header `Idempotent-Replay: true`). Responses carry exactly what the
device's display shows; errors are JSON with a Polish `detail`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from functools import partial
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from litestar import Request, Response, Router, post
from litestar.exceptions import ValidationException
from litestar.params import JSONBody
from sqlalchemy.exc import IntegrityError

from web.platform import clock
from web.platform.http import api_problem, in_transaction, settings_of
from web.platform.observe import count_taps
from web.platform.messages import message
from web.purse import service
from web.purse import taps_on_loop

MAX_BATCH = 500
MAX_COINS = 2000
MAX_COIN = 100_000
MAX_PRESSES = 500
MAX_BUTTON_PRESSES = 1000


# The limits below are enforced when the body is read (a body outside them: 400, `purse.device.invalid`) and
# published in the OpenAPI document at /schema/openapi.json (see web/platform/openapi.py for what the models cannot say).
EventId = Annotated[str, Meta(min_length=1, max_length=64, description="The device's own id of this event")]
Moment = Annotated[str, Meta(min_length=1, max_length=40, description="The device's time (RFC 3339; without an "
                                                                       "offset: Kołobrzeg local time)")]
CardNumber = Annotated[str, Meta(max_length=20)]
PlaceId = Annotated[str, Meta(min_length=1, max_length=32)]
Presses = Annotated[int, Meta(ge=0, le=MAX_PRESSES)]
Coins = Annotated[list[int], Meta(max_length=MAX_COINS, description=f"Coins in grosze (each 0-{MAX_COIN}), "
                                                                      "in the order inserted")]


class Buttons(msgspec.Struct):
    """Buttons pressed before the tap: T (fare level, 1..4 presses), B (1 baggage/animal, 2 suburban,
    3 short ride), S (balance check)."""

    t: Annotated[int, Meta(ge=0, le=MAX_BUTTON_PRESSES)] = 0
    b: Annotated[int, Meta(ge=0, le=MAX_BUTTON_PRESSES)] = 0
    s: bool = False


class TapIn(msgspec.Struct):
    event_id: EventId
    at: Moment
    vehicle_id: PlaceId
    stop_id: PlaceId
    card_number: CardNumber | None = None  # None: a card that is not a Kołobrzeg city card
    buttons: Buttons = msgspec.field(default_factory=Buttons)


class TapBatchIn(msgspec.Struct):
    taps: Annotated[list[TapIn], Meta(min_length=1, max_length=MAX_BATCH)]


class MeterCardIn(msgspec.Struct):
    at: Moment  # when the card went into the meter
    card_number: CardNumber | None = None


class MeterQuoteIn(msgspec.Struct):
    at: Moment
    presses: Presses
    card_number: CardNumber | None = None


class MeterAcceptIn(msgspec.Struct):
    event_id: EventId
    at: Moment
    presses: Presses
    card_number: CardNumber | None = None


class MeterTopUpIn(msgspec.Struct):
    event_id: EventId
    at: Moment
    coins: Coins
    card_number: CardNumber | None = None


class MeterCancelIn(msgspec.Struct):
    coins: Coins = msgspec.field(default_factory=list)


class DeviceProblem(Exception):
    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status, self.code = status, code


def _problem(request: Request, exc: Exception) -> Response:
    if isinstance(exc, DeviceProblem):
        status, code = exc.status, exc.code
    else:
        status, code = 400, "purse.device.invalid"
    headers = {"WWW-Authenticate": 'Bearer realm="ekp-devices"'} if status == 401 else None
    return api_problem(request, status, code, message(code), headers=headers)


def _credential(request: Request) -> str:
    scheme, _sep, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise DeviceProblem(401, "purse.device.unauthorized")
    return value.strip()


def _text(value: str | None, limit: int, *, required: bool = True) -> str | None:
    if value is None or not value.strip():
        if required:
            raise DeviceProblem(422, "purse.device.invalid")
        return None
    value = value.strip()
    if len(value) > limit or not value.isprintable():  # control characters (a NUL byte) are no id
        raise DeviceProblem(422, "purse.device.invalid")
    return value


def _moment(text: str) -> datetime:
    """The device's time, aware (a device without a zone reports Kołobrzeg local time). Not a date and time
    (`"at": 0`, text): 400. The first and last representable years are refused (422) before any conversion
    between zones could overflow: 9999 as a time in the future (R-VAL-8), year 1 as invalid."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise DeviceProblem(400, "purse.device.invalid") from None
    if value.year >= 9999:
        raise DeviceProblem(422, "purse.device.future_event")
    if value.year <= 1:
        raise DeviceProblem(422, "purse.device.invalid")
    return value.replace(tzinfo=clock.WARSAW) if value.tzinfo is None else value


def _coins(coins: list[int]) -> list[int]:
    if len(coins) > MAX_COINS or any(c < 0 or c > MAX_COIN for c in coins):
        raise DeviceProblem(400, "purse.device.invalid")
    return coins


async def has_device_credential(connection: Any, _handler: Any) -> None:
    """A guard: a request without a device credential is refused (401) before its body is read."""
    _credential(connection)


async def _run(request: Request, kind: str, use_case: Any, *args: Any) -> tuple[dict[str, Any], bool]:
    """Authenticate the device and run `use_case(session, device, *args)` in one transaction; a
    concurrent duplicate of the same event (unique key) is answered from the stored response."""
    credential = _credential(request)

    def run(session: Any) -> tuple[dict[str, Any], bool]:
        device = service.authenticate_device(session, credential, kind)
        if device is None:
            raise DeviceProblem(401, "purse.device.unauthorized")
        result = use_case(session, device, *args)
        return result if isinstance(result, tuple) else (result, False)

    try:
        try:
            return await in_transaction(request, run)
        except IntegrityError:
            return await in_transaction(request, run)
    except service.TapProblem as problem:  # R-VAL-7/8: another event under a used id, a clock far ahead
        raise DeviceProblem(problem.status, f"purse.device.{problem.code}") from None


def tap_connections(request: Request) -> taps_on_loop.TapConnections:
    """The app's connections for taps (`taps_on_loop`), made on first use on this event loop; closed at shutdown."""
    pool = getattr(request.app.state, "tap_connections", None)
    fresh = taps_on_loop.tap_connections(request.app.state.engine) if pool is None else pool.for_this_loop()
    if fresh is not pool:
        request.app.state.tap_connections = fresh
    return fresh


TapResult = tuple[dict[str, Any], bool] | service.TapProblem


async def _run_taps(request: Request, taps: list[service.Tap]) -> list[TapResult]:
    """Validator taps, each in its own transaction, in the order given, on the event loop (`taps_on_loop`, the one
    way a tap is booked); a tap refused as a whole (R-VAL-7, R-VAL-8) gives its `service.TapProblem` in its place
    and the others go on."""
    credential = _credential(request)
    pool = tap_connections(request)
    tariff = settings_of(request).purse_tariff
    results: list[TapResult] = []
    try:
        for index, tap in enumerate(taps):
            if index:
                await asyncio.sleep(0)  # a long batch lets other requests in between its taps
            try:
                results.append(await taps_on_loop.tap_with_credential(pool, credential, tap, tariff))
            except service.TapProblem as problem:
                results.append(problem)
    except service.DeviceRefused:
        raise DeviceProblem(401, "purse.device.unauthorized") from None
    return results


def _answer(result: tuple[dict[str, Any], bool]) -> Response:
    body, replayed = result
    return Response(body, status_code=200, headers={"Idempotent-Replay": "true" if replayed else "false"})


def _tap(tap: TapIn) -> service.Tap:
    return service.Tap(
        event_id=_text(tap.event_id, 64),  # type: ignore[arg-type]
        at=_moment(tap.at),
        card_number=_text(tap.card_number, 20, required=False),
        vehicle_id=_text(tap.vehicle_id, 32),  # type: ignore[arg-type]
        stop_id=_text(tap.stop_id, 32),  # type: ignore[arg-type]
        t=tap.buttons.t, b=tap.buttons.b, s=tap.buttons.s,
    )


@post("/validator/taps", status_code=200, summary="A card tapped on a bus validator")
async def validator_tap(request: Request, data: JSONBody[TapIn]) -> Response:
    """Charges the fare chosen by the buttons (or shows the balance for S); the response is the display:
    `message`, `amount` and `balance` in grosze (with `*_text` in złoty), `display` lines and `signal`.
    `stop_id` is the stop the bus is at, or the one it last left: companions, baggage and animals are paid
    at the holder's boarding stop only (R-VAL-4). The same `event_id` again with the same content is a replay;
    with other content it is refused with 409 (R-VAL-7). `at` more than 5 minutes ahead of the server is
    refused with 422; a tap older than 3 days is booked and flagged for staff (R-VAL-8)."""
    [result] = await _run_taps(request, [_tap(data)])
    count_taps([result], service.TapProblem)
    if isinstance(result, service.TapProblem):
        raise DeviceProblem(result.status, f"purse.device.{result.code}")
    return _answer(result)


@post("/validator/batch", status_code=200, summary="Taps buffered while the validator was offline")
async def validator_batch(request: Request, data: JSONBody[TapBatchIn]) -> Response:
    """Applied one by one in the order sent; every tap is idempotent by its `event_id`, so a batch
    can be uploaded again safely. Returns `results` in the same order; a tap refused as a whole (an event id
    already used for another event: `status` 409; a time in the future: 422) has `status`, `code` and
    `message` in its place, and the others are applied."""
    taps = [_tap(tap) for tap in data.taps]
    results = await _run_taps(request, taps)
    count_taps(results, service.TapProblem)
    return Response({"results": [_batch_line(tap, result) for tap, result in zip(taps, results)]}, status_code=200)


def _batch_line(tap: service.Tap, result: TapResult) -> dict[str, Any]:
    """A batch's result for one tap: its display, or why the event was refused as a whole (nothing booked)."""
    if isinstance(result, service.TapProblem):
        return {"event_id": tap.event_id, "accepted": False, "status": result.status, "code": result.code,
                "message": message(f"purse.device.{result.code}"), "replayed": False}
    body, replayed = result
    return {**body, "replayed": replayed}


@post("/meter/insert", status_code=200, summary="A card inserted into a parking meter")
async def meter_insert(request: Request, data: JSONBody[MeterCardIn]) -> Response:
    """R-PARK-1: the card's content, or "ZŁA KARTA" for any other card (nothing is charged)."""
    number, at = _text(data.card_number, 20, required=False), _moment(data.at)
    tariff = settings_of(request).purse_tariff
    return _answer(await _run(request, "parking-meter", lambda s, _d: service.meter_insert(s, number, at, tariff=tariff)))


@post("/meter/quote", status_code=200, summary='The fee after "+" pressed n times')
async def meter_quote(request: Request, data: JSONBody[MeterQuoteIn]) -> Response:
    """R-PARK-2: OPŁATA and OPŁACONO ZA (to the minute); a "+" beyond the balance is refused."""
    number, at, presses = _text(data.card_number, 20, required=False), _moment(data.at), data.presses
    tariff = settings_of(request).purse_tariff
    return _answer(await _run(request, "parking-meter", lambda s, _d: service.meter_quote(s, number, at, presses, tariff=tariff)))


@post("/meter/accept", status_code=200, summary="AKCEPTUJ: print the parking ticket")
async def meter_accept(request: Request, data: JSONBody[MeterAcceptIn]) -> Response:
    """R-PARK-3: deducts the fee and returns the ticket lines; idempotent by `event_id` (the same event again
    gets the same answer; another event under a used id 409, R-VAL-7); `at` more than 5 minutes ahead of
    the server is refused with 422 (R-VAL-8)."""
    args = (_text(data.event_id, 64), _text(data.card_number, 20, required=False), _moment(data.at),
            data.presses)
    return _answer(await _run(request, "parking-meter", partial(service.meter_accept, tariff=settings_of(request).purse_tariff),
                               *args))


@post("/meter/top-up", status_code=200, summary="DOŁADUJ, coins, AKCEPTUJ: top up the card")
async def meter_top_up(request: Request, data: JSONBody[MeterTopUpIn]) -> Response:
    """R-TOP-2..4: coins 0.10–5 zł, 2–200 zł, credit repaid first, bonus for personal cards; returns the
    receipt lines; idempotent by `event_id` (another event under a used id: 409, R-VAL-7); `at` more than
    5 minutes ahead of the server: 422 (R-VAL-8)."""
    args = (_text(data.event_id, 64), _text(data.card_number, 20, required=False), _moment(data.at), _coins(data.coins))
    return _answer(await _run(request, "parking-meter", partial(service.meter_top_up, tariff=settings_of(request).purse_tariff),
                               *args))


@post("/meter/cancel", status_code=200, summary="ANULUJ: return the card and the coins")
async def meter_cancel(request: Request, data: JSONBody[MeterCancelIn]) -> Response:
    coins = _coins(data.coins)
    return _answer(await _run(request, "parking-meter", lambda _s, _d: service.meter_cancel(coins)))


router = Router(
    path="/api/devices",
    route_handlers=[validator_tap, validator_batch, meter_insert, meter_quote, meter_accept, meter_top_up, meter_cancel],
    guards=[has_device_credential],
    exception_handlers={DeviceProblem: _problem, ValidationException: _problem},
    tags=["devices"],
    security=[{"device": []}],
)
