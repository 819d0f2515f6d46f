"""What the other areas may use of `web.simulators`: its only door (import-linter: areas are
independent except through their `interface`). Keep it small; grow it on purpose."""

from __future__ import annotations

from web.simulators.demo import (
    is_demo_account as is_demo_account,
)

__all__ = [
    "is_demo_account",
]
