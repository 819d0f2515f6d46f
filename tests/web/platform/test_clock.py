"""The pinned clock (`EKP_TEST_TODAY`): a run starts at a chosen moment and the time runs on from it, so
the suite gives the same result on every day it is run; production refuses the setting."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from web.platform import clock
from web.platform.settings import SettingsError, load_settings

PROJECT_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def restore_pin() -> Iterator[None]:
    before = clock.state()
    yield
    clock.restore(before)
    clock.reset()


def test_a_date_alone_pins_noon_in_warsaw_and_a_time_is_warsaw_time_unless_it_says_otherwise() -> None:
    assert clock.parse_pin("2027-01-30") == datetime(2027, 1, 30, 11, 0, tzinfo=UTC)  # CET, UTC+1
    assert clock.parse_pin("2027-07-01") == datetime(2027, 7, 1, 10, 0, tzinfo=UTC)  # CEST, UTC+2
    assert clock.parse_pin("2027-03-28T01:30") == datetime(2027, 3, 28, 0, 30, tzinfo=UTC)
    assert clock.parse_pin("2027-10-30T23:30:00+00:00") == datetime(2027, 10, 30, 23, 30, tzinfo=UTC)
    for bad in ("", "2027-02-30", "tomorrow", "30.01.2027", "1999-12-31"):
        with pytest.raises(ValueError):
            clock.parse_pin(bad)


def test_a_pinned_clock_starts_at_the_moment_and_runs_on_travel_and_reset_keep_the_pin(restore_pin: None) -> None:
    clock.pin(clock.parse_pin("2028-02-28"))
    assert clock.is_pinned() and clock.today() == date(2028, 2, 28)
    start = clock.now()
    assert start - datetime(2028, 2, 28, 11, 0, tzinfo=UTC) < timedelta(seconds=5)
    clock.travel(timedelta(days=1))
    assert clock.today() == date(2028, 2, 29)  # a leap day
    clock.travel(timedelta(days=1))
    assert clock.today() == date(2028, 3, 1)
    clock.reset()
    assert clock.today() == date(2028, 2, 28) and clock.now() >= start
    assert clock.parse_pin(clock.pin_text()) - clock.now() < timedelta(seconds=5)  # handed on to a child process
    clock.pin(None)
    assert not clock.is_pinned() and abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_start_at_the_same_moment_again_does_not_restart_the_clock(restore_pin: None) -> None:
    moment = clock.parse_pin("2027-12-30")
    clock.start_at(moment)
    clock.travel(timedelta(hours=30))
    clock.start_at(moment)  # the CLI pinned it, then the app factory in the same process
    assert clock.today() == date(2027, 12, 31)
    clock.start_at(None)
    assert clock.is_pinned()


def test_settings_read_the_pin_and_production_refuses_it(tmp_path: Path) -> None:
    base = {"EKP_VAR_DIR": str(tmp_path), "EKP_SECRET_KEY": "11" * 32, "EKP_PESEL_KEY": "22" * 32}
    assert load_settings({**base, "EKP_ENV": "test", "EKP_TEST_TODAY": "2027-03-27"}).test_clock == \
        datetime(2027, 3, 27, 11, 0, tzinfo=UTC)
    assert load_settings({**base, "EKP_ENV": "test"}).test_clock is None
    with pytest.raises(SettingsError) as bad:
        load_settings({**base, "EKP_ENV": "test", "EKP_TEST_TODAY": "27.03.2027"})
    assert any("EKP_TEST_TODAY" in problem for problem in bad.value.problems)
    with pytest.raises(SettingsError) as refused:
        load_settings({**base, "EKP_ENV": "production", "EKP_SMTP_URL": "smtp://mail.example.pl",
                       "EKP_TEST_TODAY": "2027-03-27"})
    assert any("EKP_TEST_TODAY" in problem and "production" in problem for problem in refused.value.problems)


def test_an_ekp_command_runs_on_the_pinned_clock(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EKP_")}
    env.update(EKP_ENV="test", EKP_VAR_DIR=str(tmp_path), EKP_TEST_TODAY="2028-02-29T23:59",
               EKP_SECRET_KEY="11" * 32, EKP_PESEL_KEY="22" * 32)
    code = "from web.cli import _settings; from web.platform import clock; _settings(); print(clock.today(), clock.is_pinned())"
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2028-02-29 True"
