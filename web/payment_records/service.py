"""Our side of payments: a record per payment with its state history, and applying each outcome
exactly once however many times (and in whatever order) the webhook, the browser's return, a token
charge's answer or reconciliation report it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Protocol

import anyio
from sqlalchemy import ARRAY, any_, bindparam, func, insert, literal, or_, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from domain.payment_outcomes import paid_in_full
from payments import GatewayError, GatewayTimeout, PaymentGateway, PaymentStatus, Refund
from web.platform import clock
from web.platform.db import affected, transaction
from web.payment_records.models import Payment, PaymentEvent

log = logging.getLogger("ekp.payments")

TERMINAL = {PaymentStatus.PAID.value, PaymentStatus.FAILED.value}
# Money went back to the payer (our refund, one made in the operator's panel, or the bank's chargeback).
REVERSED = {PaymentStatus.REFUNDED.value, PaymentStatus.CHARGEBACK.value}
# Our record's own states besides the gateway's (Payment.status):
HELD = "held_for_review"  # R-PAY-2: paid less (or more) than due; nothing applied, staff decide
REFUND_DUE = "refund_due"  # R-PAY-4: paid for nothing; the refund is asked of the gateway until it is done
# What staff see in the desk's queue (R-PAY-2..4).
FOR_STAFF = [HELD, REFUND_DUE, *sorted(REVERSED)]


@dataclass(frozen=True)
class Settled:
    """What the business side decided when an outcome was applied."""

    refund: bool = False  # money arrived for something no longer wanted: give it back
    reversed: bool = False  # a refund or chargeback took back what the payment had bought (R-PAY-3)


@dataclass(frozen=True)
class Outcome:
    """A payment outcome from any source, reduced to what the business needs."""

    reference: str
    status: str  # a PaymentStatus value
    amount: int | None = None
    currency: str = "PLN"
    title: str | None = None
    transaction_id: str | None = None
    card_token: str | None = None
    card_brand: str | None = None
    card_last4: str | None = None
    card_expiry: str | None = None
    error_code: str | None = None
    paid_amount: int | None = None  # what the payer actually paid, when the source says (R-PAY-2)


class HostedPayment(Protocol):
    """A payment recorded on our side, ready to be created at the gateway's hosted page."""

    reference: str
    amount: int
    description: str
    payer_email: str
    payer_name: str


# What each payment purpose buys. `web.purposes.payment_purposes(settings)` builds the one `PaymentPurposes`
# at start-up (the app factory, every `ekp` command, the jobs); it is passed explicitly to every function
# that applies an outcome. Nothing is registered as a side effect of importing a module.

# function(session, [(payment, outcome), ...]) -> [Settled, ...]: apply paid or failed outcomes to what they
# paid for, in order; `apply_outcomes` passes each payment as a Core row (id, reference, purpose, subject_id,
# user_id, kind, amount, currency, status, gateway ids) just after its conditional UPDATE won.
SettleBatch = Callable[[Session, list[tuple[Any, Outcome]]], list[Settled]]
# function(session, payment, status) -> str: a refund or chargeback (`status`) of a payment that had bought
# something takes it back (R-PAY-3); returns what was done, for staff.
Reverse = Callable[[Session, Payment, str], str]
# function(session, payment, outcome): a card saved with a payment whose outcome was already applied from a
# source that carries no card (the browser's return asks the gateway's status first).
CardSaved = Callable[[Session, Payment, Outcome], None]


@dataclass(frozen=True)
class PurposeHandlers:
    """How the outcome of a payment of one purpose is applied and how a reversal takes it back."""

    settle_batch: SettleBatch
    reverse: Reverse
    card_saved: CardSaved | None = None


def purpose_handlers(*, reverse: Reverse, settle: Callable[[Session, Payment, Outcome], Settled] | None = None,
                     settle_batch: SettleBatch | None = None, card_saved: CardSaved | None = None) -> PurposeHandlers:
    """What a payment of a purpose buys: how its outcome is applied (`settle_batch` for many payments at
    once, or `settle` for one payment, then called with each as an ORM `Payment`) and how a reversal takes
    it back."""
    if settle_batch is None:
        if settle is None:
            raise ValueError("give settle or settle_batch")
        settle_batch = _one_by_one(settle)
    elif settle is not None:
        raise ValueError("give settle or settle_batch, not both")
    return PurposeHandlers(settle_batch=settle_batch, reverse=reverse, card_saved=card_saved)


@dataclass(frozen=True)
class PaymentPurposes:
    """Every payment purpose's handlers, built once at start-up (`web.purposes.payment_purposes`), immutable."""

    handlers: Mapping[str, PurposeHandlers]

    def __post_init__(self) -> None:
        object.__setattr__(self, "handlers", MappingProxyType(dict(self.handlers)))

    def of(self, purpose: str) -> PurposeHandlers:
        """The handlers of `purpose`; a payment of a purpose nobody handles is a wiring error (RuntimeError:
        the transaction rolls back, the outcome stays unapplied and is reported again)."""
        try:
            return self.handlers[purpose]
        except KeyError:
            raise RuntimeError(f"no handler for payments of purpose {purpose!r}: "
                               "web.purposes.payment_purposes() builds them at start-up") from None

    def card_saved(self, purpose: str) -> CardSaved | None:
        handlers = self.handlers.get(purpose)
        return handlers.card_saved if handlers is not None else None


IN_CHUNK = 500  # ids or references per IN (...) list


def _one_by_one(settle: Callable[[Session, Payment, Outcome], Settled]) -> Callable[[Session, list[tuple[Any, Outcome]]], list[Settled]]:
    def settle_each(session: Session, pairs: list[tuple[Any, Outcome]]) -> list[Settled]:
        return [settle(session, _fresh(session, row.id), outcome) for row, outcome in pairs]
    return settle_each


def _fresh(session: Session, payment_id: int) -> Payment:
    """The payment as the database has it now (our Core statements changed it under the ORM's feet)."""
    session.flush()
    payment = session.get(Payment, payment_id, populate_existing=True)
    assert payment is not None
    return payment


def one_of(session: Session, column: Any, values: list[Any]) -> Any:
    """`column IN (values)`; on PostgreSQL `column = ANY(:array)`, one parameter instead of one per value
    (psycopg parses a query with hundreds of parameters each time it is sent)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(literal(list(values), ARRAY(column.type)))
    return column.in_(values)


@dataclass(frozen=True)
class PaymentToRecord:
    reference: str
    purpose: str
    subject_id: int
    user_id: int | None
    kind: str
    amount: int


def create_payment_record(session: Session, *, reference: str, purpose: str, subject_id: int, user_id: int | None,
                          kind: str, amount: int) -> int:
    """A pending payment and its first event (`create_payment_records` for one); returns its id."""
    session.flush()  # the rows it refers to are written first
    return create_payment_records(session, [PaymentToRecord(reference, purpose, subject_id, user_id, kind, amount)])[reference]


def create_payment_records(session: Session, wanted: list[PaymentToRecord]) -> dict[str, int]:
    """Pending payments and their first events: two INSERTs in all. Returns reference -> payment id."""
    if not wanted:
        return {}
    now = clock.now()
    table, events = Payment.__table__, PaymentEvent.__table__  # type: ignore[attr-defined]
    ids: dict[str, int] = {}
    for start in range(0, len(wanted), IN_CHUNK):
        chunk = wanted[start:start + IN_CHUNK]
        rows = session.execute(insert(table).returning(table.c.id, table.c.reference, sort_by_parameter_order=True), [
            {"reference": w.reference, "purpose": w.purpose, "subject_id": w.subject_id, "user_id": w.user_id,
             "kind": w.kind, "amount": w.amount, "currency": "PLN", "status": PaymentStatus.PENDING.value,
             "created_at": now, "updated_at": now} for w in chunk]).all()
        ids.update({reference: payment_id for payment_id, reference in rows})
        session.execute(insert(events), [
            {"payment_id": ids[w.reference], "at": now, "source": "created", "status": "pending", "detail": w.kind}
            for w in chunk])
    return ids


@dataclass(frozen=True)
class OpenedTransaction:
    """A payment's transaction as the gateway opened it: its id, title and (hosted) payment page."""

    reference: str
    transaction_id: str
    title: str
    redirect_url: str | None = None


def record_gateway_ids(session: Session, opened: list[OpenedTransaction]) -> None:
    """The gateway's transactions for our payments (a hosted payment's page, token charges' transactions),
    in one executemany. Token charges are recorded - and committed by the caller - before any of them is
    paid, so that a crash or a second worker asks the gateway about that transaction instead of opening
    (and paying) another (R-PAY-1): a payment that already has a different transaction keeps it. An
    unknown reference changes nothing."""
    if not opened:
        return
    table = Payment.__table__  # type: ignore[attr-defined]
    session.execute(
        update(table).where(table.c.reference == bindparam("b_reference"),
                            or_(table.c.gateway_transaction_id.is_(None),
                                table.c.gateway_transaction_id == bindparam("b_transaction_id")))
        .values(gateway_transaction_id=bindparam("b_transaction_id"), gateway_title=bindparam("b_title"),
                redirect_url=func.coalesce(bindparam("b_redirect_url"), table.c.redirect_url),
                updated_at=clock.now()),
        [{"b_reference": o.reference, "b_transaction_id": o.transaction_id[:64], "b_title": o.title[:64],
          "b_redirect_url": o.redirect_url[:1000] if o.redirect_url else None} for o in opened])


def payment_by_reference(session: Session, reference: str) -> Payment | None:
    return session.scalars(select(Payment).where(col(Payment.reference) == reference)).first()


class OutcomeRejected(Exception):
    """An outcome that does not fit our record (unknown reference, wrong amount or currency)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def apply_outcome(session: Session, purposes: PaymentPurposes, outcome: Outcome,
                  source: str) -> tuple[Payment, Settled | None]:
    """`apply_outcomes` for one outcome: the payment as it is now and what was settled (None when nothing
    new happened). Raises OutcomeRejected."""
    [applied] = apply_outcomes(session, purposes, [outcome], source)
    if applied.rejected is not None:
        raise OutcomeRejected(applied.rejected)
    return _fresh(session, applied.payment.id), applied.settled


def underpaid(payment_amount: int, outcome: Outcome) -> bool:
    """R-PAY-2: a "paid" whose paid amount (when the source gives one) is not the amount due."""
    return outcome.status == PaymentStatus.PAID.value and not paid_in_full(payment_amount, outcome.paid_amount)


def _detail(outcome: Outcome) -> str:
    detail = outcome.error_code or ""
    if outcome.paid_amount is not None and outcome.status == PaymentStatus.PAID.value:
        detail = f"paid {outcome.paid_amount}" + (f"; {detail}" if detail else "")
    return detail[:300]


def ask_refund(session: Session, payment_id: int) -> None:
    """A paid payment its purpose gives back (e.g. a card deposit on giving up, R-KKM-2): REFUND_DUE, refunded
    by `give_back` now or by the next reconciliation."""
    _refund_due(session, [payment_id])


def _refund_due(session: Session, ids: list[int]) -> None:
    table = Payment.__table__  # type: ignore[attr-defined]
    for start in range(0, len(ids), IN_CHUNK):
        session.execute(update(table).where(one_of(session, table.c.id, ids[start:start + IN_CHUNK]),
                                            table.c.status == PaymentStatus.PAID.value)
                        .values(status=REFUND_DUE, updated_at=clock.now()))


@dataclass(frozen=True)
class Applied:
    """One outcome of `apply_outcomes`: what was settled, or why it was refused."""

    outcome: Outcome
    payment: Any  # the payment's Core row as read before applying (an ORM Payment where one was needed); None if refused
    settled: Settled | None = None  # None when nothing new happened
    rejected: str | None = None  # an OutcomeRejected code


def apply_outcomes(session: Session, purposes: PaymentPurposes, outcomes: list[Outcome], source: str) -> list[Applied]:
    """Apply each outcome once, in one transaction: the first terminal report changes the business,
    repeats change nothing (R-PAY-1). Every path uses it: webhook, return page, reconciliation (through
    `apply_outcome`, this for one) and the billing run's token charges (many at once). Results come in
    the input's order; a refused outcome (unknown reference, amount or currency differing from our
    record) is returned with its code and changes nothing.

    R-PAY-2: a "paid" that paid less (or more) than due is held for staff review, never applied.
    R-PAY-4: a paid payment its purpose no longer wants is left REFUND_DUE (the caller asks the gateway).
    R-PAY-3: a refund or chargeback of a payment that bought something takes it back; one we never heard
    was paid is applied as paid first, so the effect is the same in whatever order the reports come.

    Who applies a terminal outcome is decided by one conditional UPDATE (`applied_at IS NULL`) … RETURNING
    per status, on SQLite and PostgreSQL alike; the winners are settled by their purpose's handler in
    input order. Reads and writes are SQLAlchemy Core (one SELECT, one INSERT of events, one executemany
    for the gateway's ids, one UPDATE per status); reversals, rare, go one by one. The same reference
    twice is applied in turn (a second round for the repeats).
    """
    rounds: list[list[int]] = []
    seen: dict[str, int] = {}
    for i, outcome in enumerate(outcomes):
        n = seen.get(outcome.reference, 0)
        seen[outcome.reference] = n + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(i)
    results: dict[int, Applied] = {}
    for indexes in rounds:
        results.update(zip(indexes, _apply_round(session, purposes, [outcomes[i] for i in indexes], source), strict=True))
    return [results[i] for i in range(len(outcomes))]


def _apply_round(session: Session, purposes: PaymentPurposes, outcomes: list[Outcome], source: str) -> list[Applied]:
    """`apply_outcomes` for outcomes of distinct references."""
    references = [o.reference for o in outcomes]
    table = Payment.__table__  # type: ignore[attr-defined]
    session.flush()  # what the ORM holds is written before the set-based statements below
    payments: dict[str, Any] = {}
    for start in range(0, len(references), IN_CHUNK):
        chunk = references[start:start + IN_CHUNK]
        payments.update((p.reference, p) for p in session.execute(
            select(table.c.id, table.c.reference, table.c.purpose, table.c.subject_id, table.c.user_id, table.c.kind,
                   table.c.amount, table.c.currency, table.c.status, table.c.applied_at, table.c.gateway_title,
                   table.c.gateway_transaction_id)
            .where(one_of(session, table.c.reference, chunk))))
    results: dict[str, Applied] = {}
    terminal: list[tuple[Any, Outcome, str]] = []  # (payment, outcome to apply, the status it gets)
    reversals: list[tuple[Any, Outcome]] = []
    events, gateway_ids = [], []
    now = clock.now()
    for outcome in outcomes:
        payment = payments.get(outcome.reference)
        if payment is None:
            results[outcome.reference] = Applied(outcome, None, rejected="unknown_reference")
            continue
        if outcome.amount is not None and outcome.amount != payment.amount:
            log.warning("payment %s: amount differs from our record; ignored", payment.id)
            results[outcome.reference] = Applied(outcome, None, rejected="amount_mismatch")
            continue
        if outcome.currency.upper() != payment.currency:
            log.warning("payment %s: currency differs from our record; ignored", payment.id)
            results[outcome.reference] = Applied(outcome, None, rejected="currency_mismatch")
            continue
        events.append({"payment_id": payment.id, "at": now, "source": source, "status": outcome.status,
                       "detail": _detail(outcome)})
        title = payment.gateway_title or outcome.title
        transaction_id = payment.gateway_transaction_id or outcome.transaction_id
        if (title, transaction_id) != (payment.gateway_title, payment.gateway_transaction_id):
            gateway_ids.append({"b_id": payment.id, "gateway_title": title, "gateway_transaction_id": transaction_id})
        results[outcome.reference] = Applied(outcome, payment)  # nothing new, unless decided below
        if outcome.status in TERMINAL:
            terminal.append((payment, outcome, HELD if underpaid(payment.amount, outcome) else outcome.status))
        elif outcome.status in REVERSED:
            if payment.applied_at is None:
                # Paid, then given back, and we never heard of the payment: apply it as paid first.
                paid = replace(outcome, status=PaymentStatus.PAID.value, paid_amount=None)
                terminal.append((payment, paid, PaymentStatus.PAID.value))
            reversals.append((payment, outcome))
    if events:
        session.execute(insert(PaymentEvent.__table__), events)  # type: ignore[attr-defined]
    if gateway_ids:
        session.execute(update(table).where(table.c.id == bindparam("b_id")), gateway_ids)
    won: set[int] = set()
    for status in sorted({status for _, _, status in terminal}):
        ids = [p.id for p, _, s in terminal if s == status]
        for start in range(0, len(ids), IN_CHUNK):
            won.update(session.scalars(
                update(table).where(one_of(session, table.c.id, ids[start:start + IN_CHUNK]), table.c.applied_at.is_(None))
                .values(status=status, applied_at=now, updated_at=now).returning(table.c.id)))
    winners: dict[str, list[tuple[Any, Outcome]]] = {}
    for payment, outcome, status in terminal:
        if payment.id not in won:
            # Applied before (another report, another worker): nothing new, except a card saved with it.
            reported = results[payment.reference].outcome  # not a refund's "paid first"
            card_saved = purposes.card_saved(payment.purpose)
            if reported.status in TERMINAL and outcome.card_token and card_saved is not None:
                record = _fresh(session, payment.id)
                if record.status == PaymentStatus.PAID.value:
                    card_saved(session, record, outcome)
                    session.flush()
            continue
        if status == HELD:
            log.warning("payment %s: paid %s of %s; held for staff review", payment.id, outcome.paid_amount, payment.amount)
            results[outcome.reference] = Applied(results[outcome.reference].outcome, payment, Settled())
            continue
        winners.setdefault(payment.purpose, []).append((payment, outcome))
    unwanted: list[int] = []
    for purpose, pairs in winners.items():
        settle = purposes.of(purpose).settle_batch
        session.flush()  # the handlers may write with Core: nothing of the ORM's may be left to write after them
        for (payment, _), settled in zip(pairs, settle(session, pairs), strict=True):
            results[payment.reference] = Applied(results[payment.reference].outcome, payment, settled)
            if settled.refund:
                unwanted.append(payment.id)
    session.flush()
    _refund_due(session, unwanted)  # R-PAY-4: the caller asks the gateway for these refunds
    for payment, outcome in reversals:
        reversed_now = _reverse(session, purposes, _fresh(session, payment.id), outcome, source)
        if reversed_now is not None:
            results[outcome.reference] = Applied(outcome, payment, reversed_now)
    return [results[r] for r in references]


def _reverse(session: Session, purposes: PaymentPurposes, payment: Payment, outcome: Outcome,
             source: str) -> Settled | None:
    """R-PAY-3 (and R-PAY-1: any order): money went back to the payer; None if nothing (more) to take back."""
    before = payment.status
    if before not in (PaymentStatus.PAID.value, REFUND_DUE, HELD):
        return None  # failed, or reversed before: nothing (more) to take back
    won = affected(session.execute(
        update(Payment).where(col(Payment.id) == payment.id, col(Payment.status) == before)
        .values(status=outcome.status, updated_at=clock.now())
    ))
    session.refresh(payment)
    if won != 1 or before != PaymentStatus.PAID.value:
        # Our own refund of money that bought nothing (REFUND_DUE), or staff gave back a held payment.
        return None
    done = purposes.of(payment.purpose).reverse(session, payment, outcome.status)
    session.add(PaymentEvent(payment_id=payment.id, source="reversal", status=outcome.status,  # type: ignore[arg-type]
                             detail=done[:300]))
    log.warning("payment %s: %s after it was applied (%s); reversed: %s", payment.id, outcome.status, source, done)
    return Settled(reversed=True)


def payment_failed_to_start(session: Session, purposes: PaymentPurposes, reference: str) -> None:
    """The gateway could not even create the payment: it failed, nothing was charged."""
    apply_outcome(session, purposes, Outcome(reference=reference, status="failed", error_code="gateway_unavailable"),
                  "created")


def pending_payments(session: Session, older_than_seconds: int, limit: int = 500) -> list[Payment]:
    """Payments we never heard back about: candidates for reconciliation with the gateway."""
    cutoff = clock.now() - timedelta(seconds=older_than_seconds)
    return list(session.scalars(
        select(Payment).where(col(Payment.applied_at).is_(None), col(Payment.created_at) <= cutoff)
        .order_by(col(Payment.id)).limit(limit)
    ))


def outcome_from_gateway(outcome: Any) -> Outcome:
    """Turn the port's PaymentOutcome/ChargeResult/TransactionStatus into our Outcome."""
    card = getattr(outcome, "card", None)
    status = outcome.status
    return Outcome(
        reference=outcome.reference,
        status=status.value if hasattr(status, "value") else str(status),
        amount=getattr(outcome, "amount", None),
        currency=getattr(outcome, "currency", "PLN"),
        title=getattr(outcome, "title", None),
        transaction_id=getattr(outcome, "transaction_id", None),
        card_token=card.token if card else None,
        card_brand=card.brand if card else None,
        card_last4=getattr(card, "last4", None) if card else None,
        card_expiry=card.expiry if card else None,
        error_code=getattr(outcome, "error_code", None),
        paid_amount=getattr(outcome, "paid_amount", None),
    )


def refunds_due(session: Session, older_than_seconds: int, limit: int = 500) -> list[Payment]:
    """R-PAY-4: payments for nothing whose refund the gateway has not confirmed (refused, timed out, or
    the process stopped in between): reconciliation asks again."""
    cutoff = clock.now() - timedelta(seconds=older_than_seconds)
    return list(session.scalars(
        select(Payment).where(col(Payment.status) == REFUND_DUE, col(Payment.updated_at) <= cutoff)
        .order_by(col(Payment.id)).limit(limit)
    ))


def refund_done(session: Session, payment_id: int, source: str) -> bool:
    """The gateway gave the money back: REFUND_DUE -> refunded (once; a notification may have said so first)."""
    won = affected(session.execute(
        update(Payment).where(col(Payment.id) == payment_id, col(Payment.status) == REFUND_DUE)
        .values(status=PaymentStatus.REFUNDED.value, updated_at=clock.now())
    ))
    if won == 1:
        session.add(PaymentEvent(payment_id=payment_id, source=source, status=PaymentStatus.REFUNDED.value,
                                 detail="refund of a payment for nothing"))
    return won == 1


@dataclass(frozen=True)
class ForStaff:
    """A payment in the desk's queue and why it is there."""

    payment: Payment
    kind: str  # held | refund_due | refunded | reversed
    paid_amount: int | None = None  # held: what the payer paid (grosze)
    note: str = ""  # reversed: what was taken back


def staff_queue(session: Session, limit: int = 50) -> list[ForStaff]:
    """The desk's queue (R-PAY-2..4): payments held for review, refunds owed or made, reversals of what a
    payment had bought; the most recently changed first."""
    payments = list(session.scalars(
        select(Payment).where(col(Payment.status).in_(FOR_STAFF))
        .order_by(col(Payment.updated_at).desc(), col(Payment.id).desc()).limit(limit)
    ))
    paid: dict[int, int] = {}
    reversal: dict[int, str] = {}
    if payments:
        for event in session.scalars(
                select(PaymentEvent).where(one_of(session, PaymentEvent.payment_id, [p.id for p in payments]))
                .order_by(col(PaymentEvent.id))):
            if event.source == "reversal":
                reversal[event.payment_id] = event.detail
            elif event.status == PaymentStatus.PAID.value and event.detail.startswith("paid "):
                amount = event.detail[5:].split(";", 1)[0]
                if amount.isdigit():
                    paid.setdefault(event.payment_id, int(amount))  # the report that decided the hold
    queue = []
    for p in payments:
        if p.status == HELD:
            queue.append(ForStaff(p, "held", paid_amount=paid.get(p.id)))  # type: ignore[arg-type]
        elif p.id in reversal:
            queue.append(ForStaff(p, "reversed", note=reversal[p.id]))
        else:
            queue.append(ForStaff(p, "refund_due" if p.status == REFUND_DUE else "refunded"))
    return queue


# --------------------------------------------------------------------------- the one use case


def _in_tx(engine: Engine, fn: Callable[..., Any], *args: Any) -> Any:
    with transaction(engine) as session:
        return fn(session, *args)


@dataclass(frozen=True)
class Settlement:
    payment: Payment
    settled: Settled | None
    refunded: bool = False  # the refund this outcome called for was made


async def settle(engine: Engine, gateway: PaymentGateway, purposes: PaymentPurposes, outcome: Outcome,
                 source: str) -> Settlement:
    """R-PAY-1: apply a payment outcome, whatever path brought it (webhook, return page, reconciliation),
    then give the money back if the business no longer wanted it (R-PAY-4). Raises OutcomeRejected."""
    payment, settled = await anyio.to_thread.run_sync(_in_tx, engine, apply_outcome, purposes, outcome, source)
    refunded = False
    if settled is not None and settled.refund:
        refunded = await give_back(engine, gateway, payment.id, payment.gateway_transaction_id)
    return Settlement(payment, settled, refunded)


async def give_back(engine: Engine, gateway: PaymentGateway, payment_id: int, transaction_id: str | None) -> bool:
    """Refund a REFUND_DUE payment in full. Safe to repeat: if the gateway refuses because the money
    already went back (an earlier answer was lost), its status says so. False: still owed (the next
    reconciliation asks again; staff see it in the queue)."""
    if not transaction_id:
        log.warning("refund of payment %s: no gateway transaction to refund; left for staff", payment_id)
        return False
    try:
        await gateway.refund(Refund(transaction_id, reason="EKP"))
    except (GatewayError, GatewayTimeout) as exc:
        try:
            status = await gateway.get_status(transaction_id)
        except (GatewayError, GatewayTimeout):
            status = None
        if status is None or status.status.value not in REVERSED:
            log.warning("refund of payment %s failed (%s); reconciliation asks again", payment_id, type(exc).__name__)
            return False
    await anyio.to_thread.run_sync(_in_tx, engine, refund_done, payment_id, "refund")
    return True


# --------------------------------------------------------------------------- GDPR erasure


def erase_payer_of(session: Session, user_id: int) -> None:
    """GDPR erasure (a step of `web.purposes.gdpr_erasure_steps`): payments stay as the operator's accounting
    records, no longer linked to the account."""
    session.execute(update(Payment).where(col(Payment.user_id) == user_id).values(user_id=None))
