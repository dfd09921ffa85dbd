"""Notification preferences on /omni: `NOTIFICACAO_CONFIGURAR` stores the types a user wants, and
per-recipient fan-out filters keep `NOTIFICACAO_GERAL`, `EXECUCAO_CONCLUIDA` and `EXECUCAO_ERRO`
away from every connection of a user who turned their type off, on every instance — except, for an
execution's end, the connections following that execution (in `execution:{id}`).

Preferences live in `gateway.prefs` (Redis when configured). Each instance caches those of the
users connected to it, loaded when a user's first connection joins and dropped when the last one
leaves, so that the filters, which run for every recipient of an emit, are plain dict lookups. A
change is applied on every instance through the manager's shared `prefs` control message.

The connection is already in `user:{sub}` while the store is read (a raw client is in its rooms as
soon as the WebSocket opens, and emits to it must not wait on Redis): in that window, one store round
trip, the user's preferences are unknown and, as when the store cannot be read at all, no optional type
is admitted (app.prefs: never a silent "everything on"). A user whose preferences came from a fallback
(the store unreadable) has them read again every `REFRESH_EVERY` seconds until the store answers.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from app.errors import SYSTEM_ERROR, PonteError
from app.prefs import SAFE_CHOICE, MemoryPreferenceStore, PreferenceStoreError, Reading
from schemas.omni import NotificacaoConfigurar

from app.gateway import Gateway

from .base import Client, PonteNamespace

log = logging.getLogger("ponte.handlers.notifications")

CONTROL = "prefs"  # the manager's control message that carries a user's new preferences
# Execution events a user can turn off, with the notification type each one needs.
EVENT_TYPES = {"EXECUCAO_CONCLUIDA": "execucao_concluida", "EXECUCAO_ERRO": "erro"}
REFRESH_EVERY = 2.0  # seconds between two attempts to read again preferences that came from a fallback


class NotificationHandlers(PonteNamespace):
    """`NOTIFICACAO_CONFIGURAR` → `NOTIFICACAO_CONFIGURADA`, and the filters that honour it."""

    def __init__(self, namespace: str, gateway: Gateway) -> None:
        super().__init__(namespace, gateway)
        if gateway.prefs is None:
            gateway.prefs = MemoryPreferenceStore()
        self.preferences: dict[str, frozenset[str] | None] = {}  # sub → types; connected users only
        self._users: dict[str, int] = {}  # sub → connections to this namespace here
        self._claims: dict[str, str] = {}  # sid → sub, for the connections counted in `_users`
        self._loading: dict[str, asyncio.Event] = {}  # sub → set once their preferences are cached
        self._hooked: Any = None  # the server our filters and control handler are registered with
        self._unsure: set[str] = set()  # connected users whose cached preferences are a fallback
        self._everyone: dict[Any, bool] = {}  # type → every connected user's preferences admit it (`_all_admit`)
        self._refreshing = False

    # -- messages ---------------------------------------------------------------------------------

    async def on_NOTIFICACAO_CONFIGURAR(self, sid: str, client: Client, data: NotificacaoConfigurar) -> None:
        sub = client.principal.sub
        tipos = list(dict.fromkeys(data.tipos))  # duplicates dropped, the client's order kept
        try:
            await self.gateway.prefs.set(sub, tipos)
        except PreferenceStoreError as exc:
            log.warning("NOTIFICACAO_CONFIGURAR from %s not stored: %s", sub, exc)
            raise PonteError(SYSTEM_ERROR, "Não foi possível salvar as preferências de notificação",
                             {"motivo": "preferences_unavailable"}) from None
        self._hook()
        await self.share(CONTROL, {"sub": sub, "tipos": tipos})
        answer: dict[str, Any] = {"tipos": tipos, "canal": data.canal}
        if data.request_id is not None:
            answer["request_id"] = data.request_id
        await self.emit("NOTIFICACAO_CONFIGURADA", answer, to=sid)

    # -- the cache of connected users' preferences -------------------------------------------------

    async def joined(self, sid: str, client: Client) -> None:
        await super().joined(sid, client)
        self._hook()
        if client.principal.anonymous:
            return
        sub = client.principal.sub
        count = self._users.get(sub, 0)
        self._users[sub] = count + 1
        self._claims[sid] = sub
        loading = self._loading.get(sub)
        if loading is not None:  # another connection of this user is loading them: wait for it
            await loading.wait()
        elif count == 0:
            await self._load(sub)

    async def left(self, sid: str, client: Client) -> None:
        self._release(sid)
        await super().left(sid, client)

    def _release(self, sid: str) -> None:
        """Uncount a connection; forget its user's preferences with their last connection here."""
        sub = self._claims.pop(sid, None)
        if sub is None:
            return
        count = self._users.get(sub, 0) - 1
        if count > 0:
            self._users[sub] = count
        else:
            self._users.pop(sub, None)
            self.preferences.pop(sub, None)
            self._everyone.clear()
            self._unsure.discard(sub)

    async def _load(self, sub: str) -> None:
        """Cache a user's stored preferences, unless a shared change arrived meanwhile."""
        loading = self._loading[sub] = asyncio.Event()
        try:
            reading = await self.gateway.prefs.read(sub)
        except Exception:  # noqa: BLE001 - a store failure must not refuse the connection
            log.exception("could not load the notification preferences of %s", sub)
            reading = Reading(SAFE_CHOICE, known=False, source="safe")
        finally:
            loading.set()
            if self._loading.get(sub) is loading:
                del self._loading[sub]
        if sub in self._users and sub not in self.preferences:
            self._prefer(sub, reading.tipos)
            if not reading.known:
                self._doubt(sub)

    def _prefer(self, sub: str, tipos: frozenset[str] | None) -> None:
        """Cache a connected user's preferences (`_release` drops them): what `_all_admit` knew is stale."""
        self.preferences[sub] = tipos
        self._everyone.clear()

    def _doubt(self, sub: str) -> None:
        """Read `sub`'s preferences again later: what is cached is a fallback."""
        self._unsure.add(sub)
        if not self._refreshing:
            self._refreshing = True
            self.spawn(self._refresh())

    async def _refresh(self) -> None:
        """Every REFRESH_EVERY seconds, while some cached preferences are fallbacks, read them again."""
        try:
            while self._unsure:
                await asyncio.sleep(REFRESH_EVERY)
                await self._reread()
        finally:
            self._refreshing = False

    async def _reread(self) -> None:
        """Read the unsure users' preferences again, stopping at the first the store still cannot answer."""
        for sub in list(self._unsure):
            reading = await self.gateway.prefs.read(sub)
            if not reading.known:
                return
            if sub in self._unsure:  # still connected, and no shared change arrived meanwhile
                self._prefer(sub, reading.tipos)
                self._unsure.discard(sub)

    async def _on_shared(self, payload: dict[str, Any]) -> None:
        """The `prefs` control message, from this instance or another one."""
        sub, tipos = payload.get("sub"), payload.get("tipos")
        if not isinstance(sub, str) or not isinstance(tipos, list) or not all(isinstance(t, str) for t in tipos):
            log.warning("ignored a malformed %r control message", CONTROL)
            return
        self.gateway.prefs.remember(sub, frozenset(tipos))
        if sub in self._users:
            self._prefer(sub, frozenset(tipos))
            self._unsure.discard(sub)

    # -- filters: judged once per emit; what they return is called for every recipient, so O(1) and synchronous

    def _hook(self) -> None:
        """Register the control handler and the filters (once per server; `self.server` is only known
        after the namespace is registered, so this runs on the first connection: until then there is
        nobody to filter or to update)."""
        if self._hooked is self.server:
            return
        self._hooked = self.server
        self.on_share(CONTROL, self._on_shared)
        self.add_filter("NOTIFICACAO_GERAL", self._keep_notification)
        for event, tipo in EVENT_TYPES.items():
            self.add_filter(event, self._keep_type(tipo))

    def admits(self, sid: str, tipo: Any) -> bool:
        """True unless the user behind `sid` turned notifications of type `tipo` off. A connection
        not (or no longer) among `clients` is still in its handshake, its user's preferences maybe
        not read yet (python-socketio puts it in the everyone room first): it gets none; nor does
        one whose user's preferences are being read."""
        client = self.clients.get(sid)
        if client is None or client.principal.sub in self._loading:
            return False
        tipos = self.preferences.get(client.principal.sub)
        return tipos is None or tipo in tipos

    def _all_admit(self, tipo: Any) -> bool:
        """True when `admits` would say yes to every connection here: nobody's preferences being read or
        turning `tipo` off, and nobody in the handshake (every connection of the namespace among `clients`).
        A fan-out to a big room then reads no recipient's preferences (app/transport/manager.py `Direct`)."""
        if not isinstance(tipo, str) or self._loading or len(self.clients) != self.connections_here():
            return False
        everyone = self._everyone.get(tipo)
        if everyone is None:
            if len(self._everyone) >= 64:  # types come from publishers' data: keep a few
                self._everyone.clear()
            everyone = self._everyone[tipo] = all(tipos is None or tipo in tipos for tipos in self.preferences.values())
        return everyone

    def _keep_notification(self, data: Any) -> Callable[[str], bool] | None:
        tipo = data.get("tipo") if isinstance(data, dict) else None
        if tipo is None or self._all_admit(tipo):
            return None  # no type, nothing to judge it by; or nobody turned it off: every member gets it
        return lambda sid: self.admits(sid, tipo)

    def _keep_type(self, tipo: str) -> Callable[[Any], Callable[[str], bool] | None]:
        def judge(data: Any) -> Callable[[str], bool] | None:
            if self._all_admit(tipo):
                return None
            return lambda sid: self.admits(sid, tipo) or self.watching(sid, data)
        return judge

    def watching(self, sid: str, data: Any) -> bool:
        """True for a connection in the execution's room (it started or consulted it): an execution's
        end always reaches those following it; preferences only spare the user's other connections."""
        execution_id = data.get("execucao_id") if isinstance(data, dict) else None
        return execution_id is not None and f"execution:{execution_id}" in self.rooms(sid)
