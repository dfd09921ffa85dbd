"""Baseline: plain python-socketio (AsyncServer + aiohttp, the default AsyncManager).

    python bench/baseline_socketio.py --port 8103

Namespace /omni; every client enters room `user:bench` on connect; SESSAO_PING is answered with
SESSAO_PONG; /emit does one `await sio.emit(...)` to the room. No auth (the token is ignored).
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import socketio  # noqa: E402
from aiohttp import web  # noqa: E402

from common import EVENT, HEARTBEAT, NAMESPACE, ROOM, now_iso, raise_nofile  # noqa: E402
from lifetime import stop_when_orphaned  # noqa: E402


def build_app() -> web.Application:
    sio = socketio.AsyncServer(async_mode="aiohttp", ping_interval=HEARTBEAT)
    app = web.Application()
    sio.attach(app)

    async def connect(sid: str, environ: dict, auth: object = None) -> None:
        await sio.enter_room(sid, ROOM, namespace=NAMESPACE)

    async def sessao_ping(sid: str, data: object) -> None:
        request_id = data.get("request_id") if isinstance(data, dict) else None
        await sio.emit("SESSAO_PONG", {"request_id": request_id, "server_time": now_iso()},
                       to=sid, namespace=NAMESPACE)

    sio.on("connect", connect, namespace=NAMESPACE)
    sio.on("SESSAO_PING", sessao_ping, namespace=NAMESPACE)

    async def emit(request: web.Request) -> web.Response:
        payload = await request.json()
        await sio.emit(EVENT, payload, room=request.query.get("room", ROOM),
                       namespace=request.query.get("ns", NAMESPACE))
        return web.json_response({"ok": True})

    async def count(request: web.Request) -> web.Response:
        n = len(sio.eio.sockets)
        return web.json_response({"raw": 0, "eio": n, "total": n})

    for prefix in ("/bench", ""):
        app.router.add_post(f"{prefix}/emit", emit)
        app.router.add_get(f"{prefix}/count", count)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8103)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    parser.add_argument("--gc-stats", action="store_true", help="serve GET /bench/gc (bench/diagnostics.py)")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="serve GET /bench/tracemalloc (bench/diagnostics.py)")
    args = parser.parse_args()
    raise_nofile()
    stop_when_orphaned(args.max_seconds)
    app = build_app()
    if args.gc_stats or args.tracemalloc:  # bench/diagnostics.py
        import diagnostics
        diagnostics.install(app, args.gc_stats, args.tracemalloc)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, backlog=4096)


if __name__ == "__main__":
    main()
