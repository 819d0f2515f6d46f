"""What the other areas may use of `web.tickets`: its only door (import-linter: areas are
independent except through their `interface`). Keep it small; grow it on purpose."""

from __future__ import annotations

from web.tickets.controllers import (
    product_name as product_name,
    state_text as state_text,
)
from web.tickets.service import (
    detach_tickets_from_months as detach_tickets_from_months,
    erase_tickets_of as erase_tickets_of,
    TicketView as TicketView,
    is_mobile_card as is_mobile_card,
    my_tickets as my_tickets,
    revoke_ticket as revoke_ticket,
)
from web.tickets.models import (
    Inspection as Inspection,
    Ticket as Ticket,
)

__all__ = [
    "Inspection",
    "Ticket",
    "detach_tickets_from_months",
    "erase_tickets_of",
    "TicketView",
    "is_mobile_card",
    "my_tickets",
    "product_name",
    "revoke_ticket",
    "state_text",
]
