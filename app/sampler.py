"""What monitoring measures, and when an operator is told: samples of this instance (CPU, memory,
message rates from the running totals of app.metrics, connections, executions), the event loop's lag,
and the threshold watch behind SISTEMA_ALERTA. No network here: the handlers do the emitting."""
from __future__ import annotations

import asyncio
import math
import os
import socket
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import psutil

MIN_MESSAGES = 20  # fewer messages than this in a period: its error rate says nothing
PERCENT_HYSTERESIS = 5.0  # CPU and memory alerts re-arm this many points below their threshold
RATIO_HYSTERESIS = 0.9  # error-rate and connection alerts re-arm below 90 % of their threshold
LAG_INTERVAL = 0.1  # seconds between two probes of the event loop
LAG_WINDOW = 600  # probes the recent p99 is taken over: the last minute


@dataclass(frozen=True)
class Totals:
    """The running totals of app.metrics.Metrics at one moment."""

    handled: int = 0
    handled_seconds: float = 0.0
    failed: int = 0
    at: float = 0.0  # time.monotonic()

    @classmethod
    def of(cls, metrics: Any, at: float | None = None) -> "Totals":
        at = time.monotonic() if at is None else at
        if metrics is None:
            return cls(at=at)
        return cls(metrics.handled, metrics.handled_seconds, metrics.failed, at)


@dataclass(frozen=True)
class Sample:
    """One measurement of this instance; rates are over the period since the previous sample."""

    cpu_percent: float  # system-wide, 0..100
    memory_percent: float  # system-wide, 0..100
    avg_response_ms: float  # mean handling time of the period's messages (0 without messages)
    requests_per_second: float
    error_rate: float | None  # failed / handled in the period; None below MIN_MESSAGES messages
    connections: int
    max_connections: int
    executions: int

    @classmethod
    def between(cls, before: Totals, after: Totals, *, cpu_percent: float, memory_percent: float,
                connections: int, max_connections: int, executions: int) -> "Sample":
        """A sample whose rates come from the difference of two sets of running totals."""
        handled = max(0, after.handled - before.handled)
        seconds = max(0.0, after.handled_seconds - before.handled_seconds)
        failed = max(0, after.failed - before.failed)
        elapsed = after.at - before.at
        return cls(
            cpu_percent=cpu_percent,
            memory_percent=memory_percent,
            avg_response_ms=seconds / handled * 1000 if handled else 0.0,
            requests_per_second=handled / elapsed if elapsed > 0 else 0.0,
            error_rate=min(1.0, failed / handled) if handled >= MIN_MESSAGES else None,
            connections=connections,
            max_connections=max_connections,
            executions=executions,
        )

    @property
    def connections_ratio(self) -> float:
        return self.connections / self.max_connections if self.max_connections > 0 else 0.0


def cpu_busy_percent(before: Any, after: Any) -> float:
    """System-wide CPU use between two psutil.cpu_times() readings, as psutil.cpu_percent computes it."""
    total = _total(after) - _total(before)
    if total <= 0:
        return 0.0
    busy = total - (after.idle - before.idle) - (getattr(after, "iowait", 0) - getattr(before, "iowait", 0))
    return min(100.0, max(0.0, busy / total * 100))


def _total(times: Any) -> float:
    # guest time is already counted in user and nice on Linux (as in psutil._cpu_tot_time)
    return float(sum(times)) - getattr(times, "guest", 0) - getattr(times, "guest_nice", 0)


class CpuMeter:
    """CPU use since this meter's previous reading. psutil.cpu_percent(interval=None) keeps one
    reference point for the whole process, so two streams calling it would each see only the
    sliver of time since the other's call; every sampler has a meter of its own instead."""

    def __init__(self) -> None:
        self._last = psutil.cpu_times()

    def percent(self) -> float:
        now = psutil.cpu_times()
        value = cpu_busy_percent(self._last, now)
        self._last = now
        return value


class Sampler:
    """Samples this instance; each sampler keeps its own previous totals, so a monitoring stream's
    rates are over its own interval."""

    def __init__(self, metrics: Any, connections: Callable[[], int], max_connections: int,
                 executions: Callable[[], int] = lambda: 0) -> None:
        self.metrics = metrics
        self.connections = connections
        self.max_connections = max_connections
        self.executions = executions
        self._cpu = CpuMeter()
        self._last = Totals.of(metrics)

    def sample(self) -> Sample:
        now = Totals.of(self.metrics)
        before, self._last = self._last, now
        return Sample.between(before, now, cpu_percent=self._cpu.percent(),
                              memory_percent=psutil.virtual_memory().percent,
                              connections=self.connections(), max_connections=self.max_connections,
                              executions=self.executions())


class LoopLag:
    """How late the event loop runs what is due. The probe sleeps LAG_INTERVAL seconds again and again
    and records each time how much later than due it woke: whatever holds the loop (a long handler, a
    parse, a garbage collection) delays it, as it delays every other callback waiting for its turn."""

    def __init__(self, observe: Callable[[float], None] = lambda lag: None, interval: float = LAG_INTERVAL,
                 window: int = LAG_WINDOW) -> None:
        self.observe = observe  # each lag, in seconds, as it is measured (the /metrics histogram)
        self.interval = interval
        self.recent: deque[float] = deque(maxlen=window)

    def record(self, lag: float) -> None:
        lag = max(0.0, lag)  # a timer may fire a fraction of a millisecond early
        self.recent.append(lag)
        self.observe(lag)

    def p99(self) -> float:
        """The 99th percentile of the recent lags (nearest rank), seconds; 0 before the first probe."""
        if not self.recent:
            return 0.0
        ordered = sorted(self.recent)
        return ordered[math.ceil(0.99 * len(ordered)) - 1]

    async def run(self) -> None:
        """Probe until cancelled."""
        # time.monotonic, not loop.time(): uvloop's loop.time() is libuv's millisecond clock, read once
        # per loop iteration, so it would round every lag to whole milliseconds and miss a callback's own
        while True:
            due = time.monotonic() + self.interval
            await asyncio.sleep(self.interval)
            self.record(time.monotonic() - due)


# -- alerts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """When SISTEMA_ALERTA fires (the alert_* settings)."""

    cpu_percent: float = 80.0
    memory_percent: float = 90.0
    error_rate: float = 0.05
    connections_ratio: float = 0.9

    @classmethod
    def of(cls, settings: Any) -> "Thresholds":
        return cls(settings.alert_cpu_percent, settings.alert_memory_percent, settings.alert_error_rate,
                   settings.alert_connections_ratio)


def _pct(value: float) -> str:
    return f"{value:.0f}%" if value >= 1 or value == 0 else f"{value:.2g}%"


class AlertWatch:
    """The alerts a new sample calls for: one when a metric crosses above its threshold, none
    while it stays above, and another only after it has fallen back below the threshold less a
    hysteresis (5 points for CPU and memory, 10 % of the threshold for ratios)."""

    def __init__(self, thresholds: Thresholds, instance: str | None = None) -> None:
        self.thresholds = thresholds
        self.instance = instance
        self.above: set[str] = set()  # categories alerted and not yet re-armed

    def check(self, sample: Sample) -> list[dict[str, Any]]:
        t = self.thresholds
        alerts: list[dict[str, Any]] = []
        cpu = sample.cpu_percent
        if self._crossed("performance", cpu, t.cpu_percent, t.cpu_percent - PERCENT_HYSTERESIS):
            alerts.append(self._alert(
                _level(cpu, t.cpu_percent, 100.0), "performance",
                f"Uso de CPU acima de {_pct(t.cpu_percent)} (atual: {cpu:.0f}%)",
                ["Reduzir número de execuções simultâneas", "Verificar processos em background"]))
        memory = sample.memory_percent
        if self._crossed("memoria", memory, t.memory_percent, t.memory_percent - PERCENT_HYSTERESIS):
            alerts.append(self._alert(
                _level(memory, t.memory_percent, 100.0), "memoria",
                f"Uso de memória acima de {_pct(t.memory_percent)} (atual: {memory:.0f}%)",
                ["Reduzir número de execuções simultâneas", "Verificar consumo de memória dos processos",
                 "Aumentar a memória da instância"]))
        errors = sample.error_rate
        if errors is not None and self._crossed("erros", errors, t.error_rate, t.error_rate * RATIO_HYSTERESIS):
            alerts.append(self._alert(
                _level(errors, t.error_rate, 1.0), "erros",
                f"Taxa de erros acima de {_pct(t.error_rate * 100)} (atual: {errors * 100:.0f}%)",
                ["Verificar os logs de auditoria e de erro", "Verificar os dados enviados pelos clientes"]))
        ratio = sample.connections_ratio
        if self._crossed("conexoes", ratio, t.connections_ratio, t.connections_ratio * RATIO_HYSTERESIS):
            alerts.append(self._alert(
                _level(ratio, t.connections_ratio, 1.0), "conexoes",
                f"Conexões ativas próximas do limite: {sample.connections} de {sample.max_connections}",
                ["Adicionar instâncias do servidor", "Aumentar MAX_CONNECTIONS se houver recursos",
                 "Verificar clientes inativos"]))
        return alerts

    def _crossed(self, category: str, value: float, threshold: float, rearm: float) -> bool:
        """True the first time value is above threshold since it was last below rearm."""
        if category in self.above:
            if value < rearm:
                self.above.discard(category)
            return False
        if value > threshold:
            self.above.add(category)
            return True
        return False

    def _alert(self, level: str, category: str, message: str, actions: list[str]) -> dict[str, Any]:
        if self.instance:
            message = f"{message} [instância {self.instance}]"
        return {"nivel": level, "categoria": category, "mensagem": message, "acoes": actions}


def _level(value: float, threshold: float, ceiling: float) -> str:
    """critical from halfway between the threshold and the ceiling (CPU 90 %, memory 95 %, ...)."""
    return "critical" if value >= (threshold + ceiling) / 2 else "warning"


def instance_name() -> str:
    """This process as an operator finds it: the Heroku dyno, else host:pid."""
    return os.environ.get("DYNO") or f"{socket.gethostname()}:{os.getpid()}"
