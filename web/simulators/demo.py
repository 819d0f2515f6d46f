"""Demo data for a first look (`ekp demo load`, and `ekp run` with the embedded database). Idempotent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from web.platform.db import make_engine, transaction
from web.accounts.interface import find_user
from web.accounts.interface import create_active_user
from web.platform.settings import Settings

DEMO_PASSWORD = "Demo1234"
# The demo staff, inspector and admin sign in with a second factor (R-AUTH-3) from this fixed TOTP secret: add it to an
# authenticator app (or `python -c "import pyotp; print(pyotp.TOTP('<secret>').now())"`). Development only:
# demo data is never loaded in production.
DEMO_TOTP_SECRET = "EKPDEMOTOTPSECRETFORDEVELOPMENT2"
DEMO_PEOPLE = [
    # role, e-mail, first name, last name, PESEL (valid checksums), birth date when no PESEL
    ("passenger", "anna@demo.ekp", "Anna", "Nowak", "44051401458", None),
    ("passenger", "jan@demo.ekp", "Jan", "Kowalski", "02270803624", None),
    ("passenger", "olena@demo.ekp", "Olena", "Shevchenko", None, date(1990, 5, 17)),
    ("inspector", "kontroler@demo.ekp", "Piotr", "Kontroler", None, None),
    ("staff", "bok@demo.ekp", "Beata", "Obsługa", None, None),
    ("admin", "admin@demo.ekp", "Adam", "Biuro", None, None),
]

DEMO_EMAILS = frozenset(email for _role, email, *_rest in DEMO_PEOPLE)


def is_demo_account(settings: Settings, email: str) -> bool:
    """An account `ekp demo load` made: a card it collects from an application (issue 16) is a demo card too,
    so the simulators may act on it. Never in production, where demo data is not loaded."""
    return not settings.is_production and email.lower() in DEMO_EMAILS


def load(settings: Settings) -> Iterator[str]:
    from domain.twofactor import role_requires_factor
    from web.accounts.interface import set_secret

    engine = make_engine(settings.database_url)
    with transaction(engine) as session:
        for role, email, first, last, pesel, born in DEMO_PEOPLE:
            user = find_user(session, email)
            if user is not None:
                yield f"demo {role} {email}: already there"
            else:
                user = create_active_user(session, settings, role=role, email=email, first_name=first, last_name=last,
                                          password=DEMO_PASSWORD, pesel=pesel, birth_date=born)
                yield f"demo {role} {email} added (password {DEMO_PASSWORD})"
            if role_requires_factor(role) and not user.has_totp and settings.is_production:
                yield f"demo {role} {email}: no fixed demo TOTP secret in production; enrols at first sign-in"
            elif role_requires_factor(role) and not user.has_totp:
                set_secret(session, settings, user, DEMO_TOTP_SECRET)
                yield f"demo {role} {email}: two-factor sign-in with the demo TOTP secret {DEMO_TOTP_SECRET}"
    engine.dispose()
    yield from load_cards(settings)
    yield from load_purse_cards(settings)


def demo_registry(today: date) -> str:
    """Demo cards matching the demo passengers (CSV in the operator's export format)."""
    year_on = today.replace(year=today.year + 1) if not (today.month == 2 and today.day == 29) else date(today.year + 1, 2, 28)
    last_year = date(today.year - 1, 1, 1)
    rows = [
        "type,client_code,pesel,holder_name,resident_from,resident_until,blocked",
        f"KKM,100200300,44051401458,Anna Nowak,{last_year},{year_on},no",  # Anna: resident, plastic
        f"mKK,MK4405140,44051401458,Anna Nowak,{last_year},{year_on},no",  # Anna: resident, mobile
        "KKM,100200301,44051401458,Anna Nowak,,,no",  # Anna: no resident status
        "KKM,200300400,02270803624,Jan Kowalski,,,no",  # Jan: no resident status
        f"KK,200300401,02270803624,Jan Kowalski,{date(today.year - 3, 1, 1)},{date(today.year - 1, 12, 31)},no",  # Jan: expired
    ]
    return "\n".join(rows) + "\n"


def load_cards(settings: Settings) -> Iterator[str]:
    from web.platform import clock
    from web.cards.interface import import_registry

    engine = make_engine(settings.database_url)
    with transaction(engine) as session:
        report = import_registry(session, settings, demo_registry(clock.today()))
        yield (f"demo cards: {report.added} added, {report.updated} updated, {report.unchanged} unchanged "
               "(Anna: KKM 100200300 and mKK MK4405140 with resident status, KKM 100200301 without; "
               "Jan: KKM 200300400, KK 200300401 expired status)")
    engine.dispose()


DEMO_PURSE_CARDS = [
    # number, kind, registered fare, holder, PESEL, opening balance (grosze)
    ("70010001", "personal", "normal", "Anna Nowak", "44051401458", 5000),
    ("70010002", "personal", "off_50", "Jan Kowalski", "02270803624", 2000),
    ("70019999", "bearer", "normal", "", None, 1000),
]


def load_purse_cards(settings: Settings) -> Iterator[str]:
    """E-purse cards for the demo passengers (linked to their accounts; marked demo: the simulators act on
    these only), a demo validator and a meter."""
    from sqlalchemy import select
    from sqlmodel import col

    from domain.purse import CardKind, RegisteredFare
    from web.platform import clock
    from web.purse.interface import Device, PurseCardRow
    from web.platform.protect import pesel_hash
    from web.purse import interface as purse

    engine = make_engine(settings.database_url)
    with transaction(engine) as session:
        for number, kind, fare, holder, pesel, balance in DEMO_PURSE_CARDS:
            if session.scalars(select(PurseCardRow).where(col(PurseCardRow.number) == number)).first() is not None:
                yield f"demo e-purse card {number}: already there"
                continue
            row = purse.issue_card(session, number=number, kind=CardKind(kind), issued_on=clock.today(), holder_name=holder,
                                   pesel_hash=pesel_hash(settings.pesel_key, pesel) if pesel else None,
                                   registered_fare=RegisteredFare(fare), demo=True)
            purse.top_up_at_service_point(session, number, balance, tariff=settings.purse_tariff)
            owner = find_user(session, "anna@demo.ekp" if pesel == "44051401458" else "jan@demo.ekp") if pesel else None
            if owner is not None:
                row.account_id, row.linked_at = owner.id, clock.now()
            yield f"demo e-purse card {number} ({kind}, {fare}) added with {balance / 100:.2f} zł"
        for kind, name in (("validator", "Demo: kasownik BUS-101"), ("parking-meter", "Demo: parkometr ul. Ratuszowa")):
            if session.scalars(select(Device).where(col(Device.name) == name)).first() is not None:
                yield f"demo {kind} {name!r}: already there (its secret was shown when it was added)"
                continue
            device, credential = purse.add_device(session, kind, name)
            yield f"demo {kind} {name!r} added; credential (shown once): {credential}"
    engine.dispose()
