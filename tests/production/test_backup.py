"""Issue 18: backups. `deploy/backup.sh` (pg_dump -Fc) and `deploy/restore.sh` (pg_restore) round trip: an
account, its ticket and an e-purse balance made on the PostgreSQL test database are found, through the app,
on a fresh database restored from the dump."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from litestar.testing import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import BASE_URL, Browser, page_text
from tests.support.purse import balance_of, make_card
from tests.support.tickets import make_ticket
from web.platform.db import make_engine

pytestmark = pytest.mark.parametrize("db_backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _fresh_database(url: str, name: str) -> str:
    admin = create_engine(make_url(url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def test_backup_and_restore_round_trip(db_url, db, users, settings, make_settings, fast_password_hashing, tmp_path):
    from web.app import create_app

    user = users.create("jan@example.pl")
    ticket = make_ticket(db, user, client_code="777888999")
    make_card(engine=db.engine, settings=settings, number="70015555", balance=4321)
    balance_before = balance_of(db.engine, "70015555")
    assert balance_before >= 4321  # with the top-up bonus

    dump = tmp_path / "ekp.dump"
    env = {**os.environ, "EKP_DATABASE_URL": db_url}
    done = subprocess.run(["deploy/backup.sh", str(dump)], check=False, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert dump.read_bytes()[:5] == b"PGDMP", "pg_dump's custom format"
    restored_url = _fresh_database(db_url, f"{make_url(db_url).database}_restored")
    done = subprocess.run(["deploy/restore.sh", str(dump), restored_url], check=False, cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr

    restored = make_engine(restored_url)
    try:
        app = create_app(make_settings(EKP_DATABASE_URL=restored_url), restored, start_jobs=False)
        with TestClient(app, base_url=BASE_URL) as client:
            assert client.get("/readyz").status_code == 200
            browser = Browser(client)
            browser.login("jan@example.pl")  # the same account, password hash and all
            tickets = page_text(browser.get("/tickets").text)
            assert "777888999" in tickets or str(ticket.id) in browser.get("/tickets").text
            with restored.connect() as conn:
                balance = conn.execute(text("SELECT balance FROM purse_cards WHERE number = '70015555'")).scalar()
                ledger = conn.execute(text("SELECT sum(amount) FROM purse_ledger l JOIN purse_cards c "
                                           "ON c.id = l.card_id WHERE c.number = '70015555'")).scalar()
            assert balance == balance_before and ledger == balance_before
    finally:
        restored.dispose()
