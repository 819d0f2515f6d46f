"""Delivers the sandbox's signed notifications over real HTTP, retrying with exponential back-off.

A delivery counts as acknowledged only when the receiver answers HTTP 200 with the body `TRUE` (a form
notification) or `{"result":true}` (a JSON card notification), Tpay's rule.  Pending deliveries live in the sandbox store, so a restart resumes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

import httpx

from .store import Delivery, SandboxStore

log = logging.getLogger(__name__)


def acknowledged(body: str, response: httpx.Response) -> bool:
    """Whether the merchant's answer acknowledges the notification `body`."""
    if response.status_code != 200:
        return False
    if body.startswith("{"):
        try:
            answer: object = json.loads(response.text)
        except ValueError:
            return False
        return answer == {"result": True}
    return response.text.strip() == "TRUE"


class NotificationDeliverer:
    def __init__(
        self,
        store: SandboxStore,
        *,
        backoff_base: float = 5.0,
        backoff_max: float = 3600.0,
        max_attempts: int = 25,
        timeout: float = 10.0,
        poll_interval: float = 30.0,
    ) -> None:
        self.store = store
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.running:
            return
        self._wake = asyncio.Event()
        self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sandbox-notifications")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def wake(self) -> None:
        self._wake.set()

    def delay_after(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed attempt: base, 2*base, 4*base, ... capped."""
        return min(self.backoff_base * 2.0 ** (attempts - 1), self.backoff_max)

    async def _run(self) -> None:
        while True:
            try:
                await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep the loop alive; the store keeps the work
                log.exception("sandbox notification loop failed; retrying")
            next_at = self.store.next_delivery_time()
            wait = self.poll_interval if next_at is None else max(0.0, min(next_at - time.time(), self.poll_interval))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    async def deliver_due(self) -> int:
        """Attempt every delivery that is due now; returns how many were acknowledged."""
        acknowledged = 0
        for delivery in self.store.due_deliveries(time.time()):
            if await self._attempt(delivery):
                acknowledged += 1
        return acknowledged

    async def _attempt(self, delivery: Delivery) -> bool:
        client = self._client or httpx.AsyncClient(timeout=self.timeout)
        error = ""
        try:
            response = await client.post(
                delivery.url,
                content=delivery.body.encode(),
                headers={
                    "Content-Type": "application/json" if delivery.body.startswith("{")
                    else "application/x-www-form-urlencoded",
                    "X-JWS-Signature": delivery.signature,
                },
            )
            if acknowledged(delivery.body, response):
                self.store.mark_delivered(delivery.id, time.time())
                log.info("sandbox notification %s acknowledged (attempt %s)", delivery.id, delivery.attempts + 1)
                return True
            error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        finally:
            if client is not self._client:
                await client.aclose()
        attempts = delivery.attempts + 1
        next_at = None if attempts >= self.max_attempts else time.time() + self.delay_after(attempts)
        self.store.mark_failed_attempt(delivery.id, next_at, error)
        log.info(
            "sandbox notification %s not acknowledged (attempt %s, %s)%s",
            delivery.id,
            attempts,
            error,
            "; giving up" if next_at is None else "",
        )
        return False
