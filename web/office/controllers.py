"""The operator's back office (`/office`, role admin, two-factor sign-in): dashboards with charts, tables and
CSV exports; devices, the card registry, tariffs, accounts and the audit log. In Polish and English (the
i18n catalogue, like the rest of the app)."""

from __future__ import annotations

from datetime import date
from functools import partial
from typing import Annotated, Any

from litestar import Request, Router, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, PathParameter
from litestar.response import Response, Template

from domain.money import MoneyFormatError, parse_pln
from domain.office import MAX_EXPORT_ROWS, Period, csv_text, read_period
from web.platform import clock
from web.platform.http import (
    RowId,
    client_ip,
    current_user,
    flash,
    form_of,
    in_transaction,
    page,
    redirect,
    requires_role,
    settings_of,
)
from web.platform.i18n import N_, _
from web.office import queries, service
from web.office.service import OfficeProblem
from web.purse.interface import DEVICE_KINDS

admin = [requires_role("admin")]

PROBLEMS = {
    "office.date_format": N_("Podaj datę w formacie RRRR-MM-DD."),
    "office.period_reversed": N_("Data końcowa nie może być wcześniejsza niż początkowa."),
    "office.period_too_long": N_("Okres może mieć najwyżej 366 dni."),
    "office.device_kind": N_("Wybierz rodzaj urządzenia: kasownik albo parkometr."),
    "office.device_name_required": N_("Podaj nazwę urządzenia (np. numer pojazdu albo ulicę parkometru)."),
    "office.device_name_invalid": N_("Nazwa urządzenia może mieć najwyżej 80 znaków, bez znaków sterujących."),
    "office.no_device": N_("Nie ma takiego urządzenia albo jest już wyłączone."),
    "office.cash_amount": N_("Podaj kwotę w złotych, np. 120 albo 120,50 (najwyżej 100 000 zł)."),
    "office.cash_future": N_("Gotówkę wpisuje się za dzień, który już był."),
    "office.cash_not_meter": N_("Gotówkę wpisuje się tylko dla parkometru."),
    "office.registry_too_large": N_("Plik jest za duży (najwyżej 20 MB)."),
    "office.registry_empty": N_("Wybierz plik CSV z rejestrem kart."),
    "office.registry_not_utf8": N_("Plik nie jest tekstem UTF-8 — wyeksportuj go jako CSV UTF-8."),
    "office.registry_not_previewed": N_("Najpierw wyślij ten plik do podglądu; zastosować można tylko plik z podglądu."),
    "office.registry_already_applied": N_("Ten import został już zastosowany."),
    "office.registry_has_problems": N_("Plik ma błędy — popraw je i wyślij do podglądu jeszcze raz."),
    "office.role": N_("Wybierz rolę: obsługa klienta albo kontroler."),
    "office.email_taken": N_("Konto z tym adresem e-mail już istnieje."),
    "office.password_weak": N_("Hasło: co najmniej tyle znaków, ile wymaga polityka haseł, wielka litera i cyfra."),
    "office.not_staff": N_("W biurze wyłącza się tylko konta obsługi klienta i kontrolerów."),
    "email.invalid": N_("To nie wygląda na adres e-mail (np. jan.kowalski@example.pl)."),
    "first_name.required": N_("Podaj imię."),
    "first_name.invalid": N_("Imię może mieć najwyżej 80 znaków."),
    "last_name.required": N_("Podaj nazwisko."),
    "last_name.invalid": N_("Nazwisko może mieć najwyżej 80 znaków."),
}
DASHBOARDS = {"5plus1": N_("Bilet 5+1"), "purse": N_("Portmonetka"), "inspections": N_("Kontrole"),
              "health": N_("Stan systemu")}
DashboardKey = Annotated[str, PathParameter(pattern=r"^(5plus1|purse|inspections|health)$")]
ChartFile = Annotated[str, PathParameter(min_length=5, max_length=44, pattern=r"^[a-z0-9-]+\.csv$")]


def _problem(code: str) -> str:
    return _(PROBLEMS.get(code, N_("Nie udało się. Sprawdź dane i spróbuj jeszcze raz.")))


async def _admin_id(request: Request) -> int:
    user = await current_user(request)
    return user.id  # type: ignore[union-attr,return-value]


async def _page(request: Request, template: str, status: int = 200, **context: Any) -> Template:
    context.setdefault("errors", {})
    context.setdefault("values", {})
    context.setdefault("dashboards", DASHBOARDS)
    return await page(request, template, status_code=status, **context)


# --------------------------------------------------------------------------- dashboards


def _period(request: Request) -> tuple[Period, dict[str, list[str]], dict[str, str]]:
    first = request.query_params.get("from", "")[:40]
    last = request.query_params.get("to", "")[:40]
    period, problems = read_period(first, last, clock.today())
    return period, {k: [_problem(v)] for k, v in problems.items()}, {"from": first, "to": last}


def _dashboard(session, key: str, period: Period) -> queries.Dashboard:
    queries.calm(session)
    if key == "5plus1":
        return queries.five_plus_one(session, period, clock.today())
    if key == "purse":
        return queries.purse(session, period)
    if key == "inspections":
        return queries.inspections(session, period)
    return queries.health(session, clock.today(), clock.now())


@get("/", guards=admin)
async def office_home(request: Request) -> Template:
    return await _page(request, "office/index.html")


@get("/dashboards/{key:str}", guards=admin)
async def dashboard(request: Request, key: DashboardKey) -> Template:
    period, errors, values = _period(request)
    board = await in_transaction(request, _dashboard, key, period)
    return await _page(request, "office/dashboard.html", 422 if errors else 200, board=board, period=period,
                       errors=errors, values=values, key=key)


def _csv(filename: str, header: list[str], rows: list[list[Any]]) -> Response:
    return Response(csv_text(header, rows, max_rows=MAX_EXPORT_ROWS).encode("utf-8-sig"), media_type="text/csv",
                    headers={"content-disposition": f'attachment; filename="{filename}"',
                             "cache-control": "no-store", "x-content-type-options": "nosniff"})


@get("/dashboards/{key:str}/{chart:str}", guards=admin)
async def dashboard_csv(request: Request, key: DashboardKey, chart: ChartFile) -> Response:
    """A chart's table as CSV (`<chart>.csv`)."""
    chart = chart.removesuffix(".csv")
    period, errors, _values = _period(request)
    if errors:
        return Response({"status": 422, "title": _("Nieprawidłowy okres"), "detail": " ".join(m for ms in errors.values() for m in ms),
                         "code": "office.period"}, status_code=422)
    board = await in_transaction(request, _dashboard, key, period)
    found = board.chart(chart)
    if found is None:
        raise NotFoundException()
    await in_transaction(request, service.noted, await _admin_id(request), "export",
                         f"{key}/{chart} {period.first}..{period.last}", client_ip(request))
    return _csv(f"ekp-{key}-{chart}-{period.first}-{period.last}.csv", found.columns, found.table_rows())


# --------------------------------------------------------------------------- devices


def _devices_context(session) -> dict[str, Any]:
    return {"devices": queries.devices(session)}


async def _devices_page(request: Request, status: int = 200, **context: Any) -> Template:
    found = await in_transaction(request, _devices_context)
    return await _page(request, "office/devices.html", status, kinds=DEVICE_KINDS, **found, **context)


@get("/devices", guards=admin)
async def devices_page(request: Request) -> Template:
    return await _devices_page(request)


@post("/devices", guards=admin)
async def device_add(request: Request) -> Template:
    form = await form_of(request)
    values = {"kind": form.get("kind", "")[:20], "name": form.get("name", "")[:200]}
    try:
        added = await in_transaction(request, service.add_device, await _admin_id(request), values["kind"],
                                     values["name"], client_ip(request))
    except OfficeProblem as exc:
        return await _devices_page(request, 422, errors={exc.field: [_problem(exc.code)]}, values=values)
    device_id, name, credential = added
    # The credential is shown once, on this answer only (as `ekp devices add` prints it); never stored.
    return await _devices_page(request, added={"id": device_id, "name": name, "credential": credential})


def _device_context(session, device_id: int, today: date) -> dict[str, Any] | None:
    device = queries.device(session, device_id)
    if device is None:
        return None
    cash = queries.meter_cash(session, device_id, 60, today) if device.kind == "parking-meter" else []
    return {"device": device, "events": queries.recent_events(session, device_id), "cash": cash}


async def _device_page(request: Request, device_id: int, status: int = 200, **context: Any) -> Template:
    found = await in_transaction(request, _device_context, device_id, clock.today())
    if found is None:
        raise NotFoundException()
    return await _page(request, "office/device.html", status, today=clock.today(), **found, **context)


@get("/devices/{device_id:int}", guards=admin)
async def device_page(request: Request, device_id: RowId) -> Template:
    return await _device_page(request, device_id)


@post("/devices/{device_id:int}/rename", guards=admin)
async def device_rename(request: Request, device_id: RowId) -> Template | Response:
    form = await form_of(request)
    name = form.get("name", "")[:200]
    try:
        done = await in_transaction(request, service.rename_device, await _admin_id(request), device_id, name,
                                    client_ip(request))
    except OfficeProblem as exc:
        return await _device_page(request, device_id, 422, errors={exc.field: [_problem(exc.code)]},
                                  values={"name": name})
    if not done:
        raise NotFoundException()
    flash(request, _("Zmieniono nazwę urządzenia."), "success")
    return redirect(f"/office/devices/{device_id}")


@post("/devices/{device_id:int}/disable", guards=admin)
async def device_disable(request: Request, device_id: RowId) -> Template | Response:
    done = await in_transaction(request, service.disable_device, await _admin_id(request), device_id,
                                client_ip(request))
    if not done:
        return await _device_page(request, device_id, 422, errors={"disable": [_problem("office.no_device")]})
    flash(request, _("Urządzenie wyłączone: jego poświadczenie jest odtąd odrzucane."), "success")
    return redirect(f"/office/devices/{device_id}")


@post("/devices/{device_id:int}/cash", guards=admin)
async def device_cash(request: Request, device_id: RowId) -> Template | Response:
    form = await form_of(request)
    values = {"day": form.get("day", "")[:40], "amount": form.get("amount", "")[:40]}
    errors: dict[str, list[str]] = {}
    day: date | None = None
    try:
        day = date.fromisoformat(values["day"].strip()) if len(values["day"].strip()) == 10 else None
    except ValueError:
        day = None
    if day is None:
        errors["day"] = [_problem("office.date_format")]
    try:
        amount = parse_pln(values["amount"])
    except MoneyFormatError:
        errors["amount"] = [_problem("office.cash_amount")]
    found = await in_transaction(request, lambda s: queries.device(s, device_id))
    if found is None:
        raise NotFoundException()
    if found.kind != "parking-meter":
        errors["amount"] = [_problem("office.cash_not_meter")]
    if errors:
        return await _device_page(request, device_id, 422, errors=errors, values=values)
    try:
        await in_transaction(request, service.record_cash, await _admin_id(request), device_id, day, amount,
                             client_ip(request))
    except OfficeProblem as exc:
        return await _device_page(request, device_id, 422, errors={exc.field: [_problem(exc.code)]}, values=values)
    flash(request, _("Zapisano gotówkę z kasety."), "success")
    return redirect(f"/office/devices/{device_id}")


# --------------------------------------------------------------------------- card registry


async def _registry_page(request: Request, status: int = 200, **context: Any) -> Template:
    history = await in_transaction(request, queries.registry_imports)
    return await _page(request, "office/registry.html", status, history=history, **context)


@get("/registry", guards=admin)
async def registry_page(request: Request) -> Template:
    return await _registry_page(request)


MAX_UPLOAD = service.MAX_REGISTRY_BYTES + 64 * 1024


async def _upload(data: dict[str, Any]) -> tuple[str, bytes]:
    file = data.get("file")
    if not isinstance(file, UploadFile):
        return "", b""
    raw = await file.read(service.MAX_REGISTRY_BYTES + 1)
    return (file.filename or "")[:120], raw


@post("/registry/preview", guards=admin, request_max_body_size=MAX_UPLOAD)
async def registry_preview(request: Request,
                           data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]) -> Template:
    filename, raw = await _upload(data)
    try:
        preview = await _run(request, service.preview_registry, settings_of(request), await _admin_id(request),
                             filename, raw, client_ip(request))
    except OfficeProblem as exc:
        return await _registry_page(request, 422, errors={exc.field: [_problem(exc.code)]})
    return await _registry_page(request, 422 if preview.problems else 200, preview=preview, filename=filename)


@post("/registry/{import_id:int}/apply", guards=admin, request_max_body_size=MAX_UPLOAD)
async def registry_apply(request: Request, import_id: RowId,
                         data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]) -> Template | Response:
    _filename, raw = await _upload(data)
    try:
        report = await _run(request, service.apply_registry, settings_of(request), await _admin_id(request),
                            import_id, raw, client_ip(request))
    except OfficeProblem as exc:
        return await _registry_page(request, 422, errors={exc.field: [_problem(exc.code)]})
    flash(request, _("Zastosowano import: %(added)s dodanych, %(updated)s zmienionych (w tym %(unlinked)s odłączonych, "
                     "bo karta zmieniła właściciela), %(unchanged)s bez zmian.", added=report.added,
                     updated=report.updated, unlinked=report.unlinked, unchanged=report.unchanged), "success")
    return redirect("/office/registry")


async def _run(request: Request, use_case: Any, *args: Any) -> Any:
    """A use case that opens its own (short) transactions on the engine, in a worker thread."""
    import anyio

    engine = request.app.state.engine
    return await anyio.to_thread.run_sync(partial(use_case, engine, *args))


# --------------------------------------------------------------------------- tariffs


@get("/tariffs", guards=admin)
async def tariffs_page(request: Request) -> Template:
    today = clock.today()
    settings = settings_of(request)
    periods = settings.tariff_5p1.periods
    in_force = max((p for p in periods if p.effective_from <= today), key=lambda p: p.effective_from, default=None)
    rows = [{"period": p, "state": "w mocy" if p is in_force else ("zapowiedziana" if p.effective_from > today
                                                                    else "archiwalna")} for p in periods]
    return await _page(request, "office/tariffs.html", periods=rows, tariff5=settings.tariff_5p1, purse=settings.purse_tariff)


# --------------------------------------------------------------------------- accounts


@get("/accounts", guards=admin)
async def accounts_page(request: Request) -> Template:
    query = request.query_params.get("q", "")[:200]
    found = None
    if query.strip():
        found = await in_transaction(request, service.find_accounts, settings_of(request), await _admin_id(request),
                                     query, client_ip(request))
    staff = await in_transaction(request, queries.staff_accounts)
    return await _page(request, "office/accounts.html", found=found, query=query, staff=staff, values={})


@get("/accounts/{user_id:int}", guards=admin)
async def account_page(request: Request, user_id: RowId) -> Template:
    overview = await in_transaction(request, queries.account_overview, user_id)
    if overview is None:
        raise NotFoundException()
    await in_transaction(request, service.viewed_account, await _admin_id(request), user_id, client_ip(request))
    return await _page(request, "office/account.html", **overview)


@post("/accounts", guards=admin)
async def account_create(request: Request) -> Template | Response:
    form = await form_of(request)
    fields = {k: form.get(k, "")[:300] for k in ("role", "email", "first_name", "last_name", "password")}
    try:
        user = await in_transaction(request, service.create_staff_account, settings_of(request),
                                    await _admin_id(request), fields, client_ip(request))
    except OfficeProblem as exc:
        staff = await in_transaction(request, queries.staff_accounts)
        values = {k: v for k, v in fields.items() if k != "password"}
        return await _page(request, "office/accounts.html", 422, found=None, query="", staff=staff,
                           errors={exc.field: [_problem(exc.code)]}, values=values)
    flash(request, _("Dodano konto %(email)s. Przy pierwszym logowaniu skonfiguruje drugi składnik (TOTP).",
                     email=user.email), "success")
    return redirect("/office/accounts")


@post("/accounts/{user_id:int}/disable", guards=admin)
async def account_disable(request: Request, user_id: RowId) -> Template | Response:
    from web.platform.http import forget_user

    try:
        user = await in_transaction(request, service.disable_account, await _admin_id(request), user_id,
                                    client_ip(request))
    except OfficeProblem as exc:
        staff = await in_transaction(request, queries.staff_accounts)
        return await _page(request, "office/accounts.html", 422, found=None, query="", staff=staff,
                           errors={"form": [_problem(exc.code)]})
    forget_user(user_id)
    flash(request, _("Konto %(email)s zostało wyłączone.", email=user.email), "success")
    return redirect("/office/accounts")


# --------------------------------------------------------------------------- audit log


@get("/audit", guards=admin)
async def audit_page(request: Request) -> Template:
    params = request.query_params
    action = params.get("action", "").strip()[:64]
    text = params.get("text", "").strip()[:100]
    user_text = params.get("user", "").strip()[:12]
    before_text = params.get("before", "").strip()[:12]
    errors: dict[str, list[str]] = {}
    user_id = int(user_text) if user_text.isdigit() and 0 < int(user_text) < 2**31 else None
    if user_text and user_id is None:
        errors["user"] = [_("Numer użytkownika to liczba, np. 42.")]
    before = int(before_text) if before_text.isdigit() and 0 < int(before_text) < 2**31 else None
    events = await in_transaction(request, partial(queries.audit_log, action=action, user_id=user_id, text=text,
                                                   before_id=before))
    return await _page(request, "office/audit.html", 422 if errors else 200, events=events, errors=errors,
                       values={"action": action, "text": text, "user": user_text},
                       more=len(events) == queries.AUDIT_PAGE)


router = Router(path="/office", route_handlers=[
    office_home, dashboard, dashboard_csv, devices_page, device_add, device_page, device_rename, device_disable,
    device_cash, registry_page, registry_preview, registry_apply, tariffs_page, accounts_page, account_page,
    account_create, account_disable, audit_page,
])
