"""Omni keyword executions: `EXECUCAO_INICIAR`, `_PAUSAR`, `_RESUMIR`, `_CANCELAR` and `_CONSULTAR`.

The work itself is `app.executions.ExecutionService` (`gateway.services["executions"]`); these
handlers validate, join the execution's room and answer.
"""
from __future__ import annotations

from typing import Any

from app.executions import TERMINAL, final_event
from app.transport.codecs import answering
from app.origins import origin_params

from .base import Client, PonteNamespace


class ExecutionHandlers(PonteNamespace):
    """The execution events of the Omni document."""

    @property
    def executions(self) -> Any:
        return self.gateway.services["executions"]

    def active_executions(self) -> int:
        return int(self.executions.active()) if "executions" in self.gateway.services else 0

    def _handshake(self, request: Any, auth: dict[str, Any]) -> Client:
        client = super()._handshake(request, auth)
        client.params = origin_params(request)  # where download URLs point when PUBLIC_URL is not set
        return client

    async def on_EXECUCAO_INICIAR(self, sid: str, client: Client, data: Any) -> None:
        config = {"blog_url": data.blog_url, "categoria_id": data.categoria_id, **data.configuracoes.model_dump()}
        run = await self.executions.start(client.principal.sub, config, client.params.get("origin", ""))
        await self.enter_room(sid, f"execution:{run.id}")
        await self.emit("EXECUCAO_INICIADA", answering({"execucao_id": run.id, "status": "iniciada"},
                                                       data.request_id), to=sid)

    async def on_EXECUCAO_PAUSAR(self, sid: str, client: Client, data: Any) -> None:
        await self._control("pausar", sid, client, data)

    async def on_EXECUCAO_RESUMIR(self, sid: str, client: Client, data: Any) -> None:
        await self._control("resumir", sid, client, data)

    async def on_EXECUCAO_CANCELAR(self, sid: str, client: Client, data: Any) -> None:
        await self._control("cancelar", sid, client, data)

    async def on_EXECUCAO_CONSULTAR(self, sid: str, client: Client, data: Any) -> None:
        """The execution's current state (or its final event), and the room to follow it."""
        principal = client.principal
        service = self.executions
        run = service.runs.get(data.execucao_id)
        # a run that has ended (and is being cleaned up) answers from its record: its final event
        if run is not None and run.status not in TERMINAL and (run.owner == principal.sub or principal.allows("admin")):
            event, payload = "EXECUCAO_STATUS", service.status_payload(run)
        else:
            record = await service.record(data.execucao_id, principal.sub, principal.allows("admin"))
            event, payload = final_event(record)
        await self.follow(sid, f"execution:{data.execucao_id}")  # what was sent to it first, if still held
        await self.emit(event, payload, to=sid)

    async def _control(self, action: str, sid: str, client: Client, data: Any) -> None:
        principal = client.principal
        await self.executions.control(action, data.execucao_id, principal.sub, principal.allows("admin"),
                                      sid, data.request_id)
