"""What operators see: Prometheus metrics for one app, and the running totals monitoring reads."""
from __future__ import annotations

import time
from typing import Any, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

OTHER = "other"  # the label for event names outside the documents, so labels stay bounded
RECONNECT_WINDOW = 60.0  # a connection within this many seconds of the same user's disconnect
RECENT_LIMIT = 10000


class Metrics:
    """Counters, gauges and a latency histogram in an app-local registry."""

    def __init__(self, known_events: Iterable[str]) -> None:
        self.known_events = frozenset(known_events)
        r = self.registry = CollectorRegistry()
        self.connections = Gauge("ponte_connections", "Open connections", ["namespace", "transport"], registry=r)
        self.connects = Counter("ponte_connects", "Accepted connections", ["namespace", "transport"], registry=r)
        self.reconnects = Counter("ponte_reconnects", "Connections of a user who disconnected in the last minute",
                                  ["namespace"], registry=r)
        self.messages_in = Counter("ponte_messages_in", "Client messages handled", ["namespace", "event"], registry=r)
        self.messages_out = Counter("ponte_messages_out", "Messages delivered to clients", ["namespace", "event"],
                                    registry=r)
        self.latency = Histogram("ponte_handling_seconds", "Time to handle one client message", ["namespace"],
                                 registry=r, buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5))
        self.errors = Counter("ponte_errors", "Errors answered to clients", ["code"], registry=r)
        self.rate_limited = Counter("ponte_rate_limited", "Messages refused by the rate limit", registry=r)
        self.publish_failures = Counter("ponte_publish_failures", "Messages that could not be published to Redis",
                                        registry=r)
        self.redis_up = Gauge("ponte_redis_up", "1 while subscribed to Redis (when REDIS_URL is set)", registry=r)
        self.handled = 0  # running totals for the monitoring stream
        self.handled_seconds = 0.0
        self.failed = 0
        self._recent: dict[str, float] = {}  # user → when their last connection closed
        # label children by (namespace, event label)
        self._in: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._out: dict[tuple[str, str], Any] = {}

    def event(self, name: str) -> str:
        return name if name in self.known_events else OTHER

    def handled_message(self, namespace: str, event: str, seconds: float, failed: bool) -> None:
        key = (namespace, self.event(event))  # labels, not raw names: the cache stays bounded
        children = self._in.get(key)
        if children is None:  # prometheus_client's labels() is slow for a per-message path
            children = self._in[key] = (self.messages_in.labels(*key), self.latency.labels(namespace))
        children[0].inc()
        children[1].observe(seconds)
        self.handled += 1
        self.handled_seconds += seconds
        self.failed += failed

    def delivered(self, namespace: str, event: str, count: int) -> None:
        key = (namespace, self.event(event))
        child = self._out.get(key)
        if child is None:
            child = self._out[key] = self.messages_out.labels(*key)
        child.inc(count)

    def error(self, code: str) -> None:
        self.errors.labels(code).inc()
        if code == "RATE_LIMIT_ERROR":
            self.rate_limited.inc()

    def connected(self, namespace: str, transport: str, user: str | None) -> None:
        self.connections.labels(namespace, transport).inc()
        self.connects.labels(namespace, transport).inc()
        left = self._recent.pop(user, None) if user else None
        if left is not None and time.monotonic() - left < RECONNECT_WINDOW:
            self.reconnects.labels(namespace).inc()

    def disconnected(self, namespace: str, transport: str, user: str | None) -> None:
        self.connections.labels(namespace, transport).dec()
        if user:
            if len(self._recent) >= RECENT_LIMIT:
                self._recent.pop(next(iter(self._recent)))
            self._recent[user] = time.monotonic()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
