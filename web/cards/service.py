"""The card registry and "Moje karty": importing the operator's export, linking and unlinking cards."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select, update
from sqlmodel import Session, col

from domain.cards import (
    LinkOutcome,
    RegistryCard,
    RegistryRow,
    RowProblem,
    link_decision,
    missing_columns,
    normalise_client_code,
    read_registry_row,
)
from domain.carriers import CarrierType, ResidentStatus, carrier_info, resident_status_on
from domain.operator import OperatorProfile
from web.platform import clock
from web.platform.db import affected
from web.cards.models import Card
from web.accounts.interface import User
from web.platform.protect import pesel_hash
from web.accounts.interface import audit
from web.platform.settings import Settings


# --- import ---------------------------------------------------------------------------------------

@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    unlinked: int = 0  # updated cards that changed hands: no longer linked to the account that held them
    problems: list[RowProblem] = field(default_factory=list)
    changes: list[tuple[int, str, str]] = field(default_factory=list)  # (line, "added"|"updated"|"unlinked", card)

    @property
    def ok(self) -> bool:
        return not self.problems


def _unreadable(line: int, exc: csv.Error) -> RowProblem:
    if "field limit" in str(exc):
        return RowProblem(line, f"a field is longer than {csv.field_size_limit()} characters; the file is not read further")
    return RowProblem(line, f"not readable as CSV ({exc}); the file is not read further")


def read_registry_csv(text: str) -> tuple[list[RegistryRow], list[RowProblem]]:
    """Parse the operator's export (comma or semicolon separated, UTF-8 with or without BOM)."""
    text = text.lstrip("\ufeff")
    first_line = text.splitlines()[0] if text else ""
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    try:
        header = reader.fieldnames or []
    except csv.Error as exc:
        return [], [_unreadable(1, exc)]
    missing = missing_columns(list(header))
    if missing:
        return [], [RowProblem(1, "missing column(s): " + ", ".join(missing))]
    rows: list[RegistryRow] = []
    problems: list[RowProblem] = []
    seen: dict[tuple[CarrierType, str], int] = {}
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a field over the csv module's limit: the rest cannot be read reliably
            problems.append(_unreadable(reader.line_num + 1, exc))  # the line being read is not counted yet
            break
        line = reader.line_num
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        if None in row:
            problems.append(RowProblem(line, "more fields than columns in the header"))
            continue
        parsed = read_registry_row(line, row)
        if isinstance(parsed, RowProblem):
            problems.append(parsed)
            continue
        key = (parsed.carrier_type, parsed.client_code)
        if key in seen:
            problems.append(RowProblem(line, f"the same card ({key[0].value} {key[1]}) is already on line {seen[key]}"))
            continue
        seen[key] = line
        rows.append(parsed)
    return rows, problems


def import_registry(session: Session, settings: Settings, text: str) -> ImportReport:
    """Import or update the registry from the export, all rows or none (the caller's transaction)."""
    rows, problems = read_registry_csv(text)
    report = ImportReport(problems=problems)
    if problems:
        return report
    return apply_registry_rows(session, settings, rows, report)


def apply_registry_rows(session: Session, settings: Settings, rows: list[RegistryRow],
                        report: ImportReport | None = None) -> ImportReport:
    """Apply checked rows of the export (the caller's transaction); counts go into `report`. The back office
    applies a large file in chunks of rows, each in its own short transaction."""
    report = report if report is not None else ImportReport()
    for row in rows:
        values = {
            "holder_name": row.holder_name,
            "pesel_hash": pesel_hash(settings.pesel_key, row.pesel),
            "has_resident_status": row.resident is not None,
            "resident_from": row.resident.valid_from if row.resident else None,
            "resident_until": row.resident.valid_until if row.resident else None,
            "blocked": row.blocked,
        }
        label = f"{row.carrier_type.value} {row.client_code}"
        card = session.scalars(
            select(Card).where(col(Card.carrier_type) == row.carrier_type.value, col(Card.client_code) == row.client_code)
        ).first()
        if card is None:
            session.add(Card(carrier_type=row.carrier_type.value, client_code=row.client_code, **values))
            report.added += 1
            report.changes.append((row.line, "added", label))
            continue
        if all(getattr(card, name) == value for name, value in values.items()):
            report.unchanged += 1
            continue
        change = "updated"
        if card.pesel_hash != values["pesel_hash"] and card.account_id is not None:
            # The card changed hands in the registry: it no longer belongs to the linked account.
            card.account_id, card.linked_at = None, None
            report.unlinked += 1
            change = "unlinked"
        for name, value in values.items():
            setattr(card, name, value)
        card.updated_at = clock.now()
        report.updated += 1
        report.changes.append((row.line, change, label))
    session.flush()
    return report


# --- what a passenger sees ------------------------------------------------------------------------

def resident_status(card: Card) -> ResidentStatus | None:
    if not card.has_resident_status:
        return None
    return ResidentStatus(valid_from=card.resident_from, valid_until=card.resident_until)


@dataclass(frozen=True)
class CardView:
    id: int
    carrier_type: str
    carrier_name: str
    is_mobile: bool
    client_code: str
    holder_name: str
    resident_state: str
    resident_until: date | None
    blocked: bool


def card_view(card: Card, today: date) -> CardView:
    info = carrier_info(CarrierType(card.carrier_type))
    return CardView(
        id=card.id,  # type: ignore[arg-type]
        carrier_type=card.carrier_type,
        carrier_name=info.name_pl,
        is_mobile=info.is_mobile,
        client_code=card.client_code,
        holder_name=card.holder_name,
        resident_state=resident_status_on(resident_status(card), today).value,
        resident_until=card.resident_until,
        blocked=card.blocked,
    )


def cards_of(session: Session, user_id: int) -> list[Card]:
    return list(session.scalars(select(Card).where(col(Card.account_id) == user_id).order_by(col(Card.linked_at), col(Card.id))))


def my_cards(session: Session, user_id: int) -> list[CardView]:
    today = clock.today()
    return [card_view(card, today) for card in cards_of(session, user_id)]


# --- linking --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LinkCheck:
    outcome: LinkOutcome
    card: CardView | None = None  # only when type, code and PESEL all match


def find_card_to_link(session: Session, user_id: int, carrier_type: CarrierType, client_code: str, ip: str | None) -> LinkCheck:
    """Step 2 of "Dodaj kartę": check type + client code + the account's PESEL against the registry."""
    user = session.get(User, user_id)
    assert user is not None
    card = session.scalars(
        select(Card).where(col(Card.carrier_type) == carrier_type.value, col(Card.client_code) == normalise_client_code(client_code))
    ).first()
    found = None
    if card is not None:
        found = RegistryCard(card.id, carrier_type, card.client_code, card.pesel_hash, card.account_id)  # type: ignore[arg-type]
    outcome = link_decision(found, account_id=user_id, account_pesel_hash=user.pesel_hash,
                            blocked=bool(card and card.blocked))
    # Audit every attempt without the PESEL; the code is kept only when the data matched.
    detail = f"type={carrier_type.value}" + (f" card={card.id}" if outcome is not LinkOutcome.MISMATCH and card else "")
    audit(session, f"card.link.{outcome.value}", user_id, ip, detail)
    view = card_view(card, clock.today()) if card is not None and outcome is not LinkOutcome.MISMATCH else None
    return LinkCheck(outcome, view)


def link_card(session: Session, operator: OperatorProfile, user_id: int, card_id: int, ip: str | None) -> LinkOutcome:
    """The passenger said "Tak": link the card, unless someone else got it in the meantime."""
    user = session.get(User, user_id)
    card = session.get(Card, card_id)
    if user is None or card is None:
        return LinkOutcome.MISMATCH
    found = RegistryCard(card.id, CarrierType(card.carrier_type), card.client_code, card.pesel_hash, card.account_id)  # type: ignore[arg-type]
    outcome = link_decision(found, account_id=user_id, account_pesel_hash=user.pesel_hash, blocked=card.blocked)
    if outcome is not LinkOutcome.MATCH:
        return outcome
    # One UPDATE decides a race between two accounts: a card is linked to at most one (R-CARD-3).
    linked = affected(session.execute(
        update(Card).where(col(Card.id) == card_id, col(Card.account_id).is_(None)).values(account_id=user_id, linked_at=clock.now())
    ))
    if linked != 1:
        return LinkOutcome.LINKED_ELSEWHERE
    audit(session, "card.linked", user_id, ip, f"card={card_id}")
    tell_pesel_holders_of_link(session, operator, user, card)
    return LinkOutcome.MATCH


def tell_pesel_holders_of_link(session: Session, operator: OperatorProfile, user: User, card: Card) -> None:
    """R-AUTH-2: every active account holding the card's PESEL hears that the card was linked (the linking
    account itself, and any other, with the linking account's address masked)."""
    from domain.accounts import mask_email
    from web.platform.mail import queue_mail
    from web.accounts.interface import active_pesel_holders

    label = f"{card.carrier_type} {card.client_code}"
    for holder in active_pesel_holders(session, card.pesel_hash):
        queue_mail(session, holder.email, "card_linked", language=holder.language, operator=operator, user=holder,
                   card=label, own=holder.id == user.id, account=mask_email(user.email))


class CardInUse(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


CardIsInUse = Callable[[Session, int], bool]
"""The named question this area asks the 5+1 area: does an active subscription use this card? Passed in by
the caller: the app factory takes `web.purposes.card_in_use_question()` (5+1's `card_has_active_subscription`)
into `app.state.card_in_use` and the cards controller hands that on, so neither area imports the other."""


def why_card_cannot_be_unlinked(session: Session, card: Card, in_use: CardIsInUse) -> str | None:
    """Reasons a card must stay linked: an active 5+1 subscription uses it."""
    if card.id is not None and in_use(session, card.id):
        return "card.in_use_by_subscription"
    return None


def unlink_card(session: Session, user_id: int, card_id: int, ip: str | None, in_use: CardIsInUse) -> str | None:
    """Unlink a card of this account; returns a problem code when it cannot be unlinked."""
    card = session.get(Card, card_id)
    if card is None or card.account_id != user_id:
        return "card.not_found"
    reason = why_card_cannot_be_unlinked(session, card, in_use)
    if reason:
        return reason
    card.account_id, card.linked_at = None, None
    audit(session, "card.unlinked", user_id, ip, f"card={card_id}")
    return None


def my_card(session: Session, user_id: int, card_id: int) -> CardView | None:
    card = session.get(Card, card_id)
    if card is None or card.account_id != user_id:
        return None
    return card_view(card, clock.today())


# --------------------------------------------------------------------------- GDPR erasure


def erase_cards_of(session: Session, user_id: int) -> None:
    """GDPR erasure (a step of `web.purposes.gdpr_erasure_steps`): the person's Kraków cards are unlinked (the
    registry is the operator's)."""
    session.execute(update(Card).where(col(Card.account_id) == user_id).values(account_id=None, linked_at=None))
