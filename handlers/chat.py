"""The Cidadão.AI chat namespace (`/chat`, raw `/api/v1/ws/chat/{session_id}`).

Auth is optional, as the document says; an anonymous principal may only chat in its session.
A session opened with a token belongs to that user: other users cannot join it. `subscribe` follows an
investigation the client may see (`app.investigations.visible`, with this session as its session);
anything else, existing or not, is the same `NOT_FOUND` error and the connection stays.

`chat` → the user's message to the session's other clients → `typing {agent: "processing"}` → the
agent's answer streamed to the session room as `chat` chunks (`chunk: true`), then one completion
message with the whole answer (`chunk: false, done: true`). One answer at a time per session, on every
instance (a claim in the record store: Redis when configured): a `chat` while one streams gets `RATE_LIMIT`.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import aiohttp

from app.auth import Principal
from app.errors import PERMISSION_ERROR, RATE_LIMIT_ERROR, VALIDATION_ERROR, PonteError
from app.investigations import SessionDesk, checked_id, not_found, visible
from app.records import RecordStoreError
from app.origins import origin_params
from engines.agents.base import AgentError, ChatContext
from engines.agents.language import session_language
from schemas import cidadao

from .base import Client, PonteNamespace
from .session import CidadaoSession

log = logging.getLogger("ponte.chat")
MAX_SUBSCRIPTIONS = 32
MAX_HISTORY = 20  # messages per session given to agents
MAX_SESSIONS = 10_000  # sessions whose history is kept on this instance
WELCOME = "Conectado ao Cidadão.AI em tempo real"


class ChatNamespace(CidadaoSession, PonteNamespace):
    """Session room, typing indicators and investigation subscriptions."""

    inbound = cidadao.CHAT_INBOUND
    scopes = {"chat": "chat", "typing": "chat"}  # subscriptions are checked per investigation
    auth_required = False
    routine = frozenset({"ping", "heartbeat", "typing"})
    params = ("session_id",)

    def __init__(self, namespace: str, gateway: Any) -> None:
        super().__init__(namespace, gateway)
        self.owners: dict[str, str | None] = {}  # session id → owning user (None: anonymous)
        self.members: dict[str, int] = {}
        self.answering: set[str] = set()  # sessions with an answer streaming
        self.history: dict[str, list[dict[str, str]]] = {}

    def _handshake(self, request: Any, auth: dict[str, Any]) -> Client:
        client = super()._handshake(request, auth)
        client.params = {**client.params, **origin_params(request)}  # where report URLs point
        return client

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
        """Join an investigation's room this client may see: `subscribed`, then its current state."""
        rooms = self.rooms(sid)
        room = f"investigation:{data.investigation_id}"
        if room not in rooms and sum(r.startswith("investigation:") for r in rooms) >= MAX_SUBSCRIPTIONS:
            raise PonteError(VALIDATION_ERROR, f"no máximo {MAX_SUBSCRIPTIONS} investigações por conexão")
        doc = await self.gateway.services["investigations"].get(data.investigation_id)
        if doc is None or not visible(doc, client.principal, client.params["session_id"]):
            raise not_found()
        await self.enter_room(sid, room)
        await self.emit("subscribed", {"investigation_id": data.investigation_id, "status": "subscribed"}, to=sid)
        await self.emit("investigation_progress", snapshot(doc), to=sid)

    async def on_unsubscribe(self, sid: str, client: Client, data: Any) -> None:
        await self.leave_room(sid, f"investigation:{data.investigation_id}")
        await self.emit("unsubscribed", {"investigation_id": data.investigation_id, "status": "unsubscribed"},
                        to=sid)

    async def on_chat(self, sid: str, client: Client, data: Any) -> None:
        session_id = client.params["session_id"]
        if session_id in self.answering or not await self._claim(session_id):
            raise PonteError(RATE_LIMIT_ERROR, "uma resposta já está em andamento nesta sessão; aguarde",
                             {"motivo": "answer_in_flight"})
        self.answering.add(session_id)
        await self.emit("chat", {"role": "user", "content": data.message, "chunk": False},
                        room=f"session:{session_id}", skip_sid=sid)
        self.spawn(self._answer(session_id, client, data.message))

    async def _answer(self, session_id: str, client: Client, message: str) -> None:
        """Stream one agent answer to the session; a failure is an `error` and the session goes on."""
        room = f"session:{session_id}"
        history = self.history.setdefault(session_id, [])
        desk = SessionDesk(self.gateway.services["investigations"], session_id, client.principal,
                           client.params.get("origin", ""), follow=lambda inv_id: self._follow(session_id, inv_id),
                           session_owner=self.owners.get(session_id))
        earlier = [entry["content"] for entry in history if entry["role"] == "user"]
        context = ChatContext(session_id, None if client.principal.anonymous else client.principal.sub, desk,
                              list(history), session_language(message, earlier))
        agent = self.gateway.services["agents"].route(message, context)
        header = {"role": "assistant", "agent_id": agent.id, "agent_name": agent.name}
        try:
            await self.emit("typing", {"agent": "processing", "session_id": session_id, "is_typing": True}, room=room)
            parts: list[str] = []
            async with asyncio.timeout(self.gateway.settings.chat_timeout):
                async for piece in agent.stream(message, context):
                    parts.append(piece)
                    await self.emit("chat", {**header, "content": piece, "chunk": True}, room=room)
            answer = "".join(parts)
            await self.emit("chat", {**header, "content": answer, "chunk": False, "done": True,
                                     "message_id": uuid.uuid4().hex}, room=room)
            remember(self.history, session_id, message, answer)
        except AgentError as exc:
            await self.emit("error", {"code": exc.code, "message": exc.message}, room=room)
        except TimeoutError:
            await self.emit("error", {"code": "TIMEOUT", "message": "o agente não respondeu a tempo"}, room=room)
        except aiohttp.ClientError as exc:
            await self.emit("error", {"code": "BACKEND_ERROR", "message": f"serviço de chat falhou "
                                      f"({type(exc).__name__})"}, room=room)
        except PonteError as exc:
            await self.emit(*self.render_error(exc), room=room)
        finally:
            self.answering.discard(session_id)
            await self._unclaim(session_id)
            await self.emit("typing", {"agent": "processing", "session_id": session_id, "is_typing": False},
                            room=room)

    async def _claim(self, session_id: str) -> bool:
        """The session's answer slot across instances (a store outage leaves only this instance's check)."""
        try:
            return bool(await self.gateway.records.claim(f"chat:{session_id}", self.gateway.settings.chat_timeout + 5))
        except RecordStoreError as exc:
            log.warning("chat claim for a session not shared: %s", exc)
            return True

    async def _unclaim(self, session_id: str) -> None:
        try:
            await self.gateway.records.release(f"chat:{session_id}")
        except RecordStoreError as exc:
            log.warning("chat claim not released (it expires by itself): %s", exc)

    async def _follow(self, session_id: str, investigation_id: str) -> None:
        """Put the session's clients on this instance in a new investigation's room."""
        for sid in self.participants(f"session:{session_id}"):
            await self.enter_room(sid, f"investigation:{investigation_id}")


def remember(history: dict[str, list[dict[str, str]]], session_id: str, message: str, answer: str) -> None:
    """Keep the last MAX_HISTORY messages of at most MAX_SESSIONS sessions."""
    entries = history.pop(session_id, [])  # re-inserted last: the oldest session is dropped first
    entries += [{"role": "user", "content": message}, {"role": "assistant", "content": answer}]
    history[session_id] = entries[-MAX_HISTORY:]
    while len(history) > MAX_SESSIONS:
        del history[next(iter(history))]


def snapshot(doc: dict[str, Any]) -> dict[str, Any]:
    """An investigation's current state as an `investigation_progress` message."""
    return {"investigation_id": doc["investigation_id"], "update_type": "snapshot",
            "progress": float(doc.get("progress") or 0), "status": doc.get("stage") or doc["status"],
            "message": doc.get("message") or ""}
