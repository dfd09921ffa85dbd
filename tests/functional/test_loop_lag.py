"""The event loop's lag: the probe's arithmetic, and its histogram in /metrics on a real server."""
from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from app.metrics import LOOP_LAG_BUCKETS
from app.sampler import LoopLag

PROBES_AWAITED = 3.0  # seconds the server has to record its first probes (one every 0.1 s)


async def scrape(server: Any) -> dict[str, float]:
    """/metrics as {sample name with its `le` label, if any: value}."""
    async with aiohttp.ClientSession() as session:
        async with session.get(server.make_url("/metrics")) as response:
            text = await response.text()
    return {s.name + (f"{{le={s.labels['le']}}}" if "le" in s.labels else ""): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_p99_of_recent_lags() -> None:
    """The p99 is the nearest-rank 99th percentile of the window's lags; negative lags count as 0."""
    seen: list[float] = []
    probe = LoopLag(seen.append, window=100)
    assert probe.p99() == 0.0
    for n in range(200):  # the first hundred fall out of the window
        probe.record(1.0 if n < 100 else n / 1000)
    probe.record(-0.0002)
    assert len(probe.recent) == 100 and seen[-1] == 0.0
    assert probe.p99() == 0.198


async def test_lag_histogram_records_samples(server: Any) -> None:
    """/metrics has `ponte_event_loop_lag_seconds` with its buckets, and it counts the probe's samples."""
    deadline = asyncio.get_running_loop().time() + PROBES_AWAITED
    values = await scrape(server)
    while values.get("ponte_event_loop_lag_seconds_count", 0) < 2 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
        values = await scrape(server)
    count = values["ponte_event_loop_lag_seconds_count"]
    assert count >= 2
    assert values["ponte_event_loop_lag_seconds_sum"] >= 0
    bounds = [f"ponte_event_loop_lag_seconds_bucket{{le={float(b)}}}" for b in LOOP_LAG_BUCKETS]
    assert all(bound in values for bound in bounds)
    assert values["ponte_event_loop_lag_seconds_bucket{le=+Inf}"] == count
    assert values["ponte_event_loop_lag_p99_seconds"] >= 0
