"""Tests for the Cidadão.AI wire schemas."""

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from schemas import cidadao

TS = "2025-09-16T10:30:00Z"

# Client -> server examples copied from the documentation (with its `| ` prefixes removed).
INBOUND_EXAMPLES: list[str] = [
    """{"type": "chat", "data": {"message": "Investigar contratos do ministério"}}""",
    """{"type": "typing", "data": {"agent": "processing"}}""",
    """{"type": "subscribe", "data": {"investigation_id": "INV-2025-001"}}""",
    """{"type": "ping", "data": {}}""",
]

# Server -> client examples copied from the documentation.
OUTBOUND_EXAMPLES: list[str] = [
    """{"type": "connection", "data": {"status": "connected", "session_id": "abc-123",
        "message": "Conectado ao Cidadão.AI em tempo real"},
        "timestamp": "2025-09-16T10:30:00Z", "id": "msg-001"}""",
    """{"type": "chat", "data": {"role": "assistant", "content": "Vou analisar os contratos",
        "agent_id": "zumbi", "agent_name": "Zumbi dos Palmares", "chunk": true},
        "timestamp": "2025-09-16T10:30:05Z", "id": "msg-002"}""",
    """{"type": "investigation_progress", "data": {"investigation_id": "INV-2025-001",
        "update_type": "progress", "progress": 45, "status": "analyzing_contracts",
        "message": "Analisando 1.234 contratos..."}}""",
    """{"type": "anomaly_detected", "data": {"investigation_id": "INV-2025-001", "severity": "high",
        "description": "Preço 300% acima da média", "details": {"contract_id": "CNT-12345",
        "expected_value": 100000, "actual_value": 400000}}}""",
    """{"type": "error", "data": {"code": "RATE_LIMIT", "message": "Muitas mensagens. Aguarde 60 segundos."}}""",
]


def error_locs(model: type[BaseModel], data: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Return the `loc` of every error raised when validating data against model."""
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return [err["loc"] for err in info.value.errors()]


@pytest.mark.parametrize("raw", INBOUND_EXAMPLES)
def test_inbound_examples_validate(raw: str) -> None:
    """Every documented client message parses as an envelope and its data as the mapped model."""
    frame = cidadao.Envelope.model_validate_json(raw)
    cidadao.CHAT_INBOUND[frame.type].model_validate(frame.data)


@pytest.mark.parametrize("raw", OUTBOUND_EXAMPLES)
def test_outbound_examples_round_trip(raw: str) -> None:
    """Every documented server message validates and dumps back to the same data."""
    frame = cidadao.Envelope.model_validate_json(raw)
    model = cidadao.OUTBOUND[frame.type].model_validate(frame.data)
    assert model.model_dump(exclude_unset=True) == json.loads(raw)["data"]


def test_chat_message_is_stripped() -> None:
    """Chat text is stripped of surrounding whitespace."""
    assert cidadao.ChatMessage.model_validate({"message": "  oi \n"}).message == "oi"


@pytest.mark.parametrize("message", ["", "   \n\t", "x" * 4001, 42, None])
def test_chat_message_rejected(message: Any) -> None:
    """Blank, over-long or non-string chat messages are rejected at `message`."""
    assert error_locs(cidadao.ChatMessage, {"message": message}) == [("message",)]


def test_chat_message_max_length_accepted() -> None:
    """A 4000-character chat message is accepted."""
    assert len(cidadao.ChatMessage.model_validate({"message": "x" * 4000}).message) == 4000


def test_typing_indicator_rules() -> None:
    """Typing defaults to is_typing=True, allows no agent, and bounds the agent name."""
    assert cidadao.TypingIndicator.model_validate({}).is_typing is True
    assert error_locs(cidadao.TypingIndicator, {"agent": "a" * 65}) == [("agent",)]
    assert error_locs(cidadao.TypingIndicator, {"is_typing": "yes"}) == [("is_typing",)]


@pytest.mark.parametrize("investigation_id", ["", "i" * 65, "INV 1", "../etc", "INV-1\n"])
def test_subscription_id_rejected(investigation_id: str) -> None:
    """Empty, over-long or unsafe investigation ids are rejected."""
    assert error_locs(cidadao.Subscription, {"investigation_id": investigation_id}) == [("investigation_id",)]


@pytest.mark.parametrize(
    ("model", "data"),
    [(cidadao.ChatMessage, {"message": "oi"}),
     (cidadao.TypingIndicator, {}),
     (cidadao.Subscription, {"investigation_id": "INV-1"})],
)
def test_inbound_extra_fields_rejected(model: type[BaseModel], data: dict[str, Any]) -> None:
    """Inbound payloads refuse unknown fields."""
    assert error_locs(model, {**data, "role": "system"}) == [("role",)]


def test_ping_ignores_extras() -> None:
    """The keep-alive payload tolerates unknown fields."""
    cidadao.Ping.model_validate({"nonce": 1})


@pytest.mark.parametrize(
    ("model", "data", "loc"),
    [(cidadao.Connection, {"status": "open", "message": "m"}, ("status",)),
     (cidadao.ChatChunk, {"role": "system", "content": "c", "chunk": True}, ("role",)),
     (cidadao.Subscribed, {"investigation_id": "i", "status": "pending"}, ("status",)),
     (cidadao.InvestigationProgress,
      {"investigation_id": "i", "update_type": "p", "progress": 101, "status": "s", "message": "m"},
      ("progress",)),
     (cidadao.AnomalyDetected,
      {"investigation_id": "i", "severity": "extreme", "description": "d",
       "details": {"contract_id": "c", "expected_value": 1, "actual_value": 2}}, ("severity",)),
     (cidadao.AgentFinding,
      {"investigation_id": "i", "agent_id": "a", "agent_name": "A", "finding": "f", "confidence": 1.1},
      ("confidence",)),
     (cidadao.Error, {"code": "OOPS", "message": "m"}, ("code",))],
)
def test_outbound_bounds(model: type[BaseModel], data: dict[str, Any], loc: tuple[Any, ...]) -> None:
    """Outbound values outside their documented range or vocabulary are rejected."""
    assert error_locs(model, data) == [loc]


def test_outbound_extra_fields_rejected() -> None:
    """Outbound payloads refuse stray fields."""
    assert error_locs(cidadao.Pong, {"server_time": TS, "latency": 1}) == [("latency",)]


def test_anomaly_details_allow_extras() -> None:
    """Anomaly details keep extra evidence keys next to the required ones."""
    details = cidadao.AnomalyDetails.model_validate(
        {"contract_id": "c", "expected_value": 1, "actual_value": 2, "supplier": "ACME"}
    )
    assert details.model_dump()["supplier"] == "ACME"


def test_undocumented_outbound_events_build() -> None:
    """The reply events the docs mention but do not show can be built and serialised."""
    assert cidadao.Typing(agent="zumbi").model_dump() == {"agent": "zumbi", "session_id": None, "is_typing": True}
    assert cidadao.Subscribed(investigation_id="INV-1", status="unsubscribed").status == "unsubscribed"
    finding = cidadao.AgentFinding(
        investigation_id="INV-1", agent_id="zumbi", agent_name="Zumbi", finding="f", confidence=0.9
    )
    assert finding.details is None
    report = cidadao.ReportReady(investigation_id="INV-1", report_url="/r/1", formats=["pdf"])
    assert report.summary is None
    assert cidadao.Heartbeat(server_time=TS).server_time == TS
    assert cidadao.Connection(investigation_id="INV-1", message="m").status == "connected"
    chunk = cidadao.ChatChunk(role="assistant", content="", chunk=False, done=True, message_id="m1")
    assert chunk.done is True


def test_envelope() -> None:
    """The envelope defaults data to {} and bounds the type name length."""
    frame = cidadao.Envelope.model_validate({"type": "ping"})
    assert (frame.data, frame.timestamp, frame.id) == ({}, None, None)
    assert error_locs(cidadao.Envelope, {"type": ""}) == [("type",)]
    assert error_locs(cidadao.Envelope, {"type": "t" * 65}) == [("type",)]


@pytest.mark.parametrize("table", [cidadao.CHAT_INBOUND, cidadao.INVESTIGATIONS_INBOUND, cidadao.OUTBOUND])
def test_maps_point_to_models(table: dict[str, type[BaseModel]]) -> None:
    """Every message type in the dispatch maps is bound to a pydantic model class."""
    assert table and all(isinstance(m, type) and issubclass(m, BaseModel) for m in table.values())


def test_maps_cover_contract() -> None:
    """The dispatch maps list exactly the agreed message types."""
    assert set(cidadao.CHAT_INBOUND) == {"chat", "typing", "subscribe", "unsubscribe", "ping"}
    assert set(cidadao.INVESTIGATIONS_INBOUND) == {"ping"}
    assert set(cidadao.OUTBOUND) == {
        "connection", "chat", "typing", "subscribed", "unsubscribed", "investigation_progress",
        "anomaly_detected", "agent_finding", "report_ready", "pong", "heartbeat", "error",
        "presence", "history",  # extensions: who joins or leaves a chat session, its recent messages
    }
