"""Executions across two instances behind one real Redis: follow, control and download from either."""
from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from conftest import error_parts, make_token, subscribed
from tests.fixtures.blog import BlogSite
from tests.functional.test_executions import SETTINGS, control, started, until_final


async def instances(start_server: Any, redis_url: str, count: int = 2) -> list[Any]:
    servers = [await start_server(**SETTINGS, redis_url=redis_url, gateway_workers=2 if i == 0 else 0)
               for i in range(count)]
    await subscribed(*servers)
    return servers


async def test_control_from_another_instance(start_server: Any, raw_to: Any, redis_server: Any,
                                             blog_site: BlogSite) -> None:
    """Started on A, consulted, paused, resumed from B; both clients see the run end."""
    a, b = await instances(start_server, redis_server.url)
    on_a = await raw_to(a, "/ws", make_token("alice"))
    on_b = await raw_to(b, "/ws", make_token("alice"))
    blog_site.hold.clear()
    execution_id = await started(on_a, blog_site.url)
    await on_b.send({"event": "EXECUCAO_CONSULTAR", "data": {"execucao_id": execution_id}})
    assert (await on_b.recv_kind("EXECUCAO_STATUS"))["data"]["execucao_id"] == execution_id
    await on_b.send(control("EXECUCAO_PAUSAR", execution_id, "from_b"))
    paused = await on_b.recv_kind("EXECUCAO_PAUSADA")
    assert paused["data"] == {"execucao_id": execution_id, "status": "pausada", "request_id": "from_b"}
    assert (await on_a.recv_kind("EXECUCAO_PAUSADA"))["data"]["request_id"] == "from_b"
    bob = await raw_to(b, "/ws", make_token("bob"))
    await bob.send(control("EXECUCAO_CANCELAR", execution_id))
    assert error_parts(await bob.recv_kind("ERRO"))[0] == "PERMISSION_ERROR"
    await on_b.send(control("EXECUCAO_RESUMIR", execution_id, "again"))
    await on_b.recv_kind("EXECUCAO_RESUMIDA")
    blog_site.hold.set()
    assert (await until_final(on_b))[-1]["event"] == "EXECUCAO_CONCLUIDA"
    assert (await until_final(on_a))[-1]["event"] == "EXECUCAO_CONCLUIDA"


async def test_results_survive_a_restart(start_server: Any, raw_to: Any, redis_server: Any,
                                         blog_site: BlogSite) -> None:
    """After the instance that ran it is gone, another instance serves the state and the download."""
    (a,) = await instances(start_server, redis_server.url, 1)
    ws = await raw_to(a, "/ws", make_token("alice"))
    execution_id = await started(ws, blog_site.url, profundidade=1)
    done = (await until_final(ws))[-1]
    await a.close()
    (c,) = await instances(start_server, redis_server.url, 1)
    again = await raw_to(c, "/ws", make_token("alice"))
    await again.send({"event": "EXECUCAO_CONSULTAR", "data": {"execucao_id": execution_id}})
    assert (await again.recv_kind("EXECUCAO_CONCLUIDA"))["data"] == done["data"]
    await again.send(control("EXECUCAO_RESUMIR", execution_id))
    assert error_parts(await again.recv_kind("ERRO"))[2]["status_atual"] == "concluida"
    async with aiohttp.ClientSession() as http:
        url = c.make_url(f"/api/v1/executions/{execution_id}/download")
        async with http.get(url, params={"token": make_token("alice")}) as response:
            body = await response.json()
    assert len(body["keywords"]) == done["data"]["resultado"]["total_keywords"]


async def test_readyz_counts_the_workers_alive(start_server: Any, redis_server: Any) -> None:
    """With a queue, /readyz says how many workers are alive (here: the one inside B) and how many jobs wait,
    and /metrics has the same count; read every few seconds, so polled here."""
    a, b = await instances(start_server, redis_server.url)  # A runs a worker in its process; B asks
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(20):
            while True:
                async with http.get(b.make_url("/readyz")) as response:
                    body = await response.json()
                if body.get("workers") == 1:
                    break
                await asyncio.sleep(0.2)
        assert response.status == 200 and body["queued"] == 0 and body["status"] == "ready"
        async with http.get(b.make_url("/metrics")) as response:
            assert "ponte_workers 1.0" in await response.text()
