"""What the namespaces and services of one app share (built by the composition root, app.factory)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .auth import TokenVerifier
from .settings import Settings


@dataclass
class Gateway:
    """What the namespaces of one app share: settings, the token verifier, the connection count."""

    settings: Settings
    verifier: TokenVerifier
    connections: int = 0
    metrics: Any = None  # app.metrics.Metrics
    audit: Any = None  # app.audit.AuditLog
    prefs: Any = None  # app.prefs.PreferenceStore: notification preferences
    records: Any = None  # app.records.RecordStore: executions and investigations
    services: dict[str, Any] = field(default_factory=dict)  # domain services by name ("executions", …)
