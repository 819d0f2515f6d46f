"""Development-only pages (enabled by EKP_DEV_PAGES, off in production): the local mail outbox."""

from __future__ import annotations

from litestar import Request, Router, get
from litestar.exceptions import NotFoundException
from litestar.response import Response, Template
from sqlalchemy import select

from web.http import RowId, in_transaction, page
from web.models import OutboxMail


def _mails(session, limit: int = 100):  # type: ignore[no-untyped-def]
    return list(session.scalars(select(OutboxMail).order_by(OutboxMail.id.desc()).limit(limit)))  # type: ignore[union-attr]


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


router = Router(path="/", route_handlers=[outbox, outbox_mail])
