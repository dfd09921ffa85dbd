"""Connection-state recovery under load (issue 12): nothing lost or doubled when an instance dies, and
what the history costs the fan-out.

    python bench/recovery_bench.py            # the full run (about 6 minutes; see bench/RECOVERY.md)
    python bench/recovery_bench.py --quick    # a small run that checks everything works (about 1.5 minutes)
    python bench/recovery_bench.py --only crash        # or --only cost

A. Recovery under a crash. A private redis-server; Ponte instances A and B (bench settings, REDIS_URL,
   HISTORY_SIZE 10000, RECOVERY_WINDOW 120); N raw /ws clients, client i connected to A when i is even,
   to B when odd, all with token user `rec{i % U}` (U users: each user's room `user:rec{k}` has clients on
   both instances). A publisher POSTs /api/v1/publish on B (a token with the `publish` scope) at 50
   events/s throughout, to the users in turn, each event's `titulo` carrying its sequence number. After
   a few seconds A gets SIGKILL; each of A's clients, when its socket closes, reconnects at once to B
   with `?pid=<its pid>&since=<the last offset it saw>`. Every client keeps the sequence number of every
   event it received, on every connection. Then: events lost (published with 202 to the client's user,
   never received), duplicated, out of order; the recovery first messages (recovered, missed, resync);
   times from the kill until each of A's clients has its first message on B ("back") and has received
   the `missed` events announced there ("caught up"). Run with two layouts: 10 users (100 clients per
   room, every event reaches 100 clients: every client of A misses something) and N users (one client
   per user: each event reaches one client; the realistic `user:{sub}` shape).
B. Cost of history. One instance in memory (no Redis) with HISTORY_SIZE 1000 (the default) and one with
   HISTORY_SIZE 0 (no history, no offsets), alive side by side, each with M idle raw clients in room
   user:bench; one POST /bench/emit to each in turn (the order alternates every repeat), the server's
   CPU time from just before the POST to 100 ms after the last client has the event (load.Fleet.fanout,
   as bench/run.py measures it), per delivery; medians over the repeats, and on ÷ off. Then the same
   with REDIS_URL (one private redis-server per instance), for information: with history, a room emit
   goes through the Redis stream (XADD, then every instance reads it back with XREAD) instead of
   pub/sub; redis-server's CPU is given beside.

The Ponte processes are bench/ponte_server.py's app (`build_app(bench_settings(port))`) with the
settings above put in by `model_copy`, served on the event loop `python -m app` uses (uvloop), started
by this script (`recovery_bench.py serve ...`): they stop when this script's pipe to them closes or
after --max-seconds. Load workers exit when their pipe closes or after 30 minutes. Servers and
redis-servers are pinned to the last CPU, this script and its clients to the others (--no-pin).
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import math
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import load  # noqa: E402
from common import SECRET, make_token, raise_nofile, stop_process  # noqa: E402
from load import RAW, Fleet, median, percentile  # noqa: E402
from redis_bench import ForeignLoad, finite, fmt, machine, markdown_table, split_cpus  # noqa: E402
from redis_servers import RedisServer, free_port, pinner  # noqa: E402

PY = sys.executable
RUN_LIMIT = 1800.0  # no new measurement starts after this many seconds
WORKER_SECONDS = 1800.0
RATE = 50.0  # events/s published during the crash scenario
EVENT = "NOTIFICACAO_GERAL"


# ---------------------------------------------------------------------------------------------
# a Ponte instance in its own process
# ---------------------------------------------------------------------------------------------

def serve(args: argparse.Namespace) -> None:
    """`recovery_bench.py serve`: bench/ponte_server.py's app with the history settings, on uvloop."""
    from aiohttp import web

    from app.factory import new_event_loop
    from lifetime import stop_when_orphaned
    from ponte_server import bench_settings, build_app

    raise_nofile()
    stop_when_orphaned(args.max_seconds)
    update: dict[str, Any] = {"history_size": args.history_size, "recovery_window": args.recovery_window,
                              "log_level": args.log_level}
    if args.redis_url:
        if ":6379" in args.redis_url:
            raise SystemExit("bench: refusing the default Redis port 6379; start a private redis-server")
        update["redis_url"] = args.redis_url
    settings = bench_settings(args.port).model_copy(update=update)
    web.run_app(build_app(settings), host="127.0.0.1", port=args.port, access_log=None, print=None, backlog=4096,
                loop=new_event_loop(os.environ.get("EVENT_LOOP", "auto")))


class Instance:
    """`recovery_bench.py serve` in a child process; stops when we close its stdin."""

    def __init__(self, name: str, logdir: Path, history_size: int, redis_url: str | None = None,
                 cpus: set[int] | None = None, recovery_window: float = 120.0, log_level: str = "WARNING",
                 max_seconds: float = RUN_LIMIT + 600) -> None:
        self.name, self.port = name, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = logdir / f"{name}.log"
        self.log = open(self.log_path, "w")
        command = [PY, str(Path(__file__).resolve()), "serve", "--port", str(self.port), "--history-size",
                   str(history_size), "--recovery-window", str(recovery_window), "--log-level", log_level,
                   "--max-seconds", str(max_seconds)]
        if redis_url:
            command += ["--redis-url", redis_url]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=self.log, stderr=subprocess.STDOUT,
                                        preexec_fn=pinner(cpus))
        ok, _, _ = load.wait_count(self.url, lambda n: n == 0, 30, interval=0.1)
        if not ok or self.process.poll() is not None:
            self.stop()
            raise RuntimeError(f"{name} did not start; see {self.log_path}:\n{self.log_path.read_text()[-2000:]}")
        if redis_url:
            time.sleep(0.5)  # its stream reader and channel listener start with the app; let them settle

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def log_tail(self, lines: int = 30) -> tuple[int, list[str]]:
        """How many lines the server logged, and the last `lines` of them."""
        self.log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return len(text), text[-lines:]

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()


# ---------------------------------------------------------------------------------------------
# A. the crash: clients that remember everything, a publisher, SIGKILL
# ---------------------------------------------------------------------------------------------

def order(offset: str) -> tuple[int, int]:
    """A Redis stream id (`ms-seq`) as a sortable pair (app/transport/history.py's stream_order)."""
    head, _, tail = offset.rpartition("-")
    try:
        return int(head), int(tail)
    except ValueError:
        return -1, -1


class RecClient:
    """One raw /ws client: its connections and every sequence number it received."""

    def __init__(self, index: int, user: str, token: str, first: str, fallback: str,
                 delay: tuple[float, float] = (0.0, 0.0)) -> None:
        self.index, self.user, self.token = index, user, token
        self.delay = delay  # seconds before reconnecting after a close: uniform in [lo, hi]
        self.first, self.fallback = first, fallback  # the instance it starts on, the one it goes back to
        self.pid: str | None = None
        self.offset: str | None = None  # the last offset seen (first message or event)
        self.seqs: list[int] = []
        self.conns: list[dict[str, Any]] = []
        self.offset_regressions = 0
        self.connect_failures = 0
        self.other: dict[str, int] = {}
        self.ready = asyncio.Event()

    def record(self) -> dict[str, Any]:
        return {"index": self.index, "user": self.user, "first": self.first, "seqs": self.seqs,
                "conns": self.conns, "offset_regressions": self.offset_regressions,
                "connect_failures": self.connect_failures, "other": self.other, "pid_known": self.pid is not None}


async def run_client(client: RecClient, session: Any, sem: asyncio.Semaphore, stopping: asyncio.Event) -> None:
    """Connect, read until the socket closes, reconnect to the fallback instance with pid and since."""
    from aiohttp import WSMsgType

    url = client.first
    delay = 0.05
    while not stopping.is_set():
        query = f"token={client.token}"
        if client.pid is not None and client.offset is not None:
            query += f"&pid={quote(client.pid)}&since={quote(client.offset)}"
        conn: dict[str, Any] = {"url": url, "t_start": time.monotonic(), "asked": client.pid is not None}
        try:
            async with sem:
                ws = await asyncio.wait_for(
                    session.ws_connect(f"{url}/ws?{query}", autoping=True, compress=0), load.CONNECT_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - the instance is gone or busy: retry, bounded back-off
            client.connect_failures += 1
            conn["error"] = f"{type(exc).__name__}: {exc}"[:160]
            if client.connect_failures > 200:
                client.conns.append(conn)
                return
            url = client.fallback
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)
            continue
        delay = 0.05
        client.conns.append(conn)
        conn["t_open"] = time.monotonic()
        remaining = -1  # missed events still to come (-1: before the first message)
        events = 0
        try:
            while True:
                msg = await ws.receive()
                if msg.type is not WSMsgType.TEXT:
                    if ws.closed or msg.type in load.STOP_TYPES:
                        break
                    continue
                now = time.monotonic()
                body = json.loads(msg.data)
                event = body.get("event")
                if event == "SESSAO_CONECTADA":
                    if remaining >= 0:  # a second first message on one connection
                        conn["hello_again"] = conn.get("hello_again", 0) + 1
                        continue
                    recovery = body.get("recovery") or {}
                    conn.update(t_first=now, recovered=recovery.get("recovered"),
                                missed=recovery.get("missed"), resync=recovery.get("resync", False),
                                offset_at_first=body.get("offset"), since=client.offset if conn["asked"] else None)
                    if "pid" not in recovery:
                        conn["bad_first"] = msg.data[:300]
                    client.pid = recovery.get("pid", client.pid)
                    if body.get("offset"):
                        client.offset = body["offset"]
                    remaining = int(recovery.get("missed") or 0)
                    if remaining == 0:
                        conn["t_caught_up"] = now
                    client.ready.set()
                    continue
                if event == EVENT:
                    seq = int(body["data"]["titulo"][1:])
                    client.seqs.append(seq)
                    events += 1
                    offset = body.get("offset")
                    if remaining < 0:  # an event before the connection's first message
                        conn.setdefault("before_first", []).append([seq, offset, round(now, 4)])
                    if offset is None:
                        conn["without_offset"] = conn.get("without_offset", 0) + 1
                    else:
                        if client.offset is not None and order(offset) <= order(client.offset):
                            client.offset_regressions += 1
                        client.offset = offset
                    if remaining > 0:
                        remaining -= 1
                        if remaining == 0:
                            conn["t_caught_up"] = now
                            conn["last_missed_seq"] = seq
                else:
                    client.other[str(event)] = client.other.get(str(event), 0) + 1
        except Exception as exc:  # noqa: BLE001 - a broken socket is a closed one
            conn["read_error"] = f"{type(exc).__name__}: {exc}"[:160]
        conn["t_closed"] = time.monotonic()
        conn["close_code"] = ws.close_code
        conn["events"] = events
        if stopping.is_set():
            return
        url = client.fallback  # the instance it was on is gone (or closed it): go to the other one
        lo, hi = client.delay
        if hi > 0:
            await asyncio.sleep(random.uniform(lo, hi))


Spec = tuple[int, str, str, str, str, tuple[float, float]]


def _rec_worker_main(conn: Any, other_end: Any, specs: list[Spec], loop_kind: str) -> None:
    other_end.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise_nofile()
    if loop_kind == "uvloop":
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(_rec_worker(conn, specs))


async def _rec_worker(conn: Any, specs: list[Spec]) -> None:
    import aiohttp

    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[Any] = asyncio.Queue()

    def on_readable() -> None:
        try:
            commands.put_nowait(conn.recv())
        except (EOFError, OSError):
            loop.remove_reader(conn.fileno())
            commands.put_nowait(("quit",))

    loop.add_reader(conn.fileno(), on_readable)
    clients = [RecClient(*spec) for spec in specs]
    stopping = asyncio.Event()
    sem = asyncio.Semaphore(100)
    deadline = time.monotonic() + WORKER_SECONDS
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:
        tasks = [asyncio.create_task(run_client(c, session, sem, stopping)) for c in clients]
        start = time.monotonic()
        try:
            await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients)), 120)
        except asyncio.TimeoutError:
            pass
        conn.send(("ready", sum(c.ready.is_set() for c in clients), time.monotonic() - start))
        while True:
            try:
                command = await asyncio.wait_for(commands.get(), max(1.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                break
            name = command[0]
            if name == "status":  # (on the fallback with a first message, of those, caught up, events)
                back = caught = 0
                for c in clients:
                    last = c.conns[-1] if c.conns else {}
                    if c.first != c.fallback and last.get("url") == c.fallback and "t_first" in last:
                        back += 1
                        caught += "t_caught_up" in last
                conn.send(("status", back, caught, sum(len(c.seqs) for c in clients)))
            elif name == "report":
                stopping.set()
                os.set_blocking(conn.fileno(), True)  # the loop's reader made it non-blocking; this one is large
                conn.send(("report", [c.record() for c in clients]))
            elif name == "quit":
                break
        stopping.set()
        for task in tasks:
            task.cancel()
    os._exit(0)


class RecFleet:
    """The crash scenario's clients over `procs` worker processes."""

    def __init__(self, specs: list[Spec], procs: int) -> None:
        ctx = multiprocessing.get_context("fork")
        self.workers: list[tuple[Any, Any]] = []
        for k in range(procs):
            share = specs[k::procs]
            if not share:
                continue
            mine, theirs = ctx.Pipe()
            process = ctx.Process(target=_rec_worker_main, daemon=True, args=(theirs, mine, share, load.CLIENT_LOOP))
            process.start()
            theirs.close()
            self.workers.append((process, mine))

    @staticmethod
    def _recv(conn: Any, timeout: float) -> Any:
        if not conn.poll(timeout):
            raise TimeoutError(f"no answer from a load worker in {timeout:g} s")
        return conn.recv()

    def wait_ready(self, n: int) -> float:
        ready, seconds = 0, 0.0
        for _, conn in self.workers:
            kind, k, s = self._recv(conn, 180)
            assert kind == "ready"
            ready, seconds = ready + k, max(seconds, s)
        if ready != n:
            raise RuntimeError(f"only {ready} of {n} clients got their first message")
        return seconds

    def status(self) -> tuple[int, int, int]:
        for _, conn in self.workers:
            conn.send(("status",))
        back = caught = events = 0
        for _, conn in self.workers:
            _, b, c, e = self._recv(conn, 30)
            back, caught, events = back + b, caught + c, events + e
        return back, caught, events

    def report(self) -> list[dict[str, Any]]:
        for _, conn in self.workers:
            conn.send(("report",))
        out: list[dict[str, Any]] = []
        for _, conn in self.workers:
            kind, records = self._recv(conn, 60)
            assert kind == "report"
            out += records
        return sorted(out, key=lambda r: r["index"])

    def stop(self) -> None:
        load.stop_workers(self.workers)
        self.workers = []


def publish_token() -> str:
    import jwt
    now = int(time.time())
    return jwt.encode({"sub": "bench-publisher", "scope": "publish", "iat": now, "exp": now + 6 * 3600},
                      SECRET, algorithm="HS256")


class Publisher:
    """POST /api/v1/publish at `rate` events/s to users in turn, in a thread, for a bounded time. Each
    event: (seq, user, monotonic time sent, HTTP status or the error, seconds the call took)."""

    def __init__(self, url: str, users: list[str], rate: float = RATE, max_seconds: float = 600.0) -> None:
        self.url, self.users, self.rate = url, users, rate
        self.token = publish_token()
        self.sent: list[tuple[int, str, float, Any, float]] = []
        self._stop = threading.Event()
        self._deadline = time.monotonic() + max_seconds
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)

    def start(self) -> "Publisher":
        self._thread.start()
        return self

    def _connection(self) -> http.client.HTTPConnection:
        host, port = self.url.removeprefix("http://").split(":")
        return http.client.HTTPConnection(host, int(port), timeout=10)

    def _run(self) -> None:
        conn = self._connection()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"}
        start = time.monotonic()
        seq = 0
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            due = start + seq / self.rate
            wait = due - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                break
            user = self.users[seq % len(self.users)]
            body = json.dumps({"namespace": "/omni", "user": user, "event": EVENT,
                               "data": {"tipo": "info", "titulo": f"s{seq}",
                                        "mensagem": f"evento {seq} para {user} " + "x" * 64}}).encode()
            t0 = time.monotonic()
            try:
                conn.request("POST", "/api/v1/publish", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status: Any = response.status
            except Exception as exc:  # noqa: BLE001 - recorded: that event may or may not have gone out
                status = f"{type(exc).__name__}: {exc}"[:120]
                conn.close()
                conn = self._connection()
            self.sent.append((seq, user, t0, status, time.monotonic() - t0))
            seq += 1
        conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)


def crash_scenario(n: int, users: int, delay: tuple[float, float], pre: float, post: float, logdir: Path,
                   cpus: set[int] | None, procs: int, step: Any, tag: str) -> dict[str, Any]:
    redis = RedisServer(logdir, cpus)
    instances: list[Instance] = []
    fleet: RecFleet | None = None
    publisher: Publisher | None = None
    try:
        a = Instance(f"{tag}-A", logdir, 10000, redis.url, cpus)
        instances.append(a)
        b = Instance(f"{tag}-B", logdir, 10000, redis.url, cpus)
        instances.append(b)
        names = [f"rec{k}" for k in range(users)]
        tokens = {name: make_token(name) for name in names}
        specs = []
        for i in range(n):
            name = names[i % users]
            first = a.url if i % 2 == 0 else b.url
            specs.append((i, name, tokens[name], first, b.url, delay))
        step(f"crash ({tag}): {n:,} raw clients, {users:,} users, half on A and half on B")
        fleet = RecFleet(specs, procs)
        connect_s = fleet.wait_ready(n)
        for inst, k in ((a, (n + 1) // 2), (b, n // 2)):
            ok, seen, _ = load.wait_count(inst.url, lambda c, k=k: c >= k, 60)
            if not ok:
                raise RuntimeError(f"{inst.name} counts {seen} clients, expected {k}")
        time.sleep(0.5)
        step(f"crash ({tag}): publisher on B at {RATE:g} events/s; SIGKILL of A in {pre:g} s")
        publisher = Publisher(b.url, names).start()
        time.sleep(pre)
        b_cpu0 = load.proc_cpu_clock(b.pid)
        redis_cpu0 = load.proc_cpu_clock(redis.pid)
        t_kill = time.monotonic()
        a.kill()
        step(f"crash ({tag}): A killed; waiting for its {(n + 1) // 2:,} clients to be back on B and caught up")
        expected_back = (n + 1) // 2
        back = caught = 0
        t_all = math.nan
        while time.monotonic() - t_kill < 60:
            back, caught, _ = fleet.status()
            if caught >= expected_back:
                t_all = time.monotonic() - t_kill
                break
            time.sleep(0.05)
        b_cpu_recovery = load.proc_cpu_clock(b.pid) - b_cpu0
        redis_cpu_recovery = load.proc_cpu_clock(redis.pid) - redis_cpu0
        time.sleep(post)
        publisher.stop()
        # drain: until the clients' event count stops moving (at most 15 s)
        last, t_drain = -1, time.monotonic()
        while time.monotonic() - t_drain < 15:
            time.sleep(0.5)
            total = fleet.status()[2]
            if total == last:
                break
            last = total
        b_count = load.count(b.url)
        b_metrics = scrape(b.url)
        records = fleet.report()
        b_lines, b_tail = instances[1].log_tail()
        a_lines, a_tail = instances[0].log_tail()
        result = analyse(records, publisher.sent, t_kill, a.url, b.url)
        result.update({"clients": n, "users": users, "pre_kill_s": pre, "post_s": post, "connect_s": connect_s,
                       "all_back_and_caught_up_s": t_all, "back_at_deadline": back, "caught_at_deadline": caught,
                       "b_cpu_s_kill_to_caught_up": b_cpu_recovery,
                       "redis_cpu_s_kill_to_caught_up": redis_cpu_recovery,
                       "b_connections_at_end": b_count, "b_metrics": b_metrics,
                       "reconnect_delay_s": list(delay),
                       "log_counts": {"A": log_counts(a.log_path), "B": log_counts(b.log_path)},
                       "server_logs": {"A": {"lines": a_lines, "tail": a_tail},
                                       "B": {"lines": b_lines, "tail": b_tail}},
                       "redis_stream_len": stream_len(redis)})
        return result
    finally:
        if publisher is not None:
            publisher.stop()
        if fleet is not None:
            fleet.stop()
        for inst in instances:
            inst.stop()
        redis.stop()


def scrape(url: str) -> dict[str, float]:
    """The counters of B's /metrics that say what went wrong: publish failures, recoveries, errors."""
    from urllib.request import urlopen
    out: dict[str, float] = {}
    try:
        text = urlopen(f"{url}/metrics", timeout=10).read().decode()
    except OSError as exc:
        return {"error": str(exc)}  # type: ignore[dict-item]
    for line in text.splitlines():
        if line.startswith(("ponte_publish_failures_total", "ponte_recoveries_total", "ponte_errors_total",
                            "ponte_connects_total", "ponte_redis_up")):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


LOG_KINDS = {  # what a server logged at WARNING and above, by kind (a line per kind, tracebacks aside)
    "MaxConnectionsError tracebacks": "redis.exceptions.MaxConnectionsError",
    "raw connection ... failed (closed 1011)": "raw connection ",
    "could not publish to Redis": "could not publish to Redis",
    "could not store recovery sessions": "could not store ",
    "presence not written to Redis": "presence not written",
    "recovery ... closing it": "no longer held; closing it",
    "history stream warnings": "history stream",
}


def log_counts(path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return counts
    for line in lines:
        for kind, needle in LOG_KINDS.items():
            if needle in line and (kind.startswith("MaxConnectionsError") or not line.startswith(" ")):
                counts[kind] = counts.get(kind, 0) + 1
    counts["lines"] = len(lines)
    return counts


def stream_len(redis: RedisServer) -> dict[str, int]:
    try:
        return {key.decode(): int(redis.client.xlen(key)) for key in redis.client.scan_iter("*:history:*")}
    except Exception:  # noqa: BLE001
        return {}


def analyse(records: list[dict[str, Any]], sent: list[tuple[int, str, float, Any, float]], t_kill: float,
            a_url: str, b_url: str) -> dict[str, Any]:
    ok = {seq: user for seq, user, _, status, _ in sent if status == 202}
    uncertain = {seq for seq, _, _, status, _ in sent if status != 202}
    by_user: dict[str, set[int]] = {}
    for seq, user in ok.items():
        by_user.setdefault(user, set()).add(seq)
    t_sent = {seq: t for seq, _, t, _, _ in sent}
    per_client = []
    lost_total = dup_total = disorder_total = unexpected_total = 0
    bad: list[dict[str, Any]] = []
    for r in records:
        seqs = r["seqs"]
        got = set(seqs)
        expected = by_user.get(r["user"], set())
        lost = sorted(expected - got)
        dups = len(seqs) - len(got)
        unexpected = sorted(got - expected - uncertain)
        disorder = sum(1 for x, y in zip(seqs, seqs[1:]) if y <= x)
        lost_total += len(lost)
        dup_total += dups
        disorder_total += disorder
        unexpected_total += len(unexpected)
        conns = r["conns"]
        opened = [c for c in conns if "t_open" in c]
        row = {"index": r["index"], "user": r["user"], "on": "A" if r["first"] == a_url else "B",
               "expected": len(expected), "received": len(seqs), "lost": len(lost), "duplicated": dups,
               "out_of_order": disorder, "unexpected": len(unexpected), "connections": len(opened),
               "connect_failures": r["connect_failures"], "offset_regressions": r["offset_regressions"],
               "other_events": r["other"]}
        if row["on"] == "A" and len(opened) >= 2:
            first, again = opened[0], opened[-1]
            row.update(recovered=again.get("recovered"), missed=again.get("missed"), resync=again.get("resync"),
                       closed_s=first.get("t_closed", math.nan) - t_kill,
                       back_s=again.get("t_first", math.nan) - t_kill,
                       caught_up_s=again.get("t_caught_up", math.nan) - t_kill,
                       events_on_a=first.get("events"), events_on_b=again.get("events"),
                       since=again.get("since"), without_offset=again.get("without_offset", 0))
        per_client.append(row)
        if lost or dups or disorder or unexpected or r["offset_regressions"] or \
                any(c.get("before_first") or c.get("hello_again") for c in conns) or \
                (row["on"] == "A" and row.get("recovered") is not True):
            detail = dict(row)
            detail.update(lost_seqs=lost[:40], duplicated_seqs=sorted({s for s in seqs if seqs.count(s) > 1})[:40],
                          unexpected_seqs=unexpected[:40],
                          lost_sent_after_kill_s=[round(t_sent[s] - t_kill, 3) for s in lost[:40]],
                          conns=[{k: (round(v - t_kill, 4) if k.startswith("t_") else v) for k, v in c.items()}
                                 for c in conns][:6])
            bad.append(detail)
    a_rows = [row for row in per_client if row["on"] == "A"]
    b_rows = [row for row in per_client if row["on"] == "B"]
    moved = [row for row in a_rows if "back_s" in row]
    latencies = [lat for _, _, _, status, lat in sent if status == 202]
    after_kill = [seq for seq, _, t, _, _ in sent if t >= t_kill]
    missed = [row["missed"] for row in moved if row.get("missed") is not None]
    return {
        "published": len(sent), "published_ok": len(ok), "publish_failed": len(uncertain),
        "publish_failures": sorted({str(s) for _, _, _, s, _ in sent if s != 202})[:5],
        "publish_rate": (len(sent) - 1) / (sent[-1][2] - sent[0][2]) if len(sent) > 1 else math.nan,
        "publish_p50_ms": percentile(latencies, 50) * 1000 if latencies else math.nan,
        "publish_p99_ms": percentile(latencies, 99) * 1000 if latencies else math.nan,
        "publish_max_ms": max(latencies) * 1000 if latencies else math.nan,
        "published_after_kill": len(after_kill),
        "deliveries_expected": sum(row["expected"] for row in per_client),
        "deliveries_received": sum(row["received"] for row in per_client),
        "lost": lost_total, "duplicated": dup_total, "out_of_order": disorder_total, "unexpected": unexpected_total,
        "lost_a": sum(row["lost"] for row in a_rows), "lost_b": sum(row["lost"] for row in b_rows),
        "dup_a": sum(row["duplicated"] for row in a_rows), "dup_b": sum(row["duplicated"] for row in b_rows),
        "clients_with_loss": sum(1 for row in per_client if row["lost"]),
        "clients_with_dups": sum(1 for row in per_client if row["duplicated"]),
        "offset_regressions": sum(row["offset_regressions"] for row in per_client),
        "a_clients": len(a_rows), "a_clients_back": len(moved),
        "recovered_true": sum(1 for row in moved if row.get("recovered") is True),
        "recovered_false": sum(1 for row in moved if row.get("recovered") is False),
        "resync": sum(1 for row in moved if row.get("resync")),
        "reconnect_attempts_failed": sum(row["connect_failures"] for row in a_rows),
        "missed_sum": sum(missed), "missed_min": min(missed, default=math.nan),
        "missed_p50": percentile(missed, 50), "missed_max": max(missed, default=math.nan),
        "missed_zero": sum(1 for m in missed if m == 0),
        "closed_p50_s": percentile([row["closed_s"] for row in moved], 50),
        "closed_max_s": max((row["closed_s"] for row in moved), default=math.nan),
        "back_p50_s": percentile([row["back_s"] for row in moved], 50),
        "back_max_s": max((row["back_s"] for row in moved), default=math.nan),
        "caught_up_p50_s": percentile([row["caught_up_s"] for row in moved if not math.isnan(row["caught_up_s"])], 50),
        "caught_up_max_s": max((row["caught_up_s"] for row in moved), default=math.nan),
        "events_without_offset_after_recovery": sum(row.get("without_offset", 0) for row in moved),
        "events_before_first_message": sum(len(c.get("before_first", ())) for r in records for c in r["conns"]),
        "clients_with_event_before_first_message": sum(
            1 for r in records if any(c.get("before_first") for c in r["conns"])),
        "second_first_messages": sum(c.get("hello_again", 0) for r in records for c in r["conns"]),
        "anomalies": bad[:200], "anomalies_total": len(bad),
        "per_client": per_client,
    }


# ---------------------------------------------------------------------------------------------
# B. the cost of history: CPU per delivery, on against off, alternating
# ---------------------------------------------------------------------------------------------

def cost_scenario(n: int, repeats: int, logdir: Path, cpus: set[int] | None, with_redis: bool,
                  step: Any) -> dict[str, Any]:
    redises: list[RedisServer] = []
    instances: list[Instance] = []
    fleets: list[Fleet] = []
    label = "redis" if with_redis else "memory"
    try:
        setups = {}
        for key, size in (("on", 1000), ("off", 0)):
            url = None
            if with_redis:
                redises.append(RedisServer(logdir, cpus))
                url = redises[-1].url
            inst = Instance(f"cost-{label}-{key}", logdir, size, url, cpus)
            instances.append(inst)
            setups[key] = (inst, redises[-1] if with_redis else None)
        step(f"cost ({label}): {n:,} idle raw clients on each of two instances (HISTORY_SIZE 1000 and 0)")
        for key, (inst, _) in setups.items():
            fleets.append(Fleet(RAW, inst.url, n, procs=1))
        for fleet in fleets:
            fleet.wait_ready()
        for inst, _ in setups.values():
            ok, seen, _ = load.wait_count(inst.url, lambda c: c >= n, 60)
            if not ok:
                raise RuntimeError(f"{inst.name} counts {seen} clients, expected {n}")
        by_key = dict(zip(setups, fleets))
        time.sleep(1.0)

        def once(key: str) -> dict[str, Any]:
            inst, redis = setups[key]
            r0 = load.proc_cpu_clock(redis.pid) if redis else 0.0
            run = by_key[key].fanout(inst.pid)
            run["redis_cpu_s"] = load.proc_cpu_clock(redis.pid) - r0 if redis else math.nan
            return run

        for _ in range(2):  # warm-up, not counted
            once("on")
            once("off")
        runs: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
        step(f"cost ({label}): {repeats} emits to each, alternating")
        for i in range(repeats):
            for key in (("on", "off") if i % 2 == 0 else ("off", "on")):
                time.sleep(0.3)
                runs[key].append(once(key))
        out: dict[str, Any] = {"clients": n, "repeats": repeats}
        for key, rs in runs.items():
            out[key] = {"cpu_us_per_delivery": median([r["server_cpu_s"] / n * 1e6 for r in rs]),
                        "cpu_us_per_delivery_min": min(r["server_cpu_s"] / n * 1e6 for r in rs),
                        "cpu_us_per_delivery_max": max(r["server_cpu_s"] / n * 1e6 for r in rs),
                        "redis_cpu_us_per_delivery": median([r["redis_cpu_s"] / n * 1e6 for r in rs]),
                        "all_ms": median([r["all_ms"] for r in rs]),
                        "missing": sum(n - r["received"] for r in rs),
                        "runs": [{k: v for k, v in r.items()} for r in rs]}
        # paired ratios: each repeat's on ÷ the same repeat's off (they ran back to back)
        pairs = [a["server_cpu_s"] / b["server_cpu_s"] for a, b in zip(runs["on"], runs["off"]) if b["server_cpu_s"]]
        out["ratio"] = out["on"]["cpu_us_per_delivery"] / out["off"]["cpu_us_per_delivery"]
        out["ratio_paired_median"] = median(pairs)
        out["ratio_paired_min"], out["ratio_paired_max"] = min(pairs), max(pairs)
        if with_redis:
            out["ratio_with_redis_cpu"] = (
                (out["on"]["cpu_us_per_delivery"] + out["on"]["redis_cpu_us_per_delivery"]) /
                (out["off"]["cpu_us_per_delivery"] + out["off"]["redis_cpu_us_per_delivery"]))
        return out
    finally:
        for fleet in fleets:
            fleet.stop()
        for inst in instances:
            inst.stop()
        for redis in redises:
            redis.stop()


# ---------------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------------

def crash_table(results: dict[str, dict[str, Any]]) -> str:
    header = ["", *results]
    rows: list[tuple[str, str, str]] = [
        ("raw /ws clients (on A + on B)", "{}", "clients"),
        ("users (rooms user:recK)", "{:,}", "users"),
        ("reconnect delay after the close (s)", "{}", "_delay"),
        ("events published (202) / failed", "{}", "_published"),
        ("publish rate (events/s), call p50 / max (ms)", "{}", "_rate"),
        ("published after the kill", "{:,}", "published_after_kill"),
        ("deliveries expected / received", "{}", "_deliveries"),
        ("**events lost** (A's clients / B's)", "{}", "_lost"),
        ("  of which silent (client recovered true, or on B) / told to resync", "{}", "_lost_split"),
        ("**events duplicated** (A's clients / B's)", "{}", "_dup"),
        ("out of order; offsets not increasing", "{}", "_order"),
        ("events that came before the connection's first message (clients)", "{}", "_before"),
        ("clients with a loss / with a duplicate", "{}", "_clients_bad"),
        ("A's clients back on B / recovered true", "{}", "_recovered"),
        ("recovered false / resync", "{}", "_false"),
        ("`missed` in the recovery message: sum, min / p50 / max", "{}", "_missed"),
        ("A's clients with `missed` 0", "{:,}", "missed_zero"),
        ("kill → client sees its socket closed: p50 / max (ms)", "{}", "_closed"),
        ("kill → back on B (first message): p50 / max (ms)", "{}", "_back"),
        ("kill → caught up (all `missed` received): p50 / max (ms)", "{}", "_caught"),
        ("kill → all back and caught up, as polled (ms)", "{}", "_all"),
        ("B's CPU from the kill to all caught up (s)", "{:.3f}", "b_cpu_s_kill_to_caught_up"),
        ("reconnect attempts refused", "{:,}", "reconnect_attempts_failed"),
        ("B: publish failures (ponte_publish_failures_total)", "{}", "_pubfail"),
        ("B: recoveries recovered / not (ponte_recoveries_total)", "{}", "_metrics_rec"),
        ("B: Redis MaxConnectionsError tracebacks logged", "{}", "_maxconn"),
        ("B: recovering connections failed, closed 1011 (logged)", "{}", "_failedconn"),
        ("B: 'could not store recovery sessions' lines", "{}", "_nostore"),
    ]
    body = []
    for label, pattern, key in rows:
        cells = []
        for r in results.values():
            if "error" in r:
                cells.append("error" if key == "clients" else "")
                continue
            if key == "clients":
                cells.append(f"{r['clients']:,} ({r['a_clients']:,} + {r['clients'] - r['a_clients']:,})")
            elif key == "_published":
                cells.append(f"{r['published_ok']:,} / {r['publish_failed']:,}")
            elif key == "_rate":
                cells.append(f"{r['publish_rate']:.1f}, {r['publish_p50_ms']:.1f} / {r['publish_max_ms']:.0f}")
            elif key == "_deliveries":
                cells.append(f"{r['deliveries_expected']:,} / {r['deliveries_received']:,}")
            elif key == "_lost":
                cells.append(f"**{r['lost']:,}** ({r['lost_a']:,} / {r['lost_b']:,})")
            elif key == "_lost_split":
                rows_ = r.get("per_client", [])
                silent = sum(x["lost"] for x in rows_ if x["on"] == "B" or x.get("recovered") is True)
                told = sum(x["lost"] for x in rows_ if x["on"] == "A" and x.get("recovered") is not True)
                cells.append(f"{silent:,} / {told:,}")
            elif key == "_dup":
                cells.append(f"**{r['duplicated']:,}** ({r['dup_a']:,} / {r['dup_b']:,})")
            elif key == "_order":
                cells.append(f"{r['out_of_order']:,}; {r['offset_regressions']:,}")
            elif key == "_clients_bad":
                cells.append(f"{r['clients_with_loss']:,} / {r['clients_with_dups']:,}")
            elif key == "_recovered":
                cells.append(f"{r['a_clients_back']:,} / {r['recovered_true']:,}")
            elif key == "_false":
                cells.append(f"{r['recovered_false']:,} / {r['resync']:,}")
            elif key == "_missed":
                cells.append(f"{r['missed_sum']:,}, {fmt(r['missed_min'], '{}')} / {fmt(r['missed_p50'], '{}')} / "
                             f"{fmt(r['missed_max'], '{}')}")
            elif key in ("_closed", "_back", "_caught"):
                name = {"_closed": "closed", "_back": "back", "_caught": "caught_up"}[key]
                cells.append(f"{fmt(r[name + '_p50_s'] * 1000, '{:.0f}')} / {fmt(r[name + '_max_s'] * 1000, '{:.0f}')}")
            elif key == "_before":
                cells.append(f"{r['events_before_first_message']:,} ({r['clients_with_event_before_first_message']:,})")
            elif key == "_delay":
                lo, hi = r["reconnect_delay_s"]
                cells.append("0 (at once)" if hi == 0 else f"{lo:g}–{hi:g}, uniform")
            elif key == "_pubfail":
                cells.append(fmt(r["b_metrics"].get("ponte_publish_failures_total"), "{:.0f}"))
            elif key == "_metrics_rec":
                m = r["b_metrics"]
                got = sum(v for k, v in m.items() if k.startswith("ponte_recoveries_total") and '"recovered"' in k)
                not_ = sum(v for k, v in m.items() if k.startswith("ponte_recoveries_total") and "not_recovered" in k)
                cells.append(f"{got:.0f} / {not_:.0f}")
            elif key in ("_maxconn", "_failedconn", "_nostore"):
                kind = {"_maxconn": "MaxConnectionsError tracebacks", "_failedconn": "raw connection ... failed "
                        "(closed 1011)", "_nostore": "could not store recovery sessions"}[key]
                cells.append(f"{r['log_counts']['B'].get(kind, 0):,}")
            elif key == "_all":
                cells.append(fmt(r["all_back_and_caught_up_s"] * 1000, "{:.0f}"))
            else:
                cells.append(fmt(r.get(key), pattern))
        body.append([label, *cells])
    return markdown_table(header, body)


def cost_table(results: dict[str, dict[str, Any]]) -> str:
    header = ["fan-out to one room, one emit", "clients", "history on: CPU µs/delivery", "history off",
              "on ÷ off (medians)", "paired on ÷ off: median (min–max)", "all received on / off (ms)",
              "redis-server µs/delivery on / off", "missing"]
    body = []
    for label, r in results.items():
        if "error" in r:
            body.append([label, "error: " + r["error"][:60], "", "", "", "", "", "", ""])
            continue
        on, off = r["on"], r["off"]
        body.append([label, f"{r['clients']:,}", f"{on['cpu_us_per_delivery']:.2f}",
                     f"{off['cpu_us_per_delivery']:.2f}",
                     f"{r['ratio']:.3f}", f"{r['ratio_paired_median']:.3f} ({r['ratio_paired_min']:.2f}–"
                                          f"{r['ratio_paired_max']:.2f})",
                     f"{fmt(on['all_ms'], '{:.1f}')} / {fmt(off['all_ms'], '{:.1f}')}",
                     f"{fmt(on['redis_cpu_us_per_delivery'], '{:.2f}')} / "
                     f"{fmt(off['redis_cpu_us_per_delivery'], '{:.2f}')}",
                     f"{on['missing'] + off['missing']}"])
    return markdown_table(header, body)


# ---------------------------------------------------------------------------------------------

def print_report(report: dict[str, Any]) -> None:
    info, cfg = report["machine"], report["config"]
    pre, repeats = cfg["pre_s"], cfg["repeats"]
    print(f"\nbench: {info['cpu_model']}, {info['nproc']} cores; servers and redis-server pinned to "
          f"{info['affinity'].get('server_cpus', 'any')}, clients to {info['affinity'].get('client_cpus', 'any')}")
    if report["crash"]:
        print(f"\nA. Recovery under a crash: SIGKILL of instance A after {pre:g} s of publishing at {RATE:g} events/s "
              f"(POST /api/v1/publish on B, users in turn); A's clients reconnect at once to B with pid and since; "
              f"HISTORY_SIZE 10000, RECOVERY_WINDOW 120 s")
        print(crash_table(report["crash"]))
        for tag, r in report["crash"].items():
            if r.get("anomalies"):
                print(f"\n{tag}: {r['anomalies_total']} clients with a loss, duplicate, disorder or no recovery; "
                      f"the first ones:")
                for row in r["anomalies"][:8]:
                    keys = ("t_open", "t_first", "recovered", "missed", "close_code", "events", "before_first",
                            "error")
                    conns = [{k: v for k, v in c.items() if k in keys} for c in row["conns"]]
                    brief = {k: row.get(k) for k in ("index", "user", "on", "expected", "received", "lost_seqs",
                                                     "lost_sent_after_kill_s", "duplicated_seqs", "recovered",
                                                     "missed", "since")}
                    print("  " + json.dumps(finite({**brief, "connections (times from the kill)": conns}))[:700])
            for side in ("A", "B"):
                counts = r.get("log_counts", {}).get(side, {})
                if counts.get("lines"):
                    print(f"{tag}: instance {side} logged {counts['lines']:,} lines (level WARNING): "
                          + ", ".join(f"{k}: {v:,}" for k, v in counts.items() if k != "lines"))
    if report["cost"]:
        print(f"\nB. Cost of history: CPU per delivery of one emit to a room of idle raw clients, HISTORY_SIZE 1000 "
              f"against 0, two instances side by side, emits alternating; medians of {repeats} emits each")
        print(cost_table(report["cost"]))
        memory = report["cost"].get("in memory (the target)", {})
        if "ratio" in memory:
            verdict = "met" if memory["ratio"] <= 1.15 else "NOT met"
            print(f"target: history on ≤ 1.15 × off, in memory: {memory['ratio']:.3f} → {verdict}")
    foreign = report["foreign_load"]
    print(f"\nbench: other processes used {foreign['mean_cores']:.2f} cores on average "
          f"(max {foreign['max_cores']:.2f}; "
          f"busiest {foreign['top_commands_cpu_s']}); the run took {report['seconds']:.0f} s")


def parse_layout(text: str) -> tuple[int, tuple[float, float]]:
    users, _, delay = text.strip().partition(":")
    if not delay:
        return int(users), (0.0, 0.0)
    lo, _, hi = delay.partition("-")
    return int(users), (float(lo), float(hi or lo))


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        p = argparse.ArgumentParser(prog="recovery_bench.py serve")
        p.add_argument("serve")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--history-size", type=int, default=1000)
        p.add_argument("--recovery-window", type=float, default=120.0)
        p.add_argument("--redis-url", default=None)
        p.add_argument("--log-level", default="WARNING")
        p.add_argument("--max-seconds", type=float, default=RUN_LIMIT + 600)
        serve(p.parse_args())
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 clients in the crash, 1,000 per instance in the "
                                                             "cost, fewer repeats")
    parser.add_argument("--only", default="", help="crash or cost")
    parser.add_argument("--clients", type=int, help="crash: raw clients (default 1000, quick 200)")
    parser.add_argument("--layouts", default="", help="crash runs, comma-separated: USERS or USERS:LO-HI (a "
                                                      "reconnect delay drawn in [LO, HI] s); default "
                                                      "10,N,10:0.5-1.5; quick 10")
    parser.add_argument("--pre", type=float, help="crash: seconds of publishing before the kill (default 10, quick 3)")
    parser.add_argument("--post", type=float, help="crash: seconds of publishing after all are caught up "
                                                   "(default 10, quick 3)")
    parser.add_argument("--procs", type=int, default=2, help="crash: client worker processes (default 2)")
    parser.add_argument("--cost-clients", type=int, help="cost: idle clients per instance (default 5000, quick 1000)")
    parser.add_argument("--repeats", type=int, help="cost: emits per setup (default 15, quick 5)")
    parser.add_argument("--no-redis-cost", action="store_true", help="skip the cost with Redis")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--output", default="", help="write every figure (per client too) to this JSON file")
    parser.add_argument("--show", default="", help="print the tables of a run saved with --output, and stop")
    parser.add_argument("--logs", default="", help="keep the servers' logs in this directory (default: a temporary "
                                                   "one, removed at the end)")
    args = parser.parse_args()

    if args.show:
        saved = json.loads(Path(args.show).read_text(), parse_constant=float)
        print_report(saved)
        return 0
    n = args.clients or (200 if args.quick else 1000)
    layouts = [parse_layout(s) for s in args.layouts.split(",") if s.strip()] or \
        ([(10, (0.0, 0.0))] if args.quick else [(10, (0.0, 0.0)), (n, (0.0, 0.0)), (10, (0.5, 1.5))])
    pre = args.pre if args.pre is not None else (3.0 if args.quick else 10.0)
    post = args.post if args.post is not None else (3.0 if args.quick else 10.0)
    cost_n = args.cost_clients or (1000 if args.quick else 5000)
    repeats = args.repeats or (5 if args.quick else 15)
    only = {s.strip() for s in args.only.split(",") if s.strip()} or {"crash", "cost"}
    nofile = raise_nofile()
    if nofile < 2 * cost_n + 1000:
        raise SystemExit(f"bench: open-file limit {nofile} is too low for 2 x {cost_n} clients")
    try:
        import uvloop  # noqa: F401
        load.CLIENT_LOOP = "uvloop"
    except ImportError:
        load.CLIENT_LOOP = "asyncio"
    info = machine()
    cpus, client_cpus, info["affinity"] = split_cpus(not args.no_pin)
    os.sched_setaffinity(0, client_cpus)  # load workers are forked from here and inherit it
    print(f"bench: {info['cpu_model']}, {info['nproc']} CPUs (nproc), {info['memory_gb']} GB, Python "
          f"{info['python']}, {info['redis_server'][:30]}; aiohttp {info['packages']['aiohttp']}, redis-py "
          f"{info['packages']['redis']}; {info['affinity']}", flush=True)
    started = time.monotonic()
    monitor = ForeignLoad()
    report: dict[str, Any] = {"generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": info,
                              "config": {"clients": n, "layouts": layouts, "pre_s": pre, "post_s": post,
                                         "rate": RATE, "cost_clients": cost_n, "repeats": repeats,
                                         "quick": args.quick}, "crash": {}, "cost": {}}
    failed = False

    def step(text: str) -> None:
        print(f"  [{time.monotonic() - started:6.0f} s] {text}", flush=True)

    with tempfile.TemporaryDirectory(prefix="ponte-recovery-bench-") as tmp:
        logdir = Path(args.logs or tmp)
        logdir.mkdir(parents=True, exist_ok=True)
        if "crash" in only:
            for users, delay in layouts:
                tag = f"{users}-users" + (f", delay {delay[0]:g}-{delay[1]:g} s" if delay[1] > 0 else "")
                if time.monotonic() - started > RUN_LIMIT:
                    break
                t0 = time.monotonic()
                try:
                    r = crash_scenario(n, users, delay, pre, post, logdir, cpus, args.procs, step,
                                       tag.replace(", delay ", "-d").replace(" s", ""))
                    r["foreign_cores"] = monitor.between(t0, time.monotonic())
                    step(f"crash ({tag}): lost {r['lost']}, duplicated {r['duplicated']}, recovered "
                         f"{r['recovered_true']}/{r['a_clients']}, all back and caught up in "
                         f"{r['all_back_and_caught_up_s'] * 1000:.0f} ms")
                except Exception as exc:  # noqa: BLE001 - reported, the run goes on
                    failed = True
                    step(f"crash ({tag}) FAILED: {type(exc).__name__}: {exc}")
                    r = {"error": f"{type(exc).__name__}: {exc}"}
                report["crash"][tag] = r
        if "cost" in only:
            for with_redis in (False, True):
                if with_redis and args.no_redis_cost:
                    continue
                label = "with Redis (for information)" if with_redis else "in memory (the target)"
                if time.monotonic() - started > RUN_LIMIT:
                    break
                t0 = time.monotonic()
                try:
                    r = cost_scenario(cost_n, repeats, logdir, cpus, with_redis, step)
                    r["foreign_cores"] = monitor.between(t0, time.monotonic())
                    step(f"cost ({label}): on {r['on']['cpu_us_per_delivery']:.2f} µs, off "
                         f"{r['off']['cpu_us_per_delivery']:.2f} µs per delivery: ×{r['ratio']:.3f}")
                except Exception as exc:  # noqa: BLE001
                    failed = True
                    step(f"cost ({label}) FAILED: {type(exc).__name__}: {exc}")
                    r = {"error": f"{type(exc).__name__}: {exc}"}
                report["cost"][label] = r
    report["foreign_load"] = monitor.stop()
    report["seconds"] = round(time.monotonic() - started, 1)

    print_report(report)
    if args.output:
        Path(args.output).write_text(json.dumps(finite(report), indent=1, default=str) + "\n")
        print(f"bench: wrote {args.output}")
    crash_ok = all("error" not in r and r["lost"] == 0 and r["duplicated"] == 0 for r in report["crash"].values())
    return 1 if failed or not crash_ok else 0


if __name__ == "__main__":
    sys.exit(main())
