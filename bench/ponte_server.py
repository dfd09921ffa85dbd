"""Ponte under bench settings, in its own process, with two bench-only HTTP routes.

    python bench/ponte_server.py --port 8101

The routes are added to the app object create_app returns (nothing in app/ knows about them):
  POST /bench/emit?room=user:bench&ns=/omni   body: the JSON payload; ONE sio.emit, then 200
  GET  /bench/count                           {"raw", "eio", "total"}: sio.connection_counts()
`/emit` and `/count` are aliases, so every bench server answers the same paths.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from aiohttp import web  # noqa: E402

from app import Settings, create_app  # noqa: E402
from app.factory import SIO_KEY, freeze_heap_after_start, new_event_loop  # noqa: E402
from common import EVENT, HEARTBEAT, NAMESPACE, ROOM, SECRET, raise_nofile  # noqa: E402
from lifetime import stop_when_orphaned  # noqa: E402


def bench_settings(port: int) -> Settings:
    return Settings(jwt_secret=SECRET, host="127.0.0.1", port=port, max_connections=20000,
                    # every load client is the one user "bench", and limits are per user: the limit is
                    # still computed for each frame, it just never refuses one
                    rate_limit_per_second=1e9, rate_limit_burst=10**9,
                    idle_timeout=6 * 3600,  # idle load clients must not be swept mid-run
                    heartbeat=HEARTBEAT, log_level="WARNING")


def build_app(settings: Settings) -> web.Application:
    app = create_app(settings)
    freeze_heap_after_start(app)  # as `python -m app` does
    sio = app[SIO_KEY]

    async def emit(request: web.Request) -> web.Response:
        room = request.query.get("room", ROOM)
        namespace = request.query.get("ns", NAMESPACE)
        payload = await request.json()
        await sio.emit(EVENT, payload, room=room, namespace=namespace)
        return web.json_response({"ok": True})

    async def count(request: web.Request) -> web.Response:
        raw, eio = sio.connection_counts()
        return web.json_response({"raw": raw, "eio": eio, "total": raw + eio})

    for prefix in ("/bench", ""):
        app.router.add_post(f"{prefix}/emit", emit)
        app.router.add_get(f"{prefix}/count", count)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    parser.add_argument("--gc-stats", action="store_true", help="serve GET /bench/gc (bench/diagnostics.py)")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="serve GET /bench/tracemalloc (bench/diagnostics.py)")
    args = parser.parse_args()
    raise_nofile()
    stop_when_orphaned(args.max_seconds)
    app = build_app(bench_settings(args.port))
    if args.gc_stats or args.tracemalloc:  # bench/diagnostics.py
        import diagnostics
        diagnostics.install(app, args.gc_stats, args.tracemalloc)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, backlog=4096,
                loop=new_event_loop(os.environ.get("EVENT_LOOP", "auto")))  # as `python -m app` runs


if __name__ == "__main__":
    main()
