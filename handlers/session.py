"""Session keep-alive for every protocol: Omni's SESSAO_PING and ping/heartbeat, Cidadão's ping."""
from __future__ import annotations

from typing import Any

from app.codecs import now_iso

from .base import Client, PonteNamespace


class OmniSession(PonteNamespace):
    """`SESSAO_PING` → `SESSAO_PONG`; the web client's `ping`/`heartbeat` → `pong`."""

    async def on_SESSAO_PING(self, sid: str, client: Client, data: Any) -> None:
        await self.emit("SESSAO_PONG", {"request_id": data.request_id, "server_time": now_iso()}, to=sid)

    async def on_ping(self, sid: str, client: Client, data: Any) -> None:
        await self.emit("pong", _pong(data), to=sid)

    async def on_heartbeat(self, sid: str, client: Client, data: Any) -> None:
        await self.emit("pong", _pong(data), to=sid)


class CidadaoSession(PonteNamespace):
    """`ping` → `pong` on both Cidadão.AI endpoints."""

    async def on_ping(self, sid: str, client: Client, data: Any) -> None:
        await self.emit("pong", {"server_time": now_iso()}, to=sid)


def _pong(data: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {"server_time": now_iso()}
    if data.request_id is not None:
        answer["request_id"] = data.request_id
    return answer
