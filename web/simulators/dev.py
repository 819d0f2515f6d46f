"""Development-only pages (enabled by EKP_DEV_PAGES, refused in production): the local mail outbox.

The outbox holds every mail, password reset links included, so it is served only to the developer's own
machine: a client on a loopback address, not through a proxy (any forwarding header refuses); everyone
else gets 404."""

from __future__ import annotations

from litestar import Request, Router, get
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.exceptions import NotFoundException
from litestar.response import Response, Template
from sqlalchemy import select
from sqlmodel import col

from web.platform.http import RowId, in_transaction, page
from web.platform.models import OutboxMail
from web.platform.settings import is_loopback_address

FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip", "x-client-ip")


def loopback_only(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Only this machine, directly: the peer's own address (never a header) must be loopback."""
    host = connection.client.host if connection.client else ""
    if not is_loopback_address(host) or any(name in connection.headers for name in FORWARDING_HEADERS):
        raise NotFoundException()


def _mails(session, limit: int = 100):
    return list(session.scalars(select(OutboxMail).order_by(col(OutboxMail.id).desc()).limit(limit)))


@get("/dev/mail")
async def outbox(request: Request) -> Template:
    mails = await in_transaction(request, _mails)
    return await page(request, "dev/mail.html", mails=mails)


@get("/dev/mail/{mail_id:int}")
async def outbox_mail(request: Request, mail_id: RowId) -> Response:
    mail = await in_transaction(request, lambda s: s.get(OutboxMail, mail_id))
    if mail is None:
        raise NotFoundException()
    # The mail's own HTML, sandboxed so nothing in it runs.
    return Response(content=mail.html_body, media_type="text/html",
                    headers={"Content-Security-Policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'"})


router = Router(path="/", route_handlers=[outbox, outbox_mail], guards=[loopback_only])
