"""Registration, activation, login and logout, password reset, the account page (R-ACC-1..5)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import anyio
from cryptography.exceptions import InvalidTag
from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Response, Template
from sqlmodel import Session

from domain.accounts import (
    LinkState,
    PasswordPolicy,
    RegistrationForm,
    check_registration,
    email_problem,
    mask_pesel,
    normalise_email,
    password_problems,
    read_pesel,
    InvalidPesel,
)
from domain.throttle import login_counters, reset_counters
from web.platform import clock
from web.platform import i18n
from web.platform.http import (
    CLEAR_BROWSER,
    CLEAR_SITE_DATA,
    checked,
    client_ip,
    current_user,
    flash,
    forget_user,
    form_of,
    in_transaction,
    known_device_token,
    login_session,
    page,
    redirect,
    remember_device,
    requires_login,
    safe_next,
    session_data,
    settings_of,
    wait_text,
)
from web.accounts.current import signed_in_account
from web.platform.i18n import _
from web.platform.messages import field_errors, message
from web.accounts.models import User
from web.platform.protect import decrypt_pesel
from web.accounts.twofactor_controllers import start_second_step
from web.accounts import service
from web.accounts.service import ErasureSteps
from web.platform.skeletons import StandIn, skeleton_page
from web.platform.sessions import SESSION_REMEMBER

FORM_FIELDS = ["first_name", "last_name", "pesel", "birth_date", "email", "email_repeat"]

log = logging.getLogger("ekp.accounts")


def _policy(request: Request) -> PasswordPolicy:
    return PasswordPolicy(min_length=settings_of(request).password_min_length)


# Reset requests answer no sooner than this, whether or not the address has an account and whatever
# queueing its mail costs (R-AUTH-4: same answer, same time).
RESET_ANSWER_SECONDS = 0.25


async def _answer_no_sooner_than(started: float, seconds: float = RESET_ANSWER_SECONDS) -> None:
    await anyio.sleep(max(0.0, started + seconds - time.monotonic()))


@get("/register")
async def register_page(request: Request) -> Template | Response:
    if await current_user(request):
        return redirect("/home")
    return await page(request, "accounts/register.html", values={}, errors={})


@post("/register")
async def register_submit(request: Request) -> Template | Response:
    form = await form_of(request)
    ip = client_ip(request)
    limiter = request.app.state.limiter
    values = {name: form.get(name, "") for name in FORM_FIELDS}
    values["no_pesel"] = checked(form, "no_pesel")
    registration_form = RegistrationForm(
        first_name=form.get("first_name", ""),
        last_name=form.get("last_name", ""),
        pesel=form.get("pesel", ""),
        no_pesel=checked(form, "no_pesel"),
        birth_date=form.get("birth_date", ""),
        email=form.get("email", ""),
        email_repeat=form.get("email_repeat", ""),
        password=form.get("password", ""),
        password_repeat=form.get("password_repeat", ""),
        accept_terms=checked(form, "accept_terms"),
        gdpr_seen=checked(form, "gdpr_seen"),
    )
    policy = _policy(request)
    result = check_registration(registration_form, clock.today(), policy)
    if not result.ok:
        errors = field_errors(result.errors, min=policy.min_length)
        return await page(request, "accounts/register.html", status_code=422, values=values, errors=errors)
    # Counted before the costly part, atomically (R-AUTH-1); forms with mistakes do not count.
    if wait := await limiter.count(("register.ip", ip)):
        return await page(request, "accounts/register.html", status_code=429, values=values, errors={},
                          limit_message=wait_text(wait))
    assert result.registration is not None
    await in_transaction(request, service.register, settings_of(request), result.registration,
                         i18n.current_language.get(), ip)
    session_data(request)["registered_email"] = result.registration.email
    return redirect("/register/done")


@post("/register/check")
async def register_check(request: Request) -> Template:
    """Inline checks while typing (htmx): PESEL, e-mail, matching e-mails, password rules."""
    form = await form_of(request)
    name = request.query_params.get("field", "")
    errors: list[str] = []
    if name == "pesel" and form.get("pesel", "").strip():
        try:
            info = read_pesel(form["pesel"])
        except InvalidPesel as exc:
            errors = [message(exc.code)]
        else:
            if info.birth_date > clock.today():
                errors = [message("pesel.future")]
    elif name == "email" and form.get("email", "").strip():
        code = email_problem(form["email"])
        errors = [message(code)] if code else []
    elif name == "email_repeat" and form.get("email_repeat", "").strip():
        if normalise_email(form.get("email", "")) != normalise_email(form["email_repeat"]):
            errors = [message("email.mismatch")]
    elif name == "password" and form.get("password"):
        policy = _policy(request)
        errors = [message(code, min=policy.min_length) for code in password_problems(form["password"], policy)]
    elif name == "password_repeat" and form.get("password_repeat"):
        if form.get("password") != form["password_repeat"]:
            errors = [message("password.mismatch")]
    return Template(template_name="partials/field_errors.html", context={"name": name, "field_errors": errors})


@get("/register/done")
async def register_done(request: Request) -> Template:
    email = session_data(request).get("registered_email", "")
    return await page(request, "accounts/register_done.html", email=email)


@get("/activate/{token:str}")
async def activate(request: Request, token: FromPath[str]) -> Template:
    check = await in_transaction(request, service.activate, settings_of(request), token, client_ip(request))
    if check.pesel_held:
        return await page(request, "accounts/activated.html", status_code=409, state="pesel_held")
    status = 200 if check.state is LinkState.VALID else 410 if check.state else 404
    return await page(request, "accounts/activated.html", status_code=status,
                      state=check.state.value if check.state else "unknown")


@post("/activate/resend")
async def activate_resend(request: Request) -> Template:
    form = await form_of(request)
    email = normalise_email(form.get("email", ""))
    limiter = request.app.state.limiter
    code = email_problem(email)
    if code:
        return await page(request, "accounts/resend.html", status_code=422, email=email,
                          errors={"email": [message(code)]})
    if wait := await limiter.count(("resend.account", email)):
        return await page(request, "accounts/resend.html", status_code=429, email=email, errors={},
                          limit_message=wait_text(wait))
    await in_transaction(request, service.resend_activation, settings_of(request), email)
    return await page(request, "accounts/resend.html", email=email, errors={}, sent=True)


@get("/activate/resend")
async def activate_resend_page(request: Request) -> Template:
    return await page(request, "accounts/resend.html", email="", errors={})


@get("/login")
async def login_page(request: Request) -> Template | Response:
    if await current_user(request):
        return redirect("/home")
    next_path = safe_next(request.query_params.get("next"), "")
    fast = skeleton_page(request, "accounts/login.html", shape=(), values={"next": next_path},
                         context=lambda slots: {"user": None, "values": {}, "errors": {}, "next": slots.next})
    if fast is not None:  # the page's skeleton (web.platform.skeletons), the `next` path and the CSRF token filled in
        return fast
    return await page(request, "accounts/login.html", values={}, errors={}, next=next_path)


@post("/login")
async def login_submit(request: Request) -> Template | Response:
    form = await form_of(request)
    email = normalise_email(form.get("email", ""))
    password = form.get("password", "")
    next_path = safe_next(form.get("next"), "/home")  # the start page, not the account settings
    ip = client_ip(request)
    limiter = request.app.state.limiter
    values = {"email": email, "remember": checked(form, "remember")}
    if not email or not password:
        errors = {}
        if not email:
            errors["email"] = [message("email.required")]
        if not password:
            errors["password"] = [message("password.required")]
        return await page(request, "accounts/login.html", status_code=422, values=values, errors=errors, next=next_path)
    # Count first, then check (R-AUTH-1): concurrent attempts cannot all pass a limit read before any was counted.
    device = known_device_token(request)
    counters = login_counters(email, ip, device if await limiter.is_known_device(email, device) else None)
    if wait := await limiter.count(*counters):
        return await page(request, "accounts/login.html", status_code=429, values=values, errors={},
                          next=next_path, limit_message=wait_text(wait))
    user: User | None = await in_transaction(request, service.authenticate, email, password)
    if user is None:
        await in_transaction(request, service.audit, "login.failed", None, ip)
        return await page(request, "accounts/login.html", status_code=401, values=values,
                          errors={"form": [message("login.failed")]}, next=next_path)
    # The right password: this attempt was not a guess.
    await limiter.uncount(counters)
    if not user.is_active:
        return await page(request, "accounts/login.html", status_code=403, values=values,
                          errors={"form": [message("login.inactive")]}, next=next_path, inactive=True)
    for name, subject in counters:
        if name in ("login.pair", "login.device"):
            await limiter.clear(name, subject)
    # Staff, inspectors and passengers who turned it on pass a second step first (R-AUTH-3); the browser
    # becomes a known device (its own login counter) only once both steps pass.
    if (second_step := start_second_step(request, user, checked(form, "remember"), next_path)) is not None:
        await in_transaction(request, service.audit, "login.password_ok", user.id, ip)
        return second_step
    await in_transaction(request, service.audit, "login", user.id, ip)
    login_session(request, user, checked(form, "remember"))
    i18n.current_language.set(user.language)
    flash(request, _("Witaj, %(name)s!", name=user.first_name), "success")
    response = redirect(next_path)
    await remember_device(request, response, user.email)
    return response


@post("/logout")
async def logout(request: Request) -> Response:
    session_data(request).clear()
    session_data(request)["_flash"] = [{"message": _("Wylogowano."), "category": "info"}]
    session_data(request)[CLEAR_BROWSER] = True
    response = redirect("/login")
    response.headers["Clear-Site-Data"] = CLEAR_SITE_DATA
    return response


@get("/password/forgot")
async def forgot_page(request: Request) -> Template:
    return await page(request, "accounts/forgot.html", email="", errors={})


@post("/password/forgot")
async def forgot_submit(request: Request) -> Template:
    form = await form_of(request)
    email = normalise_email(form.get("email", ""))
    ip = client_ip(request)
    limiter = request.app.state.limiter
    code = email_problem(email)
    if code:
        return await page(request, "accounts/forgot.html", status_code=422, email=email, errors={"email": [message(code)]})
    started = time.monotonic()
    if wait := await limiter.count(*reset_counters(email, ip)):
        return await page(request, "accounts/forgot.html", status_code=429, email=email, errors={},
                          limit_message=wait_text(wait))
    # Past the account's hourly mail allowance the page answers the same and sends nothing more: the
    # links already mailed stay valid, so requests by others never block the owner's reset (R-AUTH-1).
    if not await limiter.count(("reset.account", email)):
        await in_transaction(request, service.request_password_reset, settings_of(request), email, ip)
    await _answer_no_sooner_than(started)
    return await page(request, "accounts/forgot.html", email=email, errors={}, sent=True)


def _token_state(session, settings, token):
    return service.check_token(session, settings, token, "reset").state


@get("/password/reset/{token:str}")
async def reset_page(request: Request, token: FromPath[str]) -> Template:
    state = await in_transaction(request, _token_state, settings_of(request), token)
    return await page(request, "accounts/reset.html", status_code=200 if state is LinkState.VALID else 410,
                      token=token, state=state.value if state else "unknown", errors={})


@post("/password/reset/{token:str}")
async def reset_submit(request: Request, token: FromPath[str]) -> Template | Response:
    form = await form_of(request)
    password, repeat = form.get("password", ""), form.get("password_repeat", "")
    policy = _policy(request)
    errors: dict[str, list[str]] = {}
    problems = password_problems(password, policy)
    if problems:
        errors["password"] = [message(code, min=policy.min_length) for code in problems]
    if password != repeat:
        errors["password_repeat"] = [message("password.mismatch")]
    if errors:
        return await page(request, "accounts/reset.html", status_code=422, token=token, state="valid", errors=errors)
    check = await in_transaction(request, service.reset_password, settings_of(request), token, password, client_ip(request))
    if check.state is not LinkState.VALID:
        return await page(request, "accounts/reset.html", status_code=410, token=token,
                          state=check.state.value if check.state else "unknown", errors={})
    session_data(request).clear()
    flash(request, _("Hasło zostało zmienione. Zaloguj się nowym hasłem."), "success")
    response = redirect("/login")
    if check.user is not None:
        forget_user(check.user.id)  # type: ignore[arg-type]
        # The link proved the address: this browser signs in even while the account is under attack.
        await remember_device(request, response, check.user.email)
    return response


def _account_view(request: Request, user: User) -> dict[str, str | None]:
    """What the account page shows beyond the user row (already loaded for this request)."""
    if not user.pesel_encrypted:
        return {"masked_pesel": None}
    try:
        pesel = decrypt_pesel(settings_of(request).pesel_key, user.pesel_encrypted)
    except InvalidTag:  # encrypted under another key: a key changed or lost on a deploy, not the passenger's doing
        log.error("account %s: its PESEL cannot be decrypted with EKP_PESEL_KEY (was the key changed?); "
                  "the account page shows without it", user.id)
        return {"masked_pesel": None}
    return {"masked_pesel": mask_pesel(pesel)}


@get("/account", guards=[requires_login])
async def account_page(request: Request) -> Template | Response:
    user = await signed_in_account(request)
    view = _account_view(request, user)
    masked = view["masked_pesel"]
    if masked:  # the common case, from the page's skeleton (web.platform.skeletons); the date-of-birth variant is rare
        fast = skeleton_page(
            request, "accounts/account.html", shape=(user.role,),
            values={"full_name": user.full_name, "email": user.email, "masked_pesel": masked},
            context=lambda slots: {
                "user": StandIn("user", role=user.role, full_name=slots.full_name, email=slots.email),
                "masked_pesel": slots.masked_pesel, "errors": {}})
        if fast is not None:
            return fast
    return await page(request, "accounts/account.html", errors={}, **view)


def _change_password(session, user_id, current, new):
    user = session.get(User, user_id)
    if not service.password_matches(user.password_hash, current):
        return None
    service.set_password(session, user, new)
    service.audit(session, "password.changed", user.id)
    return user


@post("/account/password", guards=[requires_login])
async def account_password(request: Request) -> Template | Response:
    user = await signed_in_account(request)
    form = await form_of(request)
    policy = _policy(request)
    current, new, repeat = form.get("current_password", ""), form.get("password", ""), form.get("password_repeat", "")
    errors: dict[str, list[str]] = {}
    if not current:
        errors["current_password"] = [message("password.required")]
    problems = password_problems(new, policy)
    if problems:
        errors["password"] = [message(code, min=policy.min_length) for code in problems]
    if new != repeat:
        errors["password_repeat"] = [message("password.mismatch")]
    if not errors:
        changed = await in_transaction(request, _change_password, user.id, current, new)
        if changed is None:
            errors["current_password"] = [message("password.wrong")]
        else:
            forget_user(changed.id)
            login_session(request, changed, bool(session_data(request).get(SESSION_REMEMBER)))
            flash(request, _("Hasło zostało zmienione."), "success")
            return redirect("/account")
    view = _account_view(request, user)
    return await page(request, "accounts/account.html", status_code=422, errors=errors, **view)


def _erase(session: Session, user_id: int, password: str, ip: str | None,
           steps: Sequence[service.EraseStep]) -> bool:
    user = session.get(User, user_id)
    if user is None or not service.password_matches(user.password_hash, password):
        return False
    service.erase_account(session, user, ip, steps)
    return True


@post("/account/delete", guards=[requires_login])
async def account_delete(request: Request, erasure_steps: NamedDependency[ErasureSteps]) -> Template | Response:
    user = await signed_in_account(request)
    form = await form_of(request)
    errors: dict[str, list[str]] = {}
    if not checked(form, "confirm"):
        errors["confirm"] = [message("confirm.required")]
    if not form.get("delete_password"):
        errors["delete_password"] = [message("password.required")]
    if not errors:
        erased = await in_transaction(request, _erase, user.id, form.get("delete_password", ""),
                                      client_ip(request), erasure_steps)
        if erased:
            forget_user(user.id)
            session_data(request).clear()
            session_data(request)["_flash"] = [{"message": _("Konto zostało usunięte wraz z danymi osobowymi."), "category": "info"}]
            return redirect("/")
        errors["delete_password"] = [message("password.wrong")]
    view = _account_view(request, user)
    return await page(request, "accounts/account.html", status_code=422, errors=errors, **view)


router = Router(
    path="/",
    route_handlers=[
        register_page, register_submit, register_check, register_done, activate, activate_resend,
        activate_resend_page, login_page, login_submit, logout, forgot_page, forgot_submit, reset_page,
        reset_submit, account_page, account_password, account_delete,
    ],
)
