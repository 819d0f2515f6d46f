"""Two factors for staff and inspectors (R-AUTH-3), through HTTP on SQLite and PostgreSQL: the password alone
reaches no staff or inspector page or API; enrolment by QR at first sign-in; wrong, used and replayed codes
refused; recovery codes work once; code attempts throttled; the desk resets a lost factor only for someone
else; passengers may turn it on."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from domain import twofactor
from tests.conftest import DEFAULT_PASSWORD, TEST_TOTP_SECRET, field_errors, page_text
from web.platform import clock as web_clock
from web.platform.db import transaction
from web.platform.models import AuditEvent
from web.accounts.models import RecoveryCode, User


def password_step(browser, email: str, password: str = DEFAULT_PASSWORD):  # type: ignore[no-untyped-def]
    return browser.submit("/login", {"email": email, "password": password})


def code_now(secret: str = TEST_TOTP_SECRET, steps_ahead: int = 0) -> str:
    return twofactor.code_at_step(secret, twofactor.step_at(web_clock.now()) + steps_ahead)


def secret_on(html: str) -> str:
    match = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', html)
    assert match, "no secret shown for manual entry"
    return match.group(1).replace(" ", "")


def recovery_codes_on(html: str) -> list[str]:
    block = re.search(r'data-testid="recovery-codes">(.*?)</ul>', html, re.S)
    assert block, "no recovery codes shown"
    return re.findall(r"<li>([a-z0-9-]+)</li>", block.group(1))


def stored(engine, email: str) -> User:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        session.expunge(user)
        return user


def assert_not_signed_in(browser) -> None:  # type: ignore[no-untyped-def]
    for path in ("/desk", "/inspect", "/account", "/simulators/validator", "/desk/two-factor"):
        assert browser.get(path, follow_redirects=False).status_code in (302, 303, 401, 404), path
    assert browser.get("/api/inspection/trust-list").status_code == 401
    assert browser.post("/api/inspection/verify", csrf=False, json={}).status_code in (401, 403)


def enrol_via_first_sign_in(browser, email: str) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    response = password_step(browser, email)
    assert response.status_code == 303 and response.headers["location"] == "/login/enrol"
    page = browser.get("/login/enrol")
    assert page.status_code == 200 and "<svg" in page.text
    secret = secret_on(page.text)
    done = browser.submit("/login/enrol", {"code": code_now(secret)})
    assert done.status_code == 200, done.text[:2000]
    return secret, recovery_codes_on(done.text)


@pytest.mark.parametrize("role, page", [("staff", "/desk"), ("inspector", "/inspect")])
def test_r_auth_3_password_alone_reaches_no_staff_or_inspector_page_or_api(browser, users, role, page):
    users.create("pracownik@example.pl", role=role, pesel=None)
    response = password_step(browser, "pracownik@example.pl")
    assert response.status_code == 303 and response.headers["location"] == "/login/code"
    assert_not_signed_in(browser)
    assert browser.get("/login/code").status_code == 200
    done = browser.submit("/login/code", {"code": code_now()})
    assert done.status_code == 303
    assert browser.get(page).status_code == 200


def test_r_auth_3_staff_without_a_factor_enrols_by_qr_code_at_first_sign_in(browser, users, engine, settings):
    users.create("nowy@example.pl", role="staff", pesel=None, totp_secret="")
    response = password_step(browser, "nowy@example.pl")
    assert response.headers["location"] == "/login/enrol"
    assert_not_signed_in(browser)
    page = browser.get("/login/enrol")
    assert 'class="segno"' in page.text and "http" not in page.text.split('class="segno"')[1].split("</svg>")[0]
    secret = secret_on(page.text)
    assert secret_on(browser.get("/login/enrol").text) == secret  # the same secret until confirmed
    wrong = browser.submit("/login/enrol", {"code": code_now(secret, steps_ahead=5)})
    assert wrong.status_code == 401 and field_errors(wrong.text, "code")
    assert_not_signed_in(browser)
    done = browser.submit("/login/enrol", {"code": code_now(secret)})
    codes = recovery_codes_on(done.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert browser.get("/desk").status_code == 200
    user = stored(engine, "nowy@example.pl")
    assert user.totp_enabled_at is not None and secret.encode() not in user.totp_secret_encrypted
    with transaction(engine) as session:
        hashes = session.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id)).all()
    assert len(hashes) == 10 and not {c.replace("-", "") for c in codes} & set(hashes)
    # Shown once: the page that showed them is gone, the settings page shows only how many are left.
    assert not any(code in browser.get("/account/two-factor").text for code in codes)


def test_r_auth_3_wrong_used_and_replayed_codes_are_refused(browser, new_browser, users, clock):
    users.create("bok@example.pl", role="staff", pesel=None)
    password_step(browser, "bok@example.pl")
    for bad in ("000000", code_now(steps_ahead=3), code_now(steps_ahead=-3)):
        if bad == code_now():
            continue
        wrong = browser.submit("/login/code", {"code": bad})
        assert wrong.status_code == 401, bad
        assert "nieprawidłowy albo został już użyty" in page_text(wrong.text)
    nonsense = browser.submit("/login/code", {"code": "12ab"})
    assert nonsense.status_code == 422 and field_errors(nonsense.text, "code")
    assert_not_signed_in(browser)
    code = code_now()
    assert browser.submit("/login/code", {"code": code}).status_code == 303
    # The same code again, seen by someone watching over the shoulder, in another browser: refused.
    other = new_browser()
    password_step(other, "bok@example.pl")
    assert other.submit("/login/code", {"code": code}).status_code == 401
    # An older code still inside the drift window: refused too (only newer steps pass).
    assert other.submit("/login/code", {"code": code_now(steps_ahead=-1)}).status_code == 401
    assert_not_signed_in(other)
    clock.travel(timedelta(seconds=30))
    assert other.submit("/login/code", {"code": code_now()}).status_code == 303
    assert other.get("/desk").status_code == 200


def test_r_auth_3_recovery_code_signs_in_once(new_browser, users, engine):
    users.create("kontroler@example.pl", role="inspector", pesel=None, totp_secret="")
    _secret, codes = enrol_via_first_sign_in(new_browser(), "kontroler@example.pl")
    first = new_browser()
    password_step(first, "kontroler@example.pl")
    used = first.submit("/login/code", {"code": codes[0].upper().replace("-", " ")})  # typed loosely
    assert used.status_code == 303
    assert "Zostało 9 kodów" in page_text(first.get("/account").text)
    assert first.get("/inspect").status_code == 200
    again = new_browser()
    password_step(again, "kontroler@example.pl")
    assert again.submit("/login/code", {"code": codes[0]}).status_code == 401
    assert_not_signed_in(again)
    assert again.submit("/login/code", {"code": codes[1]}).status_code == 303
    with transaction(engine) as session:
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("2fa.%"))).all()  # type: ignore[attr-defined]
    assert actions.count("2fa.recovery_used") == 2 and "2fa.failed" in actions


def test_r_auth_3_code_attempts_are_throttled_per_account(browser, new_browser, users):
    users.create("bok@example.pl", role="staff", pesel=None)
    password_step(browser, "bok@example.pl")
    wrong = code_now(steps_ahead=4)
    for _ in range(5):
        assert browser.submit("/login/code", {"code": wrong}).status_code == 401
    limited = browser.submit("/login/code", {"code": code_now()})
    assert limited.status_code == 429 and "Zbyt wiele prób" in page_text(limited.text)
    # A new password step does not give new guesses: the count is per account.
    other = new_browser(ip="10.0.0.9")
    password_step(other, "bok@example.pl")
    assert other.submit("/login/code", {"code": code_now()}).status_code == 429
    assert_not_signed_in(other)


def test_r_auth_3_pending_sign_in_expires(browser, users, clock):
    users.create("bok@example.pl", role="staff", pesel=None)
    password_step(browser, "bok@example.pl")
    clock.travel(timedelta(minutes=11))
    late = browser.submit("/login/code", {"code": code_now()})
    assert late.status_code == 303 and late.headers["location"] == "/login"
    assert_not_signed_in(browser)


def test_r_auth_3_desk_resets_a_lost_factor_only_by_another_staff_member(new_browser, users, engine):
    users.create("ala@example.pl", role="staff", pesel=None)
    users.create("ola@example.pl", role="staff", pesel=None)
    users.create("kontroler@example.pl", role="inspector", pesel=None)
    ala = new_browser()
    ala.login("ala@example.pl")
    own = ala.submit("/desk/two-factor", {"email": "ala@example.pl"})
    assert own.status_code == 403 and "innego pracownika" in " ".join(field_errors(own.text, "email"))
    assert stored(engine, "ala@example.pl").has_totp
    inspector = new_browser()
    inspector.login("kontroler@example.pl")
    assert inspector.get("/desk/two-factor").status_code == 403
    assert inspector.post("/desk/two-factor", {"email": "ala@example.pl"}).status_code == 403
    assert stored(engine, "ala@example.pl").has_totp
    ola = new_browser()
    ola.login("ola@example.pl")
    done = ola.submit("/desk/two-factor", {"email": "ala@example.pl"}, follow=True)
    assert done.status_code == 200 and "został zresetowany" in page_text(done.text)
    lost = stored(engine, "ala@example.pl")
    assert not lost.has_totp and lost.totp_secret_encrypted is None
    with transaction(engine) as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "2fa.reset")).one()
        refused = session.scalars(select(AuditEvent).where(AuditEvent.action == "2fa.reset_refused")).one()
    assert event.user_id == stored(engine, "ola@example.pl").id and f"user {lost.id}" in event.detail
    assert refused.user_id == lost.id
    # Ala enrols again at her next sign-in, before any staff page.
    again = new_browser()
    assert password_step(again, "ala@example.pl").headers["location"] == "/login/enrol"
    assert_not_signed_in(again)
    unknown = ola.submit("/desk/two-factor", {"email": "nikt@example.pl"})
    assert unknown.status_code == 422 and field_errors(unknown.text, "email")


def test_r_auth_3_passenger_may_turn_two_factors_on_and_off(browser, users, engine, clock):
    users.create("jan@example.pl")
    browser.login("jan@example.pl")
    page = browser.get("/account/two-factor")
    assert page.status_code == 200 and "<svg" in page.text
    secret = secret_on(page.text)
    bad = browser.submit("/account/two-factor", {"code": "12"}, action="/account/two-factor/enable")
    assert bad.status_code == 422 and field_errors(bad.text, "code")
    done = browser.submit("/account/two-factor", {"code": code_now(secret)}, action="/account/two-factor/enable")
    assert done.status_code == 200 and len(recovery_codes_on(done.text)) == 10
    browser.logout()
    assert password_step(browser, "jan@example.pl").headers["location"] == "/login/code"
    assert browser.get("/account", follow_redirects=False).status_code != 200
    clock.travel(timedelta(seconds=30))
    assert browser.submit("/login/code", {"code": code_now(secret)}).status_code == 303
    clock.travel(timedelta(seconds=30))
    off = browser.submit("/account/two-factor", {"code": code_now(secret)}, action="/account/two-factor/disable")
    assert off.status_code == 303
    assert not stored(engine, "jan@example.pl").has_totp
    browser.logout()
    assert password_step(browser, "jan@example.pl").headers["location"] == "/home"


def test_r_auth_3_staff_cannot_turn_the_second_factor_off(browser, users, engine, clock):
    users.create("bok@example.pl", role="staff", pesel=None)
    browser.login("bok@example.pl")
    clock.travel(timedelta(seconds=30))
    refused = browser.submit("/account/two-factor", {"code": code_now()}, action="/account/two-factor/disable")
    assert refused.status_code == 403
    assert stored(engine, "bok@example.pl").has_totp


def test_r_auth_3_ekp_users_add_leaves_enrolment_to_the_first_sign_in(settings_env, browser, engine):
    from web.cli import main

    result = CliRunner().invoke(main, ["users", "add", "--role", "staff", "--email", "nowa@example.pl",
                                       "--first-name", "Nowa", "--last-name", "Pracownica", "--password", "Haslo12345"],
                                env=settings_env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "first sign-in" in result.output
    assert not stored(engine, "nowa@example.pl").has_totp
    assert password_step(browser, "nowa@example.pl", "Haslo12345").headers["location"] == "/login/enrol"
    assert_not_signed_in(browser)


def test_r_auth_3_login_helper_passes_the_second_step_several_times(new_browser, users):
    users.create("bok@example.pl", role="staff", pesel=None)
    for _ in range(3):
        desk = new_browser()
        desk.login("bok@example.pl")
        assert desk.get("/desk").status_code == 200


def test_r_auth_3_demo_staff_sign_in_with_the_fixed_demo_secret(settings, browser, engine):
    from web.simulators.demo import DEMO_PASSWORD, DEMO_TOTP_SECRET, load

    lines = list(load(settings))
    assert any(DEMO_TOTP_SECRET in line and "bok@demo.ekp" in line for line in lines)
    assert any(DEMO_TOTP_SECRET in line and "kontroler@demo.ekp" in line for line in lines)
    assert not stored(engine, "anna@demo.ekp").has_totp
    assert not any(DEMO_TOTP_SECRET in line for line in load(settings))  # idempotent: enrolled once
    assert password_step(browser, "bok@demo.ekp", DEMO_PASSWORD).headers["location"] == "/login/code"
    assert browser.submit("/login/code", {"code": code_now(DEMO_TOTP_SECRET)}).status_code == 303
    assert browser.get("/desk").status_code == 200


def test_r_auth_3_new_recovery_codes_replace_the_old_ones_and_need_an_app_code(new_browser, users, clock):
    users.create("kontroler@example.pl", role="inspector", pesel=None, totp_secret="")
    first = new_browser()
    secret, old_codes = enrol_via_first_sign_in(first, "kontroler@example.pl")
    page = first.get("/account/two-factor")
    assert "Pozostało 10 nieużytych kodów odzyskiwania" in page_text(page.text)
    spent = first.submit("/account/two-factor", {"code": old_codes[0]}, action="/account/two-factor/recovery-codes")
    assert spent.status_code == 422  # a recovery code does not renew them (and is not used up)
    clock.travel(timedelta(seconds=30))
    renewed = first.submit("/account/two-factor", {"code": code_now(secret)}, action="/account/two-factor/recovery-codes")
    new_codes = recovery_codes_on(renewed.text)
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    other = new_browser()
    password_step(other, "kontroler@example.pl")
    assert other.submit("/login/code", {"code": old_codes[0]}).status_code == 401
    assert other.submit("/login/code", {"code": new_codes[0]}).status_code == 303


def test_r_auth_3_a_factor_from_another_secret_key_is_refused_without_an_error(browser, users, engine):
    user = users.create("bok@example.pl", role="staff", pesel=None)
    from web.platform.protect import encrypt_totp_secret

    with transaction(engine) as session:
        session.get(User, user.id).totp_secret_encrypted = encrypt_totp_secret(b"\x22" * 32, user.id, TEST_TOTP_SECRET)
    password_step(browser, "bok@example.pl")
    refused = browser.submit("/login/code", {"code": code_now()})
    assert refused.status_code == 401
    assert_not_signed_in(browser)
