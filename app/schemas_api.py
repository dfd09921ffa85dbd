"""`GET /api/v1/schemas`: the JSON Schema of every event of both documents, from the pydantic models, so
a client (the console) can build a form per event and check it before sending.

Public: the schemas are the published contract (the README and the two protocol documents say the same),
and the console needs them before anyone has signed in. Built once, when the routes are added.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from aiohttp import web
from pydantic import BaseModel


@dataclass(frozen=True)
class Protocol:
    """One endpoint as a client sees it: its raw path and Socket.IO namespace, the envelope's name field
    (`event` or `type`), the ids the path carries, whether a token is required, and its events."""

    namespace: str
    raw_path: str
    envelope: str
    params: tuple[str, ...]
    token_required: bool
    client: Mapping[str, type[BaseModel]]
    server: Mapping[str, type[BaseModel]]


def document(protocols: list[Protocol]) -> dict[str, Any]:
    """`{"protocols": [{namespace, raw_path, envelope, params, token_required, client, server}]}`, where
    `client` and `server` map each event name to its JSON Schema."""
    return {"protocols": [{
        "namespace": p.namespace, "raw_path": p.raw_path, "envelope": p.envelope, "params": list(p.params),
        "token_required": p.token_required,
        "client": {name: model.model_json_schema() for name, model in p.client.items()},
        "server": {name: model.model_json_schema(mode="serialization") for name, model in p.server.items()},
    } for p in protocols]}


def add_routes(app: web.Application, protocols: list[Protocol]) -> None:
    body = json.dumps(document(protocols), ensure_ascii=False).encode()

    async def schemas(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json", headers={"Cache-Control": "no-cache"})

    app.router.add_get("/api/v1/schemas", schemas)
