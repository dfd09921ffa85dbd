"""Executions on real `python -m app worker` processes behind gateways that run no job (GATEWAY_WORKERS=0):
the events a client sees, control across processes, and what happens when a worker or a gateway dies."""
from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
import redis.asyncio as aioredis
import yarl

from app.jobs import HEARTBEAT, MAX_ATTEMPTS
from app.transport.emitter import Emitter
from app.worker import CODECS
from conftest import TIMEOUT, RawClient, RedisProcess, error_parts, make_token, served_app, subscribed
from schemas import omni
from tests.fixtures.blog import BlogSite
from tests.functional.test_executions import FINAL, SETTINGS, control, start, started, until_final
from tests.functional.test_investigations import CSV, follow, post, sample_rows
from tests.multi.worker_fixtures import (MARK, QUEUE, WORKER_ENV, Address, QueueView, WorkerProcess, Workers,
                                         all_gone, mark, sweep_now)

CONCURRENCY = 4  # CRAWL_CONCURRENCY's default: the article requests one run holds at the blog at once


@pytest.fixture
async def start_worker() -> AsyncIterator[Callable[..., Awaitable[WorkerProcess]]]:
    """Start `python -m app worker` on a redis-server, ready: `await start_worker(redis_server, **env)`;
    every worker (and whatever it started) is gone after the test."""
    workers = Workers()
    yield workers.start
    await workers.stop()


@pytest.fixture
async def queue_view(redis_server: RedisProcess) -> AsyncIterator[QueueView]:
    """Read the jobs and records in the test's redis-server."""
    client = aioredis.from_url(redis_server.url)
    yield QueueView(client)
    await client.aclose()


async def gateway(start_server: Any, redis_url: str, **overrides: Any) -> Any:
    """An in-process gateway on the queue that runs no job itself, listening on Redis."""
    server = await start_server(**{**SETTINGS, **overrides}, redis_url=redis_url)
    await subscribed(server)
    return server


class Omni:
    """An /omni client on either transport: `send(event, data)`, `recv()` → (event, data)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def send(self, event: str, data: dict[str, Any]) -> None:
        if isinstance(self.client, RawClient):
            await self.client.send({"event": event, "data": data})
        else:
            await self.client.emit(event, data)

    async def recv(self, timeout: float = TIMEOUT) -> tuple[str, Any]:
        if isinstance(self.client, RawClient):
            message = await self.client.recv(timeout)
            return message["event"], message["data"]
        return await self.client.recv(timeout)  # type: ignore[no-any-return]

    async def run(self, url: str) -> list[tuple[str, Any]]:
        """Start an execution and follow it: every execution event up to the final one, schema-checked."""
        await self.send("EXECUCAO_INICIAR", start(url)["data"])
        events: list[tuple[str, Any]] = []
        while not events or events[-1][0] not in FINAL:
            event, data = await self.recv(30.0)
            if event in omni.OUTBOUND and event.startswith(("EXECUCAO", "KEYWORD", "CLUSTER")):
                omni.OUTBOUND[event].model_validate(data)
                events.append((event, data))
        return events


async def connect(transport: str, server: Any, raw_to: Any, sio_to: Any) -> Omni:
    if transport == "raw":
        return Omni(await raw_to(server, "/ws", make_token("alice")))
    client = await sio_to(server, "/omni", auth={"token": make_token("alice")})
    await client.emit("SESSAO_PING", {"request_id": "ready"})
    await client.recv_kind("SESSAO_PONG")
    return Omni(client)


def waited(events: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The run's events but the `na_fila` status a job put on the queue starts with (the one event a queue
    adds), checked: it comes before any progress, with the job's position."""
    waiting = [index for index, (event, data) in enumerate(events)
               if event == "EXECUCAO_STATUS" and data["status"] == "na_fila"]
    assert len(waiting) == 1 and waiting[0] <= 1, events[:3]
    assert events[waiting[0]][1]["posicao"] == 1 and events[waiting[0]][1]["progresso"]["atual"] == 0
    return events[:waiting[0]] + events[waiting[0] + 1:]


def summary(events: list[tuple[str, Any]]) -> dict[str, Any]:
    """What a run looks like to its client, with what varies from run to run (times, order) left out."""
    statuses = [data for event, data in events if event == "EXECUCAO_STATUS"]
    result = dict(events[-1][1]["resultado"])
    del result["tempo_total"]
    return {"kinds": sorted({event for event, _ in events}), "last": events[-1][0],
            "shapes": sorted({(event, tuple(sorted(data))) for event, data in events}),
            "pages": [s["progresso"]["atual"] for s in statuses],
            "statuses": {s["status"] for s in statuses},
            "keywords": sorted(data["keyword"]["termo"] for event, data in events if event == "KEYWORD_ENCONTRADA"),
            "clusters": sum(event == "CLUSTER_FORMADO" for event, _ in events), "result": result}


@pytest.mark.parametrize("transport", ["raw", "socketio"])
async def test_an_execution_on_a_worker_looks_as_it_did_embedded(
        transport: str, start_server: Any, raw_to: Any, sio_to: Any, redis_server: Any, start_worker: Any,
        blog_site: BlogSite) -> None:
    """A run taken by a worker process streams what an embedded run streams, and ends in a download."""
    embedded = await start_server(**SETTINGS)
    before = summary(await (await connect(transport, embedded, raw_to, sio_to)).run(blog_site.url))
    server = await gateway(start_server, redis_server.url)
    await start_worker(redis_server)
    events = waited(await (await connect(transport, server, raw_to, sio_to)).run(blog_site.url))
    after = summary(events)
    assert after == before
    assert after["last"] == "EXECUCAO_CONCLUIDA" and {"KEYWORD_ENCONTRADA", "CLUSTER_FORMADO"} <= set(after["kinds"])
    assert after["pages"] == list(range(1, len(after["pages"]) + 1)) and after["statuses"] == {"em_andamento"}
    done = events[-1][1]
    assert done["download_url"] == str(server.make_url(f"/api/v1/executions/{done['execucao_id']}/download"))
    async with aiohttp.ClientSession() as http:
        async with http.get(done["download_url"], params={"token": make_token("alice")}) as response:
            assert response.status == 200
            assert len((await response.json())["keywords"]) == done["resultado"]["total_keywords"]


async def timed(ws: Any, message: dict[str, Any], answer: str) -> float:
    """Seconds from sending `message` to receiving `answer` (from the process running the job)."""
    sent = time.monotonic()
    await ws.send(message)
    reply = await ws.recv_kind(answer)
    assert reply["data"]["request_id"] == message["data"]["request_id"], reply
    return time.monotonic() - sent


async def test_pause_resume_and_cancel_reach_the_worker_within_a_second(
        start_server: Any, raw_to: Any, redis_server: Any, start_worker: Any, queue_view: QueueView,
        blog_site: BlogSite) -> None:
    """Each control is answered by the worker in under 1 s; paused, no request leaves; cancelled, the job
    ends on the worker and frees the user's slot and the worker's."""
    server = await gateway(start_server, redis_server.url, max_executions_per_user=1)
    await start_worker(redis_server, WORKER_CONCURRENCY="1")
    ws = await raw_to(server, "/ws", make_token("alice"))
    blog_site.hold.clear()
    execution_id = await started(ws, blog_site.url)
    await blog_site.holding(CONCURRENCY)
    took = {"pausar": await timed(ws, control("EXECUCAO_PAUSAR", execution_id, "p"), "EXECUCAO_PAUSADA")}
    before = len(blog_site.requests)
    blog_site.hold.set()
    blog_site.arrived.clear()
    with pytest.raises(TimeoutError):  # an observation window: nothing may arrive while paused
        await asyncio.wait_for(blog_site.arrived.wait(), 1.5)
    assert len(blog_site.requests) == before
    blog_site.hold.clear()
    took["resumir"] = await timed(ws, control("EXECUCAO_RESUMIR", execution_id, "r"), "EXECUCAO_RESUMIDA")
    await asyncio.wait_for(blog_site.arrived.wait(), TIMEOUT)  # it crawls again
    took["cancelar"] = await timed(ws, control("EXECUCAO_CANCELAR", execution_id, "c"), "EXECUCAO_CANCELADA")
    print(f"control round trips through the worker: {took}")
    assert all(seconds < 1.0 for seconds in took.values()), took
    blog_site.hold.set()
    await queue_view.until_job(execution_id, lambda job: job.get("status") == "complete")
    record = await queue_view.record(execution_id)
    assert (record["status"], record["instance"]) == ("cancelada", None)
    second = await started(ws, blog_site.url)  # the user's one slot, and the worker's one, are free again
    events = await until_final(ws)
    assert (events[-1]["event"], events[-1]["data"]["execucao_id"]) == ("EXECUCAO_CONCLUIDA", second)


async def taken_up(ws: RawClient, attempt: int, timeout: float = 30.0) -> None:
    """Wait for the EXECUCAO_STATUS saying the job starts over as attempt `attempt`."""
    try:
        async with asyncio.timeout(timeout):
            while (message := await ws.recv_kind("EXECUCAO_STATUS", timeout))["data"].get("tentativa") != attempt:
                pass
    except TimeoutError:
        raise AssertionError(f"no EXECUCAO_STATUS with tentativa {attempt} within {timeout} s") from None
    assert message["data"]["status"] == "em_andamento", message


async def one_completion(ws: RawClient, redis_url: str, queue_view: QueueView, execution_id: str) -> None:
    """The run ends with EXECUCAO_CONCLUIDA, and no other final event follows once SAQ has completed it."""
    events = await until_final(ws, 60.0)
    assert events[-1]["event"] == "EXECUCAO_CONCLUIDA", events[-1]
    await queue_view.until_job(execution_id, lambda job: job.get("status") == "complete")
    await mark(redis_url, f"execution:{execution_id}")  # it comes after anything the job emitted
    later = []
    while (name := (await ws.recv())["event"]) != MARK:
        later.append(name)
    assert not set(later) & set(FINAL), later


@pytest.mark.timeout(180)
async def test_a_worker_killed_mid_run_hands_the_job_to_the_other(
        start_server: Any, raw_to: Any, redis_server: Any, start_worker: Any, queue_view: QueueView,
        blog_site: BlogSite) -> None:
    """SIGKILL on the worker running a job: the other takes it up within 30 s and the client gets exactly
    one EXECUCAO_CONCLUIDA; the killed worker's extraction processes die with it."""
    server = await gateway(start_server, redis_server.url)
    workers = [await start_worker(redis_server), await start_worker(redis_server)]
    ws = await raw_to(server, "/ws", make_token("alice"))
    blog_site.hold.clear()
    execution_id = await started(ws, blog_site.url)
    await blog_site.holding(CONCURRENCY)
    victim = await queue_view.running(workers, execution_id)
    children = victim.descendants()
    assert children, "the worker has no extraction processes although it analysed pages"
    killed = time.monotonic()
    victim.signal(signal.SIGKILL)
    await victim.exited(TIMEOUT)
    blog_site.hold.set()
    await taken_up(ws, 2)
    moving = time.monotonic() - killed
    print(f"SIGKILL -> job moving again on the other worker: {moving:.1f} s")
    assert moving <= 30.0
    await one_completion(ws, redis_server.url, queue_view, execution_id)
    left = await all_gone(children)
    assert not left, f"the killed worker's processes outlived it: {[(p.pid, p.cmdline()) for p in left]}"


@pytest.mark.timeout(180)
async def test_a_job_swept_at_the_earliest_is_still_finished(
        start_server: Any, raw_to: Any, redis_server: Any, start_worker: Any, queue_view: QueueView,
        blog_site: BlogSite) -> None:
    """A killed worker's job taken back by a sweep just HEARTBEAT seconds after its last beat (the earliest a
    sweep may take it) is taken up and finished: the dead attempt's lease does not refuse the new attempt."""
    server = await gateway(start_server, redis_server.url)
    workers = [await start_worker(redis_server), await start_worker(redis_server)]
    ws = await raw_to(server, "/ws", make_token("alice"))
    blog_site.hold.clear()
    execution_id = await started(ws, blog_site.url)
    await blog_site.holding(CONCURRENCY)
    victim = await queue_view.running(workers, execution_id)
    touched = (await queue_view.job(execution_id))["touched"]
    beat = await queue_view.until_job(execution_id, lambda job: job["touched"] != touched)
    victim.signal(signal.SIGKILL)  # right after a beat (and the lease's renewal that comes with it)
    await queue_view.hold_sweeps()  # the live worker sweeps no sooner than this test
    await victim.exited(TIMEOUT)
    blog_site.hold.set()
    last = max(beat["touched"], (await queue_view.job(execution_id))["touched"])  # a beat may have slipped in
    stuck_at = last / 1000 + HEARTBEAT + 0.1
    await asyncio.sleep(max(0.0, stuck_at - time.time()))  # the time SAQ's rule counts: no beat for HEARTBEAT s
    assert f"saq:job:{QUEUE}:execution:{execution_id}" in await sweep_now(redis_server.url)
    await taken_up(ws, 2)
    await one_completion(ws, redis_server.url, queue_view, execution_id)


async def test_a_gateway_killed_mid_run_changes_nothing_for_the_job(
        start_server: Any, raw_to: Any, redis_server: Any, start_worker: Any, blog_site: BlogSite,
        tmp_path: Path) -> None:
    """The client's gateway is SIGKILLed mid-run; reconnected to another gateway it consults the execution
    and follows it to EXECUCAO_CONCLUIDA."""
    await start_worker(redis_server)
    environ = {name: WORKER_ENV[name] for name in ("ALLOW_PRIVATE_URLS", "RATE_LIMIT_PER_SECOND", "RATE_LIMIT_BURST")}
    async with served_app(tmp_path, REDIS_URL=redis_server.url, **environ) as served:
        first = await raw_to(Address(served.base), "/ws", make_token("alice"))
        blog_site.hold.clear()
        execution_id = await started(first, blog_site.url)
        await blog_site.holding(CONCURRENCY)
        served.proc.kill()
        await asyncio.wait_for(served.proc.wait(), TIMEOUT)
    other = await gateway(start_server, redis_server.url)
    again = await raw_to(other, "/ws", make_token("alice"))
    await again.send({"event": "EXECUCAO_CONSULTAR", "data": {"execucao_id": execution_id}})
    status = await again.recv_kind("EXECUCAO_STATUS")
    while status["data"]["status"] == "na_fila":  # the room's history comes first: the job waited on the queue
        status = await again.recv_kind("EXECUCAO_STATUS")
    assert (status["data"]["execucao_id"], status["data"]["status"]) == (execution_id, "em_andamento")
    blog_site.hold.set()
    done = (await until_final(again))[-1]
    assert done["event"] == "EXECUCAO_CONCLUIDA", done
    async with aiohttp.ClientSession() as http:
        url = other.make_url(yarl.URL(done["data"]["download_url"]).path)
        async with http.get(url, params={"token": make_token("alice")}) as response:
            assert response.status == 200


async def test_a_full_queue_refuses_new_work(start_server: Any, raw_to: Any, redis_server: Any, start_worker: Any,
                                             blog_site: BlogSite) -> None:
    """With MAX_QUEUED_JOBS=1 and no worker, the first run waits (na_fila, posicao 1), the second is refused
    with RATE_LIMIT_ERROR; a worker that arrives runs the first to its end."""
    server = await gateway(start_server, redis_server.url, max_queued_jobs=1)
    ws = await raw_to(server, "/ws", make_token("alice"))
    await ws.send(start(blog_site.url, "first", profundidade=1))
    seen: dict[str, dict[str, Any]] = {}
    while len(seen) < 2:  # the answer and the room's status, in either order
        message = await ws.recv()
        if message["event"] in ("EXECUCAO_INICIADA", "EXECUCAO_STATUS"):
            seen[message["event"]] = message["data"]
    execution_id = seen["EXECUCAO_INICIADA"]["execucao_id"]
    assert seen["EXECUCAO_STATUS"]["execucao_id"] == execution_id
    assert (seen["EXECUCAO_STATUS"]["status"], seen["EXECUCAO_STATUS"]["posicao"]) == ("na_fila", 1)
    await ws.send(start(blog_site.url, "second"))
    code, _, details = error_parts(await ws.recv_kind("ERRO"))
    assert code == "RATE_LIMIT_ERROR" and details == {"limite": 1, "na_fila": 1}, details
    assert blog_site.requests == []
    await start_worker(redis_server)
    events = await until_final(ws)
    assert (events[-1]["event"], events[-1]["data"]["execucao_id"]) == ("EXECUCAO_CONCLUIDA", execution_id)


@pytest.mark.timeout(180)
async def test_a_worker_stopped_mid_run_hands_its_job_back(
        start_server: Any, raw_to: Any, redis_server: Any, start_worker: Any, queue_view: QueueView,
        blog_site: BlogSite) -> None:
    """SIGTERM on the worker running a job: it exits within 30 s, the job goes back on the queue, the other
    worker finishes it, and the client gets exactly one EXECUCAO_CONCLUIDA."""
    server = await gateway(start_server, redis_server.url)
    workers = [await start_worker(redis_server), await start_worker(redis_server)]
    ws = await raw_to(server, "/ws", make_token("alice"))
    blog_site.hold.clear()
    execution_id = await started(ws, blog_site.url)
    await blog_site.holding(CONCURRENCY)
    stopping = await queue_view.running(workers, execution_id)
    children = stopping.descendants()
    stopped = time.monotonic()
    stopping.signal(signal.SIGTERM)
    code = await stopping.exited(30.0)
    print(f"SIGTERM -> worker exited ({code}) in {time.monotonic() - stopped:.1f} s")
    assert code == 0, stopping.output
    blog_site.hold.set()
    await taken_up(ws, 2)
    print(f"SIGTERM -> job moving again on the other worker: {time.monotonic() - stopped:.1f} s")
    await one_completion(ws, redis_server.url, queue_view, execution_id)
    assert not await all_gone(children)


@pytest.mark.timeout(240)
async def test_deploys_do_not_spend_a_jobs_attempts(
        start_server: Any, raw_to: Any, redis_server: Any, start_worker: Any, queue_view: QueueView,
        blog_site: BlogSite) -> None:
    """MAX_ATTEMPTS deploys in a row, each stopping (SIGTERM) the worker that runs the job: every stop is a
    hand-back, not a failure, so the attempt after them still runs (where a death would give the job up)
    and the client gets exactly one EXECUCAO_CONCLUIDA."""
    server = await gateway(start_server, redis_server.url)
    workers = [await start_worker(redis_server)]
    ws = await raw_to(server, "/ws", make_token("alice"))
    blog_site.hold.clear()
    execution_id = await started(ws, blog_site.url)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        workers.append(await start_worker(redis_server))  # the deploy's new worker, then the old one stops
        stopping = await queue_view.running(workers, execution_id)
        stopping.signal(signal.SIGTERM)
        assert await stopping.exited(30.0) == 0, stopping.output
        workers.remove(stopping)
        await taken_up(ws, attempt + 1)
    assert (await queue_view.record(execution_id))["status"] == "em_andamento"
    blog_site.hold.set()
    await one_completion(ws, redis_server.url, queue_view, execution_id)


@pytest.mark.timeout(240)
async def test_a_worker_killed_mid_analysis_hands_the_investigation_to_the_other(
        start_server: Any, raw_to: Any, redis_server: Any, start_worker: Any, queue_view: QueueView) -> None:
    """The same for an investigation: SIGKILL on the worker analysing an upload; the other starts it over,
    saying so (a progress at 0 % naming attempt 2), and its followers get exactly one report_ready."""
    server = await gateway(start_server, redis_server.url)
    workers = [await start_worker(redis_server), await start_worker(redis_server)]
    token = make_token("alice")
    status, created = await post(server, None, token, data=sample_rows(100_000), headers=CSV)
    assert status == 201, created
    key = f"investigation:{created['investigation_id']}"
    ws = await raw_to(server, yarl.URL(created["ws_url"]).path, token)
    await ws.recv_kind("connection")
    deadline = time.monotonic() + 3 * TIMEOUT
    while (job := json.loads(await queue_view.redis.get(f"saq:job:{QUEUE}:{key}") or "{}")).get("status") != "active":
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.05)
    victim = next(worker for worker in workers if job["worker_id"].endswith(f"-{worker.pid}"))
    while (await ws.recv_kind("investigation_progress", 30.0))["data"]["progress"] <= 0:
        pass  # the analysis is under way on the victim
    victim.signal(signal.SIGKILL)
    await victim.exited(TIMEOUT)
    events = await follow(ws, timeout=120)
    assert events[-1]["type"] == "report_ready", events[-1]
    restarts = [e for e in events if e["type"] == "investigation_progress" and "(tentativa 2)" in e["message"]]
    assert len(restarts) == 1 and restarts[0]["progress"] == 0, [e for e in events if "tentativa" in str(e)]
    while json.loads(await queue_view.redis.get(f"saq:job:{QUEUE}:{key}") or "{}").get("status") != "complete":
        await asyncio.sleep(0.05)  # SAQ has completed the job: nothing more can come from it
    await Emitter(queue_view.redis, "socketio", 1000, CODECS).emit(MARK, {}, namespace="/investigations", to=[key])
    later = []
    while (kind := (await ws.recv())["type"]) != MARK:
        later.append(kind)
    assert "report_ready" not in later, later
