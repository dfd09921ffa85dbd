"""Models for the Omni Keywords Finder WebSocket API ({event, data, timestamp})."""

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from ._base import Inbound, Outbound, SafeId

ErrorCode = Literal[
    "AUTHENTICATION_ERROR", "PERMISSION_ERROR", "VALIDATION_ERROR", "TIMEOUT_ERROR",
    "NETWORK_ERROR", "RATE_LIMIT_ERROR", "SYSTEM_ERROR",
]
# "na_fila": Ponte's, for a run waiting for a worker (the document's six do not cover a queue)
ExecutionStatus = Literal["na_fila", "iniciada", "em_andamento", "pausada", "concluida", "cancelada", "erro"]
NotificationType = Literal["execucao_concluida", "erro", "aviso", "info", "sucesso"]
MetricName = Literal["cpu", "memoria", "tempo_resposta", "requisicoes", "execucoes", "conexoes"]

RequestId = Annotated[str, StringConstraints(max_length=128)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Count = Annotated[int, Field(ge=0)]
NonNegFloat = Annotated[float, Field(ge=0)]


def _check_http_url(value: str) -> str:
    """Accept only printable absolute http(s) URLs with a host."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http or https URL")
    if " " in value or not value.isprintable():
        raise ValueError("must not contain whitespace or control characters")
    return value


HttpUrlStr = Annotated[str, StringConstraints(max_length=2048), AfterValidator(_check_http_url)]


# --- Envelopes ---------------------------------------------------------------


class EventEnvelope(BaseModel):
    """Documented frame: {event, data, timestamp}."""

    event: str = Field(min_length=1, max_length=64)
    data: dict[str, Any] = {}
    timestamp: str | None = None


class TypeEnvelope(BaseModel):
    """Keep-alive frame used by the Omni web client: {type, data, timestamp, id}."""

    type: str = Field(min_length=1, max_length=64)
    data: dict[str, Any] = {}
    timestamp: str | None = None
    id: str | None = None


# --- Client -> server payloads ----------------------------------------------


class Configuracoes(Inbound):
    """Crawl settings of EXECUCAO_INICIAR."""

    max_keywords: int = Field(default=100, ge=1, le=1000)
    profundidade: int = Field(default=2, ge=1, le=5)
    timeout: int = Field(default=30, ge=1, le=120)


class ExecucaoIniciar(Inbound):
    """EXECUCAO_INICIAR: start a keyword run on a blog."""

    blog_url: HttpUrlStr
    categoria_id: Count | None = None
    configuracoes: Configuracoes = Field(default_factory=Configuracoes)
    request_id: RequestId | None = None


class ExecucaoControle(Inbound):
    """EXECUCAO_PAUSAR / EXECUCAO_RESUMIR / EXECUCAO_CANCELAR: act on one run."""

    execucao_id: SafeId
    request_id: RequestId | None = None


class ExecucaoConsultar(Inbound):
    """EXECUCAO_CONSULTAR (Ponte's addition): the current state of one run, for a client that
    reconnected; answered with EXECUCAO_STATUS, or the run's EXECUCAO_CONCLUIDA / EXECUCAO_ERRO."""

    execucao_id: SafeId
    request_id: RequestId | None = None


class NotificacaoConfigurar(Inbound):
    """NOTIFICACAO_CONFIGURAR: choose which notification types to receive."""

    tipos: list[NotificationType] = Field(max_length=10)
    canal: Literal["websocket"] = "websocket"
    request_id: RequestId | None = None


class MonitoramentoIniciar(Inbound):
    """MONITORAMENTO_INICIAR: subscribe to periodic performance metrics."""

    metricas: list[MetricName] = Field(min_length=1, max_length=10)
    intervalo: int = Field(default=5000, ge=1000, le=60000)
    request_id: RequestId | None = None


class MonitoramentoParar(Inbound):
    """MONITORAMENTO_PARAR: stop the performance metric stream."""

    request_id: RequestId | None = None


class SessaoPing(Inbound):
    """SESSAO_PING: keep the session alive."""

    request_id: RequestId | None = None


class Ping(Inbound):
    """Type-form keep-alive (`ping` / `heartbeat`) sent by the Omni web client."""

    model_config = ConfigDict(extra="ignore")

    request_id: RequestId | None = None


INBOUND: dict[str, type[BaseModel]] = {
    "EXECUCAO_INICIAR": ExecucaoIniciar,
    "EXECUCAO_PAUSAR": ExecucaoControle,
    "EXECUCAO_RESUMIR": ExecucaoControle,
    "EXECUCAO_CANCELAR": ExecucaoControle,
    "EXECUCAO_CONSULTAR": ExecucaoConsultar,
    "NOTIFICACAO_CONFIGURAR": NotificacaoConfigurar,
    "MONITORAMENTO_INICIAR": MonitoramentoIniciar,
    "MONITORAMENTO_PARAR": MonitoramentoParar,
    "SESSAO_PING": SessaoPing,
    "ping": Ping,
    "heartbeat": Ping,
}


# --- Server -> client payloads ----------------------------------------------


class ExecucaoIniciada(Outbound):
    """EXECUCAO_INICIADA: a run was accepted."""

    execucao_id: str
    status: ExecutionStatus
    request_id: str | None = None


class ExecucaoControlada(Outbound):
    """EXECUCAO_PAUSADA / EXECUCAO_RESUMIDA / EXECUCAO_CANCELADA: a control request took effect."""

    execucao_id: str
    status: ExecutionStatus
    request_id: str | None = None


class Progresso(Outbound):
    """Progress counters of a run."""

    total: Count
    atual: Count
    percentual: float = Field(ge=0, le=100)


class ExecucaoStatus(Outbound):
    """EXECUCAO_STATUS: periodic state of a run."""

    execucao_id: str
    status: ExecutionStatus
    progresso: Progresso
    keywords_encontradas: Count
    tempo_decorrido: NonNegFloat
    tempo_estimado: NonNegFloat | None = None
    posicao: Annotated[int, Field(ge=1)] | None = None  # Ponte's: place in the queue, with status na_fila
    tentativa: Annotated[int, Field(ge=2)] | None = None  # Ponte's: a run started over after its worker died


class Keyword(Outbound):
    """One keyword found on a page."""

    termo: str
    frequencia: Count
    relevancia: Fraction
    posicao: Count
    url: str


class KeywordEncontrada(Outbound):
    """KEYWORD_ENCONTRADA: a new keyword was found."""

    execucao_id: str
    keyword: Keyword
    cluster_id: str | None = None


class Cluster(Outbound):
    """A group of related keywords."""

    id: str
    nome: str
    keywords: list[str]
    tamanho: Count
    relevancia_media: Fraction


class ClusterFormado(Outbound):
    """CLUSTER_FORMADO: a new keyword cluster was formed."""

    execucao_id: str
    cluster: Cluster


class Resultado(Outbound):
    """Final totals of a finished run."""

    total_keywords: Count
    clusters_formados: Count
    tempo_total: NonNegFloat
    taxa_sucesso: Fraction


class ExecucaoConcluida(Outbound):
    """EXECUCAO_CONCLUIDA: a run finished successfully."""

    execucao_id: str
    resultado: Resultado
    download_url: str | None = None


class ErroExecucao(Outbound):
    """Error detail carried by EXECUCAO_ERRO."""

    codigo: ErrorCode
    mensagem: str
    detalhes: dict[str, Any] = {}


class ExecucaoErro(Outbound):
    """EXECUCAO_ERRO: a run failed."""

    execucao_id: str
    erro: ErroExecucao
    recomendacao: str | None = None


class AcaoNotificacao(Outbound):
    """Optional call-to-action attached to a notification."""

    tipo: str
    url: str


class NotificacaoGeral(Outbound):
    """NOTIFICACAO_GERAL: a general system notification."""

    tipo: NotificationType
    titulo: str
    mensagem: str
    acao: AcaoNotificacao | None = None


class NotificacaoConfigurada(Outbound):
    """NOTIFICACAO_CONFIGURADA: notification preferences were stored."""

    tipos: list[NotificationType]
    canal: Literal["websocket"] = "websocket"
    request_id: str | None = None


class MetricaPerformance(Outbound):
    """METRICA_PERFORMANCE: one sample of the requested metrics."""

    cpu_uso: NonNegFloat | None = None
    memoria_uso: NonNegFloat | None = None
    tempo_resposta_medio: NonNegFloat | None = None
    requisicoes_por_segundo: NonNegFloat | None = None
    execucoes_ativas: Count | None = None
    conexoes_ativas: Count | None = None


class MonitoramentoConfirmado(Outbound):
    """MONITORAMENTO_CONFIRMADO: the metric stream was started or stopped."""

    status: Literal["iniciado", "parado"]
    metricas: list[MetricName] = []
    intervalo: int | None = None
    request_id: str | None = None


class SistemaAlerta(Outbound):
    """SISTEMA_ALERTA: an operational alert."""

    nivel: Literal["info", "warning", "critical"]
    categoria: str
    mensagem: str
    acoes: list[str] = []


class SessaoPong(Outbound):
    """SESSAO_PONG: answer to SESSAO_PING."""

    request_id: str | None = None
    server_time: str


class SessaoConectada(Outbound):
    """SESSAO_CONECTADA (extension): the first message of a raw /ws connection. Its envelope also carries
    `offset` (where the client stands) and `recovery` ({pid, recovered, missed[, resync]})."""

    user_id: str


class Pong(Outbound):
    """Type-form `pong`: answer to `ping` / `heartbeat`."""

    request_id: str | None = None
    server_time: str


class Erro(Outbound):
    """ERRO: a request-level error."""

    codigo: ErrorCode
    mensagem: str
    detalhes: dict[str, Any] = {}
    recomendacao: str | None = None
    request_id: str | None = None


OUTBOUND: dict[str, type[BaseModel]] = {
    "EXECUCAO_INICIADA": ExecucaoIniciada,
    "EXECUCAO_PAUSADA": ExecucaoControlada,
    "EXECUCAO_RESUMIDA": ExecucaoControlada,
    "EXECUCAO_CANCELADA": ExecucaoControlada,
    "EXECUCAO_STATUS": ExecucaoStatus,
    "KEYWORD_ENCONTRADA": KeywordEncontrada,
    "CLUSTER_FORMADO": ClusterFormado,
    "EXECUCAO_CONCLUIDA": ExecucaoConcluida,
    "EXECUCAO_ERRO": ExecucaoErro,
    "NOTIFICACAO_GERAL": NotificacaoGeral,
    "NOTIFICACAO_CONFIGURADA": NotificacaoConfigurada,
    "METRICA_PERFORMANCE": MetricaPerformance,
    "MONITORAMENTO_CONFIRMADO": MonitoramentoConfirmado,
    "SISTEMA_ALERTA": SistemaAlerta,
    "SESSAO_PONG": SessaoPong,
    "SESSAO_CONECTADA": SessaoConectada,
    "pong": Pong,
    "ERRO": Erro,
}
