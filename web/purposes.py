"""What each kind of payment buys, what each area erases of a person, and the card-in-use question: built
in one visible place at start-up.

The app factory (`web.app.create_app`), every `ekp` command and the benchmarks call `payment_purposes(settings)`
once and pass the (immutable) result explicitly to whatever applies a payment outcome: controllers get it by
Litestar's dependency injection (`purposes: PaymentPurposes`, provided from `app.state.purposes`), the jobs
from `app.state.purposes`, the CLI commands from their own call. No module registers anything as a side
effect of being imported, and nothing here is kept in a module global.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from sqlmodel import Session

from web.payment_records.interface import PaymentPurposes, purpose_handlers
from web.platform.settings import Settings


def payment_purposes(settings: Settings) -> PaymentPurposes:
    """The 5+1 month, the e-purse top-up and the card deposit payments, their handlers closed over the
    settings (tariffs, mail) they need."""
    from web.card_applications import service as card_applications
    from web.purse import service as purse
    from web.five_plus_one import service as subscriptions

    return PaymentPurposes({
        subscriptions.PURPOSE: purpose_handlers(
            settle_batch=partial(subscriptions.settle_month_payments, settings=settings),
            card_saved=subscriptions.remember_saved_card,
            reverse=partial(subscriptions.reverse_month_payment, settings=settings)),
        purse.PURPOSE: purpose_handlers(
            settle=partial(purse.settle_top_up_payment, tariff=settings.purse_tariff),
            reverse=purse.reverse_top_up_payment),
        card_applications.PURPOSE: purpose_handlers(
            settle=partial(card_applications.settle_deposit_payment, operator=settings.profile),
            reverse=partial(card_applications.reverse_deposit_payment, operator=settings.profile)),
    })


ErasureStep = Callable[[Session, int], None]


def gdpr_erasure_steps() -> tuple[ErasureStep, ...]:
    """Each area's part of a GDPR erasure beyond the account's own rows, in the order they run
    (`web.accounts.service.erase_account` runs them in its transaction, before deleting the account; the app
    factory passes them through `app.state.erasure_steps`). Policy (the docstring of `erase_account`):
    tickets already paid stay valid without the link, payments stay without the link, cards are unlinked."""
    from web.card_applications.service import erase_applications_of
    from web.cards.interface import erase_cards_of
    from web.five_plus_one.interface import erase_subscriptions_of
    from web.office.service import erase_staff_marks_of
    from web.payment_records.interface import erase_payer_of
    from web.purse.interface import erase_purse_cards_of
    from web.tickets.interface import erase_tickets_of

    return (
        erase_subscriptions_of,  # 5+1: subscriptions and their months (their tickets' link to a month goes first)
        erase_tickets_of,  # tickets (and their phones, inspections made): stay, no longer linked to the account
        erase_purse_cards_of,  # e-purse cards: unregistered from the person, balance and ledger stay
        erase_cards_of,  # Kraków cards: unlinked
        erase_applications_of,  # Kołobrzeg card applications: with their photos and timelines
        erase_payer_of,  # payments: kept for the accounts, no longer naming the person
        erase_staff_marks_of,  # a staff account: meter cash counted, registry files imported stay, unnamed
    )


def card_in_use_question() -> Callable[[Session, int], bool]:
    """The cards area's question "is this Kraków card in use?" (R-CARD: an active 5+1 subscription's card is not
    unlinked), answered by 5+1; the app factory passes it through `app.state.card_in_use`, so neither area
    imports the other."""
    from web.five_plus_one.service import card_has_active_subscription

    return card_has_active_subscription
