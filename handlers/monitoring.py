"""Omni monitoring: `MONITORAMENTO_INICIAR` starts a per-connection `METRICA_PERFORMANCE` stream,
`MONITORAMENTO_PARAR` (or a disconnect) stops it; subscribers also get `SISTEMA_ALERTA`, which
one app-level loop (`AlertMonitor`, started by app.factory) emits to the `monitoring` room."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from app.transport.codecs import answering
from app.sampler import AlertWatch, Sample, Sampler, Thresholds, instance_name

from .base import Client, PonteNamespace

log = logging.getLogger("ponte.monitoring")

ROOM = "monitoring"  # where SISTEMA_ALERTA goes
NAMESPACE = "/omni"
STATE_KEY = "monitoring"  # client.state[STATE_KEY]: the connection's Stream

# metric asked for → METRICA_PERFORMANCE field and its value in a sample
FIELDS: dict[str, tuple[str, Callable[[Sample], float | int]]] = {
    "cpu": ("cpu_uso", lambda s: round(s.cpu_percent, 1)),
    "memoria": ("memoria_uso", lambda s: round(s.memory_percent, 1)),
    "tempo_resposta": ("tempo_resposta_medio", lambda s: round(s.avg_response_ms, 2)),
    "requisicoes": ("requisicoes_por_segundo", lambda s: round(s.requests_per_second, 2)),
    "execucoes": ("execucoes_ativas", lambda s: s.executions),
    "conexoes": ("conexoes_ativas", lambda s: s.connections),
}


@dataclass
class Stream:
    """One connection's metric stream: what it asked for, and the flags that stop and report it."""

    metrics: list[str]
    interval: float  # seconds
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)


def performance(sample: Sample, metrics: list[str]) -> dict[str, Any]:
    """The METRICA_PERFORMANCE payload: only the fields of the metrics asked for."""
    return {FIELDS[name][0]: FIELDS[name][1](sample) for name in dict.fromkeys(metrics)}


class MonitoringHandlers(PonteNamespace):
    """MONITORAMENTO_INICIAR / MONITORAMENTO_PARAR, one stream per connection."""

    def active_executions(self) -> int:
        """Executions running on this instance, for `execucoes_ativas` (none until executions exist)."""
        return 0

    async def on_MONITORAMENTO_INICIAR(self, sid: str, client: Client, data: Any) -> None:
        _stop(client)  # one stream per connection: a new request replaces the old one
        stream = client.state[STATE_KEY] = Stream(list(data.metricas), data.intervalo / 1000)
        await self.enter_room(sid, ROOM)
        confirmed = {"status": "iniciado", "metricas": list(data.metricas), "intervalo": data.intervalo}
        await self.emit("MONITORAMENTO_CONFIRMADO", answering(confirmed, data.request_id), to=sid)
        sampler = Sampler(self.gateway.metrics, lambda: self.gateway.connections,
                          self.gateway.settings.max_connections, self.active_executions)
        self.spawn(self._stream(sid, stream, sampler))

    async def on_MONITORAMENTO_PARAR(self, sid: str, client: Client, data: Any) -> None:
        _stop(client)
        await self.leave_room(sid, ROOM)
        await self.emit("MONITORAMENTO_CONFIRMADO", answering({"status": "parado"}, data.request_id), to=sid)

    async def left(self, sid: str, client: Client) -> None:
        _stop(client)
        await super().left(sid, client)

    async def _stream(self, sid: str, stream: Stream, sampler: Sampler) -> None:
        """Emit METRICA_PERFORMANCE every interval (on a fixed schedule, without drift) until stopped."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        try:
            while True:
                due += stream.interval
                if await _stopped_within(stream.stop, due - loop.time()) or sid not in self.clients:
                    return
                try:
                    await self.emit("METRICA_PERFORMANCE", performance(sampler.sample(), stream.metrics), to=sid)
                except Exception:  # noqa: BLE001 - one failed sample does not end the stream
                    log.exception("monitoring sample for %s failed", sid)
                due = max(due, loop.time() - stream.interval)  # after a stall, resume rather than burst
        finally:
            stream.done.set()


def _stop(client: Client) -> None:
    stream = client.state.pop(STATE_KEY, None)
    if stream is not None:
        stream.stop.set()


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Wait up to `seconds` for `stop`; True if it was set."""
    if stop.is_set():
        return True
    try:
        async with asyncio.timeout(max(0.0, seconds)):
            await stop.wait()
    except TimeoutError:
        return False
    return True


class AlertMonitor:
    """The app-level alert loop's job: sample this instance and emit each new SISTEMA_ALERTA once to
    the `monitoring` room, through the server's one emit path (with Redis, every instance's
    subscribers get it; the message names the instance)."""

    def __init__(self, handler: Any) -> None:
        gateway, settings = handler.gateway, handler.gateway.settings
        self.handler = handler
        self.sampler = Sampler(gateway.metrics, lambda: gateway.connections, settings.max_connections,
                               getattr(handler, "active_executions", lambda: 0))
        self.watch = AlertWatch(Thresholds.of(settings), instance_name())

    async def check(self) -> None:
        for alert in self.watch.check(self.sampler.sample()):
            log.warning("alert: %s", alert["mensagem"])
            await self.handler.emit("SISTEMA_ALERTA", alert, room=ROOM)
