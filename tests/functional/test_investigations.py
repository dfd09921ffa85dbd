"""Investigations end to end: created from chat or over HTTP, analysed for real, followed live, reported."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from conftest import documented, error_parts, make_token
from schemas import cidadao

PLANTED = json.loads((Path(__file__).parents[2] / "engines/contracts/data/planted.json").read_text())
SAMPLE = (Path(__file__).parents[2] / "engines/contracts/data/sample_contracts.csv").read_text()
ORDER = ["investigation_progress", "anomaly_detected", "agent_finding", "investigation_progress", "report_ready"]


def checked(message: dict[str, Any]) -> dict[str, Any]:
    """A Cidadão.AI message's data, validated against the documented schema."""
    assert documented(message) == {"type", "data", "timestamp", "id"}
    cidadao.OUTBOUND[message["type"]].model_validate(message["data"])
    return dict(message["data"])


async def follow(ws: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
    """Investigation events up to report_ready, a failure, or a snapshot of a finished one (a late follower)."""
    events = []
    while True:
        message = await ws.recv(timeout)
        if message["type"] in ("investigation_progress", "anomaly_detected", "agent_finding", "report_ready"):
            events.append({"type": message["type"], **checked(message)})
            data = message["data"]
            if message["type"] == "report_ready" or data.get("update_type") == "failed" or (
                    data.get("update_type") == "snapshot" and data["status"] == "completed"):
                return events


def collapse(types: list[str]) -> list[str]:
    """Consecutive repeats merged: the shape of a stream."""
    return [t for i, t in enumerate(types) if i == 0 or types[i - 1] != t]


async def post(server: Any, body: Any, token: str | None = None, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    headers = {**({"Authorization": f"Bearer {token}"} if token else {}), **kwargs.pop("headers", {})}
    async with aiohttp.ClientSession() as http:
        async with http.post(server.make_url("/api/v1/investigations"), headers=headers,
                             **({"json": body} if body is not None else {}), **kwargs) as response:
            return response.status, await response.json()


async def test_an_investigation_from_chat_finds_every_planted_anomaly(raw: Any) -> None:
    """Zumbi starts an investigation on the sample; the session follows it to report_ready, in documented order."""
    ws = await raw("/api/v1/ws/chat/s-inv")
    await ws.recv_kind("connection")
    await ws.send({"type": "chat", "data": {"message": "Investigar contratos do Ministério da Saúde"}})
    answer = await ws.recv_kind("chat")
    assert answer["data"]["agent_id"] == "zumbi" and answer["data"]["chunk"] is True
    events = await follow(ws)
    assert collapse([e["type"] for e in events])[-3:] == ORDER[-3:]
    assert collapse([e["type"] for e in events])[:2] == ORDER[:2]
    progress = [e["progress"] for e in events if e["type"] == "investigation_progress"]
    assert progress == sorted(progress) and progress[-1] == 100
    assert events[0]["message"].startswith("Buscando contratos")


async def test_uploaded_contracts_are_analysed_and_reported(server: Any, raw: Any) -> None:
    """POST the sample as CSV, then follow its ws_url: it runs to the end, every planted anomaly is
    reported with its severity, and the report holds every anomaly the follower was sent."""
    token = make_token("alice")
    status, created = await post(server, None, token, data=SAMPLE.encode(), headers={"Content-Type": "text/csv"})
    assert status == 201 and created["records"] > 5000
    assert created["ws_url"].endswith(f"/api/v1/ws/investigations/{created['investigation_id']}")
    ws = await raw(URL(created["ws_url"]).path, token)
    await ws.recv_kind("connection")
    events = await follow(ws)
    anomalies = [e for e in events if e["type"] == "anomaly_detected"]
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get(created["report_url"]) as response:
            report = await response.json()
        async with http.get(created["report_url"], params={"format": "md"}) as response:
            markdown = await response.text()
        async with http.get(created["report_url"], params={"format": "html"}) as response:
            page = await response.text()
        async with http.get(created["url"]) as response:
            state = await response.json()
    found = {(a["details"]["kind"], a["details"]["contract_id"]): a["severity"] for a in report["anomalies"]}
    for planted in PLANTED["planted"]:
        assert found.get((planted["kind"], planted["contract_ids"][0])) == planted["severity"], planted
    clean = report["anomalies_total"] - len(PLANTED["planted"])
    assert clean <= 0.005 * created["records"]  # the bound on flagged clean contracts: 0.5%
    assert len(report["findings"]) == 3 and len(report["anomalies"]) == report["anomalies_total"]
    reported = {a["details"]["contract_id"] for a in report["anomalies"]}
    assert {a["details"]["contract_id"] for a in anomalies} <= reported
    assert markdown.startswith("# ") and "## Anomalias" in markdown and "<table>" in page
    assert state["status"] == "completed" and state["report_url"] == created["report_url"]


async def test_json_upload_and_bad_records(server: Any) -> None:
    """A JSON list is accepted; a bad row is refused with 400 naming the row and field."""
    rows = list(csv.DictReader(io.StringIO(SAMPLE)))[:50]
    status, created = await post(server, {"records": rows, "title": "Amostra"}, make_token("alice"))
    assert status == 201 and created["records"] == 50
    rows[3]["value"] = "muito"
    status, refused = await post(server, {"records": rows}, make_token("alice"))
    assert status == 400 and refused["error"]["field"] == "records.3.value"
    status, refused = await post(server, {"records": rows})
    assert status == 401


async def test_who_may_follow_an_investigation(server: Any, raw: Any, sio: Any) -> None:
    """The creator and admin follow it; another user, even with the `investigations` scope, gets
    NOT_FOUND with 1008 and a subscribe error, as for an id that does not exist."""
    rows = list(csv.DictReader(io.StringIO(SAMPLE)))[:20]
    status, created = await post(server, rows, make_token("alice", scopes=("chat",)))
    inv_id = created["investigation_id"]
    mine = await raw(f"/api/v1/ws/investigations/{inv_id}", make_token("alice", scopes=("chat",)))
    assert (await mine.recv_kind("connection"))["data"]["investigation_id"] == inv_id
    admin = await raw(f"/api/v1/ws/investigations/{inv_id}", make_token("root", scopes=("admin",)))
    await admin.recv_kind("connection")
    other = await raw(f"/api/v1/ws/investigations/{inv_id}", make_token("bob", scopes=("chat", "investigations")))
    code, _, _ = error_parts(await other.recv())
    assert code == "NOT_FOUND" and (await other.closed())[0] == 1008
    chat = await sio("/chat", auth={"session_id": "bob-session", "token": make_token("bob")})
    await chat.emit("subscribe", {"investigation_id": inv_id})
    refused = await chat.recv_kind("error")
    await chat.emit("subscribe", {"investigation_id": "INV-1999-0123456789ABCDEF"})
    assert refused["code"] == "NOT_FOUND" and await chat.recv_kind("error") == refused
    async with aiohttp.ClientSession() as http:
        keyless = created["url"].partition("?")[0]  # its read key would open it to anyone holding the link
        async with http.get(keyless, params={"token": make_token("bob")}) as response:
            assert response.status == 404


async def test_an_anonymous_session_follows_what_it_created(server: Any, raw: Any) -> None:
    """An anonymous chat session's investigation is visible to that session only."""
    rows = list(csv.DictReader(io.StringIO(SAMPLE)))[:20]
    status, created = await post(server, rows, params={"session_id": "anon-1"})
    assert status == 201
    inv_id = created["investigation_id"]
    ws = await raw(f"/api/v1/ws/investigations/{inv_id}?session_id=anon-1")
    await ws.recv_kind("connection")
    stranger = await raw(f"/api/v1/ws/investigations/{inv_id}?session_id=anon-2")
    assert (await stranger.closed())[0] == 1008
    chat = await raw("/api/v1/ws/chat/anon-1")
    await chat.send({"type": "subscribe", "data": {"investigation_id": inv_id}})
    assert (await chat.recv_kind("subscribed"))["data"]["status"] == "subscribed"
    assert (await chat.snapshot())["data"]["update_type"] == "snapshot"
