"""The Cidadão.AI chat namespace (`/chat`, raw `/api/v1/ws/chat/{session_id}`).

Auth is optional, as the document says; an anonymous principal may only chat in its session.
A session opened with a token belongs to that user: other users cannot join it.
"""
from __future__ import annotations

import time
from typing import Any

from pydantic import TypeAdapter, ValidationError

from app.auth import Principal
from app.errors import PERMISSION_ERROR, VALIDATION_ERROR, PonteError
from schemas import cidadao
from schemas._base import SafeId

from .base import Client, PonteNamespace
from .session import CidadaoSession

MAX_SUBSCRIPTIONS = 32
WELCOME = "Conectado ao Cidadão.AI em tempo real"
_safe_id = TypeAdapter(SafeId)


def checked_id(name: str, value: str) -> str:
    """A path or handshake id that is safe to use in a room name, or a VALIDATION_ERROR."""
    try:
        return _safe_id.validate_python(value)
    except ValidationError:
        raise PonteError(VALIDATION_ERROR, f"{name}: 1 a 64 caracteres [A-Za-z0-9_.:-]",
                         {"campo": name}) from None


class ChatNamespace(CidadaoSession, PonteNamespace):
    """Session room, typing indicators and investigation subscriptions."""

    inbound = cidadao.CHAT_INBOUND
    scopes = {"chat": "chat", "typing": "chat", "subscribe": "investigations",
              "unsubscribe": "investigations"}
    auth_required = False
    event_field = "type"
    params = ("session_id",)

    def __init__(self, namespace: str, gateway: Any) -> None:
        super().__init__(namespace, gateway)
        self.owners: dict[str, str | None] = {}  # session id → owning user (None: anonymous)
        self.members: dict[str, int] = {}

    def anonymous(self) -> Principal:
        return Principal(sub=Principal.anonymous_one().sub, scopes=frozenset({"chat"}), anonymous=True)

    async def authorize(self, sid: str, client: Client) -> None:
        session_id = checked_id("session_id", client.params["session_id"])
        owner = self.owners.get(session_id)
        principal = client.principal
        if owner is not None and owner != principal.sub and not principal.allows("admin"):
            raise PonteError(PERMISSION_ERROR, "esta sessão de chat pertence a outro usuário")

    async def joined(self, sid: str, client: Client) -> None:
        session_id = client.params["session_id"]
        if session_id not in self.owners:
            self.owners[session_id] = None if client.principal.anonymous else client.principal.sub
        self.members[session_id] = self.members.get(session_id, 0) + 1
        await self.enter_room(sid, f"session:{session_id}")

    async def welcome(self, sid: str, client: Client) -> None:
        await self.emit("connection", {"status": "connected", "session_id": client.params["session_id"],
                                       "message": WELCOME}, to=sid)

    async def left(self, sid: str, client: Client) -> None:
        session_id = client.params["session_id"]
        self.members[session_id] -= 1
        if not self.members[session_id]:
            del self.members[session_id], self.owners[session_id]

    async def on_typing(self, sid: str, client: Client, data: Any) -> None:
        """Forward to the session's other clients, at most once per debounce interval per state."""
        now = time.monotonic()
        last = client.state.get("typing")
        if last is not None and last[1] == data.is_typing and now - last[0] < self.gateway.settings.typing_debounce:
            return
        client.state["typing"] = (now, data.is_typing)
        session_id = client.params["session_id"]
        await self.emit("typing", {"agent": data.agent, "session_id": session_id, "is_typing": data.is_typing},
                        room=f"session:{session_id}", skip_sid=sid)

    async def on_subscribe(self, sid: str, client: Client, data: Any) -> None:
        rooms = self.rooms(sid)
        room = f"investigation:{data.investigation_id}"
        if room not in rooms and sum(r.startswith("investigation:") for r in rooms) >= MAX_SUBSCRIPTIONS:
            raise PonteError(VALIDATION_ERROR, f"no máximo {MAX_SUBSCRIPTIONS} investigações por conexão")
        await self.enter_room(sid, room)
        await self.emit("subscribed", {"investigation_id": data.investigation_id, "status": "subscribed"}, to=sid)

    async def on_unsubscribe(self, sid: str, client: Client, data: Any) -> None:
        await self.leave_room(sid, f"investigation:{data.investigation_id}")
        await self.emit("unsubscribed", {"investigation_id": data.investigation_id, "status": "unsubscribed"},
                        to=sid)
