"""What the other areas may use of `web.five_plus_one`: its only door (import-linter: areas are
independent except through their `interface`). Keep it small; grow it on purpose."""

from __future__ import annotations

from web.five_plus_one.billing import (
    billing_policy as billing_policy,
)
from web.five_plus_one.service import (
    erase_subscriptions_of as erase_subscriptions_of,
    PAYER_CANCELLED as PAYER_CANCELLED,
    PURPOSE as PURPOSE,
    cancelled_ids as cancelled_ids,
    card_has_active_subscription as card_has_active_subscription,
    tab as tab,
)
from web.five_plus_one.models import (
    Subscription5p1 as Subscription5p1,
    SubscriptionMonthRow as SubscriptionMonthRow,
)

__all__ = [
    "erase_subscriptions_of",
    "PAYER_CANCELLED",
    "PURPOSE",
    "Subscription5p1",
    "SubscriptionMonthRow",
    "billing_policy",
    "cancelled_ids",
    "card_has_active_subscription",
    "tab",
]
