"""Named rate limits (login, password reset, registration, card linking) counted in the shared store (R-AUTH-1).

Each attempt is counted first, in one atomic step of the store (an upsert in the database, a script in
Redis), and only then checked: concurrent attempts are all counted and none slips past the limit. The
counters and their limits are in `domain.throttle`. Subjects (addresses, e-mail addresses) are kept only
as digests.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from litestar.stores.base import Store

from domain.throttle import LIMITS, Limit, wait_seconds

__all__ = ["LIMITS", "Limit", "RateLimiter", "DEVICE_COOKIE", "new_device_token", "device_token_of"]

DEVICE_COOKIE = "ekp_device"
DEVICE_DAYS = 180


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def new_device_token() -> str:
    return secrets.token_urlsafe(24)


def device_token_of(raw: str | None) -> str | None:
    """The known-device cookie's token if it looks like one we issue (bounded, URL-safe); else None."""
    if not raw or not 20 <= len(raw) <= 64 or not all(c.isalnum() or c in "-_" for c in raw):
        return None
    return raw


class RateLimiter:
    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def _key(limit: Limit, subject: str) -> str:
        return f"rate:{limit.name}:{_digest(subject)}"

    async def _add(self, name: str, subject: str, delta: int) -> tuple[int, float]:
        limit = LIMITS[name]
        return await self.store.incr(self._key(limit, subject), delta, limit.window_seconds)  # type: ignore[attr-defined]

    async def count(self, *counters: tuple[str, str]) -> int:
        """Count one attempt in each (limit name, subject) counter; seconds to wait if any is now over
        its limit (the attempt must then not be checked), else 0."""
        counted = []
        for name, subject in counters:
            count, seconds_left = await self._add(name, subject, 1)
            counted.append((name, count, seconds_left))
        return wait_seconds(counted)

    async def uncount(self, counters: Iterable[tuple[str, str]]) -> None:
        """Take back one counted attempt (it succeeded, or was not the kind of attempt the limit is for)."""
        for name, subject in counters:
            await self._add(name, subject, -1)

    async def retry_after(self, name: str, subject: str) -> int:
        """Seconds until `subject` may try `name` again; 0 when allowed now (counts nothing)."""
        count, seconds_left = await self._add(name, subject, 0)
        return wait_seconds([(name, count + 1, seconds_left)])

    async def hit(self, name: str, subject: str) -> None:
        """Count one attempt of `name` by `subject` (atomically)."""
        await self._add(name, subject, 1)

    async def clear(self, name: str, subject: str) -> None:
        await self.store.delete(self._key(LIMITS[name], subject))

    # Known devices: browsers that signed in to an account before --------------------------------------
    @staticmethod
    def _device_key(email: str, token: str) -> str:
        return f"known-device:{_digest(email + chr(10) + token)}"

    async def remember_device(self, email: str, token: str) -> None:
        await self.store.set(self._device_key(email, token), b"1", expires_in=DEVICE_DAYS * 24 * 3600)

    async def is_known_device(self, email: str, token: str | None) -> bool:
        return bool(token) and await self.store.get(self._device_key(email, token)) is not None  # type: ignore[arg-type]
