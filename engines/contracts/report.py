"""An investigation's report: a JSON document, and the same as Markdown or a small HTML page."""
from __future__ import annotations

import datetime
import html
from collections import Counter
from typing import Any

from .analysis import KIND_NAMES, SEVERITY_ORDER, Rules, brl, count

METHOD = [
    "Preço: preço unitário comparado à mediana de contratos do mesmo item (ou categoria), com desvio "
    "robusto (1,4826 × MAD); alerta com z ≥ 3,5 e preço ≥ 1,5× a mediana.",
    "Concentração: fornecedor com ≥ 60% dos gastos de um órgão numa categoria (≥ 10 contratos).",
    "Fracionamento: ≥ 3 compras do mesmo item ao mesmo fornecedor em 30 dias, cada uma entre 50% e 100% "
    "do limite de dispensa (Lei 14.133/2021, art. 75, II), somando acima dele.",
    "Duplicidade: contratos com ids diferentes e mesmos órgão, fornecedor, item, valor e data.",
]


def build_report(meta: dict[str, Any], contracts_count: int, anomalies: list[dict[str, Any]],
                 findings: list[dict[str, Any]]) -> dict[str, Any]:
    """The report as JSON-ready data; anomalies and findings are the dicts the events carried."""
    ranked = sorted(anomalies, key=lambda a: -SEVERITY_ORDER[a["severity"]])
    return {"investigation_id": meta["investigation_id"], "title": meta.get("title") or meta["investigation_id"],
            "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "source": meta.get("source_label", ""), "query": meta.get("query"), "contracts": contracts_count,
            "anomalies_total": len(anomalies),
            "by_severity": dict(Counter(a["severity"] for a in anomalies)),
            "by_kind": dict(Counter(kind_of(a) for a in anomalies)),
            "anomalies": ranked, "findings": findings,
            "methodology": {"rules": METHOD, "direct_purchase_limit": Rules().split_limit}}


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown (data escaped so that it cannot inject markup)."""
    lines = [f"# {md(report['title'])}", "", f"- Investigação: {md(report['investigation_id'])}",
             f"- Fonte dos dados: {md(report['source'])}", f"- Contratos analisados: {count(report['contracts'])}",
             f"- Anomalias: {count(report['anomalies_total'])} "
             f"({', '.join(f'{k}: {v}' for k, v in report['by_severity'].items()) or 'nenhuma'})", "",
             "## Conclusões", ""]
    lines += [f"- **{md(f['agent_name'])}**: {md(f['finding'])}" for f in report["findings"]]
    lines += ["", "## Anomalias", "", "| gravidade | tipo | contrato | esperado | encontrado | descrição |",
              "| --- | --- | --- | ---: | ---: | --- |"]
    for a in report["anomalies"]:
        d = a["details"]
        lines.append(f"| {a['severity']} | {KIND_NAMES.get(kind_of(a), '')} | {md(d['contract_id'])} | "
                     f"{brl(d['expected_value'])} | {brl(d['actual_value'])} | {md(a['description'])} |")
    lines += ["", "## Metodologia", ""] + [f"- {rule}" for rule in report["methodology"]["rules"]]
    return "\n".join(lines) + "\n"


def render_html(report: dict[str, Any]) -> str:
    """The report as a small self-contained HTML page (every value escaped)."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(a['severity'])}</td><td>{e(KIND_NAMES.get(kind_of(a), ''))}</td>"
        f"<td>{e(a['details']['contract_id'])}</td><td>{e(brl(a['details']['expected_value']))}</td>"
        f"<td>{e(brl(a['details']['actual_value']))}</td><td>{e(a['description'])}</td></tr>"
        for a in report["anomalies"])
    findings = "".join(f"<li><b>{e(f['agent_name'])}</b>: {e(f['finding'])}</li>" for f in report["findings"])
    rules = "".join(f"<li>{e(rule)}</li>" for rule in report["methodology"]["rules"])
    return (f"<!doctype html><html lang='pt-BR'><head><meta charset='utf-8'><title>{e(report['title'])}</title>"
            "<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto}td,th{padding:.2rem .5rem;"
            "border-bottom:1px solid #ddd}</style></head><body>"
            f"<h1>{e(report['title'])}</h1><p>Fonte: {e(report['source'])} — "
            f"{e(count(report['contracts']))} contratos, {e(count(report['anomalies_total']))} anomalias</p>"
            f"<h2>Conclusões</h2><ul>{findings}</ul><h2>Anomalias</h2><table><tr><th>gravidade</th><th>tipo</th>"
            f"<th>contrato</th><th>esperado</th><th>encontrado</th><th>descrição</th></tr>{rows}</table>"
            f"<h2>Metodologia</h2><ul>{rules}</ul></body></html>")


def kind_of(anomaly: dict[str, Any]) -> str:
    """The rule behind an anomaly (its `details.kind`)."""
    return str(anomaly["details"].get("kind", ""))


def md(text: Any) -> str:
    """Text safe inside Markdown: markup characters and HTML escaped."""
    escaped = html.escape(str(text))
    for char in "\\`*_[]|#<>":
        escaped = escaped.replace(char, "\\" + char)
    return escaped.replace("\n", " ")
