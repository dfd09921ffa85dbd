"""What operators see: Prometheus metrics for one app, and the running totals monitoring reads."""
from __future__ import annotations

import bisect
import time
from typing import Any, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from .sampler import LoopLag

LATENCY_BUCKETS = (.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5)
LOOP_LAG_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1)
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
        self.errors = Counter("ponte_errors", "Errors answered to clients", ["code"], registry=r)
        self.rate_limited = Counter("ponte_rate_limited", "Messages refused by the rate limit", registry=r)
        self.publish_failures = Counter("ponte_publish_failures", "Messages that could not be published to Redis",
                                        registry=r)
        self.history_gaps = Counter("ponte_history_gaps", "Times a history stream was found trimmed or lost past "
                                    "what this instance had read (Redis restarted without its data)", registry=r)
        self.recoveries = Counter("ponte_recoveries", "Clients that came back with a pid and an offset, by whether "
                                  "they got their session and missed events back", ["namespace", "outcome"],
                                  registry=r)
        self.preference_fallbacks = Counter(
            "ponte_preference_fallbacks", "Notification preferences Redis could not answer, by what was used instead: "
            "the last value read here (cache) or no optional type (safe)", ["source"], registry=r)
        self.redis_up = Gauge("ponte_redis_up", "1 while subscribed to Redis (when REDIS_URL is set)", registry=r)
        self.redis_channels = Gauge("ponte_redis_channels", "Redis pub/sub channels this instance listens on: one per "
                                    "room it has members in (or had, LINGER s ago), one per namespace, the shared one",
                                    registry=r)
        self.database_up = Gauge("ponte_database_up", "1 while the results database answers (as /readyz says)",
                                 registry=r)
        lag = Histogram("ponte_event_loop_lag_seconds", "How late the event loop ran a callback due every 0.1 s",
                        buckets=LOOP_LAG_BUCKETS, registry=r)
        self.loop_lag = LoopLag(lag.observe)  # its probe runs among the app's background tasks
        Gauge("ponte_event_loop_lag_p99_seconds", "99th percentile of the event loop's lag over the last minute",
              registry=r).set_function(self.loop_lag.p99)
        self.handled = 0  # running totals for the monitoring stream
        self.handled_seconds = 0.0
        self.failed = 0
        self._recent: dict[str, float] = {}  # user → when their last connection closed
        # Client messages are counted in plain ints (no lock, no label lookup per message) and read by
        # the registry at scrape time: (namespace, event label) → count; namespace → bucket counts, sum.
        self._in: dict[tuple[str, str], int] = {}
        self._latency: dict[str, tuple[list[int], list[float]]] = {}
        self._out: dict[tuple[str, str], int] = {}
        self._per_transport: dict[tuple[str, str], tuple[Any, Any]] = {}  # label children, looked up once
        r.register(_MessageCollector(self))

    def event(self, name: str) -> str:
        return name if name in self.known_events else OTHER

    def handled_message(self, namespace: str, event: str, seconds: float, failed: bool) -> None:
        key = (namespace, event if event in self.known_events else OTHER)  # labels stay bounded
        self._in[key] = self._in.get(key, 0) + 1
        latency = self._latency.get(namespace)
        if latency is None:
            latency = self._latency[namespace] = ([0] * (len(LATENCY_BUCKETS) + 1), [0.0])
        latency[0][bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        latency[1][0] += seconds
        self.handled += 1
        self.handled_seconds += seconds
        self.failed += failed

    def delivered(self, namespace: str, event: str, count: int) -> None:
        key = (namespace, event if event in self.known_events else OTHER)
        self._out[key] = self._out.get(key, 0) + count

    def error(self, code: str) -> None:
        self.errors.labels(code).inc()
        if code == "RATE_LIMIT_ERROR":
            self.rate_limited.inc()

    def _children(self, namespace: str, transport: str) -> tuple[Any, Any]:
        """The open-connections gauge and the connects counter of one namespace and transport
        (prometheus_client's `labels()` takes a lock and builds a key: once, not per connection)."""
        key = (namespace, transport)
        children = self._per_transport.get(key)
        if children is None:
            children = self._per_transport[key] = (self.connections.labels(*key), self.connects.labels(*key))
        return children

    def connected(self, namespace: str, transport: str, user: str | None) -> None:
        gauge, counter = self._children(namespace, transport)
        gauge.inc()
        counter.inc()
        left = self._recent.pop(user, None) if user else None
        if left is not None and time.monotonic() - left < RECONNECT_WINDOW:
            self.reconnects.labels(namespace).inc()

    def disconnected(self, namespace: str, transport: str, user: str | None) -> None:
        self._children(namespace, transport)[0].dec()
        if user:
            if len(self._recent) >= RECENT_LIMIT:
                self._recent.pop(next(iter(self._recent)))
            self._recent[user] = time.monotonic()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _MessageCollector:
    """`ponte_messages_in_total`, `ponte_messages_out_total` and `ponte_handling_seconds`, from Metrics'
    plain counters."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        counts = CounterMetricFamily("ponte_messages_in", "Client messages handled", labels=["namespace", "event"])
        for (namespace, event), count in list(self.metrics._in.items()):
            counts.add_metric([namespace, event], count)
        yield counts
        out = CounterMetricFamily("ponte_messages_out", "Messages delivered to clients", labels=["namespace", "event"])
        for (namespace, event), count in list(self.metrics._out.items()):
            out.add_metric([namespace, event], count)
        yield out
        latency = HistogramMetricFamily("ponte_handling_seconds", "Time to handle one client message",
                                        labels=["namespace"])
        for namespace, (buckets, total) in list(self.metrics._latency.items()):
            running, cumulative = 0, []
            for bound, count in zip([*map(floatToGoString, LATENCY_BUCKETS), "+Inf"], buckets):
                running += count
                cumulative.append((bound, running))
            latency.add_metric([namespace], cumulative, total[0])
        yield latency
