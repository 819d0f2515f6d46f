"""Page templates: constant texts are translated when a template compiles, once per language."""

from __future__ import annotations

import os

from web.platform import i18n
from web.platform.templating import environment, page_environment

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


def test_language_and_static_urls_are_folded_into_the_compiled_code_and_render_the_same():
    from web.app import static_url

    environment().globals["static_url"] = static_url  # as create_app registers it
    source = ('<html lang="{{ current_language() }}"><link href="{{ static_url(\'css/app.css\') }}">'
              '{% if "en" == current_language() %}EN{% endif %}{{ x.current_language }}</html>')
    for language in i18n.LANGUAGES:
        token = i18n.current_language.set(language)
        try:
            folded = page_environment(language).from_string(source).render(x={"current_language": "kept"})
            assert folded == environment().from_string(source).render(x={"current_language": "kept"})
        finally:
            i18n.current_language.reset(token)
        assert f'lang="{language}"' in folded and str(static_url("css/app.css")) in folded
    code = page_environment("en").compile(source, raw=True)
    assert "resolve('current_language')" not in code and "resolve('static_url')" not in code  # no calls at render
    assert str(static_url("css/app.css")) in code


def test_an_edited_template_is_picked_up_but_files_are_not_checked_at_every_render(tmp_path, monkeypatch):
    from jinja2 import Environment

    from web.platform import templating

    page = tmp_path / "page.html"
    page.write_text("one")
    env = Environment(loader=templating.TemplateLoader(tmp_path))
    now = [1000.0]
    monkeypatch.setattr(templating.time, "monotonic", lambda: now[0])
    assert env.get_template("page.html").render() == "one"
    checks = []
    real_getmtime = os.path.getmtime
    monkeypatch.setattr(os.path, "getmtime", lambda path: checks.append(path) or real_getmtime(path))
    page.write_text("two, a longer text")
    os.utime(page, (2_000_000_000, 2_000_000_000))
    for _ in range(50):
        assert env.get_template("page.html").render() == "one"  # within TEMPLATE_CHECK_SECONDS: not checked
    assert checks == []
    now[0] += templating.TEMPLATE_CHECK_SECONDS + 0.1
    assert env.get_template("page.html").render() == "two, a longer text"
    assert checks  # checked once the interval had passed
