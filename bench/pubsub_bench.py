"""What an instance pays for events to rooms it does not serve (issue 16), before and after per-room channels.

    python bench/pubsub_bench.py --label before         # 10,000/s and 40,000/s, 3 repeats, then the search
    python bench/pubsub_bench.py --label try --quick    # one short repeat per rate, to check it works

A private redis-server and two Ponte instances behind it (bench/ponte_server.py's app with REDIS_URL set,
on the event loop `python -m app` uses, started by this script as `pubsub_bench.py serve`). Instance A
holds 1,000 idle raw /ws clients (room `user:bench`) and one probe client (`user:probe`); B holds none.
A publisher process drives NOTIFICACAO_GERAL events to 10,000 other rooms at a cluster-wide rate, with
the bytes `POST /api/v1/publish` produces: the bench publishes one event through that API first and
replays the entry it left in Redis, with only the room's digits changed (`--via stream`: today an event
to rooms is an XADD into the namespace's history stream, which every instance reads back). `--via api`
publishes through `POST /api/v1/publish` on B instead (100 events a request), which measures whatever
design is behind the API, per-room channels included, at the price of B's HTTP work on the same machine:
run both labels of a comparison with the same `--via`.

The bench waits (up to 60 s) for other processes to use less than 0.1 core, and records what they used
during each run (`foreign_cores`). First A's CPU with nothing published, for `--seconds` (its own upkeep,
part of every figure below). Per run (`--seconds` of load): A's and B's CPU (utime+stime from
/proc/<pid>/stat) per message published and as a share of one core; the share of the messages A read
(counted around its manager) and its CPU per message read; Redis's CPU (INFO cpu) and output bytes (INFO
stats total_net_output_bytes) per message; the rate achieved; and a probe event to A's probe client every
0.2 s (to `user:probe`, the same way): its median latency and how many never arrived within 2 s (A fell
behind, or Redis dropped them for A). A runs alone on the last CPU, every other process (B, Redis, the
publisher, the clients) on the others (`--no-pin`: the kernel places them). Figures are medians over
`--repeats` runs. The saturation search raises the rate by `--step` from the last rate that held until A
uses 95 % of a core, reads less than 98 % of the messages, loses a probe or gets it after 0.5 s, or the
publisher cannot reach the rate. Results go to bench/pubsub_results.json under `--label`; the table printed
at the end shows every label in that file side by side.
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import jwt  # noqa: E402
import redis  # noqa: E402

import load  # noqa: E402
from common import SECRET, make_token, raise_nofile, stop_process  # noqa: E402
from load import RAW, Fleet  # noqa: E402
from redis_bench import ForeignLoad, machine, version  # noqa: E402
from redis_servers import RedisServer, free_port, pinner  # noqa: E402

RESULTS = BENCH / "pubsub_results.json"
STREAM = "socketio:history:/omni"  # where an event to rooms of /omni goes today (app/transport/history.py)
CHANNEL = "socketio"  # where it goes with HISTORY_SIZE=0: the shared pub/sub channel (REDIS_CHANNEL)
ROOMS = 10_000  # the target rooms, none with a member anywhere
SLOT, PROBE_SLOT = b"sala:000000", b"#000000"  # replaced in the template: the room, the probe's number
NOTICE = {"tipo": "info", "titulo": "Sistema Atualizado",
          # sized so that the pub/sub message is the 407 bytes (the stream entry is shorter)
          "mensagem": "Nova versão disponível com melhorias de performance e correções de bugs " + PROBE_SLOT.decode(),
          "acao": {"tipo": "link", "url": "https://exemplo.com/changelog"}}
PROBE_EVERY, PROBE_WAIT = 0.2, 2.0  # seconds
# the manager's methods that take one event read from Redis, counted for "messages A read": a history
# stream's entries and pub/sub messages today (a new design that reads elsewhere adds its method here)
RECEIVERS = ("deliver_entry", "_receive")
MAX_BATCH = 2000  # XADDs per pipeline at most


# -- the instances --------------------------------------------------------------------------------------

def serve(port: int, redis_url: str, history_size: int, max_seconds: float) -> None:
    """One Ponte instance: bench/ponte_server.py's app with REDIS_URL, on `python -m app`'s event loop, plus
    GET /bench/received: the events it read from Redis (counted around the manager, which is unchanged)."""
    from aiohttp import web

    from app.factory import SIO_KEY, new_event_loop
    from lifetime import stop_when_orphaned
    from ponte_server import bench_settings, build_app

    stop_when_orphaned(max_seconds)
    settings = bench_settings(port).model_copy(update={"redis_url": redis_url, "history_size": history_size})
    app = build_app(settings)
    manager, received = app[SIO_KEY].manager, [0]
    for name in RECEIVERS:
        if hasattr(manager, name):
            setattr(manager, name, counted(getattr(manager, name), received))

    async def report(request: web.Request) -> web.Response:
        from redis.utils import HIREDIS_AVAILABLE
        return web.json_response({"received": received[0], "hiredis": HIREDIS_AVAILABLE})

    app.router.add_get("/bench/received", report)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, backlog=4096,
                loop=new_event_loop(os.environ.get("EVENT_LOOP", "auto")))


def counted(method: Any, counter: list[int]) -> Any:
    async def call(*args: Any) -> None:
        counter[0] += 1
        await method(*args)
    return call


class Instance:
    """`pubsub_bench.py serve` in a child process, ready once it listens on Redis; stops when its stdin closes."""

    def __init__(self, name: str, logdir: Path, redis_url: str, history_size: int, hiredis: bool = True,
                 cpus: set[int] | None = None, max_seconds: float = 3600.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(logdir / f"{name}.log", "w")
        command = [sys.executable, str(Path(__file__).resolve()), "serve", "--port", str(self.port),
                   "--redis-url", redis_url, "--history-size", str(history_size), "--max-seconds", str(max_seconds)]
        env = {**os.environ, "PONTE_HOME": str(logdir)}
        if not hiredis:  # a module named hiredis that fails to import: redis-py falls back to its Python parser
            (logdir / "no-hiredis").mkdir(exist_ok=True)
            (logdir / "no-hiredis" / "hiredis.py").write_text('raise ImportError("hidden by the bench")\n')
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(logdir / "no-hiredis"), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=self.log, stderr=subprocess.STDOUT,
                                        env=env, preexec_fn=pinner(cpus))
        deadline = time.monotonic() + 60
        while not self._ready():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"instance {name} did not start; see {self.log.name}")
            time.sleep(0.1)

    def _ready(self) -> bool:
        try:
            return bool(load.http_call(self.url, "GET", "/readyz", timeout=5)["redis"] == "up")
        except (OSError, RuntimeError, ValueError):
            return False

    @property
    def pid(self) -> int:
        return self.process.pid

    def received(self) -> int:
        return int(load.http_call(self.url, "GET", "/bench/received", timeout=10)["received"])

    def hiredis(self) -> bool:
        return bool(load.http_call(self.url, "GET", "/bench/received", timeout=10)["hiredis"])

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()


# -- the message: one real publication through POST /api/v1/publish, read back from Redis -----------------

def notice(number: int) -> dict[str, Any]:
    return {**NOTICE, "mensagem": NOTICE["mensagem"].replace(PROBE_SLOT.decode(), "#%06d" % number)}


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
    """Events as the XADD `POST /api/v1/publish` makes today, replaying `message` with another room."""

    def __init__(self, port: int, message: bytes, maxlen: int) -> None:
        self.client, self.message, self.maxlen = redis.Redis(host="127.0.0.1", port=port), message, maxlen

    def send(self, rooms: list[bytes], number: int = 0) -> None:
        message = self.message.replace(PROBE_SLOT, b"#%06d" % number)
        pipe = self.client.pipeline(transaction=False)
        for room in rooms:
            pipe.xadd(STREAM, {"m": message.replace(SLOT, room)}, maxlen=self.maxlen, approximate=True)
        pipe.execute()


class ChannelVia(StreamVia):
    """Events as the PUBLISH `POST /api/v1/publish` makes with HISTORY_SIZE=0 (python-socketio's message
    format on the shared channel), replaying `message` with another room."""

    def send(self, rooms: list[bytes], number: int = 0) -> None:
        message = self.message.replace(PROBE_SLOT, b"#%06d" % number)
        pipe = self.client.pipeline(transaction=False)
        for room in rooms:
            pipe.publish(CHANNEL, message.replace(SLOT, room))
        pipe.execute()


def template(b_port: int, client: redis.Redis) -> bytes | None:
    """What `POST /api/v1/publish` on B sends through Redis for NOTICE to room SLOT, as bytes: the stream
    entry it adds, or else the message it publishes on the shared channel (None: neither)."""
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    ApiVia(b_port).send([SLOT])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for _, fields in client.xrevrange(STREAM, "+", "-", count=1):
            if SLOT in fields.get(b"m", b""):
                return bytes(fields[b"m"])
        message = pubsub.get_message(timeout=0.05)
        if message and SLOT in message["data"]:
            return bytes(message["data"])
    return None


def via(setup: dict[str, Any]) -> ApiVia | StreamVia:
    """A fresh publishing connection of the chosen kind (made in the process that uses it)."""
    if setup["via"] == "api":
        return ApiVia(setup["b"].port)
    kind = ChannelVia if setup["via"] == "channel" else StreamVia
    return kind(setup["redis"].port, setup["message"], setup["history"])


# -- the publisher: its own process, at a steady rate ---------------------------------------------------

def publish_at(setup: dict[str, Any], rate: float, seconds: float, conn: Any) -> None:
    """Publish to rooms `sala:N` (N over ROOMS) at `rate` a second for `seconds`; report what was sent."""
    publisher = via(setup)
    start, sent = time.monotonic(), 0
    while (elapsed := time.monotonic() - start) < seconds:
        due = min(int(rate * elapsed) - sent, MAX_BATCH)
        if due <= 0:
            time.sleep(0.001)
            continue
        publisher.send([b"sala:%06d" % (i % ROOMS) for i in range(sent, sent + due)])
        sent += due
    conn.send({"sent": sent, "seconds": time.monotonic() - start})


def drive(setup: dict[str, Any], rate: float, seconds: float) -> dict[str, Any]:
    """Run the publisher in a fresh process and wait for its report."""
    mine, theirs = multiprocessing.Pipe()
    process = multiprocessing.get_context("fork").Process(target=publish_at, args=(setup, rate, seconds, theirs))
    process.start()
    report = mine.recv() if mine.poll(seconds + 60) else {"sent": 0, "seconds": seconds}
    process.join(10)
    return dict(report)


# -- the probe: one client on A, and an event to it every PROBE_EVERY seconds ------------------------------

class Probe:
    """A raw client of A in `user:probe`, in a thread; `run(seconds)` sends probes and returns latencies."""

    def __init__(self, url: str, publisher: ApiVia | StreamVia) -> None:
        self.url, self.publisher = url, publisher
        self.arrived: dict[int, float] = {}
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True, name="probe")
        self.thread.start()
        if not self.ready.wait(30):
            raise RuntimeError("the probe client could not connect")

    def _read(self) -> None:
        import asyncio

        import aiohttp

        async def read() -> None:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"{self.url}/ws?token={make_token('probe')}") as ws:
                    self.ready.set()
                    async for frame in ws:
                        text = json.loads(frame.data).get("data", {}).get("mensagem", "")
                        if "#" in text:
                            self.arrived[int(text.rsplit("#", 1)[1])] = time.monotonic()
        asyncio.run(read())

    def send(self, number: int) -> float:
        sent = time.monotonic()
        self.publisher.send([b"user:probe"], number)
        return sent

    def run(self, seconds: float, first: int) -> tuple[list[float], int]:
        """Probe for `seconds`; the latencies of those that arrived within PROBE_WAIT and how many did not."""
        sent: dict[int, float] = {}
        end, number = time.monotonic() + seconds, first
        while time.monotonic() < end:
            sent[number] = self.send(number)
            number += 1
            time.sleep(PROBE_EVERY)
        deadline = max(sent.values()) + PROBE_WAIT
        while time.monotonic() < deadline and len(set(sent) & set(self.arrived)) < len(sent):
            time.sleep(0.02)
        latencies = [self.arrived[n] - t for n, t in sent.items()
                     if n in self.arrived and self.arrived[n] - t <= PROBE_WAIT]
        return latencies, len(sent) - len(latencies)

    def caught_up(self, limit: float = 60.0) -> bool:
        """Wait until a probe arrives within 50 ms (A has read everything published before it)."""
        end, number = time.monotonic() + limit, 900_000
        while time.monotonic() < end:
            sent = self.send(number)
            while time.monotonic() < sent + PROBE_WAIT and number not in self.arrived:
                time.sleep(0.005)
            if number in self.arrived and self.arrived[number] - sent < 0.05:
                return True
            number += 1
        return False


# -- one measured run -------------------------------------------------------------------------------

def redis_counters(client: redis.Redis) -> dict[str, float]:
    cpu, stats = client.info("cpu"), client.info("stats")
    return {"cpu": float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]),
            "out": float(stats["total_net_output_bytes"])}


def cpu_seconds(pid: int) -> float:
    user, system = load.proc_cpu_ticks(pid)
    return user + system


def measure(rate: float, seconds: float, setup: dict[str, Any], first_probe: int) -> dict[str, Any]:
    """One run at `rate`: CPU of A, B and Redis per message, output bytes per message, the probe's latency."""
    a, b, server, probe = setup["a"], setup["b"], setup["redis"], setup["probe"]
    probe.caught_up()
    started = time.monotonic()
    before = {"a": cpu_seconds(a.pid), "b": cpu_seconds(b.pid), "read": a.received(), **redis_counters(server.client)}
    result: dict[str, Any] = {}
    publisher = threading.Thread(target=lambda: result.update(drive(setup, rate, seconds)))
    publisher.start()
    latencies, lost = probe.run(seconds, first_probe)
    publisher.join()
    wall = result["seconds"]
    foreign = setup["foreign"].between(started, time.monotonic())
    after = {"a": cpu_seconds(a.pid), "b": cpu_seconds(b.pid), "read": a.received(), **redis_counters(server.client)}
    sent = max(1, result["sent"])
    delta = {key: after[key] - before[key] for key in after}
    return {"rate": rate, "achieved": result["sent"] / wall, "seconds": wall,
            "a_us": delta["a"] / sent * 1e6, "a_core": delta["a"] / wall,
            "a_read": (delta["read"] - len(latencies)) / sent,  # the share of the load A read (probes aside)
            "a_us_read": delta["a"] / max(1, delta["read"]) * 1e6,
            "b_us": delta["b"] / sent * 1e6, "b_core": delta["b"] / wall,
            "redis_us": delta["cpu"] / sent * 1e6, "redis_core": delta["cpu"] / wall,
            "redis_out_bytes": delta["out"] / sent,
            "probe_ms": statistics.median(latencies) * 1000 if latencies else None, "probes_lost": lost,
            "foreign_cores": foreign}


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k in runs[0] if all(isinstance(r[k], (int, float)) for r in runs)]
    out = {k: statistics.median(r[k] for r in runs) for k in keys}
    out["probes_lost"] = sum(r["probes_lost"] for r in runs)
    out["probe_ms"] = statistics.median([r["probe_ms"] for r in runs if r["probe_ms"] is not None] or [float("nan")])
    out["repeats"] = len(runs)
    return out


def saturated(run: dict[str, Any]) -> bool:
    """A fell behind: a core used, events it never read (trimmed from the stream first), a probe lost or late;
    or the publisher could not keep the rate."""
    return (run["a_core"] >= 0.95 or run["a_read"] < 0.98 or run["probes_lost"] > 0 or run["probe_ms"] is None
            or run["probe_ms"] > 500 or run["achieved"] < 0.95 * run["rate"])


# -- the whole bench ---------------------------------------------------------------------------------

def start(logdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    clients, kind, history_size = args.clients, args.via, args.history_size
    cpus = sorted(os.sched_getaffinity(0))
    alone = {cpus[-1]} if args.pin and len(cpus) > 1 else None
    if alone:  # A gets the last CPU to itself; this process and everything it starts from now on, the others
        os.sched_setaffinity(0, set(cpus[:-1]))
    server = RedisServer(logdir)
    a = Instance("A", logdir, server.url, history_size, not args.no_hiredis, alone)
    b = Instance("B", logdir, server.url, history_size, not args.no_hiredis)
    fleet = Fleet(RAW, a.url, clients).wait_ready()
    message = template(b.port, server.client)
    if kind == "auto":
        kind = "stream" if history_size else "channel"
    setup = {"redis": server, "a": a, "b": b, "fleet": fleet, "via": kind, "message": message,
             "history": history_size}
    assert a.hiredis() == b.hiredis() == (not args.no_hiredis), "the instances' parser is not the one asked for"
    if kind != "api" and message is None:
        raise SystemExit("bench: POST /api/v1/publish sent nothing to replay through Redis: use --via api")
    setup["probe"] = Probe(a.url, via(setup))
    return setup


def stop(setup: dict[str, Any]) -> None:
    setup["fleet"].stop()
    for name in ("a", "b", "redis"):
        setup[name].stop()


def idle(setup: dict[str, Any], seconds: float) -> float:
    """A's share of a core with nothing published: its own upkeep, included in every figure of a run."""
    pid = setup["a"].pid
    before, start = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - start)


def run(args: argparse.Namespace, setup: dict[str, Any]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    probe = 0
    a_idle = idle(setup, args.seconds)
    print(f"  idle: A uses {a_idle:.1%} of a core with nothing published", flush=True)
    for rate in args.rates:
        runs = []
        for _ in range(args.repeats):
            runs.append(measure(rate, args.seconds, setup, probe))
            probe += 1000
            print(f"  {rate:>7,.0f}/s: {brief(runs[-1])}", flush=True)
        rows[f"{rate:.0f}"] = medians(runs)
    search: list[dict[str, Any]] = []
    rate = max([r["rate"] for r in rows.values() if not saturated(r)] or [0])  # up from the last rate that held
    while args.step and rate < args.max_rate:
        rate += args.step
        search.append(measure(rate, args.seconds, setup, probe))
        probe += 1000
        print(f"  search {rate:>7,.0f}/s: {brief(search[-1])}", flush=True)
        if saturated(search[-1]):
            break
    ceiling = next((r["rate"] for r in search if saturated(r)), None)
    return {"a_idle_core": a_idle, "rows": rows, "search": search, "saturated_at": ceiling}


def brief(r: dict[str, Any]) -> str:
    probe = "lost all" if r["probe_ms"] is None else f"{r['probe_ms']:.0f} ms"
    return (f"achieved {r['achieved']:,.0f}/s, A {r['a_us']:.1f} µs/msg = {r['a_core']:.0%} of a core, "
            f"read {r['a_read']:.0%} ({r['a_us_read']:.1f} µs each), "
            f"B {r['b_core']:.0%}, Redis {r['redis_us']:.1f} µs/msg {r['redis_out_bytes']:.0f} B out/msg, "
            f"probe {probe} ({r['probes_lost']} lost); other processes {r['foreign_cores']:.2f} cores")


def table(results: dict[str, Any]) -> str:
    """Every label's rows side by side, as a Markdown table."""
    lines = ["| label | rate (achieved) | A µs per message thrown away | A share of a core | share A read "
             "(µs each) | B share | Redis µs per message | Redis bytes out per message | probe median | probes lost |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, result in results.items():
        for r in result["rows"].values():
            lines.append(f"| {label} | {r['rate']:,.0f}/s ({r['achieved']:,.0f}) | {r['a_us']:.1f} | "
                         f"{r['a_core']:.0%} | {r['a_read']:.0%} ({r['a_us_read']:.1f}) | {r['b_core']:.0%} | "
                         f"{r['redis_us']:.1f} | {r['redis_out_bytes']:,.0f} | {r['probe_ms']:.0f} ms | "
                         f"{r['probes_lost']} |")
        ceiling = result.get("saturated_at")
        idle = f"{result['a_idle_core']:.1%}" if "a_idle_core" in result else "not measured"
        lines.append(f"| {label} | saturation | {'at ' + format(ceiling, ',.0f') + '/s' if ceiling else 'not reached'}"
                     f" | A idle: {idle} | | | | | | |")
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        serving = argparse.ArgumentParser()
        serving.add_argument("--port", type=int, required=True)
        serving.add_argument("--redis-url", required=True)
        serving.add_argument("--history-size", type=int, required=True)
        serving.add_argument("--max-seconds", type=float, default=3600.0)
        options = serving.parse_args(sys.argv[2:])
        raise_nofile()
        return serve(options.port, options.redis_url, options.history_size, options.max_seconds)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--label", default="before", help="the column these results fill (before, after …)")
    parser.add_argument("--rates", type=float, nargs="+", default=[10_000, 40_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="of load per run")
    parser.add_argument("--step", type=float, default=5_000, help="saturation search step (0: no search)")
    parser.add_argument("--max-rate", type=float, default=80_000)
    parser.add_argument("--clients", type=int, default=1000, help="idle raw clients on A")
    parser.add_argument("--history-size", type=int, default=1000,
                        help="the instances' HISTORY_SIZE: 1000 (the default) sends events to rooms through the "
                             "namespace's stream, 0 through the shared pub/sub channel")
    parser.add_argument("--via", choices=("auto", "stream", "channel", "api"), default="auto",
                        help="replay what POST /api/v1/publish sends through Redis (auto: the stream, or the "
                             "channel with --history-size 0), or publish through that API on B (api)")
    parser.add_argument("--no-hiredis", action="store_true", help="the instances parse Redis replies without hiredis")
    parser.add_argument("--no-pin", dest="pin", action="store_false",
                        help="let the kernel place every process (default: A alone on the last CPU, the rest on "
                             "the others)")
    parser.add_argument("--quick", action="store_true", help="1 repeat of 4 s per rate, no search")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.seconds, args.step = 1, 4.0, 0
    raise_nofile()
    info = {**machine(), "hiredis": "hidden" if args.no_hiredis else version("hiredis")}
    print(f"{info['cpu_model']}, nproc {info['nproc']}, Python {info['python']}, {info['redis_server']}", flush=True)
    foreign = ForeignLoad()  # CPU of processes that are not this run's: the machine should be quiet
    print(f"waited {foreign.wait_quiet(60):.0f} s for a quiet machine", flush=True)
    with tempfile.TemporaryDirectory(prefix="ponte-pubsub-") as logdir:
        setup = start(Path(logdir), args)
        setup["foreign"] = foreign
        try:
            size = len(setup["message"]) if setup["message"] else None
            print(f"message: {size} bytes as sent through Redis; {args.clients} idle clients on A; published via "
                  f"{setup['via']}; HISTORY_SIZE {args.history_size}; hiredis {info['hiredis']}", flush=True)
            result = {"machine": info, "pinned": args.pin, "message_bytes": size, "clients": args.clients,
                      "via": setup["via"], "history_size": args.history_size, "seconds": args.seconds,
                      **run(args, setup)}
        finally:
            stop(setup)
            other = foreign.stop()
    result["foreign"] = other
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[args.label] = result
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))


if __name__ == "__main__":
    if os.environ.get("REDIS_URL"):
        print("bench: REDIS_URL is ignored; a private redis-server is started", file=sys.stderr)
    main()
