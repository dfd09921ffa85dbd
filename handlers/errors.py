"""How each protocol shows an error: Omni's `ERRO` event and Cidadão.AI's `error` message."""
from __future__ import annotations

from typing import Any

from app.errors import PonteError

OMNI_CODES = {"NOT_AVAILABLE": "SYSTEM_ERROR", "SERVER_OVERLOADED": "SYSTEM_ERROR"}
CIDADAO_CODES = {"RATE_LIMIT_ERROR": "RATE_LIMIT", "SYSTEM_ERROR": "INTERNAL_ERROR",
                 "TIMEOUT_ERROR": "TIMEOUT", "NETWORK_ERROR": "BACKEND_ERROR"}
RECOMMENDATIONS = {
    "AUTHENTICATION_ERROR": "Renovar token de autenticação",
    "PERMISSION_ERROR": "Solicitar um token com o escopo necessário",
    "VALIDATION_ERROR": "Corrigir os dados enviados conforme a documentação",
    "RATE_LIMIT_ERROR": "Reduzir a frequência de mensagens",
    "SYSTEM_ERROR": "Tentar novamente mais tarde",
    "NOT_AVAILABLE": "Este evento ainda não é servido por esta versão do servidor",
    "SERVER_OVERLOADED": "Reconectar mais tarde",
}


def omni_error(error: PonteError, request_id: str | None = None) -> tuple[str, dict[str, Any]]:
    """`ERRO` with codigo, mensagem, detalhes and recomendacao, as the Omni document shows."""
    details = dict(error.details)
    if error.code in OMNI_CODES:
        details.setdefault("motivo", error.code.lower())
    data: dict[str, Any] = {"codigo": OMNI_CODES.get(error.code, error.code), "mensagem": error.message,
                            "detalhes": details, "recomendacao": RECOMMENDATIONS.get(error.code)}
    if request_id is not None:
        data["request_id"] = request_id
    return "ERRO", data


def cidadao_error(error: PonteError, request_id: str | None = None) -> tuple[str, dict[str, Any]]:
    """`error` with code and message, as the Cidadão.AI document shows."""
    data: dict[str, Any] = {"code": CIDADAO_CODES.get(error.code, error.code), "message": error.message}
    if error.details:
        data["details"] = error.details
    return "error", data
