"""The inspector's side: the offline scanner page, the trust list it caches, card look-up for
plastic carriers, the verification endpoint for handheld terminals and the inspection log."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import Meta

from litestar import Request, Router, get, post
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.response import Response, Template

from domain import ticket_record as tr
from web.platform import clock
from web.tickets.controllers import product_name, state_text
from web.platform.http import api_problem, in_transaction, offline_headers, page, requires_role, settings_of, signed_in_user
from web.platform.i18n import _
from web.tickets import service

inspector = [requires_role("inspector")]
MAX_CODE_BASE64 = 1024
MAX_LOGGED_SCANS = 200
MAX_VERDICT_CODE = 64


# The bodies, typed and bounded (read with msgspec; anything else is a 400 problem, never a 5xx).
class VerifyIn(msgspec.Struct):
    code: Annotated[str, Meta(min_length=1, max_length=MAX_CODE_BASE64)]  # the scanned bytes, base64


class ScanIn(msgspec.Struct):
    """One verdict the scanner reached offline; an entry of another shape is skipped, not a reason to refuse."""

    code: Annotated[str, Meta(min_length=1, max_length=MAX_VERDICT_CODE)]
    at: Annotated[float, Meta(ge=0, le=2**33)]  # seconds since 1970
    ticket_id: int | None = None  # 1..2^31-1; anything else is logged without it


class LogIn(msgspec.Struct):
    scans: Annotated[list[Any], Meta(max_length=MAX_LOGGED_SCANS)]


BodyT = TypeVar("BodyT", VerifyIn, LogIn)


def reason_texts() -> dict[str, str]:
    """Verdict code -> what the inspector reads on the full-screen verdict."""
    return {
        "valid": _("Bilet ważny"),
        "expired": _("Bilet wygasł"),
        "not_yet_valid": _("Bilet jeszcze nie obowiązuje"),
        "revoked": _("Bilet unieważniony"),
        "forged": _("Kod podrobiony: zły podpis wydawcy"),
        "bad_device_signature": _("Kod z innego telefonu: zły podpis urządzenia"),
        "stale": _("Kod nieaktualny (zrzut ekranu?)"),
        "unknown_key": _("Nieznany klucz wydawcy: odśwież listę kluczy"),
        "malformed": _("To nie jest kod biletu EKP"),
        "unsupported_version": _("Nieobsługiwana wersja kodu: zaktualizuj aplikację"),
    }


def revocation_texts() -> dict[str, str]:
    """Why a ticket (or this phone's code of it) is revoked (R-TKT-1, R-TKT-4), after "Bilet unieważniony: "."""
    return {
        "device_unbound": _("telefon odłączony od biletu (kod z telefonu, który już nie jest przypisany)"),
        "cancelled": _("bilet anulowany"),
        "refunded": _("zwrot płatności za bilet"),
        "chargeback": _("płatność za bilet cofnięta przez bank (chargeback)"),
        "card_blocked": _("karta zablokowana"),
        "other": _("unieważniony przez operatora"),
    }


def verdict_message(code: str, revocation: str | None) -> str:
    text = reason_texts().get(code, code)
    if code == "revoked" and revocation:
        text = f"{text}: {revocation_texts().get(revocation, revocation)}"
    return text


def scanner_texts() -> dict[str, object]:
    """Everything the offline scanner (static/js/inspect.js) shows, in the page's language."""
    reasons = reason_texts()
    reasons.update({"no_ticket": _("Brak ważnego biletu"), "card_not_found": _("Nie ma takiej karty")})
    return {
        "reasons": reasons,
        "revocations": revocation_texts(),
        "products": {"5P1-N": product_name("5P1-N"), "5P1-U": product_name("5P1-U")},
        "valid": _("WAŻNY"),
        "invalid": _("NIEWAŻNY"),
        "labels": {"initials": _("Inicjały"), "birth_year": _("Rok urodzenia"), "product": _("Bilet"),
                   "validity": _("Ważny"), "ticket": _("Nr biletu"), "presented": _("Kod z godziny")},
        "trust_age": _("Lista kluczy i unieważnień z: {when}"),
        "trust_old": _("Lista ma ponad 24 godziny: połącz się z internetem, aby ją odświeżyć."),
        "no_trust": _("Brak listy kluczy w tym telefonie: połącz się z internetem i odśwież stronę."),
        "camera_error": _("Nie udało się włączyć aparatu. Zezwól stronie na użycie aparatu."),
        "scanning": _("Szukam kodu…"),
        "stopped": _("Aparat wyłączony."),
    }


def verdict_json(checked: service.CheckedCode) -> dict[str, object]:
    verdict = checked.verdict
    revocation = verdict.revocation.value if verdict.revocation else None
    body: dict[str, object] = {
        "valid": verdict.valid,
        "code": verdict.code,
        "reason": verdict.reason.value if verdict.reason else None,
        "revocation": revocation,
        "message": verdict_message(verdict.code, revocation),
        "ticket": None,
        "presented_at": verdict.presented_at.isoformat() if verdict.presented_at else None,
        "inspection_id": checked.inspection_id,
    }
    fields = verdict.ticket
    if fields is not None:
        last_day = (clock.to_local(fields.valid_until) - timedelta(minutes=1)).date()
        body["ticket"] = {
            "ticket_id": fields.ticket_id,
            "product_code": fields.product_code,
            "product_name": product_name(fields.product_code),
            "holder_initials": fields.holder_initials,
            "holder_name": checked.holder_name,
            "birth_year": fields.birth_year,
            "valid_from": fields.valid_from.isoformat(),
            "valid_until": fields.valid_until.isoformat(),
            "first_day": clock.to_local(fields.valid_from).date().isoformat(),
            "last_day": last_day.isoformat(),
            "issuer_key_id": fields.key_id,
        }
    return body


def _api_problem(request: Request, status: int, code: str, detail: str,
                 headers: dict[str, str] | None = None) -> Response:
    """An error of the inspection API, shaped like every API error (`Problem` in /schema/openapi.json)."""
    return api_problem(request, status, f"inspection.{code}", detail, headers=headers)


def _api_unauthorized(request: Request, exc: Exception) -> Response:
    if isinstance(exc, PermissionDeniedException):
        return _api_problem(request, 403, "forbidden", _("Tylko dla kontrolerów."))
    return _api_problem(request, 401, "unauthorized", _("Zaloguj się jako kontroler."),
                        {"WWW-Authenticate": 'Cookie realm="ekp-inspection"'})


def _body(raw: bytes, kind: type[BodyT]) -> BodyT | None:
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.DecodeError:  # not JSON, or outside the type's bounds (ValidationError is a DecodeError)
        return None


def _is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


@get("/inspect", guards=inspector)
async def inspect_page(request: Request) -> Template:
    user = await signed_in_user(request)
    recent = await in_transaction(request, service.recent_inspections, user.id)
    response = await page(request, "inspection/scan.html", texts=scanner_texts(), recent=recent,
                          methods={"scan": _("skan"), "terminal": _("terminal"), "card": _("karta")},
                          freshness_seconds=tr.DEFAULT_FRESHNESS_SECONDS)
    response.headers.update(offline_headers(request, user))
    return response


@get("/inspect/card", guards=inspector)
async def card_lookup(request: Request) -> Template:
    user = await signed_in_user(request)
    client_code = (request.query_params.get("client_code") or "").strip()
    results = None
    error = None
    if client_code:
        if not client_code.isalnum() or len(client_code) > 20:
            error = _("Kod klienta składa się z cyfr i liter (do 20 znaków).")
        else:
            results = await in_transaction(request, service.look_up_card, user.id, client_code, clock.today())
    return await page(request, "inspection/card.html", client_code=client_code, results=results, error=error,
                      state_text=state_text, product_name=product_name, status_code=422 if error else 200)


@get("/api/inspection/trust-list", guards=inspector)
async def trust_list(request: Request) -> Response:
    keys = service.issuer_keys_for(settings_of(request))
    document = await in_transaction(request, service.trust_list_document, keys, clock.now())
    return Response(document, headers={"Cache-Control": "no-store"})


@post("/api/inspection/verify", guards=inspector, status_code=200)
async def verify_code(request: Request) -> Response:
    """JSON {"code": base64 of the scanned Aztec bytes} -> the verdict (and an inspection log entry)."""
    if not _is_json(request):
        return _api_problem(request, 415, "not_json", _("Wyślij JSON (application/json)."))
    body = _body(await request.body(), VerifyIn)
    if body is None:
        return _api_problem(request, 400, "no_code", _("Brak pola code (base64) albo jest za długie."))
    code = body.code
    try:
        raw = base64.b64decode(code.replace("-", "+").replace("_", "/") + "=" * (-len(code) % 4), validate=True)
    except (ValueError, binascii.Error):
        return _api_problem(request, 400, "bad_base64", _("Pole code nie jest poprawnym base64."))
    user = await signed_in_user(request)
    keys = service.issuer_keys_for(settings_of(request))
    checked = await in_transaction(request, service.check_code, keys, user.id, raw, clock.now(), "terminal")
    return Response(verdict_json(checked), headers={"Cache-Control": "no-store"})


@post("/api/inspection/log", guards=inspector, status_code=200)
async def log_scans(request: Request) -> Response:
    """The scanner app reports verdicts it reached offline: {"scans": [{"code", "ticket_id", "at"}]}."""
    if not _is_json(request):
        return _api_problem(request, 415, "not_json", _("Wyślij JSON (application/json)."))
    body = _body(await request.body(), LogIn)
    if body is None:
        return _api_problem(request, 400, "bad_scans", _("Nieprawidłowa lista skanów."))
    scans: list[tuple[str, int | None, datetime]] = []
    for item in body.scans:
        if isinstance(item, dict) and not (item.get("ticket_id") is None or (
                type(item["ticket_id"]) is int and 0 < item["ticket_id"] < 2**31)):
            item = {**item, "ticket_id": None}
        try:
            scan = msgspec.convert(item, ScanIn)
            moment = datetime.fromtimestamp(scan.at, UTC)
        except (msgspec.ValidationError, OverflowError, ValueError, OSError):
            continue
        scans.append((scan.code, scan.ticket_id, moment))
    user = await signed_in_user(request)
    count = await in_transaction(request, service.record_scans, user.id, scans, clock.now())
    return Response({"logged": count})


api_router = Router(path="/", route_handlers=[trust_list, verify_code, log_scans],
                    exception_handlers={NotAuthorizedException: _api_unauthorized,
                                        PermissionDeniedException: _api_unauthorized})
pages_router = Router(path="/", route_handlers=[inspect_page, card_lookup])
router = Router(path="/", route_handlers=[pages_router, api_router])
