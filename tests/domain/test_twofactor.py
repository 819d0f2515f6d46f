"""R-AUTH-3 rules: who needs a second factor, reading a typed code, TOTP steps (RFC 6238) without replays,
and who may reset a lost factor."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyotp

from domain import twofactor as rules

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
AT = datetime(2027, 1, 30, 11, 0, 10, tzinfo=timezone.utc)


def test_r_auth_3_staff_and_inspectors_always_need_a_second_factor_passengers_when_they_turn_it_on():
    assert rules.factor_required("staff", enrolled=False)
    assert rules.factor_required("inspector", enrolled=False)
    assert rules.factor_required("admin", enrolled=False)  # the back office (issue 17)
    assert not rules.factor_required("passenger", enrolled=False)
    assert rules.factor_required("passenger", enrolled=True)


def test_r_auth_3_codes_are_read_loosely_but_bounded():
    assert rules.read_code(" 123 456 ") == rules.TypedCode("totp", "123456")
    assert rules.read_code("ABCDE-FGHJK") == rules.TypedCode("recovery", "abcdefghjk")
    for bad in ("", "12345", "1234567", "١٢٣٤٥٦", "abcde-fghj0", "x" * 1000, "123456\x00"):
        assert rules.read_code(bad) is None, bad


def test_r_auth_3_totp_matches_rfc_6238_within_one_step_of_drift():
    code = pyotp.TOTP(SECRET).at(AT)
    assert rules.code_at_step(SECRET, rules.step_at(AT)) == code
    assert rules.accepted_step(SECRET, code, AT, None) == rules.step_at(AT)
    assert rules.accepted_step(SECRET, code, AT + timedelta(seconds=30), None) == rules.step_at(AT)
    assert rules.accepted_step(SECRET, code, AT - timedelta(seconds=30), None) == rules.step_at(AT)
    assert rules.accepted_step(SECRET, code, AT + timedelta(seconds=61), None) is None


def test_r_auth_3_a_code_is_never_accepted_twice_nor_an_older_one():
    step = rules.step_at(AT)
    code = rules.code_at_step(SECRET, step)
    assert rules.accepted_step(SECRET, code, AT, step) is None
    older = rules.code_at_step(SECRET, step - 1)
    assert rules.accepted_step(SECRET, older, AT, step) is None
    newer = rules.code_at_step(SECRET, step + 1)
    assert rules.accepted_step(SECRET, newer, AT, step) == step + 1


def test_r_auth_3_only_another_staff_member_resets_a_factor():
    assert rules.reset_refusal(1, "staff", 2) is None
    assert rules.reset_refusal(1, "staff", 1) == "twofactor.reset_self"
    assert rules.reset_refusal(1, "inspector", 2) == "twofactor.reset_forbidden"
    assert rules.reset_refusal(1, "passenger", 2) == "twofactor.reset_forbidden"


def test_r_auth_3_recovery_codes_are_shown_in_two_groups():
    assert rules.format_recovery_code("abcdefghjk") == "abcde-fghjk"
