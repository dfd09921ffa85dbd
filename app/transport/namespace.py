"""The base of every handler: what a handler sees of the transport layer.

A namespace serves one protocol to raw-WebSocket and Socket.IO clients alike; `sid` names one
client's connection to it, whichever transport it came by. Everything a handler needs:

- `await self.emit(event, data, to=sid)` or `room=room`: one event to a connection or a room, on
  every instance (rooms hold clients of both transports);
- `await self.enter_room(sid, room)`, `await self.follow(sid, room)` (enter, with the room's history
  first), `await self.leave_room(sid, room)`, `self.rooms(sid)`,
  `self.participants(room)` (this instance's connections in a room), `self.connections_here()`;
- `await self.send_error(sid, error, request_id)`: a `PonteError` as the namespace's protocol shows it;
- `await self.close(sid, code, reason)`: end a connection (raw: that WebSocket close code);
- `await self.share(name, payload)` / `self.on_share(name, control)`: run a control on every instance;
- `self.add_filter(event, judge)`: `judge(data)` returns None when every member gets that event, else
  `keep(sid)`, which decides per recipient;
- `self.spawn(coro)`: work that outlives the message (a handler runs before the connection's next
  message is read, so anything long is spawned);
- connection-state recovery (history.py): `identify(environ, auth)` says who a connecting client is
  (a recovered session only goes back to its own user), `greet(sid, recovery)` sends a connection's
  first message (raw clients: with `hello`, carrying the offset they stand at), after which the events
  it missed follow.

Handlers are called one at a time per connection, in the order its messages arrived, on both
transports; Ponte's handler base (handlers/base.py) adds authentication, validation and scopes.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable

import socketio
from socketio.exceptions import ConnectionRefusedError as Refused

from ..errors import PonteError
from .history import Recovery
from .events import args_of

__all__ = ["Namespace", "Recovery", "Refused"]  # raise Refused(message, data) in on_connect to refuse a connection


class Namespace(socketio.AsyncNamespace):
    """One protocol's namespace (see the module's docstring for the whole interface)."""

    def __init__(self, namespace: str) -> None:
        super().__init__(namespace)
        self._tasks: set[asyncio.Task[None]] = set()

    async def emit(self, event: str, data: Any = None, to: Any = None, room: Any = None, skip_sid: Any = None,
                   namespace: str | None = None, callback: Any = None, ignore_queue: bool = False) -> None:
        """python-socketio's emit; a reply to one connection of this instance goes straight to it (what
        the manager would do too, without python-socketio's two layers in between)."""
        target = to or room
        if callback is None and namespace is None:
            manager = self.server.manager
            eio_sid = manager.local_sid(self.namespace, target, skip_sid)
            if eio_sid is not None:
                await manager.deliver(self.namespace, ((target, eio_sid),), None, event, args_of(data))
                return
        await super().emit(event, data, to=to, room=room, skip_sid=skip_sid, namespace=namespace,
                           callback=callback, ignore_queue=ignore_queue)

    def identify(self, environ: dict[str, Any], auth: Any) -> str | None:
        """Who a connecting client is (None: anonymous); raise to say it cannot be told (no recovery)."""
        raise LookupError("this namespace does not restore sessions")

    def identity(self, sid: str) -> str | None:
        """Who a connected client is (None: anonymous), as `identify` said when it connected."""
        return None

    async def greet(self, sid: str, recovery: Recovery | None) -> None:
        """Send a newly connected client its first message (hook; nothing by default). `recovery` is None
        when the server keeps no history."""

    async def hello(self, sid: str, event: str, data: Any, recovery: Recovery) -> None:
        """A raw connection's first message: `recovery` (pid, recovered, missed) and the offset it stands
        at go at the top of its envelope, the documented fields stay as they are. (A Socket.IO client
        has its pid from the CONNECT answer and its offsets from the events it gets.)"""
        await self.server.recovery.hello(sid, self.namespace, event, data, recovery)

    async def follow(self, sid: str, room: str) -> None:
        """`enter_room`, plus what was sent to the room and is still held, first (a late follower)."""
        await self.server.recovery.follow(sid, self.namespace, room)

    def participants(self, room: str) -> list[str]:
        """The sids of this instance's connections in `room`."""
        return [sid for sid, _ in self.server.manager.get_participants(self.namespace, room)]

    def connections_here(self) -> int:
        """How many connections this namespace has on this instance, those still in their handshake
        included (python-socketio's everyone room: a sid is in it from its handshake to its end)."""
        return len(self.server.manager.rooms.get(self.namespace, {}).get(None, ()))

    async def send_error(self, sid: str, error: PonteError, request_id: str | None = None) -> None:
        await self.server.send_error(sid, self.namespace, error, request_id)

    def render_error(self, error: PonteError, request_id: str | None = None) -> tuple[str, dict[str, Any]]:
        """An error as this namespace's protocol shows it: (event, payload)."""
        return self.server.render_error(self.namespace, error, request_id)  # type: ignore[no-any-return]

    async def close(self, sid: str, code: int, reason: str) -> None:
        await self.server.kick(sid, self.namespace, code, reason)

    async def share(self, name: str, payload: dict[str, Any]) -> None:
        await self.server.share(name, payload)

    def on_share(self, name: str, control: Callable[[dict[str, Any]], Any]) -> None:
        self.server.on_share(name, control)

    def add_filter(self, event: str, judge: Callable[[Any], Callable[[str], bool] | None]) -> None:
        self.server.manager.filters[(self.namespace, event)] = judge

    def spawn(self, coro: Any) -> None:
        """Run a coroutine in the background, keeping a reference until it ends (a shutdown waits
        for these, within its drain time)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
