"""For operators and their tools: `/healthz` (the process answers), `/readyz` (it can serve: database, Redis,
payment gateway configuration) and `/metrics` (Prometheus). No session, CSRF or rate limit applies to them
(see `web.platform.sessions`); none is in the OpenAPI document."""

from __future__ import annotations

import hmac

import anyio
from litestar import Request, Router, get
from litestar.response import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from sqlalchemy import text

from web.platform.observe import BusinessCollector
from web.platform.settings import Settings, is_loopback_address

READY_TIMEOUT = 3.0  # seconds for each readiness check


@get("/healthz", include_in_schema=False, sync_to_thread=False)
def health() -> dict[str, str]:
    """The process is up and answers; touches nothing else (a load balancer's liveness probe)."""
    return {"status": "ok"}


def _database_answers(engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


async def _check_database(request: Request) -> None:
    with anyio.fail_after(READY_TIMEOUT):
        await anyio.to_thread.run_sync(_database_answers, request.app.state.engine, abandon_on_cancel=True)


async def _check_redis(request: Request) -> None:
    client = getattr(request.app.state.store, "_redis", None)
    if client is None:
        raise RuntimeError("no Redis client")
    with anyio.fail_after(READY_TIMEOUT):
        await client.ping()


async def _check_gateway(request: Request) -> None:
    settings = request.app.state.settings
    payments = request.app.state.payments
    if payments.gateway is None:
        raise RuntimeError("no gateway")
    if settings.payments == "tpay":
        missing = [f"EKP_TPAY_{name.upper()}" for name in ("client_id", "client_secret", "security_code")
                   if not getattr(settings, f"tpay_{name}")]
        if missing:
            raise RuntimeError("missing " + ", ".join(missing))
    elif payments.sandbox is None:
        raise RuntimeError("the sandbox is not running")


@get("/readyz", include_in_schema=False)
async def ready(request: Request) -> Response:
    """200 when this node can serve: the database answers, Redis answers (when configured), the payment
    gateway is configured; else 503 naming what failed (`failed`), never why in detail (no URLs, no hosts)."""
    checks = {"database": _check_database, "gateway": _check_gateway}
    if request.app.state.settings.redis_url:
        checks["redis"] = _check_redis
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await check(request)
            results[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            results[name] = "timeout" if isinstance(exc, TimeoutError) else "failed"
    failed = sorted(name for name, outcome in results.items() if outcome != "ok")
    body = {"status": "unavailable" if failed else "ok", "checks": results, "failed": failed}
    return Response(body, status_code=503 if failed else 200, headers={"Cache-Control": "no-store"})


def _metrics_allowed(request: Request) -> bool:
    """With EKP_METRICS_TOKEN: `Authorization: Bearer <token>` from anywhere. Without: only a client on this
    machine connecting directly (loopback, no X-Forwarded-For: not through a reverse proxy)."""
    token = request.app.state.settings.metrics_token
    if token:
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())
    client = request.scope.get("client")
    return (client is not None and is_loopback_address(client[0])
            and "x-forwarded-for" not in request.headers and "forwarded" not in request.headers)


def _exposition(engine, settings: Settings) -> bytes:
    if settings.metrics_multiprocess_dir:  # `ekp run --workers N`: every worker's numbers
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    business = CollectorRegistry(auto_describe=False)
    business.register(BusinessCollector(engine))
    return generate_latest(registry) + generate_latest(business)


@get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    if not _metrics_allowed(request):
        return Response({"status": 403, "title": "Forbidden", "detail": "metrics need EKP_METRICS_TOKEN",
                         "code": "http.forbidden"}, status_code=403,
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    body = await anyio.to_thread.run_sync(_exposition, request.app.state.engine, request.app.state.settings)
    return Response(body, status_code=200, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


router = Router(path="/", route_handlers=[health, ready, metrics])
