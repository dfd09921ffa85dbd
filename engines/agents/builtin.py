"""The built-in agents: they need nothing external and work from the session's real investigations.

Zumbi (investigator) starts investigations and reports their progress, Anita (analyst) explains
anomalies with their evidence, Tiradentes (reporter) summarises reports, Drummond (communication)
says what the agents can do. Answers stream sentence by sentence, in the language of the message
(`ChatContext.language`); the texts are in `texts`.
"""
from __future__ import annotations

import re
from typing import Any, AsyncIterator

from engines.contracts.analysis import SEVERITY_ORDER
from engines.contracts.texts import brl, count, describe, kind_name, severity_name

from .base import ChatContext
from .intent import intent
from .texts import say, source_sentence

# INV-YYYY- and 16 hex digits; the sequential ids of earlier versions (INV-2026-001) still name theirs
INVESTIGATION_ID = re.compile(r"\bINV-\d{4}-(?:[0-9A-F]{16}|\d{3,6})\b", re.IGNORECASE)
MAX_EXPLAINED = 5


def sentences(text: str) -> list[str]:
    """The chunks an answer streams in: one sentence (or line) each, spacing kept."""
    return [piece for piece in re.split(r"(?<=[.!?:\n])\s+", text) if piece]


async def stream_text(text: str) -> AsyncIterator[str]:
    parts = sentences(text)
    for index, part in enumerate(parts):
        yield part + (" " if index < len(parts) - 1 and not part.endswith("\n") else "")


async def target(message: str, context: ChatContext) -> dict[str, Any] | None:
    """The investigation a message is about: the id it names, else the session's latest."""
    match = INVESTIGATION_ID.search(message)
    if match:
        return await context.investigations.get(match.group(0).upper())
    return await context.investigations.latest()


def progress_line(view: dict[str, Any], lang: str) -> str:
    """"A investigação INV-… está em andamento: 40% — Procurando compras fracionadas..." """
    status = say(lang, view["status"]) if view["status"] in ("queued", "running", "completed", "failed") else \
        view["status"]
    line = say(lang, "progress", id=view["investigation_id"], status=status, progress=f"{view['progress']:.0f}")
    return f"{line} — {view['message']}" if view.get("message") else line


class Zumbi:
    """Investigator: starts an investigation, or reports how one is going."""

    id, name = "zumbi", "Zumbi dos Palmares"

    async def stream(self, message: str, context: ChatContext) -> AsyncIterator[str]:
        lang = context.language
        if intent(message) == "investigate":
            text = self.started(await context.investigations.start(message, lang), lang)
        else:
            found = await target(message, context)
            text = progress_line(found, lang) + "." if found else say(lang, "none_yet")
        async for piece in stream_text(text):
            yield piece

    @staticmethod
    def started(view: dict[str, Any], lang: str) -> str:
        """What was started, on which contracts, and where the data comes from."""
        filters = describe(view.get("filters") or {}, lang)
        scope = say(lang, "scope", filters=filters) if filters else say(lang, "scope_all")
        return say(lang, "started", id=view["investigation_id"], scope=scope,
                   source=source_sentence(view.get("source"), lang))


class Anita:
    """Analyst: the anomalies of an investigation, most severe first, with their evidence."""

    id, name = "anita", "Anita Garibaldi"

    async def stream(self, message: str, context: ChatContext) -> AsyncIterator[str]:
        view = await target(message, context)
        async for piece in stream_text(self.explain(view, context.language)):
            yield piece

    @staticmethod
    def explain(view: dict[str, Any] | None, lang: str) -> str:
        if view is None:
            return say(lang, "none_yet")
        anomalies = sorted(view.get("anomalies") or [], key=lambda a: -SEVERITY_ORDER[a["severity"]])
        if not anomalies:
            return say(lang, "no_anomalies", progress=progress_line(view, lang))
        lines = [say(lang, "anomalies", count=count(len(anomalies), lang), id=view["investigation_id"],
                     shown=min(len(anomalies), MAX_EXPLAINED))]
        for a in anomalies[:MAX_EXPLAINED]:
            d = a["details"]
            lines.append(say(lang, "anomaly", severity=severity_name(a["severity"], lang), description=a["description"],
                             contract=d["contract_id"], actual=brl(d["actual_value"], lang),
                             expected=brl(d["expected_value"], lang)))
        if view.get("source") == "sample":
            lines.append(say(lang, "synthetic"))
        return "".join(lines)


class Tiradentes:
    """Reporter: the report's summary, or how far it is."""

    id, name = "tiradentes", "Tiradentes"

    async def stream(self, message: str, context: ChatContext) -> AsyncIterator[str]:
        view, lang = await target(message, context), context.language
        if view is None:
            text = say(lang, "none_yet")
        elif not view.get("report_url"):
            text = say(lang, "not_ready", progress=progress_line(view, lang))
        else:
            text = self.summary(view, lang)
        async for piece in stream_text(text):
            yield piece

    @staticmethod
    def summary(view: dict[str, Any], lang: str) -> str:
        """Counts by severity and kind, the findings, the data source and the report's link."""
        summary = view.get("summary") or {}
        severities = ", ".join(f"{severity_name(k, lang)}: {v}" for k, v in (summary.get("by_severity") or {}).items())
        kinds = ", ".join(f"{kind_name(k, lang)}: {v}" for k, v in (summary.get("by_kind") or {}).items())
        findings = " ".join(f"{f['agent_name']}: {f['finding']}." for f in view.get("findings") or [])
        return say(lang, "report", id=view["investigation_id"], contracts=count(summary.get("contracts", 0), lang),
                   anomalies=count(summary.get("anomalies", 0), lang), severities=severities or say(lang, "none"),
                   kinds=kinds[:1].upper() + kinds[1:] + ". " if kinds else "", findings=findings,
                   source=source_sentence(view.get("source"), lang), url=view["report_url"])


class Drummond:
    """Communication: what the agents can do."""

    id, name = "drummond", "Carlos Drummond de Andrade"

    async def stream(self, message: str, context: ChatContext) -> AsyncIterator[str]:
        async for piece in stream_text(say(context.language, "help")):
            yield piece
