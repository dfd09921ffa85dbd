"""Documents to rows and back: an execution, an investigation and a chat session are read and written as
the JSON-like dicts the services already use (app/executions.py, app/investigations.py, handlers/chat.py).

Child rows follow what the document carries: an execution's keywords and clusters are replaced when
its document has them (its final save); an investigation's anomalies and findings only grow during a
run, or start over empty when a new attempt restarts it, so a save appends the ones not yet stored (or
replaces them all when the document has fewer); its report is written once the document has one.
"""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import (Anomaly, ChatMessage, ChatSession, Cluster, Execution, Finding, Investigation, Keyword,
                     Report)

EXECUTION_KEYS = {"id", "owner", "status", "config", "origin", "progress", "keywords_encontradas", "started_at",
                  "updated_at", "slot", "attempt", "instance", "final", "error", "keywords", "clusters"}
INVESTIGATION_COLUMNS = ("title", "query", "language", "read_key", "status", "progress", "message", "records",
                         "source", "anomalies_total", "report_url", "error", "links", "filters", "summary",
                         "creator_session", "session_owner", "created_at", "updated_at")
INVESTIGATION_KEYS = {"investigation_id", "creator_sub", "anomalies", "findings", "report", *INVESTIGATION_COLUMNS}
CHUNK = 200  # child rows per INSERT
KEYWORD_FIELDS = ("termo", "frequencia", "relevancia", "posicao", "url", "cluster_id")
FINDING_FIELDS = ("agent_id", "agent_name", "finding", "confidence", "details")


# -- executions ------------------------------------------------------------------------------------

async def read_execution(session: AsyncSession, key: str) -> dict[str, Any] | None:
    """The execution's document; its keywords and clusters when it ended with them."""
    row = await session.get(Execution, key)
    if row is None:
        return None
    doc = {**row.extra, "id": row.id, "owner": row.owner, "status": row.status, "config": row.config,
           "origin": row.origin, "progress": row.progress, "keywords_encontradas": row.keywords_found,
           "started_at": row.started_at, "updated_at": row.updated_at, "slot": row.slot, "attempt": row.attempt,
           "instance": row.instance}
    doc.update({name: value for name, value in (("final", row.final), ("error", row.error)) if value is not None})
    if row.status == "concluida":
        keywords = await session.scalars(select(Keyword).where(Keyword.execution_id == key).order_by(Keyword.position))
        clusters = await session.scalars(select(Cluster).where(Cluster.execution_id == key).order_by(Cluster.position))
        doc["keywords"] = [{name: getattr(k, name) for name in KEYWORD_FIELDS} for k in keywords]
        doc["clusters"] = [{"id": c.cluster_id, "nome": c.nome, "keywords": c.keywords, "tamanho": c.tamanho,
                            "relevancia_media": c.relevancia_media} for c in clusters]
    return doc


async def write_execution(session: AsyncSession, key: str, doc: dict[str, Any]) -> None:
    row = await session.get(Execution, key)
    if row is None:
        row = Execution(id=key, created_at=doc.get("started_at") or time.time())
        session.add(row)
    row.owner, row.status, row.config, row.origin = doc["owner"], doc["status"], doc["config"], doc["origin"]
    row.progress, row.keywords_found = doc["progress"], doc.get("keywords_encontradas", 0)
    row.started_at, row.updated_at = doc["started_at"], doc["updated_at"]
    row.slot, row.attempt, row.instance = doc.get("slot"), doc.get("attempt", 1), doc.get("instance")
    row.final, row.error = doc.get("final"), doc.get("error")
    row.extra = {name: value for name, value in doc.items() if name not in EXECUTION_KEYS}
    if "keywords" in doc:
        row.keyword_count, row.cluster_count = len(doc["keywords"]), len(doc.get("clusters", []))
        await session.flush()
        await _replace(session, Keyword, Keyword.execution_id, key,
                       [{name: k.get(name) for name in KEYWORD_FIELDS} for k in doc["keywords"]])
        await _replace(session, Cluster, Cluster.execution_id, key, [
            {"cluster_id": c["id"], "nome": c["nome"], "keywords": c["keywords"], "tamanho": c["tamanho"],
             "relevancia_media": c["relevancia_media"]} for c in doc.get("clusters", [])])


# -- investigations --------------------------------------------------------------------------------

async def read_investigation(session: AsyncSession, key: str) -> dict[str, Any] | None:
    """The investigation's document, with its anomalies, findings and (once ready) report."""
    row = await session.get(Investigation, key)
    if row is None:
        return None
    doc = {**row.extra, "investigation_id": row.id, "creator_sub": row.owner,
           **{name: getattr(row, name) for name in INVESTIGATION_COLUMNS}}
    anomalies = await session.scalars(select(Anomaly).where(Anomaly.investigation_id == key)
                                      .order_by(Anomaly.position))
    doc["anomalies"] = [{"investigation_id": key, "severity": a.severity, "description": a.description,
                         "details": a.details} for a in anomalies]
    findings = await session.scalars(select(Finding).where(Finding.investigation_id == key)
                                     .order_by(Finding.position))
    doc["findings"] = [{"investigation_id": key, **{name: getattr(f, name) for name in FINDING_FIELDS}}
                       for f in findings]
    report = await session.get(Report, key)
    if report is not None:
        doc["report"] = report.body
    return doc


async def write_investigation(session: AsyncSession, key: str, doc: dict[str, Any]) -> None:
    row = await session.get(Investigation, key)
    if row is None:
        row = Investigation(id=key)
        session.add(row)
    row.owner = doc.get("creator_sub")
    for name in INVESTIGATION_COLUMNS:
        setattr(row, name, doc.get(name))
    row.extra = {name: value for name, value in doc.items() if name not in INVESTIGATION_KEYS}
    await session.flush()
    await _grow(session, Anomaly, Anomaly.investigation_id, key, [
        {"severity": a["severity"], "description": a["description"], "details": a["details"]}
        for a in doc.get("anomalies", [])])
    await _grow(session, Finding, Finding.investigation_id, key,
                [{name: f.get(name) for name in FINDING_FIELDS} for f in doc.get("findings", [])])
    if doc.get("report") is not None and await session.get(Report, key) is None:
        session.add(Report(investigation_id=key, body=doc["report"], created_at=time.time()))


# -- chat sessions ---------------------------------------------------------------------------------

async def read_chat_owner(session: AsyncSession, key: str) -> dict[str, Any] | None:
    row = await session.get(ChatSession, key)
    return None if row is None else {"owner": row.owner}


async def write_chat_owner(session: AsyncSession, key: str, doc: dict[str, Any]) -> None:
    row = await _chat_session(session, key, doc.get("owner"))
    row.owner = doc.get("owner")


async def read_chat_history(session: AsyncSession, key: str) -> dict[str, Any] | None:
    """The session's kept messages (its last MAX_HISTORY, handlers/chat.py), under its owner."""
    row = await session.get(ChatSession, key)
    if row is None:
        return None
    messages = await session.scalars(select(ChatMessage).where(ChatMessage.session_id == key)
                                     .order_by(ChatMessage.position))
    return {"owner": row.owner, "messages": [{"role": m.role, "content": m.content} for m in messages]}


async def write_chat_history(session: AsyncSession, key: str, doc: dict[str, Any]) -> None:
    """Keep the messages the document holds (the session is created, with the history's owner, if the
    owner's own write was lost)."""
    await _chat_session(session, key, doc.get("owner"))
    await session.flush()
    await _replace(session, ChatMessage, ChatMessage.session_id, key,
                   [{"role": m["role"], "content": m["content"]} for m in doc.get("messages", [])])


async def _chat_session(session: AsyncSession, key: str, owner: str | None) -> ChatSession:
    row = await session.get(ChatSession, key)
    now = time.time()
    if row is None:
        row = ChatSession(id=key, owner=owner, created_at=now)
        session.add(row)
    row.updated_at = now
    return row


# -- child rows ------------------------------------------------------------------------------------

async def _replace(session: AsyncSession, model: Any, parent: Any, key: str, rows: list[dict[str, Any]]) -> None:
    """The parent's child rows become `rows`, in their order."""
    await session.execute(delete(model).where(parent == key))
    await _insert(session, model, parent, key, rows, 0)


async def _grow(session: AsyncSession, model: Any, parent: Any, key: str, rows: list[dict[str, Any]]) -> None:
    """Append the rows past those stored; start over if the document holds fewer than are stored."""
    stored = int(await session.scalar(select(func.count()).select_from(model).where(parent == key)) or 0)
    if stored > len(rows):
        await _replace(session, model, parent, key, rows)
    elif stored < len(rows):
        await _insert(session, model, parent, key, rows[stored:], stored)


async def _insert(session: AsyncSession, model: Any, parent: Any, key: str, rows: list[dict[str, Any]],
                  first: int) -> None:
    """Insert the rows CHUNK at a time: a statement's parameters are prepared on the event loop (about 10 µs a
    row), and the loop runs other callbacks between two statements (bench/DB.md)."""
    for start in range(0, len(rows), CHUNK):
        await session.execute(insert(model.__table__), [
            {parent.key: key, "position": first + start + index, **row}
            for index, row in enumerate(rows[start:start + CHUNK])])
