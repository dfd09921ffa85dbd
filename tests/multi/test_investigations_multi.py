"""Investigations across two instances behind one real Redis, and after a restart."""
from __future__ import annotations

import csv
import io
from typing import Any

import aiohttp

from conftest import error_parts, make_token, subscribed
from tests.functional.test_investigation_access import ID
from tests.functional.test_investigations import SAMPLE, follow, post


async def test_created_on_one_instance_followed_and_reported_by_another(
        start_server: Any, raw_to: Any, redis_server: Any) -> None:
    """Created on A, followed live from B by its creator, its report served by B and, after A is gone, by a
    new instance; ids are random, not a counter."""
    a = await start_server(redis_url=redis_server.url)
    b = await start_server(redis_url=redis_server.url)
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
