"""Named rate limiters per action (login, password reset, registration, card linking).

Fixed windows kept in the shared store, so every app process sees the same counts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from litestar.stores.base import Store

from web import clock


@dataclass(frozen=True)
class Limit:
    name: str
    attempts: int
    window_seconds: int


LIMITS = {
    "login.ip": Limit("login.ip", 20, 15 * 60),
    "login.account": Limit("login.account", 5, 15 * 60),
    "login.code": Limit("login.code", 5, 15 * 60),  # second-factor codes per account (R-AUTH-3)
    "register.ip": Limit("register.ip", 10, 60 * 60),
    "reset.ip": Limit("reset.ip", 10, 60 * 60),
    "reset.account": Limit("reset.account", 3, 60 * 60),
    "resend.account": Limit("resend.account", 3, 60 * 60),
    "link_card.ip": Limit("link_card.ip", 20, 60 * 60),
    "link_card.account": Limit("link_card.account", 5, 60 * 60),
}


class RateLimiter:
    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def _key(limit: Limit, subject: str) -> str:
        return f"rl:{limit.name}:{subject}"

    async def _read(self, key: str) -> tuple[int, float]:
        raw = await self.store.get(key)
        if raw is None:
            return 0, 0.0
        data = json.loads(raw)
        return int(data["n"]), float(data["until"])

    async def retry_after(self, name: str, subject: str) -> int:
        """Seconds until `subject` may try `name` again; 0 when allowed now."""
        limit = LIMITS[name]
        count, until = await self._read(self._key(limit, subject))
        now = clock.now().timestamp()
        if count >= limit.attempts and until > now:
            return max(1, math.ceil(until - now))
        return 0

    async def hit(self, name: str, subject: str) -> None:
        """Count one attempt of `name` by `subject`."""
        limit = LIMITS[name]
        key = self._key(limit, subject)
        count, until = await self._read(key)
        now = clock.now().timestamp()
        if until <= now:
            count, until = 0, now + limit.window_seconds
        await self.store.set(key, json.dumps({"n": count + 1, "until": until}), expires_in=max(1, math.ceil(until - now)))

    async def clear(self, name: str, subject: str) -> None:
        await self.store.delete(self._key(LIMITS[name], subject))
