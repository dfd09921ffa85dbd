"""What bench/pubsub_bench.py publishes: the exact Redis work `POST /api/v1/publish` does for an event to a room.

The bench publishes one event through that API, captures what reached Redis (`template`), and replays it
with only the room's digits changed, in pipelines of at most 256 commands (the gateway's outbox batch):
- `lua` (per-room channels, issue 16): the gateway's Lua call, `EVALSHA` of `PUBLISH_SCRIPT` with the
  keys and arguments it sends (the stream, HISTORY_SIZE, `host:seq`, the entry, the room's channel), which
  adds the entry to the stream and publishes `{offset} {host:seq} {entry}` on `socketio#/omni#<room>#`;
- `stream` (before, HISTORY_SIZE > 0): an `XADD` into the namespace's stream, read back by every instance;
- `channel` (before, HISTORY_SIZE=0): a `PUBLISH` on the shared channel `socketio`;
- `api`: through `POST /api/v1/publish` itself, 100 events a request (B's HTTP work is then on the machine).
"""
from __future__ import annotations

import http.client
import json
import time
from typing import Any

import jwt
import redis

from common import SECRET

STREAM = "socketio:history:/omni"  # the namespace's history stream (app/transport/history.py)
CHANNEL = "socketio"  # the shared pub/sub channel (REDIS_CHANNEL)
ROOM_CHANNELS = "socketio#/omni#*"  # one channel per room of /omni (app/transport/channels.py), as a pattern
SLOT, PROBE_SLOT = b"sala:000000", b"#000000"  # replaced in the template: the room, the probe's number
NOTICE = {"tipo": "info", "titulo": "Sistema Atualizado",
          # sized so that the shared channel's message is the 407 bytes (the others are shorter)
          "mensagem": "Nova versão disponível com melhorias de performance e correções de bugs " + PROBE_SLOT.decode(),
          "acao": {"tipo": "link", "url": "https://exemplo.com/changelog"}}
PIPELINE = 256  # commands per pipeline at most, as the gateway's outbox sends them (BATCH in app/transport/redis.py)


def notice(number: int) -> dict[str, Any]:
    return {**NOTICE, "mensagem": NOTICE["mensagem"].replace(PROBE_SLOT.decode(), "#%06d" % number)}


def chunks(rooms: list[bytes]) -> list[list[bytes]]:
    return [rooms[start:start + PIPELINE] for start in range(0, len(rooms), PIPELINE)]


class ApiVia:
    """Events through `POST /api/v1/publish` on one instance, up to 100 a request."""

    def __init__(self, port: int) -> None:
        now = int(time.time())
        token = jwt.encode({"sub": "publisher", "scope": "publish", "iat": now, "exp": now + 6 * 3600}, SECRET)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def send(self, rooms: list[bytes], number: int = 0) -> None:
        for start in range(0, len(rooms), 100):
            body = [{"namespace": "/omni", "room": room.decode(), "event": "NOTIFICACAO_GERAL", "data": notice(number)}
                    for room in rooms[start:start + 100]]
            self.connection.request("POST", "/api/v1/publish", json.dumps(body), self.headers)
            response = self.connection.getresponse()
            response.read()
            assert response.status == 202, f"POST /api/v1/publish answered {response.status}"


class StreamVia:
    """Events as the XADD `POST /api/v1/publish` made before issue 16, replaying `message` with another room."""

    def __init__(self, port: int, captured: dict[str, Any], maxlen: int) -> None:
        self.client, self.message, self.maxlen = redis.Redis(host="127.0.0.1", port=port), captured["message"], maxlen

    def send(self, rooms: list[bytes], number: int = 0) -> None:
        message = self.message.replace(PROBE_SLOT, b"#%06d" % number)
        for chunk in chunks(rooms):
            pipe = self.client.pipeline(transaction=False)
            for room in chunk:
                self.add(pipe, room, message)
            pipe.execute()

    def add(self, pipe: Any, room: bytes, message: bytes) -> None:
        pipe.xadd(STREAM, {"m": message.replace(SLOT, room)}, maxlen=self.maxlen, approximate=True)


class ChannelVia(StreamVia):
    """Events as the PUBLISH `POST /api/v1/publish` made with HISTORY_SIZE=0 before issue 16 (python-socketio's
    message format on the shared channel), replaying `message` with another room."""

    def add(self, pipe: Any, room: bytes, message: bytes) -> None:
        pipe.publish(CHANNEL, message.replace(SLOT, room))


class LuaVia(StreamVia):
    """Events as `RedisFanoutManager._publish_entry` sends them since issue 16: one EVALSHA of PUBLISH_SCRIPT
    per event, with the gateway's keys and arguments and the captured entry, room replaced."""

    def __init__(self, port: int, captured: dict[str, Any], maxlen: int) -> None:
        from app.transport.channels import PUBLISH_SCRIPT  # only the after design has it

        super().__init__(port, captured, maxlen)
        self.script = self.client.register_script(PUBLISH_SCRIPT)
        self.keys = [STREAM] if captured["offset"] != b"-" else []
        self.host, self.seq = captured["sender"].rsplit(b":", 1)[0], 10**6  # a sender B never reaches
        self.channel = captured["channel"]

    def add(self, pipe: Any, room: bytes, message: bytes) -> None:
        self.seq += 1
        self.script(self.keys, [self.maxlen, b"%s:%d" % (self.host, self.seq), message.replace(SLOT, room),
                                self.channel.replace(SLOT, room)], client=pipe)


def template(b_port: int, client: redis.Redis) -> dict[str, Any] | None:
    """What `POST /api/v1/publish` on B sends through Redis for NOTICE to room SLOT: a room channel's
    message (kind `lua`), else the stream entry it adds (`stream`), else the shared channel's message
    (`channel`); None: none of them."""
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    pubsub.psubscribe(ROOM_CHANNELS)
    ApiVia(b_port).send([SLOT])
    deadline, kept = time.monotonic() + 5, None
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.05)
        if message and SLOT in message["data"]:
            if message["channel"] != CHANNEL.encode():
                offset, sender, entry = message["data"].split(b" ", 2)
                return {"kind": "lua", "message": entry, "offset": offset, "sender": sender,
                        "channel": message["channel"], "bytes": len(message["data"])}
            return {"kind": "channel", "message": message["data"], "bytes": len(message["data"])}
        for _, fields in client.xrevrange(STREAM, "+", "-", count=1):
            if SLOT in fields.get(b"m", b"") and kept is None:  # a room channel's message may still follow
                kept, deadline = bytes(fields[b"m"]), min(deadline, time.monotonic() + 1)
    return {"kind": "stream", "message": kept, "bytes": len(kept)} if kept else None


def via(setup: dict[str, Any]) -> ApiVia | StreamVia:
    """A fresh publishing connection of the chosen kind (made in the process that uses it)."""
    if setup["via"] == "api":
        return ApiVia(setup["b"].port)
    kind = {"channel": ChannelVia, "stream": StreamVia, "lua": LuaVia}[setup["via"]]
    return kind(setup["redis"].port, setup["captured"], setup["history"])
