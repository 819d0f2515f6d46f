"""GDPR erasure of a passenger who bought tickets and has cards: the person's data go, what the operator
must keep for accounting (payments, tickets) stays without the link to the person."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from tests.conftest import DEFAULT_PASSWORD
from web.platform import clock
from web.platform.db import transaction
from web.platform.models import AuditEvent, OutboxMail
from web.accounts.models import User
from web.cards.models import Card
from web.five_plus_one.models import Subscription5p1, SubscriptionMonthRow
from web.payment_records.models import Payment
from web.tickets.models import Ticket


def test_erasing_an_account_with_a_paid_subscription(browser, users, engine, db):
    user = users.create("rodo@example.pl")
    with transaction(engine) as session:
        card = Card(carrier_type="KKM", client_code="55550001", holder_name="Jan Kowalski", pesel_hash="h" * 64,
                    has_resident_status=True, account_id=user.id)
        session.add(card)
        session.flush()
        sub = Subscription5p1(user_id=user.id, card_id=card.id, variant="normal", first_day=clock.today(),
                              status="active", card_token="tok")
        session.add(sub)
        session.flush()
        month = SubscriptionMonthRow(subscription_id=sub.id, cycle=1, month_index=1, starts_on=clock.today(),
                                     ends_on=clock.today() + timedelta(days=29), price=8000, state="paid", attempts=1)
        session.add(month)
        session.flush()
        session.add(Ticket(user_id=user.id, card_id=card.id, subscription_month_id=month.id, product="5P1",
                           variant="normal", holder_name="Jan Kowalski", valid_from=month.starts_on,
                           valid_until=month.ends_on, price=8000))
        session.add(Payment(reference="5p1:x:1:1:1", purpose="5p1_month", subject_id=month.id, user_id=user.id,
                            kind="hosted", amount=8000, status="paid"))
    browser.login("rodo@example.pl")
    response = browser.submit("/account", {"delete_password": DEFAULT_PASSWORD, "confirm": "on"}, action="/account/delete")
    assert response.status_code == 303, response.text[:500]
    with transaction(engine) as session:
        assert session.scalars(select(User).where(User.email == "rodo@example.pl")).first() is None
        assert session.scalars(select(Card)).one().account_id is None
        assert session.scalars(select(Payment)).one().user_id is None
        ticket = session.scalars(select(Ticket)).one()  # the paid ticket stays valid on the card
        assert ticket.user_id is None and ticket.valid_until >= clock.today()
        assert session.scalars(select(Subscription5p1)).first() is None  # nothing more is charged
        assert session.scalars(select(SubscriptionMonthRow)).first() is None
        assert session.scalars(select(OutboxMail).where(OutboxMail.to_address == "rodo@example.pl")).first() is None


def test_an_erased_accounts_other_sessions_never_open_a_new_account_with_the_same_id(browser, new_browser, users, db):
    users.create("stary@example.pl")
    browser.login("stary@example.pl")
    phone = new_browser()
    phone.login("stary@example.pl")
    old_id = db.user("stary@example.pl").id
    erased = browser.submit("/account", {"delete_password": DEFAULT_PASSWORD, "confirm": "on"}, action="/account/delete")
    assert erased.status_code == 303
    users.create("nowy@example.pl", first_name="Nowy")
    new_id = db.user("nowy@example.pl").id
    response = phone.get("/account", follow_redirects=False)
    assert response.status_code == 303 and "/login" in response.headers["location"], (old_id, new_id)


# --------------------------------------------------------------------------- every table, each area's own step


def _everything_of(engine, user_id: int) -> None:
    """A row naming `user_id` in every table that can: as a passenger and as staff."""
    from web.platform.models import AuditEvent
    from web.accounts.models import EmailToken, RecoveryCode
    from web.card_applications.models import CardApplicationEvent, CardApplicationRow
    from web.office.models import MeterCashCollection, RegistryImport
    from web.purse.models import Device, PurseCardRow
    from web.tickets.models import Inspection, TicketDevice

    with transaction(engine) as session:
        card = Card(carrier_type="KKM", client_code="55550002", holder_name="Ewa Nowak", pesel_hash="e" * 64,
                    has_resident_status=True, account_id=user_id, linked_at=clock.now())
        purse_card = PurseCardRow(number="70990001", kind="personal", issued_on=clock.today(), holder_name="Ewa Nowak",
                                  account_id=user_id, linked_at=clock.now())
        device = Device(kind="parking-meter", name="Parkometr", secret_hash="d" * 64)
        session.add_all([card, purse_card, device])
        session.flush()
        sub = Subscription5p1(user_id=user_id, card_id=card.id, variant="normal", first_day=clock.today(),
                              status="active", card_token="tok")
        session.add(sub)
        session.flush()
        month = SubscriptionMonthRow(subscription_id=sub.id, cycle=1, month_index=1, starts_on=clock.today(),
                                     ends_on=clock.today() + timedelta(days=29), price=8000, state="paid", attempts=1)
        application = CardApplicationRow(user_id=user_id, kind="personal", first_name="Ewa", last_name="Nowak",
                                         service_point="BOK", status="submitted")
        session.add_all([month, application])
        session.flush()
        ticket = Ticket(user_id=user_id, card_id=card.id, subscription_month_id=month.id, product="5P1",
                        variant="normal", holder_name="Ewa Nowak", valid_from=month.starts_on,
                        valid_until=month.ends_on, price=8000)
        session.add(ticket)
        session.flush()
        session.add_all([
            TicketDevice(ticket_id=ticket.id, user_id=user_id, public_key="02" + "ab" * 32, static_record=b"x",
                         issuer_key_id=1),
            Inspection(inspector_id=user_id, method="scan", verdict="valid", ticket_id=ticket.id),
            Payment(reference="5p1:y:1:1:1", purpose="5p1_month", subject_id=month.id, user_id=user_id,
                    kind="hosted", amount=8000, status="paid"),
            CardApplicationEvent(application_id=application.id, status="submitted"),
            MeterCashCollection(device_id=device.id, day=clock.today(), amount=500, entered_by=user_id),
            RegistryImport(admin_id=user_id, sha256="f" * 64),
            EmailToken(token_hash="t" * 64, user_id=user_id, purpose="reset"),
            RecoveryCode(user_id=user_id, code_hash="c" * 64),
            AuditEvent(user_id=user_id, action="test.row"),
        ])


def _rows_naming(session, user_id: int) -> dict[str, int]:
    """table.column -> rows holding `user_id`, for every column that refers to a person: a `user_id`, or a
    foreign key to `users.id` (account_id, inspector_id, entered_by, admin_id, ...)."""
    from sqlmodel import SQLModel

    found = {}
    for table in SQLModel.metadata.sorted_tables:
        for column in table.columns:
            names_a_person = column.name == "user_id" or any(
                fk.column.table.name == "users" for fk in column.foreign_keys)
            if names_a_person or (table.name == "users" and column.name == "id"):
                count = session.scalar(select(func.count()).select_from(table).where(column == user_id))
                if count:
                    found[f"{table.name}.{column.name}"] = count
    return found


def test_gdpr_erasure_leaves_no_row_naming_the_person_in_any_table(browser, users, engine, db):
    """Every table with a `user_id` (or another column referring to an account) is checked after the account is
    erased through the page; only the audit keeps the bare id (the erasure's own record)."""
    user = users.create("wszystko@example.pl")
    _everything_of(engine, user.id)
    with transaction(engine) as session:
        assert set(_rows_naming(session, user.id)) >= {
            "users.id", "cards.account_id", "purse_cards.account_id", "subscriptions_5p1.user_id", "tickets.user_id",
            "ticket_devices.user_id", "inspections.inspector_id", "payments.user_id", "card_applications.user_id",
            "meter_cash_collections.entered_by", "registry_imports.admin_id", "email_tokens.user_id",
            "recovery_codes.user_id", "audit_events.user_id"}
    browser.login("wszystko@example.pl")
    response = browser.submit("/account", {"delete_password": DEFAULT_PASSWORD, "confirm": "on"}, action="/account/delete")
    assert response.status_code == 303, response.text[:500]
    with transaction(engine) as session:
        audit = session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.user_id == user.id))
        assert audit and _rows_naming(session, user.id) == {"audit_events.user_id": audit}  # the audit keeps the id
        assert session.scalars(select(AuditEvent).where(AuditEvent.user_id == user.id,
                                                        AuditEvent.action == "account.erased")).one()
        assert session.scalars(select(Ticket)).one().valid_until >= clock.today()  # still valid, unlinked
        assert session.scalars(select(OutboxMail).where(OutboxMail.to_address == "wszystko@example.pl")).first() is None


def test_each_area_erases_its_own_rows_without_relying_on_the_databases_cascades(users, engine, db):
    """The steps listed in `web.purposes.gdpr_erasure_steps` (one per area) leave nothing naming the person but
    the account's own rows, which `erase_account` deletes itself: no table is left to a foreign key's ON DELETE."""
    from web.purposes import gdpr_erasure_steps

    user = users.create("kroki@example.pl")
    _everything_of(engine, user.id)
    with transaction(engine) as session:
        for step in gdpr_erasure_steps():
            step(session, user.id)
        assert set(_rows_naming(session, user.id)) == {"users.id", "email_tokens.user_id", "recovery_codes.user_id",
                                                       "audit_events.user_id"}
