"""Agents without the gateway: intents, the stream readers over real HTTP, built-in answers, the
Portal da Transparência mapping against a local server speaking its shape."""
from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from engines.agents.base import AgentError, ChatContext
from engines.agents.builtin import Anita, Drummond, Tiradentes, Zumbi
from engines.agents.intent import intent
from engines.agents.remote import HttpStreamAgent
from engines.agents.streams import MAX_ANSWER
from engines.contracts.source import TransparenciaSource


class Desk:
    """An in-memory desk with one finished investigation."""

    def __init__(self, view: dict[str, Any] | None) -> None:
        self.view = view
        self.started: list[tuple[str, str]] = []

    async def start(self, query: str, language: str = "pt") -> dict[str, Any]:
        self.started.append((query, language))
        return {"investigation_id": "INV-2026-007", "source": "sample", "source_label": "dados de exemplo sintéticos",
                "filters": {"agencies": ["Ministério da Saúde"]}}

    async def latest(self) -> dict[str, Any] | None:
        return self.view

    async def get(self, investigation_id: str) -> dict[str, Any] | None:
        return self.view if self.view and self.view["investigation_id"] == investigation_id else None


class NamedOnly(Desk):
    """A desk whose investigation is found by its id only (the session has no latest)."""

    async def latest(self) -> dict[str, Any] | None:
        return None


VIEW = {"investigation_id": "INV-2026-001", "status": "completed", "progress": 100.0, "message": "ok",
        "source": "sample",
        "anomalies": [{"severity": "medium", "description": "Preço 90% acima", "details": {
                           "contract_id": "C1", "expected_value": 100.0, "actual_value": 190.0}},
                      {"severity": "critical", "description": "Preço 700% acima", "details": {
                           "contract_id": "C2", "expected_value": 1000.0, "actual_value": 8000.0}}],
        "findings": [{"agent_name": "Zumbi dos Palmares", "finding": "2 anomalias"}],
        "summary": {"contracts": 10, "anomalies": 2, "by_severity": {"critical": 1, "medium": 1}},
        "report_url": "http://x/api/v1/investigations/INV-2026-001/report"}


async def text(agent: Any, message: str, desk: Desk, language: str = "pt") -> str:
    context = ChatContext("s", None, desk, language=language)
    return "".join([piece async for piece in agent.stream(message, context)])


@pytest.mark.parametrize("message, expected", [
    ("Investigar contratos do ministério da saúde", "investigate"), ("Investigate the contracts", "investigate"),
    ("Qual o andamento da investigação?", "progress"), ("Explique as anomalias", "explain"),
    ("Por que este contrato é suspeito?", "explain"), ("Resuma o relatório", "summarise"),
    ("INVESTIGATE CONTRACTS OF THE MINISTRY OF HEALTH", "investigate"), ("What's the progress?", "progress"),
    ("How is the investigation going?", "progress"), ("Explain the anomalies", "explain"),
    ("Why is this contract suspicious?", "explain"), ("Summarise the report", "summarise"),
    ("Give me a summary", "summarise"), ("O que você pode fazer?", "help"), ("What can you do?", "help"),
    ("help", "help"), ("Bom dia!", None), ("Good morning!", None)])
def test_intents(message: str, expected: str | None) -> None:
    """Portuguese and English phrasings map to the expected intent, accents or not."""
    assert intent(message) == expected


async def test_builtin_agents_work_from_the_desk() -> None:
    """Zumbi starts through the desk; Anita explains the worst first in BRL; Tiradentes cites the report."""
    desk = Desk(VIEW)
    assert "INV-2026-007" in await text(Zumbi(), "Investigar contratos da saúde", desk)
    assert desk.started == [("Investigar contratos da saúde", "pt")]
    explained = await text(Anita(), "Explique as anomalias", desk)
    assert explained.index("C2") < explained.index("C1") and "R$ 8.000,00" in explained and "sintéticos" in explained
    assert VIEW["report_url"] in await text(Tiradentes(), "Resuma", desk)
    assert "Ainda não há investigação" in await text(Anita(), "Explique", Desk(None))
    assert "Investigar contratos" in await text(Drummond(), "Oi", Desk(None))


async def test_builtin_agents_answer_in_the_context_language() -> None:
    """With language "en" every built-in agent answers in English, numbers formatted the English way, and
    Zumbi names the filters it understood and says the sample is synthetic."""
    desk = Desk(VIEW)
    started = await text(Zumbi(), "Investigate contracts of the Ministry of Health", desk, "en")
    assert started.startswith("I started investigation INV-2026-007") and desk.started[-1][1] == "en"
    assert "agency Ministério da Saúde" in started and "synthetic data set generated for demonstration" in started
    explained = await text(Anita(), "Explain the anomalies", desk, "en")
    assert "I found 2 anomalies" in explained and "R$ 8,000.00" in explained and "[critical]" in explained
    assert "synthetic sample data" in explained
    summary = await text(Tiradentes(), "Summarise the report", desk, "en")
    assert summary.startswith("Report of INV-2026-001: 10 contracts analysed") and VIEW["report_url"] in summary
    assert "There is no investigation in this session yet" in await text(Anita(), "Explain", Desk(None), "en")
    assert "Investigate contracts of the Ministry of Health" in await text(Drummond(), "help", Desk(None), "en")
    portuguese = await text(Anita(), "Explique as anomalias", desk)
    assert "[crítica]" in portuguese and "Encontrei 2 anomalias" in portuguese


async def test_agents_recognise_an_investigation_id_in_a_message() -> None:
    """An id in today's format (INV-YYYY- and 16 hex digits, any case) names the investigation to explain."""
    desk = NamedOnly({**VIEW, "investigation_id": "INV-2026-9F3A1C0B7D2E4A68"})
    assert "C2" in await text(Anita(), "Explique as anomalias de inv-2026-9f3a1c0b7d2e4a68", desk)
    assert "Ainda não há investigação" in await text(Anita(), "Explique INV-2026-0000000000000000", desk)


async def serve(aiohttp_server: Any, body: bytes, content_type: str, status: int = 200) -> str:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers={"Content-Type": content_type})
        await response.prepare(request)
        for i in range(0, len(body), 5):  # five bytes per write: lines and events cut anywhere
            await response.write(body[i:i + 5])
        return response
    app = web.Application()
    app.router.add_post("/", handler)
    return str((await aiohttp_server(app)).make_url("/"))


@pytest.mark.parametrize("body, content_type", [
    (b": hi\r\nevent: message\r\ndata: {\"content\": \"um \"}\r\n\r\ndata: dois\r\ndata:  tres\r\n\r\n"
     b"data: [DONE]\r\n\r\ndata: nunca\n\n", "text/event-stream"),
    (b'{"delta": "um "}\n\n{"delta": {"content": "dois\\n tres"}}\n{"done": true}\n{"delta": "nunca"}\n',
     "application/x-ndjson")])
async def test_stream_readers(aiohttp_server: Any, body: bytes, content_type: str) -> None:
    """SSE (comments, CRLF, multi-line data, [DONE]) and NDJSON (delta forms, done) are read piece by piece."""
    url = await serve(aiohttp_server, body, content_type)
    async with aiohttp.ClientSession() as session:
        answer = await text(HttpStreamAgent(session, url), "oi", Desk(None))
    assert answer == "um dois\n tres"


@pytest.mark.parametrize("body, content_type, status", [
    (b"event: error\ndata: quebrou\n\n", "text/event-stream", 200), (b"{not json\n", "application/x-ndjson", 200),
    (b"erro", "text/plain", 503), (json.dumps({"delta": "x" * (MAX_ANSWER + 1)}).encode() + b"\n",
                                   "application/x-ndjson", 200)])
async def test_backend_errors(aiohttp_server: Any, body: bytes, content_type: str, status: int) -> None:
    """Error events, malformed lines, HTTP errors and oversize answers are BACKEND_ERROR."""
    url = await serve(aiohttp_server, body, content_type, status)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(AgentError) as error:
            await text(HttpStreamAgent(session, url), "oi", Desk(None))
    assert error.value.code == "BACKEND_ERROR"


async def test_transparencia_source_maps_the_api(aiohttp_server: Any) -> None:
    """The Portal da Transparência source sends its key and maps the API's contract fields."""
    seen: list[Any] = []

    async def contratos(request: web.Request) -> web.Response:
        seen.append((request.headers.get("chave-api-dados"), dict(request.query)))
        page = [] if request.query["pagina"] != "1" else [
            {"id": 1, "numero": "CT 12/2025", "objeto": "Aquisição de notebooks", "dataAssinatura": "2025-03-04",
             "valorInicialCompra": 45000.5, "fornecedor": {"nome": "Empresa X"},
             "unidadeGestora": {"orgaoVinculado": {"nome": "Ministério da Saúde"}}, "compra": {}},
            {"id": 2, "objeto": "sem valor"}]
        return web.json_response(page)
    app = web.Application()
    app.router.add_get("/contratos", contratos)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        found = await TransparenciaSource("k3y", session, str(server.make_url("/contratos"))).search("36000", 100)
    assert [(c.contract_id, c.agency, c.supplier, c.value) for c in found] == [
        ("CT 12/2025", "Ministério da Saúde", "Empresa X", 45000.5)]
    assert seen[0][0] == "k3y" and seen[0][1]["codigoOrgao"] == "36000"
