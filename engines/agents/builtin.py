"""The built-in agents: they need nothing external and work from the session's real investigations.

Zumbi (investigator) starts investigations and reports their progress, Anita (analyst) explains
anomalies with their evidence, Tiradentes (reporter) summarises reports, Drummond (communication)
says what the agents can do. Answers stream sentence by sentence.
"""
from __future__ import annotations

import re
from typing import Any, AsyncIterator

from engines.contracts.analysis import KIND_NAMES, SEVERITY_ORDER, brl, count

from .base import ChatContext
from .intent import intent

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


def progress_line(view: dict[str, Any]) -> str:
    return (f"A investigação {view['investigation_id']} está {STATUS.get(view['status'], view['status'])}: "
            f"{view['progress']:.0f}% — {view.get('message') or ''}".rstrip(" —"))


STATUS = {"queued": "na fila", "running": "em andamento", "completed": "concluída", "failed": "interrompida"}
NONE_YET = ("Ainda não há investigação nesta sessão. Peça, por exemplo: "
            "\"Investigar contratos do Ministério da Saúde\".")


class Zumbi:
    """Investigator: starts an investigation, or reports how one is going."""

    id, name = "zumbi", "Zumbi dos Palmares"

    async def stream(self, message: str, context: ChatContext) -> AsyncIterator[str]:
        if intent(message) == "investigate":
            view = await context.investigations.start(message)
            text = (f"Iniciei a investigação {view['investigation_id']}. Vou comparar o preço de cada contrato "
                    "com contratos semelhantes, verificar a concentração de fornecedores por órgão, procurar "
                    "compras fracionadas abaixo do limite de dispensa e contratos duplicados. "
                    f"Fonte dos dados: {view.get('source_label') or view.get('source') or 'a configurada'}. "
                    f"Acompanhe em tempo real: inscreva-se em {view['investigation_id']}.")
        else:
            found = await target(message, context)
            text = progress_line(found) + "." if found else NONE_YET
        async for piece in stream_text(text):
            yield piece


class Anita:
    """Analyst: the anomalies of an investigation, most severe first, with their evidence."""

    id, name = "anita", "Anita Garibaldi"

    async def stream(self, message: str, context: ChatContext) -> AsyncIterator[str]:
        view = await target(message, context)
        async for piece in stream_text(self.explain(view)):
            yield piece

    @staticmethod
    def explain(view: dict[str, Any] | None) -> str:
        if view is None:
            return NONE_YET
        anomalies = sorted(view.get("anomalies") or [], key=lambda a: -SEVERITY_ORDER[a["severity"]])
        if not anomalies:
            return f"Nenhuma anomalia encontrada até agora. {progress_line(view)}."
        lines = [f"Encontrei {count(len(anomalies))} anomalias em {view['investigation_id']}; "
                 f"as {min(len(anomalies), MAX_EXPLAINED)} mais graves:\n"]
        for a in anomalies[:MAX_EXPLAINED]:
            d = a["details"]
            lines.append(f"- [{a['severity']}] {a['description']}. Contrato {d['contract_id']}: "
                         f"{brl(d['actual_value'])}, quando o esperado seria {brl(d['expected_value'])}.\n")
        if view.get("source") == "sample":
            lines.append("Atenção: são dados de exemplo sintéticos, não contratos reais.")
        return "".join(lines)


class Tiradentes:
    """Reporter: the report's summary, or how far it is."""

    id, name = "tiradentes", "Tiradentes"

    async def stream(self, message: str, context: ChatContext) -> AsyncIterator[str]:
        view = await target(message, context)
        if view is None:
            text = NONE_YET
        elif not view.get("report_url"):
            text = f"O relatório ainda não está pronto. {progress_line(view)}."
        else:
            summary = view.get("summary") or {}
            by_severity = ", ".join(f"{k}: {v}" for k, v in (summary.get("by_severity") or {}).items()) or "nenhuma"
            by_kind = ", ".join(f"{KIND_NAMES.get(k, k)}: {v}" for k, v in (summary.get("by_kind") or {}).items())
            findings = " ".join(f"{f['agent_name']}: {f['finding']}." for f in view.get("findings") or [])
            text = (f"Relatório de {view['investigation_id']}: {count(summary.get('contracts', 0))} contratos "
                    f"analisados, {count(summary.get('anomalies', 0))} anomalias ({by_severity}). "
                    f"{by_kind + '. ' if by_kind else ''}{findings} Leia em {view['report_url']}")
        async for piece in stream_text(text):
            yield piece


class Drummond:
    """Communication: what the agents can do."""

    id, name = "drummond", "Carlos Drummond de Andrade"
    HELP = ("Posso investigar contratos públicos e explicar o que encontrar. Experimente: "
            "\"Investigar contratos do Ministério da Saúde\" (Zumbi inicia a análise), "
            "\"Qual o andamento?\" (Zumbi informa o progresso), "
            "\"Explique as anomalias\" (Anita mostra as evidências) ou "
            "\"Resuma o relatório\" (Tiradentes resume as conclusões).")

    async def stream(self, message: str, context: ChatContext) -> AsyncIterator[str]:
        async for piece in stream_text(self.HELP):
            yield piece
