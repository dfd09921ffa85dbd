"""Keyword executions end to end: a real server crawls the fixture blog, clients watch over both transports."""
from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import aiohttp
import pytest

from app.keys import GATEWAY_KEY
from conftest import error_parts, make_token
from schemas import omni
from tests.fixtures.blog import EXPECTED, BlogSite

SETTINGS = {"allow_private_urls": True, "extract_workers": 1, "rate_limit_per_second": 100.0,
            "rate_limit_burst": 100}
FINAL = ("EXECUCAO_CONCLUIDA", "EXECUCAO_ERRO", "EXECUCAO_CANCELADA")


def start(url: str, request_id: str = "req_1", **config: Any) -> dict[str, Any]:
    """An EXECUCAO_INICIAR message in the documented form."""
    settings = {"max_keywords": 50, "profundidade": 2, "timeout": 1, **config}
    return {"event": "EXECUCAO_INICIAR", "data": {"blog_url": url, "configuracoes": settings, "request_id": request_id}}


def control(event: str, execution_id: str, request_id: str = "req_2") -> dict[str, Any]:
    return {"event": event, "data": {"execucao_id": execution_id, "request_id": request_id}}


async def started(ws: Any, url: str, **config: Any) -> str:
    """Start an execution and return its id, checking EXECUCAO_INICIADA."""
    await ws.send(start(url, **config))
    answer = await ws.recv_kind("EXECUCAO_INICIADA")
    assert answer["data"]["status"] == "iniciada" and answer["data"]["request_id"] == "req_1"
    return str(answer["data"]["execucao_id"])


async def until_final(ws: Any, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every execution event up to and including the final one, each checked against its schema."""
    events = []
    while True:
        message = await ws.recv(timeout)
        name = message["event"]
        if name in omni.OUTBOUND and name.startswith(("EXECUCAO", "KEYWORD", "CLUSTER")):
            omni.OUTBOUND[name].model_validate(message["data"])
            events.append(message)
            if name in FINAL:
                return events


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return SETTINGS


async def test_an_execution_runs_to_a_download(server: Any, raw: Any, blog_site: BlogSite) -> None:
    """Status, keywords and clusters stream in, the run completes, and the owner's download matches the events."""
    ws = await raw("/ws", make_token("alice"))
    execution_id = await started(ws, blog_site.url)
    events = await until_final(ws)
    names = [e["event"] for e in events]
    assert names[-1] == "EXECUCAO_CONCLUIDA" and "KEYWORD_ENCONTRADA" in names and "CLUSTER_FORMADO" in names
    statuses = [e["data"] for e in events if e["event"] == "EXECUCAO_STATUS"]
    assert [s["progresso"]["atual"] for s in statuses] == list(range(1, len(statuses) + 1))
    assert all(s["status"] == "em_andamento" for s in statuses)
    done = events[-1]["data"]
    assert 0 < done["resultado"]["taxa_sucesso"] < 1  # the broken and slow pages lower it
    announced = {e["data"]["keyword"]["termo"] for e in events if e["event"] == "KEYWORD_ENCONTRADA"}
    async with aiohttp.ClientSession() as http:
        url = done["download_url"]
        assert url == str(server.make_url(f"/api/v1/executions/{execution_id}/download"))
        async with http.get(url, headers={"Authorization": f"Bearer {make_token('alice')}"}) as response:
            assert response.status == 200
            body = await response.json()
        async with http.get(url, params={"format": "csv", "token": make_token("alice")}) as response:
            rows = list(csv.DictReader(io.StringIO(await response.text())))
        async with http.get(url, params={"token": make_token("bob")}) as other, http.get(url) as anonymous:
            assert (other.status, anonymous.status) == (403, 401)
    terms = [k["termo"] for k in body["keywords"]]
    assert len(terms) == done["resultado"]["total_keywords"] and set(terms) <= announced
    assert [r["termo"] for r in rows] == terms and [int(r["posicao"]) for r in rows] == list(range(1, len(rows) + 1))
    assert len(body["clusters"]) == done["resultado"]["clusters_formados"]
    for topic, expected in EXPECTED.items():
        found = [term for term in expected if term in terms]
        assert len(found) >= 2, (topic, terms)
        clusters = {k["cluster_id"] for k in body["keywords"] if k["termo"] in found}
        assert len(clusters) == 1 and None not in clusters, (topic, body["clusters"])
    assert terms.index("café especial") < 15 and terms.index("energia solar") < 15


async def test_socketio_and_raw_clients_see_the_same_events(server: Any, raw: Any, sio: Any,
                                                            blog_site: BlogSite) -> None:
    """The owner's Socket.IO connection follows the execution started on raw, event for event."""
    ws = await raw("/ws", make_token("alice"))
    watcher = await sio("/omni", auth={"token": make_token("alice")})
    await watcher.emit("SESSAO_PING", {"request_id": "ready"})
    await watcher.recv_kind("SESSAO_PONG")
    await started(ws, blog_site.url, profundidade=1)
    raw_events = [(e["event"], e["data"]) for e in await until_final(ws)]
    sio_events = []
    while not sio_events or sio_events[-1][0] not in FINAL:
        sio_events.append(await watcher.recv(10))
    assert sio_events == raw_events


async def test_pause_stops_requests_and_resume_finishes(server: Any, raw: Any, blog_site: BlogSite) -> None:
    """No request reaches the site while paused; resume picks up where it stopped."""
    ws = await raw("/ws", make_token("alice"))
    blog_site.hold.clear()
    execution_id = await started(ws, blog_site.url)
    await blog_site.holding(server.app[GATEWAY_KEY].settings.crawl_concurrency)
    await ws.send(control("EXECUCAO_PAUSAR", execution_id))
    paused = await ws.recv_kind("EXECUCAO_PAUSADA")
    assert paused["data"] == {"execucao_id": execution_id, "status": "pausada", "request_id": "req_2"}
    before = len(blog_site.requests)
    blog_site.hold.set()
    blog_site.arrived.clear()
    with pytest.raises(TimeoutError):  # an observation window: nothing may arrive while paused
        await asyncio.wait_for(blog_site.arrived.wait(), 1.5)
    assert len(blog_site.requests) == before, (before, blog_site.requests)
    await ws.send(control("EXECUCAO_PAUSAR", execution_id, "req_3"))
    code, _, details = error_parts(await ws.recv_kind("ERRO"))
    assert code == "VALIDATION_ERROR" and details["status_atual"] == "pausada"
    await ws.send(control("EXECUCAO_RESUMIR", execution_id, "req_4"))
    assert (await ws.recv_kind("EXECUCAO_RESUMIDA"))["data"]["status"] == "em_andamento"
    events = await until_final(ws)
    assert events[-1]["event"] == "EXECUCAO_CONCLUIDA" and len(blog_site.requests) > before
    await ws.send(control("EXECUCAO_RESUMIR", execution_id, "req_5"))
    code, message, details = error_parts(await ws.recv_kind("ERRO"))
    assert code == "VALIDATION_ERROR" and details["status_atual"] == "concluida" and "concluida" in message


async def test_cancel_releases_everything(server: Any, raw: Any, blog_site: BlogSite) -> None:
    """Cancel answers EXECUCAO_CANCELADA, stops the run and the site sees no further request."""
    ws = await raw("/ws", make_token("alice"))
    blog_site.hold.clear()
    execution_id = await started(ws, blog_site.url)
    # every request the crawl may have in flight is held at the site: none is on its way when it is cancelled
    await blog_site.holding(server.app[GATEWAY_KEY].settings.crawl_concurrency)
    await ws.send(control("EXECUCAO_CANCELAR", execution_id))
    assert (await ws.recv_kind("EXECUCAO_CANCELADA"))["data"]["status"] == "cancelada"
    service = server.app[GATEWAY_KEY].services["executions"]
    assert service.active() == 0
    before = len(blog_site.requests)
    blog_site.hold.set()
    await ws.send({"event": "EXECUCAO_CONSULTAR", "data": {"execucao_id": execution_id}})
    status = await ws.recv_kind("EXECUCAO_STATUS")
    assert status["data"]["status"] == "cancelada" and len(blog_site.requests) == before
    await ws.send(control("EXECUCAO_CANCELAR", execution_id, "req_3"))
    assert error_parts(await ws.recv_kind("ERRO"))[2]["status_atual"] == "cancelada"


async def test_only_the_owner_controls(server: Any, raw: Any, blog_site: BlogSite) -> None:
    """Another user gets PERMISSION_ERROR, an unknown id VALIDATION_ERROR, an admin may act."""
    alice, bob = await raw("/ws", make_token("alice")), await raw("/ws", make_token("bob"))
    admin = await raw("/ws", make_token("root", scopes=("admin",)))
    blog_site.hold.clear()
    execution_id = await started(alice, blog_site.url)
    await bob.send(control("EXECUCAO_CANCELAR", execution_id))
    assert error_parts(await bob.recv_kind("ERRO"))[0] == "PERMISSION_ERROR"
    await bob.send(control("EXECUCAO_PAUSAR", "exec_unknown"))
    assert error_parts(await bob.recv_kind("ERRO"))[0] == "VALIDATION_ERROR"
    await admin.send(control("EXECUCAO_CANCELAR", execution_id))
    assert (await admin.recv_kind("EXECUCAO_CANCELADA"))["data"]["execucao_id"] == execution_id
    blog_site.hold.set()


async def test_bounds_on_depth_and_keywords(server: Any, raw: Any, blog_site: BlogSite) -> None:
    """profundidade 1 never reaches the articles; max_keywords bounds the result."""
    ws = await raw("/ws", make_token("alice"))
    await started(ws, blog_site.url, profundidade=1, max_keywords=5)
    events = await until_final(ws)
    assert events[-1]["data"]["resultado"]["total_keywords"] <= 5
    assert blog_site.count("/cafe/") == 0 and blog_site.count("/bicicleta/") == 0


@pytest.mark.parametrize("config, field", [({"max_keywords": 0}, "max_keywords"), ({"profundidade": 9}, "profundidade"),
                                           ({"timeout": 1000}, "timeout")])
async def test_invalid_configuration_names_the_field(server: Any, raw: Any, config: dict[str, Any],
                                                     field: str) -> None:
    """Out-of-bounds settings are refused with VALIDATION_ERROR naming the field."""
    ws = await raw("/ws", make_token("alice"))
    await ws.send(start("https://example.com/", **config))
    code, _, details = error_parts(await ws.recv_kind("ERRO"))
    assert code == "VALIDATION_ERROR" and field in details["campo"]


async def test_unreachable_and_slow_sites_give_execution_errors(server: Any, raw: Any, blog_site: BlogSite) -> None:
    """A closed port is a NETWORK_ERROR, a start page that does not answer in time a TIMEOUT_ERROR."""
    ws = await raw("/ws", make_token("alice"))
    await started(ws, "http://127.0.0.1:9/")
    closed = (await until_final(ws))[-1]
    await started(ws, blog_site.url + "lento", profundidade=1)
    slow = (await until_final(ws))[-1]
    assert closed["event"] == slow["event"] == "EXECUCAO_ERRO"
    assert closed["data"]["erro"]["codigo"] == "NETWORK_ERROR" and slow["data"]["erro"]["codigo"] == "TIMEOUT_ERROR"
    assert slow["data"]["recomendacao"]


async def test_limits_per_user(start_server: Any, raw_to: Any, blog_site: BlogSite) -> None:
    """A user over MAX_EXECUTIONS_PER_USER gets RATE_LIMIT_ERROR with the limit."""
    server = await start_server(**SETTINGS, max_executions_per_user=1)
    ws = await raw_to(server, "/ws", make_token("alice"))
    blog_site.hold.clear()
    await started(ws, blog_site.url)
    await ws.send(start(blog_site.url, "req_9"))
    code, _, details = error_parts(await ws.recv_kind("ERRO"))
    assert code == "RATE_LIMIT_ERROR" and details == {"limite": 1, "ativas": 1}
    blog_site.hold.set()


async def test_private_urls_are_refused_without_the_setting(start_server: Any, raw_to: Any,
                                                            blog_site: BlogSite) -> None:
    """Without ALLOW_PRIVATE_URLS a loopback blog is refused before any request is made."""
    server = await start_server()
    ws = await raw_to(server, "/ws", make_token("alice"))
    for url in (blog_site.url, "http://169.254.169.254/latest/", "http://localhost:8000/"):
        await ws.send(start(url))
        code, _, details = error_parts(await ws.recv_kind("ERRO"))
        assert code == "VALIDATION_ERROR" and details["campo"] == "blog_url"
    assert blog_site.requests == []


async def test_a_reconnecting_client_consults_its_execution(server: Any, raw: Any, blog_site: BlogSite) -> None:
    """EXECUCAO_CONSULTAR on a new connection answers the state and follows the run to its end."""
    first = await raw("/ws", make_token("alice"))
    blog_site.hold.clear()
    execution_id = await started(first, blog_site.url)
    await first.ws.close()
    again = await raw("/ws", make_token("alice"))
    await again.send({"event": "EXECUCAO_CONSULTAR", "data": {"execucao_id": execution_id}})
    status = await again.recv_kind("EXECUCAO_STATUS")
    # iniciada until its job has read its record from the database and started: either is its state
    assert status["data"]["execucao_id"] == execution_id and status["data"]["status"] in ("iniciada", "em_andamento")
    blog_site.hold.set()
    assert (await until_final(again))[-1]["event"] == "EXECUCAO_CONCLUIDA"
    async with aiohttp.ClientSession() as http:
        url = server.make_url(f"/api/v1/executions/{execution_id}")
        async with http.get(url, headers={"Authorization": f"Bearer {make_token('alice')}"}) as response:
            assert (await response.json())["event"] == "EXECUCAO_CONCLUIDA"


async def test_preferences_spare_only_the_connections_not_watching(server: Any, raw: Any,
                                                                   blog_site: BlogSite) -> None:
    """With execucao_concluida turned off, the starting connection still gets the end, another one does not."""
    ws, other = await raw("/ws", make_token("alice")), await raw("/ws", make_token("alice"))
    await ws.send({"event": "NOTIFICACAO_CONFIGURAR", "data": {"tipos": ["info"], "canal": "websocket"}})
    await ws.recv_kind("NOTIFICACAO_CONFIGURADA")
    await started(ws, blog_site.url, profundidade=1)
    assert (await until_final(ws))[-1]["event"] == "EXECUCAO_CONCLUIDA"
    await other.send({"event": "SESSAO_PING", "data": {"request_id": "last"}})
    seen = []
    while (message := await other.recv())["event"] != "SESSAO_PONG":
        seen.append(message["event"])
    assert "EXECUCAO_STATUS" in seen and "EXECUCAO_CONCLUIDA" not in seen
