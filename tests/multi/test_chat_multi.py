"""One chat session with clients on two instances behind one real Redis."""
from __future__ import annotations

from typing import Any

from conftest import error_parts, subscribed
from tests.functional.test_chat import Backend, answer
from tests.functional.test_chat import backend  # noqa: F401 - the local chat backend, a fixture


async def test_one_answer_at_a_time_across_instances(start_server: Any, raw_to: Any, redis_server: Any,
                                                     backend: Backend) -> None:  # noqa: F811
    """A client on B sees the answer asked on A, and cannot start a second one while it streams."""
    a = await start_server(redis_url=redis_server.url, agent_backend_url=backend.url + "/stall", chat_timeout=2.0)
    b = await start_server(redis_url=redis_server.url, agent_backend_url=backend.url + "/stall", chat_timeout=2.0)
    await subscribed(a, b)
    on_a = await raw_to(a, "/api/v1/ws/chat/shared")
    on_b = await raw_to(b, "/api/v1/ws/chat/shared")
    await on_a.recv_kind("connection")
    await on_b.recv_kind("connection")
    await on_a.send({"type": "chat", "data": {"message": "Olá"}})
    assert (await on_b.recv_kind("chat"))["data"] == {"role": "user", "content": "Olá", "chunk": False}
    assert (await on_b.recv_kind("chat"))["data"]["content"] == "Pensando"
    await on_b.send({"type": "chat", "data": {"message": "E agora?"}})
    code, _, details = error_parts(await on_b.recv_kind("error"))
    assert code == "RATE_LIMIT" and details["motivo"] == "answer_in_flight"
    assert error_parts(await on_a.recv_kind("error", timeout=5))[0] == "TIMEOUT"
    assert error_parts(await on_b.recv_kind("error", timeout=5))[0] == "TIMEOUT"  # told on every instance
    backend.release.set()
    await on_b.send({"type": "chat", "data": {"message": "Explique as anomalias"}})
    _, chats = await answer(on_b, True)
    assert chats[-1]["agent_id"] == "anita"
