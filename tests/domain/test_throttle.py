"""R-AUTH-1: which counters an attempt is counted in, and how long to wait (pure)."""

from domain.throttle import LIMITS, login_counters, reset_counters, wait_seconds


def test_r_auth_1_an_unknown_browser_counts_per_account_and_address_per_account_and_per_address():
    assert login_counters("jan@example.pl", "10.0.0.1", None) == [
        ("login.pair", "jan@example.pl\n10.0.0.1"), ("login.account", "jan@example.pl"), ("login.ip", "10.0.0.1")]


def test_r_auth_1_a_known_browser_is_not_held_up_by_the_account_or_address_counters():
    assert login_counters("jan@example.pl", "10.0.0.1", "dev") == [
        ("login.pair", "jan@example.pl\n10.0.0.1"), ("login.device", "jan@example.pl\ndev")]


def test_r_auth_1_reset_answers_too_many_only_per_account_and_address_and_per_address():
    assert [name for name, _ in reset_counters("jan@example.pl", "10.0.0.1")] == ["reset.pair", "reset.ip"]


def test_r_auth_1_wait_is_the_longest_window_left_of_any_counter_over_its_limit():
    assert wait_seconds([("login.pair", 5, 100.0), ("login.ip", 20, 50.0)]) == 0, "at the limit: still allowed"
    assert wait_seconds([("login.pair", 6, 100.2), ("login.ip", 21, 50.0)]) == 101
    assert wait_seconds([("login.pair", 6, 0.0)]) == 1, "never 0 while over"
    assert LIMITS["login.pair"].attempts == 5 and LIMITS["login.pair"].window_seconds == 900
