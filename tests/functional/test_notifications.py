"""NOTIFICACAO_CONFIGURAR and the preferences it sets, on raw WebSocket and Socket.IO."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.factory import SIO_KEY
from app.prefs import MemoryPreferenceStore
from conftest import TIMEOUT, make_token
from schemas import omni

NOTICE = {"info": {"tipo": "info", "titulo": "Sistema Atualizado", "mensagem": "Nova versão"},
          "aviso": {"tipo": "aviso", "titulo": "Manutenção", "mensagem": "Hoje às 23h"}}
CONCLUIDA = {"execucao_id": "exec_1", "resultado": {"total_keywords": 156, "clusters_formados": 12,
                                                    "tempo_total": 300, "taxa_sucesso": 0.95}}
ERRO = {"execucao_id": "exec_1", "erro": {"codigo": "TIMEOUT_ERROR", "mensagem": "Timeout ao processar URL"}}


def configure(tipos: list[str], request_id: str = "req_1") -> dict[str, Any]:
    """A NOTIFICACAO_CONFIGURAR message in the documented form."""
    return {"event": "NOTIFICACAO_CONFIGURAR", "data": {"tipos": tipos, "canal": "websocket", "request_id": request_id},
            "timestamp": "2024-12-19T23:00:00Z"}


async def opened(raw: Any, sub: str, **token: Any) -> Any:
    """A raw /ws connection of `sub`, once the server has finished connecting it (a ping answered)."""
    ws = await raw("/ws", make_token(sub, **token))
    await ws.send({"event": "SESSAO_PING", "data": {"request_id": "ready"}})
    assert (await ws.recv())["event"] == "SESSAO_PONG"
    return ws


async def configured(ws: Any, tipos: list[str]) -> None:
    """Configure tipos on a raw connection and wait for the confirmation."""
    await ws.send(configure(tipos, "cfg"))
    assert (await ws.recv())["event"] == "NOTIFICACAO_CONFIGURADA"


async def forgotten(server: Any, sub: str) -> None:
    """Wait until the server has seen every connection of `sub` close (a real condition, polled briefly)."""
    namespace = server.app[SIO_KEY].namespace_handlers["/omni"]
    async with asyncio.timeout(TIMEOUT):
        while any(client.principal.sub == sub for client in namespace.clients.values()):
            await asyncio.sleep(0.01)


async def emit(server: Any, event: str, data: dict[str, Any], room: str | None) -> None:
    """Emit as a backend would, on /omni, to a room or (None) to everyone."""
    await server.app[SIO_KEY].emit(event, data, room=room, namespace="/omni")


async def test_configure_confirms_with_request_id(raw: Any, sio: Any) -> None:
    """NOTIFICACAO_CONFIGURAR is answered with NOTIFICACAO_CONFIGURADA carrying the tipos and request_id."""
    ws = await opened(raw, "alice")
    await ws.send(configure(["execucao_concluida", "erro", "aviso"], "req_123460"))
    message = await ws.recv()
    assert message["event"] == "NOTIFICACAO_CONFIGURADA"
    data = omni.NotificacaoConfigurada.model_validate(message["data"])
    assert data.tipos == ["execucao_concluida", "erro", "aviso"] and data.canal == "websocket"
    assert data.request_id == "req_123460"
    io = await sio("/omni", auth={"token": make_token("bob")})
    await io.emit("NOTIFICACAO_CONFIGURAR", {"tipos": [], "request_id": "s1"})
    answer = omni.NotificacaoConfigurada.model_validate(await io.recv_kind("NOTIFICACAO_CONFIGURADA"))
    assert answer.tipos == [] and answer.request_id == "s1"


async def test_invalid_tipos_is_a_validation_error(raw: Any, server: Any) -> None:
    """An unknown tipo is refused with VALIDATION_ERROR naming data.tipos.<index>, and nothing is stored."""
    ws = await opened(raw, "alice")
    await ws.send(configure(["info", "spam"], "bad"))
    message = await ws.recv()
    assert message["event"] == "ERRO"
    assert message["data"]["codigo"] == "VALIDATION_ERROR" and message["data"]["request_id"] == "bad"
    assert message["data"]["detalhes"]["campo"] == "data.tipos.1"
    await ws.send({"event": "NOTIFICACAO_CONFIGURAR", "data": {"tipos": ["info"], "canal": "email"}})
    assert (await ws.recv())["data"]["detalhes"]["campo"] == "data.canal"
    assert await server.app[SIO_KEY].namespace_handlers["/omni"].gateway.prefs.get("alice") is None


async def test_configure_needs_the_notifications_scope(raw: Any, server: Any) -> None:
    """Without the `notifications` scope the answer is PERMISSION_ERROR, and the user's preferences are untouched."""
    ws = await opened(raw, "alice", scopes=("executions",))
    await ws.send(configure(["erro"], "noscope"))
    message = await ws.recv()
    assert message["event"] == "ERRO" and message["data"]["codigo"] == "PERMISSION_ERROR"
    assert message["data"]["request_id"] == "noscope" and message["data"]["detalhes"]["escopo"] == "notifications"
    await emit(server, "NOTIFICACAO_GERAL", NOTICE["info"], "user:alice")
    assert (await ws.recv())["data"] == NOTICE["info"]


async def test_turned_off_tipo_reaches_neither_of_alices_connections(raw: Any, sio: Any, server: Any) -> None:
    """After alice turns `info` off, an `info` notice to everyone or to user:alice reaches none of her
    raw and Socket.IO connections but reaches bob, while a type she kept reaches her."""
    alice_ws = await opened(raw, "alice")
    alice_io = await sio("/omni", auth={"token": make_token("alice")})
    bob_ws = await opened(raw, "bob")
    await configured(alice_ws, ["aviso", "erro"])
    for room in (None, "user:alice"):
        await emit(server, "NOTIFICACAO_GERAL", NOTICE["info"], room)
        await emit(server, "NOTIFICACAO_GERAL", NOTICE["aviso"], room)
        # the first thing alice receives is the notice she kept: the `info` one never came
        assert (await alice_ws.recv())["data"] == NOTICE["aviso"]
        assert await alice_io.recv() == ("NOTIFICACAO_GERAL", NOTICE["aviso"])
    # bob, who configured nothing, gets both notices sent to everyone (and none of alice's)
    assert (await bob_ws.recv())["data"] == NOTICE["info"]
    assert (await bob_ws.recv())["data"] == NOTICE["aviso"]


async def test_configuring_from_socketio_filters_raw_connection(raw: Any, sio: Any, server: Any) -> None:
    """Preferences set on a Socket.IO connection apply to the same user's raw connection, and can be changed."""
    alice_ws = await opened(raw, "alice")
    alice_io = await sio("/omni", auth={"token": make_token("alice")})
    await alice_io.emit("NOTIFICACAO_CONFIGURAR", {"tipos": ["info"]})
    await alice_io.recv_kind("NOTIFICACAO_CONFIGURADA")
    await emit(server, "NOTIFICACAO_GERAL", NOTICE["aviso"], "user:alice")
    await emit(server, "NOTIFICACAO_GERAL", NOTICE["info"], "user:alice")
    assert (await alice_ws.recv())["data"] == NOTICE["info"]
    await configured(alice_ws, ["aviso"])
    await emit(server, "NOTIFICACAO_GERAL", NOTICE["info"], "user:alice")
    await emit(server, "NOTIFICACAO_GERAL", NOTICE["aviso"], "user:alice")
    assert (await alice_ws.recv())["data"] == NOTICE["aviso"]


async def test_execution_events_follow_preferences(raw: Any, sio: Any, server: Any) -> None:
    """EXECUCAO_CONCLUIDA needs `execucao_concluida` and EXECUCAO_ERRO needs `erro`, on all of alice's connections."""
    alice_ws = await opened(raw, "alice")
    alice_io = await sio("/omni", auth={"token": make_token("alice")})
    await configured(alice_ws, ["erro"])
    await emit(server, "EXECUCAO_CONCLUIDA", CONCLUIDA, "user:alice")
    await emit(server, "EXECUCAO_ERRO", ERRO, "user:alice")
    message = await alice_ws.recv()
    assert message["event"] == "EXECUCAO_ERRO" and message["data"] == ERRO
    assert await alice_io.recv() == ("EXECUCAO_ERRO", ERRO)
    await configured(alice_ws, ["execucao_concluida"])
    await emit(server, "EXECUCAO_ERRO", ERRO, "user:alice")
    await emit(server, "EXECUCAO_CONCLUIDA", CONCLUIDA, "user:alice")
    assert (await alice_ws.recv())["event"] == "EXECUCAO_CONCLUIDA"
    assert await alice_io.recv() == ("EXECUCAO_CONCLUIDA", CONCLUIDA)


async def test_preferences_apply_to_a_later_connection(raw: Any, sio: Any, server: Any) -> None:
    """A connection opened after configuring, even once every earlier connection closed, honours the preferences."""
    first = await opened(raw, "alice")
    await configured(first, ["aviso"])
    await first.ws.close()
    await forgotten(server, "alice")  # so the next connections load them from the store
    later_io = await sio("/omni", auth={"token": make_token("alice")})
    later_ws = await opened(raw, "alice")
    await emit(server, "NOTIFICACAO_GERAL", NOTICE["info"], None)
    await emit(server, "NOTIFICACAO_GERAL", NOTICE["aviso"], None)
    assert (await later_ws.recv())["data"] == NOTICE["aviso"]
    assert await later_io.recv() == ("NOTIFICACAO_GERAL", NOTICE["aviso"])


async def test_cache_holds_only_connected_users(raw: Any, sio: Any, server: Any) -> None:
    """The per-instance cache keeps a user while any connection of theirs remains and drops them with the
    last one; the store keeps their choice."""
    namespace = server.app[SIO_KEY].namespace_handlers["/omni"]
    ws = await opened(raw, "alice")
    io = await sio("/omni", auth={"token": make_token("alice")})
    await configured(ws, ["erro"])
    assert namespace.preferences == {"alice": frozenset({"erro"})}
    await io.client.disconnect()
    await io.disconnected.wait()
    await emit(server, "NOTIFICACAO_GERAL", NOTICE["info"], "user:alice")
    await emit(server, "NOTIFICACAO_GERAL", NOTICE["aviso"], "user:alice")
    await emit(server, "EXECUCAO_ERRO", ERRO, "user:alice")
    assert (await ws.recv())["event"] == "EXECUCAO_ERRO"  # still filtered with one connection left
    await ws.ws.close()
    await forgotten(server, "alice")
    assert namespace.preferences == {} and await namespace.gateway.prefs.get("alice") == frozenset({"erro"})


@pytest.mark.parametrize("settings_overrides", [{"max_connections": 1}])
async def test_refused_connection_is_not_counted(raw: Any, server: Any) -> None:
    """A connection refused as overloaded leaves no trace in the cache once the user's other connection closes."""
    namespace = server.app[SIO_KEY].namespace_handlers["/omni"]
    ws = await opened(raw, "alice")
    refused = await raw("/ws", make_token("alice"))
    assert (await refused.recv())["data"]["detalhes"]["motivo"] == "server_overloaded"
    await refused.closed()
    await ws.ws.close()
    await forgotten(server, "alice")
    assert namespace.preferences == {} and namespace._users == {} and namespace._claims == {}


async def test_memory_store_is_bounded() -> None:
    """The memory store forgets the user who configured longest ago once it holds max_users."""
    store = MemoryPreferenceStore(max_users=2)
    await store.set("a", ["info"])
    await store.set("b", [])
    await store.set("a", ["erro"])  # reconfiguring makes a the newest
    await store.set("c", ["aviso"])
    assert await store.get("b") is None and await store.get("a") == frozenset({"erro"})
    assert await store.get("c") == frozenset({"aviso"}) and len(store) == 2
