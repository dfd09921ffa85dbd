"""Contract analysis on hand-made inputs and on the shipped sample; parsing; reports; the generator."""
from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from engines.contracts.analysis import DIRECT_PURCHASE_LIMIT, analyse, brl
from engines.contracts.model import Anomaly, Contract, Finding, Progress
from engines.contracts.records import RecordError, parse_csv, parse_json
from engines.contracts.report import build_report, render_html, render_markdown
from engines.contracts.sample import DATA, generate
from engines.contracts.source import SampleSource

DAY = datetime.date(2025, 5, 1)


def contract(n: int, value: float, item: str = "Notebook", supplier: str = "S", agency: str = "A",
             days: int = 0, quantity: float | None = None, category: str = "informática") -> Contract:
    return Contract(f"C{n}", agency, supplier, item, category, value, DAY + datetime.timedelta(days=days), quantity)


def anomalies(contracts: list[Contract]) -> list[Anomaly]:
    return [step for step in analyse(contracts) if isinstance(step, Anomaly)]


def test_price_outlier_against_the_median_and_mad() -> None:
    """A price far above comparable contracts is flagged with the median as expectation and a ratio severity."""
    peers = [contract(n, 4000 + 50 * n, supplier=f"S{n}", days=40 * n) for n in range(8)]
    found = anomalies(peers + [contract(99, 14_000, days=5)])
    assert [(a.kind, a.contract_id, a.severity) for a in found] == [("price_outlier", "C99", "high")]
    assert found[0].expected_value == pytest.approx(4200, rel=0.02) and found[0].actual_value == 14_000


def test_mad_zero_and_too_few_peers() -> None:
    """With identical peer prices any price ≥ 1.5× is flagged; with fewer than 5 peers nothing is judged."""
    same = [contract(n, 1000, supplier=f"S{n}", days=40 * n) for n in range(6)]
    assert [a.contract_id for a in anomalies(same + [contract(9, 1600, days=3)])] == ["C9"]
    assert anomalies(same[:3] + [contract(9, 9000, days=3)]) == []


def test_split_purchase_and_duplicates() -> None:
    """Three purchases just under the limit within 30 days are split; identical contracts are duplicates."""
    part = DIRECT_PURCHASE_LIMIT * 0.9
    split = [contract(n, part, supplier="X", days=5 * n) for n in range(3)]
    twins = [contract(10, 777.0, item="Cadeira", supplier="Y"), contract(11, 777.0, item="Cadeira", supplier="Y")]
    kinds = {(a.kind, a.severity) for a in anomalies(split + twins)}
    assert kinds == {("split_purchase", "high"), ("duplicate_contract", "high")}


def test_supplier_concentration() -> None:
    """One supplier with 90% of an agency's spend in a category is a high concentration anomaly."""
    group = [contract(n, 1000, supplier="Dono" if n < 9 else f"S{n}", item=f"I{n}", days=n * 20) for n in range(10)]
    found = [a for a in anomalies(group) if a.kind == "supplier_concentration"]
    assert len(found) == 1 and found[0].severity == "high" and found[0].details["share"] == 0.9


def test_progress_is_monotonic_and_ends_with_findings_and_100() -> None:
    """Progress never goes back; findings come after anomalies; the last step is Progress 100."""
    steps = list(analyse([]))
    progress = [s.progress for s in steps if isinstance(s, Progress)]
    assert progress == sorted(progress) and progress[-1] == 100
    assert isinstance(steps[-2], Finding) and isinstance(steps[-1], Progress)


def test_the_sample_has_every_planted_anomaly_and_few_others() -> None:
    """On the shipped sample every planted anomaly is found with its severity, and ≤ 0.5% of clean contracts flagged."""
    manifest = json.loads((DATA / "planted.json").read_text())
    contracts = parse_csv((DATA / "sample_contracts.csv").read_text(), 100_000)
    found = {(a.kind, a.contract_id): a.severity for a in anomalies(contracts)}
    for planted in manifest["planted"]:
        assert found.get((planted["kind"], planted["contract_ids"][0])) == planted["severity"], planted
    assert manifest["synthetic"] is True
    assert len(found) - len(manifest["planted"]) <= 0.005 * len(contracts)


def test_the_generator_reproduces_the_shipped_sample(tmp_path: Path) -> None:
    """`python -m engines.contracts.sample` with the default seed writes exactly the committed file."""
    rows, planted = generate()
    shipped = parse_csv((DATA / "sample_contracts.csv").read_text(), 100_000)
    assert len(rows) == len(shipped) and rows[0]["contract_id"] == shipped[0].contract_id
    assert [p["contract_ids"] for p in planted] == [p["contract_ids"] for p in
                                                    json.loads((DATA / "planted.json").read_text())["planted"]]


def test_parsing_names_row_and_field() -> None:
    """Bad records are refused naming the row (as the user counts) and field; `;` CSV and BR numbers work."""
    text = "contract_id;agency;supplier;item;category;value;date\nC1;A;S;I;K;1.234,56;2025-01-02\n"
    assert parse_csv(text, 10)[0].value == 1234.56
    with pytest.raises(RecordError) as bad:
        parse_csv(text + "C2;A;S;I;K;abc;2025-01-02\n", 10)
    assert (bad.value.row, bad.value.field) == (3, "value")
    with pytest.raises(RecordError) as bad:
        parse_json([{"contract_id": "C1", "agency": "A", "supplier": "S", "item": "I", "category": "K",
                     "value": float("nan"), "date": "2025-01-02"}], 10)
    assert bad.value.field == "value"
    with pytest.raises(RecordError):
        parse_csv("a,b\n1,2\n", 10)
    with pytest.raises(RecordError):
        parse_json([{}] * 11, 10)


def test_reports_escape_hostile_text() -> None:
    """Markdown and HTML reports escape whatever the data holds."""
    hostile = "<script>alert(1)</script> | **x**"
    details = {"contract_id": hostile, "kind": "duplicate_contract", "expected_value": 1.0, "actual_value": 2.0}
    anomaly = {"severity": "high", "description": hostile, "details": details}
    report = build_report({"investigation_id": "INV-2026-001", "title": hostile}, 2, [anomaly], [])
    assert "<script>" not in render_html(report) and "<script>" not in render_markdown(report)
    assert report["by_severity"] == {"high": 1} and brl(1234.5) == "R$ 1.234,50"


async def test_sample_source_filters_by_agency() -> None:
    """The sample source answers the agency a query names (accents ignored), else everything."""
    health = await SampleSource().search("investigar contratos do ministerio da saude", 100_000)
    assert health and {c.agency for c in health} == {"Ministério da Saúde"}
    assert len(await SampleSource().search("qualquer coisa", 100_000)) > len(health)


def test_analysis_and_report_in_english() -> None:
    """With lang "en" progress, anomaly descriptions, findings and the report's labels are English, and
    Portuguese stays the default."""
    peers = [contract(n, 4000 + 50 * n, supplier=f"S{n}", days=40 * n) for n in range(8)]
    steps = list(analyse(peers + [contract(99, 14_000, days=5)], lang="en"))
    messages = [s.message for s in steps if isinstance(s, Progress)]
    assert messages[0] == "Analysing 9 contracts..." and messages[-1].startswith("Analysis complete: 9 contracts")
    found = [s for s in steps if isinstance(s, Anomaly)][0]
    assert found.description == "Price 233% above the median of 9 similar contracts (Notebook)"
    findings = [s.finding for s in steps if isinstance(s, Finding)]
    assert findings[0].startswith("1 anomalies in 9 contracts (1 severe); estimated overpricing of R$ 9,")
    assert findings[1].startswith("Most serious case: Price 233%")
    assert findings[2] == "Patterns found — prices out of line: 1"
    anomaly = {"severity": found.severity, "description": found.description,
               "details": {"contract_id": "C99", "kind": found.kind, "expected_value": found.expected_value,
                           "actual_value": found.actual_value}}
    english = build_report({"investigation_id": "INV-2026-001", "language": "en", "source_label": "uploaded"},
                           9, [anomaly], [])
    markdown, page = render_markdown(english), render_html(english)
    assert "- Contracts analysed: 9" in markdown and "## Anomalies" in markdown and "## Methodology" in markdown
    assert "| high | prices out of line | C99 | R$ 4," in markdown and "<html lang='en'>" in page
    portuguese = render_markdown(build_report({"investigation_id": "INV-2026-001"}, 9, [anomaly], []))
    assert "- Contratos analisados: 9" in portuguese and "| alta | preços fora do padrão | C99 | R$ 4." in portuguese
