"""Process-wide handles for code that runs outside a request (jobs, payment outcome handlers)."""

from __future__ import annotations

from web.platform.settings import Settings, load_settings

_settings: Settings | None = None


def set_settings(settings: Settings) -> None:
    global _settings
    _settings = settings


def current_settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings
