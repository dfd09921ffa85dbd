"""Interop: the official JavaScript clients from npm (socket.io-client v4, ws v8), run by Node, against
a real Ponte server. client.mjs prints `READY` and then one JSON line per thing it received."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from app.factory import SIO_KEY
from conftest import make_token
from schemas import cidadao, omni

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
NPM_CI_TIMEOUT = 300.0
CLIENT_TIMEOUT = 25.0  # client.mjs gives up by itself after 15 s


@dataclass
class NodeEnv:
    """What the session found: the node binary, or why the interop tests cannot run."""

    node: str | None = None
    missing: list[str] = field(default_factory=list)
    install_error: str | None = None


@pytest.fixture(scope="session")
def node_env() -> NodeEnv:
    """Find node and npm and run `npm ci` once when the npm packages are not installed yet."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        return NodeEnv(missing=missing)
    env = NodeEnv(node=shutil.which("node"))
    modules = HERE / "node_modules"
    if not ((modules / "socket.io-client" / "package.json").is_file() and (modules / "ws" / "package.json").is_file()):
        try:
            subprocess.run([shutil.which("npm") or "npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True,
                           capture_output=True, text=True, timeout=NPM_CI_TIMEOUT)
        except subprocess.CalledProcessError as exc:
            env.install_error = f"`npm ci` in {HERE} failed ({exc.returncode}):\n{exc.stdout}\n{exc.stderr}"
        except subprocess.TimeoutExpired:
            env.install_error = f"`npm ci` in {HERE} did not finish in {NPM_CI_TIMEOUT:g} s"
    return env


def require_node(env: NodeEnv) -> str:
    """The node binary; fail in CI (CI=true) and skip elsewhere when node or npm is missing."""
    if env.missing:
        what = " and ".join(env.missing)
        if os.environ.get("CI") == "true":
            pytest.fail(f"node is required for the interop tests in CI (CI=true): {what} not found on PATH")
        pytest.skip(f"{what} not found on PATH: install Node.js >= 18 with npm to run the interop tests")
    if env.install_error:
        pytest.fail(env.install_error)
    assert env.node is not None
    return env.node


class NodeClient:
    """client.mjs as a child process, read line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.deadline = time.monotonic() + CLIENT_TIMEOUT
        self.lines: list[str] = []
        assert proc.stderr is not None
        self._stderr = asyncio.ensure_future(proc.stderr.read())

    @classmethod
    async def start(cls, node: str, *args: str) -> "NodeClient":
        proc = await asyncio.create_subprocess_exec(node, "client.mjs", *args, cwd=HERE,
                                                    stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        return cls(proc)

    async def _diagnostics(self) -> str:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
        stderr = (await self._stderr).decode(errors="replace").strip()
        return f"exit {self.proc.returncode}; stdout so far {self.lines!r}; stderr: {stderr or '(empty)'}"

    async def line(self) -> str:
        """The next stdout line; fails the test on EOF or timeout, with the client's stderr."""
        assert self.proc.stdout is not None
        try:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), max(0.01, self.deadline - time.monotonic()))
        except asyncio.TimeoutError:
            pytest.fail(f"client.mjs printed nothing for {CLIENT_TIMEOUT:g} s: {await self._diagnostics()}")
        if not raw:
            pytest.fail(f"client.mjs ended early: {await self._diagnostics()}")
        text = raw.decode().rstrip("\n")
        self.lines.append(text)
        return text

    async def until_ready(self) -> list[dict[str, Any]]:
        """The JSON lines printed before `READY`."""
        before = []
        while (text := await self.line()) != "READY":
            before.append(json.loads(text))
        return before

    async def json_lines(self, count: int) -> list[dict[str, Any]]:
        return [json.loads(await self.line()) for _ in range(count)]

    async def finish(self) -> None:
        """Wait for a clean exit 0 with nothing more on stdout."""
        assert self.proc.stdout is not None
        try:
            rest = await asyncio.wait_for(self.proc.stdout.read(), max(0.01, self.deadline - time.monotonic()))
            code = await asyncio.wait_for(self.proc.wait(), max(0.01, self.deadline - time.monotonic()))
        except asyncio.TimeoutError:
            pytest.fail(f"client.mjs did not exit: {await self._diagnostics()}")
        assert code == 0 and not rest.strip(), f"unexpected end: {rest!r}, {await self._diagnostics()}"

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._stderr.cancel()


async def test_official_clients_receive_one_room_emit(server: Any, node_env: NodeEnv) -> None:
    """One server emit to user:{sub} reaches a socket.io-client on /omni and a ws client on /ws, and a
    socket.io-client without a token is refused with AUTHENTICATION_ERROR."""
    node = require_node(node_env)
    token = make_token("alice")
    client = await NodeClient.start(node, str(server.make_url("/")), token)
    try:
        received = await client.until_ready()
        payload = {"tipo": "info", "titulo": "Interop", "mensagem": "Olá do servidor: ação concluída ✓"}
        await server.app[SIO_KEY].emit("NOTIFICACAO_GERAL", payload, room="user:alice", namespace="/omni")
        received += await client.json_lines(3 - len(received))
        await client.finish()
    finally:
        await client.close()

    by_client = {line["client"]: line for line in received}
    assert sorted(by_client) == ["socket.io", "socket.io-refused", "ws"], received
    assert by_client["socket.io"]["data"] == payload
    envelope = by_client["ws"]["envelope"]
    assert set(envelope) == {"event", "data", "timestamp", "offset"}, envelope  # offset: a room's event
    assert envelope["event"] == "NOTIFICACAO_GERAL" and envelope["data"] == payload
    assert isinstance(envelope["timestamp"], str) and envelope["timestamp"].endswith("Z")
    omni.EventEnvelope.model_validate(envelope)
    omni.NotificacaoGeral.model_validate(envelope["data"])
    refused = by_client["socket.io-refused"]
    assert refused["data"]["code"] == "AUTHENTICATION_ERROR", refused
    assert isinstance(refused["message"], str) and refused["message"], refused


async def test_typing_crosses_transports_between_official_clients(server: Any, node_env: NodeEnv) -> None:
    """A ws client's raw `typing` in chat session s1 reaches an anonymous socket.io-client in /chat, and
    that client's `typing` reaches the ws client."""
    node = require_node(node_env)
    client = await NodeClient.start(node, str(server.make_url("/")), "-", "chat", "s1")
    try:
        welcomed = await client.until_ready()
        typed = await client.json_lines(2)
        await client.finish()
    finally:
        await client.close()

    assert sorted(line["client"] for line in welcomed) == ["socket.io", "ws"], welcomed
    for line in welcomed:
        data = line["data"] if line["client"] == "socket.io" else line["envelope"]["data"]
        assert cidadao.Connection.model_validate(data).session_id == "s1"
    sio_line, ws_line = typed
    assert sio_line == {"client": "socket.io", "event": "typing",
                        "data": {"agent": None, "session_id": "s1", "is_typing": True}}, typed
    assert ws_line["client"] == "ws", typed
    envelope = cidadao.Envelope.model_validate(ws_line["envelope"])
    assert envelope.type == "typing" and envelope.id and envelope.timestamp and envelope.timestamp.endswith("Z")
    assert envelope.data == {"agent": "socket.io-client", "session_id": "s1", "is_typing": True}
