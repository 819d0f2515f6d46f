"""What each kind of payment buys, and what each area erases of a person, registered in one visible place at
start-up.

The app factory (`web.app.create_app`) and every `ekp` command call `register_payment_purposes()` before
any payment outcome is applied, so an outcome applied by a fresh process (`ekp payments reconcile`,
`ekp billing run`) finds its handlers; no module registers anything as a side effect of being imported.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session


def register_payment_purposes() -> None:
    """Register the 5+1 month, the e-purse top-up and the card deposit payments (idempotent)."""
    from web.card_applications import service as card_applications
    from web.payment_records import service as payments
    from web.purse import service as purse
    from web.five_plus_one import service as subscriptions

    payments.register_purpose(subscriptions.PURPOSE, settle_batch=subscriptions.settle_month_payments,
                              card_saved=subscriptions.remember_saved_card,
                              reverse=subscriptions.reverse_month_payment)
    payments.register_purpose(purse.PURPOSE, settle=purse.settle_top_up_payment, reverse=purse.reverse_top_up_payment)
    payments.register_purpose(card_applications.PURPOSE, settle=card_applications.settle_deposit_payment,
                              reverse=card_applications.reverse_deposit_payment)


def gdpr_erasure_steps() -> tuple[Callable[[Session, int], None], ...]:
    """Each area's part of a GDPR erasure beyond the account's own rows (`web.accounts.service.erase_account`
    runs them in its transaction; the app factory passes them through `app.state.erasure_steps`)."""
    from web.card_applications.service import erase_applications_of
    from web.five_plus_one.service import erase_subscriptions_of

    return (erase_subscriptions_of, erase_applications_of)


def card_in_use_question() -> Callable[[Session, int], bool]:
    """The cards area's question "is this Kraków card in use?" (R-CARD: an active 5+1 subscription's card is not
    unlinked), answered by 5+1; the app factory passes it through `app.state.card_in_use`, so neither area
    imports the other."""
    from web.five_plus_one.service import card_has_active_subscription

    return card_has_active_subscription
