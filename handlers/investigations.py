"""The Cidadão.AI investigations namespace (`/investigations`, raw
`/api/v1/ws/investigations/{investigation_id}`): one room per investigation."""
from __future__ import annotations

from app.errors import PERMISSION_ERROR, PonteError
from app.investigations import visible
from schemas import cidadao

from .base import Client, PonteNamespace
from .chat import checked_id, snapshot
from .session import CidadaoSession

WELCOME = "Conectado às atualizações da investigação"


class InvestigationsNamespace(CidadaoSession, PonteNamespace):
    """Progress, anomalies, findings and reports of one investigation, pushed to its room."""

    inbound = cidadao.INVESTIGATIONS_INBOUND
    auth_required = False
    event_field = "type"
    params = ("investigation_id", "session_id")  # session_id: the anonymous chat session that created it

    async def authorize(self, sid: str, client: Client) -> None:
        """Tokens with the `investigations` scope follow any investigation (even before it exists);
        its creator (user, or anonymous chat session) follows its own; others are refused (1008)."""
        inv_id = checked_id("investigation_id", client.params["investigation_id"])
        if client.principal.allows("investigations"):
            return
        doc = await self.gateway.services["investigations"].get(inv_id)
        if doc is None or not visible(doc, client.principal, client.params["session_id"] or None):
            raise PonteError(PERMISSION_ERROR, "sem acesso a esta investigação: use o token de quem a criou, "
                             "o session_id da sessão que a criou, ou o escopo 'investigations'",
                             {"escopo": "investigations"})

    async def joined(self, sid: str, client: Client) -> None:
        await self.enter_room(sid, f"investigation:{client.params['investigation_id']}")

    async def welcome(self, sid: str, client: Client) -> None:
        inv_id = client.params["investigation_id"]
        await self.emit("connection", {"status": "connected", "investigation_id": inv_id, "message": WELCOME}, to=sid)
        doc = await self.gateway.services["investigations"].get(inv_id)
        if doc is not None:  # a client that connects late learns where the investigation stands
            await self.emit("investigation_progress", snapshot(doc), to=sid)
