"""The Cidadão.AI investigations namespace (`/investigations`, raw
`/api/v1/ws/investigations/{investigation_id}`): one room per investigation.

Only who may see an investigation (`app.investigation_access.visible`) connects; anyone else, and everyone
for an id that does not exist, gets the same refusal: `NOT_FOUND`, close 1008 / `connect_error`."""
from __future__ import annotations

from app.investigation_access import checked_id, not_found, visible
from schemas import cidadao

from app.transport.namespace import Recovery

from .base import Client, PonteNamespace
from .chat import snapshot
from .session import CidadaoSession

WELCOME = "Conectado às atualizações da investigação"


class InvestigationsNamespace(CidadaoSession, PonteNamespace):
    """Progress, anomalies, findings and reports of one investigation, pushed to its room."""

    inbound = cidadao.INVESTIGATIONS_INBOUND
    auth_required = False
    routine = frozenset({"ping", "heartbeat"})
    params = ("investigation_id", "session_id")  # session_id: the anonymous chat session that created it

    async def authorize(self, sid: str, client: Client) -> None:
        """An existing investigation the client may see; otherwise the refusal of an unknown id (SYSTEM_ERROR
        while the store does not answer)."""
        inv_id = checked_id("investigation_id", client.params["investigation_id"])
        doc = await self.gateway.services["investigations"].fetch(inv_id)
        if doc is None or not visible(doc, client.principal, client.params["session_id"] or None):
            raise not_found()

    async def welcome(self, sid: str, client: Client, recovery: Recovery | None) -> None:
        """`connection`; then, unless it got its session back (its missed events follow instead), what was
        sent to the investigation's room and is still held, and where the investigation stands now."""
        inv_id = client.params["investigation_id"]
        await self.first_message(sid, client, recovery, "connection", {
            "status": "connected", "investigation_id": inv_id, "message": WELCOME})
        if recovery is not None and recovery.recovered:
            return
        await self.follow(sid, f"investigation:{inv_id}")
        doc = await self.gateway.services["investigations"].get(inv_id)
        if doc is not None:  # a client that connects late learns where the investigation stands
            await self.emit("investigation_progress", snapshot(doc), to=sid)
