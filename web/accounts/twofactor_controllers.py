"""Two-factor sign-in (R-AUTH-3): the second step after the password, enrolment at first sign-in for staff
and inspectors, the passenger's own switch in account settings, and the desk's reset of a lost factor.

After the password a session holds only a *pending* sign-in (`SESSION_PENDING`: the account id and stamp,
not `uid`), so nothing that needs a signed-in user is reachable until the code passes. A pending sign-in
lasts PENDING_SECONDS; code attempts are throttled per account (`login.code`), counted before the check.
"""

from __future__ import annotations

from litestar import Request, Router, get, post
from litestar.response import Response, Template

from domain import twofactor as rules
from web.platform import clock
from web.platform import i18n
from web.platform.http import (
    client_ip,
    flash,
    form_of,
    in_transaction,
    login_session,
    page,
    redirect,
    remember_device,
    requires_login,
    requires_role,
    session_data,
    session_stamp,
    settings_of,
    wait_text,
)
from web.accounts.current import signed_in_account
from web.platform.i18n import _
from web.platform.messages import message
from web.accounts.models import User
from web.platform.protect import decrypt_totp_secret, encrypt_totp_secret
from web.accounts import service as accounts_service
from web.accounts import twofactor as service
from web.platform.sessions import SESSION_ROTATE

SESSION_PENDING = "mfa_pending"
SESSION_SETUP = "mfa_setup"  # a passenger's enrolment in progress (account settings)
PENDING_SECONDS = 10 * 60


def start_second_step(request: Request, user: User, remember: bool, next_path: str) -> Response | None:
    """After a correct password: None when the account signs in with the password alone, otherwise
    the redirect to the second step (or to enrolment, for staff and inspectors without a factor yet)."""
    if not rules.factor_required(user.role, user.has_totp):
        return None
    session = session_data(request)
    session.clear()
    session.update({
        SESSION_PENDING: {"uid": user.id, "pwd": session_stamp(user), "remember": remember, "next": next_path,
                          "since": int(clock.now().timestamp())},
        SESSION_ROTATE: True,
        "lang": user.language,
    })
    return redirect("/login/code" if user.has_totp else "/login/enrol")


def _load_pending(session, user_id, stamp):
    user = session.get(User, user_id)
    if user is None or not user.is_active or session_stamp(user) != stamp:
        return None
    session.expunge(user)
    return user


async def _pending(request: Request) -> tuple[dict, User] | None:
    pending = session_data(request).get(SESSION_PENDING)
    if not isinstance(pending, dict) or not isinstance(pending.get("uid"), int):
        return None
    if clock.now().timestamp() - int(pending.get("since", 0)) > PENDING_SECONDS:
        session_data(request).pop(SESSION_PENDING, None)
        return None
    user = await in_transaction(request, _load_pending, pending["uid"], pending.get("pwd"))
    if user is None:
        session_data(request).pop(SESSION_PENDING, None)
        return None
    return dict(pending), user  # a copy: the session notices a change only when its value is a new object


def _start_over(request: Request) -> Response:
    flash(request, _("Logowanie wygasło albo nie zostało rozpoczęte. Podaj e-mail i hasło jeszcze raz."), "info")
    return redirect("/login")


async def _finish(request: Request, pending: dict, user: User) -> None:
    await in_transaction(request, accounts_service.audit, "login", user.id, client_ip(request))
    login_session(request, user, bool(pending.get("remember")))  # clears the pending sign-in, new session id
    i18n.current_language.set(user.language)


async def _throttled(request: Request, user_id: int) -> int:
    """Count this code attempt first (so concurrent guesses count too); seconds to wait if over the limit."""
    return int(await request.app.state.limiter.count(("login.code", str(user_id))))  # atomic (R-AUTH-1)


# --------------------------------------------------------------------------- the second step


@get("/login/code")
async def code_page(request: Request) -> Template | Response:
    found = await _pending(request)
    if found is None:
        return _start_over(request)
    if not found[1].has_totp:
        return redirect("/login/enrol")
    return await page(request, "accounts/login_code.html", errors={}, user=None)


@post("/login/code")
async def code_submit(request: Request) -> Template | Response:
    found = await _pending(request)
    if found is None:
        return _start_over(request)
    pending, user = found
    if not user.has_totp:
        return redirect("/login/enrol")
    code = (await form_of(request)).get("code", "")
    if rules.read_code(code) is None:
        return await page(request, "accounts/login_code.html", status_code=422, user=None,
                          errors={"code": [message("twofactor.code_format")]})
    if wait := await _throttled(request, user.id):  # type: ignore[arg-type]
        return await page(request, "accounts/login_code.html", status_code=429, user=None, errors={},
                          limit_message=wait_text(wait))
    passed = await in_transaction(request, service.verify, settings_of(request), user.id, code, client_ip(request))
    if passed is None:
        return await page(request, "accounts/login_code.html", status_code=401, user=None,
                          errors={"code": [message("twofactor.code_wrong")]})
    await request.app.state.limiter.clear("login.code", str(user.id))
    await _finish(request, pending, user)
    if passed == "recovery":
        left = await in_transaction(request, service.recovery_codes_left, user.id)
        flash(request, i18n.ngettext("Użyto kodu odzyskiwania. Zostało %(num)s kod.",
                                     "Użyto kodu odzyskiwania. Zostało %(num)s kodów.", left), "info")
    flash(request, _("Witaj, %(name)s!", name=user.first_name), "success")
    response = redirect(pending.get("next") or "/home")
    await remember_device(request, response, user.email)  # both steps passed: a known device (R-AUTH-1)
    return response


# --------------------------------------------------------------------------- enrolment at first sign-in


def _setup_secret(request: Request, user_id: int, key: str, holder: dict) -> str:
    """The secret being enrolled, kept encrypted in the (server-side) session until confirmed."""
    secret_key = settings_of(request).secret_key
    blob = holder.get(key)
    if isinstance(blob, str):
        try:
            return decrypt_totp_secret(secret_key, user_id, bytes.fromhex(blob))
        except Exception:  # noqa: BLE001 - a stale or foreign value: start a new secret
            pass
    secret = service.new_secret()
    holder[key] = encrypt_totp_secret(secret_key, user_id, secret).hex()
    return secret


async def _enrol_page(request: Request, template: str, account: User, secret: str, *, status_code: int = 200,
                      errors: dict | None = None, **context: object) -> Template:
    return await page(request, template, status_code=status_code, errors=errors or {},
                      qr=service.qr_svg(secret, account.email, _("Kod QR do zeskanowania aplikacją uwierzytelniającą")),
                      secret=" ".join(secret[i:i + 4] for i in range(0, len(secret), 4)), **context)


async def _enrolling(request: Request) -> Response | tuple[dict, User, str]:
    """The pending sign-in of an account enrolling its first factor, with the secret it is shown; or where
    to go instead (sign in again, or the code step when a factor is already enrolled)."""
    found = await _pending(request)
    if found is None:
        return _start_over(request)
    pending, user = found
    if user.has_totp:
        return redirect("/login/code")
    secret = _setup_secret(request, user.id, "secret", pending)  # type: ignore[arg-type]
    session_data(request)[SESSION_PENDING] = pending
    return pending, user, secret


@get("/login/enrol")
async def enrol_page(request: Request) -> Template | Response:
    enrolling = await _enrolling(request)
    if not isinstance(enrolling, tuple):
        return enrolling
    _pending_sign_in, user, secret = enrolling
    return await _enrol_page(request, "accounts/login_enrol.html", user, secret, user=None)


@post("/login/enrol")
async def enrol_submit(request: Request) -> Template | Response:
    enrolling = await _enrolling(request)
    if not isinstance(enrolling, tuple):
        return enrolling
    pending, user, secret = enrolling
    code = (await form_of(request)).get("code", "")
    typed = rules.read_code(code)
    if typed is None or typed.kind != "totp":
        return await _enrol_page(request, "accounts/login_enrol.html", user, secret, status_code=422, user=None,
                                 errors={"code": [message("twofactor.totp_format")]})
    if wait := await _throttled(request, user.id):  # type: ignore[arg-type]
        return await _enrol_page(request, "accounts/login_enrol.html", user, secret, status_code=429, user=None,
                                 limit_message=wait_text(wait))
    codes = await in_transaction(request, service.enrol, settings_of(request), user.id, secret, code, client_ip(request))
    if codes is None:
        return await _enrol_page(request, "accounts/login_enrol.html", user, secret, status_code=401, user=None,
                                 errors={"code": [message("twofactor.code_wrong")]})
    await request.app.state.limiter.clear("login.code", str(user.id))
    await _finish(request, pending, user)
    response = await page(request, "accounts/recovery_codes.html", codes=codes, next=pending.get("next") or "/home")
    await remember_device(request, response, user.email)  # both steps passed: a known device (R-AUTH-1)
    return response


# --------------------------------------------------------------------------- account settings


def _with_codes_left(session, user_id):
    user = session.get(User, user_id)
    return user.has_totp, service.recovery_codes_left(session, user_id)


async def _settings_page(request: Request, *, status_code: int = 200, errors: dict | None = None) -> Template:
    user = await signed_in_account(request)
    enrolled, left = await in_transaction(request, _with_codes_left, user.id)
    if enrolled:
        return await page(request, "accounts/two_factor.html", status_code=status_code, errors=errors or {},
                          enrolled=True, codes_left=left, required=rules.role_requires_factor(user.role))
    setup = dict(session_data(request).get(SESSION_SETUP) or {})
    secret = _setup_secret(request, user.id, "secret", setup)  # type: ignore[arg-type]
    session_data(request)[SESSION_SETUP] = setup
    return await _enrol_page(request, "accounts/two_factor.html", user, secret, status_code=status_code,
                             errors=errors, enrolled=False, codes_left=0, required=False)


@get("/account/two-factor", guards=[requires_login])
async def settings_page(request: Request) -> Template:
    return await _settings_page(request)


@post("/account/two-factor/enable", guards=[requires_login])
async def settings_enable(request: Request) -> Template | Response:
    user = await signed_in_account(request)
    code = (await form_of(request)).get("code", "")
    typed = rules.read_code(code)
    if typed is None or typed.kind != "totp":
        return await _settings_page(request, status_code=422, errors={"code": [message("twofactor.totp_format")]})
    if wait := await _throttled(request, user.id):  # type: ignore[arg-type]
        return await _settings_page(request, status_code=429, errors={"form": [wait_text(wait)]})
    setup = dict(session_data(request).get(SESSION_SETUP) or {})
    secret = _setup_secret(request, user.id, "secret", setup)  # type: ignore[arg-type]
    session_data(request)[SESSION_SETUP] = setup
    codes = await in_transaction(request, service.enrol, settings_of(request), user.id, secret, code, client_ip(request))
    if codes is None:
        return await _settings_page(request, status_code=422, errors={"code": [message("twofactor.code_wrong")]})
    session_data(request).pop(SESSION_SETUP, None)
    return await page(request, "accounts/recovery_codes.html", codes=codes, next="/account/two-factor")


@post("/account/two-factor/recovery-codes", guards=[requires_login])
async def settings_new_codes(request: Request) -> Template | Response:
    user = await signed_in_account(request)
    code = (await form_of(request)).get("code", "")
    if wait := await _throttled(request, user.id):  # type: ignore[arg-type]
        return await _settings_page(request, status_code=429, errors={"form": [wait_text(wait)]})
    codes = await in_transaction(request, service.new_recovery_codes, settings_of(request), user.id, code, client_ip(request))
    if codes is None:
        return await _settings_page(request, status_code=422, errors={"code": [message("twofactor.code_wrong")]})
    return await page(request, "accounts/recovery_codes.html", codes=codes, next="/account/two-factor")


@post("/account/two-factor/disable", guards=[requires_login])
async def settings_disable(request: Request) -> Template | Response:
    user = await signed_in_account(request)
    if rules.role_requires_factor(user.role):
        return await _settings_page(request, status_code=403, errors={"form": [message("twofactor.required_for_role")]})
    code = (await form_of(request)).get("code", "")
    if wait := await _throttled(request, user.id):  # type: ignore[arg-type]
        return await _settings_page(request, status_code=429, errors={"form": [wait_text(wait)]})
    done = await in_transaction(request, service.disable, settings_of(request), user.id, code, client_ip(request))
    if not done:
        return await _settings_page(request, status_code=422, errors={"code": [message("twofactor.code_wrong")]})
    flash(request, _("Logowanie dwuetapowe zostało wyłączone."), "info")
    return redirect("/account/two-factor")


# --------------------------------------------------------------------------- the desk resets a lost factor


@get("/desk/two-factor", guards=[requires_role("staff")])
async def desk_reset_page(request: Request) -> Template:
    return await page(request, "accounts/desk_two_factor.html", errors={}, values={})


@post("/desk/two-factor", guards=[requires_role("staff")])
async def desk_reset_submit(request: Request) -> Template | Response:
    user = await signed_in_account(request)
    email = (await form_of(request)).get("email", "").strip()[:254]
    values = {"email": email}
    if not email:
        return await page(request, "accounts/desk_two_factor.html", status_code=422, values=values,
                          errors={"email": [message("email.required")]})
    problem, target = await in_transaction(request, service.reset_for, user.id, email, client_ip(request))
    if problem:
        status = 403 if problem in ("twofactor.reset_self", "twofactor.reset_forbidden") else 422
        return await page(request, "accounts/desk_two_factor.html", status_code=status, values=values,
                          errors={"email": [message(problem)]})
    flash(request, _("Drugi składnik konta %(email)s został zresetowany. Przy następnym logowaniu konto skonfiguruje go od nowa.",
                     email=target.email), "success")  # type: ignore[union-attr]
    return redirect("/desk/two-factor")


router = Router(
    path="/",
    route_handlers=[
        code_page, code_submit, enrol_page, enrol_submit, settings_page, settings_enable, settings_new_codes,
        settings_disable, desk_reset_page, desk_reset_submit,
    ],
)
