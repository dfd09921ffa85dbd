"""Results on a real PostgreSQL server: two instances (and Redis) see the same records, they survive a
restart, migrations run from empty and from the previous schema (and twice at once), and a database
stopped mid-run and started again loses nothing."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from app import uploads
from app.db import open_database
from app.db.engine import CONNECT_TIMEOUT, PROBE_EVERY
from app.db.migrate import head, upgrade
from conftest import TIMEOUT, PostgresProcess, create_investigation, empty_database, make_token, subscribed
from app.keys import GATEWAY_KEY
from app.uploads import Upload
from tests.fixtures.blog import BlogSite
from tests.functional.test_investigations import sample_rows
from tests.functional.test_executions import SETTINGS, started, until_final
from tests.functional.test_ops import get, samples
from tests.functional.test_results_db import check_migrations, get_json, investigation_doc, run_execution


async def test_two_instances_see_the_same_records(start_server: Any, raw_to: Any, redis_server: Any,
                                                  blog_site: BlogSite, postgres_url: str) -> None:
    """An execution run through A is consulted, downloaded and listed on B; an investigation created on A
    is read on B: one database behind both."""
    a = await start_server(**SETTINGS, redis_url=redis_server.url, database_url=postgres_url, gateway_workers=1)
    b = await start_server(**SETTINGS, redis_url=redis_server.url, database_url=postgres_url)
    await subscribed(a, b)
    done = await run_execution(a, raw_to, blog_site.url)
    execution_id = done["data"]["execucao_id"]
    on_b = await raw_to(b, "/ws", make_token("alice"))
    await on_b.send({"event": "EXECUCAO_CONSULTAR", "data": {"execucao_id": execution_id}})
    assert (await on_b.recv_kind("EXECUCAO_CONCLUIDA"))["data"] == done["data"]
    status, body = await get_json(b.make_url(f"/api/v1/executions/{execution_id}/download"), make_token("alice"))
    assert status == 200 and len(body["keywords"]) == done["data"]["resultado"]["total_keywords"]
    status, listed = await get_json(b.make_url("/api/v1/executions"), make_token("alice"))
    assert status == 200 and execution_id in [item["id"] for item in listed["items"]]
    inv_id = await create_investigation(a, make_token("alice"))
    status, view = await get_json(b.make_url(f"/api/v1/investigations/{inv_id}"), make_token("alice"))
    assert status == 200 and view["status"] == "completed" and view["anomalies"]


async def test_results_survive_a_restart(aiohttp_server: Any, start_server: Any, raw_to: Any, blog_site: BlogSite,
                                         postgres_url: str) -> None:
    """A new process on the same PostgreSQL database answers for what the stopped one ran."""
    first = await start_server(**SETTINGS, database_url=postgres_url)
    done = await run_execution(first, raw_to, blog_site.url, user="dora")
    inv_id = await create_investigation(first, make_token("dora"))
    await first.close()
    second = await start_server(**SETTINGS, database_url=postgres_url)
    ws = await raw_to(second, "/ws", make_token("dora"))
    await ws.send({"event": "EXECUCAO_CONSULTAR", "data": {"execucao_id": done["data"]["execucao_id"]}})
    assert (await ws.recv_kind("EXECUCAO_CONCLUIDA"))["data"] == done["data"]
    status, view = await get_json(second.make_url(f"/api/v1/investigations/{inv_id}"), make_token("dora"))
    assert status == 200 and view["status"] == "completed"
    status, report = await get_json(second.make_url("/" + view["report_url"].split("/", 3)[3]))
    assert status == 200 and report["anomalies_total"] >= 1


async def test_migrations_on_postgresql(postgres_url: str) -> None:
    """Empty → head and 0001 with rows → head, on PostgreSQL; two processes migrating one empty database at
    once both end at the head (the advisory lock makes the second wait, then find nothing to do)."""
    async with empty_database() as url:
        await check_migrations(url)
    async with empty_database() as url:
        first, second = open_database(url), open_database(url)
        try:
            assert await asyncio.gather(upgrade(first), upgrade(second)) == [head(), head()]
        finally:
            await first.close()
            await second.close()


async def test_a_database_stopped_mid_run_loses_nothing(start_server: Any, raw_to: Any, blog_site: BlogSite,
                                                        postgres_server: PostgresProcess,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """PostgreSQL stops while an execution runs: realtime traffic goes on, /readyz says the database is down,
    consulting a stored execution is a SYSTEM_ERROR, the listing 503; the run's end waits for the database,
    which starts again, and then its result is stored and announced once, and consulted and downloaded."""
    server = await start_server(**SETTINGS, database_url=postgres_server.url)
    earlier = (await run_execution(server, raw_to, blog_site.url))["data"]["execucao_id"]
    ws = await raw_to(server, "/ws", make_token("alice"))
    blog_site.hold.clear()
    running = await started(ws, blog_site.url)
    async with asyncio.timeout(TIMEOUT):  # its job has read its record and runs (a real condition, polled)
        while True:
            await ws.send({"event": "EXECUCAO_CONSULTAR", "data": {"execucao_id": running}})
            if (await ws.recv_kind("EXECUCAO_STATUS"))["data"]["status"] == "em_andamento":
                break
            await asyncio.sleep(0.02)
    postgres_server.stop()
    await ws.send({"event": "SESSAO_PING", "data": {}})
    await ws.recv_kind("SESSAO_PONG")
    status, ready = await get_json(server.make_url("/readyz"))
    assert status == 200 and ready["database"] == "down" and ready["status"] == "degraded"
    await ws.send({"event": "EXECUCAO_CONSULTAR", "data": {"execucao_id": earlier}})
    assert (await ws.recv_kind("ERRO"))["data"]["codigo"] == "SYSTEM_ERROR"
    status, listed = await get_json(server.make_url("/api/v1/executions"), make_token("alice"))
    assert status == 503 and listed["error"]["code"] == "SYSTEM_ERROR"
    blog_site.hold.set()  # the run goes on, to an end it cannot store yet
    async with asyncio.timeout(6 * TIMEOUT):  # its result was refused once (the warning it logs, polled)
        while f"execution {running} not stored yet" not in caplog.text:
            await asyncio.sleep(0.05)
    postgres_server.start()
    events = await until_final(ws, timeout=40)
    assert [e["event"] for e in events].count("EXECUCAO_CONCLUIDA") == 1 and events[-1]["event"] == "EXECUCAO_CONCLUIDA"
    assert events[-1]["data"]["execucao_id"] == running
    await ws.send({"event": "EXECUCAO_CONSULTAR", "data": {"execucao_id": running}})
    assert (await ws.recv_kind("EXECUCAO_CONCLUIDA"))["data"] == events[-1]["data"]
    async with aiohttp.ClientSession() as http:
        url = server.make_url(f"/api/v1/executions/{running}/download")
        async with http.get(url, headers={"Authorization": f"Bearer {make_token('alice')}"}) as response:
            assert response.status == 200 and len((await response.json())["keywords"]) > 0


async def database_up(server: Any, expected: float) -> None:
    """Scrape /metrics until `ponte_database_up` is `expected`: the state is read at most every PROBE_EVERY
    seconds, and a probe of a database that went away may take CONNECT_TIMEOUT."""
    async with asyncio.timeout(PROBE_EVERY + CONNECT_TIMEOUT + TIMEOUT):
        while samples((await get(server, "/metrics"))[1])[("ponte_database_up", ())] != expected:
            await asyncio.sleep(0.2)


async def test_metrics_say_whether_the_database_answers(start_server: Any, postgres_server: PostgresProcess) -> None:
    """`ponte_database_up` on /metrics is 1 while PostgreSQL answers, 0 once it is stopped (the scrape itself
    still answers 200), and 1 again once it is started."""
    server = await start_server(**SETTINGS, database_url=postgres_server.url)
    assert samples((await get(server, "/metrics"))[1])[("ponte_database_up", ())] == 1
    postgres_server.stop()
    await database_up(server, 0)
    status, _ = await get(server, "/metrics")
    assert status == 200
    postgres_server.start()
    await database_up(server, 1)


async def test_contracts_wait_for_a_database_that_stopped(start_server: Any, postgres_server: PostgresProcess,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """PostgreSQL stopped while an upload's contracts are being kept: the batch is asked again until the
    database is back, and then every contract is stored, once and in order."""
    server = await start_server(**SETTINGS, database_url=postgres_server.url)
    records, inv_id = server.app[GATEWAY_KEY].records, "INV-2026-00000000000000E1"
    await records.put("investigation", inv_id, investigation_doc(inv_id, "alice", time.time()))
    found = uploads.contracts(Upload("csv", sample_rows(1200)), 1200)
    postgres_server.stop()
    keeping = asyncio.create_task(uploads.keep(records, inv_id, found))
    async with asyncio.timeout(TIMEOUT):  # its first batch was refused (the warning it logs, polled)
        while "not stored yet" not in caplog.text:
            await asyncio.sleep(0.05)
    postgres_server.start()
    await asyncio.wait_for(keeping, 40)
    assert await uploads.read_back(records, inv_id, 1200) == found
