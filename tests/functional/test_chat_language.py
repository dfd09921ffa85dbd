"""Chat in Portuguese and English over raw WebSocket and Socket.IO, on the shipped sample: the same request
in either language analyses the same contracts, and agents, findings and report answer in its language."""
from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from conftest import CONTRACTS_CSV, TIMEOUT, make_token

SAMPLE = list(csv.DictReader((Path(__file__).parents[2] / "engines/contracts/data/sample_contracts.csv").open()))
HEALTH = sum(row["agency"] == "Ministério da Saúde" for row in SAMPLE)
KAPA = sum(row["supplier"].startswith("Kapa Farma") and float(row["value"]) >= 100_000
           and "2025-03-01" <= row["date"] <= "2025-06-30" for row in SAMPLE)
# Distinctive words of each language in each kind of text, and the words of the other that must not appear.
WORDS = {
    "en": {"zumbi": ["I started investigation", "Data source: a synthetic data set generated for demonstration",
                     "agency Ministério da Saúde"],
           "finding": "anomalies in", "report": ["## Findings", "## Anomalies", "Contracts analysed"],
           "help": "I can investigate public contracts"},
    "pt": {"zumbi": ["Iniciei a investigação", "Fonte dos dados: um conjunto de dados sintético, gerado para "
                     "demonstração", "órgão Ministério da Saúde"],
           "finding": "anomalias em", "report": ["## Conclusões", "## Anomalias", "Contratos analisados"],
           "help": "Posso investigar contratos públicos"},
}
ASK = {"en": "Investigate contracts of the Ministry of Health", "pt": "Investigar contratos do Ministério da Saúde"}


class Chat:
    """One chat session over a raw WebSocket or Socket.IO `/chat`: say something, read (event, data) pairs."""

    def __init__(self, client: Any, raw: bool) -> None:
        self.client, self.raw = client, raw

    async def say(self, message: str) -> None:
        """Send a chat message to the session."""
        if self.raw:
            await self.client.send({"type": "chat", "data": {"message": message}})
        else:
            await self.client.emit("chat", {"message": message})

    async def next(self) -> tuple[str, Any]:
        """The next event the session receives: its name and data."""
        if self.raw:
            message = await self.client.recv(4 * TIMEOUT)
            return message["type"], message["data"]
        return tuple(await self.client.recv(4 * TIMEOUT))  # type: ignore[return-value]

    async def answer_and_run(self) -> tuple[str, list[str], dict[str, Any]]:
        """The agent's whole answer, the findings, and how the investigation ended (report_ready or failure)."""
        answer, findings, end = None, [], None
        while answer is None or end is None:
            name, data = await self.next()
            if name == "chat" and data.get("done"):
                answer = data["content"]
            elif name == "agent_finding":
                findings.append(data["finding"])
            elif name == "report_ready" or (name == "investigation_progress" and data["update_type"] == "failed"):
                end = data
        return answer, findings, end

    async def answer(self) -> dict[str, Any]:
        """The next completed agent answer."""
        while True:
            name, data = await self.next()
            if name == "chat" and data.get("done"):
                return dict(data)


@pytest.fixture(params=["raw", "socketio"])
async def chat(request: Any, raw: Any, sio: Any) -> Any:
    """Open chat sessions over one transport: `await chat(session_id)`."""
    async def open_session(session_id: str) -> Chat:
        if request.param == "raw":
            client = await raw(f"/api/v1/ws/chat/{session_id}")
        else:
            client = await sio("/chat", auth={"session_id": session_id})
        await client.recv_kind("connection")
        return Chat(client, request.param == "raw")
    return open_session


async def read_report(report_url: str, kind: str) -> Any:
    """The report behind a keyed link, as JSON or Markdown."""
    async with aiohttp.ClientSession() as http:
        async with http.get(report_url, params={"format": kind}) as response:
            assert response.status == 200, await response.text()
            return await response.json() if kind == "json" else await response.text()


async def test_either_language_investigates_the_same_contracts_and_is_answered_in_it(chat: Any) -> None:
    """"Investigate contracts of the Ministry of Health" and "Investigar contratos do Ministério da Saúde"
    analyse the agency's contracts only; Zumbi, the findings and the report speak the question's language,
    say the data is synthetic, and a short "ok" afterwards keeps the session's language."""
    records = {}
    for lang, question in ASK.items():
        session = await chat(f"lang-{lang}")
        await session.say(question)
        answer, findings, end = await session.answer_and_run()
        assert all(word in answer for word in WORDS[lang]["zumbi"]), answer
        assert len(findings) == 3 and WORDS[lang]["finding"] in findings[0], findings
        report = await read_report(end["report_url"], "json")
        markdown = await read_report(end["report_url"], "md")
        assert all(word in markdown for word in WORDS[lang]["report"]), markdown[:400]
        records[lang] = report["contracts"]
        await session.say("ok")
        reply = await session.answer()
        assert reply["agent_id"] == "drummond" and WORDS[lang]["help"] in reply["content"], reply
    assert records == {"en": HEALTH, "pt": HEALTH} and HEALTH < len(SAMPLE)


async def test_supplier_period_and_value_narrow_the_same_way_in_both_languages(chat: Any) -> None:
    """An English request naming a supplier, a month range and a value floor analyses exactly the contracts its
    Portuguese twin does, and Zumbi names those filters in the question's language."""
    twins = {"en": ("Investigate contracts of Kapa Farma from March to June 2025 over 100k",
                    "supplier Kapa Farma (fictícia); period 2025-03-01 to 2025-06-30; value from R$ 100,000.00"),
             "pt": ("Investigar contratos da Kapa Farma de março a junho de 2025 acima de 100 mil",
                    "fornecedor Kapa Farma (fictícia); período de 01/03/2025 a 30/06/2025; valor a partir de "
                    "R$ 100.000,00")}
    records = {}
    for lang, (question, understood) in twins.items():
        session = await chat(f"narrow-{lang}")
        await session.say(question)
        answer, _, end = await session.answer_and_run()
        assert understood in answer, answer
        records[lang] = (await read_report(end["report_url"], "json"))["contracts"]
    assert records == {"en": KAPA, "pt": KAPA} and 0 < KAPA < HEALTH


async def test_an_agency_the_sample_lacks_is_refused_in_the_question_language(chat: Any) -> None:
    """"Ministry of Tourism" is not in the sample: the investigation fails saying so, in English, instead of
    analysing every contract."""
    session = await chat("tourism")
    await session.say("Investigate contracts of the Ministry of Tourism")
    answer, findings, end = await session.answer_and_run()
    assert "unknown agency \"tourism\"" in answer and findings == []
    assert end["update_type"] == "failed" and "is not in the sample data" in end["message"], end


@pytest.mark.parametrize("params, headers, expected", [
    ({"lang": "en"}, {}, "en"), ({}, {"Accept-Language": "en-GB,en;q=0.9,pt-BR;q=0.5"}, "en"),
    ({}, {"Accept-Language": "fr, pt-BR;q=0.8, en;q=0.5"}, "pt"), ({"lang": "pt"}, {"Accept-Language": "en"}, "pt"),
    ({}, {}, "pt")])
async def test_http_investigations_take_the_requested_language(
        server: Any, params: dict[str, str], headers: dict[str, str], expected: str) -> None:
    """An upload is worded in `?lang=`, else in the language Accept-Language prefers, else in Portuguese."""
    auth = {"Authorization": f"Bearer {make_token('alice')}", "Content-Type": "text/csv"}
    async with aiohttp.ClientSession() as http:
        async with http.post(server.make_url("/api/v1/investigations"), data=CONTRACTS_CSV.encode(),
                             params=params, headers={**auth, **headers}) as response:
            assert response.status == 201, await response.text()
            created = await response.json()
        async with asyncio.timeout(4 * TIMEOUT):
            while True:  # the state behind the keyed url: a real condition, polled briefly
                async with http.get(created["url"]) as response:
                    state = await response.json()
                if state["status"] in ("completed", "failed"):
                    break
                await asyncio.sleep(0.02)
    assert state["status"] == "completed" and state["language"] == expected
    markdown = await read_report(created["report_url"], "md")
    label = {"en": "- Data source: uploaded contracts", "pt": "- Fonte dos dados: contratos enviados"}[expected]
    assert label in markdown and WORDS[expected]["report"][1] in markdown
    assert state["anomalies"][0]["description"].startswith({"en": "Price", "pt": "Preço"}[expected])
