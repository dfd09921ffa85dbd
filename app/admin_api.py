"""`GET /api/v1/admin/overview`: what an operator sees of this instance, for the console's operator view.

A Bearer token with the `admin` scope (the query string is not read, as for `POST /api/v1/publish`):
401 without a valid one, 403 without the scope. Everything comes from what the server already holds: the
instances alive and their state (what each writes in its liveness key every few seconds: readiness as
/readyz says it, connections, uptime), this instance's connections by namespace and transport and one
by one, its rooms and their members (presence's index), the jobs (the stats /metrics reads) and the last
lines of the audit log. Lists are bounded.
"""
from __future__ import annotations

import functools
import json
import os
import socket
import time
from collections import Counter
from typing import Any

from aiohttp import web

from .auth import Principal
from .errors import PERMISSION_ERROR
from .keys import DRAINING_KEY, GATEWAY_KEY, SIO_KEY
from .ops import redis_state
from .presence import Presence, PresenceUnavailable
from .publish import Refused, authenticate

MAX_CLIENTS = 200  # connections listed one by one
MAX_ROOMS = 200
MAX_MEMBERS = 50  # members listed per room
MAX_AUDIT = 50
STARTED = time.time()
_dumps = functools.partial(json.dumps, default=str)  # audit lines may hold any value


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/admin/overview", overview)
    presence: Presence = app[GATEWAY_KEY].services["presence"]
    presence.describe = functools.partial(describe, app)  # what the other instances' overviews show of this one


def admin(request: web.Request) -> Principal:
    """The caller's principal when its token holds the `admin` scope; else Refused (401 or 403)."""
    principal = authenticate(request)
    if "admin" not in principal.scopes:
        raise Refused("o escopo 'admin' é necessário", None, 403, PERMISSION_ERROR)
    return principal


async def overview(request: web.Request) -> web.Response:
    """`{instance, instances, connections, clients, rooms, jobs, audit}` of this instance."""
    try:
        admin(request)
    except Refused as exc:
        return exc.response()
    gateway = request.app[GATEWAY_KEY]
    presence: Presence = gateway.services["presence"]
    try:
        instances: list[dict[str, Any]] | None = await presence.instances()
    except PresenceUnavailable:
        instances = None  # Redis did not answer: the operator sees this instance alone, and says so
    body = {"instance": {"id": presence.instance, **describe(request.app)}, "instances": instances,
            "connections": connections(request), "clients": clients(request), "rooms": rooms(presence),
            "jobs": jobs(gateway.services["jobs"]), "audit": list(gateway.audit.recent)[-MAX_AUDIT:][::-1]
            if gateway.audit is not None else []}
    return web.json_response(body, dumps=_dumps)


def describe(app: web.Application) -> dict[str, Any]:
    """An instance's state: process, host, uptime, readiness (as /readyz reports it) and open connections."""
    redis = redis_state(app[SIO_KEY])
    draining = bool(app[DRAINING_KEY])
    status = "draining" if draining else "degraded" if redis == "down" else "ready"
    open_connections = sum(len(getattr(namespace, "clients", {})) for namespace in _namespaces(app).values())
    return {"pid": os.getpid(), "host": socket.gethostname(), "uptime": round(time.time() - STARTED, 1),
            "status": status, "redis": redis, "connections": open_connections}


def _namespaces(app: web.Application) -> dict[str, Any]:
    return dict(app[SIO_KEY].namespace_handlers)


def connections(request: web.Request) -> list[dict[str, Any]]:
    """Open connections of this instance by namespace and transport."""
    counts: Counter[tuple[str, str]] = Counter()
    for name, namespace in _namespaces(request.app).items():
        for client in getattr(namespace, "clients", {}).values():
            counts[(name, client.transport)] += 1
    return [{"namespace": ns, "transport": transport, "count": n} for (ns, transport), n in sorted(counts.items())]


def clients(request: web.Request) -> list[dict[str, Any]]:
    """This instance's connections one by one (at most MAX_CLIENTS): who, how, for how long."""
    now = time.monotonic()
    listed = []
    for name, namespace in _namespaces(request.app).items():
        for sid, client in list(getattr(namespace, "clients", {}).items()):
            principal = client.principal
            listed.append({"namespace": name, "sid": sid, "transport": client.transport,
                           "user": None if principal.anonymous else principal.sub,
                           "params": {k: v for k, v in client.params.items() if k != "origin"},
                           "connected_for": round(now - client.since, 1)})
            if len(listed) >= MAX_CLIENTS:
                return listed
    return listed


def rooms(presence: Presence) -> list[dict[str, Any]]:
    """This instance's rooms and their members (at most MAX_ROOMS rooms, MAX_MEMBERS members each)."""
    listed = []
    for (namespace, room), sids in sorted(presence.rooms.items())[:MAX_ROOMS]:
        members = [{"sid": sid, "user": entry.user, "transport": entry.transport}
                   for sid in sorted(sids)[:MAX_MEMBERS] if (entry := presence.entry(namespace, sid))]
        listed.append({"namespace": namespace, "room": room, "size": len(sids), "members": members})
    return listed


def jobs(service: Any) -> dict[str, Any]:
    """Jobs running and queued, and the workers alive (None: jobs run inside the server)."""
    stats = service.stats
    running = stats.running if service.mode == "queue" else service.running
    return {"mode": service.mode, "running": running, "queued": stats.queued, "workers": stats.workers}
