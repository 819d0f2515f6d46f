"""City cards in the operator's registry and linking them to an account (R-CARD-1..4).

The registry row is matched on carrier type + client code + the account's PESEL (compared as keyed
hashes computed by the web layer). Every way of not matching gives the same answer (R-CARD-2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from domain.accounts import InvalidPesel, read_pesel
from domain.carriers import CarrierType, ResidentStatus, UnknownCarrierType, carrier_type_from_code

CLIENT_CODE_RE = re.compile(r"^[A-Z0-9]{4,20}$")


def normalise_client_code(text: str) -> str:
    """What is printed on the card may be typed with spaces or dashes and in lower case."""
    return re.sub(r"[\s\-]", "", text or "").upper()


def client_code_problem(text: str) -> str | None:
    code = normalise_client_code(text)
    if not code:
        return "client_code.required"
    if not CLIENT_CODE_RE.match(code):
        return "client_code.format"
    return None


@dataclass(frozen=True)
class RegistryCard:
    """A card as the registry knows it, as far as linking needs to see it."""

    card_id: int
    carrier_type: CarrierType
    client_code: str
    pesel_hash: str
    account_id: int | None


class LinkOutcome(StrEnum):
    MATCH = "match"  # show the summary, ask "Czy dodać kartę do konta?"
    MISMATCH = "mismatch"  # type, code or PESEL differ, or no such card: one answer for all
    ALREADY_YOURS = "already_yours"
    LINKED_ELSEWHERE = "linked_elsewhere"  # all three match, but another account has it
    NO_PESEL = "no_pesel"  # the account was registered without PESEL: link at a service desk
    BLOCKED = "blocked"


def link_decision(card: RegistryCard | None, *, account_id: int, account_pesel_hash: str | None,
                  blocked: bool = False) -> LinkOutcome:
    """Decide what a linking attempt may say (R-CARD-2, R-CARD-3).

    `card` is the registry row found by carrier type and client code, or None. Only when type, code
    and PESEL all match may the answer reveal anything about the card.
    """
    if account_pesel_hash is None:
        return LinkOutcome.NO_PESEL
    if card is None or not _same(card.pesel_hash, account_pesel_hash):
        return LinkOutcome.MISMATCH
    if card.account_id == account_id:
        return LinkOutcome.ALREADY_YOURS
    if card.account_id is not None:
        return LinkOutcome.LINKED_ELSEWHERE
    if blocked:
        return LinkOutcome.BLOCKED
    return LinkOutcome.MATCH


def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


# --- The operator's registry export (CSV) -------------------------------------------------------

REQUIRED_COLUMNS = ("type", "client_code", "pesel", "holder_name")
OPTIONAL_COLUMNS = ("resident_from", "resident_until", "blocked")


@dataclass(frozen=True)
class RegistryRow:
    line: int
    carrier_type: CarrierType
    client_code: str
    pesel: str
    holder_name: str
    resident: ResidentStatus | None
    blocked: bool


@dataclass(frozen=True)
class RowProblem:
    line: int
    reason: str


def _parse_day(text: str) -> date:
    text = text.strip()
    if re.fullmatch(r"\d{2}\.\d{2}\.\d{4}", text):
        day, month, year = text.split(".")
        return date(int(year), int(month), int(day))
    return date.fromisoformat(text)


def missing_columns(header: list[str]) -> list[str]:
    names = {h.strip().lower() for h in header}
    return [c for c in REQUIRED_COLUMNS if c not in names]


def read_registry_row(line: int, row: dict[str, str]) -> RegistryRow | RowProblem:
    """One row of the registry export; a problem says which column and why, in English for operators."""
    get = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
    try:
        carrier_type = carrier_type_from_code(get.get("type", ""))
    except UnknownCarrierType:
        allowed = ", ".join(ct.value for ct in CarrierType)
        return RowProblem(line, f"type {get.get('type', '')!r} is not a carrier type ({allowed})")
    code_problem = client_code_problem(get.get("client_code", ""))
    if code_problem:
        return RowProblem(line, "client_code is missing" if code_problem == "client_code.required"
                          else "client_code must be 4-20 letters or digits")
    try:
        pesel = read_pesel(get.get("pesel", "")).number
    except InvalidPesel as exc:
        return RowProblem(line, {"pesel.required": "pesel is missing", "pesel.format": "pesel must be 11 digits",
                                 "pesel.checksum": "pesel has a wrong check digit",
                                 "pesel.date": "pesel encodes a date that does not exist"}[exc.code])
    holder = " ".join(get.get("holder_name", "").split())
    if not holder or len(holder) > 160:
        return RowProblem(line, "holder_name is missing" if not holder else "holder_name is longer than 160 characters")
    resident: ResidentStatus | None = None
    start_text, end_text = get.get("resident_from", ""), get.get("resident_until", "")
    try:
        start = _parse_day(start_text) if start_text else None
        end = _parse_day(end_text) if end_text else None
    except ValueError:
        return RowProblem(line, "resident_from/resident_until must be dates as YYYY-MM-DD or DD.MM.YYYY")
    if start or end:
        if start and end and end < start:
            return RowProblem(line, "resident_until is before resident_from")
        resident = ResidentStatus(valid_from=start, valid_until=end)
    blocked_text = get.get("blocked", "").lower()
    if blocked_text not in {"", "0", "1", "yes", "no", "true", "false", "tak", "nie"}:
        return RowProblem(line, "blocked must be yes/no (or 1/0)")
    return RegistryRow(
        line=line,
        carrier_type=carrier_type,
        client_code=normalise_client_code(get["client_code"]),
        pesel=pesel,
        holder_name=holder,
        resident=resident,
        blocked=blocked_text in {"1", "yes", "true", "tak"},
    )


def mask_holder_name(name: str) -> str:
    """On the confirmation screen: "Anna N." — enough to recognise one's own card."""
    parts = name.split()
    if len(parts) < 2:
        return name
    return " ".join(parts[:-1]) + f" {parts[-1][0]}."
