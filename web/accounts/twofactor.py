"""Two factors (R-AUTH-3): enrol a TOTP secret, check a code at sign-in (once), recovery codes, reset by
another staff member. The secret is stored encrypted with a key derived from EKP_SECRET_KEY (web.platform.protect)."""

from __future__ import annotations

import logging
import secrets

import pyotp
from cryptography.exceptions import InvalidTag
import segno
from sqlalchemy import delete, func, select, update
from sqlmodel import Session, col

from domain import twofactor as rules
from domain.accounts import normalise_email
from web.platform import clock
from web.platform.db import affected
from web.accounts.models import RecoveryCode, User
from web.platform.protect import decrypt_totp_secret, encrypt_totp_secret, recovery_code_hash
from web.accounts.service import audit, find_user
from web.platform.settings import Settings

ISSUER = "EKP"
log = logging.getLogger(__name__)


def new_secret() -> str:
    """A fresh TOTP secret: 32 base32 characters (160 bits, as RFC 4226 recommends)."""
    return pyotp.random_base32()


def qr_svg(secret: str, email: str, title: str) -> str:
    """The enrolment QR code as inline SVG (drawn here: no external image, CSP-clean)."""
    uri = rules.provisioning_uri(secret, email, ISSUER)
    return segno.make(uri, error="m").svg_inline(scale=5, border=4, dark="#000", light="#fff", title=title,
                                              omitsize=True)


def _new_recovery_codes(session: Session, settings: Settings, user_id: int) -> list[str]:
    session.execute(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user_id))
    codes = ["".join(secrets.choice(rules.RECOVERY_ALPHABET) for _ in range(rules.RECOVERY_LENGTH))
             for _ in range(rules.RECOVERY_CODES)]
    for code in codes:
        session.add(RecoveryCode(user_id=user_id, code_hash=recovery_code_hash(settings.secret_key, user_id, code)))
    return [rules.format_recovery_code(code) for code in codes]


def set_secret(session: Session, settings: Settings, user: User, secret: str, step: int | None = None) -> None:
    """Store `secret` as the account's confirmed factor (enrolment, demo data, test fixtures)."""
    user.totp_secret_encrypted = encrypt_totp_secret(settings.secret_key, user.id, secret)  # type: ignore[arg-type]
    user.totp_enabled_at = clock.now()
    user.totp_last_step = step


def enrol(session: Session, settings: Settings, user_id: int, secret: str, code: str, ip: str | None) -> list[str] | None:
    """Confirm enrolment with a code from the app: the secret is stored and ten recovery codes are returned
    (to be shown once). None when the code does not match or the account already has a factor."""
    typed = rules.read_code(code)
    user = session.get(User, user_id)
    if user is None or typed is None or typed.kind != "totp" or user.has_totp:
        return None
    step = rules.accepted_step(secret, typed.value, clock.now(), None)
    if step is None:
        audit(session, "2fa.enrol_failed", user.id, ip)
        return None
    set_secret(session, settings, user, secret, step)
    codes = _new_recovery_codes(session, settings, user.id)  # type: ignore[arg-type]
    audit(session, "2fa.enrolled", user.id, ip)
    return codes


def verify(session: Session, settings: Settings, user_id: int, code: str, ip: str | None) -> str | None:
    """Check the second step: a TOTP code newer than the last one accepted, or an unused recovery code.
    Each is taken by one conditional UPDATE, so two requests racing with the same code cannot both pass.
    Returns "totp" or "recovery" on success, None otherwise."""
    typed = rules.read_code(code)
    user = session.get(User, user_id)
    if user is None or typed is None or not user.has_totp:
        return None
    now = clock.now()
    if typed.kind == "totp":
        try:
            secret = decrypt_totp_secret(settings.secret_key, user.id, user.totp_secret_encrypted)  # type: ignore[arg-type]
        except InvalidTag:  # EKP_SECRET_KEY changed since enrolment: only a reset at the desk helps
            log.warning("the second factor of user %s does not decrypt with EKP_SECRET_KEY", user.id)
            audit(session, "2fa.undecryptable", user.id, ip)
            return None
        step = rules.accepted_step(secret, typed.value, now, user.totp_last_step)
        if step is not None:
            taken = affected(session.execute(
                update(User)
                .where(col(User.id) == user.id)
                .where((col(User.totp_last_step).is_(None)) | (User.totp_last_step < step))  # type: ignore[operator]
                .values(totp_last_step=step)
                .execution_options(synchronize_session=False)
            ))
            if taken == 1:
                audit(session, "2fa.passed", user.id, ip)
                return "totp"
    else:
        taken = affected(session.execute(
            update(RecoveryCode)
            .where(col(RecoveryCode.user_id) == user.id,
                   col(RecoveryCode.code_hash) == recovery_code_hash(settings.secret_key, user.id, typed.value),  # type: ignore[arg-type]
                   col(RecoveryCode.used_at).is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        ))
        if taken == 1:
            audit(session, "2fa.recovery_used", user.id, ip)
            return "recovery"
    audit(session, "2fa.failed", user.id, ip)
    return None


def recovery_codes_left(session: Session, user_id: int) -> int:
    return session.scalar(select(func.count()).select_from(RecoveryCode)
                          .where(col(RecoveryCode.user_id) == user_id, col(RecoveryCode.used_at).is_(None))) or 0


def new_recovery_codes(session: Session, settings: Settings, user_id: int, code: str, ip: str | None) -> list[str] | None:
    """Replace the recovery codes after a fresh code from the app (the old ones stop working)."""
    typed = rules.read_code(code)
    if typed is None or typed.kind != "totp":  # a recovery code is not spent on this
        return None
    if verify(session, settings, user_id, code, ip) != "totp":
        return None
    codes = _new_recovery_codes(session, settings, user_id)
    audit(session, "2fa.recovery_renewed", user_id, ip)
    return codes


def _clear(session: Session, user: User) -> None:
    user.totp_secret_encrypted = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    session.execute(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user.id))


def disable(session: Session, settings: Settings, user_id: int, code: str, ip: str | None) -> bool:
    """A passenger turns the second factor off (with a current code); staff and inspectors cannot."""
    user = session.get(User, user_id)
    if user is None or rules.role_requires_factor(user.role):
        return False
    if verify(session, settings, user_id, code, ip) is None:
        return False
    _clear(session, user)
    audit(session, "2fa.disabled", user.id, ip)
    return True


def reset_for(session: Session, actor_id: int, email: str, ip: str | None) -> tuple[str | None, User | None]:
    """The desk resets a lost factor (R-AUTH-3): only a staff member, never their own; audited with both ids.
    The account enrols again at its next sign-in (staff, inspectors) or may turn it on again (passengers).
    Returns (problem code or None, the account)."""
    actor = session.get(User, actor_id)
    target = find_user(session, normalise_email(email))
    if actor is None:
        return "twofactor.reset_forbidden", None
    if target is None:
        return "twofactor.no_account", None
    refusal = rules.reset_refusal(actor.id, actor.role, target.id)  # type: ignore[arg-type]
    if refusal:
        audit(session, "2fa.reset_refused", actor.id, ip, detail=f"user {target.id}: {refusal}")
        return refusal, target
    if not target.has_totp:
        return "twofactor.not_enrolled", target
    _clear(session, target)
    audit(session, "2fa.reset", actor.id, ip, detail=f"user {target.id} ({target.role})")
    return None, target
