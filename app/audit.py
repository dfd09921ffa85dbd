"""The audit log: one JSON line per client message, with the fields of the Omni document's
"Logs de Auditoria", tokens and secrets redacted."""
from __future__ import annotations

import json
import logging
import re
from typing import Any

from .codecs import now_iso

SECRET_KEY = re.compile(r"token|secret|password|passwd|authorization|api[_-]?key|jwt|credential", re.I)
JWT_LIKE = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")
REDACTED = "[REDACTED]"
MAX_DATA = 4096  # characters of a message's data kept in the log


def redact(value: Any, depth: int = 0) -> Any:
    """A copy with secret-looking keys and JWT-looking strings replaced."""
    if depth > 8:
        return "[...]"
    if isinstance(value, dict):
        return {k: REDACTED if SECRET_KEY.search(str(k)) else redact(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, depth + 1) for v in value[:100]]
    if isinstance(value, str):
        return JWT_LIKE.sub(REDACTED, value)
    return value


class AuditLog:
    """Writes audit lines to the `ponte.audit` logger (stdout by default, see app.logs)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("ponte.audit")

    def record(self, event: str, client_id: str, user_id: str | None, data: Any, response_ms: float,
               status: str, code: str | None = None) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        safe = redact(data)
        text = json.dumps(safe, ensure_ascii=False, default=str)
        if len(text) > MAX_DATA:
            safe = {"truncated": True, "chars": len(text)}
        line: dict[str, Any] = {
            "timestamp": now_iso(), "event": "websocket_message", "client_id": client_id, "user_id": user_id,
            "message": {"event": event, "data": safe}, "response_time": round(response_ms, 3), "status": status}
        if code is not None:
            line["error_code"] = code
        self.logger.info(json.dumps(line, ensure_ascii=False, default=str))
