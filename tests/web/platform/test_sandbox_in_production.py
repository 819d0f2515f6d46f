"""R-PAY-5 No test money in production (issue 12, item 5), on SQLite and PostgreSQL where a database is used.

A production instance with no `EKP_PAYMENTS` used to serve the sandbox with the public credentials
`sandbox`/`sandbox`, took the test card 4111… as payment, posted signed notifications to any URL it was
given and redirected payers anywhere.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys

import httpx
import pytest
from litestar.testing import TestClient

from tests.conftest import BASE_URL, Browser
from web.platform.settings import PROJECT_ROOT, SettingsError, load_settings

PRODUCTION = {"EKP_ENV": "production", "EKP_SMTP_URL": "smtp://127.0.0.1:25", "EKP_BASE_URL": BASE_URL,
              "EKP_TICKET_KEYS": "1:" + "11" * 32, "EKP_PHOTO_KEY": "22" * 32}
BANNER = "Płatności testowe: ta instancja używa piaskownicy płatności."


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_r_pay_5_production_without_a_real_gateway_is_refused(tmp_path):
    with pytest.raises(SettingsError) as caught:
        load_settings({"EKP_VAR_DIR": str(tmp_path), **PRODUCTION})
    problems = [p for p in caught.value.problems if p.startswith("EKP_PAYMENTS")]
    assert len(problems) == 1 and "EKP_ALLOW_SANDBOX_IN_PRODUCTION" in problems[0], caught.value.problems
    with pytest.raises(SettingsError):
        load_settings({"EKP_VAR_DIR": str(tmp_path), **PRODUCTION, "EKP_PAYMENTS": "sandbox"})
    opted_in = load_settings({"EKP_VAR_DIR": str(tmp_path), **PRODUCTION, "EKP_ALLOW_SANDBOX_IN_PRODUCTION": "true"})
    assert opted_in.payments == "sandbox" and opted_in.announces_test_money
    assert not load_settings({"EKP_VAR_DIR": str(tmp_path)}).announces_test_money, "development: no banner"
    with pytest.raises(SettingsError) as bad:
        load_settings({"EKP_VAR_DIR": str(tmp_path), **PRODUCTION, "EKP_ALLOW_SANDBOX_IN_PRODUCTION": "perhaps"})
    assert any(p.startswith("EKP_ALLOW_SANDBOX_IN_PRODUCTION='perhaps'") for p in bad.value.problems)


def test_r_pay_5_ekp_run_in_production_without_a_gateway_exits_2_and_serves_nothing(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EKP_")}
    env.update({"EKP_VAR_DIR": str(tmp_path), **PRODUCTION, "EKP_BASE_URL": f"http://127.0.0.1:{port}",
                "EKP_PORT": str(port)})
    result = subprocess.run([sys.executable, "-m", "web.cli", "run", "--no-demo"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "EKP_PAYMENTS" in result.stderr and "EKP_ALLOW_SANDBOX_IN_PRODUCTION=true" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "ekp.db").exists(), "nothing was migrated"
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/sandbox-pay/", timeout=2)


def test_r_pay_5_the_app_refuses_to_build_a_sandbox_in_production_without_the_opt_in(make_settings, engine):
    from dataclasses import replace

    from web.app import create_app

    settings = replace(make_settings(), env="production", payments="sandbox", sandbox_in_production=False)
    with pytest.raises(SettingsError):
        create_app(settings, engine, start_jobs=False)


def test_r_pay_5_with_the_opt_in_every_page_shows_the_banner(make_app, users):
    users.create("jan@example.pl")
    app = make_app(**PRODUCTION, EKP_ALLOW_SANDBOX_IN_PRODUCTION="true")
    with TestClient(app, base_url=BASE_URL) as client:
        browser = Browser(client)
        for path in ("/", "/login", "/register", "/terms", "/privacy", "/no-such-page"):
            page = browser.get(path)
            assert BANNER in page.text, (path, page.status_code)
        browser.login("jan@example.pl")
        for path in ("/account", "/cards", "/5plus1", "/purse", "/tickets"):
            page = browser.get(path)
            assert page.status_code == 200 and BANNER in page.text, path
        sandbox_page = browser.get("/sandbox-pay/")
        assert sandbox_page.status_code == 200 and "Piaskownica" in sandbox_page.text


def test_r_pay_5_no_banner_outside_production(browser, users):
    users.create("jan@example.pl")
    assert BANNER not in browser.get("/").text
    browser.login("jan@example.pl")
    assert BANNER not in browser.get("/account").text


def test_r_pay_5_sandbox_credentials_are_random_per_installation(client, app, settings, make_settings):
    """Not the public `sandbox`/`sandbox`: generated into var/ like the secret key, kept between starts."""
    refused = client.post("/sandbox-pay/oauth/auth", data={"client_id": "sandbox", "client_secret": "sandbox"})
    assert refused.status_code == 401
    sandbox = app.state.payments.sandbox
    assert sandbox.settings.client_secret != "sandbox" and len(sandbox.settings.client_secret) >= 32
    assert sandbox.settings.security_code != "sandbox-security-code"
    key_file = settings.var_dir / "sandbox_key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    granted = client.post("/sandbox-pay/oauth/auth", data={"client_id": sandbox.settings.client_id,
                                                           "client_secret": sandbox.settings.client_secret})
    assert granted.status_code == 200 and granted.json()["access_token"]
    from web.platform.gateway import build_payments

    again = build_payments(make_settings())
    try:
        assert again.sandbox.settings.client_secret == sandbox.settings.client_secret, "stable across starts"
    finally:
        again.sandbox.close()


def _token(client, sandbox) -> dict[str, str]:
    granted = client.post("/sandbox-pay/oauth/auth", data={"client_id": sandbox.settings.client_id,
                                                           "client_secret": sandbox.settings.client_secret})
    return {"Authorization": f"Bearer {granted.json()['access_token']}"}


def _payment(reference: str, *, notify: str, success: str, error: str) -> dict:
    return {"amount": 12.5, "description": "Test", "hiddenDescription": reference,
            "payer": {"email": "jan@example.pl", "name": "Jan"},
            "callbacks": {"payerUrls": {"success": success, "error": error}, "notification": {"url": notify}}}


@pytest.mark.parametrize("outside", [
    "http://169.254.169.254/latest/meta-data/",
    "https://evil.example/steal",
    "http://testserver.local.evil.example/payments/notify",
    "http://testserver.local@evil.example/payments/notify",
    "http://testserver.local:8080/payments/notify",
    "https://testserver.local/payments/notify",
    "//evil.example/x",
    "javascript:alert(1)",
])
def test_r_pay_5_sandbox_refuses_notification_and_return_urls_outside_the_base_url(outside, client, app):
    sandbox = app.state.payments.sandbox
    headers = _token(client, sandbox)
    inside = f"{BASE_URL}/payments/notify"
    for notify, success, error in ((outside, f"{BASE_URL}/ok", f"{BASE_URL}/err"), (inside, outside, f"{BASE_URL}/err"),
                                   (inside, f"{BASE_URL}/ok", outside)):
        answer = client.post("/sandbox-pay/transactions", headers=headers,
                             json=_payment(f"ref-{abs(hash((notify, success, error)))}", notify=notify, success=success,
                                           error=error))
        assert answer.status_code == 400, (notify, success, error, answer.text)
        assert answer.json()["errors"][0]["errorCode"] == "invalid_url"
    fine = client.post("/sandbox-pay/transactions", headers=headers,
                       json=_payment("ref-inside", notify=inside, success=f"{BASE_URL}/ok", error=f"{BASE_URL}/err"))
    assert fine.status_code == 200 and fine.json()["transactionPaymentUrl"].startswith(f"{BASE_URL}/sandbox-pay/pay/")
