"""Omni monitoring: the METRICA_PERFORMANCE stream on both transports, and SISTEMA_ALERTA."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import psutil
import pytest

from app.factory import SIO_KEY
from app.sampler import AlertWatch, Sample, Thresholds, Totals, cpu_busy_percent
from conftest import RawClient, make_token
from schemas import omni

ALL = ["cpu", "memoria", "tempo_resposta", "requisicoes", "execucoes", "conexoes"]
FIELDS = {"cpu_uso", "memoria_uso", "tempo_resposta_medio", "requisicoes_por_segundo", "execucoes_ativas",
          "conexoes_ativas"}


def sample(cpu: float = 10.0, memory: float = 40.0, connections: int = 1, max_connections: int = 100,
           error_rate: float | None = None) -> Sample:
    return Sample(cpu_percent=cpu, memory_percent=memory, avg_response_ms=1.0, requests_per_second=1.0,
                  error_rate=error_rate, connections=connections, max_connections=max_connections, executions=0)


def plausible(data: dict[str, Any]) -> None:
    """Check one METRICA_PERFORMANCE payload against its schema and against reality."""
    omni.MetricaPerformance.model_validate(data)
    if "cpu_uso" in data:
        assert 0 <= data["cpu_uso"] <= 100 * (psutil.cpu_count() or 1)
    if "memoria_uso" in data:
        assert 0 < data["memoria_uso"] <= 100
    if "tempo_resposta_medio" in data:
        assert 0 <= data["tempo_resposta_medio"] < 5000
    if "requisicoes_por_segundo" in data:
        assert data["requisicoes_por_segundo"] >= 0
    if "execucoes_ativas" in data:
        assert data["execucoes_ativas"] == 0
    if "conexoes_ativas" in data:
        assert data["conexoes_ativas"] >= 1


async def silent_for(ws: RawClient, event: str, seconds: float, **match: Any) -> None:
    """Assert that no `event` message (with data matching `match`) arrives within `seconds`."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = await ws.recv(timeout=left)
        except asyncio.TimeoutError:
            return
        data = message.get("data", {})
        assert not (message.get("event") == event and all(data.get(k) == v for k, v in match.items())), message


async def alert_of(ws: RawClient, category: str, timeout: float = 5.0) -> dict[str, Any]:
    """The data of the next SISTEMA_ALERTA of `category` (a busy machine may raise CPU alerts too)."""
    deadline = time.monotonic() + timeout
    while True:
        message = await ws.recv_kind("SISTEMA_ALERTA", timeout=max(0.01, deadline - time.monotonic()))
        if message["data"]["categoria"] == category:
            return message["data"]


# -- the threshold watch --------------------------------------------------------------------------


def test_alert_once_per_crossing() -> None:
    """CPU crossing 80 % gives one alert, staying above gives none, falling below the hysteresis and
    crossing again gives another."""
    watch = AlertWatch(Thresholds(cpu_percent=80))
    assert watch.check(sample(cpu=50)) == []
    [alert] = watch.check(sample(cpu=85))
    assert alert["nivel"] == "warning" and alert["categoria"] == "performance"
    assert alert["mensagem"].startswith("Uso de CPU acima de 80%") and alert["acoes"]
    omni.SistemaAlerta.model_validate(alert)
    assert watch.check(sample(cpu=97)) == []
    assert watch.check(sample(cpu=78)) == []  # below 80 but within the hysteresis: not re-armed
    assert watch.check(sample(cpu=82)) == []
    assert watch.check(sample(cpu=70)) == []  # re-armed
    [again] = watch.check(sample(cpu=96))
    assert again["categoria"] == "performance" and again["nivel"] == "critical"


def test_each_category_alerts_on_its_own() -> None:
    """Memory, error rate and connections near the limit each alert once, with their own category."""
    watch = AlertWatch(Thresholds(memory_percent=90, error_rate=0.05, connections_ratio=0.9), "web.1")
    assert watch.check(sample(memory=89, error_rate=0.04, connections=90)) == []
    alerts = watch.check(sample(memory=91, error_rate=0.2, connections=91))
    assert [a["categoria"] for a in alerts] == ["memoria", "erros", "conexoes"]
    assert all("web.1" in a["mensagem"] for a in alerts)
    assert "91 de 100" in alerts[2]["mensagem"]
    for alert in alerts:
        omni.SistemaAlerta.model_validate(alert)
    assert watch.check(sample(memory=99, error_rate=None, connections=100)) == []  # still above; no data
    assert watch.check(sample(memory=99, error_rate=0.01, connections=100)) == []  # errors re-armed
    [again] = watch.check(sample(memory=99, error_rate=0.2, connections=100))
    assert again["categoria"] == "erros"


def test_error_rate_without_data_keeps_its_state() -> None:
    """A period with too few messages for an error rate neither alerts nor re-arms."""
    watch = AlertWatch(Thresholds(error_rate=0.05))
    assert [a["categoria"] for a in watch.check(sample(error_rate=0.5))] == ["erros"]
    assert watch.check(sample(error_rate=None)) == []
    assert watch.check(sample(error_rate=0.5)) == []
    assert watch.check(sample(error_rate=0.01)) == []
    assert [a["categoria"] for a in watch.check(sample(error_rate=0.06))] == ["erros"]


def test_sample_rates_come_from_the_deltas() -> None:
    """Average response time, requests per second and error rate are over the period between two totals."""
    before, after = Totals(100, 1.0, 2, at=10.0), Totals(140, 1.2, 6, at=12.0)
    s = Sample.between(before, after, cpu_percent=5, memory_percent=50, connections=3, max_connections=10,
                       executions=0)
    assert s.requests_per_second == pytest.approx(20.0)
    assert s.avg_response_ms == pytest.approx(5.0)
    assert s.error_rate == pytest.approx(0.1)
    assert s.connections_ratio == pytest.approx(0.3)
    quiet = Sample.between(after, Totals(141, 1.2, 6, at=13.0), cpu_percent=5, memory_percent=50,
                           connections=3, max_connections=10, executions=0)
    assert quiet.error_rate is None and quiet.requests_per_second == pytest.approx(1.0)


def test_cpu_percent_between_two_readings() -> None:
    """CPU use is busy time over total time between two readings of the meter's own."""
    times = psutil.cpu_times()
    later = times._replace(user=times.user + 3, idle=times.idle + 1)
    assert cpu_busy_percent(times, later) == pytest.approx(75.0)
    assert cpu_busy_percent(times, times) == 0.0


# -- the stream -----------------------------------------------------------------------------------


async def test_stream_at_the_asked_interval(raw: Any) -> None:
    """intervalo=1000 gives METRICA_PERFORMANCE about once a second, with plausible values of exactly
    the metrics asked for."""
    ws = await raw("/ws", make_token())
    await ws.send({"event": "MONITORAMENTO_INICIAR",
                   "data": {"metricas": ALL, "intervalo": 1000, "request_id": "req_123461"}})
    confirmation = await ws.recv_kind("MONITORAMENTO_CONFIRMADO")
    assert confirmation["data"] == {"status": "iniciado", "metricas": ALL, "intervalo": 1000,
                                    "request_id": "req_123461"}
    omni.MonitoramentoConfirmado.model_validate(confirmation["data"])
    received = []
    for _ in range(3):
        message = await ws.recv_kind("METRICA_PERFORMANCE", timeout=3)
        received.append(time.monotonic())
        assert set(message["data"]) == FIELDS
        plausible(message["data"])
    gaps = [b - a for a, b in zip(received, received[1:])]
    assert all(0.7 <= gap <= 1.6 for gap in gaps), gaps


async def test_only_requested_metrics_and_a_new_request_replaces_the_stream(raw: Any) -> None:
    """A second MONITORAMENTO_INICIAR replaces the connection's stream: only its metrics arrive."""
    ws = await raw("/ws", make_token())
    await ws.send({"event": "MONITORAMENTO_INICIAR", "data": {"metricas": ["cpu"], "intervalo": 1000}})
    await ws.recv_kind("MONITORAMENTO_CONFIRMADO")
    await ws.send({"event": "MONITORAMENTO_INICIAR", "data": {"metricas": ["memoria", "conexoes"],
                                                              "intervalo": 1000}})
    assert (await ws.recv_kind("MONITORAMENTO_CONFIRMADO"))["data"]["metricas"] == ["memoria", "conexoes"]
    for _ in range(2):
        data = (await ws.recv_kind("METRICA_PERFORMANCE", timeout=3))["data"]
        assert set(data) == {"memoria_uso", "conexoes_ativas"}
        plausible(data)


@pytest.mark.parametrize("data", [
    {"metricas": ["cpu"], "intervalo": 500},
    {"metricas": ["cpu"], "intervalo": 60001},
    {"metricas": ["disco"], "intervalo": 1000},
    {"metricas": [], "intervalo": 1000},
])
async def test_invalid_request_is_refused(raw: Any, data: dict[str, Any]) -> None:
    """An interval outside 1000..60000 ms or an unknown or empty metric list gets VALIDATION_ERROR."""
    ws = await raw("/ws", make_token())
    await ws.send({"event": "MONITORAMENTO_INICIAR", "data": {**data, "request_id": "bad"}})
    message = await ws.recv()
    assert message["event"] == "ERRO" and message["data"]["codigo"] == "VALIDATION_ERROR"
    assert message["data"]["request_id"] == "bad"


async def test_monitoring_scope_is_required(raw: Any) -> None:
    """Without the monitoring scope, starting or stopping a stream gets PERMISSION_ERROR."""
    ws = await raw("/ws", make_token(scopes=("executions", "notifications")))
    for event, data in (("MONITORAMENTO_INICIAR", {"metricas": ["cpu"], "intervalo": 1000}),
                        ("MONITORAMENTO_PARAR", {})):
        await ws.send({"event": event, "data": {**data, "request_id": event}})
        message = await ws.recv()
        assert message["event"] == "ERRO" and message["data"]["codigo"] == "PERMISSION_ERROR"
        assert message["data"]["request_id"] == event


async def test_parar_stops_the_stream(raw: Any) -> None:
    """After MONITORAMENTO_PARAR is confirmed, no METRICA_PERFORMANCE arrives any more."""
    ws = await raw("/ws", make_token())
    await ws.send({"event": "MONITORAMENTO_INICIAR", "data": {"metricas": ["cpu"], "intervalo": 1000}})
    await ws.recv_kind("METRICA_PERFORMANCE", timeout=3)
    await ws.send({"event": "MONITORAMENTO_PARAR", "data": {"request_id": "stop"}})
    confirmation = await ws.recv_kind("MONITORAMENTO_CONFIRMADO")
    assert confirmation["data"] == {"status": "parado", "request_id": "stop"}
    omni.MonitoramentoConfirmado.model_validate(confirmation["data"])
    await ws.send({"event": "SESSAO_PING", "data": {"request_id": "after"}})
    assert (await ws.recv())["event"] == "SESSAO_PONG"
    await silent_for(ws, "METRICA_PERFORMANCE", 1.5)


async def test_parar_without_a_stream_is_confirmed(raw: Any) -> None:
    """MONITORAMENTO_PARAR with no stream running is answered like any other stop."""
    ws = await raw("/ws", make_token())
    await ws.send({"event": "MONITORAMENTO_PARAR", "data": {"request_id": "idle"}})
    assert (await ws.recv())["data"] == {"status": "parado", "request_id": "idle"}


async def test_disconnect_ends_the_stream(server: Any, raw: Any) -> None:
    """A client that disconnects has its stream task ended."""
    ws = await raw("/ws", make_token())
    await ws.send({"event": "MONITORAMENTO_INICIAR", "data": {"metricas": ["cpu"], "intervalo": 60000}})
    await ws.recv_kind("MONITORAMENTO_CONFIRMADO")
    namespace = server.app[SIO_KEY].namespace_handlers["/omni"]
    [client] = namespace.clients.values()
    stream = client.state["monitoring"]
    await ws.ws.close()
    await asyncio.wait_for(stream.done.wait(), 5)
    assert not namespace.clients


async def test_socketio_client_gets_the_same_stream(sio: Any) -> None:
    """A Socket.IO client on /omni gets MONITORAMENTO_CONFIRMADO and METRICA_PERFORMANCE as data objects."""
    io = await sio("/omni", auth={"token": make_token()})
    await io.emit("MONITORAMENTO_INICIAR", {"metricas": ["cpu", "requisicoes", "conexoes"], "intervalo": 1000,
                                            "request_id": "s1"})
    assert (await io.recv_kind("MONITORAMENTO_CONFIRMADO"))["status"] == "iniciado"
    received = []
    for _ in range(2):
        data = await io.recv_kind("METRICA_PERFORMANCE", timeout=3)
        received.append(time.monotonic())
        assert set(data) == {"cpu_uso", "requisicoes_por_segundo", "conexoes_ativas"}
        plausible(data)
    assert 0.7 <= received[1] - received[0] <= 1.6


# -- alerts ---------------------------------------------------------------------------------------


async def test_alert_reaches_subscribers_once_per_crossing(start_server: Any, raw_to: Any) -> None:
    """A second connection pushes the count over alert_connections_ratio × MAX_CONNECTIONS: a monitoring
    subscriber gets exactly one SISTEMA_ALERTA about it over several sampling periods; others get none."""
    server = await start_server(max_connections=10, alert_connections_ratio=0.15, alert_interval=0.2)
    watcher = await raw_to(server, "/ws", make_token("ops"))
    await watcher.send({"event": "MONITORAMENTO_INICIAR", "data": {"metricas": ["conexoes"], "intervalo": 60000}})
    await watcher.recv_kind("MONITORAMENTO_CONFIRMADO")
    other = await raw_to(server, "/ws", make_token("bob"))  # 2 of 10 connections: above 15 %
    await other.send({"event": "SESSAO_PING", "data": {}})
    await other.recv_kind("SESSAO_PONG")
    alert = omni.SistemaAlerta.model_validate(await alert_of(watcher, "conexoes"))
    assert alert.nivel == "warning" and "2 de 10" in alert.mensagem and alert.acoes
    await silent_for(watcher, "SISTEMA_ALERTA", 1.2, categoria="conexoes")  # six more sampling periods
    await other.send({"event": "SESSAO_PING", "data": {"request_id": "last"}})
    assert (await other.recv())["event"] == "SESSAO_PONG"  # not a subscriber: no alert came first


async def test_alert_crosses_instances(start_server: Any, raw_to: Any, redis_server: Any) -> None:
    """With Redis, an alert raised on instance A reaches a monitoring subscriber connected to instance B."""
    a = await start_server(redis_url=redis_server.url, max_connections=10, alert_connections_ratio=0.15,
                           alert_interval=0.2)
    b = await start_server(redis_url=redis_server.url)
    async with asyncio.timeout(5):  # both listen on Redis (a real condition, polled briefly)
        while not (a.app[SIO_KEY].manager.subscribed and b.app[SIO_KEY].manager.subscribed):
            await asyncio.sleep(0.02)
    watcher = await raw_to(b, "/ws", make_token("ops"))
    await watcher.send({"event": "MONITORAMENTO_INICIAR", "data": {"metricas": ["conexoes"], "intervalo": 60000}})
    await watcher.recv_kind("MONITORAMENTO_CONFIRMADO")
    for user in ("ana", "bob"):  # 2 of A's 10 connections: above 15 %
        client = await raw_to(a, "/ws", make_token(user))
        await client.send({"event": "SESSAO_PING", "data": {}})
        await client.recv_kind("SESSAO_PONG")
    alert = omni.SistemaAlerta.model_validate(await alert_of(watcher, "conexoes"))
    assert "2 de 10" in alert.mensagem
