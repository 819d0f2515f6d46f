"""R-AUTH-4: registration, login and reset answer alike — status, body and time — whether or not the
address is registered. Times are compared over interleaved repeated requests, with a tolerance."""

from __future__ import annotations

import re
import statistics
import time

import pytest
from argon2 import PasswordHasher

from tests.conftest import DEFAULT_PASSWORD, page_text, registration_form

ROUNDS = 7


@pytest.fixture
def real_password_hashing(monkeypatch, fast_password_hashing):
    """Argon2id with the app's real cost: the difference the attacker measured."""
    from web.accounts import service

    real = PasswordHasher()
    monkeypatch.setattr(service, "hasher", real)
    monkeypatch.setattr(service, "_DUMMY_HASH", real.hash("not-a-real-password-0"))


def _timed(browser, path, form):
    token = browser.csrf()
    started = time.perf_counter()
    response = browser.post(path, {**form, "_csrf_token": token})
    return time.perf_counter() - started, response


def _compare(times_a: list[float], times_b: list[float]) -> None:
    a, b = statistics.median(times_a), statistics.median(times_b)
    assert abs(a - b) <= 0.5 * max(a, b), f"medians {a * 1000:.0f} ms and {b * 1000:.0f} ms differ too much"


def _visible(response, *typed: str) -> str:
    text = page_text(response.text)
    for value in typed:
        text = text.replace(value, "…")
    return re.sub(r"[0-9a-f]{16,}", "…", text)


def test_r_auth_4_registering_a_taken_address_answers_alike_in_the_same_time(real_password_hashing, users, new_browser):
    users.create("anna@example.pl")
    taken, fresh = [], []
    for n in range(ROUNDS):
        for times, email in ((taken, "anna@example.pl"), (fresh, f"nowa{n}@example.pl")):
            form = registration_form(email=email, pesel="", no_pesel="on", birth_date="1990-01-01")
            elapsed, response = _timed(new_browser(ip=f"10.7.{len(times)}.{n}"), "/register", form)
            assert (response.status_code, response.headers["location"]) == (303, "/register/done")
            times.append(elapsed)
    _compare(taken, fresh)


def test_r_auth_4_a_reset_for_an_unknown_address_answers_alike_in_the_same_time(real_password_hashing, users, new_browser):
    users.create("jan@example.pl")
    known, unknown = [], []
    for n in range(ROUNDS):
        answers = []
        for times, email in ((known, "jan@example.pl"), (unknown, f"nikt{n}@example.pl")):
            elapsed, response = _timed(new_browser(ip=f"10.8.{len(times)}.{n}"), "/password/forgot", {"email": email})
            assert response.status_code == 200
            answers.append(_visible(response, email))
            times.append(elapsed)
        assert answers[0] == answers[1]
    _compare(known, unknown)


def test_r_auth_4_signing_in_with_an_unknown_address_answers_alike_in_the_same_time(real_password_hashing, users, new_browser):
    users.create("jan@example.pl")
    wrong, unknown = [], []
    for n in range(ROUNDS):
        answers = []
        for times, email in ((wrong, "jan@example.pl"), (unknown, f"nikt{n}@example.pl")):
            form = {"email": email, "password": DEFAULT_PASSWORD + "x"}
            elapsed, response = _timed(new_browser(ip=f"10.9.{len(times)}.{n}"), "/login", form)
            assert response.status_code == 401
            answers.append(_visible(response, email))
            times.append(elapsed)
        assert answers[0] == answers[1]
    _compare(wrong, unknown)
