"""Results in the database (SQLite, the default): they survive a restart of the process, each user lists
their own past work, old schemas migrate with their rows, and retention purges what is older."""
from __future__ import annotations

import datetime
import subprocess
import sys
import time
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from app import create_app
from app.auth import USER_SCOPES
from app.db import DatabaseStore, open_database
from app.db.migrate import head, upgrade
from app.db.purge import purge
from app.keys import GATEWAY_KEY
from engines.contracts.model import Contract
from conftest import ROOT, create_investigation, make_settings, make_token
from tests.fixtures.blog import BlogSite
from tests.functional.test_executions import SETTINGS, start, until_final

ADMIN = (*USER_SCOPES, "admin")
CONTRACTS = [Contract(f"C-{n}", "MS", "Fornecedor", "Seringa", "saude", 10.0 * n, datetime.date(2025, 1, n + 1),
                      None if n else 2.0) for n in range(3)]


async def run_execution(server: Any, raw_to: Any, url: str, user: str = "alice") -> dict[str, Any]:
    """Run an execution of `url` as `user` to its end: its EXECUCAO_CONCLUIDA."""
    ws = await raw_to(server, "/ws", make_token(user))
    await ws.send(start(url))
    events = await until_final(ws)
    assert events[-1]["event"] == "EXECUCAO_CONCLUIDA", events[-1]
    await ws.ws.close()
    return events[-1]


async def get_json(url: Any, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        return response.status, await response.json()


async def test_an_execution_survives_a_restart(aiohttp_server: Any, raw_to: Any, blog_site: BlogSite) -> None:
    """After the process that ran it stops, a new one on the same database answers EXECUCAO_CONSULTAR with
    the same EXECUCAO_CONCLUIDA and serves its download."""
    first = await aiohttp_server(create_app(make_settings(**SETTINGS)))
    done = await run_execution(first, raw_to, blog_site.url)
    execution_id = done["data"]["execucao_id"]
    await first.close()
    second = await aiohttp_server(create_app(make_settings(**SETTINGS)))
    ws = await raw_to(second, "/ws", make_token("alice"))
    await ws.send({"event": "EXECUCAO_CONSULTAR", "data": {"execucao_id": execution_id}})
    assert (await ws.recv_kind("EXECUCAO_CONCLUIDA"))["data"] == done["data"]
    status, body = await get_json(second.make_url(f"/api/v1/executions/{execution_id}/download"), make_token("alice"))
    assert status == 200 and len(body["keywords"]) == done["data"]["resultado"]["total_keywords"] > 0
    assert len(body["clusters"]) == done["data"]["resultado"]["clusters_formados"]


async def test_an_investigation_report_survives_a_restart(aiohttp_server: Any) -> None:
    """An investigation's report link (with its read key) still opens after the process that made it stopped."""
    first = await aiohttp_server(create_app(make_settings()))
    inv_id = await create_investigation(first, make_token("alice"))
    status, view = await get_json(first.make_url(f"/api/v1/investigations/{inv_id}"), make_token("alice"))
    report_path = "/" + view["report_url"].split("/", 3)[3]
    _, report = await get_json(first.make_url(report_path))
    await first.close()
    second = await aiohttp_server(create_app(make_settings()))
    status, again = await get_json(second.make_url(report_path))
    assert status == 200 and again == report and again["anomalies_total"] >= 1
    status, view_again = await get_json(second.make_url(f"/api/v1/investigations/{inv_id}"), make_token("alice"))
    assert status == 200 and view_again["anomalies"] == view["anomalies"] and view_again["findings"] == view["findings"]


# -- listing: who sees what ------------------------------------------------------------------------

def execution_doc(key: str, owner: str, at: float) -> dict[str, Any]:
    return {"id": key, "owner": owner, "status": "em_andamento", "config": {"blog_url": f"https://{key}.example/"},
            "origin": "", "progress": {"total": 0, "atual": 0, "percentual": 0.0}, "keywords_encontradas": 0,
            "started_at": at, "updated_at": at, "slot": None, "attempt": 1, "instance": None}


def investigation_doc(key: str, owner: str, at: float) -> dict[str, Any]:
    return {"investigation_id": key, "title": key, "query": None, "language": "pt", "creator_sub": owner,
            "creator_session": None, "session_owner": owner, "read_key": "k", "links": {}, "status": "queued",
            "progress": 0.0, "message": "", "records": 3, "source": "upload", "filters": {}, "anomalies": [],
            "anomalies_total": 0, "findings": [], "summary": {}, "report_url": None, "created_at": at,
            "updated_at": at}


KINDS = {"executions": ("execution", execution_doc), "investigations": ("investigation", investigation_doc)}


@pytest.fixture
async def stored(server: Any) -> dict[str, list[str]]:
    """Three executions and three investigations of alice's, one of each of bob's, stored one second apart;
    every id per owner, newest first."""
    records, now = server.app[GATEWAY_KEY].records, time.time()
    ids: dict[str, list[str]] = {"alice": [], "bob": []}
    for index, owner in enumerate(["alice", "bob", "alice", "alice"]):
        key = f"{owner}-{index}"
        for kind, make in KINDS.values():
            await records.put(kind, key, make(key, owner, now - 100 + index))
        ids[owner].insert(0, key)
    return ids


@pytest.mark.parametrize("listing", KINDS)
@pytest.mark.parametrize("who, sees", [("alice", ["alice"]), ("bob", ["bob"]), ("carol", []),
                                       ("admin", ["alice", "bob"])])
async def test_each_user_lists_their_own_work(server: Any, stored: dict[str, list[str]], listing: str, who: str,
                                              sees: list[str]) -> None:
    """The owner sees their own work, newest first; another user sees none of it; an admin sees everyone's."""
    token = make_token("root", scopes=ADMIN) if who == "admin" else make_token(who)
    status, body = await get_json(server.make_url(f"/api/v1/{listing}"), token)
    expected = sorted((key for owner in sees for key in stored[owner]), key=lambda k: -int(k.split("-")[1]))
    assert status == 200 and [item["id"] for item in body["items"]] == expected and body["next_cursor"] is None
    assert all(item["owner"] in sees and item["status"] and item["created_at"].endswith("Z") for item in body["items"])


@pytest.mark.parametrize("listing", KINDS)
async def test_anonymous_callers_are_refused(server: Any, stored: dict[str, list[str]], listing: str) -> None:
    """No token, or a bad one, is 401 with the API's error body, as for every other endpoint."""
    for token in (None, "not-a-token"):
        status, body = await get_json(server.make_url(f"/api/v1/{listing}"), token)
        assert status == 401 and body["error"]["code"] == "AUTHENTICATION_ERROR"


@pytest.mark.parametrize("listing", KINDS)
@pytest.mark.parametrize("who", ["alice", "admin"])
async def test_pages_follow_one_another(server: Any, stored: dict[str, list[str]], listing: str, who: str) -> None:
    """limit and next_cursor walk through the caller's list a page at a time, each item once, the token as
    ?token= too; a cursor never leaks another user's items."""
    token = make_token("root", scopes=ADMIN) if who == "admin" else make_token(who)
    expected = 4 if who == "admin" else 3
    seen, cursor = [], None
    while True:
        url = server.make_url(f"/api/v1/{listing}").with_query(
            {"limit": "2", "token": token, **({"cursor": cursor} if cursor else {})})
        status, body = await get_json(url)
        assert status == 200 and len(body["items"]) <= 2
        seen += [item["id"] for item in body["items"]]
        if (cursor := body["next_cursor"]) is None:
            break
    assert len(seen) == len(set(seen)) == expected
    if who == "alice":
        assert all(key.startswith("alice") for key in seen)


@pytest.mark.parametrize("query, field", [({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"),
                                          ({"limit": "many"}, "limit"), ({"cursor": "forged"}, "cursor")])
async def test_bad_page_parameters_are_400(server: Any, query: dict[str, str], field: str) -> None:
    """A limit outside 1-100 or a cursor this API did not give is 400 naming the parameter."""
    status, body = await get_json(server.make_url("/api/v1/executions").with_query(query), make_token("alice"))
    assert status == 400 and body["error"]["code"] == "VALIDATION_ERROR" and body["error"]["field"] == field


# -- migrations and retention ----------------------------------------------------------------------

async def check_migrations(url: str) -> None:
    """Migrating an empty database reaches the head; a database at 0001 with an execution keeps it, with the
    keyword and cluster counts 0002 added filled in from its rows; one at 0002 with an investigation keeps it,
    and takes its contracts (0003)."""
    database = open_database(url)
    try:
        assert await upgrade(database, "0001") == "0001"
        async with database.connection() as connection:
            await connection.execute(text(
                "INSERT INTO executions (id, owner, status, config, origin, progress, keywords_found, attempt, "
                "extra, final, started_at, created_at, updated_at) VALUES ('exec_old', 'alice', 'concluida', "
                "'{\"blog_url\": \"https://old.example/\"}', '', '{}', 2, 1, '{}', '{\"execucao_id\": \"exec_old\"}', "
                "1, 1, 1)"))
            for position, term in enumerate(["café", "torra"]):
                await connection.execute(text(
                    "INSERT INTO keywords (execution_id, position, termo, frequencia, relevancia, posicao, url) "
                    "VALUES ('exec_old', :position, :term, 3, 0.5, :rank, 'https://old.example/')"),
                    {"position": position, "term": term, "rank": position + 1})
        assert await upgrade(database, "0002") == "0002"
        store = DatabaseStore(database)
        await store.put("investigation", "inv_old", investigation_doc("inv_old", "alice", 1.0))
        assert await upgrade(database) == head() == "0003"
        await store.put_contracts("inv_old", 0, CONTRACTS)
        assert await store.get_contracts("inv_old", 0, 10) == list(CONTRACTS)
        assert (await store.get("investigation", "inv_old") or {})["creator_sub"] == "alice"
        doc = await store.get("execution", "exec_old")
        assert doc is not None and [k["termo"] for k in doc["keywords"]] == ["café", "torra"]
        assert doc["final"] == {"execucao_id": "exec_old"} and doc["config"]["blog_url"] == "https://old.example/"
        async with database.connection() as connection:
            counts = (await connection.execute(text("SELECT keyword_count, cluster_count FROM executions"))).one()
        assert tuple(counts) == (2, 0)
    finally:
        await database.close()


async def test_migrations_from_empty_and_from_the_previous_schema(tmp_path: Any) -> None:
    """On SQLite: empty → head, and 0001 with rows → head with the rows readable."""
    await check_migrations(f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}")


async def test_purge_deletes_what_retention_no_longer_keeps(server: Any, database: str) -> None:
    """RETENTION_*_DAYS: older executions go with their keywords, newer ones and other kinds stay; 0 keeps."""
    records, now = server.app[GATEWAY_KEY].records, time.time()
    old = {**execution_doc("exec_old", "alice", now - 40 * 86400), "status": "concluida", "final": {},
           "keywords": [{"termo": "a", "frequencia": 1, "relevancia": 0.1, "posicao": 1, "url": "u"}], "clusters": []}
    await records.put("execution", "exec_old", old)
    await records.put("execution", "exec_new", execution_doc("exec_new", "alice", now))
    await records.put("investigation", "inv_old", investigation_doc("inv_old", "alice", now - 40 * 86400))
    gone = await purge(server.app[GATEWAY_KEY].services["database"], make_settings(retention_executions_days=30))
    assert gone == {"executions": 1}
    assert await records.get("execution", "exec_old") is None and await records.get("execution", "exec_new")
    assert await records.get("investigation", "inv_old") is not None
    async with server.app[GATEWAY_KEY].services["database"].connection() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM keywords"))).scalar() == 0


def test_migrate_and_purge_commands(database: str) -> None:
    """`python -m app migrate` (Heroku's release phase) says the revision; `python -m app purge` what it
    deleted; neither prints the URL's password."""
    env = {"JWT_SECRET": "s" * 32, "DATABASE_URL": database, "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    migrated = subprocess.run([sys.executable, "-m", "app", "migrate"], env=env, capture_output=True, text=True,
                              timeout=60)
    assert migrated.returncode == 0 and "at revision 0003" in migrated.stdout, migrated.stderr
    purged = subprocess.run([sys.executable, "-m", "app", "purge"], env={**env, "RETENTION_CHAT_DAYS": "7"},
                            capture_output=True, text=True, timeout=60)
    assert purged.returncode == 0 and "purged 0 chat_sessions" in purged.stdout, purged.stderr


async def test_a_database_that_cannot_be_opened_is_a_503_not_a_crash(
        aiohttp_server: Any, raw_to: Any, tmp_path: Any) -> None:
    """A SQLite path that cannot be created: the server still starts and serves realtime traffic; /readyz
    says database down, /metrics `ponte_database_up 0`; listing is 503 and EXECUCAO_CONSULTAR a SYSTEM_ERROR."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    server = await aiohttp_server(create_app(make_settings(database_url=f"sqlite:///{blocker}/sub/ponte.sqlite3")))
    status, body = await get_json(server.make_url("/readyz"))
    assert status == 200 and body["database"] == "down" and body["status"] == "degraded"
    status, body = await get_json(server.make_url("/api/v1/executions"), make_token("alice"))
    assert status == 503 and body["error"]["code"] == "SYSTEM_ERROR"
    async with aiohttp.ClientSession() as http, http.get(server.make_url("/metrics")) as response:
        assert response.status == 200 and "\nponte_database_up 0.0\n" in await response.text()
    ws = await raw_to(server, "/ws", make_token("alice"))
    await ws.send({"event": "SESSAO_PING", "data": {}})
    await ws.recv_kind("SESSAO_PONG")
    await ws.send({"event": "EXECUCAO_CONSULTAR", "data": {"execucao_id": "exec_000000000000"}})
    assert (await ws.recv_kind("ERRO"))["data"]["codigo"] == "SYSTEM_ERROR"
