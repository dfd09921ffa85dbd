"""`GET /api/v1/executions/{id}` and `GET /api/v1/executions/{id}/download?format=json|csv`: an
execution's state and its result, for its owner's token only (or an `admin` one).

The token may come as `Authorization: Bearer` or, because a browser following a download link cannot
set headers, as `?token=`; the access log never prints query strings.
"""
from __future__ import annotations

import csv
import io
from typing import Any

from aiohttp import web


from .auth import AuthError, Principal, find_token
from .errors import AUTHENTICATION_ERROR, PonteError
from .executions import final_event
from .keys import GATEWAY_KEY
from .publish import Refused

CSV_FIELDS = ("posicao", "termo", "frequencia", "relevancia", "url", "cluster_id", "cluster_nome")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/executions/{id}", state)
    app.router.add_get("/api/v1/executions/{id}/download", download)


async def state(request: web.Request) -> web.Response:
    """The execution's current state, as the event a consulting client would get."""
    try:
        record = await owned_record(request)
    except Refused as exc:
        return exc.response()
    event, payload = final_event(record)
    return web.json_response({"event": event, "data": payload})


async def download(request: web.Request) -> web.Response:
    """The keywords and clusters of a finished execution, as JSON or CSV."""
    try:
        record = await owned_record(request)
        kind = request.query.get("format", "json")
        if kind not in ("json", "csv"):
            raise Refused("format: json ou csv", "format")
        if record["status"] != "concluida":
            raise Refused(f"a execução não terminou (status {record['status']})", None, 409)
    except Refused as exc:
        return exc.response()
    name = f"{record['id']}.{kind}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "private, no-store"}
    if kind == "csv":
        return web.Response(text=as_csv(record), content_type="text/csv", charset="utf-8", headers=headers)
    body = {"execucao_id": record["id"], "blog_url": record["config"]["blog_url"],
            "resultado": record["final"]["resultado"], "keywords": record["keywords"], "clusters": record["clusters"]}
    return web.json_response(body, headers=headers)


async def owned_record(request: web.Request) -> dict[str, Any]:
    """The execution's record, if the request's token is its owner's (401, 403, 404 otherwise)."""
    principal = authenticate(request)
    service = request.app[GATEWAY_KEY].services["executions"]
    try:
        return dict(await service.record(request.match_info["id"], principal.sub, principal.allows("admin")))
    except PonteError as exc:
        status = {"PERMISSION_ERROR": 403, "VALIDATION_ERROR": 404}.get(exc.code, 503)
        raise Refused(exc.message, None, status, exc.code) from None


def authenticate(request: web.Request) -> Principal:
    token = find_token(request.headers, request.query, None)
    if not token:
        raise Refused("Token de autenticação ausente", None, 401, AUTHENTICATION_ERROR)
    try:
        return request.app[GATEWAY_KEY].verifier.verify(token)
    except AuthError as exc:
        raise Refused(exc.message, None, 401, AUTHENTICATION_ERROR) from None


def as_csv(record: dict[str, Any]) -> str:
    """One row per keyword, with its cluster's name."""
    names = {cluster["id"]: cluster["nome"] for cluster in record["clusters"]}
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for keyword in record["keywords"]:
        writer.writerow({**keyword, "cluster_nome": names.get(keyword.get("cluster_id"), "")})
    return out.getvalue()
