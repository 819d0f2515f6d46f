"""The OpenAPI document at `/schema/openapi.json`: the device API and the inspection API as they answer.

Litestar writes the document from the handlers; this module finishes what it cannot say: the error body
every API answers (`Problem`: `{status, title, detail, code}` as `application/problem+json`, RFC 9457), the error statuses each operation really
gives (400, 401, 403, 405, 409, 415, 422), the limits the server enforces inside lists and on dates, the
inspection operations' request bodies and the two security schemes (a device's bearer credential, an
inspector's session cookie).

Only the JSON document is served (no HTML reference page: the usual ones load scripts from CDNs, which
the app's Content-Security-Policy refuses and which a LAN installation may not reach). In production it is
served to signed-in staff only (issue 13, item 11).
"""

from __future__ import annotations

import copy
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotFoundException
from litestar.handlers import BaseRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.router import Router

from web.platform.sessions import COOKIE

PROBLEM = {
    "type": "object",
    "description": "An error: `detail` is the text to show (Polish, or English when asked), `code` a stable id.",
    "properties": {
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "title": {"type": "string"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
    },
    "required": ["status", "title", "detail", "code"],
}

ERRORS = {
    400: "The body is not what this operation takes (not JSON, a field missing, of another type or outside "
         "its limits)",
    401: "No valid credential",
    403: "Signed in, but not allowed",
    405: "Method not allowed (the `Allow` header lists those that are)",
    409: "The event id was already used for another event",
    415: "The body is not `application/json`",
    422: "Understood but refused (a time in the future, a blank id, an event id used for another event in a "
         "batch line, ...)",
}

DEVICE_ERRORS = (400, 401, 405, 409, 422)
INSPECTION_ERRORS = (400, 401, 403, 405, 415)

SECURITY_SCHEMES = {
    "device": {"type": "http", "scheme": "bearer", "bearerFormat": "<device id>.<secret>",
               "description": "A device's credential from `ekp devices add`."},
    "inspector": {"type": "apiKey", "in": "cookie", "name": COOKIE,
                  "description": "The session of an inspector signed in at /login."},
}

VERIFY_BODY = {
    "type": "object",
    "properties": {"code": {"type": "string", "minLength": 1, "maxLength": 1024,
                            "pattern": "^(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?$",
                            "description": "The scanned Aztec code's bytes, base64 (standard or URL-safe)"}},
    "required": ["code"],
}
# The scanner uploads what it decided offline; an entry it cannot read is skipped (not counted in `logged`),
# never a reason to lose the others: so the entries are described, not constrained.
LOG_BODY = {
    "type": "object",
    "properties": {"scans": {"type": "array", "maxItems": 200, "items": {
        "description": "{code: the verdict code, ticket_id: integer 1..2^31-1 or null, at: seconds since 1970}; "
                       "an entry of any other shape is skipped"}}},
    "required": ["scans"],
}
INSPECTION_BODIES = {"/api/inspection/verify": VERIFY_BODY, "/api/inspection/log": LOG_BODY}

# What the models cannot say: item limits inside lists, and that `at` is a date and time.
DEVICE_FIELDS = {
    "at": {"format": "date-time"},
    "coins": {"items": {"type": "integer", "minimum": 0, "maximum": 100_000}},
}


def _problem_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {"description": ERRORS[status],
                                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    if status == 405:
        response["headers"] = {"Allow": {"required": True, "schema": {"type": "string"}}}
    return response


def finish(document: dict[str, Any]) -> dict[str, Any]:
    """The document Litestar wrote, with the API's errors, limits, bodies and security as they are."""
    document = copy.deepcopy(document)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM
    components["securitySchemes"] = SECURITY_SCHEMES
    for name, schema in schemas.items():
        if name == "Problem":
            continue
        for field, extra in DEVICE_FIELDS.items():
            if field in schema.get("properties", {}):
                schema["properties"][field].update(extra)
    for path, item in document.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        device = path.startswith("/api/devices/")
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = {code: answer for code, answer in operation["responses"].items() if not code.startswith("4")}
            for status in DEVICE_ERRORS if device else INSPECTION_ERRORS:
                if method == "get" and status in (400, 415):
                    continue
                responses[str(status)] = _problem_response(status)
            operation["responses"] = responses
            operation["security"] = [{"device": []}] if device else [{"inspector": []}]
            if path in INSPECTION_BODIES:
                operation["requestBody"] = {"required": True, "content": {"application/json": {
                    "schema": INSPECTION_BODIES[path]}}}
    return document


class ApiDocument(JsonRenderPlugin):
    """`/schema` and `/schema/openapi.json`: the finished document, as JSON."""

    def __init__(self) -> None:
        super().__init__(path=["/", "/openapi.json"])
        self._finished: tuple[int, bytes] | None = None

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        if self._finished is None or self._finished[0] != id(openapi_schema):
            self._finished = (id(openapi_schema), self.render_json(request, finish(openapi_schema)))
        return self._finished[1]


def openapi_config(staff_only: bool) -> OpenAPIConfig:
    """The OpenAPI document; with `staff_only` (production) only signed-in staff get it, others a 404."""
    guards = [_staff_only] if staff_only else []
    return OpenAPIConfig(
        title="EKP — device and inspection API",
        version="1",
        path="/schema",
        render_plugins=[ApiDocument()],
        openapi_router=Router(path="/schema", route_handlers=[], guards=guards, include_in_schema=False),
    )


async def _staff_only(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
    from web.platform.http import current_user

    user = await current_user(connection)
    if user is None or user.role != "staff":
        raise NotFoundException()
