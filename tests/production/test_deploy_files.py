"""Issue 18: the deployment files in `deploy/` run only `ekp` commands the tests run (images are not built
here): every command of compose.yaml, the jobs loop, the systemd units and the Containerfile is one of
`TESTED`, and the scheduled ones run here against the test database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
# `ekp` sub-commands the deployment files use, and the tests that run them as those files do.
TESTED = {
    "run": "tests/production/test_multi_node.py (ekp run --no-demo --no-migrate [--workers 2] on PostgreSQL + Redis)",
    "db upgrade": "here, and every test database (web.platform.migrate.upgrade)",
    "mail send": "here, and tests/production/test_multi_node.py (on two nodes at once)",
    "billing run": "here, and tests/production/test_multi_node.py (on two nodes at once)",
    "payments reconcile": "here, and tests/web/payment_records/test_payment_outcomes.py",
}


def _ekp_commands() -> list[list[str]]:
    found: list[list[str]] = []
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for service in compose["services"].values():
        command = service.get("command")
        if isinstance(command, list) and command and command[0] == "ekp":
            found.append(command[1:])
    texts = [(DEPLOY / "jobs.sh").read_text(), (DEPLOY / "Containerfile").read_text()]
    texts += [unit.read_text() for unit in sorted((DEPLOY / "systemd").glob("*.service"))]
    for text in texts:
        for line in text.splitlines():
            if line.lstrip().startswith("#"):
                continue
            match = re.search(r'(?:^|[\s"/\[])ekp"?,?\s+"?((?:run|db|mail|billing|payments|users|cards|devices|tickets|demo)\b.*)$',
                              line)
            if match:
                words = (re.sub(r'[",\]\[]', " ", match.group(1)).split("||")[0].split(";")[0]).split()
                found.append(words)
    return found


def _subcommand(words: list[str]) -> str:
    return words[0] if words[0] == "run" else " ".join(words[:2])


def test_deploy_files_run_only_tested_ekp_commands():
    commands = _ekp_commands()
    used = {_subcommand(words) for words in commands}
    assert {"run", "db upgrade", "mail send", "billing run", "payments reconcile"} <= used, used
    assert used <= set(TESTED), f"untested commands in deploy/: {used - set(TESTED)}"
    for words in commands:
        if words[0] == "run":
            assert "--no-migrate" in words and "--no-demo" in words, words


def test_compose_has_replicas_database_redis_proxy_and_jobs():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"app", "db", "cache", "proxy", "jobs", "migrate"} <= set(services)
    assert services["app"]["deploy"]["replicas"] >= 2
    assert services["app"]["environment"]["EKP_REDIS_URL"].startswith("redis://")
    assert (DEPLOY / "Caddyfile").is_file() and (DEPLOY / "nginx.conf").is_file()
    assert "X-Request-ID" in (DEPLOY / "Caddyfile").read_text() and "X-Request-ID" in (DEPLOY / "nginx.conf").read_text()
    assert (DEPLOY / "Dockerfile").resolve() == (DEPLOY / "Containerfile").resolve()
    for timer in ("mail", "billing", "reconcile", "backup"):
        assert (DEPLOY / "systemd" / f"ekp-{timer}.timer").is_file()


@pytest.mark.parametrize("command", [["db", "upgrade"], ["billing", "run"], ["payments", "reconcile"]])
def test_the_scheduled_commands_run(settings_env, command):
    from web import cli

    result = CliRunner().invoke(cli.main, command, env=settings_env)
    assert result.exit_code == 0, result.output


def test_mail_send_runs_with_smtp(settings_env):
    from tests.support.nodes import CountingSmtp
    from web import cli

    smtp = CountingSmtp()
    try:
        result = CliRunner().invoke(cli.main, ["mail", "send"], env={**settings_env, "EKP_SMTP_URL": f"smtp://127.0.0.1:{smtp.port}"})
    finally:
        smtp.close()
    assert result.exit_code == 0, result.output
    assert "mail sent: 0" in result.output
