"""The load tool: cheap WebSocket clients in their own processes, and the measurements.

Clients are aiohttp WebSocket clients, nothing more. A raw client speaks Ponte's /ws envelope
(`{"event", "data"}` JSON text frames). A Socket.IO client speaks Engine.IO 4 / Socket.IO 5 by hand
over the same kind of socket: `/socket.io/?EIO=4&transport=websocket`, the open packet `0{...}`,
`40/omni,{"token": ...}` answered by `40/omni,{"sid": ...}`, pings `2` answered with `3`, and events
as `42/omni,[name, data]`.

A `Fleet` is N such clients split over one or more worker processes (forked), each running its own
asyncio loop and taking commands over a pipe. The measuring side (`measure_*`) runs in the caller's
process, triggers the server over HTTP and reads the server's CPU time and memory from /proc.

Used by bench/run.py; also runnable alone against a server that is already up:

    python bench/load.py --url http://127.0.0.1:8101 --kind raw --pid PID --clients 1000
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import math
import multiprocessing
import os
import signal
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from aiohttp import WSMsgType  # noqa: E402

from common import EVENT, NAMESPACE, ROOM, dumps, make_token, payload, raise_nofile  # noqa: E402

RAW, SIO = "raw", "sio"
CONNECT_TIMEOUT = 20.0  # one client's handshake
REPLY_TIMEOUT = 60.0  # a worker's answer to one command
MAX_WORKER_SECONDS = 1800.0  # a worker exits by itself after this long, whatever happens
PONG = "SESSAO_PONG"
CLIENT_LOOP = os.environ.get("BENCH_CLIENT_LOOP", "uvloop")  # the load clients' event loop
STOP_TYPES = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)


# ---------------------------------------------------------------------------------------------
# /proc: a server's CPU time and memory
# ---------------------------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_ticks(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process (all its threads) from /proc/<pid>/stat, in seconds (10 ms steps)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK  # fields 14 and 15 of proc(5)


def proc_cpu_clock(pid: int) -> float:
    """The same CPU time with nanosecond resolution: the process CPU clock of `pid`
    (clock_getcpuclockid(3): clockid = (~pid << 3) | CPUCLOCK_SCHED)."""
    return time.clock_gettime((~pid << 3) | 2)


@dataclass
class Cpu:
    """A reading of a process's CPU time by both methods."""

    pid: int
    user: float = 0.0
    system: float = 0.0
    clock: float = 0.0

    @classmethod
    def read(cls, pid: int) -> "Cpu":
        user, system = proc_cpu_ticks(pid)
        return cls(pid, user, system, proc_cpu_clock(pid))

    @property
    def ticks(self) -> float:
        return self.user + self.system

    def since(self, before: "Cpu") -> tuple[float, float]:
        """(stat seconds, clock seconds) consumed since `before`."""
        return self.ticks - before.ticks, self.clock - before.clock


def rss_kb(pid: int) -> int:
    """VmRSS from /proc/<pid>/status, in kB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


# ---------------------------------------------------------------------------------------------
# HTTP to the server under test (plain http.client: the measuring process has no event loop)
# ---------------------------------------------------------------------------------------------

def http_call(url: str, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        text = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {response.status} {text[:200]!r}")
        return json.loads(text)
    finally:
        conn.close()


def count(url: str) -> int:
    return int(http_call(url, "GET", "/bench/count")["total"])


def wait_count(url: str, predicate: Any, timeout: float, interval: float = 0.05) -> tuple[bool, int, float]:
    """Poll /bench/count until predicate(n) or timeout; (met, last n, seconds waited)."""
    start = time.monotonic()
    n = -1
    while True:
        try:
            n = count(url)
        except (OSError, RuntimeError):
            n = -1
        waited = time.monotonic() - start
        if n >= 0 and predicate(n):
            return True, n, waited
        if waited > timeout:
            return False, n, waited
        time.sleep(interval)


def gc_seconds(url: str) -> float:
    """Seconds the server has spent in CPython's cyclic GC (bench/diagnostics.py), or NaN."""
    try:
        return float(sum(http_call(url, "GET", "/bench/gc")["seconds"]))
    except (OSError, RuntimeError, ValueError, KeyError):
        return math.nan


def emit(url: str, body: dict[str, Any]) -> None:
    http_call(url, "POST", f"/bench/emit?room={ROOM}&ns={NAMESPACE}", body)


# ---------------------------------------------------------------------------------------------
# The client side: runs in a worker process
# ---------------------------------------------------------------------------------------------

class Client:
    """One connection; its reader task records fan-out arrivals and wakes a waiting ping."""

    __slots__ = ("ws", "waiter")

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.waiter: asyncio.Future[float] | None = None


class Worker:
    """The clients of one worker process and the commands they obey."""

    def __init__(self, conn: Any, kind: str, url: str, token: str, n: int, concurrency: int) -> None:
        self.conn = conn
        self.kind = kind
        self.url = url
        self.token = token
        self.n = n
        self.concurrency = concurrency
        self.clients: list[Client] = []
        self.readers: list[asyncio.Task[None]] = []
        self.errors: list[str] = []
        # fan-out bookkeeping: the marker of the armed emit and the arrival times seen so far
        self.marker: str | None = None
        self.times: list[float] = []
        self.expected = 0
        self.all_in: asyncio.Event | None = None

    # -- connecting ---------------------------------------------------------------------------

    async def connect_all(self, session: Any) -> None:
        sem = asyncio.Semaphore(self.concurrency)

        async def one() -> None:
            async with sem:
                try:
                    ws = await asyncio.wait_for(self._connect(session), CONNECT_TIMEOUT)
                except Exception as exc:  # noqa: BLE001 - counted and reported, not fatal
                    self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    return
                client = Client(ws)
                self.clients.append(client)
                self.readers.append(asyncio.create_task(self._read(client)))

        await asyncio.gather(*(one() for _ in range(self.n)))

    async def _connect(self, session: Any) -> Any:
        base = self.url.rstrip("/")
        if self.kind == RAW:
            return await session.ws_connect(f"{base}/ws?token={self.token}", autoping=True, compress=0)
        ws = await session.ws_connect(f"{base}/socket.io/?EIO=4&transport=websocket", autoping=True, compress=0)
        try:
            opened = await ws.receive()
            if not (isinstance(opened.data, str) and opened.data.startswith("0{")):
                raise RuntimeError(f"expected the Engine.IO open packet, got {opened.data!r}"[:200])
            await ws.send_str(f"40{NAMESPACE}," + json.dumps({"token": self.token}))
            while True:
                msg = await ws.receive()
                if not isinstance(msg.data, str):
                    raise RuntimeError(f"connection closed during the Socket.IO handshake: {msg.type}")
                if msg.data == "2":
                    await ws.send_str("3")
                elif msg.data.startswith(f"40{NAMESPACE},"):
                    return ws
                elif msg.data.startswith(f"44{NAMESPACE},"):
                    raise RuntimeError(f"connect_error: {msg.data[:200]}")
        except BaseException:
            await ws.close()
            raise

    async def _read(self, client: Client) -> None:
        """Read until the socket closes: answer Engine.IO pings, note arrivals, wake pings."""
        ws = client.ws
        sio = self.kind == SIO
        while True:
            msg = await ws.receive()
            if msg.type is not WSMsgType.TEXT:
                if ws.closed or msg.type in STOP_TYPES:
                    return
                continue
            data = msg.data
            if sio and len(data) == 1:
                if data == "2":
                    await ws.send_str("3")
                continue
            marker = self.marker
            if marker is not None and marker in data:
                self.times.append(time.monotonic())
                if len(self.times) >= self.expected and self.all_in is not None:
                    self.all_in.set()
            elif PONG in data:
                waiter = client.waiter
                if waiter is not None and not waiter.done():
                    waiter.set_result(time.monotonic())

    # -- commands -----------------------------------------------------------------------------

    async def fanout_wait(self, marker: str, timeout: float) -> None:
        """Armed before the emit; reports arrivals once every client has one or at the timeout."""
        assert self.all_in is not None
        try:
            await asyncio.wait_for(self.all_in.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        times, self.times = self.times, []
        self.marker, self.all_in = None, None
        self.conn.send(("times", marker, times))

    async def pings(self, clients: int, per_client: int) -> tuple[list[float], float, int]:
        """`per_client` sequential SESSAO_PINGs on each of the first `clients` clients, all at once."""
        chosen = self.clients[:clients]
        rtts: list[float] = []
        failures = 0
        loop = asyncio.get_running_loop()

        async def one(client: Client, index: int) -> None:
            nonlocal failures
            for i in range(per_client):
                request_id = f"p{index}-{i}"
                if self.kind == RAW:
                    text = dumps({"event": "SESSAO_PING", "data": {"request_id": request_id}})
                else:
                    text = f"42{NAMESPACE}," + dumps(["SESSAO_PING", {"request_id": request_id}])
                client.waiter = loop.create_future()
                sent = time.monotonic()
                try:
                    await client.ws.send_str(text)
                    received = await asyncio.wait_for(client.waiter, 10.0)
                except (asyncio.TimeoutError, ConnectionError, RuntimeError):
                    failures += 1
                    continue
                finally:
                    client.waiter = None
                rtts.append(received - sent)

        start = time.monotonic()
        await asyncio.gather(*(one(c, i) for i, c in enumerate(chosen)))
        return rtts, time.monotonic() - start, failures

    async def close_all(self) -> None:
        await asyncio.wait_for(asyncio.gather(*(c.ws.close() for c in self.clients), return_exceptions=True), 30)


def _worker_main(conn: Any, other_end: Any, kind: str, url: str, token: str, n: int, concurrency: int,
                 client_loop: str) -> None:
    """Entry point of a worker process."""
    other_end.close()  # so a dead runner means EOF here
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the runner, which ends us
    raise_nofile()
    if client_loop == "uvloop":
        import uvloop  # the clients' loop only: the servers under test run plain asyncio
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(_worker(conn, kind, url, token, n, concurrency))


async def _worker(conn: Any, kind: str, url: str, token: str, n: int, concurrency: int) -> None:
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
    worker = Worker(conn, kind, url, token, n, concurrency)
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    deadline = time.monotonic() + MAX_WORKER_SECONDS
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:
        start = time.monotonic()
        await worker.connect_all(session)
        conn.send(("ready", len(worker.clients), worker.errors[:5], len(worker.errors), time.monotonic() - start))
        background: set[asyncio.Task[None]] = set()
        while True:
            try:
                command = await asyncio.wait_for(commands.get(), max(1.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                break  # lifetime reached
            name = command[0]
            if name == "arm":  # ("arm", marker, timeout): the next emit carries marker
                _, marker, timeout = command
                worker.times, worker.expected = [], len(worker.clients)
                worker.all_in = asyncio.Event()
                worker.marker = marker
                task = asyncio.create_task(worker.fanout_wait(marker, timeout))
                background.add(task)
                task.add_done_callback(background.discard)
                conn.send(("armed", marker))
            elif name == "ping":  # ("ping", clients, per_client)
                rtts, wall, failures = await worker.pings(command[1], command[2])
                conn.send(("pings", rtts, wall, failures))
            elif name == "alive":
                conn.send(("alive", sum(1 for c in worker.clients if not c.ws.closed)))
            elif name == "close":
                await worker.close_all()
                conn.send(("closed",))
            elif name == "quit":
                break
    # Whatever is still open is dropped by the kernel when the process exits (FIN, no handshake).
    os._exit(0)


# ---------------------------------------------------------------------------------------------
# The measuring side: a fleet of workers
# ---------------------------------------------------------------------------------------------

class Fleet:
    """N clients of one kind against one server, over `procs` worker processes."""

    def __init__(self, kind: str, url: str, n: int, procs: int = 1, concurrency: int = 100,
                 token: str | None = None, client_loop: str | None = None, gc: bool = False) -> None:
        self.kind, self.url, self.n, self.gc = kind, url, n, gc
        token = token or make_token()
        ctx = multiprocessing.get_context("fork")
        self.workers: list[tuple[Any, Any]] = []
        shares = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
        for share in shares:
            if share == 0:
                continue
            mine, theirs = ctx.Pipe()
            process = ctx.Process(target=_worker_main, daemon=True,
                                  args=(theirs, mine, kind, url, token, share, max(1, concurrency // procs),
                                        client_loop or CLIENT_LOOP))
            process.start()
            theirs.close()
            self.workers.append((process, mine))
        self.connected = 0
        self.errors: list[str] = []
        self.connect_seconds = 0.0

    def _recv(self, conn: Any, timeout: float = REPLY_TIMEOUT) -> Any:
        if not conn.poll(timeout):
            raise TimeoutError(f"no answer from a load worker in {timeout:g} s")
        return conn.recv()

    def wait_ready(self, timeout: float = 120.0) -> "Fleet":
        for _, conn in self.workers:
            kind, connected, errors, n_errors, seconds = self._recv(conn, timeout)
            assert kind == "ready"
            self.connected += connected
            self.errors += errors
            self.connect_seconds = max(self.connect_seconds, seconds)
        if self.connected != self.n:
            raise RuntimeError(f"{self.n - self.connected} of {self.n} {self.kind} clients failed to connect: "
                               f"{self.errors[:3]}")
        return self

    @property
    def pids(self) -> list[int]:
        return [p.pid for p, _ in self.workers]

    def client_cpu(self) -> float:
        return sum(proc_cpu_clock(pid) for pid in self.pids)

    def fanout(self, server_pid: int, marker: str | None = None, timeout: float = 60.0) -> dict[str, Any]:
        """One emit to the room: arm the workers, POST /bench/emit, collect arrival times."""
        marker = marker or f"F{uuid.uuid4().hex[:12]}"
        for _, conn in self.workers:
            conn.send(("arm", marker, timeout))
        for _, conn in self.workers:
            reply = self._recv(conn)
            assert reply == ("armed", marker), reply
        gc_before = gc_seconds(self.url) if self.gc else math.nan
        cpu_before, client_before = Cpu.read(server_pid), self.client_cpu()
        t0 = time.monotonic()
        emit(self.url, payload(marker))
        emit_returned = time.monotonic() - t0
        times: list[float] = []
        for _, conn in self.workers:
            kind, got_marker, arrivals = self._recv(conn, timeout + 10)
            assert kind == "times" and got_marker == marker
            times += arrivals
        time.sleep(0.1)  # let the server finish what follows the last write (the same for every server)
        cpu_after = Cpu.read(server_pid)
        client_cpu = self.client_cpu() - client_before
        ticks, clock = cpu_after.since(cpu_before)
        gc_s = gc_seconds(self.url) - gc_before if self.gc else math.nan
        received = len(times)
        last = max(times) - t0 if times else math.nan
        return {"clients": self.n, "received": received, "all_ms": last * 1000 if received == self.n else math.nan,
                "last_ms": last * 1000, "first_ms": (min(times) - t0) * 1000 if times else math.nan,
                "p50_arrival_ms": (statistics.median(times) - t0) * 1000 if times else math.nan,
                "emit_call_ms": emit_returned * 1000,
                "server_cpu_s_stat": ticks, "server_cpu_s": clock,
                "server_user_s_stat": cpu_after.user - cpu_before.user,
                "server_sys_s_stat": cpu_after.system - cpu_before.system,
                "server_gc_s": gc_s, "client_cpu_s": client_cpu}

    def ping(self, clients: int, per_client: int) -> dict[str, Any]:
        """Sequential pings on `clients` clients (spread over the workers), all concurrently."""
        share = [clients // len(self.workers) + (1 if i < clients % len(self.workers) else 0)
                 for i in range(len(self.workers))]
        for (_, conn), k in zip(self.workers, share):
            conn.send(("ping", k, per_client))
        rtts: list[float] = []
        wall, failures = 0.0, 0
        for _, conn in self.workers:
            kind, r, w, f = self._recv(conn, REPLY_TIMEOUT + per_client * 10)
            assert kind == "pings"
            rtts += r
            wall, failures = max(wall, w), failures + f
        return {"rtts": rtts, "wall_s": wall, "failures": failures}

    def close(self) -> None:
        """Close every client with a close handshake, then end the workers."""
        for _, conn in self.workers:
            conn.send(("close",))
        for _, conn in self.workers:
            self._recv(conn)
        self.stop()

    def kill(self) -> None:
        """SIGKILL the workers: the kernel closes all their sockets at once."""
        for process, _ in self.workers:
            if process.is_alive():
                os.kill(process.pid, signal.SIGKILL)
        self.stop()

    def stop(self) -> None:
        stop_workers(self.workers)
        self.workers = []


# ---------------------------------------------------------------------------------------------
# The measurements
# ---------------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), nearest-rank."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return statistics.median(finite) if finite else math.nan


def measure_ping(kind: str, url: str, clients: int = 100, per_client: int = 20, rounds: int = 3,
                 procs: int = 1) -> dict[str, Any]:
    """Figure 1: request/response latency and throughput with `clients` clients pinging at once."""
    fleet = Fleet(kind, url, clients, procs).wait_ready()
    try:
        wait_count(url, lambda n: n >= clients, 30)
        fleet.ping(clients, 5)  # warm-up round, not counted
        runs = []
        for _ in range(rounds):
            result = fleet.ping(clients, per_client)
            rtts = result["rtts"]
            runs.append({"p50_ms": percentile(rtts, 50) * 1000, "p99_ms": percentile(rtts, 99) * 1000,
                         "rt_per_s": len(rtts) / result["wall_s"], "failures": result["failures"],
                         "round_trips": len(rtts)})
    finally:
        fleet.close()
    wait_count(url, lambda n: n == 0, 30)
    return {"clients": clients, "per_client": per_client, "rounds": runs,
            "p50_ms": median([r["p50_ms"] for r in runs]), "p99_ms": median([r["p99_ms"] for r in runs]),
            "rt_per_s": median([r["rt_per_s"] for r in runs]),
            "failures": sum(r["failures"] for r in runs)}


def measure_fanout(fleet: Fleet, server_pid: int, repeats: int = 5, pause: float = 0.3) -> dict[str, Any]:
    """Figure 2: one emit to a room of `fleet.n` clients, `repeats` times after one warm-up."""
    fleet.fanout(server_pid)  # warm-up, not counted
    runs = []
    for _ in range(repeats):
        time.sleep(pause)
        runs.append(fleet.fanout(server_pid))
    n = fleet.n
    all_ms = median([r["all_ms"] for r in runs])
    stat_total = sum(r["server_cpu_s_stat"] for r in runs)
    cpu_total = sum(r["server_cpu_s"] for r in runs)
    user_stat, sys_stat = sum(r["server_user_s_stat"] for r in runs), sum(r["server_sys_s_stat"] for r in runs)
    cpu_us = median([r["server_cpu_s"] / n * 1e6 for r in runs])
    # The user/system split of that CPU time: utime and stime from /proc/<pid>/stat, read around the same
    # windows as the CPU clock. The kernel charges each scheduler tick to one or the other and reports them
    # in 10 ms steps, so the clock's figure is split by their shares summed over the repeats, and the
    # split is not given (NaN) when those sums come to fewer than 5 steps.
    split = round(stat_total * CLK_TCK) >= 5
    return {"clients": n, "repeats": repeats, "runs": runs,
            "all_ms": all_ms,
            "deliveries_per_s": n / (all_ms / 1000) if all_ms and not math.isnan(all_ms) else math.nan,
            "cpu_us_per_delivery": cpu_us,
            "user_us_per_delivery": cpu_us * user_stat / stat_total if split else math.nan,
            "sys_us_per_delivery": cpu_us * sys_stat / stat_total if split else math.nan,
            "cpu_us_per_delivery_stat": stat_total / (n * repeats) * 1e6,
            "sys_share_stat": sys_stat / stat_total if stat_total else math.nan,
            "gc_ms": median([r["server_gc_s"] * 1000 for r in runs]),
            "gc_share": (sum(r["server_gc_s"] for r in runs) / cpu_total) if cpu_total > 0 else math.nan,
            "client_cpu_s": median([r["client_cpu_s"] for r in runs]),
            "missing": sum(n - r["received"] for r in runs)}


def measure_memory(fleet_factory: Any, url: str, server_pid: int, n: int,
                   settle: float = 2.0) -> tuple[dict[str, Any], Fleet]:
    """Figure 3: server RSS growth per idle connection; returns the still-connected fleet too."""
    time.sleep(settle)
    before = rss_kb(server_pid)
    fleet = fleet_factory(n).wait_ready()
    ok, seen, _ = wait_count(url, lambda c: c >= n, 60)
    if not ok:
        raise RuntimeError(f"server counts {seen} connections, expected {n}")
    time.sleep(settle)
    after = rss_kb(server_pid)
    return {"clients": n, "rss_before_kb": before, "rss_after_kb": after,
            "kb_per_connection": (after - before) / n, "connect_s": fleet.connect_seconds}, fleet


def measure_disconnect(fleet: Fleet, url: str, server_pid: int, timeout: float = 60.0) -> dict[str, Any]:
    """Figure 4: kill the client processes; server CPU until /bench/count reports 0."""
    n = fleet.n
    gc_before = gc_seconds(url) if fleet.gc else math.nan
    before = Cpu.read(server_pid)
    start = time.monotonic()
    fleet.kill()
    ok, left, _ = wait_count(url, lambda c: c == 0, timeout, interval=0.05)
    wall = time.monotonic() - start
    ticks, clock = Cpu.read(server_pid).since(before)
    gc_s = gc_seconds(url) - gc_before if fleet.gc else math.nan
    return {"clients": n, "reached_zero": ok, "left": left, "wall_s": wall,
            "cpu_s": clock, "cpu_s_stat": ticks, "gc_s": gc_s}


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the load against a server that is already up.")
    parser.add_argument("--url", required=True)
    parser.add_argument("--pid", type=int, required=True, help="the server's pid (for /proc)")
    parser.add_argument("--kind", choices=(RAW, SIO), required=True)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--procs", type=int, default=1)
    args = parser.parse_args()
    raise_nofile()
    print(json.dumps(measure_ping(args.kind, args.url, procs=args.procs), default=str)[:2000])
    fleet = Fleet(args.kind, args.url, args.clients, args.procs).wait_ready()
    wait_count(args.url, lambda c: c >= args.clients, 60)
    result = measure_fanout(fleet, args.pid, args.repeats)
    result.pop("runs")
    print(json.dumps(result))
    print(json.dumps(measure_disconnect(fleet, args.url, args.pid)))


def stop_workers(workers: list[tuple[Any, Any]]) -> None:
    """Tell each load worker (process, pipe) to quit; kill those still there after 10 s."""
    for process, conn in workers:
        try:
            conn.send(("quit",))
        except (OSError, ValueError):
            pass
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join(5)
        conn.close()


if __name__ == "__main__":
    main()

__all__ = ["EVENT", "Fleet", "measure_ping", "measure_fanout", "measure_memory", "measure_disconnect"]
