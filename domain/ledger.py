"""The e-purse ledger (R-MONEY-2): every change of a card's balance is an entry, and the balance
is nothing but the sum of its entries.

Amounts are signed grosze: money onto the card is positive, money off it negative. The web layer
persists exactly the entries `entries_for` returns (adding card id, time and references), and
never computes a balance any other way than `balance(entries)`.

A credit ride (R-VAL-5) takes the whole fare although the balance is too low, so the balance goes
below zero; the amount below zero is the outstanding credit. Because a credit is granted only
while nothing is outstanding (balance >= 0), the balance can never fall below minus one ride's
fare. A top-up first repays that credit (R-TOP-4): its payment is split into a
`credit_repayment` entry and a `topup` entry for the rest, so the ledger shows where it went.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from domain.money import Grosze


class EntryKind(StrEnum):
    FARE = "fare"  # the holder's own ride; 0 records a free ride (R-VAL-1)
    COMPANION = "companion"  # co-passenger, baggage or animal (R-VAL-4)
    CREDIT_RIDE = "credit_ride"  # the holder's ride taken on credit (R-VAL-5)
    CREDIT_REPAYMENT = "credit_repayment"  # part of a top-up repaying a credit ride (R-TOP-4)
    PARKING = "parking"  # R-PARK-3
    TOPUP = "topup"  # R-TOP-1 / R-TOP-2 (what is left of the payment after repayment)
    BONUS = "bonus"  # R-TOP-3
    TRANSFER_IN = "transfer_in"  # balance moved from a blocked card (R-KKM-7)
    TRANSFER_OUT = "transfer_out"
    FORFEITURE = "forfeiture"  # funds forfeited after 3 years of non-use (R-KKM-5)
    REVERSAL = "reversal"  # a refunded or charged-back online top-up taken back (R-PAY-3)
    PAYOUT = "payout"  # the balance paid out in cash when the card is given up (R-KKM-2)


class LedgerError(ValueError):
    """An event that must not be booked against the current balance."""


@dataclass(frozen=True)
class LedgerEntry:
    kind: EntryKind
    amount: Grosze
    detail: str = ""  # e.g. "city:off_50", "baggage", "meter" — for receipts and audits

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError("a ledger amount is integer grosze")
        if self.amount == 0 and self.kind is not EntryKind.FARE:
            raise LedgerError(f"a {self.kind} entry of 0 changes nothing")
        if self.kind in _NEGATIVE and self.amount > 0:
            raise LedgerError(f"a {self.kind} entry takes money off the card")
        if self.kind in _POSITIVE and self.amount < 0:
            raise LedgerError(f"a {self.kind} entry puts money onto the card")


_NEGATIVE = {EntryKind.FARE, EntryKind.COMPANION, EntryKind.CREDIT_RIDE, EntryKind.PARKING, EntryKind.REVERSAL,
             EntryKind.PAYOUT}
_POSITIVE = {EntryKind.CREDIT_REPAYMENT, EntryKind.TOPUP, EntryKind.BONUS}


def balance(entries: Iterable[LedgerEntry]) -> Grosze:
    """The card's balance: the sum of its entries (R-MONEY-2). Below zero = credit outstanding."""
    return sum((entry.amount for entry in entries), 0)


def reversal_of(booked_for_payment: Iterable[LedgerEntry]) -> LedgerEntry | None:
    """R-PAY-3: the entry that takes back what one payment put on the card — its top-up, its bonus and
    the credit it repaid, less anything taken back already — or None when nothing is left to take.

    It is booked whatever the balance: money already spent leaves the balance below zero, a debt that
    refuses further credit rides (R-VAL-5) and is repaid first by the next top-up (R-TOP-4)."""
    net = balance(booked_for_payment)
    return LedgerEntry(EntryKind.REVERSAL, -net, "payment_reversed") if net > 0 else None


def outstanding_credit(current_balance: Grosze) -> Grosze:
    """How much of a credit ride is still to be repaid (0 when nothing is outstanding)."""
    return max(0, -current_balance)


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class RidePaid:
    """The holder's own fare (0 = recorded free ride), or a companion/baggage fare."""

    fare: Grosze
    companion: bool = False
    detail: str = ""


@dataclass(frozen=True)
class RideCredited:
    """The holder's fare taken on credit because the balance is too low (R-VAL-5)."""

    fare: Grosze
    detail: str = ""


@dataclass(frozen=True)
class ParkingPaid:
    fee: Grosze
    detail: str = ""


@dataclass(frozen=True)
class ToppedUp:
    """Money paid in (`payment`) and the bonus granted on it (`bonus`, R-TOP-3)."""

    payment: Grosze
    bonus: Grosze = 0
    detail: str = ""


@dataclass(frozen=True)
class BalanceMovedOut:
    """The whole balance leaves a blocked card for its replacement (R-KKM-7)."""

    detail: str = ""


@dataclass(frozen=True)
class BalanceMovedIn:
    """A blocked card's balance `amount` (may be below zero: an outstanding credit) arrives."""

    amount: Grosze
    detail: str = ""


@dataclass(frozen=True)
class FundsForfeited:
    """The whole balance is forfeited (R-KKM-5: 3 years unused)."""

    detail: str = ""


@dataclass(frozen=True)
class BalancePaidOut:
    """The whole (positive) balance paid out in cash at the desk when the card is given up (R-KKM-2)."""

    detail: str = ""


LedgerEvent = (RidePaid | RideCredited | ParkingPaid | ToppedUp | BalanceMovedOut | BalanceMovedIn | FundsForfeited
               | BalancePaidOut)


def entries_for(event: LedgerEvent, *, current_balance: Grosze) -> list[LedgerEntry]:
    """The entries to append for `event` on a card whose balance is `current_balance`.

    Raises `LedgerError` when the event cannot happen at this balance (the purse rules in
    `domain.purse` decide first, so this only guards against misuse).
    """
    match event:
        case RidePaid(fare=fare, companion=companion, detail=detail):
            if fare < 0 or (companion and fare == 0):
                raise LedgerError("a fare is a positive amount (0 only for the holder's free ride)")
            if fare > max(current_balance, 0):
                raise LedgerError("the balance does not cover this fare")
            kind = EntryKind.COMPANION if companion else EntryKind.FARE
            return [LedgerEntry(kind, -fare, detail)]
        case RideCredited(fare=fare, detail=detail):
            if current_balance < 0:
                raise LedgerError("a credit ride is still outstanding")
            if fare <= current_balance:
                raise LedgerError("the balance covers this fare; no credit is needed")
            return [LedgerEntry(EntryKind.CREDIT_RIDE, -fare, detail)]
        case ParkingPaid(fee=fee, detail=detail):
            if fee <= 0 or fee > max(current_balance, 0):
                raise LedgerError("the balance does not cover this parking fee")
            return [LedgerEntry(EntryKind.PARKING, -fee, detail)]
        case ToppedUp(payment=payment, bonus=bonus, detail=detail):
            if payment <= 0 or bonus < 0:
                raise LedgerError("a top-up pays in a positive amount")
            repayment = min(payment, outstanding_credit(current_balance))
            entries = []
            if repayment:
                entries.append(LedgerEntry(EntryKind.CREDIT_REPAYMENT, repayment, detail))
            if payment - repayment:
                entries.append(LedgerEntry(EntryKind.TOPUP, payment - repayment, detail))
            if bonus:
                entries.append(LedgerEntry(EntryKind.BONUS, bonus, detail))
            return entries
        case BalanceMovedOut(detail=detail):
            return [LedgerEntry(EntryKind.TRANSFER_OUT, -current_balance, detail)] if current_balance else []
        case BalanceMovedIn(amount=amount, detail=detail):
            if current_balance < 0 and amount < 0:
                raise LedgerError("the new card already has a credit outstanding")
            return [LedgerEntry(EntryKind.TRANSFER_IN, amount, detail)] if amount else []
        case FundsForfeited(detail=detail):
            return [LedgerEntry(EntryKind.FORFEITURE, -current_balance, detail)] if current_balance else []
        case BalancePaidOut(detail=detail):
            if current_balance < 0:
                raise LedgerError("a credit is outstanding: nothing to pay out")
            return [LedgerEntry(EntryKind.PAYOUT, -current_balance, detail)] if current_balance else []
    raise TypeError(f"not a ledger event: {event!r}")


def entries_after(entries: Iterable[LedgerEntry], event: LedgerEvent) -> list[LedgerEntry]:
    """`entries_for` given the card's entries so far instead of its balance."""
    return entries_for(event, current_balance=balance(entries))
