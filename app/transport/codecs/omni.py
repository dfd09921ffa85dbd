"""The Omni Keywords Finder envelope on /ws, in both forms its clients use."""
from __future__ import annotations

from typing import Any

from schemas.omni import EventEnvelope, TypeEnvelope

from ...clock import now_iso
from ...errors import PonteError

from . import DecodeError, Inbound, dumps, load_object, message_id, validate

EVENT_FORM = "event"  # {"event", "data", "timestamp"}: the documented form
TYPE_FORM = "type"  # {"type", "data", "timestamp", "id"}: what the real web front end sends

default_form = EVENT_FORM
event_field = "event"  # the envelope key that names a message's event


def decode(text: str) -> Inbound:
    """Decode one client message in either form."""
    obj = load_object(text)
    if "event" in obj:
        env = validate(EventEnvelope, obj)
        return Inbound(env.event, env.data, EVENT_FORM)  # type: ignore[attr-defined]
    if "type" in obj:
        env = validate(TypeEnvelope, obj)
        return Inbound(env.type, env.data, TYPE_FORM)  # type: ignore[attr-defined]
    raise DecodeError("event: field required", "event")


def encode(event: str, data: Any, form: str, offset: str | None = None, extra: dict[str, Any] | None = None) -> str:
    """Encode one server message in the form the client used; an event sent to a room carries its
    `offset` (connection-state recovery), a reply to one connection none; `extra`: more top-level fields
    (a first message's `recovery`)."""
    if form == TYPE_FORM:
        message = {"type": event, "data": data, "timestamp": now_iso(), "id": message_id()}
    else:
        message = {"event": event, "data": data, "timestamp": now_iso()}
    if offset is not None:
        message["offset"] = offset
    if extra:
        message.update(extra)
    return dumps(message)


OMNI_CODES = {"NOT_AVAILABLE": "SYSTEM_ERROR", "SERVER_OVERLOADED": "SYSTEM_ERROR"}
RECOMMENDATIONS = {
    "AUTHENTICATION_ERROR": "Renovar token de autenticação",
    "PERMISSION_ERROR": "Solicitar um token com o escopo necessário",
    "VALIDATION_ERROR": "Corrigir os dados enviados conforme a documentação",
    "RATE_LIMIT_ERROR": "Reduzir a frequência de mensagens",
    "SYSTEM_ERROR": "Tentar novamente mais tarde",
    "NOT_AVAILABLE": "Este evento ainda não é servido por esta versão do servidor",
    "SERVER_OVERLOADED": "Reconectar mais tarde",
}


def error(err: PonteError, request_id: str | None = None) -> tuple[str, dict[str, Any]]:
    """`ERRO` with codigo, mensagem, detalhes and recomendacao, as the Omni document shows."""
    details = dict(err.details)
    if err.code in OMNI_CODES:
        details.setdefault("motivo", err.code.lower())
    data: dict[str, Any] = {"codigo": OMNI_CODES.get(err.code, err.code), "mensagem": err.message,
                            "detalhes": details, "recomendacao": RECOMMENDATIONS.get(err.code)}
    if request_id is not None:
        data["request_id"] = request_id
    return "ERRO", data
