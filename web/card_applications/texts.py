"""What card-application codes say to a person (Polish message ids, English in the catalogue)."""

from __future__ import annotations

from web.platform.i18n import N_, gettext

TEXTS: dict[str, str] = {
    "card_applications.fare.required": N_("Wybierz rodzaj karty."),
    "card_applications.service_point.required": N_("Wybierz punkt, w którym odbierzesz kartę."),
    "card_applications.has_personal_card": N_("Masz już kartę imienną KKM. Pasażer może mieć tylko jedną kartę imienną; nową wydamy po zgłoszeniu utraty starej albo rezygnacji z niej."),
    "card_applications.personal_pending": N_("Masz już złożony wniosek o kartę imienną. Pasażer może mieć tylko jedną kartę imienną — poczekaj na jego rozpatrzenie albo zrezygnuj z niego."),
    "card_applications.photo.required": N_("Dołącz zdjęcie w formacie JPEG (co najmniej 320×240 pikseli)."),
    "card_applications.photo.too_big": N_("Zdjęcie jest za duże: plik może mieć najwyżej 5 MB."),
    "card_applications.photo.not_jpeg": N_("To nie jest zdjęcie JPEG. Wybierz plik .jpg zrobiony aparatem lub telefonem (inne formaty, np. PNG, nie są przyjmowane)."),
    "card_applications.photo.too_small": N_("Zdjęcie jest za małe: potrzeba co najmniej 320×240 pikseli."),
    "card_applications.photo.bomb": N_("Zdjęcie ma zbyt wiele pikseli (najwyżej 40 milionów). Zmniejsz je i wyślij ponownie."),
    "card_applications.document.required": N_("Wybierz, czy dołączasz skan dokumentu uprawniającego do ulgi, czy pokażesz go w punkcie obsługi."),
    "card_applications.scan.required": N_("Dołącz skan dokumentu uprawniającego do ulgi (JPEG lub PDF)."),
    "card_applications.scan.too_big": N_("Skan jest za duży: plik może mieć najwyżej 5 MB."),
    "card_applications.scan.format": N_("Skan musi być plikiem JPEG lub PDF."),
    "card_applications.until.format": N_("Podaj datę w formacie RRRR-MM-DD."),
    "card_applications.until.range": N_("Data ważności dokumentu musi być dzisiejsza lub późniejsza (najwyżej 20 lat naprzód)."),
    "card_applications.too_big": N_("Wysłane pliki są za duże: każdy plik może mieć najwyżej 5 MB."),
    "card_applications.not_found": N_("Nie ma takiego wniosku."),
    "card_applications.nothing_to_pay": N_("Ten wniosek nie czeka na wpłatę kaucji."),
    "card_applications.cannot_give_up": N_("Z tego wniosku nie można już zrezygnować."),
    "card_applications.gateway_unavailable": N_("Operator płatności jest chwilowo niedostępny. Nic nie pobrano — zapłać kaucję ponownie za chwilę."),
    "card_applications.confirm_required": N_("Zaznacz, że rezygnujesz z karty."),
    "card_applications.desk.wrong_state": N_("Tego kroku nie można wykonać w obecnym stanie wniosku (ktoś mógł go już wykonać)."),
    "card_applications.desk.no_photo": N_("Wniosek o kartę imienną nie ma zdjęcia: zwróć go do uzupełnienia."),
    "card_applications.desk.reason_required": N_("Podaj powód zwrotu wniosku."),
    "card_applications.desk.reason_too_long": N_("Powód może mieć najwyżej 500 znaków."),
    "card_applications.desk.number_format": N_("Numer karty to od 4 do 20 cyfr."),
    "card_applications.desk.number_taken": N_("Karta o tym numerze już istnieje."),
    "card_applications.desk.identity_required": N_("Potwierdź, że sprawdzono dokument tożsamości ze zdjęciem."),
    "card_applications.desk.entitlement_required": N_("Potwierdź, że okazano oryginał dokumentu uprawniającego do ulgi."),
    "card_applications.change.not_possible": N_("Dane można zmienić tylko dla odebranej karty imiennej, która jest na Twoim koncie i nie jest zablokowana."),
    "card_applications.change.pending": N_("Wniosek o zmianę danych tej karty już czeka na rozpatrzenie."),
    "card_applications.change.nothing": N_("Nic się nie zmienia: wybierz inny rodzaj karty, nowe zdjęcie, imię i nazwisko z konta albo nową datę ważności dokumentu."),
    "card_applications.give_up.not_possible": N_("Z tej karty nie można zrezygnować: nie ma jej już na koncie pasażera (ktoś mógł to już zrobić)."),
    "card_applications.give_up.target_not_yours": N_("Saldo można przenieść tylko na inną kartę KKM z tego samego konta."),
    "card_applications.give_up.balance_left": N_("Na karcie zostały pieniądze: wybierz kartę, na którą je przeniesiemy, albo zrezygnuj w punkcie obsługi, gdzie wypłacimy je gotówką."),
    "card_applications.give_up.credit_outstanding": N_("Na karcie jest niespłacony przejazd na kredyt: doładuj ją najpierw albo przenieś dług na inną kartę."),
    "card_applications.give_up.same_card": N_("Saldo trzeba przenieść na inną kartę niż ta, z której rezygnujesz."),
    "card_applications.give_up.target_unusable": N_("Karta, na którą chcesz przenieść saldo, jest zablokowana albo nieważna."),
    "card_applications.give_up.target_in_credit": N_("Obie karty mają niespłacony przejazd na kredyt: doładuj jedną z nich najpierw."),
    "card_applications.complete.not_returned": N_("Ten wniosek nie czeka na uzupełnienie."),
    "card_applications.complete.nothing": N_("Dołącz nowe zdjęcie albo skan dokumentu uprawniającego do ulgi."),
    "card_applications.desk.too_late": N_("Termin odbioru minął: karta jest unieważniona, a kaucja przepada."),
}

STATUS: dict[str, str] = {
    "awaiting_deposit": N_("czeka na wpłatę kaucji"),
    "submitted": N_("złożony"),
    "accepted": N_("przyjęty — karta w produkcji"),
    "returned": N_("zwrócony do uzupełnienia"),
    "ready": N_("karta gotowa do odbioru"),
    "collected": N_("karta odebrana"),
    "invalidated": N_("karta unieważniona (nieodebrana w terminie)"),
    "withdrawn": N_("rezygnacja"),
    "cancelled": N_("anulowany (kaucja zwrócona przez operatora płatności)"),
    "given_back": N_("rezygnacja z karty — karta zablokowana"),
}

FARES: dict[str, str] = {
    "normal": N_("imienna — normalna"),
    "off_30": N_("imienna — ulgowa 30%"),
    "off_50": N_("imienna — ulgowa 50%"),
    "off_75": N_("imienna — ulgowa 75%"),
    "free": N_("imienna — bezpłatna (bez kaucji)"),
    "bearer": N_("na okaziciela"),
}


def text(code: str) -> str:
    message = TEXTS.get(code)
    return gettext(message) if message else code


def status_text(status: str) -> str:
    return gettext(STATUS.get(status, status))


def fare_text(fare: str) -> str:
    return gettext(FARES.get(fare, fare))
