"""The Jinja environments: one for e-mails and anything rendered outside a request, and one per language
for pages, in which every `_("constant text")` is translated once, when the template is compiled.

A page template has thirty-odd constant texts; looking each up in the catalog at every render (Jinja's
new-style gettext: a context call, the look-up, `Markup`, `%` formatting) was half of the account page's
rendering time. Texts with variables (`_("... %(n)s", n=...)`), `ngettext` and `{% trans %}` blocks are
still translated at render time.
"""

from __future__ import annotations

import time
from collections import ChainMap
from collections.abc import Iterator
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.exceptions import TemplateNotFound
from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream
from litestar.exceptions import TemplateNotFoundException
from litestar.plugins.jinja import JinjaTemplateEngine

from domain.money import format_pln
from web.platform import clock
from web.platform import form_html
from web.platform import i18n

WEB_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = WEB_DIR / "platform" / "templates"  # the layouts, partials, error pages and mail
# Every area keeps its pages in web/<area>/templates/<area>/ (the names pages ask for stay "<area>/page.html")
TEMPLATE_DIRS = [TEMPLATES_DIR, *sorted(p for p in WEB_DIR.glob("*/templates") if p != TEMPLATES_DIR)]


def _local_datetime(value: datetime | None, fmt: str = "%d.%m.%Y %H:%M") -> str:
    return "" if value is None else clock.to_local(value).strftime(fmt)


def _local_date(value: date | None) -> str:
    return "" if value is None else value.strftime("%d.%m.%Y")


@pass_context
def _announces_test_money(context) -> bool:
    """R-PAY-5: whether this page must say that payments are not real (the app serving it runs the sandbox
    in production). Read from the request's app, so apps with other settings in one process differ."""
    settings = getattr(getattr(getattr(context.get("request"), "app", None), "state", None), "settings", None)
    return bool(getattr(settings, "announces_test_money", False))


TEMPLATE_CHECK_SECONDS = 2.0


class TemplateLoader(FileSystemLoader):
    """Templates from `web/*/templates/`; an edited file is picked up within TEMPLATE_CHECK_SECONDS. Jinja checks a
    cached template's file at every `get_template` (a page asks for three or four: the page, the layout,
    the imports and includes), a `stat` system call each, on the event loop; here it is checked at most
    once per TEMPLATE_CHECK_SECONDS."""

    def get_source(self, environment: Environment, template: str):
        source, filename, uptodate = super().get_source(environment, template)
        checked_at, fresh = time.monotonic(), True

        def throttled() -> bool:
            nonlocal checked_at, fresh
            now = time.monotonic()
            if fresh and now - checked_at < TEMPLATE_CHECK_SECONDS:
                return True
            checked_at, fresh = now, bool(uptodate())
            return fresh

        return source, filename, throttled


class _Globals(ChainMap):
    """A template's globals over the environment's (Jinja's ChainMap), with `keys()` a plain set: Jinja takes the
    difference of two templates' global names at every `{% from ... import %}`, which on ChainMaps' key views
    walked both maps in Python, at every render of a page with form fields."""

    def keys(self):
        return set().union(*self.maps)


class PageEnvironment(Environment):
    def make_globals(self, d):
        return _Globals({} if d is None else d, self.globals)


def _settings_in(context):
    settings = context.get("settings")
    if settings is None:
        settings = getattr(getattr(getattr(context.get("request"), "app", None), "state", None), "settings", None)
    if settings is None:  # mail is given its operator explicitly (`web.platform.mail.mail_operator`)
        raise LookupError("a template needing the settings got neither `settings` nor a request")
    return settings


@pass_context
def _operator(context):
    """The operator profile (name, colours, logo, contacts, legal texts, modules) of the app serving this."""
    return _settings_in(context).profile


def theme_css(profile) -> str:
    """The operator's colours as the style sheet's variables (served as /operator.css: no inline style)."""
    return f":root {{ --blue: {profile.primary_colour}; --blue-dark: {profile.primary_dark_colour}; }}\n"


@lru_cache(maxsize=16)
def _theme_version(css: str) -> str:
    import hashlib

    return hashlib.sha256(css.encode()).hexdigest()[:10]


@pass_context
def _theme_url(context) -> str:
    return f"/operator.css?v={_theme_version(theme_css(_settings_in(context).profile))}"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = PageEnvironment(
        loader=TemplateLoader(TEMPLATE_DIRS),
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
    env.globals["announces_test_money"] = _announces_test_money
    # exported by partials/forms.html as field, errors_for and form_errors
    env.globals["form_field"] = form_html.field
    env.globals["form_errors_for"] = form_html.errors_for
    env.globals["form_errors_alert"] = form_html.form_errors
    env.globals["operator"] = _operator
    env.globals["theme_url"] = _theme_url
    return env


def _safe_literal(line: int, text: str) -> list[Token]:
    return [Token(line, "lparen", "("), Token(line, "string", text), Token(line, "pipe", "|"),
            Token(line, "name", "safe"), Token(line, "rparen", ")")]


class ConstantTexts(Extension):
    """Rewrites, when a template compiles, what is constant in the environment's language
    (`environment.ekp_language`) into literals:

    - `_("text")` (one string literal, nothing else) into the translated text, marked safe as new-style
      gettext marks it;
    - `current_language()` into the language's code (pages are rendered in their language's environment);
    - `static_url("path")` into the file's versioned URL (the function is registered by the app at start-up,
      and caches its answers for the process's life anyway).

    Each was a call through Jinja's runtime and an escape at every render."""

    def filter_stream(self, stream: TokenStream) -> Iterator[Token]:
        language = self.environment.ekp_language  # type: ignore[attr-defined]
        catalog = i18n.catalog(language)
        static_url: Any = self.environment.globals.get("static_url")
        window: list[Token] = []
        for token in stream:
            window.append(token)
            if (len(window) >= 4 and window[-3].type == "lparen" and window[-2].type == "string"
                    and window[-1].type == "rparen" and (len(window) < 5 or window[-5].type != "dot")):
                literal = window[-2]
                if window[-4].test("name:_"):
                    # New-style gettext always %-formats, so "%%" in a message id means "%".
                    text = catalog.gettext(literal.value) % {}
                    del window[-4:]
                    window += _safe_literal(literal.lineno, text)
                elif window[-4].test("name:static_url") and static_url is not None:
                    url = str(static_url(literal.value))
                    del window[-4:]
                    window += _safe_literal(literal.lineno, url)
            elif (len(window) >= 3 and window[-3].test("name:current_language") and window[-2].type == "lparen"
                    and window[-1].type == "rparen" and (len(window) < 4 or window[-4].type != "dot")):
                line = window[-3].lineno
                del window[-3:]
                window.append(Token(line, "string", language))
            while len(window) > 4:
                yield window.pop(0)
        yield from window


@lru_cache(maxsize=None)
def page_environment(language: str) -> Environment:
    """The pages' environment for one language; shares the globals (static_url, csrf_token, ...) of
    `environment()`. Templates are compiled once per language."""
    env = environment().overlay(extensions=[ConstantTexts], cache_size=400)
    env.ekp_language = language  # type: ignore[attr-defined]
    return env


class PageTemplates(JinjaTemplateEngine):
    """Litestar's Jinja engine, picking the environment of the request's language."""

    def get_template(self, template_name: str):
        try:
            return page_environment(i18n.current_language.get()).get_template(template_name)
        except TemplateNotFound as exc:
            raise TemplateNotFoundException(template_name=template_name) from exc
