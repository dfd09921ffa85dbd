"""What operators see: health, readiness, Prometheus metrics, the audit log and the SIGTERM drain."""
from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from yarl import URL

from conftest import TIMEOUT, RawClient, ServedApp, SioClient, create_investigation, make_token, served_app


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text parsed into {(sample name, sorted labels): value}."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def get(server: Any, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(server.make_url(path)) as response:
            return response.status, await response.text()


async def test_health_and_readiness(server: Any) -> None:
    """/healthz says alive; /readyz says ready, with Redis absent when it is not configured and the database up."""
    status, body = await get(server, "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, body = await get(server, "/readyz")
    assert status == 200 and json.loads(body) == {"status": "ready", "redis": "absent", "database": "up"}


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


async def test_audit_line_per_action(server: Any, raw: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Each action and each refused message writes one JSON audit line with the documented fields,
    secrets redacted; routine messages (a ping) write none."""
    token = make_token("auditor")
    caplog.set_level(logging.INFO, logger="ponte.audit")  # python -m app sends it to stdout instead
    ws = await raw("/ws", token)
    await ws.send({"event": "SESSAO_PING", "data": {"request_id": "a0"}})
    await ws.recv_kind("SESSAO_PONG")
    await ws.send({"event": "NOTIFICACAO_CONFIGURAR", "data": {"tipos": ["info"], "request_id": "a1"}})
    await ws.recv_kind("NOTIFICACAO_CONFIGURADA")
    await ws.send({"event": "EXECUCAO_INICIAR", "data": {"blog_url": f"https://x.example/?t={token}",
                                                         "token": token, "request_id": "a2"}})
    await ws.recv_kind("ERRO")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ponte.audit"]
    assert len(lines) == 2
    first, second = lines
    assert set(first) == {"timestamp", "event", "client_id", "user_id", "message", "response_time", "status"}
    assert first["event"] == "websocket_message" and first["user_id"] == "auditor" and first["client_id"]
    assert first["message"] == {"event": "NOTIFICACAO_CONFIGURAR", "data": {"tipos": ["info"], "request_id": "a1"}}
    assert first["status"] == "success" and first["response_time"] >= 0 and first["timestamp"].endswith("Z")
    assert second["status"] == "error" and second["error_code"] == "VALIDATION_ERROR"
    assert token not in json.dumps(lines) and second["message"]["data"]["token"] == "[REDACTED]"


DRAINED = re.compile(r"drained: closed (\d+) raw, (\d+) Socket\.IO \((\d+) polling\) connections in ([\d.]+) s")
RESTARTING = (1012, "server restarting: please reconnect")
DRAIN_LIMIT = 10.0  # seconds from SIGTERM to exit; Heroku allows 30


async def test_sigterm_drains_every_transport_and_exits(tmp_path: Path) -> None:
    """SIGTERM with a raw client on each endpoint and Socket.IO clients over WebSocket, over a pending long
    poll and over a long poll no longer polled: raw clients get 1012, the Socket.IO transports close, the
    listener refuses, one line says what was drained, and the process exits with 0 within 10 s."""
    token = make_token()
    async with served_app(tmp_path) as served, aiohttp.ClientSession() as http, StoppedPoller() as stopped:
        polling = await sio_client(served.base, "polling", token)  # first: by SIGTERM its next poll waits
        websocket = await sio_client(served.base, "websocket", token)
        await stopped.connect(served.base, token)
        raw_closed = [asyncio.create_task(raw.closed(DRAIN_LIMIT)) for raw in await raw_clients(served, http, token)]
        started = time.monotonic()
        served.proc.send_signal(signal.SIGTERM)
        assert await asyncio.gather(*raw_closed) == [RESTARTING] * 3
        assert not await accepts_connections(served.base)
        for client in (polling, websocket):
            await asyncio.wait_for(client.disconnected.wait(), DRAIN_LIMIT)
        await served.read_until("drained:", DRAIN_LIMIT)
        returncode = await asyncio.wait_for(served.proc.wait(), 3 * DRAIN_LIMIT)
        exit_seconds = time.monotonic() - started
        assert await stopped.poll() is None  # its next poll finds no server: the transport is gone
    assert returncode == 0 and exit_seconds < DRAIN_LIMIT, (returncode, exit_seconds, served.output)
    drained = DRAINED.search(served.output)
    assert drained is not None and drained.groups()[:3] == ("3", "3", "2"), served.output
    assert float(drained.group(4)) < DRAIN_LIMIT
    # the pending long poll was answered during the drain (a NOOP: the transport is lost, not closed for
    # good), not left to time out
    assert '"GET /socket.io/" 200' in served.output.split("draining:", 1)[1], served.output


class Address:
    """What conftest's helpers need of a server (`make_url`), for `python -m app` run as a subprocess."""

    def __init__(self, base: str) -> None:
        self.base = base

    def make_url(self, path: str) -> URL:
        return URL(self.base + path)


async def raw_clients(served: ServedApp, http: aiohttp.ClientSession, token: str) -> list[RawClient]:
    """A connected raw client on each endpoint: /ws, a chat session, and an investigation the user created."""
    investigation = await create_investigation(Address(served.base), token)
    omni = RawClient(await http.ws_connect(f"{served.base}/ws?token={token}"))
    await omni.send({"event": "SESSAO_PING", "data": {"request_id": "drain"}})
    await omni.recv_kind("SESSAO_PONG")
    chat = RawClient(await http.ws_connect(f"{served.base}/api/v1/ws/chat/drain?token={token}"))
    follower = RawClient(await http.ws_connect(f"{served.base}/api/v1/ws/investigations/{investigation}?token={token}"))
    for client in (chat, follower):
        await client.recv_kind("connection")
    return [omni, chat, follower]


async def sio_client(base: str, transport: str, token: str) -> SioClient:
    """A python-socketio client on /omni over one transport, connected and answering."""
    client = SioClient("/omni")
    await client.client.connect(base, namespaces=["/omni"], auth={"token": token}, transports=[transport],
                                wait_timeout=TIMEOUT)
    await client.emit("SESSAO_PING", {"request_id": transport})
    await client.recv_kind("SESSAO_PONG")
    return client


class StoppedPoller:
    """An Engine.IO long-polling client that connects /omni, reads the answer, and then stops polling."""

    async def __aenter__(self) -> "StoppedPoller":
        self.http = aiohttp.ClientSession()
        self.url = ""
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.close()

    async def connect(self, base: str, token: str) -> None:
        handshake = f"{base}/socket.io/?EIO=4&transport=polling"
        async with self.http.get(handshake) as response:
            self.url = f"{handshake}&sid={json.loads((await response.text())[1:])['sid']}"
        async with self.http.post(self.url, data="40/omni," + json.dumps({"token": token})) as response:
            assert response.status == 200
        async with self.http.get(self.url) as response:
            assert (await response.text()).startswith('40/omni,{"sid"')

    async def poll(self) -> str | None:
        """One more poll: the packets it got, or None when no server answered."""
        try:
            async with self.http.get(self.url) as response:
                return await response.text()
        except aiohttp.ClientError:
            return None


async def accepts_connections(base: str) -> bool:
    """True when a new connection (not one kept alive) gets an answer."""
    async with aiohttp.ClientSession() as fresh:
        try:
            async with fresh.get(f"{base}/healthz") as response:
                return response.status > 0
        except aiohttp.ClientError:
            return False


async def test_anonymous_actions_are_audited_by_their_own_id(server: Any, raw: Any,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """An anonymous chat client's action is audited under its own anonymous id, not as nobody."""
    caplog.set_level(logging.INFO, logger="ponte.audit")
    ws = await raw("/api/v1/ws/chat/s-audit")
    await ws.send({"type": "subscribe", "data": {"investigation_id": "INV-2026-0000000000000000"}})
    await ws.recv_kind("error")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ponte.audit"]
    actions = [line for line in lines if line["event"] == "websocket_message"]
    assert [line["message"]["event"] for line in actions] == ["subscribe"]
    assert actions[0]["user_id"].startswith("anon:")


@pytest.mark.parametrize("settings_overrides", [{"allow_private_urls": True, "extract_workers": 1}])
async def test_job_metrics_count_an_execution(server: Any, raw: Any, blog_site: Any) -> None:
    """/metrics says how many jobs wait and run, and how long each attempt took, by kind; embedded (no
    Redis) there is no worker count and /readyz does not mention workers."""
    from tests.functional.test_executions import started, until_final
    ws = await raw("/ws", make_token("alice"))
    await started(ws, blog_site.url, profundidade=1)
    assert (await until_final(ws))[-1]["event"] == "EXECUCAO_CONCLUIDA"
    deadline = time.monotonic() + TIMEOUT
    while True:  # the attempt is counted when its job function returns, just after the final event
        values = samples((await get(server, "/metrics"))[1])
        if values.get(("ponte_job_duration_seconds_count", (("kind", "execution"),))) == 1.0:
            break
        assert time.monotonic() < deadline, values
        await asyncio.sleep(0.05)
    assert values[("ponte_jobs_queued", ())] == 0 and values[("ponte_jobs_running", ())] == 0
    assert values[("ponte_job_retries_total", (("kind", "execution"),))] == 0
    assert not any(name == "ponte_workers" for name, _ in values)
    assert "workers" not in json.loads((await get(server, "/readyz"))[1])
