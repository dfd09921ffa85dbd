"""The audit log: one JSON line per client action or refused message, with the fields of the Omni
document's "Logs de Auditoria", one per refused handshake and one per HTTP publish (accepted or
refused); tokens and secrets redacted, always valid JSON."""
from __future__ import annotations

import json
import logging
import re
from collections import deque
from typing import Any

from .clock import now_iso
from .logs import LogBudget

SECRET_KEY = re.compile(r"token|secret|password|passwd|authorization|api[_-]?key|jwt|credential", re.I)
JWT_LIKE = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")
REDACTED = "[REDACTED]"
MAX_DATA = 4096  # characters of a message's data kept in the log
MAX_ENVELOPE = 1024  # what an audit line holds besides the data (ids, names, time), at most
MAX_FIELD = 200  # characters of a refusal's origin or reason
INFINITY = float("inf")
RECENT = 200  # audit lines kept in memory for the operator view (GET /api/v1/admin/overview)


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
    if isinstance(value, float) and (value != value or value in (INFINITY, -INFINITY)):
        return str(value)  # NaN and infinities are not JSON
    return value


def json_line(obj: Any) -> str:
    """One line of valid JSON, UTF-8 kept readable; text that UTF-8 cannot encode is escaped."""
    text = json.dumps(obj, ensure_ascii=False, default=str, allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: \\ud800 in ASCII JSON is still valid JSON
        text = json.dumps(obj, ensure_ascii=True, default=str, allow_nan=False)
    return text


class AuditLog:
    """Writes audit lines to the `ponte.audit` logger (stdout by default, see app.logs)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("ponte.audit")
        self.refusals = LogBudget()  # a flood of refused handshakes writes a bounded number of lines
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT)  # the last lines written, newest last

    def _write(self, line: dict[str, Any], text: str | None = None) -> None:
        self.recent.append(line)
        self.logger.info(text if text is not None else json_line(line))

    def record(self, event: str, client_id: str, user_id: str | None, data: Any, response_ms: float,
               status: str, code: str | None = None) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        line: dict[str, Any] = {
            "timestamp": now_iso(), "event": "websocket_message", "client_id": client_id, "user_id": user_id,
            "message": {"event": event, "data": redact(data)}, "response_time": round(response_ms, 3),
            "status": status}
        if code is not None:
            line["error_code"] = code
        text = json_line(line)  # encoded once; again only when the data makes it too long
        if len(text) > MAX_DATA + MAX_ENVELOPE:
            line["message"]["data"] = {"truncated": True}
            text = json_line(line)
        self._write(line, text)

    def published(self, user: str | None, ip: str | None, items: list[dict[str, Any]],
                  code: str | None = None) -> None:
        """One line per `POST /api/v1/publish`: who published what to which room, or why it was
        refused (refusals share the refused handshakes' budget: a flood writes a bounded number)."""
        if not self.logger.isEnabledFor(logging.INFO):
            return
        held_back = self.refusals.take() if code is not None else 0
        if held_back is None:
            return
        line: dict[str, Any] = {"timestamp": now_iso(), "event": "http_publish", "user_id": user, "ip": ip,
                                "items": redact(items), "status": "error" if code else "success"}
        if code is not None:
            line["error_code"] = code
        if held_back:
            line["suppressed_before"] = held_back
        self._write(line)

    def refused(self, reason: str, ip: str | None, origin: str | None, namespace: str | None,
                code: str | None = None) -> None:
        """One line for a handshake the server refused; never the token (only its reason)."""
        if not self.logger.isEnabledFor(logging.INFO):
            return
        held_back = self.refusals.take()
        if held_back is None:
            return
        line: dict[str, Any] = {
            "timestamp": now_iso(), "event": "handshake_refused", "reason": redact(reason[:MAX_FIELD]), "ip": ip,
            "origin": redact(origin[:MAX_FIELD]) if origin else None, "namespace": namespace, "error_code": code}
        if held_back:
            line["suppressed_before"] = held_back  # refusals not written since the last line
        self._write(line)


AUDIT = AuditLog()  # the process' audit log: refusals before any namespace exists write here too
