"""What operators call: /healthz (alive), /readyz (ready, Redis and database state) and /metrics (Prometheus)."""
from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from .clock import now_iso
from .keys import DRAINING_KEY, GATEWAY_KEY, METRICS_KEY, SIO_KEY
from .metrics import Metrics
from .transport.redis import RedisFanoutManager
from .transport.server import PonteServer


def add_routes(app: web.Application, sio: PonteServer, metrics: Metrics) -> None:
    app[METRICS_KEY] = metrics
    app[DRAINING_KEY] = []
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_page)


async def healthz(request: web.Request) -> web.Response:
    """Alive: the event loop answers."""
    return web.json_response({"status": "ok", "time": now_iso()})


def redis_state(sio: PonteServer) -> str:
    """`absent` without REDIS_URL, else `up` while subscribed and `down` while not."""
    manager = sio.manager
    if not isinstance(manager, RedisFanoutManager):
        return "absent"
    return "up" if manager.subscribed else "down"


async def readyz(request: web.Request) -> web.Response:
    """Send me traffic: 200 unless draining (503). With a configured Redis down it says `degraded` and
    stays 200: the instance still serves its own clients, and a readiness-gated load balancer must not
    take every instance out at once for a shared outage. The same for the database (`SELECT 1`, at most
    every few seconds). With a job queue, how many workers are alive and how many jobs wait (read every
    few seconds)."""
    redis = redis_state(request.app[SIO_KEY])
    services = request.app[GATEWAY_KEY].services
    database = await services["database"].state()
    draining = bool(request.app[DRAINING_KEY])
    status = "draining" if draining else "degraded" if "down" in (redis, database) else "ready"
    body: dict[str, Any] = {"status": status, "redis": redis, "database": database}
    stats = services["jobs"].stats
    if stats.workers is not None:
        body["workers"], body["queued"] = stats.workers, stats.queued
    return web.json_response(body, status=503 if draining else 200)


async def metrics_page(request: web.Request) -> web.Response:
    """The Prometheus text exposition, with the Redis and database states read at scrape time (the database's
    as /readyz reads it: a `SELECT 1` at most every few seconds)."""
    metrics = request.app[METRICS_KEY]
    state = redis_state(request.app[SIO_KEY])
    if state != "absent":
        metrics.redis_up.set(1 if state == "up" else 0)
        metrics.redis_channels.set(len(request.app[SIO_KEY].manager.heard.where))
    database = await request.app[GATEWAY_KEY].services["database"].state()
    metrics.database_up.set(1 if database == "up" else 0)
    return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})
