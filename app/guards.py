"""Rate limits and idleness: a token bucket per user (shared by that user's connections), and a
guard per connection that counts refusals in a row and notes when it last heard from its peer."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

ADMIT = "admit"
REJECT = "reject"  # over the rate: answer with a rate-limit error, keep the connection
ABUSE = "abuse"  # rejected too many times in a row: close the connection


@dataclass(slots=True, eq=False)
class Bucket:
    """A token bucket: `burst` messages at once, `rate` a second after that."""

    rate: float
    burst: int
    tokens: float = -1.0
    stamp: float = field(default_factory=time.monotonic)
    spent: int = 0  # taken since the last exchange with the other instances (app.limits)
    refs: int = 0  # connections sharing it

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = float(self.burst)

    def take(self, now: float) -> bool:
        """Take a token if there is one."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.spent += 1
            return True
        return False

    def retry_after(self) -> int:
        """Whole seconds until the next message would be admitted."""
        return max(1, int((1.0 - self.tokens) / self.rate + 0.999))


@dataclass(slots=True)
class ConnectionGuard:
    """Counts one connection's frames against its bucket (its own until it is bound to a user's)."""

    rate: float
    burst: int
    close_after: int
    stamp: float = field(default_factory=time.monotonic)  # the last frame, admitted or not
    strikes: int = 0
    bucket: Bucket = field(init=False)
    user: str | None = None  # whose bucket this connection shares

    def __post_init__(self) -> None:
        self.bucket = Bucket(self.rate, self.burst, stamp=self.stamp)

    def admit(self, now: float | None = None) -> str:
        """Take one token for an incoming frame and say what to do with it."""
        now = time.monotonic() if now is None else now
        self.stamp = now
        if self.bucket.take(now):
            self.strikes = 0
            return ADMIT
        self.strikes += 1
        return ABUSE if self.strikes >= self.close_after else REJECT

    def retry_after(self) -> int:
        return self.bucket.retry_after()

    def idle_for(self, now: float | None = None) -> float:
        """Seconds since the last frame."""
        return (time.monotonic() if now is None else now) - self.stamp
