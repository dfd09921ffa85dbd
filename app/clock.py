"""The timestamps every message and log line carries."""
from __future__ import annotations

import time
from typing import Any


def now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds and a Z suffix."""
    millis = int(time.time() * 1000)
    if millis != _clock[2]:  # formatted once a millisecond (the date once a second), not once a message
        second, fraction = divmod(millis, 1000)
        if second != _clock[0]:
            _clock[0], _clock[1] = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _clock[2], _clock[3] = millis, f"{_clock[1]}.{fraction:03d}Z"
    return _clock[3]  # type: ignore[no-any-return]


_clock: list[Any] = [-1, "", -1, ""]  # second, its date; millisecond, its timestamp


__all__ = ["now_iso"]
