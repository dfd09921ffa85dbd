"""`GET /api/v1/executions` and `GET /api/v1/investigations`: the caller's own past work, newest first.

A token is required (`Authorization: Bearer` or `?token=`; none, or a bad one: 401). A user sees what
they started; a token with the `admin` scope sees everyone's. `?limit=` (1-100, default 20) and
`?cursor=` (the `next_cursor` of the previous page) page through them; a bad value is 400 naming the
parameter. A database that does not answer is 503.
"""
from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .db.store import UNAVAILABLE
from .db.listing import LISTS, BadCursor, page
from .downloads import authenticate
from .errors import SYSTEM_ERROR
from .keys import GATEWAY_KEY
from .publish import Refused

log = logging.getLogger("ponte.listings")


class PageQuery(BaseModel):
    """The query string of a listing (other parameters, such as `token`, are not its business)."""

    model_config = ConfigDict(extra="ignore")

    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, min_length=1, max_length=200)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/executions", listing("executions"))
    app.router.add_get("/api/v1/investigations", listing("investigations"))


def listing(name: str) -> Any:
    model, item = LISTS[name]

    async def handle(request: web.Request) -> web.Response:
        """`{"items": [...], "next_cursor": ...}` of the caller's (admin: everyone's) executions or investigations."""
        try:
            principal = authenticate(request)
            query = parsed(request)
            owner = None if principal.allows("admin") else principal.sub
            try:
                rows, cursor = await page(request.app[GATEWAY_KEY].services["database"], model, owner, query.limit,
                                          query.cursor)
            except BadCursor as exc:
                raise Refused(str(exc), "cursor") from None
            except UNAVAILABLE as exc:
                log.warning("%s not listed: database unavailable (%s)", name, type(exc).__name__)
                raise Refused("banco de dados indisponível", None, 503, SYSTEM_ERROR) from None
        except Refused as exc:
            return exc.response()
        return web.json_response({"items": [item(row) for row in rows], "next_cursor": cursor},
                                 headers={"Cache-Control": "private, no-store"})
    return handle


def parsed(request: web.Request) -> PageQuery:
    """The page asked for; 400 naming the first parameter that is wrong."""
    try:
        return PageQuery.model_validate(dict(request.query))
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else None
        raise Refused(f"{field}: {error['msg']}", field) from None
