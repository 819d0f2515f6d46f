"""What the other areas may use of `web.cards`: its only door (import-linter: areas are
independent except through their `interface`). Keep it small; grow it on purpose."""

from __future__ import annotations

from web.cards.controllers import (
    card_fields as card_fields,
)
from web.cards.service import (
    erase_cards_of as erase_cards_of,
    ImportReport as ImportReport,
    apply_registry_rows as apply_registry_rows,
    cards_of as cards_of,
    import_registry as import_registry,
    read_registry_csv as read_registry_csv,
    resident_status as resident_status,
    tell_pesel_holders_of_link as tell_pesel_holders_of_link,
)
from web.cards.models import (
    Card as Card,
)

__all__ = [
    "Card",
    "erase_cards_of",
    "ImportReport",
    "apply_registry_rows",
    "card_fields",
    "cards_of",
    "import_registry",
    "read_registry_csv",
    "resident_status",
    "tell_pesel_holders_of_link",
]
