"""The processes bench/redis_bench.py measures: a private redis-server, Ponte with or without
REDIS_URL, and plain python-socketio with or without its `AsyncRedisManager`.

    python bench/redis_servers.py ponte    --port 8201 [--redis-url redis://127.0.0.1:8299/0]
    python bench/redis_servers.py socketio --port 8202 [--redis-url redis://127.0.0.1:8299/0]

`ponte` is bench/ponte_server.py's app (`build_app(bench_settings(port))`) with `redis_url` set by
`model_copy`. `socketio` is plain python-socketio (AsyncServer + aiohttp) as in
bench/baseline_socketio.py, with `socketio.AsyncRedisManager(url)` as its client manager when a URL
is given (its defaults untouched: redis-py's pool of up to 100 connections). Both answer the same
bench routes (POST /bench/emit, GET /bench/count) plus GET /bench/redis: what each manager says about
Redis (published, failures, for python-socketio the publish errors it logged and how many times it
built a new Redis client). Nothing here changes how either server behaves; it only counts.

Every server stops when its stdin closes or after --max-seconds (bench/lifetime.py).
"""
from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from common import EVENT, HEARTBEAT, NAMESPACE, ROOM, now_iso, raise_nofile, stop_process  # noqa: E402
from lifetime import stop_when_orphaned  # noqa: E402

PY = sys.executable
CHANNEL = "socketio"  # python-socketio's default channel, Ponte's default REDIS_CHANNEL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinner(cpus: set[int] | None) -> Callable[[], None] | None:
    """A preexec_fn that pins the child to `cpus` (None: no pinning)."""
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


# ---------------------------------------------------------------------------------------------
# redis-server
# ---------------------------------------------------------------------------------------------

class RedisServer:
    """A private redis-server on a free loopback port (never 6379), no persistence."""

    def __init__(self, logdir: Path, cpus: set[int] | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        if self.port == 6379:
            self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = logdir / f"redis-{self.port}.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--maxclients", "20000", "--protected-mode", "yes"],
            stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=pinner(cpus))
        import redis
        self.client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, socket_connect_timeout=2)
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.client.ping():
                    break
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"redis-server did not start on {self.port}: {self.log_path.read_text()[-500:]}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.process.pid

    def publish_calls(self) -> int:
        """PUBLISH commands Redis has executed (INFO commandstats), a cross-check of the subscriber."""
        stats = self.client.info("commandstats")
        return int(stats.get("cmdstat_publish", {}).get("calls", 0))

    def command_calls(self) -> dict[str, int]:
        return {k.removeprefix("cmdstat_"): int(v.get("calls", 0))
                for k, v in self.client.info("commandstats").items()}

    def clients(self) -> dict[str, int]:
        """Connections open now and accepted since start."""
        info = self.client.info()
        return {"connected": int(info["connected_clients"]),
                "accepted_total": int(info["total_connections_received"])}

    def reset_stats(self) -> None:
        self.client.config_resetstat()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: redis-server exits (nothing to save)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        try:
            self.client.close()
        except Exception:  # noqa: BLE001
            pass
        self.log.close()


class PublishCounter:
    """A redis-py subscriber to the `socketio` channel that counts the messages it receives: every
    publish any instance makes. Runs in a thread of the measuring process, for a bounded time."""

    def __init__(self, port: int, channel: str = CHANNEL, max_seconds: float = 900.0) -> None:
        import redis
        self.client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, socket_connect_timeout=2)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(channel)
        # wait for the subscription to be confirmed, so nothing published after start() is missed
        deadline = time.monotonic() + 5
        while not self.pubsub.subscribed and time.monotonic() < deadline:
            self.pubsub.get_message(timeout=0.05)
        if not self.pubsub.subscribed:
            raise RuntimeError("the publish counter could not subscribe")
        self.count = 0
        self.methods: dict[str, int] = {}
        self._stop = threading.Event()
        self._deadline = time.monotonic() + max_seconds
        self._thread = threading.Thread(target=self._run, name="publish-counter", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            message = self.pubsub.get_message(timeout=0.1)
            if message is None or message.get("type") != "message":
                continue
            self.count += 1
            data = message.get("data") or b""
            start = data.find(b'"method":"') if isinstance(data, bytes) else -1
            if start < 0 and isinstance(data, bytes):
                start = data.find(b'"method": "')
                method = data[start + 11:data.find(b'"', start + 11)] if start >= 0 else b"?"
            else:
                method = data[start + 10:data.find(b'"', start + 10)] if start >= 0 else b"?"
            key = method.decode(errors="replace")
            self.methods[key] = self.methods.get(key, 0) + 1

    def settle(self, quiet: float = 0.3, limit: float = 10.0) -> int:
        """Wait until no message arrived for `quiet` seconds (at most `limit`); the count."""
        end = time.monotonic() + limit
        last = self.count
        while time.monotonic() < end:
            time.sleep(quiet)
            if self.count == last:
                break
            last = self.count
        return self.count

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        try:
            self.pubsub.close()
            self.client.close()
        except Exception:  # noqa: BLE001
            pass


# ---------------------------------------------------------------------------------------------
# a server under test, in its own process
# ---------------------------------------------------------------------------------------------

class ServerProcess:
    """`python bench/redis_servers.py KIND --port P [--redis-url U]`; stops when we close its stdin."""

    def __init__(self, kind: str, logdir: Path, redis_url: str | None = None, cpus: set[int] | None = None,
                 max_seconds: float = 1800.0, label: str = "") -> None:
        import load
        self.kind, self.redis_url = kind, redis_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.name = label or f"{kind}{'+redis' if redis_url else ''}-{self.port}"
        self.log_path = logdir / f"{self.name}.log"
        self.log = open(self.log_path, "w")
        command = [PY, str(Path(__file__).resolve()), kind, "--port", str(self.port), "--max-seconds", str(max_seconds)]
        if redis_url:
            command += ["--redis-url", redis_url]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=self.log, stderr=subprocess.STDOUT,
                                        preexec_fn=pinner(cpus))
        ok, _, _ = load.wait_count(self.url, lambda n: n == 0, 30, interval=0.1)
        if ok and redis_url:  # measured only once the instance listens on the channel
            deadline = time.monotonic() + 15
            while not self.redis_stats().get("subscribed") and time.monotonic() < deadline:
                time.sleep(0.05)
            ok = bool(self.redis_stats().get("subscribed"))
        if not ok or self.process.poll() is not None:
            self.stop()
            raise RuntimeError(f"{self.name} did not start; see {self.log_path}:\n{self.log_path.read_text()[-2000:]}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def redis_stats(self) -> dict[str, Any]:
        import load
        try:
            return load.http_call(self.url, "GET", "/bench/redis", timeout=10)
        except (OSError, RuntimeError, ValueError):
            return {}

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()


# ---------------------------------------------------------------------------------------------
# the server processes themselves
# ---------------------------------------------------------------------------------------------

def ponte_app(port: int, redis_url: str | None) -> Any:
    """bench/ponte_server.py's app, with REDIS_URL when given, plus GET /bench/redis."""
    from aiohttp import web

    from app.factory import SIO_KEY
    from app.transport.redis import RedisFanoutManager
    from ponte_server import bench_settings, build_app

    settings = bench_settings(port)
    if redis_url:
        settings = settings.model_copy(update={"redis_url": redis_url})
    app = build_app(settings)
    sio = app[SIO_KEY]

    async def redis_stats(request: web.Request) -> web.Response:
        manager = sio.manager
        if not isinstance(manager, RedisFanoutManager):
            return web.json_response({"manager": type(manager).__name__, "subscribed": False})
        pool = manager.redis.connection_pool
        return web.json_response({
            "manager": type(manager).__name__, "subscribed": manager.subscribed,
            "published": manager.published, "publish_failures": manager.publish_failures,
            "outbox": manager.outbox.qsize(), "pool_max_connections": pool.max_connections,
            "pool_connections": len(getattr(pool, "_in_use_connections", ())) +
            len(getattr(pool, "_available_connections", ()))})

    app.router.add_get("/bench/redis", redis_stats)
    return app


class _Counter(logging.Handler):
    """Counts the log records python-socketio's manager writes about Redis (they still go to stderr)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        cause = getattr(record, "redis_exception", None)  # python-socketio passes the error as `extra`
        if cause:
            text = f"{text} ({cause})"
        key = text if len(text) < 120 else text[:120]
        self.counts[key] = self.counts.get(key, 0) + 1


def socketio_app(port: int, redis_url: str | None) -> Any:
    """Plain python-socketio, as bench/baseline_socketio.py, with its plain AsyncRedisManager when a URL
    is given. SESSAO_PING is answered with `await sio.emit("SESSAO_PONG", data, to=sid, ...)`: a reply
    to a local client, which a pub/sub manager publishes to Redis all the same."""
    import socketio
    from aiohttp import web

    manager = socketio.AsyncRedisManager(redis_url) if redis_url else None
    counter = _Counter()
    connects = [0]
    if manager is not None:
        # count, do not change: how often the manager builds a new Redis client (after a failure)
        original = manager._redis_connect

        def counted_connect() -> None:
            connects[0] += 1
            original()
        manager._redis_connect = counted_connect  # type: ignore[method-assign]
    sio = socketio.AsyncServer(async_mode="aiohttp", ping_interval=HEARTBEAT, client_manager=manager)
    for name in ("socketio", "socketio.server"):
        logging.getLogger(name).addHandler(counter)
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

    async def redis_stats(request: web.Request) -> web.Response:
        if manager is None:
            return web.json_response({"manager": "AsyncManager", "subscribed": False})
        # true at start once the listener subscribed; after a publish error python-socketio replaces
        # `manager.pubsub` with a new, unsubscribed object (its listener keeps the old one: see
        # PUBSUB NUMSUB in bench/redis_bench.py)
        pubsub = manager.pubsub
        subscribed = bool(pubsub is not None and getattr(pubsub, "subscribed", False))
        pool = manager.redis.connection_pool if manager.redis is not None else None
        return web.json_response({
            "manager": type(manager).__name__, "subscribed": subscribed,
            "redis_clients_built": connects[0], "log_records": counter.counts,
            "publish_errors": sum(v for k, v in counter.counts.items() if "publish" in k.lower()),
            "pool_max_connections": pool.max_connections if pool is not None else None,
            "pool_connections": (len(getattr(pool, "_in_use_connections", ())) +
                                 len(getattr(pool, "_available_connections", ()))) if pool is not None else None})

    for prefix in ("/bench", ""):
        app.router.add_post(f"{prefix}/emit", emit)
        app.router.add_get(f"{prefix}/count", count)
    app.router.add_get("/bench/redis", redis_stats)

    async def start_manager(app: web.Application) -> None:
        # what python-socketio does on its first Engine.IO connection, done at start so the instance
        # listens on the channel before it is measured (and the first client does not pay for it)
        if not sio.manager_initialized:
            sio.manager_initialized = True
            sio.manager.initialize()

    app.on_startup.append(start_manager)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=("ponte", "socketio"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    args = parser.parse_args()
    if args.redis_url and ":6379" in args.redis_url:
        raise SystemExit("bench: refusing the default Redis port 6379; start a private redis-server")
    raise_nofile()
    stop_when_orphaned(args.max_seconds)
    from aiohttp import web
    app = ponte_app(args.port, args.redis_url) if args.kind == "ponte" else socketio_app(args.port, args.redis_url)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, backlog=4096)


if __name__ == "__main__":
    main()
