"""Ponte with Redis: fan-out across two instances, and echo round trips with Redis configured,
against plain python-socketio's AsyncRedisManager. All on loopback, with a private redis-server.

    python bench/redis_bench.py            # the full run (about 10 minutes), writes bench/redis_results.json
    python bench/redis_bench.py --quick    # a small run to check that everything works (about 3 minutes)

1. Fan-out. Two Ponte instances A and B (separate processes, REDIS_URL = the private redis-server), N raw
   /ws clients split evenly between them, all in room user:bench. One POST /bench/emit on A: A delivers
   to its own clients and publishes once; B receives the message from Redis and delivers to its own.
   Compared with ONE Ponte instance without Redis holding all N clients. Per emit: the time until every
   client has the message (deliveries/s = N / that time) and each delivery's latency from the trigger
   (arrival time in the client minus the moment just before the HTTP call; clients and trigger are in
   processes of this machine reading the same CLOCK_MONOTONIC). Repeats alternate between the two
   setups; figures are medians over the repeats; "extra" is two instances minus one instance.
2. Echo. 100 clients, each doing sequential SESSAO_PING → SESSAO_PONG, against: Ponte /ws (raw) and
   Ponte /omni (Socket.IO), each with and without REDIS_URL; plain python-socketio with
   `socketio.AsyncRedisManager(url)` and without. A redis-py subscriber on the `socketio` channel counts
   every message published during the measured rounds (Redis's own PUBLISH count is recorded too).
3. Concurrency. The same echo with 300 clients at once: failures (no reply within 10 s), throughput,
   the publish errors each server logged, and the Redis connections each one opened.
Each echo configuration runs on a fresh server process, once per pass; passes interleave the
configurations and the figures are medians over every round of every pass.

The servers (every Ponte / python-socketio process and redis-server) share the last CPU; this process
and the load clients (bench/load.py) use the others (`--no-pin` to let the kernel place everything).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import load  # noqa: E402
from common import payload, raise_nofile  # noqa: E402
from load import RAW, SIO, Fleet, percentile  # noqa: E402
from redis_servers import PublishCounter, RedisServer, ServerProcess  # noqa: E402

RESULTS = BENCH / "redis_results.json"
RUN_LIMIT = 3600.0  # the whole run stops starting new measurements after this many seconds

# the echo configurations: (key, label, server kind, client kind, with Redis)
ECHO = [
    ("ponte-raw+redis", "Ponte /ws (raw) + Redis", "ponte", RAW, True),
    ("ponte-raw", "Ponte /ws (raw), no Redis", "ponte", RAW, False),
    ("ponte-sio+redis", "Ponte /omni (Socket.IO) + Redis", "ponte", SIO, True),
    ("ponte-sio", "Ponte /omni (Socket.IO), no Redis", "ponte", SIO, False),
    ("psio+redis", "python-socketio + AsyncRedisManager", "socketio", SIO, True),
    ("psio", "python-socketio, no Redis", "socketio", SIO, False),
]


# ---------------------------------------------------------------------------------------------
# machine, CPUs, other load
# ---------------------------------------------------------------------------------------------

def version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as v
    try:
        return v(module)
    except PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.strip()
    return {"cpu_model": model, "nproc": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
            "memory_gb": round(mem_kb / 2**20, 1), "kernel": platform.release(),
            "python": platform.python_version(), "redis_server": redis_version,
            "packages": {name: version(name) for name in
                         ("aiohttp", "python-socketio", "python-engineio", "redis", "pydantic", "uvloop")}}


def split_cpus(pin: bool) -> tuple[set[int] | None, set[int], dict[str, Any]]:
    """The servers' CPU set (the last CPU; None: not pinned) and the CPUs for this process and its
    load workers (the others)."""
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2:
        return None, set(cpus), {"pinned": False, "cpus": cpus}
    return {cpus[-1]}, set(cpus[:-1]), {"pinned": True, "server_cpus": [cpus[-1]], "client_cpus": cpus[:-1]}


class ForeignLoad:
    """CPU used by processes that are not this run's, sampled every 2 s (the machine should be quiet)."""

    def __init__(self, interval: float = 2.0, max_seconds: float = RUN_LIMIT + 600) -> None:
        self.interval, self.samples, self.by_command = interval, [], {}  # type: ignore[var-annotated]
        self.stamps: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._deadline = time.monotonic() + max_seconds
        self._thread = threading.Thread(target=self._run, name="foreign-load", daemon=True)
        self._thread.start()

    @staticmethod
    def _scan() -> dict[int, tuple[int, float, str]]:
        out = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        text = f.read()
                except OSError:
                    continue
                fields = text.rsplit(")", 1)[1].split()
                out[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / load.CLK_TCK,
                                   text[text.index("(") + 1:text.rindex(")")])
        return out

    def _run(self) -> None:
        me = os.getpid()
        before, t0 = self._scan(), time.monotonic()
        while not self._stop.wait(self.interval) and time.monotonic() < self._deadline:
            now, t1 = self._scan(), time.monotonic()
            foreign = 0.0
            for pid, (_, cpu, comm) in now.items():
                p, hops = pid, 0
                while p > 1 and p != me and hops < 50:
                    p, hops = now[p][0] if p in now else 0, hops + 1
                if p == me or pid not in before:
                    continue
                delta = cpu - before[pid][1]
                if delta > 0:
                    foreign += delta
                    self.by_command[comm] = self.by_command.get(comm, 0.0) + delta
            self.samples.append(foreign / (t1 - t0))
            self.stamps.append((t0, t1))
            before, t0 = now, t1

    def between(self, start: float, end: float) -> float:
        """Mean foreign cores over the samples overlapping [start, end] (monotonic seconds), or NaN."""
        chosen = [v for (a, b), v in zip(list(self.stamps), list(self.samples)) if b > start and a < end]
        return sum(chosen) / len(chosen) if chosen else math.nan

    def wait_quiet(self, max_wait: float, threshold: float = 0.1, quiet_samples: int = 5) -> float:
        """Wait (at most max_wait s) until the last `quiet_samples` samples are all below threshold."""
        start = time.monotonic()
        while time.monotonic() - start < max_wait:
            recent = self.samples[-quiet_samples:]
            if len(recent) == quiet_samples and max(recent) < threshold:
                break
            time.sleep(self.interval)
        return time.monotonic() - start

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(5)
        top = sorted(self.by_command.items(), key=lambda kv: -kv[1])[:5]
        return {"mean_cores": sum(self.samples) / len(self.samples) if self.samples else 0.0,
                "max_cores": max(self.samples, default=0.0),
                "top_commands_cpu_s": {k: round(v, 1) for k, v in top}}


# ---------------------------------------------------------------------------------------------
# 1. fan-out: two instances through Redis vs one instance
# ---------------------------------------------------------------------------------------------

def cpu_clock(pids: list[int]) -> float:
    return sum(load.proc_cpu_clock(pid) for pid in pids)


def fanout_once(groups: list[tuple[str, Fleet]], emit_url: str, server_pids: list[int],
                timeout: float = 30.0) -> dict[str, Any]:
    """Arm every worker of every fleet, POST one emit to `emit_url`, collect each delivery's latency."""
    marker = f"R{uuid.uuid4().hex[:12]}"
    workers = [(tag, fleet, conn) for tag, fleet in groups for _, conn in fleet.workers]
    for _, _, conn in workers:
        conn.send(("arm", marker, timeout))
    for _, fleet, conn in workers:
        reply = fleet._recv(conn)
        assert reply == ("armed", marker), reply
    cpu_before = cpu_clock(server_pids)
    t0 = time.monotonic()  # the trigger: just before the HTTP call
    load.emit(emit_url, payload(marker))
    emit_ms = (time.monotonic() - t0) * 1000
    latencies: dict[str, list[float]] = {tag: [] for tag, _ in groups}
    for tag, fleet, conn in workers:
        kind, got, times = fleet._recv(conn, timeout + 10)
        assert kind == "times" and got == marker
        latencies[tag] += [(t - t0) * 1000 for t in times]
    time.sleep(0.1)  # let the servers finish what follows the last write
    cpu = cpu_clock(server_pids) - cpu_before
    everything = [v for values in latencies.values() for v in values]
    n = sum(fleet.n for _, fleet in groups)
    last = max(everything) if everything else math.nan
    out = {"clients": n, "received": len(everything), "emit_call_ms": emit_ms,
           "all_ms": last if len(everything) == n else math.nan,
           "p50_ms": percentile(everything, 50), "p99_ms": percentile(everything, 99),
           "server_cpu_us_per_delivery": cpu / n * 1e6}
    for tag, values in latencies.items():
        if len(groups) > 1:
            out[f"{tag}_p50_ms"] = percentile(values, 50)
            out[f"{tag}_p99_ms"] = percentile(values, 99)
            out[f"{tag}_last_ms"] = max(values) if values else math.nan
    return out


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the repeats of one setup."""
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
    out: dict[str, Any] = {k: load.median([float(r[k]) for r in runs]) for k in keys}
    n = runs[0]["clients"]
    ok = out["all_ms"] and not math.isnan(out["all_ms"])
    out["deliveries_per_s"] = n / (out["all_ms"] / 1000) if ok else math.nan
    out["missing"] = sum(r["clients"] - r["received"] for r in runs)
    out["runs"] = runs
    return out


def measure_fanout(n: int, repeats: int, logdir: Path, cpus: set[int] | None, client_cpus: set[int],
                   step: Any) -> dict[str, Any]:
    """One instance without Redis (N clients) and two with Redis (N/2 each), alive side by side,
    emits alternating between them. Servers and a fresh redis-server on `cpus` (None: anywhere),
    this process and the load workers on `client_cpus`."""
    servers: list[ServerProcess] = []
    fleets: list[Fleet] = []
    counter = None
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, client_cpus)  # the load workers forked below inherit it
    redis = RedisServer(logdir, cpus)
    try:
        single = ServerProcess("ponte", logdir, None, cpus, label=f"fanout{n}-single")
        servers.append(single)
        a = ServerProcess("ponte", logdir, redis.url, cpus, label=f"fanout{n}-A")
        servers.append(a)
        b = ServerProcess("ponte", logdir, redis.url, cpus, label=f"fanout{n}-B")
        servers.append(b)
        half = n // 2
        step(f"fan-out {n:,}: connecting {n:,} clients to one instance and {half:,} + {n - half:,} to A + B")
        # two client processes in both setups: the same client-side parallelism
        f_single = Fleet(RAW, single.url, n, procs=2)
        fleets.append(f_single)
        f_a = Fleet(RAW, a.url, half, procs=1)
        fleets.append(f_a)
        f_b = Fleet(RAW, b.url, n - half, procs=1)
        fleets.append(f_b)
        for fleet in fleets:
            fleet.wait_ready()
        for server, k in ((single, n), (a, half), (b, n - half)):
            ok, seen, _ = load.wait_count(server.url, lambda c, k=k: c >= k, 60)
            if not ok:
                raise RuntimeError(f"{server.name} counts {seen} clients, expected {k}")
        one = [("all", f_single)]
        two = [("local", f_a), ("remote", f_b)]
        redis_pids = [redis.pid]
        counter = PublishCounter(redis.port)  # started after every fork of this measurement
        time.sleep(1.0)
        for _ in range(2):  # warm-up, not counted
            fanout_once(one, single.url, [single.pid])
            fanout_once(two, a.url, [a.pid, b.pid, *redis_pids])
        counter.settle()
        published_before = counter.count
        runs_one, runs_two = [], []
        step(f"fan-out {n:,}: {repeats} emits on each setup, alternating")
        for i in range(repeats):
            time.sleep(0.3)
            if i % 2 == 0:
                runs_one.append(fanout_once(one, single.url, [single.pid]))
                time.sleep(0.3)
                runs_two.append(fanout_once(two, a.url, [a.pid, b.pid, *redis_pids]))
            else:
                runs_two.append(fanout_once(two, a.url, [a.pid, b.pid, *redis_pids]))
                time.sleep(0.3)
                runs_one.append(fanout_once(one, single.url, [single.pid]))
        published = counter.settle() - published_before
        r1, r2 = summarise(runs_one), summarise(runs_two)
        extra = {"p50_ms": r2["p50_ms"] - r1["p50_ms"], "p99_ms": r2["p99_ms"] - r1["p99_ms"],
                 "all_ms": r2["all_ms"] - r1["all_ms"],
                 "remote_minus_local_p50_ms": r2["remote_p50_ms"] - r2["local_p50_ms"],
                 "deliveries_ratio": r2["deliveries_per_s"] / r1["deliveries_per_s"]
                 if r1["deliveries_per_s"] else math.nan}
        return {"clients": n, "repeats": repeats, "one_instance": r1, "two_instances": r2, "extra": extra,
                "publishes_per_emit": published / repeats,
                "ponte_a": a.redis_stats(), "ponte_b": b.redis_stats()}
    finally:
        if counter is not None:
            counter.stop()
        for fleet in fleets:
            fleet.stop()
        for server in servers:
            server.stop()
        redis.stop()
        os.sched_setaffinity(0, affinity)


# ---------------------------------------------------------------------------------------------
# 2 and 3. echo round trips, with and without Redis
# ---------------------------------------------------------------------------------------------

def measure_echo(key: str, server_kind: str, client_kind: str, with_redis: bool, clients: int,
                 per_client: int, rounds: int, procs: int, redis: RedisServer, logdir: Path,
                 cpus: set[int] | None) -> dict[str, Any]:
    """`clients` clients doing `per_client` sequential pings each, all at once, `rounds` times, on a
    fresh server; publishes on the channel counted round by round."""
    redis_before = redis.clients()
    server = ServerProcess(server_kind, logdir, redis.url if with_redis else None, cpus,
                           label=f"echo{clients}-{key}-{uuid.uuid4().hex[:4]}")
    fleet = None
    counter = None
    try:
        fleet = Fleet(client_kind, server.url, clients, procs).wait_ready()
        ok, seen, _ = load.wait_count(server.url, lambda c: c >= clients, 60)
        if not ok:
            raise RuntimeError(f"{server.name} counts {seen} clients, expected {clients}")
        counter = PublishCounter(redis.port)  # after the fork of the load workers
        fleet.ping(clients, 10)  # warm-up, not counted
        counter.settle()
        runs = []
        for _ in range(rounds):
            time.sleep(0.3)
            seen_before, calls_before = counter.count, redis.publish_calls()
            cpu_before, redis_cpu_before = load.proc_cpu_clock(server.pid), load.proc_cpu_clock(redis.pid)
            result = fleet.ping(clients, per_client)
            cpu = load.proc_cpu_clock(server.pid) - cpu_before
            published = counter.settle() - seen_before
            redis_cpu = load.proc_cpu_clock(redis.pid) - redis_cpu_before
            rtts, done = result["rtts"], len(result["rtts"])
            runs.append({"round_trips": done, "failures": result["failures"],
                         "rt_per_s": done / result["wall_s"] if result["wall_s"] else math.nan,
                         "wall_s": result["wall_s"],
                         "p50_ms": percentile(rtts, 50) * 1000, "p99_ms": percentile(rtts, 99) * 1000,
                         "published_seen": published, "publish_calls": redis.publish_calls() - calls_before,
                         "published_per_round_trip": published / done if done else math.nan,
                         "server_cpu_us_per_rt": cpu / done * 1e6 if done else math.nan,
                         "redis_cpu_us_per_rt": redis_cpu / done * 1e6 if done else math.nan})
        stats = server.redis_stats()
        redis_after = redis.clients()
        numsub = int(dict(redis.client.pubsub_numsub("socketio")).get(b"socketio", 0))
        out: dict[str, Any] = {
            "clients": clients, "per_client": per_client, "rounds": runs,
            "rt_per_s": load.median([r["rt_per_s"] for r in runs]),
            "p50_ms": load.median([r["p50_ms"] for r in runs]), "p99_ms": load.median([r["p99_ms"] for r in runs]),
            "failures": sum(r["failures"] for r in runs),
            "round_trips": sum(r["round_trips"] for r in runs),
            "published_seen": sum(r["published_seen"] for r in runs),
            "publish_calls": sum(r["publish_calls"] for r in runs),
            "server_cpu_us_per_rt": load.median([r["server_cpu_us_per_rt"] for r in runs]),
            "redis_cpu_us_per_rt": load.median([r["redis_cpu_us_per_rt"] for r in runs]),
            "server_redis_stats": stats,
            # minus one: the publish counter's own connection
            "redis_connections_opened": redis_after["accepted_total"] - redis_before["accepted_total"] - 1,
            "redis_connections_open_at_end": redis_after["connected"] - redis_before["connected"] - 1,
            "channel_subscribers_at_end": numsub - 1,  # besides the counter: the server's listener(s)
            "channel_methods": dict(counter.methods)}
        rt = out["round_trips"]
        out["published_per_round_trip"] = out["published_seen"] / rt if rt else math.nan
        out["lost_publishes"] = max(0, rt - out["published_seen"]) if server_kind == "socketio" and with_redis else 0
        out["publish_errors"] = int(stats.get("publish_errors", stats.get("publish_failures", 0)) or 0)
        return out
    finally:
        if counter is not None:
            counter.stop()
        if fleet is not None:
            try:
                fleet.close()
            except Exception:  # noqa: BLE001 - a stuck worker is ended by stop()
                fleet.stop()
        server.stop()


def combine_echo(passes: list[dict[str, Any]]) -> dict[str, Any]:
    """Several passes of one echo configuration: medians over every round of every pass, sums of counts."""
    ok = [p for p in passes if "error" not in p]
    if not ok:
        return passes[-1]
    rounds = [dict(r, pass_no=i + 1) for i, p in enumerate(ok) for r in p["rounds"]]
    out = {"clients": ok[0]["clients"], "per_client": ok[0]["per_client"], "passes": len(ok),
           "rt_per_s": load.median([r["rt_per_s"] for r in rounds]),
           "p50_ms": load.median([r["p50_ms"] for r in rounds]), "p99_ms": load.median([r["p99_ms"] for r in rounds]),
           "server_cpu_us_per_rt": load.median([r["server_cpu_us_per_rt"] for r in rounds]),
           "redis_cpu_us_per_rt": load.median([r["redis_cpu_us_per_rt"] for r in rounds])}
    for key in ("failures", "round_trips", "published_seen", "publish_calls", "publish_errors", "lost_publishes",
                "redis_connections_opened"):
        out[key] = sum(p[key] for p in ok)
    out["published_per_round_trip"] = out["published_seen"] / out["round_trips"] if out["round_trips"] else math.nan
    out["foreign_cores"] = max((p.get("foreign_cores", math.nan) for p in ok), default=math.nan)
    out["errors"] = [p["error"] for p in passes if "error" in p]
    out["per_pass"] = [{k: v for k, v in p.items() if k != "rounds"} for p in ok]
    out["rounds"] = rounds
    return out


# ---------------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------------

def fmt(value: Any, pattern: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return pattern.format(value)


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    sep = "| " + " | ".join("-" * w if i == 0 else "-" * (w - 1) + ":" for i, w in enumerate(widths)) + " |"
    return "\n".join([line(header), sep, *[line(r) for r in body]])


def fanout_table(fanout: dict[str, Any]) -> str:
    header = ["raw /ws clients in room user:bench", "all received (ms)", "deliveries/s", "latency p50 (ms)",
              "latency p99 (ms)", "server CPU µs/delivery"]
    body = []
    for n, r in fanout.items():
        for key, label in (("one_instance", f"{int(n):,}: one instance, no Redis"),
                           ("two_instances", f"{int(n):,}: two instances + Redis, emit on A")):
            s = r[key]
            body.append([label, fmt(s["all_ms"], "{:.1f}"), fmt(s["deliveries_per_s"], "{:,.0f}"),
                         fmt(s["p50_ms"], "{:.1f}"), fmt(s["p99_ms"], "{:.1f}"),
                         fmt(s["server_cpu_us_per_delivery"], "{:.1f}")])
        two, extra = r["two_instances"], r["extra"]
        body.append([f"{int(n):,}:   of which A's own clients (local)", fmt(two["local_last_ms"], "{:.1f}"), "",
                     fmt(two["local_p50_ms"], "{:.1f}"), fmt(two["local_p99_ms"], "{:.1f}"), ""])
        body.append([f"{int(n):,}:   of which B's clients (via Redis)", fmt(two["remote_last_ms"], "{:.1f}"), "",
                     fmt(two["remote_p50_ms"], "{:.1f}"), fmt(two["remote_p99_ms"], "{:.1f}"), ""])
        body.append([f"{int(n):,}: extra, two instances − one", fmt(extra["all_ms"], "{:+.1f}"),
                     fmt(extra["deliveries_ratio"], "×{:.2f}"), fmt(extra["p50_ms"], "{:+.1f}"),
                     fmt(extra["p99_ms"], "{:+.1f}"), ""])
    return markdown_table(header, body)


def echo_table(echo: dict[str, Any]) -> str:
    header = ["echo (SESSAO_PING → SESSAO_PONG)", "clients", "round trips/s", "p50 (ms)", "p99 (ms)",
              "failures", "published / round trip", "publish errors", "Redis conns opened", "÷ same, no Redis",
              "other procs (cores)"]
    body = []
    for clients, rows in echo.items():
        for key, label, _, _, with_redis in ECHO:
            r = rows.get(key)
            if r is None:
                continue
            if "error" in r:
                body.append([label, clients, "error: " + r["error"][:60], "", "", "", "", "", "", "", ""])
                continue
            base = rows.get(key.removesuffix("+redis")) if with_redis else None
            ratio = r["rt_per_s"] / base["rt_per_s"] if base and "rt_per_s" in base and base["rt_per_s"] else math.nan
            body.append([label, f"{int(clients):,}", fmt(r["rt_per_s"], "{:,.0f}"), fmt(r["p50_ms"], "{:.2f}"),
                         fmt(r["p99_ms"], "{:.2f}"), f"{r['failures']:,}",
                         fmt(r["published_per_round_trip"], "{:.2f}") if with_redis else "—",
                         f"{r['publish_errors']:,}" if with_redis else "—",
                         f"{r['redis_connections_opened']:,}" if with_redis else "—",
                         fmt(ratio, "×{:.2f}"), fmt(r.get("foreign_cores"), "{:.2f}")])
    return markdown_table(header, body)


def finite(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


# ---------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one small room (500), 3 repeats, short echo")
    parser.add_argument("--sizes", default="", help="fan-out room sizes, comma-separated (default 1000,2000)")
    parser.add_argument("--repeats", type=int, help="fan-out emits per setup (default 5, quick 3)")
    parser.add_argument("--echo-clients", default="", help="echo client counts (default 100,300)")
    parser.add_argument("--skip", default="", help="comma-separated sections to skip: fanout, unpinned "
                                                   "(the fan-out's second, unpinned setup), echo")
    parser.add_argument("--passes", type=int, help="echo passes over all configurations, interleaved "
                                                   "(default 2, quick 1)")
    parser.add_argument("--procs", type=int, default=1, help="load worker processes per echo fleet (default 1)")
    parser.add_argument("--wait-quiet", type=float, default=None,
                        help="seconds to wait, at most, for other processes to go quiet before starting "
                             "(default 600, quick 60); before each measurement, at most 60 s")
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers and clients to separate CPUs")
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()

    if shutil.which("redis-server") is None:
        raise SystemExit("bench: redis-server not found")
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()] or ([500] if args.quick else [1000, 2000])
    echo_clients = [int(s) for s in args.echo_clients.split(",") if s.strip()] or [100, 300]
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    cfg = {"fanout_sizes": sizes, "fanout_repeats": args.repeats or (3 if args.quick else 5),
           "echo_clients": echo_clients, "echo_round_trips_per_round": 2000 if args.quick else 10000,
           "echo_rounds": 2 if args.quick else 3, "echo_passes": args.passes or (1 if args.quick else 2),
           "procs": args.procs, "ping_timeout_s": 10.0}
    wait_quiet = args.wait_quiet if args.wait_quiet is not None else (60.0 if args.quick else 600.0)
    nofile = raise_nofile()
    if nofile < 2 * max(sizes) + 1000:
        raise SystemExit(f"bench: open-file limit {nofile} is too low for {max(sizes)} clients")
    try:
        import uvloop  # noqa: F401
        load.CLIENT_LOOP = "uvloop"
    except ImportError:
        load.CLIENT_LOOP = "asyncio"
        print("bench: uvloop missing (pip install -r bench/requirements.txt); clients run on asyncio")
    info = machine()
    all_cpus = set(os.sched_getaffinity(0))
    cpus, client_cpus, info["affinity"] = split_cpus(not args.no_pin)
    os.sched_setaffinity(0, client_cpus)  # the load workers are forked from here and inherit it
    modes = [("pinned", cpus, client_cpus)] if cpus else []
    if args.no_pin or (not args.quick and "unpinned" not in skip):
        modes.append(("unpinned", None, all_cpus))
    cfg["fanout_modes"] = [m[0] for m in modes]
    print(f"bench: {info['cpu_model']}, {info['nproc']} CPUs, Python {info['python']}, {info['redis_server'][:30]}; "
          f"python-socketio {info['packages']['python-socketio']}, redis-py {info['packages']['redis']}; "
          f"CPUs {info['affinity']}", flush=True)
    started = time.monotonic()
    monitor = ForeignLoad()
    if wait_quiet > 0:
        waited = monitor.wait_quiet(wait_quiet)
        if waited > monitor.interval * 6:
            print(f"bench: waited {waited:.0f} s for other processes to go quiet", flush=True)

    def quiet() -> None:
        if wait_quiet > 0:
            monitor.wait_quiet(min(60.0, wait_quiet), quiet_samples=3)
    report: dict[str, Any] = {"generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": info,
                              "client_loop": load.CLIENT_LOOP, "config": cfg, "fanout": {}, "echo": {}}
    failed = False

    def step(text: str) -> None:
        print(f"  [{time.monotonic() - started:6.0f} s] {text}", flush=True)

    with tempfile.TemporaryDirectory(prefix="ponte-redis-bench-") as tmp:
        logdir = Path(tmp)
        if "fanout" not in skip:
            for mode, server_cpus, load_cpus in modes:
                report["fanout"][mode] = {}
                for n in sizes:
                    if time.monotonic() - started > RUN_LIMIT:
                        break
                    quiet()
                    step(f"fan-out {n:,}, {mode}")
                    t_start = time.monotonic()
                    try:
                        r = measure_fanout(n, cfg["fanout_repeats"], logdir, server_cpus, load_cpus, step)
                        r["foreign_cores"] = monitor.between(t_start, time.monotonic())
                    except Exception as exc:  # noqa: BLE001 - reported, the run goes on
                        failed = True
                        step(f"fan-out {n:,} FAILED: {type(exc).__name__}: {exc}")
                        r = {"error": f"{type(exc).__name__}: {exc}"}
                    report["fanout"][mode][n] = r
        redis = RedisServer(logdir, cpus)
        step(f"redis-server for the echo on port {redis.port}")
        try:
            if "echo" not in skip:
                passes: dict[int, dict[str, list[dict[str, Any]]]] = {c: {} for c in echo_clients}
                for number in range(1, cfg["echo_passes"] + 1):
                    for clients in echo_clients:
                        per_client = max(5, cfg["echo_round_trips_per_round"] // clients)
                        order = ECHO if number % 2 else ECHO[::-1]  # every other pass in reverse order
                        for key, label, server_kind, client_kind, with_redis in order:
                            if time.monotonic() - started > RUN_LIMIT:
                                break
                            quiet()
                            step(f"echo pass {number}/{cfg['echo_passes']}: {label}: {clients} clients x "
                                 f"{per_client} sequential pings, {cfg['echo_rounds']} rounds")
                            t_start = time.monotonic()
                            try:
                                r = measure_echo(key, server_kind, client_kind, with_redis, clients,
                                                 per_client, cfg["echo_rounds"], args.procs, redis,
                                                 logdir, cpus)
                            except Exception as exc:  # noqa: BLE001
                                failed = True
                                step(f"  FAILED: {type(exc).__name__}: {exc}")
                                r = {"error": f"{type(exc).__name__}: {exc}"}
                            else:
                                r["foreign_cores"] = monitor.between(t_start, time.monotonic())
                                step(f"  {r['rt_per_s']:,.0f} round trips/s, p50 {r['p50_ms']:.2f} ms, p99 "
                                     f"{r['p99_ms']:.2f} ms, {r['failures']} failures, {r['published_seen']:,} "
                                     f"published for {r['round_trips']:,} round trips, {r['publish_errors']} "
                                     f"publish errors, {r['redis_connections_opened']} Redis connections opened "
                                     f"(other processes: {r['foreign_cores']:.2f} cores)")
                            passes[clients].setdefault(key, []).append(r)
                report["echo"] = {c: {k: combine_echo(v) for k, v in rows.items()} for c, rows in passes.items()}
            # server logs of interest (python-socketio's Redis errors), kept short
            logs = {}
            for path in sorted(logdir.glob("echo*.log")):
                text = path.read_text(errors="replace")
                if text.strip():
                    logs[path.stem] = {"lines": text.count("\n"), "tail": text[-600:]}
            report["server_logs"] = logs
        finally:
            redis.stop()
    report["foreign_load"] = monitor.stop()
    report["seconds"] = round(time.monotonic() - started, 1)
    output = Path(args.output)
    output.write_text(json.dumps(finite(report), indent=1, default=str) + "\n")
    for mode, results in report["fanout"].items():
        fanout_ok = {n: r for n, r in results.items() if "error" not in r}
        if not fanout_ok:
            continue
        where = ("servers and redis-server share one CPU, clients on the other" if mode == "pinned"
                 else "no pinning: the kernel places servers, redis-server and clients")
        print(f"\nFan-out through Redis ({mode}: {where}): one POST /bench/emit on A; latency = client "
              f"arrival − trigger; medians of {cfg['fanout_repeats']} emits")
        print(fanout_table(fanout_ok))
        print("publishes per emit seen on the channel: " +
              ", ".join(f"{int(n):,}: {r['publishes_per_emit']:.2f}" for n, r in fanout_ok.items()))
    if report["echo"]:
        print(f"\nEcho with Redis configured: sequential pings, about {cfg['echo_round_trips_per_round']:,} round "
              f"trips per round, medians of {cfg['echo_rounds']} rounds x {cfg['echo_passes']} passes ('published / "
              "round trip' = messages a redis-py subscriber saw on the `socketio` channel ÷ round trips)")
        print(echo_table(report["echo"]))
    foreign = report["foreign_load"]
    print(f"\nbench: other processes used {foreign['mean_cores']:.2f} cores on average (max "
          f"{foreign['max_cores']:.2f}; busiest {foreign['top_commands_cpu_s']})")
    if foreign["mean_cores"] > 0.1:
        print("bench: WARNING: the machine was not quiet; timings are disturbed")
    print(f"bench: wrote {output} ({report['seconds']:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
