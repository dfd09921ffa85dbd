"""Logging set-up: plain lines on stdout, an access log that never prints a query string (tokens
travel there), and a budget per kind of line so that a flood cannot flood the log."""
from __future__ import annotations

import logging
import sys
import time
from typing import Any

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

MAX_KINDS = 1024  # distinct message templates tracked by the throttle
PER_CONNECTION = ("aiohttp.access", "ponte.connections")  # one line per request or connection: not throttled


class AccessLogger(AbstractAccessLogger):
    """Method, path without query, status and time: no query string, no Referer."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info('%s "%s %s" %s %.3fs', request.remote, request.method, request.path[:200],
                         response.status, time)


class LogBudget:
    """A token bucket for log lines: `burst` at once, then `rate` a second; counts what it holds back."""

    __slots__ = ("rate", "burst", "tokens", "stamp", "held")

    def __init__(self, rate: float = 5.0, burst: int = 20, now: float | None = None) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp, self.held = float(burst), time.monotonic() if now is None else now, 0

    def take(self, now: float | None = None) -> int | None:
        """None when this line must be dropped; otherwise how many were dropped since the last one."""
        now = time.monotonic() if now is None else now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1.0:
            self.held += 1
            return None
        self.tokens -= 1.0
        held, self.held = self.held, 0
        return held


class Throttle(logging.Filter):
    """Drops lines of one kind (logger and message template) past their budget, and says how many
    were dropped on the next line of that kind that gets through. The access log and the connection
    log are exempt: one line per request or connection, never more, as every web server writes them."""

    def __init__(self) -> None:
        super().__init__()
        self.budgets: dict[tuple[str, Any], LogBudget] = {}

    def held(self) -> list[tuple[str, Any, int]]:
        """The kinds of line held back since their last line got through (logger, template, count),
        forgetting them: a flood that stops still gets its count said, by `report_held`."""
        out = []
        for (name, template), budget in self.budgets.items():
            if budget.held:
                out.append((name, template, budget.held))
                budget.held = 0
        return out

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name in PER_CONNECTION:
            return True
        key = (record.name, record.msg)
        budget = self.budgets.get(key)
        if budget is None:
            if len(self.budgets) >= MAX_KINDS:
                self.budgets.clear()
            budget = self.budgets[key] = LogBudget()
        held = budget.take()
        if held is None:
            return False
        if held:
            record.msg = f"{record.getMessage()} [{held} similar lines suppressed]"
            record.args = None
        return True


THROTTLES: list[Throttle] = []


def report_held() -> None:
    """Say how many lines of each kind were held back and not yet counted on a later line of their kind
    (called every few seconds by the sweeper and once when the server stops)."""
    for throttle in THROTTLES:
        for name, template, count in throttle.held():
            logging.getLogger(name).info("[%d similar lines suppressed: %.80s]", count, str(template))


class ClientErrorsAsInfo(logging.Filter):
    """python-engineio logs a client's bad request (an unknown session, a refused origin) as ERROR the
    first time: it is the client's error, not the server's, so it is INFO here. Tracebacks stay ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and not record.exc_info:
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def quiet_client_errors(logger: logging.Logger) -> None:
    """Install ClientErrorsAsInfo on a logger, once."""
    if not any(isinstance(f, ClientErrorsAsInfo) for f in logger.filters):
        logger.addFilter(ClientErrorsAsInfo())


def setup(level: str, audit: bool = True) -> None:
    """Plain lines on stdout, as a Heroku-style platform collects them; audit lines are bare JSON."""
    logging.basicConfig(stream=sys.stdout, level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, Throttle) for f in handler.filters):
            THROTTLES.append(Throttle())
            handler.addFilter(THROTTLES[-1])
    audit_log = logging.getLogger("ponte.audit")
    audit_log.propagate = False
    audit_log.setLevel(logging.INFO if audit else logging.WARNING)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    audit_log.addHandler(handler)
