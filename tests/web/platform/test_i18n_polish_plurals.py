"""Polish has three plural forms; the `pl` catalog supplies the third (minuty, dni...)."""

import pytest

from web.platform import i18n

WAIT = ("Zbyt wiele prób. Spróbuj ponownie za %(num)s minutę.", "Zbyt wiele prób. Spróbuj ponownie za %(num)s minut.")


@pytest.mark.parametrize(
    ("n", "word"),
    [(1, "minutę"), (2, "minuty"), (4, "minuty"), (5, "minut"), (12, "minut"), (14, "minut"), (22, "minuty"), (25, "minut"), (60, "minut")],
)
def test_polish_plural_forms_of_the_retry_message(n, word):
    token = i18n.current_language.set("pl")
    try:
        assert i18n.ngettext(*WAIT, n) == f"Zbyt wiele prób. Spróbuj ponownie za {n} {word}."
    finally:
        i18n.current_language.reset(token)


def test_polish_catalog_leaves_singular_messages_alone():
    token = i18n.current_language.set("pl")
    try:
        assert i18n.gettext("Moje karty") == "Moje karty"
    finally:
        i18n.current_language.reset(token)


@pytest.mark.parametrize(("n", "text"), [(1, "1 godzinę"), (3, "3 godziny"), (5, "5 godzin"), (24, "24 godziny"), (72, "72 godziny")])
def test_polish_plural_forms_of_link_validity(n, text):
    token = i18n.current_language.set("pl")
    try:
        assert i18n.ngettext("%(num)s godzinę", "%(num)s godzin", n) == text
    finally:
        i18n.current_language.reset(token)
