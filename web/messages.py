"""What each problem code from `domain` says to a person, in Polish (translated by gettext)."""

from __future__ import annotations

from web.i18n import N_, gettext

MESSAGES: dict[str, str] = {
    "first_name.required": N_("Podaj imię."),
    "first_name.invalid": N_("Imię może zawierać tylko litery, spacje, apostrof i łącznik (do 80 znaków)."),
    "last_name.required": N_("Podaj nazwisko."),
    "last_name.invalid": N_("Nazwisko może zawierać tylko litery, spacje, apostrof i łącznik (do 80 znaków)."),
    "pesel.required": N_("Podaj numer PESEL albo zaznacz, że go nie masz."),
    "pesel.format": N_("PESEL to 11 cyfr."),
    "pesel.checksum": N_("Ten numer PESEL ma błędną cyfrę kontrolną — sprawdź, czy nie ma literówki."),
    "pesel.date": N_("Ten numer PESEL zawiera nieistniejącą datę urodzenia."),
    "pesel.future": N_("Ten numer PESEL zawiera datę urodzenia z przyszłości."),
    "birth_date.required": N_("Podaj datę urodzenia."),
    "birth_date.invalid": N_("Podaj datę urodzenia w formacie RRRR-MM-DD."),
    "birth_date.out_of_range": N_("Data urodzenia musi być z przeszłości i nie wcześniejsza niż 1900 r."),
    "email.required": N_("Podaj adres e-mail."),
    "email.invalid": N_("To nie wygląda na adres e-mail (np. jan.kowalski@example.pl)."),
    "email.mismatch": N_("Adresy e-mail nie są takie same."),
    "password.required": N_("Podaj hasło."),
    "password.too_short": N_("Hasło musi mieć co najmniej %(min)s znaków."),
    "password.too_long": N_("Hasło może mieć najwyżej 256 znaków."),
    "password.no_upper": N_("Hasło musi zawierać wielką literę."),
    "password.no_digit": N_("Hasło musi zawierać cyfrę."),
    "password.mismatch": N_("Hasła nie są takie same."),
    "password.wrong": N_("Obecne hasło jest nieprawidłowe."),
    "terms.required": N_("Aby założyć konto, zaakceptuj Regulamin EKP."),
    "gdpr.required": N_("Potwierdź, że zapoznałeś(-aś) się z informacją o przetwarzaniu danych osobowych (RODO)."),
    "login.failed": N_("Nieprawidłowy e-mail lub hasło."),
    "login.inactive": N_("Konto nie zostało jeszcze aktywowane. Kliknij link z e-maila albo wyślij go ponownie."),
    "confirm.required": N_("Zaznacz, że rozumiesz skutki usunięcia konta."),
    "carrier_type.required": N_("Wybierz typ karty z listy."),
    "client_code.required": N_("Wpisz kod klienta wydrukowany na karcie."),
    "client_code.format": N_("Kod klienta to od 4 do 20 liter lub cyfr — przepisz go dokładnie z karty."),
    "card.mismatch": N_("Podane dane nie są zgodne z danymi w rejestrze kart. Sprawdź typ karty i kod klienta."),
    "card.linked_elsewhere": N_("Tej karty nie można dodać, bo jest już przypisana do innego konta. Skontaktuj się z Biurem Obsługi Klienta."),
    "card.already_yours": N_("Ta karta jest już przypisana do Twojego konta."),
    "card.blocked": N_("Ta karta jest zablokowana i nie można jej dodać. Skontaktuj się z Biurem Obsługi Klienta."),
    "card.no_pesel": N_("Twoje konto nie ma numeru PESEL, więc karty nie można przypisać online. Przyjdź z dokumentem tożsamości i kartą do Biura Obsługi Klienta — pracownik przypisze ją do konta."),
    "card.not_found": N_("Nie ma takiej karty na Twoim koncie."),
    "card.in_use_by_subscription": N_("Tej karty nie można odłączyć, bo korzysta z niej aktywna subskrypcja biletu 5+1. Najpierw anuluj subskrypcję."),
    "card.confirm_expired": N_("Potwierdzenie wygasło. Wyszukaj kartę jeszcze raz."),
    "5p1.no_pesel": N_("Bilet 5+1 wymaga karty przypisanej przez PESEL. Twoje konto nie ma numeru PESEL — kartę przypisze pracownik Biura Obsługi Klienta."),
    "5p1.no_cards": N_("Nie masz jeszcze karty na koncie. Dodaj kartę ze statusem Karty Krakowskiej w zakładce Moje karty."),
    "5p1.no_resident_status": N_("Bilet 5+1 mogą kupić wyłącznie mieszkańcy ze statusem Karty Krakowskiej. Żadna z Twoich kart nie ma tego statusu — złóż wniosek o Kartę Krakowską w Punkcie Obsługi Klienta."),
    "5p1.resident_status_expired": N_("Status Karty Krakowskiej na Twojej karcie wygasł. Przedłuż go w Punkcie Obsługi Klienta, aby kupić bilet 5+1."),
    "5p1.resident_status_not_yet_valid": N_("Status Karty Krakowskiej na Twojej karcie jeszcze nie obowiązuje (lub nie obejmuje wybranego dnia rozpoczęcia)."),
    "5p1.cards_blocked": N_("Twoja karta ze statusem Karty Krakowskiej jest zablokowana. Skontaktuj się z Biurem Obsługi Klienta."),
    "5p1.card_required": N_("Wybierz kartę, na której ma być bilet."),
    "5p1.variant_required": N_("Wybierz bilet normalny albo ulgowy."),
    "5p1.first_day_required": N_("Podaj dzień rozpoczęcia ważności (RRRR-MM-DD)."),
    "5p1.start_in_the_past": N_("Dzień rozpoczęcia nie może być w przeszłości."),
    "5p1.start_too_far_ahead": N_("Bilet można kupić z wyprzedzeniem najwyżej 60 dni."),
    "5p1.consent_required": N_("Zaznacz zgodę na comiesięczne obciążanie karty płatniczej."),
    "5p1.already_active": N_("Masz już aktywną subskrypcję 5+1. Aby kupić nową, najpierw ją anuluj."),
    "5p1.cannot_pay_now": N_("Tego miesiąca nie można już opłacić."),
    "5p1.not_found": N_("Nie znaleziono tej płatności."),
    "5p1.nothing_to_cancel": N_("Nie masz aktywnej subskrypcji."),
    "5p1.nothing_to_change": N_("Nie masz aktywnej subskrypcji."),
    "5p1.gateway_unavailable": N_("Operator płatności jest chwilowo niedostępny. Nic nie pobrano — spróbuj ponownie za chwilę."),
}


def message(code: str, **variables: object) -> str:
    """The message for `code` in the current language; `variables` fill its %(name)s places."""
    text = MESSAGES.get(code)
    if text is None:
        return code
    translated = gettext(text)
    return translated % variables if "%(" in translated else translated


def field_errors(errors: dict[str, list[str]], **variables: object) -> dict[str, list[str]]:
    return {name: [message(code, **variables) for code in codes] for name, codes in errors.items()}
