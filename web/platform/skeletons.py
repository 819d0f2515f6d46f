"""Page skeletons: a page rendered once per *shape*, its per-request values filled into the cached HTML.

A page such as /account renders the same HTML for every passenger except for a handful of values (the name,
the e-mail, the masked PESEL, the CSRF token). Rendering the layout, the tab bar and the form fields through
Jinja at every request was more than half of the page's CPU (issue 18). Here the template is rendered once with
placeholders in those places; the result is split at the placeholders and later requests join the parts with
their own values, escaped as Jinja's autoescape escapes them.

What keeps this safe:

- the skeleton is rendered from a context built only of the page's *shape* (what the template branches on:
  the language, the role, the settings, the path, whether a PESEL is shown, ...) and the placeholders; no
  per-person value reaches it except through a slot. The user and the request in that context are stand-ins
  that know only their slots and the shape; a template reading anything else raises `SkeletonMiss` and the page
  is rendered the ordinary way (never cached), so a field added to a template later cannot leak one person's
  data into another's page;
- a slot must come out of the render verbatim (a filter applied to it, e.g. `| upper`, would change the
  placeholder: the skeleton is refused);
- requests with anything the skeleton does not carry (flash messages, the logout clean-up, form errors) are
  rendered the ordinary way by the caller;
- entries live TEMPLATE_CHECK_SECONDS, like a cached template's file check: an edited template shows as soon.

The result is byte for byte what the ordinary render gives (tests/web/platform/test_skeletons.py compares both).
"""

from __future__ import annotations

import html
import logging
import secrets
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from litestar import MediaType
from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.response import Response
from litestar.response.base import ASGIResponse
from litestar.utils.scope.state import ScopeState
from markupsafe import Markup, escape

from web.platform import i18n
from web.platform.templating import TEMPLATE_CHECK_SECONDS, page_environment

log = logging.getLogger("ekp")

CSRF_TOKEN = "csrf_token"  # slot names every skeleton has
CSRF_INPUT = "csrf_input"
MAX_ENTRIES = 512


class SkeletonMiss(Exception):
    """The template read something the skeleton's context does not carry: render the page the ordinary way.

    Not an AttributeError on purpose: Jinja turns those into an empty Undefined, this one stops the render."""


class StandIn:
    """An object of the skeleton's context: the attributes it was given, nothing else."""

    def __init__(self, name: str, **attributes: Any) -> None:
        self.__dict__.update(attributes)
        self.__dict__["_name"] = name

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):  # Python's own protocol look-ups (copy, pickle, ...)
            raise AttributeError(attribute)
        raise SkeletonMiss(f"{self._name}.{attribute}")

    def __getitem__(self, key: Any) -> Any:
        raise SkeletonMiss(f"{self._name}[{key!r}]")

    def __bool__(self) -> bool:
        return True


class Slots:
    """Placeholders for one skeleton render: `slots.name` is a unique marker that the render must keep verbatim."""

    def __init__(self) -> None:
        self._nonce = secrets.token_hex(8)
        self.names: dict[str, str] = {}

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        marker = self.names.get(name)
        if marker is None:
            marker = self.names[name] = f"ekpslot{self._nonce}n{len(self.names)}x"
        return marker


class _Skeleton:
    __slots__ = ("parts", "names", "expires", "settings")

    def __init__(self, parts: list[str], names: list[str], expires: float, settings: Any) -> None:
        self.parts, self.names, self.expires, self.settings = parts, names, expires, settings

    def fill(self, values: Mapping[str, str]) -> str:
        out = [self.parts[0]]
        for name, part in zip(self.names, self.parts[1:]):
            out.append(values[name])
            out.append(part)
        return "".join(out)


_skeletons: dict[Hashable, _Skeleton | None] = {}  # None: this shape's template cannot be a skeleton


def forget_skeletons() -> None:
    _skeletons.clear()


def _split(rendered: str, slots: Slots) -> _Skeleton | None:
    by_marker = {marker: name for name, marker in slots.names.items()}
    parts: list[str] = []
    names: list[str] = []
    rest = rendered
    while True:
        found = [(rest.find(marker), marker) for marker in by_marker]
        found = [(at, marker) for at, marker in found if at >= 0]
        if not found:
            parts.append(rest)
            break
        at, marker = min(found)
        parts.append(rest[:at])
        names.append(by_marker[marker])
        rest = rest[at + len(marker):]
    if "ekpslot" + slots._nonce in "".join(parts).lower():  # a marker cut or changed by a filter
        return None
    return _Skeleton(parts, names, 0.0, None)


def skeleton_page(
    request: ASGIConnection,
    template_name: str,
    *,
    shape: tuple[Hashable, ...],
    values: Mapping[str, str | Markup],
    context: Callable[[Slots], dict[str, Any]],
    status_code: int = 200,
) -> Response | None:
    """The page `template_name` from its skeleton for `shape`, with `values` (each escaped unless Markup) in its
    slots; None when the page must be rendered the ordinary way (see the module's docstring).

    `context(slots)` builds the render's context from the shape and the placeholders (`slots.full_name`, ...);
    the layout's `user` and `request` come from it too (use `StandIn`). `csrf_token()` and `csrf_input` are
    slots of every skeleton, filled in here."""
    session = request.scope.get("session")
    if isinstance(session, dict) and (session.get("_flash") or session.get("_clear_browser")):
        return None
    settings = request.app.state.settings
    language = i18n.current_language.get()
    key = (template_name, language, id(settings), request.scope.get("path", ""), shape)
    now = time.monotonic()
    if key in _skeletons and _skeletons[key] is None:  # this shape's template cannot be a skeleton
        return None
    skeleton = _skeletons.get(key)
    if skeleton is None or skeleton.expires <= now or skeleton.settings is not settings:
        skeleton = _render_skeleton(request, template_name, settings, context)
        if len(_skeletons) >= MAX_ENTRIES:
            _skeletons.clear()
        _skeletons[key] = skeleton
        if skeleton is None:
            return None
        skeleton.expires, skeleton.settings = now + TEMPLATE_CHECK_SECONDS, settings
    token = ScopeState.from_scope(request.scope).csrf_token
    token = "" if not isinstance(token, str) else token
    filled = {name: value if isinstance(value, Markup) else str(escape(value)) for name, value in values.items()}
    filled[CSRF_TOKEN] = str(escape(token))
    # Litestar's Template response builds csrf_input with html.escape
    filled[CSRF_INPUT] = f'<input type="hidden" name="_csrf_token" value="{html.escape(token)}" />'
    try:
        body = skeleton.fill(filled)
    except KeyError:  # a slot without a value: never leave a marker in a page
        return None
    return HTMLBytes(body.encode(), status_code)


_HTML_TYPE = (b"content-type", b"text/html; charset=utf-8")


class _HTMLBytesASGI(ASGIResponse):
    """What Litestar's `ASGIResponse` sends for an HTML body with no extra headers, cookies or background task
    (content type, then length), its headers written as raw bytes at once."""

    __slots__ = ()

    def __init__(self, body: bytes, status_code: int) -> None:  # noqa: super().__init__ not called on purpose
        self.body = body
        self.status_code = status_code
        self.content_length = len(body)
        self.headers = MutableScopeHeaders({"headers": [_HTML_TYPE, (b"content-length", b"%d" % len(body))]})  # type: ignore[typeddict-item]
        self.background = None
        self.encoding = "utf-8"
        self.is_head_response = False
        self._encoded_cookies = ()


class HTMLBytes(Response[bytes]):
    """An HTML page already rendered to bytes: Litestar's `Response(content, status_code=..., media_type=HTML)`,
    answered without building its header dict and `ASGIResponse` step by step (issue 18: about a tenth of the
    account page's CPU). Anything added on the way (headers, cookies, a background task, a HEAD request) takes
    Litestar's own path."""

    def __init__(self, content: bytes, status_code: int = 200) -> None:  # noqa: what Response.__init__ sets, directly
        self.content = content
        self.status_code = status_code
        self.media_type = MediaType.HTML
        self.background = None
        self.cookies = []
        self.headers = {}
        self.encoding = "utf-8"
        self.response_type_encoders = {**(self.type_encoders or {})}

    def to_asgi_response(self, app: Any, request: Any, *, background: Any = None, cookies: Any = None,
                         encoded_headers: Any = None, headers: Any = None, is_head_response: bool = False,
                         media_type: Any = None, status_code: int | None = None,
                         type_encoders: Any = None) -> ASGIResponse:
        if (app is not None or background or cookies or encoded_headers or headers or is_head_response
                or self.cookies or self.headers or self.background):
            return super().to_asgi_response(app, request, background=background, cookies=cookies,
                                            encoded_headers=encoded_headers, headers=headers,
                                            is_head_response=is_head_response, media_type=media_type,
                                            status_code=status_code, type_encoders=type_encoders)
        return _HTMLBytesASGI(self.content, self.status_code or 200)


def _render_skeleton(request: ASGIConnection, template_name: str, settings: Any,
                     context: Callable[[Slots], dict[str, Any]]) -> _Skeleton | None:
    slots = Slots()
    values = context(slots)
    csrf_marker = getattr(slots, CSRF_TOKEN)
    values.setdefault("flashes", [])
    values.setdefault("clear_browser", False)
    values["settings"] = settings
    values[CSRF_INPUT] = getattr(slots, CSRF_INPUT)
    values["csrf_token"] = lambda: csrf_marker
    values.setdefault("request", StandIn("request", url=StandIn("url", path=request.scope.get("path", "")),
                                          app=StandIn("app", state=StandIn("state", settings=settings))))
    try:
        rendered = page_environment(i18n.current_language.get()).get_template(template_name).render(values)
    except SkeletonMiss as exc:
        log.warning("page %s cannot be a skeleton: the template reads %s", template_name, exc)
        return None
    return _split(rendered, slots)
