"""Accounts: register, activate, log in, reset a password, change it, erase the account (R-ACC-1..5)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlmodel import Session, col

from domain.accounts import LinkState, Registration, link_state, normalise_email, pesel_held_elsewhere
from web.platform import clock
from web.platform.db import affected
from web.platform.mail import queue_mail
from web.platform.models import AuditEvent
from web.accounts.models import EmailToken, User
from web.platform.protect import encrypt_pesel, pesel_hash, token_hash
from web.platform.settings import Settings

hasher = PasswordHasher()  # Argon2id with the library's current recommended parameters
# Verified against when the address is unknown, so a failed login takes as long either way.
_DUMMY_HASH = hasher.hash("not-a-real-password-0")


def hash_password(password: str) -> str:
    return hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def audit(session: Session, action: str, user_id: int | None = None, ip: str | None = None, detail: str = "") -> None:
    session.add(AuditEvent(action=action, user_id=user_id, ip=ip, detail=detail[:500]))


def find_user(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(col(User.email) == normalise_email(email))).first()


def active_pesel_holders(session: Session, pesel_hash: str | None) -> list[User]:
    """The active accounts holding this PESEL (one, or none; more only from before R-AUTH-2)."""
    if not pesel_hash:
        return []
    return list(session.scalars(select(User).where(col(User.pesel_hash) == pesel_hash, col(User.activated_at).is_not(None))
                                .order_by(col(User.id))))


def _lock_pesel(session: Session, pesel_hash: str | None) -> None:
    """Serialise activations of accounts sharing a PESEL: a no-op UPDATE of every account row with it takes
    the row locks (PostgreSQL) or the write lock (SQLite) before the check, so two accounts activated at
    once cannot both see the PESEL free (R-AUTH-2)."""
    if pesel_hash:
        session.execute(update(User).where(col(User.pesel_hash) == pesel_hash).values(pesel_hash=User.pesel_hash)
                        .execution_options(synchronize_session=False))


def _pesel_held_elsewhere(session: Session, user: User) -> bool:
    holders = active_pesel_holders(session, user.pesel_hash)
    return pesel_held_elsewhere([h.id for h in holders], user.id)  # type: ignore[misc]


def _tell_pesel_holders(session: Session, settings: Settings, holders: list[User], ip: str | None) -> None:
    """R-AUTH-2: someone tried to open (or activate) a second account with the holder's PESEL."""
    for holder in holders:
        queue_mail(session, holder.email, "pesel_in_use", language=holder.language, operator=settings.profile,
                   user=holder, login_link=f"{settings.base_url}/login", reset_link=f"{settings.base_url}/password/forgot")
        audit(session, "register.pesel_held", holder.id, ip)


def _issue_token(session: Session, user: User, purpose: str) -> tuple[str, EmailToken]:
    token = secrets.token_urlsafe(32)
    row = EmailToken(token_hash=token_hash(token), user_id=user.id, purpose=purpose)  # type: ignore[arg-type]
    session.add(row)
    session.flush()
    return token, row


def _send_activation(session: Session, settings: Settings, user: User) -> None:
    token, row = _issue_token(session, user, "activate")
    mail = queue_mail(
        session,
        user.email,
        "activate",
        language=user.language,
        operator=settings.profile,
        user=user,
        link=f"{settings.base_url}/activate/{token}",
        hours=settings.activation_hours,
    )
    mail.email_token_id = row.id  # the link's hours count from delivery (R-ACC-3)


def register(session: Session, settings: Settings, data: Registration, language: str, ip: str | None) -> None:
    """Create an inactive account and mail its activation link (R-ACC-3).

    An address that is already registered gets a different mail (a hint to log in or reset the password),
    and the page says the same either way, in the same time (R-ACC-4, R-AUTH-4: no user enumeration).
    """
    # Hashed whether or not the address is taken: Argon2 is most of the time this takes (R-AUTH-4).
    password_hash = hash_password(data.password)
    existing = find_user(session, data.email)
    if existing is not None:
        queue_mail(session, existing.email, "already_registered", language=existing.language,
                   operator=settings.profile, user=existing,
                   login_link=f"{settings.base_url}/login", reset_link=f"{settings.base_url}/password/forgot")
        audit(session, "register.duplicate", existing.id, ip)
        return
    holders = active_pesel_holders(session, pesel_hash(settings.pesel_key, data.pesel)) if data.pesel else []
    if pesel_held_elsewhere([h.id for h in holders]):  # type: ignore[misc]
        # R-AUTH-2: no second account for one person; the page says the same as ever (R-ACC-4), after the
        # same password hashing a new account costs (R-AUTH-4).
        hash_password(data.password)
        _tell_pesel_holders(session, settings, holders, ip)
        return
    user = User(
        email=data.email,
        first_name=data.first_name,
        last_name=data.last_name,
        password_hash=password_hash,
        pesel_hash=pesel_hash(settings.pesel_key, data.pesel) if data.pesel else None,
        pesel_encrypted=encrypt_pesel(settings.pesel_key, data.pesel) if data.pesel else None,
        birth_date=data.birth_date,
        language=language,
    )
    session.add(user)
    session.flush()
    _send_activation(session, settings, user)
    audit(session, "register", user.id, ip)


@dataclass(frozen=True)
class TokenCheck:
    state: LinkState | None  # None: no such token
    user: User | None = None
    token: EmailToken | None = None
    pesel_held: bool = False  # activation refused: another active account holds this PESEL (R-AUTH-2)


def check_token(session: Session, settings: Settings, raw_token: str, purpose: str) -> TokenCheck:
    token = session.scalars(
        select(EmailToken).where(col(EmailToken.token_hash) == token_hash(raw_token), col(EmailToken.purpose) == purpose)
    ).first()
    if token is None:
        return TokenCheck(None)
    valid_for = timedelta(hours=settings.activation_hours if purpose == "activate" else settings.reset_hours)
    user = session.get(User, token.user_id)
    return TokenCheck(link_state(token.sent_at, token.used_at, clock.now(), valid_for), user, token)


def activate(session: Session, settings: Settings, raw_token: str, ip: str | None) -> TokenCheck:
    """Use an activation link once (R-ACC-3); not while another active account holds the PESEL (R-AUTH-2)."""
    check = check_token(session, settings, raw_token, "activate")
    if check.state is LinkState.VALID and check.user is not None and check.user.activated_at is None:
        _lock_pesel(session, check.user.pesel_hash)
        session.refresh(check.user)
    if (check.state is LinkState.VALID and check.user is not None and check.user.activated_at is None
            and _pesel_held_elsewhere(session, check.user)):
        _tell_pesel_holders(session, settings, active_pesel_holders(session, check.user.pesel_hash), ip)
        audit(session, "activate.pesel_held", check.user.id, ip)
        return TokenCheck(check.state, check.user, check.token, pesel_held=True)
    if check.state is LinkState.VALID and check.user is not None and check.token is not None:
        # Guard against a double click racing itself: only one UPDATE marks the token used.
        now = clock.now()
        marked = affected(session.execute(
            EmailToken.__table__.update()  # type: ignore[attr-defined]
            .where(col(EmailToken.id) == check.token.id, col(EmailToken.used_at).is_(None))
            .values(used_at=now)
        ))
        if marked != 1:
            return TokenCheck(LinkState.USED, check.user, check.token)
        if check.user.activated_at is None:
            check.user.activated_at = now
        audit(session, "activate", check.user.id, ip)
    return check


def resend_activation(session: Session, settings: Settings, email: str) -> None:
    """Send a fresh activation link to an inactive account; silently nothing otherwise."""
    user = find_user(session, email)
    if user is not None and user.activated_at is None:  # never for an account disabled in the back office
        _send_activation(session, settings, user)


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = find_user(session, email)
    if user is None:
        password_matches(_DUMMY_HASH, password)
        return None
    if not password_matches(user.password_hash, password):
        return None
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def request_password_reset(session: Session, settings: Settings, email: str, ip: str | None) -> None:
    """Mail a reset link if the address has an account; the page says the same either way (R-ACC-4)."""
    user = find_user(session, email)
    if user is None:
        return
    token, row = _issue_token(session, user, "reset")
    mail = queue_mail(session, user.email, "reset", language=user.language, operator=settings.profile, user=user,
                      link=f"{settings.base_url}/password/reset/{token}", hours=settings.reset_hours)
    mail.email_token_id = row.id
    audit(session, "reset.request", user.id, ip)


def set_password(session: Session, user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.password_changed_at = clock.now()


def reset_password(session: Session, settings: Settings, raw_token: str, password: str, ip: str | None) -> TokenCheck:
    check = check_token(session, settings, raw_token, "reset")
    if check.state is LinkState.VALID and check.user is not None and check.token is not None:
        check.token.used_at = clock.now()
        set_password(session, check.user, password)
        # A reset link proves the address, so an account never activated becomes active, unless another
        # active account holds its PESEL (R-AUTH-2).
        if check.user.activated_at is None:
            _lock_pesel(session, check.user.pesel_hash)
        if check.user.activated_at is None and not _pesel_held_elsewhere(session, check.user):
            check.user.activated_at = clock.now()
        session.execute(
            EmailToken.__table__.update()  # type: ignore[attr-defined]
            .where(col(EmailToken.user_id) == check.user.id, col(EmailToken.purpose) == "reset", col(EmailToken.used_at).is_(None))
            .values(used_at=clock.now())
        )
        audit(session, "reset.done", check.user.id, ip)
    return check


EraseStep = Callable[[Session, int], None]
"""One area's part of a GDPR erasure: delete what it holds of this account id (in the same transaction)."""
ErasureSteps = tuple[EraseStep, ...]
"""Every area's step, in order (built once at start-up: `web.purposes.gdpr_erasure_steps`)."""


def erase_account(session: Session, user: User, ip: str | None, steps: Sequence[EraseStep] = ()) -> None:
    """GDPR erasure: the account and everything that names the person go; the audit keeps only the id.

    5+1 subscriptions go with their months, so nothing more is ever charged (R-5P1-7); tickets already
    paid stay valid on the card, and payments stay as the operator's accounting records — both without
    the link to the account. Cards are unlinked (the registry is the operator's). Mail to the address,
    sent or not, is deleted from the outbox. Each area erases its own data through `steps`, run here in
    order in the same transaction before the account's own rows go: listed in one place,
    `web.purposes.gdpr_erasure_steps()` (the app factory passes them through `app.state.erasure_steps`)."""
    from web.platform.mail import erase_mail_to
    from web.accounts.models import RecoveryCode

    assert user.id is not None
    for step in steps:
        step(session, user.id)
    session.execute(delete(EmailToken).where(col(EmailToken.user_id) == user.id))
    session.execute(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user.id))
    erase_mail_to(session, user.email)
    audit(session, "account.erased", user.id, ip)
    session.delete(user)


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0
