"""The log budget and throttle: a flood of one kind of line writes a bounded number of them."""
from __future__ import annotations

import logging

from app.logs import THROTTLES, ClientErrorsAsInfo, LogBudget, Throttle, report_held


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


def test_a_flood_that_stops_still_gets_its_count_said(caplog: object) -> None:
    """Lines held back and never followed by one of their kind are counted by `report_held` (the sweeper
    calls it every few seconds, and the server once when it stops), once."""
    throttle = Throttle()
    THROTTLES.append(throttle)  # as logs.setup installs it
    try:
        passed = [throttle.filter(record("closing %s: %s", f"sid{i}", "parse error")) for i in range(100)]
        with caplog.at_level(logging.INFO, logger="ponte.sio"):  # type: ignore[attr-defined]
            report_held()
            report_held()
        said = [r.getMessage() for r in caplog.records  # type: ignore[attr-defined]
                if "similar lines suppressed" in r.getMessage()]
        assert said == [f"[{passed.count(False)} similar lines suppressed: closing %s: %s]"]
    finally:
        THROTTLES.remove(throttle)


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
