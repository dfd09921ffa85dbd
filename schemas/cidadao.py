"""Models for the Cidadão.AI WebSocket API ({type, data, timestamp, id})."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ._base import Inbound, Outbound, SafeId

ErrorCode = Literal[
    "RATE_LIMIT", "AUTHENTICATION_ERROR", "PERMISSION_ERROR", "VALIDATION_ERROR",
    "INVALID_MESSAGE", "MESSAGE_TOO_LARGE", "SERVER_OVERLOADED", "NOT_AVAILABLE",
    "INTERNAL_ERROR", "TIMEOUT", "BACKEND_ERROR", "NOT_FOUND",
]
Severity = Literal["low", "medium", "high", "critical"]

ChatText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class Envelope(BaseModel):
    """Frame in both directions: {type, data, timestamp, id}."""

    type: str = Field(min_length=1, max_length=64)
    data: dict[str, Any] = {}
    timestamp: str | None = None
    id: str | None = None


# --- Client -> server payloads ----------------------------------------------


class ChatMessage(Inbound):
    """`chat`: a user message for the agents."""

    message: ChatText


class TypingIndicator(Inbound):
    """`typing`: the client reports typing activity."""

    agent: str | None = Field(default=None, max_length=64)
    is_typing: bool = True


class Subscription(Inbound):
    """`subscribe` / `unsubscribe`: follow or drop one investigation."""

    investigation_id: SafeId


class Ping(Inbound):
    """`ping`: keep-alive with an empty payload."""

    model_config = ConfigDict(extra="ignore")


CHAT_INBOUND: dict[str, type[BaseModel]] = {
    "chat": ChatMessage,
    "typing": TypingIndicator,
    "subscribe": Subscription,
    "unsubscribe": Subscription,
    "ping": Ping,
}

INVESTIGATIONS_INBOUND: dict[str, type[BaseModel]] = {"ping": Ping}


# --- Server -> client payloads ----------------------------------------------


class Connection(Outbound):
    """`connection`: the socket was accepted."""

    status: Literal["connected"] = "connected"
    session_id: str | None = None
    investigation_id: str | None = None
    message: str


class ChatChunk(Outbound):
    """`chat`: one streamed piece of an agent (or echoed user) message."""

    role: Literal["assistant", "user"]
    content: str
    agent_id: str | None = None
    agent_name: str | None = None
    chunk: bool
    done: bool | None = None
    message_id: str | None = None


class Typing(Outbound):
    """`typing`: an agent (or peer) is typing."""

    agent: str | None = None
    session_id: str | None = None
    is_typing: bool = True


class Subscribed(Outbound):
    """`subscribed` / `unsubscribed`: subscription change confirmed."""

    investigation_id: str
    status: Literal["subscribed", "unsubscribed"]


class InvestigationProgress(Outbound):
    """`investigation_progress`: progress of an investigation."""

    investigation_id: str
    update_type: str
    progress: float = Field(ge=0, le=100)
    status: str
    message: str


class AnomalyDetails(Outbound):
    """Evidence behind an anomaly; extra keys are allowed."""

    model_config = ConfigDict(extra="allow")

    contract_id: str
    expected_value: float
    actual_value: float


class AnomalyDetected(Outbound):
    """`anomaly_detected`: a new anomaly was found."""

    investigation_id: str
    severity: Severity
    description: str
    details: AnomalyDetails


class AgentFinding(Outbound):
    """`agent_finding`: an agent reported a finding."""

    investigation_id: str
    agent_id: str
    agent_name: str
    finding: str
    confidence: float | None = Field(default=None, ge=0, le=1)
    details: dict[str, Any] | None = None


class ReportReady(Outbound):
    """`report_ready`: the investigation report can be fetched."""

    investigation_id: str
    report_url: str
    formats: list[str] | None = None
    summary: str | None = None


class Pong(Outbound):
    """`pong`: answer to `ping`."""

    server_time: str


class Heartbeat(Outbound):
    """`heartbeat`: periodic server liveness signal."""

    server_time: str


class PresenceChange(Outbound):
    """`presence` (Ponte's extension): someone joined or left the chat session; `count` is the session's
    connections on every instance, absent when Redis cannot say."""

    session_id: str
    action: Literal["joined", "left"]
    user: str | None  # the token's sub; None for an anonymous client
    count: int | None = Field(default=None, ge=0)


class HistoryMessage(Outbound):
    """One message of a chat session's history."""

    role: Literal["user", "assistant"]
    content: str


class History(Outbound):
    """`history` (Ponte's extension): a joining client gets the session's recent messages, oldest first."""

    session_id: str
    messages: list[HistoryMessage]


class Error(Outbound):
    """`error`: a request or connection level error."""

    code: ErrorCode
    message: str
    details: dict[str, Any] | None = None


OUTBOUND: dict[str, type[BaseModel]] = {
    "connection": Connection,
    "chat": ChatChunk,
    "typing": Typing,
    "subscribed": Subscribed,
    "unsubscribed": Subscribed,
    "investigation_progress": InvestigationProgress,
    "anomaly_detected": AnomalyDetected,
    "agent_finding": AgentFinding,
    "report_ready": ReportReady,
    "pong": Pong,
    "heartbeat": Heartbeat,
    "error": Error,
    "presence": PresenceChange,
    "history": History,
}
