"""Investigations across two instances behind one real Redis, and after a restart."""
from __future__ import annotations

import csv
import datetime
import io
from typing import Any

import aiohttp

from conftest import make_token, subscribed
from tests.functional.test_investigations import SAMPLE, follow, post


async def test_created_on_one_instance_followed_and_reported_by_another(
        start_server: Any, raw_to: Any, redis_server: Any) -> None:
    """Created on A, followed live from B, its report served by B and, after A is gone, by a new instance."""
    a = await start_server(redis_url=redis_server.url)
    b = await start_server(redis_url=redis_server.url)
    await subscribed(a, b)
    token = make_token("alice")
    rows = list(csv.DictReader(io.StringIO(SAMPLE)))[:1500]
    inv_id = f"INV-{datetime.date.today().year}-001"  # the first id of a fresh Redis: followed before it exists
    on_b = await raw_to(b, f"/api/v1/ws/investigations/{inv_id}", make_token("auditor", scopes=("investigations",)))
    await on_b.recv_kind("connection")
    status, created = await post(a, rows, token)
    assert created["investigation_id"] == inv_id
    events = await follow(on_b)
    assert events[-1]["type"] == "report_ready"
    await a.close()
    c = await start_server(redis_url=redis_server.url)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        for server in (b, c):
            async with http.get(server.make_url(f"/api/v1/investigations/{inv_id}/report")) as response:
                report = await response.json()
            assert report["investigation_id"] == inv_id
            assert report["anomalies_total"] == sum(e["type"] == "anomaly_detected" for e in events)
    status, second = await post(b, rows[:10], token)
    assert second["investigation_id"] != inv_id  # ids come from one Redis counter
