"""Settings from EKP_* variables: defaults, secrets generated into var/, every bad value reported at once."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from web.platform.settings import PROJECT_ROOT, SettingsError, load_settings


def test_defaults_run_embedded_on_sqlite(tmp_path):
    settings = load_settings({"EKP_VAR_DIR": str(tmp_path)})
    assert settings.env == "development"
    assert settings.database_url == f"sqlite:///{tmp_path / 'ekp.db'}"
    assert settings.is_sqlite
    assert (settings.host, settings.port, settings.base_url) == ("127.0.0.1", 8000, "http://127.0.0.1:8000")
    assert (settings.activation_hours, settings.reset_hours, settings.password_min_length) == (3, 1, 8)
    assert settings.default_language == "pl"
    assert settings.dev_pages and not settings.secure_cookies


def test_secrets_are_generated_once_into_var_and_kept_private(tmp_path):
    first = load_settings({"EKP_VAR_DIR": str(tmp_path)})
    assert len(first.secret_key) == 32 and len(first.pesel_key) == 32
    assert first.secret_key != first.pesel_key
    for name in ("secret_key", "pesel_key"):
        mode = stat.S_IMODE(os.stat(tmp_path / name).st_mode)
        assert mode == 0o600, oct(mode)
    second = load_settings({"EKP_VAR_DIR": str(tmp_path)})
    assert (second.secret_key, second.pesel_key) == (first.secret_key, first.pesel_key)


def test_secrets_from_the_environment_win(tmp_path):
    settings = load_settings({"EKP_VAR_DIR": str(tmp_path), "EKP_SECRET_KEY": "ab" * 32, "EKP_PESEL_KEY": "cd" * 40})
    assert settings.secret_key == bytes.fromhex("ab" * 32)
    assert settings.pesel_key == bytes.fromhex("cd" * 40)
    assert not (tmp_path / "secret_key").exists()
    assert "abab" not in repr(settings), "secrets are kept out of repr"


def test_postgres_urls_are_normalised_to_psycopg(tmp_path):
    for given in ("postgres://u:p@db/ekp", "postgresql://u:p@db/ekp", "postgresql+psycopg://u:p@db/ekp"):
        settings = load_settings({"EKP_VAR_DIR": str(tmp_path), "EKP_DATABASE_URL": given})
        assert settings.database_url == "postgresql+psycopg://u:p@db/ekp"
        assert not settings.is_sqlite


def test_production_defaults_are_safe(tmp_path):
    settings = load_settings({"EKP_VAR_DIR": str(tmp_path), "EKP_ENV": "production", "EKP_BASE_URL": "https://ekp.example.pl",
                              "EKP_SMTP_URL": "smtp+starttls://mail.example.pl:587", "EKP_PAYMENTS": "tpay",
                              "EKP_TPAY_CLIENT_ID": "id", "EKP_TPAY_CLIENT_SECRET": "secret",
                              "EKP_TPAY_SECURITY_CODE": "code", "EKP_TICKET_KEYS": "1:" + "11" * 32, "EKP_PHOTO_KEY": "22" * 32})
    assert settings.is_production
    assert not settings.announces_test_money
    assert not settings.dev_pages, "the dev mail page is off in production"
    assert settings.secure_cookies, "https base URL -> secure cookies"


BAD = {
    "EKP_ENV": "prod",
    "EKP_PORT": "http",
    "EKP_BASE_URL": "ftp://example.pl",
    "EKP_DATABASE_URL": "mysql://db/ekp",
    "EKP_REDIS_URL": "http://cache",
    "EKP_SMTP_URL": "mail.example.pl",
    "EKP_PAYMENTS": "paypal",
    "EKP_LANGUAGE": "de",
    "EKP_SESSION_DAYS_REMEMBER": "0",
    "EKP_SESSION_HOURS": "twelve",
    "EKP_ACTIVATION_HOURS": "100",
    "EKP_RESET_HOURS": "-1",
    "EKP_PASSWORD_MIN_LENGTH": "4",
    "EKP_DEV_PAGES": "maybe",
    "EKP_SCHEDULER": "sometimes",
    "EKP_SECURE_COOKIES": "2",
    "EKP_SECRET_KEY": "not-hex",
    "EKP_PESEL_KEY": "abcd",
}


def test_every_bad_value_is_listed_at_once_with_its_variable(tmp_path):
    with pytest.raises(SettingsError) as caught:
        load_settings({"EKP_VAR_DIR": str(tmp_path), **BAD})
    problems = caught.value.problems
    for name in BAD:
        assert any(problem.startswith(name) for problem in problems), f"{name} not reported in {problems}"
    assert len(problems) == len(BAD)
    assert str(caught.value) == "\n".join(problems)
    assert not (tmp_path / "secret_key").exists(), "nothing generated when the settings are wrong"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("EKP_PORT", "0", "EKP_PORT='0': expected a whole number from 1 to 65535"),
        ("EKP_PORT", "70000", "EKP_PORT='70000': expected a whole number from 1 to 65535"),
        ("EKP_ENV", "prod", "EKP_ENV='prod': expected development, production or test"),
        ("EKP_DEV_PAGES", "maybe", "EKP_DEV_PAGES='maybe': expected true or false"),
        ("EKP_LANGUAGE", "de", "EKP_LANGUAGE='de': expected pl or en"),
        ("EKP_SECRET_KEY", "00" * 16, "EKP_SECRET_KEY: expected at least 32 bytes written as hex (64 hex digits)"),
    ],
)
def test_each_problem_says_what_is_expected(tmp_path, name, value, expected):
    with pytest.raises(SettingsError) as caught:
        load_settings({"EKP_VAR_DIR": str(tmp_path), name: value})
    assert caught.value.problems == [expected]


def test_bad_key_value_is_not_echoed(tmp_path):
    with pytest.raises(SettingsError) as caught:
        load_settings({"EKP_VAR_DIR": str(tmp_path), "EKP_PESEL_KEY": "secret-ish-value"})
    assert "secret-ish-value" not in str(caught.value)


def test_production_needs_smtp(tmp_path):
    with pytest.raises(SettingsError) as caught:
        load_settings({"EKP_VAR_DIR": str(tmp_path), "EKP_ENV": "production"})
    assert any(problem.startswith("EKP_SMTP_URL: required") for problem in caught.value.problems)


def test_cli_refuses_to_start_and_lists_the_problems(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EKP_")}
    env.update({"EKP_VAR_DIR": str(tmp_path), "EKP_PORT": "abc", "EKP_LANGUAGE": "xx"})
    result = subprocess.run([sys.executable, "-m", "web.cli", "db", "upgrade"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "EKP_PORT='abc'" in result.stderr and "EKP_LANGUAGE='xx'" in result.stderr
    assert "Traceback" not in result.stderr


def test_billing_timing_comes_from_settings_and_is_validated(make_settings):
    from web.five_plus_one.service import billing_policy
    from web.platform.settings import SettingsError

    policy = billing_policy(make_settings(EKP_CHARGE_DAYS_BEFORE="5", EKP_RETRY_EVERY_DAYS="2"))
    assert (policy.charge_days_before, policy.retry_every_days) == (5, 2)
    try:
        make_settings(EKP_CHARGE_DAYS_BEFORE="0", EKP_RETRY_EVERY_DAYS="x")
    except SettingsError as exc:
        assert any("EKP_CHARGE_DAYS_BEFORE" in p for p in exc.problems)
        assert any("EKP_RETRY_EVERY_DAYS" in p for p in exc.problems)
    else:
        raise AssertionError("bad billing timing accepted")


def test_r_top_5_desk_limits_default_to_1000_and_200_zloty_and_are_validated(make_settings):
    from web.desk.service import desk_limits

    limits = desk_limits(make_settings())
    assert (limits.maximum, limits.confirm_above) == (100_000, 20_000)
    limits = desk_limits(make_settings(EKP_DESK_TOPUP_MAX="2500,50", EKP_DESK_TOPUP_CONFIRM_ABOVE="0,01"))
    assert (limits.maximum, limits.confirm_above) == (250_050, 1)
    for bad in ({"EKP_DESK_TOPUP_MAX": "1e7"}, {"EKP_DESK_TOPUP_MAX": "nan"}, {"EKP_DESK_TOPUP_MAX": "0"},
                {"EKP_DESK_TOPUP_MAX": "100001"}, {"EKP_DESK_TOPUP_CONFIRM_ABOVE": "-1"},
                {"EKP_DESK_TOPUP_MAX": "100", "EKP_DESK_TOPUP_CONFIRM_ABOVE": "150"}):
        with pytest.raises(SettingsError) as caught:
            make_settings(**bad)
        assert any(p.startswith("EKP_DESK_TOPUP") for p in caught.value.problems), caught.value.problems


def test_production_refuses_a_missing_photo_key(tmp_path):
    """Card-application photos are encrypted at rest (issue 16): production needs its own key."""
    with pytest.raises(SettingsError) as refused:
        load_settings({"EKP_VAR_DIR": str(tmp_path), "EKP_ENV": "production", "EKP_SMTP_URL": "smtp://127.0.0.1:25",
                       "EKP_PAYMENTS": "tpay", "EKP_TPAY_CLIENT_ID": "id", "EKP_TPAY_CLIENT_SECRET": "s",
                       "EKP_TPAY_SECURITY_CODE": "c", "EKP_TICKET_KEYS": "1:" + "11" * 32})
    assert "EKP_PHOTO_KEY" in str(refused.value)
    assert len(load_settings({"EKP_VAR_DIR": str(tmp_path)}).photo_key) == 32  # development: derived


@pytest.mark.parametrize("name", ["EKP_TARIFF_5P1", "EKP_TARIFF_PURSE"])
@pytest.mark.parametrize("broken", ["missing", "malformed"])
def test_ekp_run_stops_on_a_missing_or_malformed_tariff_with_its_path_and_reason(tmp_path, name, broken):
    path = tmp_path / "tariff.toml"
    if broken == "malformed":
        path.write_text("[[prices]\neffective_from = 2024-01-01\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EKP_")}
    env.update({"EKP_VAR_DIR": str(tmp_path), name: str(path)})
    result = subprocess.run([sys.executable, "-m", "web.cli", "run", "--no-migrate", "--no-demo"], cwd=PROJECT_ROOT,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "EKP on http" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if name in line]
    assert len(lines) == 1, result.stderr
    reason = "cannot be read (No such file or directory)" if broken == "missing" else "not valid TOML"
    assert f"{name}={str(path)!r}" in lines[0] and reason in lines[0], lines[0]


def test_tariffs_are_read_once_into_the_settings(tmp_path):
    from domain.tariff_5p1 import tariff_5p1_from_toml

    path = tmp_path / "tariff.toml"
    path.write_text('name = "Bilet 5+1"\nreduced_percent = 50\n\n[[prices]]\neffective_from = 2024-01-01\n'
                    'monthly_normal = "80.00"\nplus_one_normal = "20.00"\n', encoding="utf-8")
    settings = load_settings({"EKP_VAR_DIR": str(tmp_path), "EKP_TARIFF_5P1": str(path)})
    assert settings.tariff_5p1_path == path and settings.tariff_5p1 == tariff_5p1_from_toml(path.read_text())
    path.unlink()  # read at start-up: nothing reads the file again
    assert settings.tariff_5p1.periods[0].monthly_normal == 8000


def test_every_setting_is_a_typed_field_validated_at_start(make_settings):
    settings = make_settings(EKP_BILLING_CONCURRENCY="16", EKP_SANDBOX_BACKOFF="0.5")
    assert (settings.billing_concurrency, settings.sandbox_backoff) == (16, 0.5)
    assert make_settings().billing_concurrency == 8
    with pytest.raises(SettingsError) as caught:
        make_settings(EKP_BILLING_CONCURRENCY="1000", EKP_SANDBOX_BACKOFF="soon", EKP_TEST_BILLING_CRASH_AT="later")
    assert [p.split("=")[0] for p in caught.value.problems] == [
        "EKP_BILLING_CONCURRENCY", "EKP_SANDBOX_BACKOFF", "EKP_TEST_BILLING_CRASH_AT"]
