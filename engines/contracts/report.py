"""An investigation's report: a JSON document, and the same as Markdown or a small HTML page, worded in
the investigation's language (`language`: "pt" or "en")."""
from __future__ import annotations

import datetime
import html
from collections import Counter
from typing import Any

from .analysis import SEVERITY_ORDER, Rules
from .texts import METHOD, brl, count, kind_name, language, severity_name, text


def build_report(meta: dict[str, Any], contracts_count: int, anomalies: list[dict[str, Any]],
                 findings: list[dict[str, Any]]) -> dict[str, Any]:
    """The report as JSON-ready data; anomalies and findings are the dicts the events carried."""
    ranked = sorted(anomalies, key=lambda a: -SEVERITY_ORDER[a["severity"]])
    lang = language(meta.get("language"))
    return {"investigation_id": meta["investigation_id"], "title": meta.get("title") or meta["investigation_id"],
            "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "language": lang, "source": meta.get("source_label", ""), "query": meta.get("query"),
            "contracts": contracts_count, "anomalies_total": len(anomalies),
            "by_severity": dict(Counter(a["severity"] for a in anomalies)),
            "by_kind": dict(Counter(kind_of(a) for a in anomalies)),
            "anomalies": ranked, "findings": findings,
            "methodology": {"rules": METHOD[lang], "direct_purchase_limit": Rules().split_limit}}


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown (data escaped so that it cannot inject markup)."""
    lang = language(report.get("language"))
    lines = [f"# {md(report['title'])}", "", f"- {label(lang, 'investigation')}: {md(report['investigation_id'])}",
             f"- {label(lang, 'source')}: {md(report['source'])}",
             f"- {label(lang, 'contracts')}: {count(report['contracts'], lang)}",
             f"- {label(lang, 'anomalies')}: {count(report['anomalies_total'], lang)} ({severities(report, lang)})", "",
             f"## {label(lang, 'findings')}", ""]
    lines += [f"- **{md(f['agent_name'])}**: {md(f['finding'])}" for f in report["findings"]]
    lines += ["", f"## {label(lang, 'anomalies')}", "", "| " + label(lang, "columns").replace("|", " | ") + " |",
              "| --- | --- | --- | ---: | ---: | --- |"]
    for a in report["anomalies"]:
        d = a["details"]
        lines.append(f"| {severity_name(a['severity'], lang)} | {kind_name(kind_of(a), lang)} | "
                     f"{md(d['contract_id'])} | {brl(d['expected_value'], lang)} | {brl(d['actual_value'], lang)} | "
                     f"{md(a['description'])} |")
    lines += ["", f"## {label(lang, 'method')}", ""] + [f"- {rule}" for rule in report["methodology"]["rules"]]
    return "\n".join(lines) + "\n"


def render_html(report: dict[str, Any]) -> str:
    """The report as a small self-contained HTML page (every value escaped)."""
    e, lang = html.escape, language(report.get("language"))
    rows = "".join(
        f"<tr><td>{e(severity_name(a['severity'], lang))}</td><td>{e(kind_name(kind_of(a), lang))}</td>"
        f"<td>{e(a['details']['contract_id'])}</td><td>{e(brl(a['details']['expected_value'], lang))}</td>"
        f"<td>{e(brl(a['details']['actual_value'], lang))}</td><td>{e(a['description'])}</td></tr>"
        for a in report["anomalies"])
    findings = "".join(f"<li><b>{e(f['agent_name'])}</b>: {e(f['finding'])}</li>" for f in report["findings"])
    rules = "".join(f"<li>{e(rule)}</li>" for rule in report["methodology"]["rules"])
    columns = "".join(f"<th>{e(name)}</th>" for name in label(lang, "columns").split("|"))
    return (f"<!doctype html><html lang='{e(label(lang, 'html_lang'))}'><head><meta charset='utf-8'>"
            f"<title>{e(report['title'])}</title>"
            "<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto}td,th{padding:.2rem .5rem;"
            "border-bottom:1px solid #ddd}</style></head><body>"
            f"<h1>{e(report['title'])}</h1><p>{e(label(lang, 'source'))}: {e(report['source'])} — "
            f"{e(count(report['contracts'], lang))} {e(label(lang, 'contracts_word'))}, "
            f"{e(count(report['anomalies_total'], lang))} {e(label(lang, 'anomalies_word'))}</p>"
            f"<h2>{e(label(lang, 'findings'))}</h2><ul>{findings}</ul>"
            f"<h2>{e(label(lang, 'anomalies'))}</h2><table><tr>{columns}</tr>{rows}</table>"
            f"<h2>{e(label(lang, 'method'))}</h2><ul>{rules}</ul></body></html>")


def severities(report: dict[str, Any], lang: str) -> str:
    """"crítica: 2, alta: 1", or "nenhuma" when there is no anomaly."""
    counts = ", ".join(f"{severity_name(k, lang)}: {v}" for k, v in report["by_severity"].items())
    return counts or text(lang, "report_none")


def label(lang: str, key: str) -> str:
    """A heading or field name of the report."""
    return text(lang, f"report_{key}")


def kind_of(anomaly: dict[str, Any]) -> str:
    """The rule behind an anomaly (its `details.kind`)."""
    return str(anomaly["details"].get("kind", ""))


def md(value: Any) -> str:
    """Text safe inside Markdown: markup characters and HTML escaped."""
    escaped = html.escape(str(value))
    for char in "\\`*_[]|#<>":
        escaped = escaped.replace(char, "\\" + char)
    return escaped.replace("\n", " ")
