"""What the other areas may use of `web.accounts`: its only door (import-linter: areas are
independent except through their `interface`). Keep it small; grow it on purpose."""

from __future__ import annotations

from web.accounts.current import (
    signed_in_account as signed_in_account,
)
from web.accounts.people import (
    create_active_user as create_active_user,
    disable_user as disable_user,
)
from web.accounts.service import (
    active_pesel_holders as active_pesel_holders,
    audit as audit,
    find_user as find_user,
)
from web.accounts.twofactor import (
    set_secret as set_secret,
)
from web.accounts.models import (
    User as User,
)

__all__ = [
    "User",
    "active_pesel_holders",
    "audit",
    "create_active_user",
    "disable_user",
    "find_user",
    "set_secret",
    "signed_in_account",
]
