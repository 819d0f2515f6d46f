"""Two-factor sign-in (R-AUTH-3): who needs a second factor, reading a typed code, checking a TOTP code
(RFC 6238: 6 digits, 30-second steps, one step of drift either way) without accepting a code twice,
and who may reset a lost factor. Pure: the time and the last step used are arguments."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

import pyotp

INTERVAL = 30
DIGITS = 6
DRIFT_STEPS = 1  # a phone's clock may be one step (30 s) ahead or behind
ROLES_WITH_FACTOR = frozenset({"staff", "inspector", "admin"})
RECOVERY_CODES = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper without doubt
RECOVERY_LENGTH = 10  # shown as xxxxx-xxxxx; 31^10 ≈ 2^49, checked under a throttle
MAX_CODE_INPUT = 32


def role_requires_factor(role: str) -> bool:
    """Staff, inspectors and the operator's admins always sign in with a second factor (R-AUTH-3)."""
    return role in ROLES_WITH_FACTOR


def factor_required(role: str, enrolled: bool) -> bool:
    """A second step at sign-in: always for staff, inspectors and admins, for passengers who turned it on."""
    return role_requires_factor(role) or enrolled


@dataclass(frozen=True)
class TypedCode:
    kind: str  # "totp" | "recovery"
    value: str


def read_code(text: str) -> TypedCode | None:
    """What a person typed in the code field: 6 digits (the app's code) or a recovery code
    (10 letters and digits, with or without the hyphen and spaces). None for anything else."""
    if len(text) > MAX_CODE_INPUT:
        return None
    compact = "".join(text.split()).replace("-", "").lower()
    if len(compact) == DIGITS and compact.isascii() and compact.isdigit():
        return TypedCode("totp", compact)
    if len(compact) == RECOVERY_LENGTH and all(c in RECOVERY_ALPHABET for c in compact):
        return TypedCode("recovery", compact)
    return None


def format_recovery_code(code: str) -> str:
    return f"{code[:5]}-{code[5:]}"


def step_at(at: datetime) -> int:
    """The RFC 6238 time step (counter) of a moment (aware)."""
    return int(at.timestamp()) // INTERVAL


def code_at_step(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).generate_otp(step)


def accepted_step(secret: str, code: str, at: datetime, last_step: int | None) -> int | None:
    """The time step `code` belongs to if it is valid at `at` (within DRIFT_STEPS) and newer than
    `last_step` (a code once accepted, or any older one, is never accepted again); None otherwise."""
    now = step_at(at)
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(code_at_step(secret, step), code):
            return step
    return None


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The otpauth:// address an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).provisioning_uri(name=account, issuer_name=issuer)


def reset_refusal(actor_id: int, actor_role: str, target_id: int) -> str | None:
    """Why `actor` may not reset `target`'s second factor (a problem code), or None when allowed:
    only staff, and never their own factor (a lost factor is reset by another staff member)."""
    if actor_role != "staff":
        return "twofactor.reset_forbidden"
    if actor_id == target_id:
        return "twofactor.reset_self"
    return None
