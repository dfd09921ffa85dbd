"""What an instance pays for events to rooms it does not serve (issue 16), before and after per-room channels.

    python bench/pubsub_bench.py --label after           # 10,000/s and 40,000/s, 3 repeats, then the search
    python bench/pubsub_bench.py --label try --quick     # one short repeat per rate, to check it works
    python bench/pubsub_bench.py --label before --app ../wt16before   # another checkout's app (below)

A private redis-server and `--instances` Ponte instances behind it (two by default: bench/ponte_server.py's
app with REDIS_URL set, on the event loop `python -m app` uses, started by this script as
`pubsub_bench.py serve`). Instance A holds 1,000 idle raw /ws clients (room `user:bench`) and one probe
client (`user:probe`); B and the others hold none. A publisher process drives NOTIFICACAO_GERAL events at a
cluster-wide rate to 10,000 rooms no instance serves (`--target foreign`, `sala:N`), or to a room A serves
(`--target probe`: its one probe client; `--target bench`: its 1,000 clients), with the Redis work
`POST /api/v1/publish` does: the bench publishes one event through that API first, captures what reached
Redis and replays it with only the room's digits changed (bench/pubsub_via.py: the Lua call per event
since issue 16, an XADD or a PUBLISH on the shared channel before it). `--via api` publishes through the
API on B instead (100 events a request), at the price of B's HTTP work on the same machine.

The app measured is the `app` package of the checkout `--app` names (by default this one): the instances
import it first, so that another commit is measured with the same bench (`--app /work/wt16before`, with
that checkout's virtualenv if its dependencies differ). Its directory and commit are recorded (`app`).

The bench waits (up to 60 s) for other processes to use less than 0.1 core, and records what they used
during each run (`foreign_cores`). First A's CPU with nothing published, for `--seconds` (its own upkeep,
part of every figure below). Per run (`--seconds` of load): A's CPU (utime+stime from /proc/<pid>/stat) per
message published, also net of that upkeep (`a_us_net`), and as a share of one core; the other instances'
CPU together; the share of the messages A read and the others read (counted around their managers:
`RECEIVERS`) and A's CPU per message read; Redis's CPU (INFO cpu) and output bytes (INFO stats
total_net_output_bytes) per message; the rate achieved; and a probe event to A's probe client every 0.2 s
(to `user:probe`, the same way): its median latency and how many never arrived within 2 s. A runs alone on
the last CPU, every other process (the other instances, Redis, the publisher, the clients) on the others
(`--no-pin`: the kernel places them). Figures are medians over `--repeats` runs. The saturation search
raises the rate by `--step` from the last rate that held until A uses 95 % of a core, A or another
instance reads a share of the messages 2 points away from what it should (all of them, or none when
per-room channels keep them away), a probe is lost or arrives after 0.5 s, or the publisher cannot reach
the rate: on 2 cores that last one is the cluster's ceiling once the instances are out of the way.
Results go to bench/pubsub_results.json under `--label`; the table printed at the end shows every label
in that file side by side.
"""
from __future__ import annotations

import argparse
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

import redis  # noqa: E402

import load  # noqa: E402
from common import make_token, raise_nofile, stop_process  # noqa: E402
from load import RAW, Fleet  # noqa: E402
from pubsub_via import ApiVia, StreamVia, template, via  # noqa: E402
from redis_bench import ForeignLoad, machine, version  # noqa: E402
from redis_servers import RedisServer, free_port, pinner  # noqa: E402

RESULTS = BENCH / "pubsub_results.json"
ROOMS = 10_000  # the foreign target's rooms, none with a member anywhere
TARGETS = {"foreign": None, "probe": b"user:probe", "bench": b"user:bench"}  # None: sala:N over ROOMS
LOAD_NUMBER = 999_999  # the number in the load's messages: never a probe's
PROBE_EVERY, PROBE_WAIT = 0.2, 2.0  # seconds
# the manager's methods that take one message read from Redis, counted for "messages read": the first
# group the manager has. Since issue 16 every pub/sub message goes through `_take` (which calls the others);
# before, a history stream's entries went to `deliver_entry` and the shared channel's messages to `_receive`
RECEIVERS = (("_take",), ("deliver_entry", "_receive"))
MAX_BATCH = 2000  # events per publisher step at most (sent in pipelines of pubsub_via.PIPELINE)


# -- the instances --------------------------------------------------------------------------------------

def serve(port: int, redis_url: str, history_size: int, max_seconds: float) -> None:
    """One Ponte instance: bench/ponte_server.py's app with REDIS_URL, on `python -m app`'s event loop, plus
    GET /bench/received: the messages it read from Redis (counted around the manager, which is unchanged)."""
    from aiohttp import web

    from app.factory import SIO_KEY, new_event_loop
    from lifetime import stop_when_orphaned
    from ponte_server import bench_settings, build_app

    stop_when_orphaned(max_seconds)
    settings = bench_settings(port).model_copy(update={"redis_url": redis_url, "history_size": history_size})
    app = build_app(settings)
    manager, received = app[SIO_KEY].manager, [0]
    target = getattr(manager, "listener", manager)  # per-room channels: the manager's RoomListener
    names = next(group for group in RECEIVERS if all(hasattr(target, name) for name in group))
    for name in names:
        setattr(target, name, counted(getattr(target, name), received))

    async def report(request: web.Request) -> web.Response:
        from redis.utils import HIREDIS_AVAILABLE

        import app as package
        return web.json_response({"received": received[0], "hiredis": HIREDIS_AVAILABLE, "counted": names,
                                  "app": str(Path(package.__file__).resolve().parent)})

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

    def __init__(self, name: str, logdir: Path, redis_url: str, history_size: int, checkout: Path,
                 hiredis: bool = True, cpus: set[int] | None = None, max_seconds: float = 3600.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(logdir / f"{name}.log", "w")
        command = [sys.executable, str(Path(__file__).resolve()), "serve", "--port", str(self.port),
                   "--redis-url", redis_url, "--history-size", str(history_size), "--max-seconds", str(max_seconds),
                   "--app", str(checkout)]
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

    def about(self) -> dict[str, Any]:
        """Its parser (`hiredis`), the methods counted as reads (`counted`) and its app's directory (`app`)."""
        return dict(load.http_call(self.url, "GET", "/bench/received", timeout=10))

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()


# -- the publisher: its own process, at a steady rate ---------------------------------------------------

def publish_at(setup: dict[str, Any], rate: float, seconds: float, conn: Any) -> None:
    """Publish to the target (rooms `sala:N`, N over ROOMS, or one room of A's) at `rate` a second for
    `seconds`; report what was sent."""
    publisher, room = via(setup), TARGETS[setup["target"]]
    start, sent = time.monotonic(), 0
    while (elapsed := time.monotonic() - start) < seconds:
        due = min(int(rate * elapsed) - sent, MAX_BATCH)
        if due <= 0:
            time.sleep(0.001)
            continue
        publisher.send([room or b"sala:%06d" % (i % ROOMS) for i in range(sent, sent + due)], LOAD_NUMBER)
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
        self.catching = 900_000  # the numbers of caught_up's probes, each used once
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
        end = time.monotonic() + limit
        while time.monotonic() < end:
            number = self.catching = self.catching + 1
            sent = self.send(number)
            while time.monotonic() < sent + PROBE_WAIT and number not in self.arrived:
                time.sleep(0.005)
            if number in self.arrived and self.arrived[number] - sent < 0.05:
                return True
        return False


# -- one measured run -------------------------------------------------------------------------------

def redis_counters(client: redis.Redis) -> dict[str, float]:
    cpu, stats = client.info("cpu"), client.info("stats")
    return {"cpu": float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]),
            "out": float(stats["total_net_output_bytes"])}


def cpu_seconds(pid: int) -> float:
    user, system = load.proc_cpu_ticks(pid)
    return user + system


def counters(setup: dict[str, Any]) -> dict[str, float]:
    """CPU seconds and messages read of A and of the other instances together, and Redis's counters."""
    others = setup["others"]
    return {"a": cpu_seconds(setup["a"].pid), "read": setup["a"].received(),
            "others": sum(cpu_seconds(one.pid) for one in others), "others_read": sum(one.received() for one in others),
            **redis_counters(setup["redis"].client)}


def measure(rate: float, seconds: float, setup: dict[str, Any], first_probe: int) -> dict[str, Any]:
    """One run at `rate`: CPU of A, the others and Redis per message, output bytes per message, the probe."""
    setup["probe"].caught_up()
    started, before = time.monotonic(), counters(setup)
    result: dict[str, Any] = {}
    publisher = threading.Thread(target=lambda: result.update(drive(setup, rate, seconds)))
    publisher.start()
    latencies, lost = setup["probe"].run(seconds, first_probe)
    publisher.join()
    wall, sent = result["seconds"], max(1, result["sent"])
    foreign = setup["foreign"].between(started, time.monotonic())
    delta = {key: value - before[key] for key, value in counters(setup).items()}
    return {"rate": rate, "achieved": result["sent"] / wall, "seconds": wall,
            "a_us": delta["a"] / sent * 1e6, "a_core": delta["a"] / wall,
            "a_us_net": (delta["a"] - setup["a_idle"] * wall) / sent * 1e6,  # A's upkeep taken out
            "a_read": (delta["read"] - len(latencies)) / sent,  # the share of the load A read (probes aside)
            "a_us_read": delta["a"] / max(1, delta["read"]) * 1e6,
            "others_read": delta["others_read"] / sent / len(setup["others"]),  # each other instance's share
            "b_us": delta["others"] / sent * 1e6, "b_core": delta["others"] / wall,  # the others together
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


def saturated(run: dict[str, Any], expected: tuple[float, float]) -> bool:
    """An instance fell behind: A used a core, A or another instance read a share of the load 2 points away
    from what it should (`expected`: A's, the others'), by missing events (trimmed from the stream first) or
    hearing events to rooms it does not serve, a probe was lost or late; or the publisher could not keep
    the rate."""
    mine, theirs = expected
    off = abs(run["a_read"] - mine) > 0.02 or abs(run.get("others_read", theirs) - theirs) > 0.02
    return (run["a_core"] >= 0.95 or off or run["probes_lost"] > 0 or run["probe_ms"] is None
            or run["probe_ms"] > 500 or run["achieved"] < 0.95 * run["rate"])


# -- the whole bench ---------------------------------------------------------------------------------

def start(logdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Redis, the instances (A alone on the last CPU), A's clients, the captured message and the probe."""
    cpus = sorted(os.sched_getaffinity(0))
    alone = {cpus[-1]} if args.pin and len(cpus) > 1 else None
    if alone:  # A gets the last CPU to itself; this process and everything it starts from now on, the others
        os.sched_setaffinity(0, set(cpus[:-1]))
    server = RedisServer(logdir)
    a = Instance("A", logdir, server.url, args.history_size, args.app, not args.no_hiredis, alone)
    others = [Instance(chr(ord("B") + n), logdir, server.url, args.history_size, args.app, not args.no_hiredis)
              for n in range(args.instances - 1)]
    setup = {"redis": server, "a": a, "b": others[0], "others": others, "history": args.history_size,
             "target": args.target}
    setup["fleet"] = Fleet(RAW, a.url, args.clients).wait_ready()
    setup["captured"] = template(others[0].port, server.client)
    raise_if(args.via != "api" and setup["captured"] is None,
             "POST /api/v1/publish sent nothing to replay through Redis: use --via api")
    setup["via"] = "api" if args.via == "api" else setup["captured"]["kind"]
    setup["about"] = a.about()
    raise_if(any(one.about()["hiredis"] != (not args.no_hiredis) for one in [a, *others]),
             "the instances' parser is not the one asked for")
    per_room = setup["about"]["counted"] == ["_take"]  # per-room channels: A reads only what its rooms get
    # the share of the load each should read: per-room channels bring an instance only its rooms' events
    setup["expected_read"] = (0.0 if per_room and args.target == "foreign" else 1.0, 0.0 if per_room else 1.0)
    setup["probe"] = Probe(a.url, via(setup))
    return setup


def raise_if(condition: bool, why: str) -> None:
    if condition:
        raise SystemExit(f"bench: {why}")


def stop(setup: dict[str, Any]) -> None:
    for part in (setup.get("fleet"), *setup["others"], setup["a"], setup["redis"]):
        if part is not None:
            part.stop()


def idle(setup: dict[str, Any], seconds: float) -> float:
    """A's share of a core with nothing published: its own upkeep, included in every figure of a run."""
    pid = setup["a"].pid
    before, start = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - start)


def run(args: argparse.Namespace, setup: dict[str, Any]) -> dict[str, Any]:
    """A's upkeep, the rates asked for, then the saturation search up from the last rate that held."""
    setup["a_idle"] = idle(setup, args.seconds)
    print(f"  idle: A uses {setup['a_idle']:.1%} of a core with nothing published", flush=True)
    rows, probe = {}, 0
    for rate in args.rates:
        runs = []
        for _ in range(args.repeats):
            runs.append(measure(rate, args.seconds, setup, probe))
            probe += 1000
            print(f"  {rate:>7,.0f}/s: {brief(runs[-1])}", flush=True)
        rows[f"{rate:.0f}"] = medians(runs)
    held = [r["rate"] for r in rows.values() if not saturated(r, setup["expected_read"])]
    search = ceiling_search(args, setup, max(held or [0]), probe)
    ceiling = next((r["rate"] for r in search if saturated(r, setup["expected_read"])), None)
    return {"a_idle_core": setup["a_idle"], "rows": rows, "search": search, "saturated_at": ceiling}


def ceiling_search(args: argparse.Namespace, setup: dict[str, Any], rate: float, probe: int) -> list[dict[str, Any]]:
    """Raise the rate by `--step` until a run does not hold (or `--max-rate`); every run of the search."""
    search: list[dict[str, Any]] = []
    while args.step and rate < args.max_rate:
        rate += args.step
        search.append(measure(rate, args.seconds, setup, probe))
        probe += 1000
        print(f"  search {rate:>7,.0f}/s: {brief(search[-1])}", flush=True)
        if saturated(search[-1], setup["expected_read"]):
            break
    return search


def brief(r: dict[str, Any]) -> str:
    probe = "lost all" if r["probe_ms"] is None else f"{r['probe_ms']:.0f} ms"
    return (f"achieved {r['achieved']:,.0f}/s, A {r['a_us']:.1f} µs/msg ({r['a_us_net']:.1f} net) = "
            f"{r['a_core']:.0%} of a core, read {r['a_read']:.0%} ({r['a_us_read']:.1f} µs each), "
            f"others {r['b_core']:.0%} read {r['others_read']:.0%} each, Redis {r['redis_us']:.1f} µs/msg "
            f"{r['redis_out_bytes']:.0f} B out/msg, probe {probe} ({r['probes_lost']} lost); "
            f"other processes {r['foreign_cores']:.2f} cores")


def table(results: dict[str, Any]) -> str:
    """Every label's rows side by side, as a Markdown table."""
    lines = ["| label | rate (achieved) | A µs per message (net of upkeep) | A share of a core | share A read "
             "(µs each) | other instances: share of a core, share each read | Redis µs per message | "
             "Redis bytes out per message | probe median | probes lost |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, result in results.items():
        for r in result["rows"].values():
            net = f" ({r['a_us_net']:.1f})" if "a_us_net" in r else ""
            each = f", {r['others_read']:.0%}" if "others_read" in r else ""
            lines.append(f"| {label} | {r['rate']:,.0f}/s ({r['achieved']:,.0f}) | {r['a_us']:.1f}{net} | "
                         f"{r['a_core']:.0%} | {r['a_read']:.0%} ({r['a_us_read']:.1f}) | {r['b_core']:.0%}{each} | "
                         f"{r['redis_us']:.1f} | {r['redis_out_bytes']:,.0f} | {r['probe_ms']:.0f} ms | "
                         f"{r['probes_lost']} |")
        ceiling = result.get("saturated_at")
        idle = f"{result['a_idle_core']:.1%}" if "a_idle_core" in result else "not measured"
        lines.append(f"| {label} | saturation | {'at ' + format(ceiling, ',.0f') + '/s' if ceiling else 'not reached'}"
                     f" | A idle: {idle} | | | | | | |")
    return "\n".join(lines)


def serve_main() -> None:
    serving = argparse.ArgumentParser()
    serving.add_argument("--port", type=int, required=True)
    serving.add_argument("--redis-url", required=True)
    serving.add_argument("--history-size", type=int, required=True)
    serving.add_argument("--max-seconds", type=float, default=3600.0)
    serving.add_argument("--app", required=True)
    options = serving.parse_args(sys.argv[2:])
    sys.path.insert(0, options.app)  # before any import of app: the checkout under test
    raise_nofile()
    serve(options.port, options.redis_url, options.history_size, options.max_seconds)


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--label", default="after", help="the column these results fill (before, after …)")
    parser.add_argument("--rates", type=float, nargs="+", default=[10_000, 40_000])
    parser.add_argument("--repeats", type=int, help="runs per rate (default 3, 1 with --quick)")
    parser.add_argument("--seconds", type=float, help="of load per run (default 10, 4 with --quick)")
    parser.add_argument("--step", type=float, help="saturation search step (0: no search; default 5,000, 0 "
                                                   "with --quick)")
    parser.add_argument("--max-rate", type=float, default=80_000)
    parser.add_argument("--instances", type=int, default=2, help="Ponte instances: A holds the clients, the others "
                                                                 "none")
    parser.add_argument("--target", choices=tuple(TARGETS), default="foreign",
                        help="where the load goes: 10,000 rooms nobody is in (foreign), A's probe client's room "
                             "(probe: 1 member) or A's clients' room (bench: --clients members)")
    parser.add_argument("--clients", type=int, default=1000, help="idle raw clients on A")
    parser.add_argument("--app", type=Path, default=BENCH.parent,
                        help="the checkout whose app/ the instances run (default: this one)")
    parser.add_argument("--history-size", type=int, default=1000,
                        help="the instances' HISTORY_SIZE: 1000 (the default) keeps events to rooms in the "
                             "namespace's stream, 0 does not")
    parser.add_argument("--via", choices=("auto", "api"), default="auto",
                        help="replay what POST /api/v1/publish sends through Redis (auto: whatever the app "
                             "under test sends, bench/pubsub_via.py), or publish through that API on B (api)")
    parser.add_argument("--no-hiredis", action="store_true", help="the instances parse Redis replies without hiredis")
    parser.add_argument("--no-pin", dest="pin", action="store_false",
                        help="let the kernel place every process (default: A alone on the last CPU, the rest on "
                             "the others)")
    parser.add_argument("--quick", action="store_true",
                        help="1 repeat of 4 s per rate, no search (unless those options are given)")
    args = parser.parse_args()
    for name, full, quick in (("repeats", 3, 1), ("seconds", 10.0, 4.0), ("step", 5_000, 0)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    raise_if(args.instances < 2, "--instances counts A and at least one other")
    args.app = args.app.resolve()
    raise_if(not (args.app / "app" / "__init__.py").exists(), f"{args.app} holds no app/ package")
    return args


def checkout(app_dir: str) -> dict[str, Any]:
    """The app measured: its directory and its checkout's commit (and whether app/ differs from it)."""
    def git(*words: str) -> str:
        return subprocess.run(["git", "-C", app_dir, *words], capture_output=True, text=True).stdout.strip()
    return {"dir": app_dir, "commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "."))}


def bench(args: argparse.Namespace, info: dict[str, Any], foreign: ForeignLoad) -> dict[str, Any]:
    """Start everything, measure, stop everything; the label's result."""
    with tempfile.TemporaryDirectory(prefix="ponte-pubsub-") as logdir:
        setup = start(Path(logdir), args)
        setup["foreign"] = foreign
        try:
            app = checkout(setup["about"]["app"])
            size = setup["captured"]["bytes"] if setup["captured"] else None
            print(f"app {app['dir']} at {app['commit'][:7]}{' (modified)' if app['dirty'] else ''}; message: {size} "
                  f"bytes as sent through Redis, via {setup['via']}; {args.instances} instances; target "
                  f"{args.target}; {args.clients} idle clients on A; HISTORY_SIZE {args.history_size}; hiredis "
                  f"{info['hiredis']}; A's reads counted in {setup['about']['counted']}", flush=True)
            return {"machine": info, "app": app, "pinned": args.pin, "message_bytes": size, "clients": args.clients,
                    "via": setup["via"], "instances": args.instances, "target": args.target,
                    "history_size": args.history_size, "seconds": args.seconds, "counted": setup["about"]["counted"],
                    **run(args, setup)}
        finally:
            stop(setup)


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        return serve_main()
    args = options()
    raise_nofile()
    info = {**machine(), "hiredis": "hidden" if args.no_hiredis else version("hiredis")}
    print(f"{info['cpu_model']}, nproc {info['nproc']}, Python {info['python']}, {info['redis_server']}", flush=True)
    foreign = ForeignLoad()  # CPU of processes that are not this run's: the machine should be quiet
    print(f"waited {foreign.wait_quiet(60):.0f} s for a quiet machine", flush=True)
    try:
        result = bench(args, info, foreign)
    finally:
        result_foreign = foreign.stop()
    result["foreign"] = result_foreign
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[args.label] = result
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))


if __name__ == "__main__":
    if os.environ.get("REDIS_URL"):
        print("bench: REDIS_URL is ignored; a private redis-server is started", file=sys.stderr)
    main()
