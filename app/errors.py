"""The errors a client can be answered with, in one vocabulary for every protocol."""
from __future__ import annotations

from typing import Any

# Omni's documented codes are the canonical set; each protocol renders them in its own shape.
AUTHENTICATION_ERROR = "AUTHENTICATION_ERROR"
PERMISSION_ERROR = "PERMISSION_ERROR"
VALIDATION_ERROR = "VALIDATION_ERROR"
TIMEOUT_ERROR = "TIMEOUT_ERROR"
NETWORK_ERROR = "NETWORK_ERROR"
RATE_LIMIT_ERROR = "RATE_LIMIT_ERROR"
SYSTEM_ERROR = "SYSTEM_ERROR"
NOT_AVAILABLE = "NOT_AVAILABLE"
SERVER_OVERLOADED = "SERVER_OVERLOADED"

# WebSocket close codes used by the documents (RFC 6455).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL = 1002
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_SERVICE_RESTART = 1012
CLOSE_OVERLOADED = 1013


class PonteError(Exception):
    """An error to report to the client; the connection stays open unless `close` is set."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None,
                 close: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        self.close = close
