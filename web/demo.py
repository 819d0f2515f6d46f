"""Demo data for a first look (`ekp demo load`, and `ekp run` with the embedded database). Idempotent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from web.db import make_engine, transaction
from web.services.accounts import find_user
from web.services.people import create_active_user
from web.settings import Settings

DEMO_PASSWORD = "Demo1234"
DEMO_PEOPLE = [
    # role, e-mail, first name, last name, PESEL (valid checksums), birth date when no PESEL
    ("passenger", "anna@demo.ekp", "Anna", "Nowak", "44051401458", None),
    ("passenger", "jan@demo.ekp", "Jan", "Kowalski", "02270803624", None),
    ("passenger", "olena@demo.ekp", "Olena", "Shevchenko", None, date(1990, 5, 17)),
    ("inspector", "kontroler@demo.ekp", "Piotr", "Kontroler", None, None),
    ("staff", "bok@demo.ekp", "Beata", "Obsługa", None, None),
]


def load(settings: Settings) -> Iterator[str]:
    engine = make_engine(settings.database_url)
    with transaction(engine) as session:
        for role, email, first, last, pesel, born in DEMO_PEOPLE:
            if find_user(session, email) is not None:
                yield f"demo {role} {email}: already there"
                continue
            create_active_user(session, settings, role=role, email=email, first_name=first, last_name=last,
                               password=DEMO_PASSWORD, pesel=pesel, birth_date=born)
            yield f"demo {role} {email} added (password {DEMO_PASSWORD})"
    engine.dispose()
