"""The Cidadão.AI investigations namespace (`/investigations`, raw
`/api/v1/ws/investigations/{investigation_id}`): one room per investigation."""
from __future__ import annotations

from app.errors import PERMISSION_ERROR, PonteError
from schemas import cidadao

from .base import Client, PonteNamespace
from .chat import checked_id
from .session import CidadaoSession

WELCOME = "Conectado às atualizações da investigação"


class InvestigationsNamespace(CidadaoSession, PonteNamespace):
    """Progress, anomalies, findings and reports of one investigation, pushed to its room."""

    inbound = cidadao.INVESTIGATIONS_INBOUND
    auth_required = False
    event_field = "type"
    params = ("investigation_id",)

    async def authorize(self, sid: str, client: Client) -> None:
        checked_id("investigation_id", client.params["investigation_id"])
        if not client.principal.allows("investigations"):
            raise PonteError(PERMISSION_ERROR, "o escopo 'investigations' é necessário para acompanhar "
                             "uma investigação", {"escopo": "investigations"})

    async def joined(self, sid: str, client: Client) -> None:
        await self.enter_room(sid, f"investigation:{client.params['investigation_id']}")

    async def welcome(self, sid: str, client: Client) -> None:
        await self.emit("connection", {"status": "connected", "investigation_id": client.params["investigation_id"],
                                       "message": WELCOME}, to=sid)
