"""The timestamps every message and log line carries."""
from __future__ import annotations

import time
from typing import Any


def now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds and a Z suffix."""
    now = time.time()
    second = int(now)
    if second != _clock[0]:  # formatting the date once a second, not once a message
        _clock[0], _clock[1] = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{_clock[1]}.{int((now - second) * 1000):03d}Z"


_clock: list[Any] = [-1, ""]


__all__ = ["now_iso"]
