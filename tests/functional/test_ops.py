"""What operators see: health, readiness, Prometheus metrics, the audit log and the SIGTERM drain."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from prometheus_client.parser import text_string_to_metric_families

from conftest import SECRET, RawClient, free_port, make_token

ROOT = Path(__file__).resolve().parents[2]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text parsed into {(sample name, sorted labels): value}."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def get(server: Any, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(server.make_url(path)) as response:
            return response.status, await response.text()


async def test_health_and_readiness(server: Any) -> None:
    """/healthz says alive; /readyz says ready, with Redis absent when it is not configured."""
    status, body = await get(server, "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, body = await get(server, "/readyz")
    assert status == 200 and json.loads(body) == {"status": "ready", "redis": "absent"}


async def test_metrics_after_known_traffic(server: Any, raw: Any, sio: Any) -> None:
    """Connections, messages in and out by event, latency, errors and rate-limit hits are counted."""
    ws = await raw("/ws", make_token("alice"))
    io = await sio("/omni", auth={"token": make_token("alice")})
    for n in range(3):
        await ws.send({"event": "SESSAO_PING", "data": {"request_id": str(n)}})
        await ws.recv_kind("SESSAO_PONG")
    await io.emit("SESSAO_PING", {"request_id": "io"})
    await io.recv_kind("SESSAO_PONG")
    await ws.send("not json")
    await ws.recv_kind("ERRO")
    await ws.send({"event": "NO_SUCH_EVENT", "data": {}})
    await ws.recv_kind("ERRO")
    chat = await raw("/api/v1/ws/chat/m1")
    await chat.recv_kind("connection")
    values = samples((await get(server, "/metrics"))[1])
    assert values[("ponte_connections", (("namespace", "/omni"), ("transport", "raw")))] == 1
    assert values[("ponte_connections", (("namespace", "/omni"), ("transport", "socketio")))] == 1
    assert values[("ponte_connections", (("namespace", "/chat"), ("transport", "raw")))] == 1
    assert values[("ponte_messages_in_total", (("event", "SESSAO_PING"), ("namespace", "/omni")))] == 4
    # the invalid text and the unknown event: labelled "other" so that labels stay bounded
    assert values[("ponte_messages_in_total", (("event", "other"), ("namespace", "/omni")))] == 2
    assert values[("ponte_messages_out_total", (("event", "SESSAO_PONG"), ("namespace", "/omni")))] == 4
    assert values[("ponte_errors_total", (("code", "VALIDATION_ERROR"),))] == 2
    assert values[("ponte_handling_seconds_count", (("namespace", "/omni"),))] == 6


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_per_second": 0.5, "rate_limit_burst": 2}])
async def test_rate_limit_hits_are_counted(server: Any, raw: Any, settings_overrides: Any) -> None:
    """Messages over the rate limit show as rate-limit hits."""
    ws = await raw("/ws", make_token())
    for n in range(3):
        await ws.send({"event": "SESSAO_PING", "data": {"request_id": str(n)}})
    await ws.recv_kind("ERRO")
    values = samples((await get(server, "/metrics"))[1])
    assert values[("ponte_rate_limited_total", ())] == 1


async def test_audit_line_per_message(server: Any, raw: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Each client message writes one JSON audit line with the documented fields, secrets redacted."""
    token = make_token("auditor")
    caplog.set_level(logging.INFO, logger="ponte.audit")  # python -m app sends it to stdout instead
    ws = await raw("/ws", token)
    await ws.send({"event": "SESSAO_PING", "data": {"request_id": "a1"}})
    await ws.recv_kind("SESSAO_PONG")
    await ws.send({"event": "EXECUCAO_INICIAR", "data": {"blog_url": f"https://x.example/?t={token}",
                                                         "token": token, "request_id": "a2"}})
    await ws.recv_kind("ERRO")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ponte.audit"]
    assert len(lines) == 2
    first, second = lines
    assert set(first) == {"timestamp", "event", "client_id", "user_id", "message", "response_time", "status"}
    assert first["event"] == "websocket_message" and first["user_id"] == "auditor" and first["client_id"]
    assert first["message"] == {"event": "SESSAO_PING", "data": {"request_id": "a1"}}
    assert first["status"] == "success" and first["response_time"] >= 0 and first["timestamp"].endswith("Z")
    assert second["status"] == "error" and second["error_code"] == "VALIDATION_ERROR"
    assert token not in json.dumps(lines) and second["message"]["data"]["token"] == "[REDACTED]"


def test_sigterm_drains_and_exits() -> None:
    """SIGTERM stops accepting, closes raw clients with 1012 and a reason, disconnects Socket.IO
    clients, and the process exits cleanly well within 30 s."""
    port = free_port()
    env = {**os.environ, "JWT_SECRET": SECRET, "PORT": str(port), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "Running on" in line:
                break
        result = asyncio.run(_drain_scenario(proc, port))
        assert result["raw_close"] == (1012, "server restarting: please reconnect")
        assert result["socketio_disconnected"]
        assert result["refused_after"]
        assert proc.wait(timeout=30) == 0
        assert result["exit_seconds"] < 30
    finally:
        if proc.poll() is None:
            proc.kill()


async def _drain_scenario(proc: subprocess.Popen[str], port: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        ws = RawClient(await session.ws_connect(f"{url}/ws?token={make_token()}"))
        await ws.send({"event": "SESSAO_PING", "data": {"request_id": "x"}})
        await ws.recv_kind("SESSAO_PONG")
        io = socketio.AsyncClient(reconnection=False)
        gone = asyncio.Event()
        io.on("disconnect", lambda *args: gone.set(), namespace="/omni")
        await io.connect(url, namespaces=["/omni"], auth={"token": make_token()}, transports=["websocket"])
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        msg = await ws.ws.receive(timeout=10)
        raw_close = (msg.data, msg.extra)
        await asyncio.wait_for(gone.wait(), 10)
        try:
            await session.ws_connect(f"{url}/ws?token={make_token()}", timeout=aiohttp.ClientWSTimeout(ws_close=2))
            refused = False
        except (aiohttp.ClientError, OSError):
            refused = True
        await asyncio.get_running_loop().run_in_executor(None, proc.wait, 30)
        return {"raw_close": raw_close, "socketio_disconnected": gone.is_set(), "refused_after": refused,
                "exit_seconds": time.monotonic() - started}
