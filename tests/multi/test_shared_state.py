"""State that holds across instances behind one real Redis: chat session ownership and history, the
per-user execution limit, and a session's clients following the investigation its agent started."""
from __future__ import annotations

from typing import Any

from conftest import error_parts, make_token, subscribed
from tests.fixtures.blog import BlogSite
from tests.functional.test_auth import assert_refused, assert_sio_refused
from tests.functional.test_chat import Backend, answer
from tests.functional.test_chat import backend  # noqa: F401 - the local chat backend, a fixture
from tests.functional.test_executions import SETTINGS, control, start, started


async def test_a_session_belongs_to_its_opener_on_every_instance(pair: Any, raw_to: Any, sio_to: Any) -> None:
    """Opened by alice on A: bob is refused on B over both transports; alice is admitted on B."""
    a, b = pair
    opener = await raw_to(a, "/api/v1/ws/chat/private", make_token("alice"))
    await opener.recv_kind("connection")
    await assert_refused(await raw_to(b, "/api/v1/ws/chat/private", make_token("bob")), code="PERMISSION_ERROR")
    assert_sio_refused(await sio_to(b, "/chat", {"token": make_token("bob"), "session_id": "private"}),
                       code="PERMISSION_ERROR")
    again = await raw_to(b, "/api/v1/ws/chat/private", make_token("alice"))
    await again.recv_kind("connection")


async def test_history_reaches_clients_and_agents_on_another_instance(start_server: Any, raw_to: Any,
                                                                      redis_server: Any,
                                                                      backend: Backend) -> None:  # noqa: F811
    """A question answered on A: a client joining on B gets it in `history` after `connection`, and the agent
    answering on B is given it as context."""
    a, b = [await start_server(redis_url=redis_server.url, agent_backend_url=backend.url + "/ndjson")
            for _ in range(2)]
    await subscribed(a, b)
    asker = await raw_to(a, "/api/v1/ws/chat/remembered", make_token("alice"))
    await asker.recv_kind("connection")
    await asker.send({"type": "chat", "data": {"message": "Olá"}})
    _, chats = await answer(asker, True)
    said = [{"role": "user", "content": "Olá"}, {"role": "assistant", "content": chats[-1]["content"]}]
    late = await raw_to(b, "/api/v1/ws/chat/remembered", make_token("alice"))
    assert (await late.recv())["type"] == "connection"
    assert (await late.recv_kind("history"))["data"] == {"session_id": "remembered", "messages": said}
    await late.send({"type": "chat", "data": {"message": "E os contratos?"}})
    await late.recv_kind("chat")
    _, body = backend.requests[-1]
    assert body["message"] == "E os contratos?" and body["history"] == said


async def test_the_execution_limit_per_user_counts_every_instance(start_server: Any, raw_to: Any, redis_server: Any,
                                                                  blog_site: BlogSite) -> None:
    """With one execution per user, alice's run on A refuses her second on B until it is cancelled."""
    a, b = [await start_server(**SETTINGS, redis_url=redis_server.url, max_executions_per_user=1) for _ in range(2)]
    await subscribed(a, b)
    on_a, on_b = await raw_to(a, "/ws", make_token("alice")), await raw_to(b, "/ws", make_token("alice"))
    blog_site.hold.clear()
    try:
        execution_id = await started(on_a, blog_site.url)
        await on_b.send(start(blog_site.url, "second"))
        code, _, details = error_parts(await on_b.recv_kind("ERRO"))
        assert code == "RATE_LIMIT_ERROR" and details == {"limite": 1, "ativas": 1}
        await on_a.send(control("EXECUCAO_CANCELAR", execution_id))
        await on_a.recv_kind("EXECUCAO_CANCELADA")
        other = await started(on_b, blog_site.url)
        await on_b.send(control("EXECUCAO_CANCELAR", other))
        await on_b.recv_kind("EXECUCAO_CANCELADA")
    finally:
        blog_site.hold.set()


async def test_the_sessions_clients_on_every_instance_follow_its_investigation(start_server: Any, raw_to: Any,
                                                                               redis_server: Any) -> None:
    """An investigation an agent starts on A for the session (B runs the jobs): its client on B is put in the
    investigation's room and gets report_ready."""
    a = await start_server(redis_url=redis_server.url)
    b = await start_server(redis_url=redis_server.url, gateway_workers=2)
    await subscribed(a, b)
    asker = await raw_to(a, "/api/v1/ws/chat/walk")
    await asker.recv_kind("connection")
    watcher = await raw_to(b, "/api/v1/ws/chat/walk")
    await watcher.recv_kind("connection")
    await asker.send({"type": "chat", "data": {"message": "Investigar contratos do Ministério da Saúde"}})
    ready = (await asker.recv_kind("report_ready", timeout=20))["data"]
    assert (await watcher.recv_kind("report_ready", timeout=20))["data"] == ready
