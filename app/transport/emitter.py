"""A worker's voice: emit to rooms and share control messages through Redis as a gateway instance does,
with no socket of its own.

Events to rooms are published on their rooms' channels as a gateway publishes them (channels.py):
with history on (HISTORY_SIZE > 0) they go into their namespace's stream in the same Lua call, so every
gateway with members in those rooms delivers them, on both transports, with an offset its clients can
recover from. Control messages (`share`) travel on the shared channel in python-socketio's format; the
ones this process registered for (`on_share`) are heard by a listener task, whatever instance or worker
sent them.

A write Redis refuses is retried for up to RETRY_FOR seconds, then raised: a job's events are never
dropped in silence (the job fails, and is retried, instead).
"""
from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any, Awaitable, Callable, Mapping

from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError

from ..errors import PonteError
from ..tasks import stop
from .channels import PUBLISH_SCRIPT, channels_of
from .cluster import ShardedPublisher
from .codecs import Codec
from .history import Entry
from .events import args_of
from .listener import listen

log = logging.getLogger("ponte.emitter")
RETRY_FOR = 10.0  # seconds a write to Redis is retried before the job is told


class Emitter:
    """What a job sees of the gateways: `emit`, `share`, `on_share` and `render_error`, as on PonteServer."""

    def __init__(self, client: Any, channel: str, history_size: int, codecs: Mapping[str, Codec],
                 cluster: Any = None) -> None:
        self.redis = client
        # REDIS_CLUSTER_URL: events to rooms go out on the cluster's sharded channels (no history there)
        self.sharded = ShardedPublisher(cluster) if cluster is not None else None
        self.channel = channel
        self.history_size = history_size
        self.codecs = codecs
        self.host_id = uuid.uuid4().hex
        self._script = client.register_script(PUBLISH_SCRIPT)
        self._sent = 0
        self.controls: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {}
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    async def emit(self, event: str, data: Any = None, namespace: str = "/", to: Any = None, room: Any = None,
                   **_: Any) -> None:
        room = to if to is not None else room
        self._sent += 1
        sender, text = f"{self.host_id}:{self._sent}", Entry("", room, None, event, args_of(data)).to_json()
        channels = channels_of(self.channel, namespace, room)
        if self.sharded is not None:
            await self._retry(self.sharded.publish, [(None, 0, text, channels, sender)])
            return
        keys = [f"{self.channel}:history:{namespace}"] if self.history_size else []
        await self._retry(self._script, keys, [self.history_size, sender, text, *channels])

    async def share(self, name: str, payload: dict[str, Any]) -> None:
        """Run the control `name` here (if this process handles it) and on every gateway and worker."""
        control = self.controls.get(name)
        if control is not None:
            await control(payload)
        await self._publish({"method": f"ponte:{name}", "payload": payload})

    def on_share(self, name: str, control: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self.controls[name] = control
        if self._listener is None:
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    def render_error(self, namespace: str, error: PonteError, request_id: str | None = None) -> tuple[str, Any]:
        return self.codecs[namespace].error(error, request_id)

    async def close(self) -> None:
        if self._listener is not None:
            await stop([self._listener])
            self._listener = None
        if self.sharded is not None:
            await self.sharded.cluster.aclose()

    async def _publish(self, message: dict[str, Any]) -> None:
        await self._retry(self.redis.publish, self.channel,
                          json.dumps({**message, "host_id": self.host_id}, separators=(",", ":")))

    async def _retry(self, command: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + RETRY_FOR, 0.1
        while True:
            try:
                return await command(*args, **kwargs)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                if loop.time() + delay > deadline:
                    raise
                log.warning("Redis write failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _listen(self) -> None:
        await listen(self.redis, self.channel, self._receive, self._on_subscription)

    def _on_subscription(self, up: bool, error: Exception | None) -> None:
        if up:
            self.listening.set()
        else:
            self.listening.clear()
            log.warning("control channel unavailable (%s); retrying", type(error).__name__)

    async def _receive(self, raw: bytes | str) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            return
        if not isinstance(message, dict) or message.get("host_id") == self.host_id:
            return
        method = message.get("method")
        control = self.controls.get(method.removeprefix("ponte:")) if isinstance(method, str) else None
        payload = message.get("payload")
        if control is None or not isinstance(payload, dict):
            return
        try:
            await control(payload)
        except Exception:  # noqa: BLE001 - one bad message must not stop the listener
            log.exception("control %s failed", method)
