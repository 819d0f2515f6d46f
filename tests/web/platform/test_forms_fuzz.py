"""Issue 13, item 12: Hypothesis-generated bodies for the HTML forms (sign-in, registration, password reset,
e-purse top-up and linking, the desk's forms): whatever is typed, no 5xx and no unhandled exception in the log.
On SQLite and PostgreSQL, on a bounded budget (`EKP_FUZZ_EXAMPLES` per form, default 25)."""

from __future__ import annotations

import logging
import os

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.support.purse import make_card

MAX_EXAMPLES = int(os.environ.get("EKP_FUZZ_EXAMPLES", "25"))
CASES: dict[str, int] = {}

# What people (and attackers) type: any text, NUL and control characters, amounts with exponents, long values.
TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.sampled_from(["nan", "inf", "-inf", "1e20", "1e9", "999999999", "0", "-5", "12,345", "\x00", "a\x00@b.pl",
                     "x" * 5000, "١٢", "2147483648", "<script>", "' OR 1=1 --"]),
)


def _form(*fields: str):
    return st.fixed_dictionaries({}, optional={name: TEXT for name in fields})


FORMS = {
    # path -> (who posts it, the form's fields)
    "/login": (None, ("email", "password", "remember", "next")),
    "/register": (None, ("first_name", "last_name", "pesel", "birth_date", "no_pesel", "email", "email_repeat",
                         "password", "password_repeat", "accept_terms", "gdpr_seen")),
    "/register/check": (None, ("field", "first_name", "pesel", "email", "email_repeat", "password")),
    "/password/forgot": (None, ("email",)),
    "/activate/resend": (None, ("email",)),
    "/purse/link": ("passenger", ("number",)),
    "/purse/{card}/top-up": ("passenger", ("amount", "action")),
    "/purse/{card}/loss": ("passenger", ("confirm",)),
    "/cards/add": ("passenger", ("carrier_type", "client_code")),
    "/desk/purse/7501/top-up": ("staff", ("amount", "confirmed_amount")),
    "/desk/purse/7501/replace": ("staff", ("new_number",)),
    "/desk/link-card": ("staff", ("email", "carrier_type", "client_code", "identity_checked")),
}


def test_forms_never_answer_5xx(new_browser, users, engine, settings, caplog):
    caplog.set_level(logging.ERROR, logger="ekp")
    users.create("jan@example.pl")
    users.create("bok@example.pl", role="staff", pesel=None)
    card_id = make_card(engine, settings, "7502", balance=1000)
    make_card(engine, settings, "7501", balance=1000)
    people = {None: new_browser(ip="10.9.0.1"), "passenger": new_browser(ip="10.9.0.2"), "staff": new_browser(ip="10.9.0.3")}
    people["passenger"].login("jan@example.pl")
    assert people["passenger"].submit("/purse", {"number": "7502"}, action="/purse/link").status_code == 303
    people["staff"].login("bok@example.pl")
    for template, (who, fields) in FORMS.items():
        path = template.format(card=card_id)
        browser = people[who]

        @given(data=_form(*fields))
        @hypothesis_settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def post(data: dict[str, str]) -> None:
            caplog.clear()
            response = browser.post(path, data)
            CASES[template] = CASES.get(template, 0) + 1
            assert response.status_code < 500, (path, data, response.text[:500])
            unhandled = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
            assert not unhandled, (path, data, unhandled)

        post()
    print(f"\nform cases tried: {sum(CASES.values())} ({CASES})")
