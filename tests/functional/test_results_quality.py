"""Results that read well, end to end: a real server crawls the four-topic site for a raw-WebSocket client.

Clusters keep to one topic and keep their announced names, a page reached under several names is read
once, and `request_id` is echoed only when the client sent one.
"""
from __future__ import annotations

from typing import Any, AsyncIterator

import aiohttp
import pytest

from conftest import make_token
from schemas import omni
from tests.fixtures import topics
from tests.fixtures.blog import BlogSite
from tests.fixtures.topics import TopicSite

SETTINGS = {"allow_private_urls": True, "extract_workers": 1, "rate_limit_per_second": 100.0,
            "rate_limit_burst": 100}
FINAL = ("EXECUCAO_CONCLUIDA", "EXECUCAO_ERRO", "EXECUCAO_CANCELADA")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Private URLs allowed (the sites are on loopback), one extraction worker, no rate limit in the way."""
    return SETTINGS


@pytest.fixture
async def topics_site() -> AsyncIterator[TopicSite]:
    """The four-topic site, served for one test."""
    async with TopicSite() as site:
        yield site


def start(url: str, request_id: str | None = None, max_keywords: int = 50) -> dict[str, Any]:
    """An EXECUCAO_INICIAR message, with a request_id only when one is given."""
    settings = {"max_keywords": max_keywords, "profundidade": 2, "timeout": 5}
    data: dict[str, Any] = {"blog_url": url, "configuracoes": settings}
    if request_id is not None:
        data["request_id"] = request_id
    return {"event": "EXECUCAO_INICIAR", "data": data}


def control(event: str, execution_id: str, request_id: str | None = None) -> dict[str, Any]:
    """A pause, resume or cancel request, with a request_id only when one is given."""
    data = {"execucao_id": execution_id, **({"request_id": request_id} if request_id else {})}
    return {"event": event, "data": data}


async def until_final(ws: Any, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Every execution event up to and including the final one, each checked against its schema."""
    events = []
    while not events or events[-1]["event"] not in FINAL:
        message = await ws.recv(timeout)
        if message["event"].startswith(("EXECUCAO", "KEYWORD", "CLUSTER")):
            omni.OUTBOUND[message["event"]].model_validate(message["data"])
            events.append(message)
    return events


async def crawled(ws: Any, url: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run an execution to its end: its events, and its JSON download fetched with the owner's token."""
    await ws.send(start(url))
    await ws.recv_kind("EXECUCAO_INICIADA")
    events = await until_final(ws)
    assert events[-1]["event"] == "EXECUCAO_CONCLUIDA", events[-1]
    async with aiohttp.ClientSession() as http:
        params = {"format": "json", "token": make_token("alice")}
        async with http.get(events[-1]["data"]["download_url"], params=params) as response:
            assert response.status == 200
            return events, await response.json()


def of_kind(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [event["data"] for event in events if event["event"] == kind]


async def test_clusters_keep_to_one_topic(server: Any, raw: Any, topics_site: TopicSite) -> None:
    """Each cluster is at least 90% one topic and holds at most half of the clustered terms."""
    _, body = await crawled(await raw("/ws", make_token("alice")), topics_site.url)
    clusters = body["clusters"]
    clustered = sum(cluster["tamanho"] for cluster in clusters)
    assert len(clusters) >= 4 and clustered >= 0.8 * len(body["keywords"])
    for cluster in clusters:
        assert topics.purity(cluster["keywords"]) >= 0.9, cluster
        assert cluster["tamanho"] <= clustered / 2, cluster


async def test_announced_names_and_ids_hold_in_the_download(server: Any, raw: Any, topics_site: TopicSite) -> None:
    """Every cluster keeps the id and name CLUSTER_FORMADO gave it, and every keyword the cluster_id
    KEYWORD_ENCONTRADA gave it."""
    events, body = await crawled(await raw("/ws", make_token("alice")), topics_site.url)
    formed = {data["cluster"]["id"]: data["cluster"] for data in of_kind(events, "CLUSTER_FORMADO")}
    assert formed and set(formed) == {cluster["id"] for cluster in body["clusters"]}
    for cluster in body["clusters"]:
        assert cluster["nome"] == formed[cluster["id"]]["nome"] == cluster["keywords"][0]
        assert set(formed[cluster["id"]]["keywords"]) <= set(cluster["keywords"])
    found = {data["keyword"]["termo"]: data["cluster_id"] for data in of_kind(events, "KEYWORD_ENCONTRADA")}
    assert found == {keyword["termo"]: keyword["cluster_id"] for keyword in body["keywords"]}


async def test_a_page_under_many_names_is_read_once(server: Any, raw: Any, topics_site: TopicSite) -> None:
    """`/`, `/index.html`, tracking parameters, fragments and trailing slashes are never requested as
    pages of their own; a printer-friendly copy naming its article as canonical, and an archive copy
    with the same text, count once."""
    events, body = await crawled(await raw("/ws", make_token("alice")), topics_site.url)
    statuses = of_kind(events, "EXECUCAO_STATUS")
    pages = len(topics.distinct_pages())
    assert len(statuses) == pages and statuses[-1]["progresso"]["atual"] == pages
    assert topics_site.count("/") == 1 and topics_site.count("/print/astronomy/telescopes") == 1
    assert topics_site.count("/astronomy/telescopes") == 0  # its printed copy took its name first
    asked = [path for path in topics_site.requests if path not in ("/", "/robots.txt")]
    assert not any(path.endswith(("/", "index.html")) or "?" in path for path in asked), asked
    urls = {keyword["url"] for keyword in body["keywords"]}
    assert not any(part in url for url in urls for part in ("index.html", "?", "#", "/print/"))


async def test_request_id_is_echoed_only_when_sent(server: Any, raw: Any, blog_site: BlogSite) -> None:
    """EXECUCAO_INICIADA and the control answers carry request_id only when the request had one."""
    ws = await raw("/ws", make_token("alice"))
    blog_site.hold.clear()  # the runs stay in progress while they are controlled
    await ws.send(start(blog_site.url))
    bare = (await ws.recv_kind("EXECUCAO_INICIADA"))["data"]
    await ws.send(start(blog_site.url, "req_7"))
    echoed = (await ws.recv_kind("EXECUCAO_INICIADA"))["data"]
    assert "request_id" not in bare and echoed["request_id"] == "req_7"
    await ws.send(control("EXECUCAO_PAUSAR", bare["execucao_id"]))
    paused = (await ws.recv_kind("EXECUCAO_PAUSADA"))["data"]
    await ws.send(control("EXECUCAO_RESUMIR", bare["execucao_id"], "req_8"))
    resumed = (await ws.recv_kind("EXECUCAO_RESUMIDA"))["data"]
    assert paused == {"execucao_id": bare["execucao_id"], "status": "pausada"} and resumed["request_id"] == "req_8"
    for execution_id in (bare["execucao_id"], echoed["execucao_id"]):
        await ws.send(control("EXECUCAO_CANCELAR", execution_id))
        assert "request_id" not in (await ws.recv_kind("EXECUCAO_CANCELADA"))["data"]
    blog_site.hold.set()
