"""Where a fan-out's user-space CPU goes: the same broadcast written five ways, as run.py measures it.

    python bench/fanout_floor.py                  # 5,000 clients, 10 fan-outs per pass, 3 passes
    python bench/fanout_floor.py --clients 1000 --passes 1

Each server is bare aiohttp on uvloop, as bench/baseline_aiohttp.py, and frames the event once; they differ
only in what the broadcast reads of each recipient before its one `transport.write`:

* `aiohttp`      - bench/baseline_aiohttp.py on uvloop: `await ws.send_str(text)` to each WebSocket (aiohttp
                   frames it again for each one);
* `via-ws`       - the frame, written through each WebSocket object: `ws._payload_writer.transport.write`;
* `via-list`     - the frame, written to each transport from a list kept as clients come and go;
* `via-list-checked` - the same list, and the transport's two checks (open, not full) before each write:
                   what Ponte's `write_each` does since its detour set (the set is empty here);
* `via-peer`     - a list of small objects with __slots__ holding the transport and the checks Ponte's
                   `write_each` made before that (nothing queued, not closed, transport open and not full).

Printed: server CPU µs per delivery and its user/system split (load.measure_fanout, the same figures as
run.py's), median over the passes. What it shows (bench/README.md): at thousands of connections a
recipient's objects are out of the CPU's caches, and each object read per recipient costs more
user time than the Python around the write; the system calls themselves are the same in all five.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

MODES = ("via-ws", "via-list", "via-list-checked", "via-peer")


class Peer:
    __slots__ = ("transport", "backlog", "closed", "high")

    def __init__(self, transport: Any) -> None:
        self.transport, self.backlog, self.closed = transport, None, False
        self.high = transport.get_write_buffer_limits()[1]


def via_ws(clients: set[Any], listed: dict[Any, None], frame: bytes) -> None:
    for ws in clients:
        ws._payload_writer.transport.write(frame)


def via_list(clients: set[Any], listed: dict[Any, None], frame: bytes) -> None:
    for transport in listed:
        transport.write(frame)


def via_list_checked(clients: set[Any], listed: dict[Any, None], frame: bytes) -> None:
    limit = 65536 - len(frame) - 14
    for transport in listed:
        if transport.is_closing() or transport.get_write_buffer_size() > limit:
            continue
        transport.write(frame)


def via_peer(clients: set[Any], listed: dict[Any, None], frame: bytes) -> None:
    size = len(frame) + 14
    for peer in listed:
        transport = peer.transport
        if (peer.backlog or peer.closed or transport.is_closing()
                or transport.get_write_buffer_size() + size >= peer.high):
            continue
        transport.write(frame)


WRITE = {"via-ws": via_ws, "via-list": via_list, "via-list-checked": via_list_checked, "via-peer": via_peer}


def serve(mode: str, port: int, max_seconds: float) -> None:
    """One floor server (bench/baseline_aiohttp.py's routes), writing its broadcasts the `mode` way."""
    import uvloop
    from aiohttp import web

    import diagnostics
    from common import EVENT, HEARTBEAT, dumps, now_iso, raise_nofile
    from lifetime import stop_when_orphaned

    raise_nofile()
    stop_when_orphaned(max_seconds)
    clients: set[web.WebSocketResponse] = set()
    listed: dict[Any, None] = {}  # transports (or Peers), in the order clients came

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT)  # as bench/baseline_aiohttp.py
        await ws.prepare(request)
        entry = Peer(request.transport) if mode == "via-peer" else request.transport
        clients.add(ws)
        listed[entry] = None
        try:
            async for _ in ws:
                pass
        finally:
            clients.discard(ws)
            listed.pop(entry, None)
        return ws

    async def emit(request: web.Request) -> web.Response:
        data = dumps({"event": EVENT, "data": await request.json(), "timestamp": now_iso()}).encode()
        header = bytes((0x81, len(data))) if len(data) < 126 else bytes((0x81, 126)) + len(data).to_bytes(2, "big")
        WRITE[mode](clients, listed, header + data)
        return web.json_response({"ok": True})

    async def count(request: web.Request) -> web.Response:
        return web.json_response({"raw": len(clients), "eio": 0, "total": len(clients)})

    app = web.Application()
    app.router.add_get("/ws", websocket)
    for prefix in ("/bench", ""):
        app.router.add_post(f"{prefix}/emit", emit)
        app.router.add_get(f"{prefix}/count", count)
    diagnostics.install(app, True, False)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, backlog=4096,
                loop=uvloop.new_event_loop())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--only", help="comma-separated modes (aiohttp always runs: it is the reference)")
    parser.add_argument("--serve", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--max-seconds", type=float, default=3600.0, help=argparse.SUPPRESS)
    parser.add_argument("--gc-stats", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.max_seconds)
        return 0

    import load
    import run
    from common import raise_nofile

    for mode in MODES:
        run.SERVERS[mode] = {"cmd": [run.PY, __file__, "--serve", mode], "kind": load.RAW, "label": mode, "gc": True}
    names = ["aiohttp-uvloop", *(args.only.split(",") if args.only else MODES)]
    raise_nofile()
    print(f"fanout_floor: {args.clients} clients, {args.repeats} fan-outs x {args.passes} passes; "
          f"{run.pin_cpus()}", flush=True)
    load.CLIENT_LOOP = run.ensure_client_loop()
    figures: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="ponte-floor-") as tmp:
        for _ in range(args.passes):
            for name in names:
                server = run.Server(name, Path(tmp), max_seconds=900)
                fleet = None
                try:
                    fleet = load.Fleet(load.RAW, server.url, args.clients).wait_ready()
                    load.wait_count(server.url, lambda c: c >= args.clients, 60)
                    time.sleep(1.0)
                    figures[name].append(load.measure_fanout(fleet, server.pid, repeats=args.repeats))
                finally:
                    if fleet is not None:
                        fleet.stop()
                    server.stop()
    base = statistics.median(f["user_us_per_delivery"] for f in figures["aiohttp-uvloop"])
    print(f"\n{'server':16} {'CPU µs/delivery':>16} {'user':>6} {'system':>7} {'user ÷ aiohttp':>15}")
    for name in names:
        cpu, user, system = (statistics.median(f[k] for f in figures[name]) for k in
                             ("cpu_us_per_delivery", "user_us_per_delivery", "sys_us_per_delivery"))
        label = "aiohttp" if name == "aiohttp-uvloop" else name
        print(f"{label:16} {cpu:16.2f} {user:6.2f} {system:7.2f} {user / base:15.2f}")
    print(f"\n(median of {args.passes} passes; machine: {os.cpu_count()} CPUs; compare within this run only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
