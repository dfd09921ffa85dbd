"""Tests for the Omni Keywords Finder wire schemas."""

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from schemas import omni

TS = "2024-12-19T23:00:00Z"

# Client -> server examples copied from the documentation (including its JS snippets).
INBOUND_EXAMPLES: list[str] = [
    """{"event": "EXECUCAO_INICIAR", "data": {"blog_url": "https://exemplo.com", "categoria_id": 1,
        "configuracoes": {"max_keywords": 100, "profundidade": 3, "timeout": 30},
        "request_id": "req_123456"}, "timestamp": "2024-12-19T23:00:00Z"}""",
    """{"event": "EXECUCAO_PAUSAR", "data": {"execucao_id": "exec_789012", "request_id": "req_123457"},
        "timestamp": "2024-12-19T23:00:00Z"}""",
    """{"event": "EXECUCAO_RESUMIR", "data": {"execucao_id": "exec_789012", "request_id": "req_123458"},
        "timestamp": "2024-12-19T23:00:00Z"}""",
    """{"event": "EXECUCAO_CANCELAR", "data": {"execucao_id": "exec_789012", "request_id": "req_123459"},
        "timestamp": "2024-12-19T23:00:00Z"}""",
    """{"event": "NOTIFICACAO_CONFIGURAR", "data": {"tipos": ["execucao_concluida", "erro", "aviso"],
        "canal": "websocket", "request_id": "req_123460"}, "timestamp": "2024-12-19T23:00:00Z"}""",
    """{"event": "MONITORAMENTO_INICIAR", "data": {"metricas": ["cpu", "memoria", "tempo_resposta"],
        "intervalo": 5000, "request_id": "req_123461"}, "timestamp": "2024-12-19T23:00:00Z"}""",
    """{"event": "SESSAO_PING", "data": {"request_id": "req_123462"}, "timestamp": "2024-12-19T23:00:00Z"}""",
    """{"event": "SESSAO_PING", "data": {"request_id": "test_001"}, "timestamp": "2024-12-19T23:00:00Z"}""",
    """{"event": "EXECUCAO_INICIAR", "data": {"blog_url": "https://exemplo.com", "categoria_id": 1,
        "configuracoes": {"max_keywords": 10, "profundidade": 2}, "request_id": "test_exec_001"},
        "timestamp": "2024-12-19T23:00:00Z"}""",
    """{"event": "EXECUCAO_PAUSAR", "data": {"execucao_id": "exec_789012"}, "timestamp": "2024-12-19T23:00:00Z"}""",
]

# Server -> client examples copied from the documentation.
OUTBOUND_EXAMPLES: list[str] = [
    """{"event": "EXECUCAO_INICIADA", "data": {"execucao_id": "exec_789012", "status": "iniciada",
        "request_id": "req_123456"}, "timestamp": "2024-12-19T23:00:01Z"}""",
    """{"event": "EXECUCAO_PAUSADA", "data": {"execucao_id": "exec_789012", "status": "pausada",
        "request_id": "req_123457"}, "timestamp": "2024-12-19T23:00:01Z"}""",
    """{"event": "SESSAO_PONG", "data": {"request_id": "req_123462", "server_time": "2024-12-19T23:00:00Z"},
        "timestamp": "2024-12-19T23:00:00Z"}""",
    """{"event": "EXECUCAO_STATUS", "data": {"execucao_id": "exec_789012", "status": "em_andamento",
        "progresso": {"total": 100, "atual": 45, "percentual": 45.0}, "keywords_encontradas": 23,
        "tempo_decorrido": 120, "tempo_estimado": 180}, "timestamp": "2024-12-19T23:02:00Z"}""",
    """{"event": "KEYWORD_ENCONTRADA", "data": {"execucao_id": "exec_789012", "keyword": {
        "termo": "palavra-chave", "frequencia": 15, "relevancia": 0.85, "posicao": 3,
        "url": "https://exemplo.com/pagina"}, "cluster_id": "cluster_123"},
        "timestamp": "2024-12-19T23:02:15Z"}""",
    """{"event": "CLUSTER_FORMADO", "data": {"execucao_id": "exec_789012", "cluster": {"id": "cluster_123",
        "nome": "Tecnologia", "keywords": ["tech", "tecnologia", "inovação"], "tamanho": 3,
        "relevancia_media": 0.78}}, "timestamp": "2024-12-19T23:02:30Z"}""",
    """{"event": "EXECUCAO_CONCLUIDA", "data": {"execucao_id": "exec_789012", "resultado": {
        "total_keywords": 156, "clusters_formados": 12, "tempo_total": 300, "taxa_sucesso": 0.95},
        "download_url": "https://api.exemplo.com/download/exec_789012"},
        "timestamp": "2024-12-19T23:05:00Z"}""",
    """{"event": "EXECUCAO_ERRO", "data": {"execucao_id": "exec_789012", "erro": {"codigo": "TIMEOUT_ERROR",
        "mensagem": "Timeout ao processar URL", "detalhes": {"url": "https://exemplo.com/pagina-lenta",
        "timeout": 30}}, "recomendacao": "Aumentar timeout ou verificar conectividade"},
        "timestamp": "2024-12-19T23:03:00Z"}""",
    """{"event": "NOTIFICACAO_GERAL", "data": {"tipo": "info", "titulo": "Sistema Atualizado",
        "mensagem": "Nova versão disponível com melhorias de performance",
        "acao": {"tipo": "link", "url": "https://exemplo.com/changelog"}},
        "timestamp": "2024-12-19T23:00:00Z"}""",
    """{"event": "METRICA_PERFORMANCE", "data": {"cpu_uso": 45.2, "memoria_uso": 67.8,
        "tempo_resposta_medio": 125, "requisicoes_por_segundo": 12.5, "execucoes_ativas": 3},
        "timestamp": "2024-12-19T23:00:00Z"}""",
    """{"event": "SISTEMA_ALERTA", "data": {"nivel": "warning", "categoria": "performance",
        "mensagem": "Uso de CPU acima de 80%", "acoes": ["Reduzir número de execuções simultâneas",
        "Verificar processos em background"]}, "timestamp": "2024-12-19T23:00:00Z"}""",
    """{"event": "ERRO", "data": {"codigo": "AUTHENTICATION_ERROR", "mensagem": "Token de autenticação inválido",
        "detalhes": {"token_expira_em": "2024-12-19T23:30:00Z"},
        "recomendacao": "Renovar token de autenticação"}, "timestamp": "2024-12-19T23:00:00Z"}""",
]


def error_locs(model: type[BaseModel], data: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Return the `loc` of every error raised when validating data against model."""
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return [err["loc"] for err in info.value.errors()]


@pytest.mark.parametrize("raw", INBOUND_EXAMPLES)
def test_inbound_examples_validate(raw: str) -> None:
    """Every documented client message parses as an envelope and its data as the mapped model."""
    frame = omni.EventEnvelope.model_validate_json(raw)
    omni.INBOUND[frame.event].model_validate(frame.data)


@pytest.mark.parametrize("raw", OUTBOUND_EXAMPLES)
def test_outbound_examples_round_trip(raw: str) -> None:
    """Every documented server message validates and dumps back to the same data."""
    frame = omni.EventEnvelope.model_validate_json(raw)
    model = omni.OUTBOUND[frame.event].model_validate(frame.data)
    assert model.model_dump(exclude_unset=True) == json.loads(raw)["data"]


def test_execucao_iniciar_defaults() -> None:
    """Missing configuracoes fields fall back to the documented defaults."""
    payload = omni.ExecucaoIniciar.model_validate({"blog_url": "http://exemplo.com"})
    assert payload.configuracoes == omni.Configuracoes(max_keywords=100, profundidade=2, timeout=30)
    assert payload.categoria_id is None and payload.request_id is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_keywords", 0), ("max_keywords", 1001), ("profundidade", 0), ("profundidade", 6),
     ("timeout", 0), ("timeout", 121), ("max_keywords", "10"), ("timeout", True)],
)
def test_configuracoes_bounds(field: str, value: Any) -> None:
    """Out-of-range or wrongly typed settings are rejected with the nested field in `loc`."""
    data = {"blog_url": "https://exemplo.com", "configuracoes": {field: value}}
    assert error_locs(omni.ExecucaoIniciar, data) == [("configuracoes", field)]


@pytest.mark.parametrize(
    "url",
    ["ftp://exemplo.com", "javascript:alert(1)", "exemplo.com", "https://", "https://ex ample.com",
     "https://exemplo.com/\n", "https://exemplo.com/" + "a" * 2048, ""],
)
def test_blog_url_rejected(url: str) -> None:
    """Non-http(s), host-less, whitespace-bearing or over-long blog URLs are rejected."""
    assert error_locs(omni.ExecucaoIniciar, {"blog_url": url}) == [("blog_url",)]


def test_categoria_id_must_be_non_negative() -> None:
    """A negative categoria_id is rejected."""
    data = {"blog_url": "https://exemplo.com", "categoria_id": -1}
    assert error_locs(omni.ExecucaoIniciar, data) == [("categoria_id",)]


@pytest.mark.parametrize("execucao_id", ["", "a" * 65, "exec 1", "exec/1", "exec_1\n", "<script>"])
def test_execucao_id_rejected(execucao_id: str) -> None:
    """Empty, over-long or unsafe execution ids are rejected."""
    assert error_locs(omni.ExecucaoControle, {"execucao_id": execucao_id}) == [("execucao_id",)]


def test_request_id_max_length() -> None:
    """A request_id longer than 128 characters is rejected."""
    assert error_locs(omni.SessaoPing, {"request_id": "r" * 129}) == [("request_id",)]


def test_notificacao_tipos_rules() -> None:
    """Notification types may be empty but must be known and at most ten."""
    assert omni.NotificacaoConfigurar.model_validate({"tipos": []}).canal == "websocket"
    assert error_locs(omni.NotificacaoConfigurar, {"tipos": ["spam"]}) == [("tipos", 0)]
    assert error_locs(omni.NotificacaoConfigurar, {"tipos": ["erro"] * 11}) == [("tipos",)]
    assert error_locs(omni.NotificacaoConfigurar, {"tipos": [], "canal": "email"}) == [("canal",)]


@pytest.mark.parametrize(
    ("data", "loc"),
    [({"metricas": []}, ("metricas",)), ({"metricas": ["cpu"] * 11}, ("metricas",)),
     ({"metricas": ["disco"]}, ("metricas", 0)), ({"metricas": ["cpu"], "intervalo": 999}, ("intervalo",)),
     ({"metricas": ["cpu"], "intervalo": 60001}, ("intervalo",))],
)
def test_monitoramento_bounds(data: dict[str, Any], loc: tuple[Any, ...]) -> None:
    """Metric lists and intervals outside their bounds are rejected at the right field."""
    assert error_locs(omni.MonitoramentoIniciar, data) == [loc]


def test_monitoramento_extra_metrics_and_default_interval() -> None:
    """The extra metric names are accepted and the interval defaults to 5000 ms."""
    payload = omni.MonitoramentoIniciar.model_validate({"metricas": ["requisicoes", "execucoes", "conexoes"]})
    assert payload.intervalo == 5000


@pytest.mark.parametrize(
    ("model", "data"),
    [(omni.ExecucaoIniciar, {"blog_url": "https://exemplo.com"}),
     (omni.ExecucaoControle, {"execucao_id": "exec_1"}),
     (omni.NotificacaoConfigurar, {"tipos": []}),
     (omni.MonitoramentoIniciar, {"metricas": ["cpu"]}),
     (omni.MonitoramentoParar, {}),
     (omni.SessaoPing, {})],
)
def test_inbound_extra_fields_rejected(model: type[BaseModel], data: dict[str, Any]) -> None:
    """Inbound payloads refuse unknown fields."""
    assert error_locs(model, {**data, "admin": True}) == [("admin",)]


def test_nested_configuracoes_extra_rejected() -> None:
    """Unknown keys inside configuracoes are refused too."""
    data = {"blog_url": "https://exemplo.com", "configuracoes": {"threads": 8}}
    assert error_locs(omni.ExecucaoIniciar, data) == [("configuracoes", "threads")]


def test_type_form_ping_ignores_extras() -> None:
    """The type-form keep-alive tolerates unknown fields and keeps request_id."""
    assert omni.Ping.model_validate({"request_id": "r1", "client": "web"}).request_id == "r1"
    assert omni.INBOUND["ping"] is omni.INBOUND["heartbeat"] is omni.Ping


def test_outbound_extra_fields_rejected() -> None:
    """Outbound payloads refuse stray fields, including in nested models."""
    with pytest.raises(ValidationError):
        omni.Erro(codigo="SYSTEM_ERROR", mensagem="x", extra_field=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        omni.Progresso.model_validate({"total": 1, "atual": 1, "percentual": 100, "eta": 3})


@pytest.mark.parametrize(
    ("model", "data", "loc"),
    [(omni.Keyword, {"termo": "t", "frequencia": 1, "relevancia": 1.5, "posicao": 0, "url": "u"}, ("relevancia",)),
     (omni.Progresso, {"total": 1, "atual": 1, "percentual": 101}, ("percentual",)),
     (omni.ExecucaoIniciada, {"execucao_id": "e", "status": "running"}, ("status",)),
     (omni.Erro, {"codigo": "TEAPOT", "mensagem": "x"}, ("codigo",)),
     (omni.SistemaAlerta, {"nivel": "debug", "categoria": "c", "mensagem": "m"}, ("nivel",)),
     (omni.MonitoramentoConfirmado, {"status": "ativo"}, ("status",))],
)
def test_outbound_bounds(model: type[BaseModel], data: dict[str, Any], loc: tuple[Any, ...]) -> None:
    """Outbound values outside their documented range or vocabulary are rejected."""
    assert error_locs(model, data) == [loc]


def test_undocumented_outbound_events_build() -> None:
    """The reply events the docs imply but do not show can be built and serialised."""
    assert omni.ExecucaoControlada(execucao_id="e", status="cancelada").model_dump()["status"] == "cancelada"
    assert omni.NotificacaoConfigurada(tipos=["erro"], request_id="r").canal == "websocket"
    confirmed = omni.MonitoramentoConfirmado(status="iniciado", metricas=["cpu"], intervalo=5000)
    assert confirmed.metricas == ["cpu"]
    assert omni.Pong(server_time=TS).request_id is None
    assert omni.MetricaPerformance(conexoes_ativas=2).model_dump(exclude_none=True) == {"conexoes_ativas": 2}
    assert omni.Erro(codigo="VALIDATION_ERROR", mensagem="m").detalhes == {}


def test_envelopes() -> None:
    """Envelopes default data to {} and bound the event name length."""
    assert omni.EventEnvelope.model_validate({"event": "SESSAO_PING"}).data == {}
    assert error_locs(omni.EventEnvelope, {"event": ""}) == [("event",)]
    assert error_locs(omni.EventEnvelope, {"event": "E" * 65}) == [("event",)]
    assert error_locs(omni.EventEnvelope, {"event": "X", "data": []}) == [("data",)]
    frame = omni.TypeEnvelope.model_validate({"type": "heartbeat", "id": "1", "timestamp": TS})
    assert (frame.type, frame.data, frame.id) == ("heartbeat", {}, "1")


@pytest.mark.parametrize("table", [omni.INBOUND, omni.OUTBOUND])
def test_maps_point_to_models(table: dict[str, type[BaseModel]]) -> None:
    """Every event name in the dispatch maps is bound to a pydantic model class."""
    assert table and all(isinstance(m, type) and issubclass(m, BaseModel) for m in table.values())


def test_maps_cover_contract() -> None:
    """The dispatch maps list exactly the agreed event names."""
    assert set(omni.INBOUND) == {
        "EXECUCAO_INICIAR", "EXECUCAO_PAUSAR", "EXECUCAO_RESUMIR", "EXECUCAO_CANCELAR",
        "EXECUCAO_CONSULTAR",  # Ponte's addition: a reconnecting client asks for its execution's state
        "NOTIFICACAO_CONFIGURAR", "MONITORAMENTO_INICIAR", "MONITORAMENTO_PARAR", "SESSAO_PING",
        "ping", "heartbeat",
    }
    assert set(omni.OUTBOUND) == {
        "EXECUCAO_INICIADA", "EXECUCAO_PAUSADA", "EXECUCAO_RESUMIDA", "EXECUCAO_CANCELADA",
        "EXECUCAO_STATUS", "KEYWORD_ENCONTRADA", "CLUSTER_FORMADO", "EXECUCAO_CONCLUIDA",
        "EXECUCAO_ERRO", "NOTIFICACAO_GERAL", "NOTIFICACAO_CONFIGURADA", "METRICA_PERFORMANCE",
        "MONITORAMENTO_CONFIRMADO", "SISTEMA_ALERTA", "SESSAO_PONG", "SESSAO_CONECTADA", "pong", "ERRO",
    }
