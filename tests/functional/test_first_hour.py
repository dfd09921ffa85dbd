"""A new user's first hour, against real servers: a token minted anywhere works without JWT_SECRET, a
refusal says what to do, and the log shows each connection come and go."""
from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio

from conftest import ROOT, SECRET, TIMEOUT, RawClient, SioClient, error_parts, make_token, served_app
from tests.fixtures.blog import BlogSite


async def mint(cwd: Path, ponte_home: Path, sub: str) -> str:
    """`python -m app token --sub SUB` run in `cwd`, without JWT_SECRET, with PONTE_HOME set."""
    env = {**os.environ, "PONTE_HOME": str(ponte_home), "PYTHONPATH": str(ROOT)}
    env.pop("JWT_SECRET", None)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "app", "token", "--sub", sub, cwd=cwd, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 6 * TIMEOUT)
    assert proc.returncode == 0, err.decode()
    return out.decode().strip()


async def pong(base: str, token: str) -> dict[str, Any]:
    """SESSAO_PING on /ws with `token`: the SESSAO_PONG, or the ERRO refusing the token."""
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{base}/ws?token={token}") as ws:
        client = RawClient(ws)
        await client.send({"event": "SESSAO_PING", "data": {"request_id": "first"}})
        while (message := await client.recv())["event"] not in ("SESSAO_PONG", "ERRO"):
            continue
        return message


async def test_development_secret_is_shared_across_directories(tmp_path: Path) -> None:
    """Without JWT_SECRET a server run in one directory accepts a token minted in another (one PONTE_HOME),
    says at start-up where the secret lives, and refuses a token signed elsewhere naming that file."""
    home, a, b = tmp_path / "config", tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    secret_file = str(home / "dev-jwt-secret")
    async with served_app(b, JWT_SECRET="", PONTE_HOME=str(home)) as app:
        assert (await pong(app.base, await mint(a, home, "alice")))["event"] == "SESSAO_PONG"
        refusal = await pong(app.base, make_token("alice", key=SECRET))
        code, message, details = error_parts(refusal)
        assert code == "AUTHENTICATION_ERROR" and "outra chave" in message and secret_file in message
        assert details == {"motivo": "InvalidSignatureError", "segredo_de_desenvolvimento": secret_file}
        io = SioClient("/omni")
        with pytest.raises(socketio.exceptions.ConnectionError):
            await io.client.connect(app.base, namespaces=["/omni"], auth={"token": make_token(key=SECRET)},
                                    transports=["websocket"], wait_timeout=TIMEOUT)
        assert secret_file in io.connect_error["message"]
        assert io.connect_error["data"]["details"]["segredo_de_desenvolvimento"] == secret_file
        await io.client.disconnect()
    secret = Path(secret_file).read_text().strip()
    assert f"development secret in {secret_file}" in app.output and "python -m app token --sub alice" in app.output
    assert secret not in app.output and (Path(secret_file).stat().st_mode & 0o777) == 0o600
    assert list(a.iterdir()) == [] and list(b.iterdir()) == []  # no .ponte/ wherever one happens to stand


async def test_each_connection_logs_one_line_in_and_one_out(tmp_path: Path) -> None:
    """A raw and a Socket.IO client each get one `connection accepted` and one `connection closed` INFO line,
    with namespace, transport, user, close code or reason and duration, and never the token."""
    token = make_token("alice")
    async with served_app(tmp_path) as app:
        async with aiohttp.ClientSession() as http, http.ws_connect(f"{app.base}/ws?token={token}"):
            await app.read_until("connection accepted: /omni raw")  # /ws serves /omni
        await app.read_until("connection closed: /omni raw")
        io = SioClient("/chat")
        await io.client.connect(app.base, namespaces=["/chat"], auth={"session_id": "first-hour"},
                                transports=["websocket"], wait_timeout=TIMEOUT)
        await app.read_until("connection accepted: /chat socketio")
        await io.client.disconnect()
        await app.read_until("connection closed: /chat socketio")
    lines = [line for line in app.output.splitlines() if " ponte.connections: " in line]
    expected = [r"INFO ponte\.connections: connection accepted: /omni raw user=alice$",
                r"INFO ponte\.connections: connection closed: /omni raw user=alice \(close code 1000\) "
                r"after \d+\.\d\ds$",
                r"INFO ponte\.connections: connection accepted: /chat socketio user=anonymous$",
                r"INFO ponte\.connections: connection closed: /chat socketio user=anonymous "
                r"\((client disconnect|transport close)\) after \d+\.\d\ds$"]  # which one arrives first is a race
    assert len(lines) == len(expected) and all(re.search(p, line) for p, line in zip(expected, lines)), lines
    assert token not in app.output and token.rsplit(".", 1)[1] not in app.output


async def test_private_blog_refusal_names_the_setting(start_server: Any, raw_to: Any, blog_site: BlogSite) -> None:
    """Crawling a local blog without ALLOW_PRIVATE_URLS answers VALIDATION_ERROR saying which setting allows it."""
    ws = await raw_to(await start_server(), "/ws", make_token("alice"))
    await ws.send({"event": "EXECUCAO_INICIAR", "data": {"blog_url": blog_site.url, "request_id": "req_1",
                                                         "configuracoes": {"profundidade": 1}}})
    code, message, details = error_parts(await ws.recv_kind("ERRO"))
    assert code == "VALIDATION_ERROR" and details == {"campo": "blog_url", "configuracao": "ALLOW_PRIVATE_URLS"}
    assert "is not public" in message and "set ALLOW_PRIVATE_URLS=true" in message
    assert blog_site.requests == []
