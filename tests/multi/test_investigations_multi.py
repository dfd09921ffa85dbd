"""Investigations across two instances behind one real Redis, and after a restart; as jobs on the queue."""
from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import aiohttp
import pytest
from yarl import URL

from app.keys import GATEWAY_KEY
from conftest import error_parts, make_token, subscribed
from tests.functional.test_investigation_access import ID
from tests.functional.test_investigations import CSV, SAMPLE, follow, post, sample_rows, until_pong


async def test_created_on_one_instance_followed_and_reported_by_another(
        start_server: Any, raw_to: Any, redis_server: Any) -> None:
    """Created on A, followed live from B by its creator, its report served by B and, after A is gone, by a
    new instance; ids are random, not a counter. B runs the jobs."""
    a = await start_server(redis_url=redis_server.url)
    b = await start_server(redis_url=redis_server.url, gateway_workers=2)
    await subscribed(a, b)
    token = make_token("alice")
    rows = list(csv.DictReader(io.StringIO(SAMPLE)))[:1500]
    status, created = await post(a, rows, token)
    inv_id = created["investigation_id"]
    on_b = await raw_to(b, f"/api/v1/ws/investigations/{inv_id}", token)
    await on_b.recv_kind("connection")
    events = await follow(on_b)
    assert events[-1]["type"] == "report_ready" or events[-1]["status"] == "completed"  # live, or joined late
    await a.close()
    c = await start_server(redis_url=redis_server.url)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        for server in (b, c):
            async with http.get(server.make_url(f"/api/v1/investigations/{inv_id}/report")) as response:
                report = await response.json()
            assert report["investigation_id"] == inv_id
            assert report["anomalies_total"] >= sum(e["type"] == "anomaly_detected" for e in events)
    refused = await raw_to(c, f"/api/v1/ws/investigations/{inv_id}", make_token("bob"))
    assert error_parts(await refused.recv())[0] == "NOT_FOUND"  # another user, on an instance that did not create it
    status, second = await post(b, rows[:10], token)
    assert ID.fullmatch(second["investigation_id"]) and second["investigation_id"] != inv_id


async def test_an_upload_runs_on_a_worker_of_another_instance_as_it_runs_embedded(
        start_server: Any, raw_to: Any, redis_server: Any) -> None:
    """A CSV posted to A, analysed by B's workers: A's follower is sent exactly the events a follower is
    sent when the same upload is analysed inside the server that received it (no Redis); where each joined
    (its snapshot) aside."""
    embedded = await start_server()
    a = await start_server(redis_url=redis_server.url)
    b = await start_server(redis_url=redis_server.url, gateway_workers=2)
    await subscribed(a, b)
    token = make_token("alice")
    streams = []
    for server in (embedded, a):
        status, created = await post(server, None, token, data=sample_rows(1500), headers=CSV)
        assert status == 201 and created["records"] == 1500
        ws = await raw_to(server, URL(created["ws_url"]).path, token)
        await ws.recv_kind("connection")
        streams.append([{k: v for k, v in event.items() if k not in ("investigation_id", "report_url")}
                        for event in await follow(ws) if event.get("update_type") != "snapshot"])
    assert streams[0] == streams[1] and streams[1][-1]["type"] == "report_ready"


async def test_a_full_queue_refuses_new_investigations(start_server: Any, raw_to: Any, redis_server: Any) -> None:
    """With no worker and MAX_QUEUED_JOBS=1, a second upload is refused with 429 RATE_LIMIT_ERROR, and an
    investigation asked for in chat with the chat's RATE_LIMIT error."""
    server = await start_server(redis_url=redis_server.url, max_queued_jobs=1)
    token = make_token("alice")
    assert (await post(server, None, token, data=sample_rows(10), headers=CSV))[0] == 201
    status, refused = await post(server, None, token, data=sample_rows(10), headers=CSV)
    assert status == 429 and refused["error"]["code"] == "RATE_LIMIT_ERROR"
    chat = await raw_to(server, "/api/v1/ws/chat/full-queue")
    await chat.recv_kind("connection")
    await chat.send({"type": "chat", "data": {"message": "Investigar contratos do Ministério da Saúde"}})
    assert error_parts(await chat.recv_kind("error"))[0] == "RATE_LIMIT"


async def test_a_stopped_attempt_hands_back_and_the_next_starts_over(
        start_server: Any, raw_to: Any, redis_server: Any) -> None:
    """No worker takes the queue here: the test runs the job itself, as a worker does. An attempt stopped
    mid-run (a worker's SIGTERM) puts the investigation back to queued and sends no failure; the next
    attempt says it starts over, at 0 %, and ends with one report_ready."""
    server = await start_server(redis_url=redis_server.url)
    token = make_token("alice")
    status, created = await post(server, None, token, data=sample_rows(100_000), headers=CSV)
    inv_id = created["investigation_id"]
    service = server.app[GATEWAY_KEY].services["investigations"]
    ws = await raw_to(server, URL(created["ws_url"]).path, token)
    await ws.recv_kind("connection")
    await ws.snapshot()
    first = asyncio.create_task(service.execute(inv_id, 1))
    assert (await ws.recv_kind("investigation_progress", timeout=30))["data"]["progress"] == 5  # it runs
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    stopped = await service.get(inv_id)
    assert stopped["status"] == "queued" and stopped["progress"] >= 5  # where it was (it may have gone on a step)
    await service.execute(inv_id, 2)
    events = await follow(ws)
    restarts = [e for e in events if e.get("status") == "restarted"]
    assert len(restarts) == 1 and restarts[0]["progress"] == 0 and "tentativa 2" in restarts[0]["message"]
    assert not [e for e in events if e.get("update_type") == "failed"]
    assert [e["type"] for e in events].count("report_ready") == 1 and events[-1]["type"] == "report_ready"
    await service.gave_up(inv_id)
    assert await until_pong(ws) == [] and (await service.get(inv_id))["status"] == "completed"
