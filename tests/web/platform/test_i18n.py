"""Languages: Polish by default, English selectable.

Part 1 checks the English catalog against the sources: Babel's extractor runs in-process with the same
mapping (`babel.cfg`) and keywords as `scripts/i18n`, and every message it finds must have an English
translation with the same %(name)s placeholders. Adding an untranslated `_()` anywhere fails here; run
`scripts/i18n update`, translate the new entries in `web/locale/en/LC_MESSAGES/messages.po`, and commit.

Part 2 drives the app: the language switch (POST /language), Accept-Language, field errors and e-mails.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from tests.conftest import field_errors, page_text, registration_form
from web.platform import i18n

ROOT = Path(__file__).resolve().parents[3]
BABEL_CFG = ROOT / "babel.cfg"
PO_FILE = ROOT / "web" / "locale" / "en" / "LC_MESSAGES" / "messages.po"
# The keywords of scripts/i18n: -k N_ -k _ -k gettext -k ngettext:1,2
KEYWORDS = {"N_": None, "_": None, "gettext": None, "ngettext": (1, 2)}
SKIPPED_DIRS = {".venv", "node_modules", "payments", "__pycache__"}

_PLACEHOLDER = re.compile(r"%\(\w+\)[sdifr]|%%")


# --------------------------------------------------------------------------- the catalog


def _keep_dir(path: str) -> bool:
    name = os.path.basename(path)
    return not name.startswith(".") and name not in SKIPPED_DIRS


def _extracted() -> dict[str | tuple[str, ...], list[str]]:
    """msgid (or (singular, plural)) -> places where the sources use it."""
    with BABEL_CFG.open(encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh, filename=str(BABEL_CFG))
    found: dict[str | tuple[str, ...], list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS, directory_filter=_keep_dir
    ):
        key = message if isinstance(message, str) else tuple(message)
        found.setdefault(key, []).append(f"{filename}:{lineno}")
    return found


@pytest.fixture(scope="module")
def extracted() -> dict[str | tuple[str, ...], list[str]]:
    return _extracted()


@pytest.fixture(scope="module")
def english() -> Catalog:
    with PO_FILE.open("rb") as fh:
        return read_po(fh, locale="en")


def _forms(value: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ("",)
    return (value,) if isinstance(value, str) else tuple(value)


def _placeholders(text: str) -> tuple[list[str], int]:
    """The %(name)s / %% tokens of a text (sorted) and how many lone '%' signs are left besides them."""
    tokens = _PLACEHOLDER.findall(text)
    return sorted(tokens), _PLACEHOLDER.sub("", text).count("%")


def _problem(key: str | tuple[str, ...], entry: Message | None) -> str | None:
    ids = _forms(key)
    if entry is None:
        return "not in the catalog"
    if entry.fuzzy:
        return "marked fuzzy"
    strings = _forms(entry.string)
    if len(ids) == 2 and len(strings) != 2:
        return f"needs 2 plural forms, has {len(strings)}"
    if not all(s.strip() for s in strings):
        return "empty translation"
    for index, text in enumerate(strings):
        source = ids[min(index, len(ids) - 1)]
        if _placeholders(text) != _placeholders(source):
            return f"placeholders differ: {_placeholders(source)[0]} in Polish, {_placeholders(text)[0]} in {text!r}"
    return None


def test_babel_cfg_maps_web_python_and_templates_only() -> None:
    with BABEL_CFG.open(encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh, filename=str(BABEL_CFG))
    assert dict(method_map) == {
        "web/**.py": "python",
        "web/**/templates/**.html": "jinja2",
        "web/**/templates/**.txt": "jinja2",
    }
    for pattern in ("web/**/templates/**.html", "web/**/templates/**.txt"):
        assert options_map[pattern]["extensions"] == "jinja2.ext.i18n"
        assert options_map[pattern]["newstyle_gettext"] == "true"


def test_extraction_finds_python_and_template_messages(extracted: dict) -> None:
    # Sanity check of the extractor itself, so the completeness test below cannot pass vacuously.
    assert "Podaj imię." in extracted  # N_() in web/platform/messages.py
    assert "Nie ma takiej strony" in extracted  # i18n._() in web/app.py
    assert "Zaloguj się" in extracted  # {{ _() }} in web/accounts/templates/accounts/login.html
    assert ("%(num)s dzień", "%(num)s dni") in extracted  # ngettext in a template
    assert not any(where.startswith(("payments", ".venv", "node_modules")) for places in extracted.values() for where in places)


def test_every_extracted_message_has_an_english_translation(extracted: dict, english: Catalog) -> None:
    problems = []
    for key, places in sorted(extracted.items(), key=lambda item: str(item[0])):
        entry = english.get(key if isinstance(key, str) else key[0])
        if entry is not None and isinstance(key, tuple) and _forms(entry.id) != key:
            problem: str | None = f"catalog has {_forms(entry.id)!r} instead of the plural pair"
        else:
            problem = _problem(key, entry)
        if problem:
            problems.append(f"  {key!r}\n      {problem}; used at {', '.join(places[:3])}")
    if problems:
        pytest.fail(
            f"{len(problems)} message(s) without a proper English translation "
            f"(run scripts/i18n update and translate them in {PO_FILE.relative_to(ROOT)}):\n" + "\n".join(problems),
            pytrace=False,
        )


def _formats(text: str) -> str | None:
    """None if `text % {placeholders}` works (as Jinja's new-style gettext always does), else the error."""
    try:
        text % {name: "x" for name in re.findall(r"%\((\w+)\)", text)}
    except (ValueError, TypeError, KeyError) as exc:
        return f"{exc} (write a literal % as %%)"
    return None


def test_template_messages_are_valid_format_strings(extracted: dict, english: Catalog) -> None:
    # Jinja's new-style gettext always applies `%` (even with no variables), and web.platform.messages does so
    # when a text has %(name)s places: "50%" in a template crashes the page; it must be "50%%".
    problems = []
    for key, places in extracted.items():
        if not (any("/templates/" in place for place in places) or "%(" in "".join(_forms(key))):
            continue
        entry = english.get(key if isinstance(key, str) else key[0])
        texts = [*_forms(key), *(_forms(entry.string) if entry is not None else ())]
        for text in texts:
            if text and (error := _formats(text)):
                problems.append(f"  {text!r}: {error}; used at {', '.join(places[:3])}")
    if problems:
        pytest.fail("messages that break %-formatting:\n" + "\n".join(problems), pytrace=False)


def test_catalog_has_no_fuzzy_entries_and_english_plural_rules(english: Catalog) -> None:
    assert english.num_plurals == 2
    assert english.plural_expr.replace(" ", "") in {"(n!=1)", "n!=1"}
    fuzzy = [message.id for message in english if message.id and message.fuzzy]
    assert not fuzzy, f"fuzzy entries (check and unmark them): {fuzzy}"


def test_catalog_compiles_and_translates() -> None:
    translations = i18n.catalog("en")
    assert translations.gettext("Zaloguj się") == "Log in"
    assert translations.ngettext("%(num)s dzień", "%(num)s dni", 1) == "%(num)s day"
    assert translations.ngettext("%(num)s dzień", "%(num)s dni", 5) == "%(num)s days"


@pytest.fixture
def english_context() -> Iterator[None]:
    token = i18n.current_language.set("en")
    yield
    i18n.current_language.reset(token)


def test_gettext_follows_the_current_language(english_context: None) -> None:
    assert i18n.gettext("Hasło musi mieć co najmniej %(min)s znaków.", min=8) == "The password must have at least 8 characters."
    assert i18n.ngettext(
        "Zbyt wiele prób. Spróbuj ponownie za %(num)s minutę.", "Zbyt wiele prób. Spróbuj ponownie za %(num)s minut.", 1
    ) == "Too many attempts. Try again in 1 minute."


def test_polish_is_the_default_language() -> None:
    assert i18n.current_language.get() == "pl"
    assert i18n.gettext("Zaloguj się") == "Zaloguj się"


# --------------------------------------------------------------------------- the app


def _switch_to_english(browser, next_path: str = "/login"):  # type: ignore[no-untyped-def]
    response = browser.post("/language", {"language": "en", "next": next_path})
    assert response.status_code in (302, 303), response.status_code
    return response


def test_default_language_is_polish(browser) -> None:  # type: ignore[no-untyped-def]
    login = browser.get("/login")
    assert login.status_code == 200
    assert '<html lang="pl">' in login.text
    text = page_text(login.text)
    assert "Zaloguj się" in text and "Nie pamiętasz hasła?" in text
    assert "Log in" not in text
    register = page_text(browser.get("/register").text)
    assert "Załóż konto" in register or "Rejestracja" in register


def test_language_switch_shows_login_and_register_in_english(browser) -> None:  # type: ignore[no-untyped-def]
    browser.get("/login")
    response = _switch_to_english(browser)
    assert response.headers["location"].endswith("/login")

    login = browser.get("/login")
    assert '<html lang="en">' in login.text
    text = page_text(login.text)
    assert "Log in" in text and "Forgot your password?" in text and "Remember me on this device" in text
    assert "Zaloguj się" not in text and "Hasło" not in text

    register = page_text(browser.get("/register").text)
    assert "First name" in register and "Last name" in register and "Repeat password" in register
    assert "Imię" not in register and "Nazwisko" not in register

    # ...and back to Polish.
    browser.post("/language", {"language": "pl", "next": "/login"})
    assert "Zaloguj się" in page_text(browser.get("/login").text)


def test_language_switch_needs_a_csrf_token(browser) -> None:  # type: ignore[no-untyped-def]
    browser.get("/login")
    response = browser.post("/language", {"language": "en", "next": "/login"}, csrf=False)
    assert response.status_code == 403
    assert "Zaloguj się" in page_text(browser.get("/login").text)


def test_unknown_language_is_ignored(browser) -> None:  # type: ignore[no-untyped-def]
    browser.get("/login")
    browser.post("/language", {"language": "xx", "next": "/login"})
    assert '<html lang="pl">' in browser.get("/login").text


def test_accept_language_en_picks_english(browser) -> None:  # type: ignore[no-untyped-def]
    login = browser.get("/login", headers={"accept-language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in login.text
    assert "Forgot your password?" in page_text(login.text)
    other = browser.get("/login", headers={"accept-language": "de-DE,de;q=0.9"})
    assert '<html lang="pl">' in other.text


def test_chosen_language_wins_over_accept_language(browser) -> None:  # type: ignore[no-untyped-def]
    browser.get("/login")
    browser.post("/language", {"language": "pl", "next": "/login"})
    login = browser.get("/login", headers={"accept-language": "en"})
    assert '<html lang="pl">' in login.text


def test_field_errors_appear_in_english(browser) -> None:  # type: ignore[no-untyped-def]
    browser.get("/register")
    _switch_to_english(browser, "/register")
    form = registration_form(first_name="", pesel="12345", email="not-an-e-mail", password="short")
    form.pop("accept_terms")
    page = browser.submit("/register", form)
    assert page.status_code in (200, 400, 422)
    assert field_errors(page.text, "first_name") == ["Enter your first name."]
    assert field_errors(page.text, "pesel") == ["A PESEL number has 11 digits."]
    assert field_errors(page.text, "email") == ["This does not look like an e-mail address (e.g. jan.kowalski@example.pl)."]
    assert any(error.startswith("The password must have at least ") for error in field_errors(page.text, "password"))
    assert field_errors(page.text, "accept_terms") == ["To create an account, accept the EKP Terms of Service."]


def test_field_errors_are_polish_by_default(browser) -> None:  # type: ignore[no-untyped-def]
    form = registration_form(first_name="")
    page = browser.submit("/register", form)
    assert field_errors(page.text, "first_name") == ["Podaj imię."]


def test_login_error_in_english(browser) -> None:  # type: ignore[no-untyped-def]
    browser.get("/login")
    _switch_to_english(browser)
    page = browser.submit("/login", {"email": "nobody@example.pl", "password": "Wrong12345"})
    assert "Incorrect e-mail or password." in page_text(page.text)


def test_registration_e_mail_is_sent_in_the_chosen_language(browser, mails) -> None:  # type: ignore[no-untyped-def]
    browser.get("/register")
    _switch_to_english(browser, "/register")
    response = browser.register(email="ann@example.com")
    assert response.status_code in (200, 303)
    mail = mails.last("ann@example.com")
    assert "Activate your Electronic Passenger Account" in mail.subject + mail.text
    assert "Thank you for registering" in mail.text
    assert "Dziękujemy" not in mail.text


def test_logged_in_passenger_keeps_the_chosen_language(browser, users, db) -> None:  # type: ignore[no-untyped-def]
    user = users.create("ola@example.pl")
    browser.login(user.email)
    browser.get("/")
    _switch_to_english(browser, "/")
    assert db.user("ola@example.pl").language == "en"
