"""Sandbox test cards and the card form's validation (Polish messages, one per field).

Card numbers only ever live in the request that submits the sandbox's card form; they are never
stored, logged or echoed back.  What is kept is the brand, the last four digits and the expiry.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass


class CardBehaviour(enum.StrEnum):
    SUCCEEDS = "succeeds"
    DECLINED = "declined"
    REQUIRES_3DS = "requires_3ds"
    RENEWALS_FAIL = "renewals_fail"  # the first payment succeeds, every later token charge is declined


@dataclass(frozen=True, slots=True)
class TestCard:
    number: str
    brand: str
    behaviour: CardBehaviour
    label: str  # Polish, shown on the sandbox page

    __test__ = False  # not a pytest test class

    @property
    def formatted(self) -> str:
        return " ".join(self.number[i : i + 4] for i in range(0, len(self.number), 4))


TEST_CARDS: tuple[TestCard, ...] = (
    TestCard("4111111111111111", "Visa", CardBehaviour.SUCCEEDS, "płatność udana"),
    TestCard("5555555555554444", "Mastercard", CardBehaviour.SUCCEEDS, "płatność udana"),
    TestCard("4000000000000002", "Visa", CardBehaviour.DECLINED, "odmowa banku"),
    TestCard("4000000000003220", "Visa", CardBehaviour.REQUIRES_3DS, "wymaga potwierdzenia 3-D Secure"),
    TestCard(
        "4000000000000341",
        "Visa",
        CardBehaviour.RENEWALS_FAIL,
        "pierwsza płatność udana, każde kolejne obciążenie zapisanej karty odrzucone",
    ),
)
_BY_NUMBER = {card.number: card for card in TEST_CARDS}


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


@dataclass(frozen=True, slots=True)
class ValidCard:
    card: TestCard
    last4: str
    expiry_month: int
    expiry_year: int

    def __repr__(self) -> str:
        return f"ValidCard(brand={self.card.brand!r}, behaviour={self.card.behaviour.value!r})"


_EXPIRY = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*$")


def validate_card_form(number: str, expiry: str, cvc: str, today: dt.date) -> tuple[ValidCard | None, dict[str, str]]:
    """Check the card form.  Returns the card, or field name -> Polish error message."""
    errors: dict[str, str] = {}
    digits = re.sub(r"[\s-]", "", number or "")
    card: TestCard | None = None
    if not digits:
        errors["number"] = "Podaj numer karty."
    elif not digits.isdigit() or not 12 <= len(digits) <= 19:
        errors["number"] = "Numer karty to od 12 do 19 cyfr."
    elif not luhn_ok(digits):
        errors["number"] = "Nieprawidłowy numer karty – sprawdź, czy nie ma literówki."
    else:
        card = _BY_NUMBER.get(digits)
        if card is None:
            errors["number"] = "To nie jest karta testowa. Użyj jednej z kart testowych podanych poniżej."

    month = year = 0
    match = _EXPIRY.match(expiry or "")
    if not (expiry or "").strip():
        errors["expiry"] = "Podaj datę ważności karty (MM/RR)."
    elif match is None:
        errors["expiry"] = "Datę ważności wpisz w postaci MM/RR, np. 12/30."
    else:
        month = int(match.group(1))
        year = int(match.group(2))
        year = year + 2000 if year < 100 else year
        if not 1 <= month <= 12:
            errors["expiry"] = "Miesiąc ważności musi być liczbą od 01 do 12."
        elif (year, month) < (today.year, today.month):
            errors["expiry"] = "Karta straciła ważność – podaj kartę z przyszłą datą ważności."
        elif year > today.year + 20:
            errors["expiry"] = "Data ważności jest zbyt odległa – sprawdź rok."

    code = (cvc or "").strip()
    if not code:
        errors["cvc"] = "Podaj kod CVC (3 cyfry z tyłu karty)."
    elif not code.isdigit() or len(code) not in (3, 4):
        errors["cvc"] = "Kod CVC to 3 lub 4 cyfry."

    if errors or card is None:
        return None, errors
    return ValidCard(card=card, last4=digits[-4:], expiry_month=month, expiry_year=year), {}
