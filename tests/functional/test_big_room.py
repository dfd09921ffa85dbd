"""A fan-out to a big room (DIRECT_MIN members or more here) writes its raw peers from a list kept per room
(app/transport/manager.py `Direct`): the same events, once each and in order, as member by member; the list
follows members who come, go or change their envelope's form, and notification preferences still apply.
The room is python-socketio's room of every connection (`room=None`, what a broadcast goes to)."""
from __future__ import annotations

from typing import Any

import pytest

from app.factory import SIO_KEY
from app.transport.manager import DIRECT_MIN
from conftest import make_token, until

NOTICE = {"tipo": "info", "titulo": "Sistema Atualizado", "mensagem": "Nova versão"}
BIG = "x" * 60000


def notice(n: int, tipo: str = "info") -> dict[str, Any]:
    return {**NOTICE, "tipo": tipo, "titulo": f"n{n}"}


async def ready(client: Any) -> Any:
    """A raw /ws client once the server has connected it (its ping answered)."""
    await client.send({"event": "SESSAO_PING", "data": {"request_id": "ready"}})
    assert (await client.recv_kind("SESSAO_PONG"))["data"]["request_id"] == "ready"
    return client


async def crowd(raw: Any, n: int, prefix: str = "crowd") -> list[Any]:
    """n raw /ws clients, each its own user (the message rate limit is per user)."""
    return [await ready(await raw("/ws", make_token(f"{prefix}{i}"))) for i in range(n)]


async def emit(server: Any, data: dict[str, Any], room: str | None) -> None:
    await server.app[SIO_KEY].emit("NOTIFICACAO_GERAL", data, room=room, namespace="/omni")


async def nothing_more(client: Any) -> None:
    """The next message a raw client gets is the answer to a ping sent now: nothing else was on its way."""
    await client.send({"event": "SESSAO_PING", "data": {"request_id": "end"}})
    message = await client.recv()
    assert message["event"] == "SESSAO_PONG" and message["data"]["request_id"] == "end", message


def listed(server: Any, room: str | None) -> bool:
    """The room's fan-outs went through its `Direct` lists (so this test covers that path)."""
    return ("/omni", room) in server.app[SIO_KEY].manager._direct


async def test_big_room_gets_each_event_once_in_order_on_both_transports(server: Any, raw: Any, sio: Any) -> None:
    raws = await crowd(raw, DIRECT_MIN + 4)
    ios = [await sio("/omni", auth={"token": make_token(f"io{i}")}) for i in range(3)]
    for io in ios:
        await io.emit("SESSAO_PING", {"request_id": "ready"})
        await io.recv_kind("SESSAO_PONG")
    for n in range(5):
        await emit(server, notice(n), None)
    assert listed(server, None)
    for client in raws:
        for n in range(5):
            message = await client.recv()
            assert message["event"] == "NOTIFICACAO_GERAL" and message["data"] == notice(n), message
            assert message["offset"] and message["timestamp"].endswith("Z")
        await nothing_more(client)
    for io in ios:
        for n in range(5):
            assert await io.recv() == ("NOTIFICACAO_GERAL", notice(n))


async def test_the_list_follows_members_who_come_go_and_change_form(server: Any, raw: Any) -> None:
    members = await crowd(raw, DIRECT_MIN + 1)
    await emit(server, notice(0), None)
    assert listed(server, None)
    for client in members:
        assert (await client.recv())["data"] == notice(0)
    # one leaves, one comes, one starts writing the `type` form: the next event follows all three
    leaving, switching = members.pop(), members[0]
    await leaving.ws.close()
    newcomer = await ready(await raw("/ws", make_token("newcomer")))
    await switching.send({"type": "SESSAO_PING", "data": {"request_id": "typed"}})
    assert (await switching.recv_kind("SESSAO_PONG"))["data"]["request_id"] == "typed"
    await emit(server, notice(1), None)
    for client in [*members, newcomer]:
        message = await client.recv()
        assert message["data"] == notice(1), message
        assert ("type" in message and "id" in message) is (client is switching), message
        assert ("event" in message) is (client is not switching), message
    for client in [*members, newcomer]:
        await nothing_more(client)


async def test_preferences_still_apply_in_a_big_room(server: Any, raw: Any) -> None:
    """To everyone (python-socketio's room of all connections): while picky has `info` turned off, an `info`
    notice reaches the crowd and not her; once she turns it back on, it reaches her too."""
    others = await crowd(raw, DIRECT_MIN)
    picky = await ready(await raw("/ws", make_token("picky")))
    await picky.send({"event": "NOTIFICACAO_CONFIGURAR", "data": {"tipos": ["aviso"], "canal": "websocket"}})
    await picky.recv_kind("NOTIFICACAO_CONFIGURADA")
    await emit(server, notice(0, "info"), None)
    await emit(server, notice(1, "aviso"), None)
    assert (await picky.recv())["data"] == notice(1, "aviso")
    await picky.send({"event": "NOTIFICACAO_CONFIGURAR", "data": {"tipos": ["info", "aviso"], "canal": "websocket"}})
    await picky.recv_kind("NOTIFICACAO_CONFIGURADA")
    await emit(server, notice(2, "info"), None)
    assert listed(server, None)  # nobody turns `info` off now: the list is used
    assert (await picky.recv())["data"] == notice(2, "info")
    for client in others:
        assert [(await client.recv())["data"] for _ in range(3)] == [notice(0), notice(1, "aviso"), notice(2)]
        await nothing_more(client)
    await nothing_more(picky)


@pytest.mark.parametrize("settings_overrides", [{"send_queue_limit": 16}])
async def test_slow_member_of_a_listed_room_is_closed(server: Any, raw: Any, settings_overrides: Any) -> None:
    """The list is used from one member here (direct_min 1): a member that does not read is closed with 1008
    once its queue overflows, after what it had read, and a reading member gets every event."""
    server.app[SIO_KEY].manager.direct_min = 1
    slow = await ready(await raw("/ws", make_token("slow")))
    reader = await ready(await raw("/ws", make_token("slow")))
    for n in range(400):  # each once the reader has it: the reader keeps up, the other one reads nothing
        await emit(server, {**NOTICE, "titulo": str(n), "mensagem": BIG}, "user:slow")
        assert (await reader.recv_kind("NOTIFICACAO_GERAL"))["data"]["titulo"] == str(n)
    assert listed(server, "user:slow")
    code, reason = await slow.closed(20)  # after what was buffered before the close frame
    assert code == 1008 and "overflow" in reason
    await nothing_more(reader)


async def test_a_member_whose_queue_drains_is_written_straight_again(server: Any, raw: Any) -> None:
    """A member that stops reading has its events queued (its transport takes the detour past the list's
    writes) and gets them all in order once it reads again; then its transport leaves the detour, and the
    next events reach it straight, once each. When it leaves, nothing of it stays behind."""
    sio = server.app[SIO_KEY]
    sio.manager.direct_min = 1
    lagging = await ready(await raw("/ws", make_token("lag")))
    transport = next(iter(sio.raw_peers.values())).transport
    sent = 0
    while transport not in sio.detour:  # until the kernel's buffers and the transport's are full
        await emit(server, {**NOTICE, "titulo": str(sent), "mensagem": BIG}, "user:lag")
        sent += 1
        assert sent < 400, "the transport never filled"
    assert listed(server, "user:lag")
    for n in range(sent):
        assert (await lagging.recv_kind("NOTIFICACAO_GERAL"))["data"]["titulo"] == str(n)
    await nothing_more(lagging)  # its queue has drained: the pong came after all of it
    assert transport not in sio.detour
    for n in range(3):
        await emit(server, notice(n), "user:lag")
    assert [(await lagging.recv())["data"] for _ in range(3)] == [notice(0), notice(1), notice(2)]
    await nothing_more(lagging)
    await lagging.ws.close()
    await until(lambda: not sio.raw_peers)
    assert not sio.detour


async def test_garbage_and_strangers_leave_a_listed_room_as_it_was(server: Any, raw: Any) -> None:
    """In a listed room, a member sending garbage (bad JSON, an unknown envelope, a binary frame) gets its
    error envelopes and keeps its form; a peer with no token, or a bad one, is refused and never listed.
    The next event reaches every member once, in the documented form."""
    members = await crowd(raw, DIRECT_MIN)
    await emit(server, notice(0), None)
    assert listed(server, None)
    for client in members:
        assert (await client.recv())["data"] == notice(0)
    attacker = members[0]
    for garbage in ("{not json", '{"kind": "x"}', "[]"):
        await attacker.ws.send_str(garbage)
        assert (await attacker.recv_kind("ERRO"))["data"]["codigo"] == "VALIDATION_ERROR"
    await attacker.ws.send_bytes(b"\x00\xff")
    assert (await attacker.recv_kind("ERRO"))["data"]["codigo"] == "VALIDATION_ERROR"
    for token in (None, "not-a-jwt"):
        stranger = await raw("/ws", token)
        code, _ = await stranger.closed()
        assert code == 1008
    sio = server.app[SIO_KEY]
    await until(lambda: len(sio.raw_peers) == DIRECT_MIN)  # the strangers' handlers have ended
    assert not sio.detour  # nobody waits, and the refused left nothing behind
    await emit(server, notice(1), None)
    for client in members:
        message = await client.recv()
        assert message["event"] == "NOTIFICACAO_GERAL" and message["data"] == notice(1), message
        await nothing_more(client)
