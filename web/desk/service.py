"""The customer-service desk (BOK/POK), for staff: cash top-ups with a receipt (R-TOP-1), loss reports by
phone or in person and moving the balance to a replacement card (R-KKM-7), and linking a card to an
account after checking the holder's ID (the way for accounts registered without PESEL, R-CARD-2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from domain import purse as rules
from domain.cards import LinkOutcome, normalise_client_code
from domain.carriers import CarrierType
from domain.money import Grosze
from domain.operator import OperatorProfile
from domain.purse_tariff import PurseTariff
from web.platform import clock
from web.platform.db import affected
from web.accounts.interface import User
from web.cards.interface import Card
from web.purse.interface import PurseCardRow
from web.purse import interface as purse
from web.accounts.interface import audit, find_user
from web.platform.settings import Settings


class DeskProblem(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def find_purse_card(session: Session, number: str) -> purse.PurseView | None:
    row = session.scalars(select(PurseCardRow).where(col(PurseCardRow.number) == "".join(number.split()))).first()
    return purse.purse_view(session, row) if row is not None else None


@dataclass(frozen=True)
class DeskReceipt:
    """What the desk's fiscal receipt shows (R-TOP-1)."""

    number: str
    at: datetime  # local
    payment: Grosze
    bonus: Grosze
    credit_repaid: Grosze
    balance_after: Grosze


def desk_limits(settings: Settings) -> rules.DeskCashLimits:
    """R-TOP-5 limits from EKP_DESK_TOPUP_MAX and EKP_DESK_TOPUP_CONFIRM_ABOVE (validated at start-up)."""
    return rules.DeskCashLimits(maximum=settings.desk_topup_max, confirm_above=settings.desk_topup_confirm_above)


def cash_top_up(session: Session, staff_id: int, number: str, payment: Grosze, ip: str | None, *,
                limits: rules.DeskCashLimits, confirmed_amount: Grosze | None, tariff: PurseTariff) -> DeskReceipt:
    """R-TOP-5 and R-TOP-1: within the desk's ceiling, above its threshold only when the same amount was
    confirmed a second time; at least the minimum; the bonus for personal cards; an outstanding credit repaid
    first. The ledger entries and the audit event name the staff member."""
    row = purse.lock_card(session, number)
    if row is None:
        raise DeskProblem("desk.no_such_card")
    now = clock.now()
    try:
        receipt = rules.top_up_at_desk(purse.card_of(row), balance=row.balance, payment=payment,
                                       now=clock.to_local(now), limits=limits, confirmed_amount=confirmed_amount,
                                       tariff=tariff)
    except rules.PurseRefused as exc:
        raise DeskProblem(f"purse.{exc.reason.value}") from exc
    if receipt.renews_activation:
        row.last_activated_on = clock.to_local(now).date()
    purse.book_entry(session, row, receipt.entries, at=now, place="BOK", staff_id=staff_id)
    audit(session, "desk.top_up", staff_id, ip, f"purse_card={row.id} amount={payment}")
    return DeskReceipt(row.number, clock.to_local(now), receipt.payment, receipt.bonus, receipt.credit_repaid,
                       receipt.balance_after)


def report_loss(session: Session, staff_id: int, number: str, ip: str | None) -> datetime:
    """R-KKM-7, reported by phone or at the desk (the caller checked client number, name and PESEL):
    the card is blocked by 08:00 the next day. Returns that time (local)."""
    row = purse.lock_card(session, number)
    if row is None:
        raise DeskProblem("desk.no_such_card")
    now = clock.now()
    try:
        card = rules.report_loss(purse.card_of(row), clock.to_local(now))
    except rules.PurseRefused as exc:
        raise DeskProblem(f"purse.{exc.reason.value}") from exc
    row.blocked_from, row.updated_at = card.blocked_from, now
    audit(session, "desk.loss_reported", staff_id, ip, f"purse_card={row.id}")
    assert card.blocked_from is not None
    return clock.to_local(card.blocked_from)


def replace_card(session: Session, staff_id: int, old_number: str, new_number: str, ip: str | None) -> purse.PurseView:
    """R-KKM-7: a new card with a new number for the holder; the blocked card's balance (an outstanding
    credit too) moves to it on one ledger each, and the new card takes the old one's account link."""
    new_number = "".join(new_number.split())
    if not new_number.isdigit() or not 4 <= len(new_number) <= 20:
        raise DeskProblem("desk.new_number_format")
    if session.scalars(select(PurseCardRow).where(col(PurseCardRow.number) == new_number)).first() is not None:
        raise DeskProblem("desk.new_number_taken")
    old = purse.lock_card(session, old_number)
    if old is None:
        raise DeskProblem("desk.no_such_card")
    now = clock.now()
    today = clock.today()
    new = purse.issue_card(session, number=new_number, kind=rules.CardKind(old.kind), issued_on=today,
                           holder_name=old.holder_name, pesel_hash=old.pesel_hash,
                           registered_fare=rules.RegisteredFare(old.registered_fare),
                           entitlement_until=old.entitlement_until, demo=old.demo)  # demo money stays on demo cards
    try:
        moved = rules.transfer_balance(purse.card_of(old), old_balance=old.balance, new_card=purse.card_of(new),
                                       new_balance=new.balance, now=clock.to_local(now))
    except rules.PurseRefused as exc:
        raise DeskProblem(f"purse.{exc.reason.value}") from exc
    purse.book_entry(session, old, moved.old_card_entries, at=now, place="BOK", staff_id=staff_id)
    purse.book_entry(session, new, moved.new_card_entries, at=now, place="BOK", staff_id=staff_id)
    if old.account_id is not None:
        new.account_id, new.linked_at = old.account_id, now
        old.account_id, old.linked_at = None, None
    audit(session, "desk.card_replaced", staff_id, ip, f"purse_card={old.id} new_card={new.id} amount={moved.amount}")
    return purse.purse_view(session, new)


def link_card_for(session: Session, operator: OperatorProfile, staff_id: int, email: str, carrier_type: CarrierType,
                  client_code: str, ip: str | None) -> tuple[LinkOutcome, User | None, Card | None]:
    """Link a registry card to an account after the holder showed an ID at the desk (the only way for
    an account registered without PESEL). A card on another account is refused."""
    from sqlalchemy import update

    user = find_user(session, email)
    if user is None or user.role != "passenger":
        raise DeskProblem("desk.no_such_account")
    card = session.scalars(select(Card).where(col(Card.carrier_type) == carrier_type.value,
                                              col(Card.client_code) == normalise_client_code(client_code))).first()
    if card is None:
        raise DeskProblem("desk.no_such_card")
    if card.account_id == user.id:
        return LinkOutcome.ALREADY_YOURS, user, card
    if card.account_id is not None:
        return LinkOutcome.LINKED_ELSEWHERE, user, card
    linked = affected(session.execute(update(Card).where(col(Card.id) == card.id, col(Card.account_id).is_(None))
                             .values(account_id=user.id, linked_at=clock.now())))
    if linked != 1:
        return LinkOutcome.LINKED_ELSEWHERE, user, card
    audit(session, "desk.card_linked", staff_id, ip, f"card={card.id} user={user.id}")
    from web.cards.interface import tell_pesel_holders_of_link

    tell_pesel_holders_of_link(session, operator, user, card)  # R-AUTH-2
    return LinkOutcome.MATCH, user, card
