"""Alembic, driven from code: `ekp db upgrade` and `ekp run` call `upgrade(settings)`."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from web.platform.settings import PROJECT_ROOT, Settings


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    if settings.is_sqlite:
        settings.var_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings.database_url), revision)
