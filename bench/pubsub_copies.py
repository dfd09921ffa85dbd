"""Redis's CPU per subscriber copy of an event to a room (issue 16's Lua publish), for the capacity model.

    python bench/pubsub_copies.py     # ~1 min

No Ponte instance: a private redis-server (CPU 0), the publisher of bench/pubsub_bench.py (`LuaVia`, the
gateway's EVALSHA with a 342-byte message, to 10,000 rooms) at 10,000/s and 40,000/s, and 0, 1, 100 or
1,000 raw subscriber connections (CPU 1) that share the 10,000 room channels and discard what they read:
Redis's CPU (INFO cpu) and output bytes per message, so that the cost of one copy to one subscriber is
the difference with no subscriber. Each copy stands for one instance with a member in the room.
"""
from __future__ import annotations

import os
import selectors
import socket
import sys
import tempfile
import time
from multiprocessing import Event, Process
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pubsub_via import SLOT, LuaVia  # noqa: E402
from redis_servers import RedisServer  # noqa: E402

ROOMS = 10_000
ENTRY = (b'{"room":"sala:000000","skip":null,"event":"NOTIFICACAO_GERAL","args":[{"tipo":"info","titulo":'
         b'"Sistema Atualizado","mensagem":"Nova vers\\u00e3o dispon\\u00edvel com melhorias de performance e '
         b'corre\\u00e7\\u00f5es de bugs #000000","acao":{"tipo":"link","url":"https://exemplo.com/changelog"}}]}')
CAPTURED = {"message": ENTRY, "offset": b"1-0", "sender": b"%032x:1" % 0, "channel": b"socketio#/omni#%s#" % SLOT}


def command(*words: bytes) -> bytes:
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(word), word) for word in words)


def subscribe(port: int, count: int, ready: Any) -> None:
    """`count` connections, each subscribed to its share of the room channels, read and discarded."""
    os.sched_setaffinity(0, {os.cpu_count() - 1})  # type: ignore[operator]
    selector = selectors.DefaultSelector()
    for n in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        names = [b"socketio#/omni#sala:%06d#" % room for room in range(n, ROOMS, count)]
        sock.sendall(command(b"SUBSCRIBE", *names))
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    ready.set()
    while True:
        for key, _ in selector.select():
            try:
                key.fileobj.recv(1 << 20)  # type: ignore[union-attr]
            except BlockingIOError:
                pass


def counters(server: RedisServer) -> tuple[float, float]:
    cpu, stats = server.client.info("cpu"), server.client.info("stats")
    return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), float(stats["total_net_output_bytes"])


def publish(port: int, rate: float, seconds: float) -> int:
    """Publish at `rate` for `seconds` to the rooms in turn; how many were sent."""
    via, start, sent = LuaVia(port, CAPTURED, 1000), time.monotonic(), 0
    while (elapsed := time.monotonic() - start) < seconds:
        due = min(int(rate * elapsed) - sent, 2000)
        if due <= 0:
            time.sleep(0.001)
            continue
        via.send([b"sala:%06d" % (i % ROOMS) for i in range(sent, sent + due)], 999_999)
        sent += due
    return sent


def measure(server: RedisServer, connections: int, rate: float, seconds: float = 5.0) -> str:
    ready = Event()
    listener = Process(target=subscribe, args=(server.port, connections, ready), daemon=True)
    if connections:
        listener.start()
        ready.wait(30)
        time.sleep(1)
    (cpu, out), start = counters(server), time.monotonic()
    sent = publish(server.port, rate, seconds)
    wall, (cpu_after, out_after) = time.monotonic() - start, counters(server)
    if connections:
        listener.terminate()
    return (f"{rate:>7,.0f}/s, {connections:>5} subscriber connections: achieved {sent / wall:,.0f}/s, Redis "
            f"{(cpu_after - cpu) / sent * 1e6:.1f} µs per message = {(cpu_after - cpu) / wall:.0%} of a core, "
            f"{(out_after - out) / sent:.0f} B out per message")


def main() -> None:
    os.sched_setaffinity(0, {0})  # Redis and the publisher; the subscribers on the last CPU
    with tempfile.TemporaryDirectory(prefix="ponte-copies-") as logdir:
        server = RedisServer(Path(logdir))
        try:
            for rate in (10_000, 40_000):
                for connections in (0, 1, 100, 1000):
                    print(measure(server, connections, rate), flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
