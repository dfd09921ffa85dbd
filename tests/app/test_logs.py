"""The log budget and throttle: a flood of one kind of line writes a bounded number of them."""
from __future__ import annotations

import logging

from app.logs import ClientErrorsAsInfo, LogBudget, Throttle


def test_budget_burst_then_rate_and_count_of_held_lines() -> None:
    """A burst of lines passes, the rest are held and counted, and the next line let through says how many."""
    budget = LogBudget(rate=2.0, burst=3, now=0.0)
    assert [budget.take(0.0) for _ in range(5)] == [0, 0, 0, None, None]
    assert budget.take(0.5) == 2  # one token back after half a second: two lines were held before it


def record(msg: str, *args: object, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("ponte.sio", level, __file__, 1, msg, args, None)


def test_throttle_is_per_kind_of_line() -> None:
    """The throttle counts lines by their template: a flood of one does not silence another."""
    throttle = Throttle()
    passed = [throttle.filter(record("closing %s: %s", f"sid{i}", "parse error")) for i in range(100)]
    assert passed.count(True) <= 21
    assert throttle.filter(record("another kind of line"))


def test_per_connection_lines_are_never_throttled() -> None:
    """The access and connection logs keep their one line per request or connection, however many."""
    throttle = Throttle()
    for name in ("aiohttp.access", "ponte.connections"):
        lines = [logging.LogRecord(name, logging.INFO, __file__, 1, "connection accepted: %s", (i,), None)
                 for i in range(100)]
        assert all(throttle.filter(line) for line in lines)


def test_engineio_client_errors_are_info() -> None:
    """python-engineio's ERROR lines about a client's bad request become INFO; tracebacks stay ERROR."""
    line = record("'Session is disconnected' abc", level=logging.ERROR)
    assert ClientErrorsAsInfo().filter(line) and line.levelno == logging.INFO
    failure = logging.LogRecord("engineio.server", logging.ERROR, __file__, 1, "boom", None,
                                (ValueError, ValueError("x"), None))
    assert ClientErrorsAsInfo().filter(failure) and failure.levelno == logging.ERROR
