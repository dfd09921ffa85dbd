"""`python -m app worker`: a process that runs executions and investigations from the queue in Redis.

Its results go to the database (DATABASE_URL, migrated at start like the servers'). It has no socket
of its own: what a job emits reaches the clients of every gateway through Redis
(`transport.emitter.Emitter`), and pause, resume and cancel reach it on the same channel as the
gateways' control messages. It runs WORKER_CONCURRENCY jobs at once; the crawl and extraction limits
apply to each worker. SIGTERM (a deploy): the jobs it runs go back on the queue at once, for another
worker; SIGKILL: they are taken back by the sweep of a live worker (see app/jobs.py).
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket

import aiohttp

from engines.agents import language
from engines.contracts.source import make_source

from . import logs
from .executions import TOUCH_EVERY, ExecutionService
from .investigations import InvestigationService
from .jobs import QueueJobs
from .db import DatabaseStore, Records, open_database
from .db.migrate import upgrade_at_start
from .records import RedisRecordStore
from .settings import Settings
from .tasks import every, stop
from .transport.codecs import cidadao, omni
from .transport.emitter import Emitter
from .transport.cluster import connect_cluster
from .transport.redis import connect

log = logging.getLogger("ponte.worker")
CODECS = {"/omni": omni, "/chat": cidadao, "/investigations": cidadao}


class WorkerError(Exception):
    """The worker cannot start; the message is one line for the operator."""


def run(settings: Settings) -> None:
    """Run a worker until SIGTERM or SIGINT."""
    if not settings.redis_url:
        raise WorkerError("a worker takes its jobs from Redis: set REDIS_URL (the gateways' own)")
    from .factory import new_event_loop

    logs.setup(settings.log_level, settings.audit_log)
    loop = new_event_loop(settings.event_loop)
    try:
        loop.run_until_complete(work(settings))
    finally:
        loop.close()


async def work(settings: Settings, concurrency: int | None = None, signals: bool = True) -> None:
    """Serve jobs from the queue; `signals`: stop on SIGTERM/SIGINT (off when run inside a gateway)."""
    assert settings.redis_url
    client = connect(settings.redis_url, settings.redis_tls_verify, settings.redis_pool_size,
                     settings.redis_pool_timeout)
    database = open_database(settings.database_url, settings.database_pool_size)
    retrying = await upgrade_at_start(database)
    records = Records(DatabaseStore(database), RedisRecordStore(client, settings.records_ttl))
    emitter = Emitter(client, settings.redis_channel, settings.history_size, CODECS,
                      connect_cluster(settings.redis_cluster_url) if settings.redis_cluster_url else None)
    jobs = QueueJobs(records, client, f"{settings.redis_channel}-jobs", settings.max_queued_jobs)
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(sock_connect=10, sock_read=settings.chat_timeout))
    executions = ExecutionService(emitter, settings, records, jobs)
    investigations = InvestigationService(emitter, settings, records, jobs)
    investigations.source = make_source(settings.contracts_source, settings.transparencia_api_key, http)
    # no ":" in the id: SAQ's info() keeps what follows the last one, and would find no worker
    worker = jobs.worker(concurrency or settings.worker_concurrency, f"{socket.gethostname()}-{os.getpid()}",
                         {"pid": os.getpid(), "host": socket.gethostname()})
    if not signals:
        worker.SIGNALS = []
    language.load()
    await jobs.open()
    executions.listen()
    touching = asyncio.get_running_loop().create_task(every(TOUCH_EVERY, executions.touch))
    log.info("worker %s: %d jobs at a time from queue %r", worker.id, worker.concurrency, jobs.queue.name)
    try:
        await worker.start()
    finally:
        await stop([touching, *([retrying] if retrying else [])])
        await executions.close()
        await emitter.close()
        await http.close()
        await client.aclose()
        await database.close()
