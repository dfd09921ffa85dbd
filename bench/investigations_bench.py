"""Contracts analysed per second (10k and 100k records), and chat chunk latency from backend to client.

    .venv/bin/python bench/investigations_bench.py [--runs 3] [--answers 20] [--chunks 100]

Contracts: the sample generator makes the records; each size is parsed (validated, as an upload is)
and analysed, median of `runs`. Parsing is the baseline: any analysis must at least read its input.

Chat: a local backend streams SSE chunks stamped with their send time (CLOCK_MONOTONIC, shared by
every process of the machine); Ponte (`python -m app` with AGENT_BACKEND_URL) carries them to a raw
WebSocket client and a Socket.IO client of one session. Baseline: the same backend read directly.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

ROOT = os.path.join(os.path.dirname(__file__), "..")
sys.path.insert(0, ROOT)

import aiohttp  # noqa: E402
import socketio  # noqa: E402
from aiohttp import web  # noqa: E402

from engines.contracts.analysis import analyse  # noqa: E402
from engines.contracts.records import parse_csv  # noqa: E402
from engines.contracts.sample import generate  # noqa: E402


def contracts_bench(runs: int) -> None:
    print(f"{'records':>8} {'parse/s':>10} {'analyse/s':>10} {'anomalies':>10}  (medians of {runs} runs)")
    for count in (10_000, 100_000):
        rows, _ = generate(2026, count)
        out = io.StringIO()
        writer = csv.DictWriter(out, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        text = out.getvalue()
        parse, run = [], []
        for _ in range(runs):
            started = time.perf_counter()
            contracts = parse_csv(text, 10_000_000)
            parse.append(time.perf_counter() - started)
            started = time.perf_counter()
            steps = list(analyse(contracts))
            run.append(time.perf_counter() - started)
        found = sum(type(s).__name__ == "Anomaly" for s in steps)
        print(f"{len(contracts):8} {len(contracts) / statistics.median(parse):10,.0f} "
              f"{len(contracts) / statistics.median(run):10,.0f} {found:10}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def backend_app(chunks: int) -> web.Application:
    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for n in range(chunks):
            await response.write(f"data: {json.dumps({'content': f'{time.monotonic():.6f} '})}\n\n".encode())
            await asyncio.sleep(0.005)  # the backend's own pace: a model producing tokens
        return response
    app = web.Application()
    app.router.add_post("/", stream)
    return app


def stamp_latency(content: str, now: float, into: list[float]) -> None:
    into.append((now - float(content)) * 1000)


async def direct(url: str, answers: int) -> list[float]:
    """Baseline: the backend's chunks read by a plain aiohttp client."""
    lat: list[float] = []
    async with aiohttp.ClientSession() as session:
        for _ in range(answers):
            async with session.post(url, json={"message": "x"}) as response:
                async for line in response.content:
                    if line.startswith(b"data: "):
                        stamp_latency(json.loads(line[6:])["content"], time.monotonic(), lat)
    return lat


async def through_ponte(base: str, answers: int) -> tuple[list[float], list[float]]:
    """Chunks received by a raw client and a Socket.IO client of one chat session."""
    raw_lat: list[float] = []
    sio_lat: list[float] = []
    done = asyncio.Queue[str]()
    client = socketio.AsyncClient()

    @client.on("chat", namespace="/chat")  # type: ignore[misc]
    async def on_chat(data: dict[str, Any]) -> None:
        now = time.monotonic()
        if data["chunk"]:
            stamp_latency(data["content"], now, sio_lat)
        elif data.get("done"):
            await done.put("sio")

    await client.connect(base, namespaces=["/chat"], auth={"session_id": "bench"}, transports=["websocket"])
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{base}/api/v1/ws/chat/bench") as ws:
            for _ in range(answers):
                await ws.send_json({"type": "chat", "data": {"message": "Olá"}})
                async for frame in ws:
                    now = time.monotonic()
                    message = json.loads(frame.data)
                    if message["type"] == "chat" and message["data"]["chunk"]:
                        stamp_latency(message["data"]["content"], now, raw_lat)
                    elif message["type"] == "chat" and message["data"].get("done"):
                        break
                await done.get()
    await client.disconnect()
    return raw_lat, sio_lat


async def chat_bench(answers: int, chunks: int) -> None:
    runner = web.AppRunner(backend_app(chunks), access_log=None)
    await runner.setup()
    backend_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", backend_port).start()
    backend = f"http://127.0.0.1:{backend_port}/"
    port = free_port()
    env = {**os.environ, "PORT": str(port), "JWT_SECRET": "bench-secret-0123456789abcdef-012345",
           "AGENT_BACKEND_URL": backend, "AUDIT_LOG": "false", "LOG_LEVEL": "WARNING",
           "RATE_LIMIT_PER_SECOND": "1000", "RATE_LIMIT_BURST": "1000"}
    env.pop("REDIS_URL", None)
    ponte = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_ready(base)
        baseline = await direct(backend, answers)
        raw_lat, sio_lat = await through_ponte(base, answers)
    finally:
        ponte.terminate()
        ponte.wait(10)
        await runner.cleanup()
    print(f"\nchat chunk latency, backend → client ({answers} answers × {chunks} chunks, ms)")
    print(f"{'path':34} {'p50':>7} {'p95':>7} {'p99':>7}")
    for name, lat in (("baseline: backend read directly", baseline), ("ponte → raw WebSocket", raw_lat),
                      ("ponte → Socket.IO", sio_lat)):
        q = statistics.quantiles(lat, n=100, method="inclusive")
        print(f"{name:34} {statistics.median(lat):7.2f} {q[94]:7.2f} {q[98]:7.2f}")


async def wait_ready(base: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("ponte did not start")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--answers", type=int, default=20)
    parser.add_argument("--chunks", type=int, default=100)
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    contracts_bench(args.runs)
    asyncio.run(chat_bench(args.answers, args.chunks))
