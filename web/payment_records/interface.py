"""What the other areas may use of `web.payment_records`: its only door (import-linter: areas are
independent except through their `interface`). Keep it small; grow it on purpose."""

from __future__ import annotations

from web.payment_records.controllers import (
    reconcile_one as reconcile_one,
    send_to_payment_page as send_to_payment_page,
)
from web.payment_records.service import (
    erase_payer_of as erase_payer_of,
    Applied as Applied,
    IN_CHUNK as IN_CHUNK,
    Outcome as Outcome,
    PaymentPurposes as PaymentPurposes,
    PaymentStatus as PaymentStatus,
    PurposeHandlers as PurposeHandlers,
    purpose_handlers as purpose_handlers,
    PaymentToRecord as PaymentToRecord,
    Settled as Settled,
    apply_outcomes as apply_outcomes,
    ask_refund as ask_refund,
    create_payment_record as create_payment_record,
    create_payment_records as create_payment_records,
    give_back as give_back,
    one_of as one_of,
    outcome_from_gateway as outcome_from_gateway,
    pending_payments as pending_payments,
    OpenedTransaction as OpenedTransaction,
    record_gateway_ids as record_gateway_ids,
    staff_queue as staff_queue,
)
from web.payment_records.models import (
    Payment as Payment,
    PaymentEvent as PaymentEvent,
)

__all__ = [
    "erase_payer_of",
    "reconcile_one",
    "Applied",
    "IN_CHUNK",
    "OpenedTransaction",
    "Outcome",
    "Payment",
    "PaymentEvent",
    "PaymentPurposes",
    "PaymentStatus",
    "PurposeHandlers",
    "purpose_handlers",
    "PaymentToRecord",
    "Settled",
    "apply_outcomes",
    "ask_refund",
    "create_payment_record",
    "create_payment_records",
    "give_back",
    "one_of",
    "outcome_from_gateway",
    "pending_payments",
    "reconcile_one",
    "record_gateway_ids",
    "send_to_payment_page",
    "staff_queue",
]
