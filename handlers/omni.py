"""The Omni Keywords Finder namespace (`/omni`, raw `/ws`): token required, room `user:{sub}`."""
from __future__ import annotations

from schemas import omni

from .base import PonteNamespace
from .executions import ExecutionHandlers
from .monitoring import MonitoringHandlers
from .notifications import NotificationHandlers
from .session import OmniSession

EXECUTION_EVENTS = ("EXECUCAO_INICIAR", "EXECUCAO_PAUSAR", "EXECUCAO_RESUMIR", "EXECUCAO_CANCELAR",
                    "EXECUCAO_CONSULTAR")


class OmniNamespace(ExecutionHandlers, OmniSession, NotificationHandlers, MonitoringHandlers, PonteNamespace):
    """Executions, notifications, monitoring and session events of the Omni document."""

    inbound = omni.INBOUND
    scopes = {**{event: "executions" for event in EXECUTION_EVENTS},
              "NOTIFICACAO_CONFIGURAR": "notifications",
              "MONITORAMENTO_INICIAR": "monitoring", "MONITORAMENTO_PARAR": "monitoring"}
    auth_required = True
    routine = frozenset({"SESSAO_PING", "ping", "heartbeat", "EXECUCAO_CONSULTAR"})
