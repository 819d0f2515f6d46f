"""What the other areas may use of `web.purse`: its only door (import-linter: areas are
independent except through their `interface`). Keep it small; grow it on purpose."""

from __future__ import annotations

from web.purse.service import (
    erase_purse_cards_of as erase_purse_cards_of,
    DEVICE_KINDS as DEVICE_KINDS,
    PURPOSE as PURPOSE,
    PurseView as PurseView,
    book_entry as book_entry,
    add_device as add_device,
    card_of as card_of,
    disable_device as disable_device,
    issue_card as issue_card,
    issue_card_to_account as issue_card_to_account,
    lock_card as lock_card,
    my_purse_cards as my_purse_cards,
    purse_view as purse_view,
    rename_device as rename_device,
    top_up_at_service_point as top_up_at_service_point,
)
from web.purse.models import (
    Device as Device,
    DeviceEvent as DeviceEvent,
    PurseCardRow as PurseCardRow,
    PurseLedgerEntry as PurseLedgerEntry,
)

__all__ = [
    "erase_purse_cards_of",
    "DEVICE_KINDS",
    "Device",
    "DeviceEvent",
    "PURPOSE",
    "PurseCardRow",
    "PurseLedgerEntry",
    "PurseView",
    "add_device",
    "book_entry",
    "card_of",
    "disable_device",
    "issue_card",
    "issue_card_to_account",
    "lock_card",
    "my_purse_cards",
    "purse_view",
    "rename_device",
    "top_up_at_service_point",
]
