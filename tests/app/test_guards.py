"""The per-connection token bucket, driven with explicit clock values."""
from __future__ import annotations

from app.guards import ABUSE, ADMIT, REJECT, ConnectionGuard


def test_burst_then_reject_then_refill() -> None:
    """A burst is admitted, the next message rejected, and tokens come back with time."""
    guard = ConnectionGuard(rate=1.0, burst=3, close_after=10, stamp=0.0)
    assert [guard.admit(0.0) for _ in range(3)] == [ADMIT] * 3
    assert guard.admit(0.0) == REJECT and guard.retry_after() == 1
    assert guard.admit(1.0) == ADMIT


def test_sustained_abuse_is_flagged() -> None:
    """close_after rejections in a row turn into ABUSE."""
    guard = ConnectionGuard(rate=1.0, burst=1, close_after=3, stamp=0.0)
    assert [guard.admit(0.0) for _ in range(4)] == [ADMIT, REJECT, REJECT, ABUSE]


def test_idle_clock() -> None:
    """idle_for counts from the last message, admitted or not."""
    guard = ConnectionGuard(rate=1.0, burst=1, close_after=3, stamp=0.0)
    guard.admit(5.0)
    assert guard.idle_for(12.0) == 7.0
