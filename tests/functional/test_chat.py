"""Chat with agents: streaming to every client of a session, typing, backends over real HTTP, failures."""
from __future__ import annotations

import asyncio
import json
import re
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from conftest import error_parts, make_token
from schemas import cidadao

WORDS = ["O Cidadão.AI ", "analisa ", "contratos ", "públicos."]


class Backend:
    """A local chat service speaking OpenAI's SSE, plain SSE or NDJSON; it records what it was sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.release = asyncio.Event()
        self.url = ""

    async def openai(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((dict(request.headers), await request.json()))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for word in WORDS:  # split across writes at awkward points
            frame = f"data: {json.dumps({'choices': [{'delta': {'content': word}}]})}\r\n\r\n".encode()
            await response.write(frame[:7])
            await response.write(frame[7:])
        await response.write(b": keep-alive comment\n\ndata: [DONE]\n\n")
        return response

    async def sse(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((dict(request.headers), await request.json()))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for word in WORDS:
            await response.write(f"data: {json.dumps({'content': word})}\n\n".encode())
        return response

    async def ndjson(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((dict(request.headers), await request.json()))
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        for word in WORDS:
            await response.write((json.dumps({"delta": word}) + "\n").encode())
        await response.write(b'{"done": true}\n')
        return response

    async def fail(self, request: web.Request) -> web.Response:
        return web.Response(status=500, text="modelo indisponível")

    async def stall(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: {\"content\": \"Pensando\"}\n\n")
        await self.release.wait()
        return response


@pytest.fixture
async def backend(aiohttp_server: Any) -> AsyncIterator[Backend]:
    chat = Backend()
    app = web.Application()
    for path, handler in (("/v1/chat/completions", chat.openai), ("/sse", chat.sse), ("/ndjson", chat.ndjson),
                          ("/fail", chat.fail), ("/stall", chat.stall)):
        app.router.add_post(path, handler)
    server = await aiohttp_server(app)
    chat.url = str(server.make_url("/")).rstrip("/")
    yield chat
    chat.release.set()


async def answer(client: Any, raw: bool) -> tuple[list[str], list[dict[str, Any]]]:
    """The session traffic a client sees until the completion message: event names and chat payloads."""
    names, chats = [], []
    while True:
        if raw:
            message = await client.recv()
            name, data = message["type"], message["data"]
            cidadao.OUTBOUND[name].model_validate(data)
        else:
            name, data = await client.recv()
        names.append(name)
        if name == "chat":
            chats.append(data)
            if data.get("done"):
                return names, chats
        if name == "error":
            return names, [data]


async def test_two_clients_see_the_same_stream_in_order(raw: Any, sio: Any) -> None:
    """A raw and a Socket.IO client of one session: user message, typing, chunks, then one completion."""
    ws = await raw("/api/v1/ws/chat/s1")
    await ws.recv_kind("connection")
    io = await sio("/chat", auth={"session_id": "s1"})
    await io.recv_kind("connection")
    assert (await ws.recv_kind("presence"))["data"]["action"] == "joined"  # the second client joined
    await ws.send({"type": "chat", "data": {"message": "O que você pode fazer?"}})
    (raw_names, raw_chats), (io_names, io_chats) = await asyncio.gather(answer(ws, True), answer(io, False))
    assert io_chats[0] == {"role": "user", "content": "O que você pode fazer?", "chunk": False}
    assert io_chats[1:] == raw_chats  # the sender does not get its own message back
    assert raw_names[0] == "typing" and io_names.index("typing") < io_names.index("chat", 1)
    chunks, done = raw_chats[:-1], raw_chats[-1]
    assert chunks and all(c["chunk"] is True and c["agent_id"] == "drummond" for c in chunks)
    assert done["chunk"] is False and done["done"] is True and done["content"] == "".join(c["content"] for c in chunks)


@pytest.mark.parametrize("kind", ["llm", "sse", "ndjson"])
async def test_backends_stream_through(start_server: Any, raw_to: Any, backend: Backend, kind: str) -> None:
    """Each external backend's stream reaches the client chunk by chunk, whole in the completion."""
    settings = ({"llm_base_url": backend.url + "/v1", "llm_api_key": "sk-test", "llm_model": "modelo-teste"}
                if kind == "llm" else {"agent_backend_url": f"{backend.url}/{kind}"})
    server = await start_server(**settings)
    ws = await raw_to(server, "/api/v1/ws/chat/s2")
    await ws.recv_kind("connection")
    await ws.send({"type": "chat", "data": {"message": "Olá, quem é você?"}})
    _, chats = await answer(ws, True)
    assert [c["content"] for c in chats[:-1]] == WORDS and chats[-1]["content"] == "".join(WORDS)
    headers, body = backend.requests[-1]
    if kind == "llm":
        assert headers["Authorization"] == "Bearer sk-test" and body["model"] == "modelo-teste" and body["stream"]
        assert body["messages"][0]["role"] == "system" and body["messages"][-1]["content"] == "Olá, quem é você?"
    else:
        assert body["message"] == "Olá, quem é você?" and body["session_id"] == "s2"


async def test_backend_failure_and_timeout_keep_the_session(start_server: Any, raw_to: Any, backend: Backend) -> None:
    """A failing backend gives BACKEND_ERROR, a stalled one TIMEOUT, and the next question is answered."""
    failing = await start_server(agent_backend_url=backend.url + "/fail")
    ws = await raw_to(failing, "/api/v1/ws/chat/s3")
    await ws.send({"type": "chat", "data": {"message": "Olá"}})
    assert error_parts(await ws.recv_kind("error"))[0] == "BACKEND_ERROR"
    await ws.send({"type": "chat", "data": {"message": "Explique as anomalias"}})
    assert (await ws.recv_kind("chat"))["data"]["agent_id"] == "anita"  # built-in agents still answer
    slow = await start_server(agent_backend_url=backend.url + "/stall", chat_timeout=1.0)
    ws = await raw_to(slow, "/api/v1/ws/chat/s4")
    await ws.send({"type": "chat", "data": {"message": "Olá"}})
    assert (await ws.recv_kind("chat"))["data"]["content"] == "Pensando"
    await ws.send({"type": "chat", "data": {"message": "Ainda aí?"}})
    code, _, details = error_parts(await ws.recv_kind("error"))
    assert code == "RATE_LIMIT" and details["motivo"] == "answer_in_flight"
    assert error_parts(await ws.recv_kind("error", timeout=5))[0] == "TIMEOUT"
    await ws.send({"type": "chat", "data": {"message": "Qual o andamento?"}})
    assert (await ws.recv_kind("chat"))["data"]["agent_id"] == "zumbi"


async def test_agents_answer_from_the_session_investigation(raw: Any) -> None:
    """After an investigation, Anita explains its anomalies with numbers and Tiradentes gives the report URL,
    which opens without any header (it carries the investigation's read key)."""
    ws = await raw("/api/v1/ws/chat/s5", make_token("carla"))
    await ws.send({"type": "chat", "data": {"message": "Investigar contratos do Ministério da Educação"}})
    await ws.recv_kind("report_ready", timeout=20)
    await ws.send({"type": "chat", "data": {"message": "Explique as anomalias"}})
    _, chats = await answer(ws, True)
    assert chats[-1]["agent_id"] == "anita" and "R$" in chats[-1]["content"] and "sintéticos" in chats[-1]["content"]
    await ws.send({"type": "chat", "data": {"message": "Resuma o relatório"}})
    _, chats = await answer(ws, True)
    assert chats[-1]["agent_id"] == "tiradentes"
    link = re.search(r"https?://\S+/api/v1/investigations/INV-\S+/report\?key=\S+", chats[-1]["content"])
    assert link, chats[-1]["content"]
    async with aiohttp.ClientSession() as http:
        async with http.get(link.group(0) + "&format=md") as response:
            assert response.status == 200 and "## Anomalias" in await response.text()
