"""Page templates: constant texts are translated when a template compiles, once per language."""

from __future__ import annotations

from web import i18n
from web.templating import environment, page_environment

SOURCE = (
    '<p>{{ _("Moje konto") }}</p><p>{{ _("100%% pewności") }}</p>'
    '<p>{{ _("Co najmniej %(min)s znaków, w tym wielka litera i cyfra.", min=n) }}</p>'
    '<p title="{{ _(\'Zmień\') }}">{{ label }}</p>'
)


def _render(env, language: str) -> str:
    token = i18n.current_language.set(language)
    try:
        return env.from_string(SOURCE).render(n=10, label="<b>")
    finally:
        i18n.current_language.reset(token)


def test_constant_texts_render_as_the_runtime_gettext_does_in_every_language():
    for language in i18n.LANGUAGES:
        assert _render(page_environment(language), language) == _render(environment(), language)


def test_constant_texts_are_in_the_compiled_code_not_looked_up_at_render():
    code = page_environment("en").compile(SOURCE, raw=True)
    assert "My account" in code  # folded into the template's code
    assert "Moje konto" not in code
    assert "%(min)s" in code  # a text with variables is still translated at render time


def test_english_pages_come_from_the_english_environment(browser):
    english = browser.get("/login", headers={"accept-language": "en"}).text
    polish = browser.get("/login", headers={"accept-language": "pl"}).text
    assert "Log in" in english and "Zaloguj" in polish
    assert page_environment("en") is not page_environment("pl")


def test_page_environments_share_the_globals_of_the_base_environment():
    # static_url and Litestar's csrf_token/url_for are registered on the base environment after start-up.
    assert page_environment("pl").globals is environment().globals
