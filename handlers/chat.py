"""The Cidadão.AI chat namespace (`/chat`, raw `/api/v1/ws/chat/{session_id}`).

Auth is optional, as the document says; an anonymous principal may only chat in its session.
A session opened with a token belongs to that user: other users cannot join it, on any instance (the
first opener is recorded in the record store, Redis when configured, for RECORDS_TTL). `subscribe` follows an
investigation the client may see (`app.investigation_access.visible`, with this session as its session);
anything else, existing or not, is the same `NOT_FOUND` error and the connection stays.

`chat` → the user's message to the session's other clients → `typing {agent: "processing"}` → the
agent's answer streamed to the session room as `chat` chunks (`chunk: true`), then one completion
message with the whole answer (`chunk: false, done: true`). One answer at a time per session, on every
instance (a claim in the record store: Redis when configured): a `chat` while one streams gets `RATE_LIMIT`.

Ponte's extensions: the session's last MAX_HISTORY messages are kept in the record store; agents on any
instance get them as context, and a client that joins a session with history gets them in a `history`
message, after `connection`. `presence` tells the session's other clients that someone joined or left.
An investigation an agent starts for the session is followed by the session's clients on every instance.
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
from app.investigation_access import checked_id, not_found, visible
from app.investigations import SessionDesk
from app.presence import PresenceUnavailable
from app.records import RecordStoreError
from app.origins import origin_params
from engines.agents.base import AgentError, ChatContext
from engines.agents.language import session_language
from schemas import cidadao

from app.transport.namespace import Recovery

from .base import Client, PonteNamespace
from .session import CidadaoSession

log = logging.getLogger("ponte.chat")
MAX_SUBSCRIPTIONS = 32
MAX_HISTORY = 20  # messages per session given to agents and to a joining client
MAX_CONTENT = 8000  # characters of one message kept in the history
MAX_SESSIONS = 10_000  # sessions whose owner this instance remembers, for a record store outage
OWNER, HISTORY = "chat_owner", "chat_history"  # record kinds
FOLLOW = "chat_follow"  # the control putting a session's clients in an investigation's room, everywhere
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
        self.owners: dict[str, str | None] = {}  # session id → owner as last read (None: anonymous), bounded
        self.answering: set[str] = set()  # sessions with an answer streaming
        self._hooked = False

    def _handshake(self, request: Any, auth: dict[str, Any]) -> Client:
        client = super()._handshake(request, auth)
        client.params = {**client.params, **origin_params(request)}  # where report URLs point
        return client

    def anonymous(self) -> Principal:
        return Principal(sub=Principal.anonymous_one().sub, scopes=frozenset({"chat"}), anonymous=True)

    async def authorize(self, sid: str, client: Client) -> None:
        session_id = checked_id("session_id", client.params["session_id"])
        principal = client.principal
        owner = client.state["owner"] = await self._owner(session_id, principal)
        if owner is not None and owner != principal.sub and not principal.allows("admin"):
            raise PonteError(PERMISSION_ERROR, "esta sessão de chat pertence a outro usuário")

    async def _owner(self, session_id: str, principal: Principal) -> str | None:
        """The session's owner, on every instance: its first opener (None: anonymous). While the record
        store is down, as this instance last knew it."""
        me = None if principal.anonymous else principal.sub
        try:
            if await self.gateway.records.put_new(OWNER, session_id, {"owner": me}):
                owner = me
            else:
                owner = (await self.gateway.records.get(OWNER, session_id) or {"owner": me})["owner"]
        except RecordStoreError as exc:
            log.warning("chat session owner not shared: %s", exc)
            owner = self.owners.get(session_id, me)
        self.owners.pop(session_id, None)  # re-inserted last: the oldest is forgotten first
        self.owners[session_id] = owner
        while len(self.owners) > MAX_SESSIONS:
            del self.owners[next(iter(self.owners))]
        return owner

    async def greet(self, sid: str, recovery: Recovery | None) -> None:
        """`connection` (welcome), then the session's history to a client that did not get its session back."""
        await super().greet(sid, recovery)
        client = self.clients.get(sid)
        if client is not None and not (recovery is not None and recovery.recovered):
            await self._replay(sid, client)

    async def joined(self, sid: str, client: Client) -> None:
        if not self._hooked:  # an instance without clients of a session has nothing to follow
            self.on_share(FOLLOW, self._on_follow)
            self._hooked = True
        session_id = client.params["session_id"]
        await self.enter_room(sid, f"session:{session_id}")
        await self._announce(session_id, "joined", client, skip=sid)

    async def welcome(self, sid: str, client: Client, recovery: Recovery | None) -> None:
        await self.first_message(sid, client, recovery, "connection", {
            "status": "connected", "session_id": client.params["session_id"], "message": WELCOME})

    async def left(self, sid: str, client: Client) -> None:
        session_id = client.params["session_id"]
        await self.leave_room(sid, f"session:{session_id}")  # before the count
        await self._announce(session_id, "left", client, skip=sid)  # skipped in a replay, should it come back

    async def _announce(self, session_id: str, action: str, client: Client, skip: str | None = None) -> None:
        """`presence` to the session's clients: who joined or left, and how many connections it has now
        on every instance (omitted when Redis cannot say)."""
        room = f"session:{session_id}"
        payload: dict[str, Any] = {"session_id": session_id, "action": action,
                                   "user": None if client.principal.anonymous else client.principal.sub}
        try:
            payload["count"] = len(await self.gateway.services["presence"].connections(self.namespace, room))
        except PresenceUnavailable:
            pass
        await self.emit("presence", payload, room=room, skip_sid=skip)

    async def _replay(self, sid: str, client: Client) -> None:
        """The session's recent messages to a client that just joined it, if it has any."""
        session_id = client.params["session_id"]
        messages = await self._history(session_id, client.state["owner"])
        if messages:
            await self.emit("history", {"session_id": session_id, "messages": messages}, to=sid)

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
        """Join an investigation's room this client may see: `subscribed`, what the room was sent and is still
        held (a late follower), then its current state."""
        rooms = self.rooms(sid)
        room = f"investigation:{data.investigation_id}"
        if room not in rooms and sum(r.startswith("investigation:") for r in rooms) >= MAX_SUBSCRIPTIONS:
            raise PonteError(VALIDATION_ERROR, f"no máximo {MAX_SUBSCRIPTIONS} investigações por conexão")
        doc = await self.gateway.services["investigations"].fetch(data.investigation_id)
        if doc is None or not visible(doc, client.principal, client.params["session_id"]):
            raise not_found()
        await self.emit("subscribed", {"investigation_id": data.investigation_id, "status": "subscribed"}, to=sid)
        await self.follow(sid, room)  # what the room was sent and is still held, then live events
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
        history = await self._history(session_id, client.state["owner"])
        desk = SessionDesk(self.gateway.services["investigations"], session_id, client.principal,
                           client.params.get("origin", ""), follow=lambda inv_id: self._follow(session_id, inv_id),
                           session_owner=client.state.get("owner"))
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
            # kept before `done`: a client that asks again at once gets an answer that knows this one
            await self._remember(session_id, client.state["owner"], history, message, answer)
            await self.emit("chat", {**header, "content": answer, "chunk": False, "done": True,
                                     "message_id": uuid.uuid4().hex}, room=room)
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

    async def _history(self, session_id: str, owner: str | None) -> list[dict[str, str]]:
        """The session's last messages, oldest first: those kept under its current owner (a session whose
        ownership expired and was claimed again starts afresh); [] while the record store is down."""
        try:
            doc = await self.gateway.records.get(HISTORY, session_id)
        except RecordStoreError as exc:
            log.warning("chat history not read: %s", exc)
            return []
        return list(doc["messages"]) if doc and doc.get("owner") == owner else []

    async def _remember(self, session_id: str, owner: str | None, history: list[dict[str, str]], message: str,
                        answer: str) -> None:
        """Keep the last MAX_HISTORY messages for every instance (one answer at a time per session: no
        answer's messages overwrite another's)."""
        messages = [*history, {"role": "user", "content": message[:MAX_CONTENT]},
                    {"role": "assistant", "content": answer[:MAX_CONTENT]}][-MAX_HISTORY:]
        try:
            await self.gateway.records.put(HISTORY, session_id, {"owner": owner, "messages": messages})
        except RecordStoreError as exc:
            log.warning("chat history not kept: %s", exc)

    async def _follow(self, session_id: str, investigation_id: str) -> None:
        """Put the session's clients, on every instance, in a new investigation's room."""
        await self.share(FOLLOW, {"session_id": session_id, "investigation_id": investigation_id})

    async def _on_follow(self, payload: dict[str, Any]) -> None:
        session_id, investigation_id = payload.get("session_id"), payload.get("investigation_id")
        if not isinstance(session_id, str) or not isinstance(investigation_id, str):
            return
        for sid in self.participants(f"session:{session_id}"):  # with what the room was sent meanwhile, if any
            await self.follow(sid, f"investigation:{investigation_id}")


def snapshot(doc: dict[str, Any]) -> dict[str, Any]:
    """An investigation's current state as an `investigation_progress` message."""
    return {"investigation_id": doc["investigation_id"], "update_type": "snapshot",
            "progress": float(doc.get("progress") or 0), "status": doc.get("stage") or doc["status"],
            "message": doc.get("message") or ""}
