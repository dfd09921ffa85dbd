"""Notification preferences across two instances behind one real Redis, and with Redis gone."""
from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import redis.asyncio as aioredis

from app.factory import SIO_KEY
from app.prefs import SAFE_CHOICE, PreferenceStoreError, Reading, RedisPreferenceStore
from conftest import free_port, make_token, subscribed

UNTYPED = {"titulo": "Sem tipo", "mensagem": "nenhuma preferência a filtra"}
NOTICE = {"info": {"tipo": "info", "titulo": "Sistema Atualizado", "mensagem": "Nova versão"},
          "aviso": {"tipo": "aviso", "titulo": "Manutenção", "mensagem": "Hoje às 23h"}}


async def opened(raw_to: Any, server: Any, sub: str) -> Any:
    """A raw /ws connection of `sub`, once the server has finished connecting it (a ping answered)."""
    ws = await raw_to(server, "/ws", make_token(sub))
    await ws.send({"event": "SESSAO_PING", "data": {"request_id": "ready"}})
    assert (await ws.recv())["event"] == "SESSAO_PONG"
    return ws


def configure(tipos: list[str], request_id: str) -> dict[str, Any]:
    """A NOTIFICACAO_CONFIGURAR message."""
    return {"event": "NOTIFICACAO_CONFIGURAR", "data": {"tipos": tipos, "canal": "websocket", "request_id": request_id}}


async def notify(server: Any, room: str | None, *tipos: str) -> None:
    """Emit one NOTIFICACAO_GERAL per tipo from `server`, in order."""
    for tipo in tipos:
        await server.app[SIO_KEY].emit("NOTIFICACAO_GERAL", NOTICE[tipo], room=room, namespace="/omni")


async def test_configuring_on_one_instance_filters_the_other_at_once(pair: Any, raw_to: Any, sio_to: Any) -> None:
    """Alice configures on instance A; her raw and Socket.IO connections on B are filtered from the next emit on."""
    a, b = pair
    on_a = await opened(raw_to, a, "alice")
    on_b = await opened(raw_to, b, "alice")
    io_b = await sio_to(b, "/omni", {"token": make_token("alice")})
    await on_a.send(configure(["aviso"], "cross"))
    assert (await on_a.recv())["data"]["request_id"] == "cross"
    # the change and these emits leave A through one ordered Redis channel: B applies it first
    await notify(a, "user:alice", "info", "aviso")
    await notify(a, None, "info", "aviso")
    for _ in range(2):
        assert (await on_b.recv())["data"] == NOTICE["aviso"]
        assert await io_b.recv() == ("NOTIFICACAO_GERAL", NOTICE["aviso"])
        assert (await on_a.recv())["data"] == NOTICE["aviso"]


async def test_later_connection_on_other_instance_loads_from_redis(
        pair: Any, raw_to: Any, sio_to: Any, redis_server: Any) -> None:
    """Preferences set on A live in Redis, and a connection made later on B, which never saw the user, honours them."""
    a, b = pair
    on_a = await opened(raw_to, a, "carol")
    await on_a.send(configure(["aviso", "erro"], "stored"))
    assert (await on_a.recv())["event"] == "NOTIFICACAO_CONFIGURADA"
    client = aioredis.Redis.from_url(redis_server.url)
    assert sorted(json.loads(await client.get("ponte:prefs:carol"))) == ["aviso", "erro"]
    await client.aclose()
    later_b = await opened(raw_to, b, "carol")
    later_io = await sio_to(b, "/omni", {"token": make_token("carol")})
    await notify(b, None, "info", "aviso")
    assert (await later_b.recv())["data"] == NOTICE["aviso"]
    assert await later_io.recv() == ("NOTIFICACAO_GERAL", NOTICE["aviso"])


async def test_redis_down_admits_no_optional_type_and_refuses_to_configure(
        start_server: Any, raw_to: Any, redis_server: Any, caplog: Any) -> None:
    """With Redis gone, a new connection gets no typed notification, only an untyped one (with a warning), and
    NOTIFICACAO_CONFIGURAR is a SYSTEM_ERROR carrying its request_id."""
    server = await start_server(redis_url=redis_server.url)
    await subscribed(server)
    redis_server.stop()
    caplog.set_level(logging.WARNING, "ponte.prefs")
    ws = await opened(raw_to, server, "dave")
    assert "could not read notification preferences" in caplog.text
    await notify(server, "user:dave", "info")
    await server.app[SIO_KEY].emit("NOTIFICACAO_GERAL", UNTYPED, room="user:dave", namespace="/omni")
    assert (await ws.recv())["data"] == UNTYPED
    await ws.send(configure(["aviso"], "down"))
    message = await ws.recv()
    assert message["event"] == "ERRO" and message["data"]["codigo"] == "SYSTEM_ERROR"
    assert message["data"]["request_id"] == "down"
    assert message["data"]["detalhes"]["motivo"] == "preferences_unavailable"


async def test_redis_store_without_redis() -> None:
    """RedisPreferenceStore answers the safe choice (no type), not known, for a read and raises
    PreferenceStoreError for a write when Redis is unreachable."""
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    store = RedisPreferenceStore(client)
    assert await store.read("alice") == Reading(SAFE_CHOICE, known=False, source="safe") and not SAFE_CHOICE
    with pytest.raises(PreferenceStoreError, match="could not store notification preferences in Redis"):
        await store.set("alice", ["info"])
    assert store.failures == 2
    await client.aclose()


async def test_redis_store_round_trip(redis_server: Any) -> None:
    """Unknown users are None, an empty choice is kept as empty, and malformed stored values read as None."""
    client = aioredis.Redis.from_url(redis_server.url)
    store = RedisPreferenceStore(client)
    assert await store.get("erin") is None
    await store.set("erin", [])
    assert await store.get("erin") == frozenset()
    await store.set("erin", ["info", "erro", "info"])
    assert await store.get("erin") == frozenset({"info", "erro"})
    await client.set("ponte:prefs:erin", "{not json")
    assert await store.get("erin") is None
    await client.aclose()
