"""Accounts created by the operator: staff, inspectors, demo passengers."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session

from domain.accounts import PasswordPolicy, email_problem, normalise_email, password_problems, read_pesel
from web.platform import clock
from web.platform.db import make_engine, transaction
from web.accounts.models import User
from web.platform.protect import encrypt_pesel, pesel_hash
from web.accounts.service import find_user, hash_password
from web.platform.settings import Settings


def create_active_user(session: Session, settings: Settings, *, role: str, email: str, first_name: str, last_name: str,
                       password: str, pesel: str | None = None, birth_date: date | None = None) -> User:
    if email_problem(email):
        raise ValueError(f"not an e-mail address: {email}")
    problems = password_problems(password, PasswordPolicy(min_length=settings.password_min_length))
    if problems:
        raise ValueError("password too weak: " + ", ".join(problems))
    if find_user(session, email) is not None:
        raise ValueError(f"an account with {normalise_email(email)} already exists")
    info = read_pesel(pesel) if pesel else None
    user = User(
        email=normalise_email(email), first_name=first_name, last_name=last_name, role=role,
        password_hash=hash_password(password),
        pesel_hash=pesel_hash(settings.pesel_key, info.number) if info else None,
        pesel_encrypted=encrypt_pesel(settings.pesel_key, info.number) if info else None,
        birth_date=info.birth_date if info else (birth_date or date(1970, 1, 1)),
        activated_at=clock.now(),
    )
    session.add(user)
    session.flush()
    return user


def disable_user(session: Session, user_id: int, roles: tuple[str, ...]) -> User | None:
    """Take an account with one of `roles` out of service (the back office: staff, inspectors): it can no longer
    sign in and its sessions end (`User.is_active`). None when there is no such account."""
    user = session.get(User, user_id)
    if user is None or user.role not in roles:
        return None
    if user.disabled_at is None:
        user.disabled_at = clock.now()
    return user


def add_user(settings: Settings, **fields: str) -> User:
    engine = make_engine(settings.database_url)
    try:
        with transaction(engine) as session:
            return create_active_user(session, settings, **fields)  # type: ignore[arg-type]
    finally:
        engine.dispose()
