"""Per-connection limits: a token bucket for messages and a clock for idleness."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

ADMIT = "admit"
REJECT = "reject"  # over the rate: answer with a rate-limit error, keep the connection
ABUSE = "abuse"  # rejected too many times in a row: close the connection


@dataclass(slots=True)
class ConnectionGuard:
    """Counts one connection's messages against a rate and notes when it was last active."""

    rate: float
    burst: int
    close_after: int
    tokens: float = 0.0
    stamp: float = field(default_factory=time.monotonic)  # the last message, admitted or not
    strikes: int = 0

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    def admit(self, now: float | None = None) -> str:
        """Take one token for an incoming message and say what to do with it."""
        now = time.monotonic() if now is None else now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.strikes = 0
            return ADMIT
        self.strikes += 1
        return ABUSE if self.strikes >= self.close_after else REJECT

    def retry_after(self) -> int:
        """Whole seconds until the next message would be admitted."""
        return max(1, int((1.0 - self.tokens) / self.rate + 0.999))

    def idle_for(self, now: float | None = None) -> float:
        """Seconds since the last message."""
        return (time.monotonic() if now is None else now) - self.stamp
