"""The signed-in account: how the platform's sessions load it, and the typed `User` for areas that need more of
it than the platform's `web.platform.http.Account` (e-mail, name, PESEL hash)."""

from __future__ import annotations

from litestar.connection import ASGIConnection
from sqlmodel import Session

from web.platform.http import signed_in_user
from web.accounts.models import User


def load_account(session: Session, user_id: int) -> User | None:
    """The account row of a session's id; the app factory puts it in `app.state.account_loader`."""
    return session.get(User, user_id)


async def signed_in_account(request: ASGIConnection) -> User:
    """`web.platform.http.signed_in_user` as the accounts area's `User` (the platform knows only `Account`)."""
    user = await signed_in_user(request)
    assert isinstance(user, User)
    return user
