"""GDPR erasure of a passenger who bought tickets and has cards: the person's data go, what the operator
must keep for accounting (payments, tickets) stays without the link to the person."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tests.conftest import DEFAULT_PASSWORD
from web.platform import clock
from web.platform.db import transaction
from web.platform.models import OutboxMail
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
