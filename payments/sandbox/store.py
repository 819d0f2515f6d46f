"""The sandbox's own SQLite store (SQLAlchemy Core, tables prefixed `sandbox_`, created on start).

It holds transactions, saved-card tokens, charges (for counting), notification deliveries and the
sandbox's root certificate and signing key, so that a restart resumes pending deliveries with the same
certificate.

Like Tpay, the store deduplicates nothing on the merchant's reference (`hiddenDescription`): every
`POST /transactions` opens a new transaction, and the same reference may be paid twice in two of them.
What it guards is the transaction itself: one transaction is paid at most once.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

transactions = sa.Table(
    "sandbox_transactions",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("title", sa.String(40), nullable=False, unique=True),
    sa.Column("reference", sa.String(255), nullable=False, index=True),  # not unique: Tpay does not deduplicate on it
    sa.Column("kind", sa.String(10), nullable=False),  # "hosted" | "token"
    sa.Column("amount", sa.Integer, nullable=False),  # grosze
    sa.Column("refunded", sa.Integer, nullable=False, default=0),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("description", sa.String(255), nullable=False),
    sa.Column("payer_email", sa.String(255), nullable=False),
    sa.Column("payer_name", sa.String(255), nullable=False),
    sa.Column("success_url", sa.Text, nullable=False, default=""),
    sa.Column("error_url", sa.Text, nullable=False, default=""),
    sa.Column("notify_url", sa.Text, nullable=False, default=""),
    sa.Column("save_card", sa.Boolean, nullable=False, default=False),
    sa.Column("status", sa.String(12), nullable=False),  # pending | correct | declined | refund
    sa.Column("error_code", sa.String(40)),
    sa.Column("card_token", sa.String(64)),  # token saved by, or charged in, this transaction
    # Card facts waiting for a 3-D Secure decision (never the number):
    sa.Column("pending_brand", sa.String(20)),
    sa.Column("pending_last4", sa.String(4)),
    sa.Column("pending_exp_month", sa.Integer),
    sa.Column("pending_exp_year", sa.Integer),
    sa.Column("pending_behaviour", sa.String(20)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("paid_at", sa.Float),
)

cards = sa.Table(
    "sandbox_cards",
    metadata,
    sa.Column("token", sa.String(64), primary_key=True),
    sa.Column("brand", sa.String(20), nullable=False),
    sa.Column("last4", sa.String(4), nullable=False),
    sa.Column("exp_month", sa.Integer, nullable=False),
    sa.Column("exp_year", sa.Integer, nullable=False),
    sa.Column("behaviour", sa.String(20), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

charges = sa.Table(
    "sandbox_charges",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("transaction_id", sa.String(40), nullable=False, index=True),
    sa.Column("reference", sa.String(255), nullable=False),
    sa.Column("token", sa.String(64)),
    sa.Column("amount", sa.Integer, nullable=False),
    sa.Column("succeeded", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

deliveries = sa.Table(
    "sandbox_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("transaction_id", sa.String(40), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("delivered_at", sa.Float),
    sa.Column("given_up", sa.Boolean, nullable=False, default=False),
    sa.Column("last_error", sa.String(200)),
)

# A root CA certificate and the notification signing certificate it issued (Tpay: `/x509/tpay-jws-root.pem`
# and `/x509/notifications-jws.pem`). The root's key signs nothing else and is not kept.
signing = sa.Table(
    "sandbox_signing",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("root_certificate_pem", sa.Text, nullable=False),
    sa.Column("private_key_pem", sa.Text, nullable=False),
    sa.Column("certificate_pem", sa.Text, nullable=False),
)


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    transaction_id: str
    url: str
    body: str
    signature: str
    attempts: int


_ID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # 32 letters: a random byte's low 5 bits pick one, unbiased
_BYTE_TO_LETTER = bytes(ord(_ID_ALPHABET[b & 31]) for b in range(256))


def new_id(prefix: str, length: int = 16) -> str:
    return prefix + secrets.token_bytes(length).translate(_BYTE_TO_LETTER).decode("ascii")


def _serialise_writers(engine: sa.Engine) -> None:
    """Several processes may share the sandbox file (e.g. two `ekp billing run` at once). SQLite's
    default deferred transactions fail at once with "database is locked" when two of them try to turn a
    read into a write; taking the write lock when each transaction begins makes them wait their turn."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" event below issues BEGIN itself
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _unique_reference_table(engine: sa.Engine) -> str | None:
    """A store made before references stopped being unique: its transactions table is renamed aside (and
    copied into the new one by `_copy_transactions`), since SQLite cannot drop a UNIQUE constraint."""
    with engine.begin() as conn:
        indexes = conn.exec_driver_sql("PRAGMA index_list('sandbox_transactions')").fetchall()
        for index in indexes:
            if index[2] and index[3] == "u":  # unique, from a UNIQUE constraint
                columns = [r[2] for r in conn.exec_driver_sql(f"PRAGMA index_info('{index[1]}')").fetchall()]
                if columns == ["reference"]:
                    conn.exec_driver_sql("ALTER TABLE sandbox_transactions RENAME TO sandbox_transactions_unique_ref")
                    return "sandbox_transactions_unique_ref"
    return None


def _copy_transactions(engine: sa.Engine, old: str) -> None:
    columns = ", ".join(c.name for c in transactions.columns)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO sandbox_transactions ({columns}) SELECT {columns} FROM {old}")
        conn.exec_driver_sql(f"DROP TABLE {old}")


_TX_COLUMNS = ", ".join(c.name for c in transactions.columns)
_CARD_COLUMNS = ", ".join(c.name for c in cards.columns)
_INSERT_TX = f"INSERT INTO sandbox_transactions ({_TX_COLUMNS}) VALUES ({', '.join('?' * len(transactions.columns))})"


def _fetch_one(cursor: Any, sql: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
    row = cursor.execute(sql, params).fetchone()
    if row is None:
        return None
    return dict(zip((d[0] for d in cursor.description), row, strict=True))


class SandboxStore:
    def __init__(self, db_path: str | Path) -> None:
        path = str(db_path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})
        _serialise_writers(self.engine)
        old = _unique_reference_table(self.engine)
        metadata.create_all(self.engine)
        if old:
            _copy_transactions(self.engine, old)

    def close(self) -> None:
        self.engine.dispose()

    # -- signing certificates
    _SIGNING = (signing.c.root_certificate_pem, signing.c.private_key_pem, signing.c.certificate_pem)

    def load_signing(self) -> tuple[str, str, str] | None:
        """(root certificate, signer's private key, signer certificate), PEM; None before the first start."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(*self._SIGNING).where(signing.c.id == 1)).first()
        return (row[0], row[1], row[2]) if row else None

    def save_signing(self, root_pem: str, private_key_pem: str, certificate_pem: str) -> tuple[str, str, str]:
        """Keep the first set saved (two processes starting at once agree on one)."""
        with self.engine.begin() as conn:
            existing = conn.execute(sa.select(*self._SIGNING)).first()
            if existing:
                return existing[0], existing[1], existing[2]
            conn.execute(signing.insert().values(id=1, root_certificate_pem=root_pem, private_key_pem=private_key_pem,
                                                 certificate_pem=certificate_pem))
        return root_pem, private_key_pem, certificate_pem

    # -- transactions
    def transaction(self, tx_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(transactions).where(transactions.c.id == tx_id)).mappings().first()
        return dict(row) if row else None

    def transaction_by_reference(self, reference: str) -> dict[str, Any] | None:
        """The latest transaction opened with `reference` (there may be several, as at Tpay)."""
        stmt = (sa.select(transactions).where(transactions.c.reference == reference)
                .order_by(transactions.c.created_at.desc(), transactions.c.id.desc()).limit(1))
        with self.engine.connect() as conn:
            row = conn.execute(stmt).mappings().first()
        return dict(row) if row else None

    def transactions_by_reference(self, reference: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(transactions).where(transactions.c.reference == reference)
                                .order_by(transactions.c.created_at, transactions.c.id)).mappings().all()
        return [dict(r) for r in rows]

    def create_transaction(self, values: dict[str, Any]) -> dict[str, Any]:
        """Open a new transaction, always (as Tpay: a reference used before opens another one)."""
        row_values = {
            "id": new_id("ta_"), "title": new_id("TR-SBX-", 10), "status": "pending", "refunded": 0,
            "created_at": time.time(),
            "success_url": "", "error_url": "", "notify_url": "", "save_card": False, "error_code": None,
            "card_token": None, "pending_brand": None, "pending_last4": None, "pending_exp_month": None,
            "pending_exp_year": None, "pending_behaviour": None, "paid_at": None,
            **values,
        }
        # Raw DB-API: with the token charge's `/pay`, this is the billing run's hot path at the sandbox.
        columns = _TX_COLUMNS.split(", ")
        fairy = self.engine.raw_connection()
        try:
            cur = fairy.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.execute(_INSERT_TX, [row_values[c] for c in columns])
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            finally:
                cur.close()
        finally:
            fairy.close()
        return row_values

    def update_transaction(self, tx_id: str, *, only_if_status: str | None = None, **values: Any) -> bool:
        """Update a transaction; with `only_if_status`, only when it is still in that status."""
        with self.engine.begin() as conn:
            stmt = transactions.update().where(transactions.c.id == tx_id)
            if only_if_status is not None:
                stmt = stmt.where(transactions.c.status == only_if_status)
            return conn.execute(stmt.values(**values)).rowcount == 1

    def pay_with_token(
        self,
        tx_id: str,
        token: str,
        decide: Callable[[dict[str, Any] | None], str | None],
        notification: Callable[[dict[str, Any], dict[str, Any] | None], tuple[str, str, str] | None] | None = None,
    ) -> tuple[dict[str, Any] | None, bool]:
        """`POST /transactions/{id}/pay` with a saved card, in one write transaction: if transaction
        `tx_id` is still pending, `decide(card)` returns the decline code (None: paid; it may raise to
        refuse the call, which keeps nothing), the outcome and the charge are recorded, and
        `notification(tx, card)` may return a delivery (url, body, signature) queued with them. A
        transaction is paid at most once (the write lock is taken at BEGIN, so two processes take turns).
        Returns (the transaction or None if unknown, whether this call decided it).

        Raw DB-API statements: this is the sandbox's hot path (a monthly billing run makes one per month)."""
        fairy = self.engine.raw_connection()
        try:
            cur = fairy.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                tx = _fetch_one(cur, f"SELECT {_TX_COLUMNS} FROM sandbox_transactions WHERE id = ?", (tx_id,))
                if tx is None or tx["status"] != "pending":
                    cur.execute("ROLLBACK")
                    return tx, False
                card = _fetch_one(cur, f"SELECT {_CARD_COLUMNS} FROM sandbox_cards WHERE token = ?", (token,))
                error = decide(card)
                now = time.time()
                tx = {**tx, "status": "declined" if error else "correct", "error_code": error, "card_token": token,
                      "paid_at": None if error else now}
                cur.execute("UPDATE sandbox_transactions SET status = ?, error_code = ?, card_token = ?, paid_at = ? "
                            "WHERE id = ? AND status = 'pending'", (tx["status"], error, token, tx["paid_at"], tx_id))
                cur.execute("INSERT INTO sandbox_charges (transaction_id, reference, token, amount, succeeded, created_at) "
                            "VALUES (?, ?, ?, ?, ?, ?)", (tx_id, tx["reference"], token, tx["amount"], error is None, now))
                delivery = notification(tx, card) if notification is not None else None
                if delivery is not None:
                    cur.execute("INSERT INTO sandbox_deliveries (transaction_id, url, body, signature, attempts, "
                                "next_attempt_at, given_up) VALUES (?, ?, ?, ?, 0, ?, 0)", (tx_id, *delivery, now))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            finally:
                cur.close()
        finally:
            fairy.close()
        return tx, True

    # -- cards
    def save_card(self, brand: str, last4: str, exp_month: int, exp_year: int, behaviour: str) -> str:
        token = new_id("sbx_tok_", 24)
        with self.engine.begin() as conn:
            conn.execute(
                cards.insert().values(
                    token=token,
                    brand=brand,
                    last4=last4,
                    exp_month=exp_month,
                    exp_year=exp_year,
                    behaviour=behaviour,
                    created_at=time.time(),
                )
            )
        return token

    def transaction_saving(self, token: str) -> dict[str, Any] | None:
        """The hosted payment that saved card `token`."""
        stmt = (sa.select(transactions).where(transactions.c.card_token == token, transactions.c.save_card.is_(True))
                .order_by(transactions.c.created_at).limit(1))
        with self.engine.connect() as conn:
            row = conn.execute(stmt).mappings().first()
        return dict(row) if row else None

    def card(self, token: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(cards).where(cards.c.token == token)).mappings().first()
        return dict(row) if row else None

    # -- charges
    def record_charge(self, transaction_id: str, reference: str, token: str | None, amount: int, succeeded: bool) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                charges.insert().values(
                    transaction_id=transaction_id,
                    reference=reference,
                    token=token,
                    amount=amount,
                    succeeded=succeeded,
                    created_at=time.time(),
                )
            )

    def count_charges(self, *, token: str | None = None, reference: str | None = None, succeeded: bool = True) -> int:
        stmt = sa.select(sa.func.count()).select_from(charges).where(charges.c.succeeded == succeeded)
        if token is not None:
            stmt = stmt.where(charges.c.token == token)
        if reference is not None:
            stmt = stmt.where(charges.c.reference == reference)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    # -- deliveries
    def add_delivery(self, transaction_id: str, url: str, body: str, signature: str, at: float) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                deliveries.insert().values(
                    transaction_id=transaction_id,
                    url=url,
                    body=body,
                    signature=signature,
                    attempts=0,
                    next_attempt_at=at,
                    given_up=False,
                )
            )
            key = result.inserted_primary_key  # None only after an executemany, which this is not
            if key is None:
                raise RuntimeError("the sandbox store did not return the new delivery's id")
            return int(key[0])

    def due_deliveries(self, now: float, limit: int = 50) -> list[Delivery]:
        stmt = (
            sa.select(deliveries)
            .where(deliveries.c.delivered_at.is_(None), deliveries.c.given_up.is_(False), deliveries.c.next_attempt_at <= now)
            .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [
            Delivery(r["id"], r["transaction_id"], r["url"], r["body"], r["signature"], r["attempts"]) for r in rows
        ]

    def next_delivery_time(self) -> float | None:
        stmt = sa.select(sa.func.min(deliveries.c.next_attempt_at)).where(
            deliveries.c.delivered_at.is_(None), deliveries.c.given_up.is_(False)
        )
        with self.engine.connect() as conn:
            at: float | None = conn.execute(stmt).scalar_one()  # MIN of a REAL column: None when nothing is pending
        return at

    def mark_delivered(self, delivery_id: int, at: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                deliveries.update()
                .where(deliveries.c.id == delivery_id)
                .values(delivered_at=at, attempts=deliveries.c.attempts + 1, last_error=None)
            )

    def mark_failed_attempt(self, delivery_id: int, next_at: float | None, error: str) -> None:
        values: dict[str, Any] = {"attempts": deliveries.c.attempts + 1, "last_error": error[:200]}
        if next_at is None:
            values["given_up"] = True
        else:
            values["next_attempt_at"] = next_at
        with self.engine.begin() as conn:
            conn.execute(deliveries.update().where(deliveries.c.id == delivery_id).values(**values))

    def deliveries_for(self, transaction_id: str | None = None) -> list[dict[str, Any]]:
        stmt = sa.select(deliveries).order_by(deliveries.c.id)
        if transaction_id is not None:
            stmt = stmt.where(deliveries.c.transaction_id == transaction_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings().all()]
