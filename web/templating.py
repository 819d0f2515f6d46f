"""The one Jinja environment, shared by pages and e-mails."""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from domain.money import format_pln
from web import clock, i18n

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


def _local_datetime(value: datetime | None, fmt: str = "%d.%m.%Y %H:%M") -> str:
    return "" if value is None else clock.to_local(value).strftime(fmt)


def _local_date(value: date | None) -> str:
    return "" if value is None else value.strftime("%d.%m.%Y")


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "xml"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        # Raw look-ups: Jinja's new-style gettext does the %(name)s formatting (and escaping) itself.
        gettext=lambda s: i18n.catalog(i18n.current_language.get()).gettext(s),
        ngettext=lambda s, p, n: i18n.catalog(i18n.current_language.get()).ngettext(s, p, n),
        newstyle=True,
    )
    env.filters["pln"] = format_pln
    env.filters["local_datetime"] = _local_datetime
    env.filters["local_date"] = _local_date
    env.globals["languages"] = i18n.LANGUAGES
    env.globals["current_language"] = lambda: i18n.current_language.get()
    return env
