"""`create_app(settings)`: the one factory behind `python -m app`, the Procfile and the tests."""
from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from typing import AsyncIterator

import aiohttp
from aiohttp import web

from handlers.base import PonteNamespace
from handlers.chat import ChatNamespace
from handlers.investigations import InvestigationsNamespace
from handlers.monitoring import AlertMonitor
from handlers.omni import OmniNamespace

from schemas import cidadao as schemas_cidadao
from schemas import omni as schemas_omni

from . import ops, origins
from engines.agents import language
from engines.agents.router import build_router
from engines.contracts.source import make_source

from . import (admin_api, console, dev_token, downloads, investigations_api, listings_api, logs, presence_api, publish,
               schemas_api)
from .audit import AUDIT
from .auth import TokenVerifier
from .gateway import Gateway
from .transport.raw import Endpoint, RawBridge, heartbeat_round
from .clock import now_iso
from .transport.codecs import cidadao, omni
from .executions import TOUCH_EVERY, ExecutionService
from .investigations import InvestigationService
from .errors import AUTHENTICATION_ERROR, CLOSE_NORMAL, CLOSE_POLICY, CLOSE_SERVICE_RESTART, PonteError
from .guards import ConnectionGuard
from .limits import SYNC_EVERY, UserLimits
from . import http_guard
from .metrics import Metrics
from .prefs import MemoryPreferenceStore, RedisPreferenceStore
from .presence import Presence
from .keys import DRAINING_KEY, GATEWAY_KEY, SETTINGS_KEY, SIO_KEY
from .records import MemoryRecordStore, RedisRecordStore
from .db import DatabaseStore, Records, open_database
from .db.migrate import upgrade_at_start
from .transport.history import History, RedisHistory
from .transport.cluster import connect_cluster, is_cluster
from .transport.redis import RedisFanoutManager, connect
from .settings import Settings, SettingsError
from .jobs import Collector as JobsCollector, Jobs, QueueJobs
from .tasks import every, stop
from .transport.manager import FanoutManager
from .transport.server import PonteServer

log = logging.getLogger("ponte")

# Each namespace and the protocol it speaks to both transports (raw endpoints below).
NAMESPACES = {"/omni": (OmniNamespace, omni), "/chat": (ChatNamespace, cidadao),
              "/investigations": (InvestigationsNamespace, cidadao)}
HISTORY_READY_WAIT = 3.0  # seconds start-up waits for Redis's history streams (Redis may be absent: it goes on)
DRAIN_SECONDS = 10.0  # for the whole drain; Heroku kills a dyno 30 s after SIGTERM
ENDPOINTS = [
    Endpoint("/ws", "/omni", omni, lambda request: {}),
    Endpoint("/api/v1/ws/chat/{session_id}", "/chat", cidadao,
             lambda request: {"session_id": request.match_info["session_id"]}),
    Endpoint("/api/v1/ws/investigations/{investigation_id}", "/investigations", cidadao,
             lambda request: {"investigation_id": request.match_info["investigation_id"]}),
]


def protocols() -> list[schemas_api.Protocol]:
    """Each raw endpoint with its namespace's events, for `GET /api/v1/schemas`."""
    found = []
    for endpoint in ENDPOINTS:
        handler, codec = NAMESPACES[endpoint.namespace]
        found.append(schemas_api.Protocol(endpoint.namespace, endpoint.path, "event" if codec is omni else "type",
                                          handler.params, handler.auth_required, handler.inbound,
                                          publish.DOCUMENTED[endpoint.namespace]))
    return found


def create_app(settings: Settings) -> web.Application:
    """Build the aiohttp application: Socket.IO, the raw endpoints and the HTTP routes."""
    # aiohttp's idle timer doubles as the handshake timeout: handler_args override run_app's 75 s
    app = web.Application(handler_args={"keepalive_timeout": settings.handshake_timeout})
    http_guard.install(app)
    app[SETTINGS_KEY] = settings
    sio = build_sio(settings)
    app[SIO_KEY] = sio
    sio.attach(app)
    metrics = Metrics(known_events())
    sio.manager.metrics = sio.metrics = metrics
    if isinstance(sio.manager, RedisFanoutManager):
        sio.manager.on_lost = lambda count, why: metrics.publish_failures.inc(count)
        sio.manager.listener.on_gap = metrics.history_gaps.inc
    prefs = (RedisPreferenceStore(sio.manager.redis) if isinstance(sio.manager, RedisFanoutManager)
             else MemoryPreferenceStore())
    if isinstance(prefs, RedisPreferenceStore):
        prefs.on_fallback = lambda source: metrics.preference_fallbacks.labels(source).inc()
    short = (RedisRecordStore(sio.manager.redis, settings.records_ttl) if isinstance(sio.manager, RedisFanoutManager)
             else MemoryRecordStore(settings.records_ttl))
    database = open_database(settings.database_url, settings.database_pool_size)
    records = Records(DatabaseStore(database), short)
    gateway = Gateway(settings, TokenVerifier(settings), metrics=metrics, audit=AUDIT, prefs=prefs,
                      records=records)
    app[GATEWAY_KEY] = gateway
    gateway.services["database"] = database
    jobs = (QueueJobs(records, sio.manager.redis, f"{settings.redis_channel}-jobs", settings.max_queued_jobs)
            if isinstance(sio.manager, RedisFanoutManager) else Jobs(records))
    gateway.services["jobs"] = jobs
    metrics.registry.register(JobsCollector(jobs))
    gateway.services["executions"] = ExecutionService(sio, settings, records, jobs)
    gateway.services["investigations"] = InvestigationService(sio, settings, records, jobs)
    gateway.services["agents"] = build_router(None, None, None, None, None)  # until the HTTP session exists
    presence = Presence(lambda namespace, sid: sio.namespace_handlers[namespace].clients.get(sid),
                        sio.manager.redis if isinstance(sio.manager, RedisFanoutManager) else None)
    sio.manager.watchers.append(presence.watch)
    gateway.services["presence"] = presence
    for path, (namespace_class, codec) in NAMESPACES.items():
        sio.register(namespace_class(path, gateway), codec)
    RawBridge(sio, settings).add_routes(app, ENDPOINTS)
    publish.add_routes(app)
    downloads.add_routes(app)
    investigations_api.add_routes(app)
    listings_api.add_routes(app)
    presence_api.add_routes(app)
    ops.add_routes(app, sio, metrics)
    admin_api.add_routes(app)
    dev_token.add_routes(app)
    schemas_api.add_routes(app, protocols())
    console.add_routes(app)
    app.cleanup_ctx.append(database_lifetime)  # first: the database outlives every task that writes to it
    app.cleanup_ctx.append(background_tasks)
    app.cleanup_ctx.append(presence.running)  # after: stopped first, while Redis is still open
    app.on_shutdown.append(close_clients)
    return app


JOB_STATS_EVERY = 5.0  # seconds between two readings of the queue for /metrics and /readyz


def build_sio(settings: Settings) -> PonteServer:
    """The Socket.IO server, with Engine.IO limits taken from the settings."""
    manager = build_manager(settings)
    redis = manager.redis if isinstance(manager, RedisFanoutManager) else None
    server = PonteServer(
        async_mode="aiohttp",
        namespaces=list(NAMESPACES),  # not "/": it has no handlers and no authentication
        client_manager=manager,
        cors_allowed_origins=origins.socketio_policy(settings.allowed_origins),
        max_http_buffer_size=settings.max_message_bytes,
        ping_interval=settings.heartbeat,
        ping_timeout=settings.heartbeat,  # as on raw endpoints: a peer silent for two heartbeats is dropped
        guard_factory=lambda: ConnectionGuard(settings.rate_limit_per_second, settings.rate_limit_burst,
                                              settings.rate_limit_close_after),
        max_sockets=2 * settings.max_connections,
        limits=UserLimits(settings.rate_limit_per_second, settings.rate_limit_burst, redis),
        connect_timeout=settings.connect_timeout,
    )
    server.recovery.socketio_offsets = settings.socketio_offsets
    return server


def build_manager(settings: Settings) -> FanoutManager:
    """In memory alone; through Redis when REDIS_URL is set. Either keeps the history of events to rooms
    (HISTORY_SIZE of them per namespace) where reconnecting clients find what they missed."""
    if not settings.redis_url:
        manager = FanoutManager(settings.send_queue_limit)
        if settings.history_size:
            manager.history = History(settings.history_size, settings.recovery_window)
        return manager
    client = connect(settings.redis_url, settings.redis_tls_verify, settings.redis_pool_size,
                     settings.redis_pool_timeout)
    manager = RedisFanoutManager(client, settings.redis_channel, settings.send_queue_limit)
    if settings.redis_cluster_url:
        manager.cluster = connect_cluster(settings.redis_cluster_url, settings.redis_pool_size)
    if settings.history_size:
        manager.history = RedisHistory(client, settings.redis_channel, settings.history_size,
                                       settings.recovery_window)
    return manager


async def refuse_a_cluster(manager: FanoutManager) -> None:
    """REDIS_URL on a Redis Cluster node would work for a while and then fail key by key (MOVED): say so
    before serving. (A Redis that does not answer yet is not refused: it may be starting.)"""
    if not isinstance(manager, RedisFanoutManager):
        return
    try:
        cluster = await is_cluster(manager.redis)
    except Exception:  # noqa: BLE001 - absent for now: the fan-out retries
        return
    if cluster:
        raise SettingsError("REDIS_URL points at a Redis Cluster: give it a plain Redis (or Sentinel) for presence, "
                            "sessions and jobs, and the cluster as REDIS_CLUSTER_URL for the rooms' channels")


def known_events() -> set[str]:
    """Every event name of both documents: the only values metrics use as labels."""
    return {*schemas_omni.INBOUND, *schemas_omni.OUTBOUND, *schemas_cidadao.CHAT_INBOUND,
            *schemas_cidadao.INVESTIGATIONS_INBOUND, *schemas_cidadao.OUTBOUND}


async def database_lifetime(app: web.Application) -> AsyncIterator[None]:
    """Migrate the database before serving (app/db/migrate.py); close its connections last."""
    database = app[GATEWAY_KEY].services["database"]
    retrying = await upgrade_at_start(database)
    yield
    if retrying is not None:
        await stop([retrying])
    await database.close()


async def background_tasks(app: web.Application) -> AsyncIterator[None]:
    """The sweeper (idle clients, expired tokens) and the investigations heartbeat."""
    sio, settings = app[SIO_KEY], app[SETTINGS_KEY]
    services = app[GATEWAY_KEY].services
    executions, investigations, jobs = services["executions"], services["investigations"], services["jobs"]
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(sock_connect=10, sock_read=settings.chat_timeout))
    investigations.source = make_source(settings.contracts_source, settings.transparencia_api_key, http)
    services["agents"] = build_router(settings.llm_base_url, settings.llm_api_key, settings.llm_model,
                                      settings.agent_backend_url, http)
    language.load()  # before serving: loading holds the event loop (and the GIL) meanwhile
    await refuse_a_cluster(sio.manager)
    sio.start()
    history = sio.manager.history
    if history is not None:
        history.start()
        if isinstance(sio.manager, RedisFanoutManager):  # serve once the streams' heads are known, if Redis answers
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sio.manager.listener.history_ready.wait(), HISTORY_READY_WAIT)
        if history.shared:
            sio.manager.watchers.append(sio.recovery.room_changed)
    tasks = [asyncio.create_task(every(min(5.0, settings.idle_timeout / 4), sweep, sio, settings)),
             asyncio.create_task(every(settings.heartbeat, heartbeat, sio)),
             asyncio.create_task(every(settings.heartbeat, heartbeat_round, sio.raw_peers.values())),
             asyncio.create_task(every(settings.heartbeat, sio.ping_round)),
             asyncio.create_task(every(settings.alert_interval, AlertMonitor(sio.namespace_handlers["/omni"]).check)),
             asyncio.create_task(every(TOUCH_EVERY, executions.touch)),
             asyncio.create_task(every(min(1.0, settings.connect_timeout / 4), sio.close_unconnected)),
             asyncio.create_task(every(SYNC_EVERY, sio.limits.sync)),
             asyncio.create_task(every(settings.recovery_window / 3, sio.recovery.refresh_sessions)),
             asyncio.create_task(app[GATEWAY_KEY].metrics.loop_lag.run())]
    await jobs.open()
    tasks.append(asyncio.create_task(every(JOB_STATS_EVERY, jobs.refresh)))
    if isinstance(jobs, QueueJobs) and settings.gateway_workers:  # a worker inside this process, on the queue
        from .worker import work
        tasks.append(asyncio.create_task(work(settings, settings.gateway_workers, signals=False)))
    yield
    await asyncio.gather(executions.close(), investigations.close())  # side by side: the 30 s Heroku allows
    await jobs.close()
    await stop(tasks)  # the periodic jobs, and a worker inside this process, before what they use
    await http.close()
    if history is not None:
        await history.close()
    if isinstance(sio.manager, RedisFanoutManager):
        await sio.manager.close()


def new_event_loop(choice: str) -> asyncio.AbstractEventLoop:
    """The loop a serving process runs on (EVENT_LOOP): uvloop when chosen or, for auto, when installed."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise SettingsError("EVENT_LOOP=uvloop but uvloop is not installed (pip install uvloop)") from None
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


# A young generation of 10,000 objects instead of 700: a full collection walks every connection's objects
# (about 66 each: 400-600 ms at 10,000 connections), and with CPython's defaults one came every ~70,000
# allocations, in the middle of a mass connect or disconnect; now every ~1,000,000.
GC_THRESHOLDS = (10_000, 10, 10)


def freeze_heap_after_start(app: web.Application) -> None:
    """For a process that serves this one app (`python -m app`, the bench): once start-up has loaded
    everything (modules, language models, schemas), move it out of the cyclic collector's sight; it
    lives as long as the process, and a full collection then walks only what connections and work
    allocate; and collect less often (GC_THRESHOLDS). Not for tests, which build many apps in one process."""
    async def freeze(app: web.Application) -> None:
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
    app.on_startup.append(freeze)  # after cleanup_ctx's start-up halves (aiohttp runs those first)


async def sweep(sio: PonteServer, settings: Settings) -> None:
    """Close clients idle for IDLE_TIMEOUT (1000) and those whose token expired (1008)."""
    logs.report_held()
    await sio.close_idle(settings.idle_timeout, CLOSE_NORMAL,
                         f"idle timeout: no message for {settings.idle_timeout:g} s")
    for path in NAMESPACES:
        namespace: PonteNamespace = sio.namespace_handlers[path]
        for sid in namespace.expired():
            await sio.refuse(sid, path, PonteError(AUTHENTICATION_ERROR, "Token de autenticação expirado",
                                                   {"motivo": "expired"}, close=CLOSE_POLICY))


async def heartbeat(sio: PonteServer) -> None:
    """The investigations endpoint's `heartbeat` message, as the Cidadão.AI server sends it."""
    await sio.emit("heartbeat", {"server_time": now_iso()}, namespace="/investigations", ignore_queue=True)


async def close_clients(app: web.Application) -> None:
    """On shutdown (SIGTERM), with the listener already closed: mark the instance as draining,
    tell every client to reconnect (raw: close 1012; Socket.IO: the transport is lost, which its
    clients answer by reconnecting), let in-flight handlers finish, all within DRAIN_SECONDS, and
    log what was closed."""
    sio = app[SIO_KEY]
    app[DRAINING_KEY].append(time.time())
    started = time.monotonic()
    log.info("draining: closing %d raw and %d Socket.IO connections", *sio.connection_counts())
    raw = sio.close_raw(CLOSE_SERVICE_RESTART, "server restarting: please reconnect")
    # Each Socket.IO transport ends now, with neither Socket.IO's DISCONNECT (final to every client) nor
    # Engine.IO's close packet (final to python-socketio's): a WebSocket with its close code, a polling
    # session by answering its pending poll with a NOOP and refusing the next (no such session). To the
    # client that is a transport loss, and it reconnects; on_disconnect gets "server shutting down".
    sockets, polling = await sio.close_sockets(CLOSE_SERVICE_RESTART, "server restarting", DRAIN_SECONDS,
                                               "server shutting down")
    pending = [task for ns in sio.namespace_handlers.values() for task in getattr(ns, "_tasks", ())]
    if pending:
        await asyncio.wait(pending, timeout=max(0.0, started + DRAIN_SECONDS - time.monotonic()))
    with contextlib.suppress(Exception):
        await sio.shutdown()
    log.info("drained: closed %d raw, %d Socket.IO (%d polling) connections in %.1f s",
             raw, sockets, polling, time.monotonic() - started)
    logs.report_held()
