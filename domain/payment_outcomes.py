"""What a payment outcome means for the business (R-PAY-2), whatever gateway reported it."""

from __future__ import annotations

from domain.money import Grosze


def paid_in_full(amount_due: Grosze, amount_paid: Grosze | None) -> bool:
    """R-PAY-2: a payment is paid only when the amount paid equals the amount due. Less (or more) is held
    for staff review, never applied. `None`: the report does not state a paid amount separately (a
    token charge's answer is for exactly the amount we asked)."""
    return amount_paid is None or amount_paid == amount_due
