"""Notification preferences under a burst of 1,000 connections and with Redis gone: a type a user turned
off never reaches them, whatever Redis does (issue 16: never a silent "everything on")."""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any, AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from app.factory import SIO_KEY
from conftest import TIMEOUT, RawClient, make_token, subscribed

BURST = 1000
PUBLISHER = make_token("backend", ("publish",))
NOTICE = {tipo: {"tipo": tipo, "titulo": f"Aviso {tipo}", "mensagem": "Teste"} for tipo in ("info", "aviso")}
END = "TESTE_FIM"  # an event no preference filters, published last: what came before it has come
# What each kind of user configured (None: never configured) and so what they must get.
CHOICES: list[list[str] | None] = [["aviso"], [], None, ["info", "aviso", "erro"]]


def expected(choice: list[str] | None) -> set[str]:
    """The NOTICE types a user with this choice must get."""
    return set(NOTICE) if choice is None else set(NOTICE) & set(choice)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session without aiohttp's 100-connection limit, for a burst of WebSockets."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as client:
        yield client


async def connect(session: aiohttp.ClientSession, server: Any, sub: str) -> RawClient:
    """A raw /ws connection of `sub`, once it is connected (SESSAO_CONECTADA: its preferences are read)."""
    ws = await session.ws_connect(server.make_url("/ws").update_query(token=make_token(sub)),
                                  timeout=aiohttp.ClientWSTimeout(ws_close=TIMEOUT))
    client = RawClient(ws)
    message = json.loads((await ws.receive(timeout=3 * TIMEOUT)).data)
    assert message["event"] == "SESSAO_CONECTADA"
    client.hello = message
    return client


async def publish(session: aiohttp.ClientSession, server: Any, items: list[dict[str, Any]]) -> None:
    """POST /api/v1/publish, 100 items at a time."""
    for start in range(0, len(items), 100):
        async with session.post(server.make_url("/api/v1/publish"), json=items[start:start + 100],
                                headers={"Authorization": f"Bearer {PUBLISHER}"}) as response:
            assert response.status == 202, await response.text()


def to_user(sub: str, data: dict[str, Any], event: str = "NOTIFICACAO_GERAL") -> dict[str, Any]:
    """One item of a publish request, to a user's room on /omni."""
    return {"namespace": "/omni", "user": sub, "event": event, "data": data}


async def received(client: RawClient) -> set[str]:
    """The tipos of the notifications a client got before END."""
    tipos = set()
    while (message := await client.recv(3 * TIMEOUT))["event"] != END:
        tipos.add(message["data"]["tipo"])
    return tipos


async def fallbacks(session: aiohttp.ClientSession, server: Any) -> dict[str, float]:
    """ponte_preference_fallbacks_total by source, from /metrics."""
    async with session.get(server.make_url("/metrics")) as response:
        text = await response.text()
    return {s.labels["source"]: s.value for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == "ponte_preference_fallbacks_total"}


async def test_a_burst_of_connections_honours_every_preference(
        start_server: Any, redis_server: Any, session: aiohttp.ClientSession) -> None:
    """1,000 users with stored preferences connect at once through a small Redis pool that must wait; then
    each is published an `info` and an `aviso`: nobody gets a type they turned off, everybody gets the rest,
    and no preference read fell back."""
    server = await start_server(redis_url=redis_server.url, redis_pool_size=8, max_connections=BURST + 10)
    await subscribed(server)
    choices = {f"burst-{i}": CHOICES[i % len(CHOICES)] for i in range(BURST)}
    store = aioredis.Redis.from_url(redis_server.url)
    await store.mset({f"ponte:prefs:{sub}": json.dumps(choice) for sub, choice in choices.items()
                      if choice is not None})
    await store.aclose()
    clients = await asyncio.gather(*(connect(session, server, sub) for sub in choices))
    await publish(session, server, [to_user(sub, NOTICE[tipo]) for sub in choices for tipo in NOTICE]
                  + [to_user(sub, {}, END) for sub in choices])
    got = await asyncio.gather(*(received(client) for client in clients))
    wrong = {sub: (tipos, choice) for (sub, choice), tipos in zip(choices.items(), got) if tipos != expected(choice)}
    assert not wrong, f"{len(wrong)} users got the wrong types, e.g. {list(wrong.items())[:3]}"
    assert await fallbacks(session, server) == {}


async def test_redis_gone_uses_the_last_preferences_read_here(
        start_server: Any, redis_server: Any, session: aiohttp.ClientSession) -> None:
    """A user whose preferences this instance read once comes back while Redis is down: the value read then
    applies (their "off" holds), and the fallback is counted as `cache`."""
    server = await start_server(redis_url=redis_server.url)
    await subscribed(server)
    first = await connect(session, server, "frank")
    await first.send({"event": "NOTIFICACAO_CONFIGURAR", "data": {"tipos": ["aviso"], "canal": "websocket"}})
    assert (await first.recv())["event"] == "NOTIFICACAO_CONFIGURADA"
    await first.ws.close()
    await gone(server, "frank")
    redis_server.stop()
    again = await connect(session, server, "frank")
    await notify(server, "user:frank", NOTICE["info"], NOTICE["aviso"])
    assert await received(again) == {"aviso"}
    assert await fallbacks(session, server) == {"cache": 1.0}


async def test_redis_gone_applies_the_safe_choice_until_it_answers(
        start_server: Any, redis_server: Any, session: aiohttp.ClientSession) -> None:
    """A user never seen here connects while Redis is down: no optional type reaches them (counted as `safe`);
    once Redis is back (empty: the test's Redis keeps nothing), their preferences are read again and apply
    (none stored now: every type)."""
    server = await start_server(redis_url=redis_server.url)
    await subscribed(server)
    store = aioredis.Redis.from_url(redis_server.url)
    await store.set("ponte:prefs:grace", json.dumps(["info"]))
    await store.aclose()
    redis_server.stop()
    client = await connect(session, server, "grace")
    await notify(server, "user:grace", NOTICE["info"], NOTICE["aviso"])
    assert await received(client) == set()
    assert await fallbacks(session, server) == {"safe": 1.0}
    redis_server.start()
    namespace = server.app[SIO_KEY].namespace_handlers["/omni"]
    async with asyncio.timeout(3 * TIMEOUT):  # read again every REFRESH_EVERY seconds until Redis answers
        while namespace.preferences["grace"] is not None:
            await asyncio.sleep(0.05)
    await notify(server, "user:grace", NOTICE["info"], NOTICE["aviso"])
    assert await received(client) == {"info", "aviso"}


async def notify(server: Any, room: str, *notices: dict[str, Any]) -> None:
    """Emit NOTIFICACAO_GERAL to a room, in order, then END, as a backend in this process would."""
    sio = server.app[SIO_KEY]
    for data in notices:
        await sio.emit("NOTIFICACAO_GERAL", data, room=room, namespace="/omni")
    await sio.emit(END, {}, room=room, namespace="/omni")


async def gone(server: Any, sub: str) -> None:
    """Wait until the server has seen every connection of `sub` close."""
    namespace = server.app[SIO_KEY].namespace_handlers["/omni"]
    deadline = time.monotonic() + TIMEOUT
    while any(client.principal.sub == sub for client in namespace.clients.values()):
        assert time.monotonic() < deadline, f"{sub} still connected"
        await asyncio.sleep(0.01)
