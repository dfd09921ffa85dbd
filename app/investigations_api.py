"""`POST /api/v1/investigations` (contracts as JSON or CSV), `GET /api/v1/investigations/{id}` (state and
findings so far) and `GET /api/v1/investigations/{id}/report?format=json|md|html`.

A request carries a token (`Authorization: Bearer` or `?token=`) or, for an anonymous chat session,
its `?session_id=`: the creator is that user or that session (an investigation created with a token has
no public session). Reading it afterwards takes what `app.investigation_access.visible` accepts, or the read
key its `url` and `report_url` carry (`?key=`, for a browser); anyone else gets 404 NOT_FOUND, the same
answer as for an id that does not exist.

A full queue of jobs is 429 RATE_LIMIT_ERROR; a queue or a database that does not answer, 503.

The investigation is worded (progress, anomalies, findings, report) in `?lang=en|pt`, else in the first
of English or Portuguese that `Accept-Language` names, else in Portuguese.
"""
from __future__ import annotations

from typing import Any

from aiohttp import BodyPartReader, web

from engines.contracts.report import render_html, render_markdown
from engines.contracts.texts import LANGUAGES, PT

from .auth import AuthError, Principal, find_token
from .errors import AUTHENTICATION_ERROR, RATE_LIMIT_ERROR, VALIDATION_ERROR, PonteError
from .investigation_access import checked_id, holds_key, not_found, view, visible
from .keys import GATEWAY_KEY
from .origins import origin_params
from .publish import Refused
from .uploads import Upload

MAX_UPLOAD = 32 * 1024 * 1024
STATUSES = {VALIDATION_ERROR: 400, RATE_LIMIT_ERROR: 429}  # any other refusal: the queue is unavailable


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/investigations", create)
    app.router.add_get("/api/v1/investigations/{id}", state)
    app.router.add_get("/api/v1/investigations/{id}/report", report)


async def create(request: web.Request) -> web.Response:
    """Start an investigation of the uploaded contracts: 201 with its id and URLs."""
    try:
        principal, session_id = caller(request)
        if principal.anonymous and session_id is None:
            raise Refused("envie um token ou o session_id da sessão de chat", None, 401, AUTHENTICATION_ERROR)
        upload = await received(request)
        user = None if principal.anonymous else principal.sub
        doc = await request.app[GATEWAY_KEY].services["investigations"].create(
            user, session_id, origin_params(request)["origin"], session_owner=user, upload=upload,
            lang=request_language(request))
    except Refused as exc:
        return exc.response()
    except PonteError as exc:
        return Refused(exc.message, exc.details.get("campo"), STATUSES.get(exc.code, 503), exc.code).response()
    return web.json_response({"investigation_id": doc["investigation_id"], "status": doc["status"],
                              "records": doc["records"], **doc["links"]}, status=201)


async def state(request: web.Request) -> web.Response:
    try:
        doc = await readable(request)
    except Refused as exc:
        return exc.response()
    return web.json_response(view(doc))


async def report(request: web.Request) -> web.Response:
    """The report once ready (409 before), as JSON, Markdown or HTML."""
    try:
        doc = await readable(request)
        kind = request.query.get("format", "json")
        if kind not in ("json", "md", "html"):
            raise Refused("format: json, md ou html", "format")
        if doc.get("report") is None:
            raise Refused(f"o relatório ainda não está pronto (status {doc['status']}, {doc['progress']:.0f}%)",
                          None, 409, "NOT_READY")
    except Refused as exc:
        return exc.response()
    if kind == "md":
        return web.Response(text=render_markdown(doc["report"]), content_type="text/markdown", charset="utf-8")
    if kind == "html":
        return web.Response(text=render_html(doc["report"]), content_type="text/html", charset="utf-8")
    return web.json_response(doc["report"])


def request_language(request: web.Request) -> str:
    """`?lang=` when it is pt or en, else the preferred of them in Accept-Language, else Portuguese."""
    asked = request.query.get("lang", "").lower()
    if asked in LANGUAGES:
        return asked
    return accepted_language(request.headers.get("Accept-Language", "")) or PT


def accepted_language(header: str) -> str | None:
    """The supported language an Accept-Language header prefers most ("en-GB,pt;q=0.8" → "en")."""
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate(header.split(",")[:32]):
        tag, _, params = item.strip().partition(";")
        quality = params.strip().removeprefix("q=") if params.strip().startswith("q=") else "1"
        try:
            weight = float(quality)
        except ValueError:
            continue
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and weight > 0:
            ranked.append((-weight, index, primary))
    return min(ranked)[2] if ranked else None


def caller(request: web.Request) -> tuple[Principal, str | None]:
    """The token's principal (else an anonymous one) and the chat session named by `session_id`."""
    session_id = request.query.get("session_id")
    if session_id is not None:
        try:
            session_id = checked_id("session_id", session_id)
        except PonteError as exc:
            raise Refused(exc.message, "session_id") from None
    token = find_token(request.headers, request.query, None)
    if token is None:
        return Principal.anonymous_one(), session_id
    try:
        return request.app[GATEWAY_KEY].verifier.verify(token), session_id
    except AuthError as exc:
        raise Refused(exc.message, None, 401, AUTHENTICATION_ERROR) from None


async def readable(request: web.Request) -> dict[str, Any]:
    """The investigation, if the caller may read it or holds its read key; else the 404 of an unknown id."""
    principal, session_id = caller(request)
    try:
        doc = await request.app[GATEWAY_KEY].services["investigations"].fetch(request.match_info["id"])
    except PonteError as exc:  # the store does not answer
        raise Refused(exc.message, None, 503, exc.code) from None
    if doc is None or not (holds_key(doc, request.query.get("key")) or visible(doc, principal, session_id)):
        error = not_found()
        raise Refused(error.message, None, 404, error.code)
    return dict(doc)


async def received(request: web.Request) -> Upload:
    """The contracts as received: a JSON body (`{"records": [...], "title"}` or a list), a CSV body, or a
    multipart upload with a `file` part (CSV). They are checked elsewhere (`app.uploads`)."""
    if request.content_type == "multipart/form-data":
        try:
            return Upload("csv", await multipart_csv(request))
        except ValueError:  # a malformed multipart body
            raise Refused("corpo inválido: JSON com records, ou CSV (text/csv)") from None
    body = await read(request)
    return Upload("csv" if request.content_type in ("text/csv", "text/plain") else "json", body)


async def read(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_UPLOAD:
        raise Refused(f"corpo acima de {MAX_UPLOAD} bytes", None, 413)
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_UPLOAD:
            raise Refused(f"corpo acima de {MAX_UPLOAD} bytes", None, 413)
        chunks.append(chunk)
    return b"".join(chunks)


async def multipart_csv(request: web.Request) -> bytes:
    reader = await request.multipart()
    async for part in reader:
        if isinstance(part, BodyPartReader) and part.name == "file":
            data = bytearray()
            while chunk := await part.read_chunk():
                data += chunk
                if len(data) > MAX_UPLOAD:
                    raise Refused(f"arquivo acima de {MAX_UPLOAD} bytes", "file", 413)
            return bytes(data)
    raise Refused("multipart sem a parte file", "file")
