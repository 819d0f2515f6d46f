"""What the other areas may use of `web.pages`: its only door (import-linter: areas are
independent except through their `interface`). Keep it small; grow it on purpose."""

from __future__ import annotations

from web.pages.payment_history import (
    HISTORY_LIMIT as HISTORY_LIMIT,
    cancelled_ids as cancelled_ids,
    my_payment as my_payment,
    my_payments as my_payments,
)

__all__ = [
    "HISTORY_LIMIT",
    "cancelled_ids",
    "my_payment",
    "my_payments",
]
