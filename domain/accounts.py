"""Passenger accounts: registration fields, PESEL, passwords, activation links (R-ACC-1..5).

Problems are reported as machine codes (``"pesel.checksum"``); the web layer turns them into
messages in the passenger's language and shows each next to its field.
"""

from __future__ import annotations

import email.policy
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.headerregistry import Address
from enum import Enum

from email_validator import EmailNotValidError, validate_email
from stdnum import exceptions as stdnum_errors
from stdnum.pl import pesel as stdnum_pesel

EMAIL_MAX = 254
NAME_MAX = 80
_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_NAME_RE = re.compile(r"^[^\W\d_](?:[^\W\d_]|[ '\-.])*$")
OLDEST_BIRTH_DATE = date(1900, 1, 1)


class Sex(str, Enum):
    MALE = "M"
    FEMALE = "F"


@dataclass(frozen=True)
class PeselInfo:
    number: str
    birth_date: date
    sex: Sex


class InvalidPesel(ValueError):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def read_pesel(text: str) -> PeselInfo:
    """Check a PESEL (R-ACC-2) and read the date of birth and sex it encodes.

    Codes: ``pesel.required``, ``pesel.format`` (not 11 digits), ``pesel.checksum``,
    ``pesel.date`` (the encoded date does not exist).
    """
    number = (text or "").strip().replace(" ", "").replace("-", "")
    if not number:
        raise InvalidPesel("pesel.required")
    if not number.isdigit() or len(number) != 11:
        raise InvalidPesel("pesel.format")
    try:
        stdnum_pesel.validate(number)
    except stdnum_errors.InvalidChecksum as exc:
        raise InvalidPesel("pesel.checksum") from exc
    except stdnum_errors.InvalidComponent as exc:
        raise InvalidPesel("pesel.date") from exc
    except stdnum_errors.ValidationError as exc:  # pragma: no cover - format is checked above
        raise InvalidPesel("pesel.format") from exc
    sex = Sex.MALE if int(number[9]) % 2 else Sex.FEMALE
    return PeselInfo(number=number, birth_date=stdnum_pesel.get_birth_date(number), sex=sex)


def mask_pesel(number: str) -> str:
    """Show only what a person needs to recognise their PESEL: ``44•••••••58``."""
    return number[:2] + "\u2022" * 7 + number[-2:]


def mask_email(email: str) -> str:
    """Enough of an address for its owner to recognise it, not for anyone else to use: ``j•••@example.pl``."""
    local, _, domain = email.partition("@")
    return (local[:1] + "\u2022" * 3 + "@" + domain) if domain else "\u2022" * 3


def pesel_held_elsewhere(active_holder_ids: list[int], account_id: int | None = None) -> bool:
    """R-AUTH-2: a PESEL belongs to at most one active account. True when an active account other than
    `account_id` (None: an account not created yet) already holds it; inactive accounts hold nothing, so
    registering with someone's PESEL without activating cannot lock that person out."""
    return any(holder != account_id for holder in active_holder_ids)


def normalise_email(text: str) -> str:
    return (text or "").strip().lower()


def email_problem(text: str) -> str | None:
    """`email.required` or `email.invalid`, or None for one plain address (`jan@example.pl`).

    Checked by the maintained `email-validator` (syntax only: it never looks the domain up) and, on top,
    our own stricter shape: ASCII only, no quoting, no display name, no list. `a,b@example.pl` (two
    recipients), `a<b@example.pl` (a display name), NUL and other control characters are refused."""
    email = normalise_email(text)
    if not email:
        return "email.required"
    if len(email) > EMAIL_MAX or not email.isascii() or not _EMAIL_RE.match(email):
        return "email.invalid"
    try:
        checked = validate_email(email, check_deliverability=False, allow_smtputf8=False, allow_quoted_local=False,
                                 allow_domain_literal=False, allow_display_name=False)
    except EmailNotValidError:
        return "email.invalid"
    if checked.ascii_email is None or checked.ascii_email.lower() != email:
        return "email.invalid"
    return None


@dataclass(frozen=True)
class PasswordPolicy:
    """R-ACC-5: at least 8 characters with an upper-case letter and a digit (configurable)."""

    min_length: int = 8
    need_upper: bool = True
    need_digit: bool = True
    max_length: int = 256


def password_problems(password: str, policy: PasswordPolicy = PasswordPolicy()) -> list[str]:
    problems = []
    if len(password) < policy.min_length:
        problems.append("password.too_short")
    if len(password) > policy.max_length:
        problems.append("password.too_long")
    if policy.need_upper and not any(c.isupper() for c in password):
        problems.append("password.no_upper")
    if policy.need_digit and not any(c.isdigit() for c in password):
        problems.append("password.no_digit")
    return problems


@dataclass
class RegistrationForm:
    """What the person typed into the registration form (R-ACC-1)."""

    first_name: str = ""
    last_name: str = ""
    pesel: str = ""
    no_pesel: bool = False
    birth_date: str = ""  # ISO yyyy-mm-dd, only with no_pesel
    email: str = ""
    email_repeat: str = ""
    password: str = ""
    password_repeat: str = ""
    accept_terms: bool = False
    gdpr_seen: bool = False


@dataclass(frozen=True)
class Registration:
    first_name: str
    last_name: str
    email: str
    password: str
    pesel: str | None
    birth_date: date


@dataclass
class RegistrationResult:
    registration: Registration | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.registration is not None


def _name_problem(text: str, field_name: str) -> str | None:
    value = text.strip()
    if not value:
        return f"{field_name}.required"
    if len(value) > NAME_MAX or not _NAME_RE.match(value):
        return f"{field_name}.invalid"
    return None


def check_registration(form: RegistrationForm, today: date, policy: PasswordPolicy = PasswordPolicy()) -> RegistrationResult:
    """Validate every field of R-ACC-1 at once; the result has either the data or the problems per field."""
    errors: dict[str, list[str]] = {}

    def add(field_name: str, code: str | None) -> None:
        if code:
            errors.setdefault(field_name, []).append(code)

    add("first_name", _name_problem(form.first_name, "first_name"))
    add("last_name", _name_problem(form.last_name, "last_name"))

    pesel_number: str | None = None
    birth: date | None = None
    if form.no_pesel:
        try:
            birth = date.fromisoformat(form.birth_date.strip())
        except ValueError:
            add("birth_date", "birth_date.required" if not form.birth_date.strip() else "birth_date.invalid")
        else:
            if birth > today or birth < OLDEST_BIRTH_DATE:
                add("birth_date", "birth_date.out_of_range")
                birth = None
    else:
        try:
            info = read_pesel(form.pesel)
        except InvalidPesel as exc:
            add("pesel", exc.code)
        else:
            if info.birth_date > today:
                add("pesel", "pesel.future")
            else:
                pesel_number, birth = info.number, info.birth_date

    add("email", email_problem(form.email))
    if "email" not in errors and normalise_email(form.email) != normalise_email(form.email_repeat):
        add("email_repeat", "email.mismatch")

    for code in password_problems(form.password, policy):
        add("password", code)
    if form.password != form.password_repeat:
        add("password_repeat", "password.mismatch")
    if not form.accept_terms:
        add("accept_terms", "terms.required")
    if not form.gdpr_seen:
        add("gdpr_seen", "gdpr.required")

    if errors or birth is None:
        return RegistrationResult(errors=errors)
    return RegistrationResult(
        registration=Registration(
            first_name=form.first_name.strip(),
            last_name=form.last_name.strip(),
            email=normalise_email(form.email),
            password=form.password,
            pesel=pesel_number,
            birth_date=birth,
        )
    )


class LinkState(str, Enum):
    VALID = "valid"
    EXPIRED = "expired"
    USED = "used"


def link_state(sent_at: datetime, used_at: datetime | None, now: datetime, valid_for: timedelta) -> LinkState:
    """R-ACC-3: a single-use link, valid for `valid_for` (3 hours for activation) from sending."""
    if used_at is not None:
        return LinkState.USED
    if now >= sent_at + valid_for:
        return LinkState.EXPIRED
    return LinkState.VALID


def sender_address(text: str) -> Address:
    """EKP_MAIL_FROM (`EKP <no-reply@example.pl>` or a bare address) as one header address; ValueError if not."""
    if not text or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError(f"not one e-mail address: {text!r}")
    header = email.policy.default.header_factory("From", text)
    addresses: tuple[Address, ...] = tuple(getattr(header, "addresses", ()))
    if len(addresses) != 1 or header.defects or "@" not in addresses[0].addr_spec:
        raise ValueError(f"not one e-mail address: {text!r}")
    return Address(display_name=addresses[0].display_name, addr_spec=addresses[0].addr_spec)
