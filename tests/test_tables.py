"""Issue 14: each area owns its tables (`web/<area>/models.py`); `web.tables` registers them all on one
`SQLModel.metadata` (what Alembic's env.py imports); the platform keeps only its own (docs/architecture.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parents[1]

# what only the platform writes, or many areas do (the audit trail)
PLATFORM_TABLES = {"mail_outbox", "kv_store", "audit_events", "job_runs"}
# tables outside SQLModel.metadata (plain SQLAlchemy Core): the back office's roll-ups (web.office.rollup), the
# jobs' failures (web.platform.observe)
CORE_TABLES = {"alembic_version", "dashboard_rollups", "dashboard_rollup_days", "dashboard_rollup_marks",
               "job_failures"}


def _tables_after_importing(module: str) -> dict[str, str]:
    """Table name -> the module of its class, in a fresh interpreter that imported only `module`."""
    code = (f"import json, {module}\n"
            "from sqlmodel import SQLModel\n"
            "print(json.dumps({m.local_table.name: m.class_.__module__ for m in SQLModel._sa_registry.mappers}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_web_tables_registers_every_migrated_table(engine: Engine) -> None:
    registered = _tables_after_importing("web.tables")
    migrated = set(inspect(engine).get_table_names()) - CORE_TABLES
    assert migrated == set(registered)


def test_each_table_lives_in_its_owners_models_module() -> None:
    registered = _tables_after_importing("web.tables")
    assert {t for t, m in registered.items() if m == "web.platform.models"} == PLATFORM_TABLES
    assert all(m == "web.platform.models" or (m.startswith("web.") and m.endswith(".models") and m.count(".") == 2)
               for m in registered.values()), registered
    assert registered["cards"] == "web.cards.models"
    assert registered["payments"] == "web.payment_records.models"
    assert registered["purse_ledger"] == "web.purse.models"
    assert registered["subscription_months"] == "web.five_plus_one.models"
    assert registered["tickets"] == "web.tickets.models"
    assert registered["users"] == registered["email_tokens"] == registered["recovery_codes"] == "web.accounts.models"
    assert registered["card_applications"] == "web.card_applications.models"


def test_the_platform_alone_registers_only_its_own_tables() -> None:
    assert set(_tables_after_importing("web.platform.models")) == PLATFORM_TABLES


def test_every_process_entry_knows_every_table() -> None:
    """`ekp mail send` in a fresh process failed to flush the outbox (its foreign key names `email_tokens`, which only
    `web.accounts.models` registers): each entry point (the `ekp` command, the app) imports `web.tables` itself."""
    every = set(_tables_after_importing("web.tables"))
    assert set(_tables_after_importing("web.cli")) == every
    assert set(_tables_after_importing("web.app")) == every
