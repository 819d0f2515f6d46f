"""The passenger's start page (`/home`, the installed app's start_url): the ticket to show, the e-purse,
the next charge and what needs doing, read in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlmodel import Session

from domain import home as rules
from domain.five_plus_one import BillingPolicy
from domain.tariff_5p1 import Tariff5p1
from web.cards.interface import Card
from web.five_plus_one.interface import SubscriptionMonthRow
from web.purse import interface as purse
from web.five_plus_one import interface as subscriptions
from web.cards.interface import cards_of
from web.tickets.interface import TicketView, my_tickets


@dataclass
class Attention:
    kind: str  # failed_charge | status_expiring | purse_debt | first_payment
    subject: object = None
    days_left: int | None = None


@dataclass
class Home:
    ticket: TicketView | None
    cycle_month: int | None  # month n of 6 of the ticket shown, when it is a 5+1 month
    next_ticket: TicketView | None
    purses: list[purse.PurseView]
    upcoming: object | None  # domain.five_plus_one.UpcomingCharge
    attention: list[Attention] = field(default_factory=list)


def home(session: Session, user_id: int, today: date, policy: BillingPolicy, tariff_5p1: Tariff5p1) -> Home:
    tickets = my_tickets(session, user_id, today, past_days=0)
    valid = [t for t in tickets if t.state == "valid"]
    # A mobile ticket first: it is the one with a code to show.
    valid.sort(key=lambda t: (not t.is_mobile, t.ticket.valid_until))
    shown = valid[0] if valid else None
    upcoming_ticket = next((t for t in tickets if t.state == "upcoming"), None)
    cycle_month = None
    if shown is not None and shown.ticket.subscription_month_id is not None:
        month = session.get(SubscriptionMonthRow, shown.ticket.subscription_month_id)
        cycle_month = month.month_index if month is not None else None
    tab = subscriptions.tab(session, user_id, policy, tariff_5p1)
    attention: list[Attention] = []
    sub = tab.subscription
    if sub is not None and sub.status == "pending_first_payment":
        attention.append(Attention("first_payment"))
    elif tab.pay_now_month is not None:
        attention.append(Attention("failed_charge", tab.pay_now_month))
    for card in cards_of(session, user_id):
        left = rules.status_days_left(card.resident_until, today) if card.has_resident_status else None
        if left is not None:
            attention.append(Attention("status_expiring", _card_label(card), left))
    purses = purse.my_purse_cards(session, user_id)
    attention.extend(Attention("purse_debt", p) for p in purses if p.balance < 0)
    upcoming = tab.upcoming if sub is not None and sub.status == "active" else None
    return Home(shown, cycle_month, upcoming_ticket, purses, upcoming, attention)


def _card_label(card: Card) -> str:
    return f"{card.carrier_type} {card.client_code}"
