"""Baseline: a bare aiohttp WebSocket server speaking Ponte's /ws envelope.

    python bench/baseline_aiohttp.py --port 8102

It keeps a set of WebSockets, answers SESSAO_PING with SESSAO_PONG, and broadcasts by encoding the
event once and `await ws.send_str(text)` to each client in turn. No auth, no rooms, no validation:
the floor a raw-WebSocket gateway on aiohttp can reach. Same /emit and /count routes as Ponte.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from aiohttp import WSMsgType, web  # noqa: E402

from common import EVENT, HEARTBEAT, dumps, now_iso, raise_nofile  # noqa: E402
from lifetime import stop_when_orphaned  # noqa: E402

CLIENTS = web.AppKey("clients", set)


async def websocket(request: web.Request) -> web.WebSocketResponse:
    # heartbeat as Ponte's /ws has it (same interval on every bench server)
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT)
    await ws.prepare(request)
    clients = request.app[CLIENTS]
    clients.add(ws)
    try:
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            try:
                message = json.loads(msg.data)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("event") == "SESSAO_PING":
                data = message.get("data") if isinstance(message.get("data"), dict) else {}
                await ws.send_str(dumps({"event": "SESSAO_PONG",
                                         "data": {"request_id": data.get("request_id"), "server_time": now_iso()},
                                         "timestamp": now_iso()}))
    finally:
        clients.discard(ws)
    return ws


async def emit(request: web.Request) -> web.Response:
    payload = await request.json()
    text = dumps({"event": EVENT, "data": payload, "timestamp": now_iso()})  # encoded once
    for ws in list(request.app[CLIENTS]):  # a snapshot: the set may change while we await
        try:
            await ws.send_str(text)
        except Exception:  # noqa: BLE001 - a closing socket must not stop the broadcast
            pass
    return web.json_response({"ok": True})


async def count(request: web.Request) -> web.Response:
    n = len(request.app[CLIENTS])
    return web.json_response({"raw": n, "eio": 0, "total": n})


def build_app() -> web.Application:
    app = web.Application()
    app[CLIENTS] = set()
    app.router.add_get("/ws", websocket)
    for prefix in ("/bench", ""):
        app.router.add_post(f"{prefix}/emit", emit)
        app.router.add_get(f"{prefix}/count", count)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8102)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    parser.add_argument("--gc-stats", action="store_true", help="serve GET /bench/gc (bench/diagnostics.py)")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="serve GET /bench/tracemalloc (bench/diagnostics.py)")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop, as Ponte does by default")
    args = parser.parse_args()
    raise_nofile()
    stop_when_orphaned(args.max_seconds)
    app = build_app()
    if args.gc_stats or args.tracemalloc:  # bench/diagnostics.py
        import diagnostics
        diagnostics.install(app, args.gc_stats, args.tracemalloc)
    loop = None
    if args.uvloop:
        import uvloop
        loop = uvloop.new_event_loop()
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, backlog=4096, loop=loop)


if __name__ == "__main__":
    main()
