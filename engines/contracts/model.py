"""Contract records and what an analysis yields about them, step by step."""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, Literal, Union

Severity = Literal["low", "medium", "high", "critical"]


@dataclass(frozen=True, slots=True)
class Contract:
    """One public contract (already validated: see schemas.contracts)."""

    contract_id: str
    agency: str
    supplier: str
    item: str
    category: str
    value: float  # total value, BRL
    date: datetime.date
    quantity: float | None = None


@dataclass(slots=True)
class Progress:
    """A stage started or advanced: becomes `investigation_progress`."""

    stage: str  # "analyzing_contracts", "checking_concentration", …, "completed"
    progress: float  # 0–100, for the whole analysis
    message: str  # "Analisando 1.234 contratos..."


@dataclass(slots=True)
class Anomaly:
    """One anomaly: becomes `anomaly_detected`."""

    kind: str  # "price_outlier", "supplier_concentration", "split_purchase", "duplicate_contract"
    severity: Severity
    description: str
    contract_id: str
    expected_value: float
    actual_value: float
    details: dict[str, Any] = field(default_factory=dict)  # evidence: baseline, peers, rule that fired


@dataclass(slots=True)
class Finding:
    """A conclusion drawn from the anomalies: becomes `agent_finding`."""

    agent_id: str
    agent_name: str
    finding: str
    confidence: float  # 0–1
    details: dict[str, Any] = field(default_factory=dict)


Step = Union[Progress, Anomaly, Finding]
