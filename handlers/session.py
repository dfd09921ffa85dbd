"""Session keep-alive for every protocol: Omni's SESSAO_PING and ping/heartbeat, Cidadão's ping."""
from __future__ import annotations

from typing import Any

from app.clock import now_iso
from app.transport.codecs import answering

from app.transport.namespace import Recovery

from .base import Client, PonteNamespace


class OmniSession(PonteNamespace):
    """`SESSAO_PING` → `SESSAO_PONG`; the web client's `ping`/`heartbeat` → `pong`."""

    async def welcome(self, sid: str, client: Client, recovery: Recovery | None) -> None:
        """`SESSAO_CONECTADA`, a raw client's first message on /ws (an extension of the document), with
        `recovery` (its pid, whether it got its session back and how many missed events follow) and the
        `offset` it stands at, at the top of the envelope."""
        if recovery is not None and client.transport == "raw":
            await self.hello(sid, "SESSAO_CONECTADA", {"user_id": client.principal.sub}, recovery)

    async def on_SESSAO_PING(self, sid: str, client: Client, data: Any) -> None:
        await self.emit("SESSAO_PONG", answering({"server_time": now_iso()}, data.request_id), to=sid)

    async def on_ping(self, sid: str, client: Client, data: Any) -> None:
        await self.emit("pong", answering({"server_time": now_iso()}, data.request_id), to=sid)

    async def on_heartbeat(self, sid: str, client: Client, data: Any) -> None:
        await self.emit("pong", answering({"server_time": now_iso()}, data.request_id), to=sid)


class CidadaoSession(PonteNamespace):
    """`ping` → `pong` on both Cidadão.AI endpoints."""

    async def on_ping(self, sid: str, client: Client, data: Any) -> None:
        await self.emit("pong", {"server_time": now_iso()}, to=sid)
