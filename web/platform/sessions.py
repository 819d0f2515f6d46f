"""Server-side sessions: a random id in an HttpOnly cookie, the data in the shared store.

Handlers read and write `request.session` like a dict. Set `SESSION_ROTATE` in it to get a fresh id
(on login, against session fixation) and `SESSION_REMEMBER` to keep the cookie across browser restarts.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.stores.base import Store
from litestar.types import Message, Scope, Send

from web.platform import clock

COOKIE = "ekp_session"
SESSION_ROTATE = "_rotate"
SESSION_REMEMBER = "_remember"
_TOUCHED = "_touched"
_TOUCH_EVERY = 300
NO_SESSION = ("/static/", "/api/devices/", "/healthz", "/readyz", "/metrics")


class Sessions:
    """The session's steps: which requests have one, reading it, saving it when the response starts."""

    def __init__(self, store: Store, *, hours: int, remember_days: int, secure: bool) -> None:
        self.store = store
        self.ttl = hours * 3600
        self.remember_ttl = remember_days * 86400
        self.secure = secure

    def applies_to(self, scope: Scope) -> bool:
        # Static files, the device API (validators, meters) and the operators' probes and metrics have no use
        # for a browser session.
        return scope["type"] == "http" and not scope.get("path", "").startswith(NO_SESSION)

    async def open(self, scope: Scope, session_id: str | None) -> tuple[str | None, dict[str, Any]]:
        """Read the session `session_id` (the cookie's, if any) into `scope["session"]`: (its id, or None
        when there is no such session; what the store held)."""
        original: dict[str, Any] = {}
        if session_id:
            raw = await self.store.get(f"session:{session_id}")
            if raw is not None:  # our own json.dumps: ASCII (a str parses without json's encoding detection)
                original = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
            else:
                session_id = None
        scope["session"] = dict(original)
        return session_id, original

    def saving(self, scope: Scope, send: Send, session_id: str | None, original: dict[str, Any]) -> Send:
        """`send`, saving the session (and setting its cookie) when the response starts."""

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookie = await self._save(scope, session_id, original)
                if cookie is not None:
                    MutableScopeHeaders.from_message(message).add("set-cookie", cookie.to_header(header=""))
            await send(message)

        return send_wrapper

    async def _save(self, scope: Scope, session_id: str | None, original: dict[str, Any]) -> Cookie | None:
        data = scope.get("session")
        if not isinstance(data, dict):
            data = {}
        rotate = bool(data.pop(SESSION_ROTATE, False))
        now = int(clock.now().timestamp())
        if not data:
            if session_id:
                await self.store.delete(f"session:{session_id}")
                return Cookie(key=COOKIE, value="", max_age=0, httponly=True, secure=self.secure, samesite="lax")
            return None
        changed = data != original
        stale = now - int(data.get(_TOUCHED, 0)) > _TOUCH_EVERY
        if not (changed or stale or rotate or session_id is None):
            return None
        data[_TOUCHED] = now
        if rotate and session_id:
            await self.store.delete(f"session:{session_id}")
        new_id = secrets.token_urlsafe(32) if (rotate or session_id is None) else session_id
        remember = bool(data.get(SESSION_REMEMBER))
        ttl = self.remember_ttl if remember else self.ttl
        await self.store.set(f"session:{new_id}", json.dumps(data), expires_in=ttl)
        return Cookie(
            key=COOKIE,
            value=new_id,
            max_age=ttl if remember else None,
            httponly=True,
            secure=self.secure,
            samesite="lax",
            path="/",
        )
