"""Migrations are frozen: they never import the app (its models, templates or services change; a migration
must run the same way in a year), and the one that used to render mail with app templates refuses instead."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from web.platform.migrate import alembic_config

VERSIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"
APP_PACKAGES = {"web", "domain", "payments"}


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", sorted(VERSIONS.glob("*.py")), ids=lambda p: p.stem)
def test_a_migration_never_imports_app_code(path: Path) -> None:
    assert not _imported_roots(path) & APP_PACKAGES, f"{path.name} imports app code"


def test_0007_downgrade_refuses_while_unrendered_mail_waits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    config = alembic_config(url)
    command.upgrade(config, "0007")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO mail_outbox (to_address, subject, text_body, html_body, created_at, attempts, "
            "next_attempt_at, template, language, context) VALUES ('a@example.pl', '', '', '', "
            "'2026-01-01 10:00:00', 0, '2026-01-01 10:00:00', 'activation', 'pl', '{}')"))
    with pytest.raises(RuntimeError, match="ekp mail send"):
        command.downgrade(config, "0006")
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE mail_outbox SET sent_at = '2026-01-01 10:01:00'"))
    command.downgrade(config, "0006")
    columns = {c["name"] for c in sa.inspect(engine).get_columns("mail_outbox")}
    assert "template" not in columns and "to_address" in columns
    engine.dispose()
