"""Run the whole benchmark on loopback: Ponte (raw /ws and Socket.IO /omni) and three baselines.

    python bench/run.py                  # the full run, writes bench/results.json
    python bench/run.py --quick          # a small run to check that everything works
    python bench/run.py --only ponte-raw,aiohttp --merge   # some servers; others taken from results.json

Each server runs in its own process; the load clients run in other processes (bench/load.py). For each
server, in this order: a fresh server process, warmed up; 5,000 idle clients connected (memory per
connection); fan-out to those 5,000; all 5,000 killed at once (CPU until /bench/count reads 0). Then a
fresh process: the same fan-out and kill with 1,000; then 100 clients pinging. Then a third fresh
process: 10,000 clients connected, then all killed at once. All of that once per pass, servers
interleaved; figures are medians. At the end: the tables, a comparison of every figure with the
previous results file, and issue 11's targets. See bench/README.md for what each one means.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import load  # noqa: E402
from common import raise_nofile, stop_process  # noqa: E402
from load import RAW, SIO, Fleet  # noqa: E402

NODE_DIR = BENCH / "baseline_node"
RESULTS = BENCH / "results.json"
PY = sys.executable

# Python servers run with --gc-stats (bench/diagnostics.py) so each figure can say how much was GC.
SERVERS: dict[str, dict[str, Any]] = {
    "ponte-raw": {"cmd": [PY, str(BENCH / "ponte_server.py"), "--gc-stats"], "kind": RAW,
                  "label": "Ponte /ws (raw)", "gc": True},
    "aiohttp": {"cmd": [PY, str(BENCH / "baseline_aiohttp.py"), "--gc-stats"], "kind": RAW,
                "label": "bare aiohttp", "gc": True},
    "aiohttp-uvloop": {"cmd": [PY, str(BENCH / "baseline_aiohttp.py"), "--gc-stats", "--uvloop"], "kind": RAW,
                       "label": "bare aiohttp on uvloop", "gc": True},
    "ponte-sio": {"cmd": [PY, str(BENCH / "ponte_server.py"), "--gc-stats"], "kind": SIO,
                  "label": "Ponte /omni (Socket.IO)", "gc": True},
    "python-socketio": {"cmd": [PY, str(BENCH / "baseline_socketio.py"), "--gc-stats"], "kind": SIO,
                        "label": "plain python-socketio", "gc": True},
    "node-socketio": {"cmd": ["node", str(NODE_DIR / "server.js")], "kind": SIO,
                      "label": "Node socket.io", "gc": False},
}
GROUPS = [("raw WebSocket clients", "ponte-raw", ["aiohttp", "aiohttp-uvloop"]),
          ("Socket.IO clients", "ponte-sio", ["python-socketio", "node-socketio"])]


# ---------------------------------------------------------------------------------------------
# setup: dependencies, machine facts, server processes
# ---------------------------------------------------------------------------------------------

def ensure_node_deps() -> None:
    """`npm ci` in bench/baseline_node when its node_modules is missing."""
    if (NODE_DIR / "node_modules" / "socket.io" / "package.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("bench: npm not found; the Node baseline needs Node.js 18+ and npm")
    print("bench: installing the Node baseline's dependencies (npm ci)", flush=True)
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True)


def ensure_client_loop() -> str:
    """The load clients use uvloop (bench/requirements.txt); installed here when missing."""
    if os.environ.get("BENCH_CLIENT_LOOP") == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
        return "uvloop"
    except ImportError:
        pass
    print("bench: installing the load clients' requirements (bench/requirements.txt)", flush=True)
    done = subprocess.run([PY, "-m", "pip", "install", "-q", "-r", str(BENCH / "requirements.txt")])
    if done.returncode == 0:
        return "uvloop"
    print("bench: WARNING: uvloop unavailable, the clients run on asyncio and may bound fan-out times")
    return "asyncio"


def version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as v
    try:
        return v(module)
    except PackageNotFoundError:
        return "not installed"


def node_package_version(name: str) -> str:
    try:
        return json.loads((NODE_DIR / "node_modules" / name / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "not installed"


def server_tree() -> Path:
    """The checkout whose `app` package the servers import: this one, unless PYTHONPATH names another
    (how a baseline commit is measured with this runner)."""
    done = subprocess.run([PY, "-c", "import app, pathlib; print(pathlib.Path(app.__file__).resolve().parents[1])"],
                          cwd="/", capture_output=True, text=True)
    return Path(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else BENCH.parent


def code_version() -> dict[str, Any]:
    """The commit measured (that of the servers' code), and whether the server code differs from it."""
    root = server_tree()

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""
    changed = git("status", "--porcelain", "--", "app", "handlers", "schemas", "setup.cfg")
    return {"commit": git("rev-parse", "--short", "HEAD"), "subject": git("log", "-1", "--format=%s"),
            "server_code_modified": bool(changed), "modified_files": changed.splitlines()}


def machine() -> dict[str, Any]:
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip() \
        if shutil.which("node") else "not installed"
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return {"cpu_model": model, "nproc": len(os.sched_getaffinity(0)), "memory_gb": round(mem_kb / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "packages": {name: version(name) for name in
                         ("aiohttp", "python-socketio", "python-engineio", "pydantic", "PyJWT", "uvloop")},
            "node": node, "node_packages": {name: node_package_version(name)
                                            for name in ("socket.io", "engine.io", "ws")}}


class ForeignLoad:
    """Samples, once a second, the CPU time of processes that are not this run's (not descendants of
    this process): a benchmark on a shared 2-core machine is only as good as the machine is quiet."""

    def __init__(self, interval: float = 1.0) -> None:
        import threading
        self.interval = interval
        self.samples: list[float] = []  # foreign cores busy, per interval
        self.by_command: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="foreign-load", daemon=True)

    @staticmethod
    def _scan() -> dict[int, tuple[int, float, str]]:
        out = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    text = f.read()
            except OSError:
                continue
            comm = text[text.index("(") + 1:text.rindex(")")]
            fields = text.rsplit(")", 1)[1].split()
            out[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / load.CLK_TCK, comm)
        return out

    def _ours(self, procs: dict[int, tuple[int, float, str]]) -> set[int]:
        ours, me = set(), os.getpid()
        for pid in procs:
            p, hops = pid, 0
            while p > 1 and hops < 50:
                if p == me:
                    ours.add(pid)
                    break
                p, hops = procs[p][0] if p in procs else 0, hops + 1
        return ours

    def _run(self) -> None:
        before, t0 = self._scan(), time.monotonic()
        deadline = t0 + 4 * 3600  # bounded, whatever happens
        while not self._stop.wait(self.interval) and time.monotonic() < deadline:
            now, t1 = self._scan(), time.monotonic()
            ours = self._ours(now)
            foreign = 0.0
            for pid, (_, cpu, comm) in now.items():
                if pid in ours or pid not in before:
                    continue
                delta = cpu - before[pid][1]
                if delta > 0:
                    foreign += delta
                    self.by_command[comm] = self.by_command.get(comm, 0.0) + delta
            self.samples.append(foreign / (t1 - t0))
            before, t0 = now, t1

    def start(self) -> "ForeignLoad":
        self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(5)
        top = sorted(self.by_command.items(), key=lambda kv: -kv[1])[:5]
        return {"mean_cores": statistics.mean(self.samples) if self.samples else 0.0,
                "max_cores": max(self.samples, default=0.0),
                "seconds_over_0.25_cores": sum(1 for s in self.samples if s > 0.25) * self.interval,
                "top_commands_cpu_s": {k: round(v, 1) for k, v in top}}


SERVER_CPUS: set[int] | None = None  # set by pin_cpus(): the server under test runs alone on these


def pin_cpus(enabled: bool = True) -> dict[str, Any]:
    """Give the server under test a core of its own: the last CPU for the server, the others for
    this process and the load workers it forks (they inherit its affinity). On a 2-core machine,
    without this the clients' wake-ups preempt the server a hundred times per fan-out."""
    global SERVER_CPUS
    cpus = sorted(os.sched_getaffinity(0))
    if not enabled or len(cpus) < 2:
        SERVER_CPUS = None
        return {"pinned": False, "cpus": cpus}
    SERVER_CPUS = {cpus[-1]}
    os.sched_setaffinity(0, set(cpus[:-1]))
    return {"pinned": True, "server_cpus": sorted(SERVER_CPUS), "client_cpus": cpus[:-1]}


def _pin_server() -> None:
    if SERVER_CPUS:
        os.sched_setaffinity(0, SERVER_CPUS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server under test in its own process; stops when we close its stdin."""

    def __init__(self, name: str, logdir: Path, max_seconds: float, extra_args: tuple[str, ...] = ()) -> None:
        spec = SERVERS[name]
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = logdir / f"{name}.log"
        self.log = open(self.log_path, "w")
        command = spec["cmd"] + ["--port", str(self.port), "--max-seconds", str(max_seconds), *extra_args]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=self.log, stderr=subprocess.STDOUT,
                                        preexec_fn=_pin_server)
        ok, _, _ = load.wait_count(self.url, lambda n: n == 0, 30, interval=0.1)
        if not ok or self.process.poll() is not None:
            self.stop()
            raise RuntimeError(f"{name} did not start; see {self.log_path}:\n{self.log_path.read_text()[-2000:]}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()


# ---------------------------------------------------------------------------------------------
# one server, every figure
# ---------------------------------------------------------------------------------------------

def bench_server(name: str, cfg: dict[str, Any], logdir: Path) -> dict[str, Any]:
    """Every figure for one server, on two fresh server processes: one for the big room (memory,
    fan-out, mass disconnect), one for the small room and the pings. A server is never measured
    with the remains of an earlier phase in its heap (Engine.IO keeps a closed socket until its
    next ping was due, and Python's GC walks whatever is left)."""
    kind = SERVERS[name]["kind"]
    big, small, huge, repeats, procs = cfg["big"], cfg["small"], cfg["huge"], cfg["repeats"], cfg["procs"]
    result: dict[str, Any] = {"label": SERVERS[name]["label"], "kind": kind}
    fleets: list[Fleet] = []
    timeout = cfg["disconnect_timeout"]

    def step(text: str) -> None:
        print(f"  [{name}] {text}", flush=True)

    def start() -> Server:
        server = Server(name, logdir, max_seconds=cfg["server_max_seconds"])
        warm = fleet(server, 20).wait_ready()  # first connections, first emit: imports, caches
        load.wait_count(server.url, lambda n: n >= 20, 30)
        warm.ping(20, 5)
        warm.fanout(server.pid)
        warm.close()
        load.wait_count(server.url, lambda n: n == 0, 30)
        return server

    def fleet(server: Server, n: int) -> Fleet:
        f = Fleet(kind, server.url, n, procs, gc=SERVERS[name]["gc"])
        fleets.append(f)
        return f

    server = None
    try:
        step(f"fresh server; memory: connecting {big:,} idle clients")
        server = start()
        result["memory"], crowd = load.measure_memory(lambda n: fleet(server, n), server.url, server.pid, big)
        step(f"fan-out to {big:,} x{cfg['big_repeats']}")
        result[f"fanout_{big}"] = load.measure_fanout(crowd, server.pid, cfg["big_repeats"])
        step(f"mass disconnect of {big:,}")
        result[f"disconnect_{big}"] = load.measure_disconnect(crowd, server.url, server.pid, timeout)
        server.stop()

        step(f"fresh server; fan-out to {small:,} x{repeats}")
        server = start()
        crowd = fleet(server, small).wait_ready()
        load.wait_count(server.url, lambda n: n >= small, 60)
        time.sleep(1.0)
        result[f"fanout_{small}"] = load.measure_fanout(crowd, server.pid, repeats)
        step(f"mass disconnect of {small:,}")
        time.sleep(1.0)
        result[f"disconnect_{small}"] = load.measure_disconnect(crowd, server.url, server.pid, timeout)
        load.wait_count(server.url, lambda n: n == 0, timeout)

        step(f"ping: {cfg['ping_clients']} clients x {cfg['ping_count']} sequential pings, {cfg['ping_rounds']} rounds")
        result["ping"] = load.measure_ping(kind, server.url, cfg["ping_clients"], cfg["ping_count"],
                                           cfg["ping_rounds"], procs)
        server.stop()

        step(f"fresh server; mass disconnect of {huge:,}: connecting")
        server = start()
        crowd = fleet(server, huge).wait_ready(timeout=300)
        ok, seen, _ = load.wait_count(server.url, lambda n: n >= huge, 60)
        if not ok:
            raise RuntimeError(f"server counts {seen} connections, expected {huge}")
        time.sleep(1.0)
        step(f"mass disconnect of {huge:,}")
        result[f"disconnect_{huge}"] = load.measure_disconnect(crowd, server.url, server.pid, timeout)
    finally:
        for f in fleets:
            f.stop()
        if server is not None:
            server.stop()
    return result


# ---------------------------------------------------------------------------------------------
# the table and the targets
# ---------------------------------------------------------------------------------------------

def combine(passes: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several passes: the median of every number, recursively (lists are kept
    per pass only)."""
    out: dict[str, Any] = {}
    for key, first in passes[0].items():
        values = [p.get(key) for p in passes]
        if isinstance(first, bool) or isinstance(first, str):
            out[key] = first
        elif isinstance(first, (int, float)) and all(isinstance(v, (int, float)) for v in values):
            out[key] = load.median([float(v) for v in values])  # type: ignore[arg-type]
        elif isinstance(first, dict) and all(isinstance(v, dict) for v in values):
            out[key] = combine(values)  # type: ignore[arg-type]
    return out


def get(result: dict[str, Any] | None, path: str) -> float:
    value: Any = result
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return math.nan
        value = value[key]
    return float(value) if isinstance(value, (int, float)) else math.nan


def rows(cfg: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(label, path in a server's result, format, better): better is 'low' or 'high'."""
    big, small, huge = cfg["big"], cfg["small"], cfg["huge"]
    out = [("ping p50 (ms)", "ping.p50_ms", "{:.2f}", "low"),
           ("ping p99 (ms)", "ping.p99_ms", "{:.2f}", "low"),
           ("ping round trips/s", "ping.rt_per_s", "{:,.0f}", "high")]
    for n in (small, big):
        out += [(f"fan-out {n:,}: all received (ms)", f"fanout_{n}.all_ms", "{:.1f}", "low"),
                (f"fan-out {n:,}: deliveries/s", f"fanout_{n}.deliveries_per_s", "{:,.0f}", "high"),
                (f"fan-out {n:,}: server CPU µs/delivery", f"fanout_{n}.cpu_us_per_delivery", "{:.1f}", "low"),
                (f"fan-out {n:,}: of which user µs/delivery", f"fanout_{n}.user_us_per_delivery", "{:.1f}", "low"),
                (f"fan-out {n:,}: of which system µs/delivery", f"fanout_{n}.sys_us_per_delivery", "{:.1f}", "low"),
                (f"fan-out {n:,}: of the CPU, in Python's GC", f"fanout_{n}.gc_share", "{:.0%}", "low")]
    out += [(f"idle memory KB/connection @{big:,}", "memory.kb_per_connection", "{:.1f}", "low"),
            (f"mass disconnect {small:,}: server CPU s", f"disconnect_{small}.cpu_s", "{:.3f}", "low"),
            (f"mass disconnect {big:,}: server CPU s", f"disconnect_{big}.cpu_s", "{:.3f}", "low"),
            (f"mass disconnect {big:,}: of which Python's GC s", f"disconnect_{big}.gc_s", "{:.3f}", "low"),
            (f"mass disconnect {big:,}: wall s to 0", f"disconnect_{big}.wall_s", "{:.2f}", "low"),
            (f"mass disconnect {huge:,}: server CPU s", f"disconnect_{huge}.cpu_s", "{:.3f}", "low"),
            (f"mass disconnect {huge:,}: of which Python's GC s", f"disconnect_{huge}.gc_s", "{:.3f}", "low"),
            (f"disconnect cost growth {small:,}→{big:,} (×)", "derived.disconnect_growth", "{:.1f}", "low"),
            (f"disconnect growth exponent, fit {small:,}/{big:,}/{huge:,}", "derived.disconnect_exponent_fit",
             "{:.2f}", "low")]
    return out


def derive(result: dict[str, Any], cfg: dict[str, Any]) -> None:
    """Growth of the mass-disconnect cost: small→big as a ratio and its exponent, and the exponent
    fitted over all the sizes (least squares of log CPU on log clients; 1 = linear, 2 = quadratic)."""
    big, small = cfg["big"], cfg["small"]
    a, b = get(result, f"disconnect_{small}.cpu_s"), get(result, f"disconnect_{big}.cpu_s")
    growth = b / a if a > 0 else math.nan
    sizes = [n for n in (small, big, cfg["huge"]) if get(result, f"disconnect_{n}.cpu_s") > 0]
    xs = [math.log(n) for n in sizes]
    ys = [math.log(get(result, f"disconnect_{n}.cpu_s")) for n in sizes]
    fit = statistics.linear_regression(xs, ys).slope if len(sizes) >= 2 else math.nan
    result["derived"] = {"disconnect_growth": growth,
                         "disconnect_exponent": math.log(growth) / math.log(big / small) if growth > 0 else math.nan,
                         "disconnect_exponent_fit": fit, "disconnect_fit_sizes": sizes}


def read_previous(path: Path) -> dict[str, Any] | None:
    """The results file of an earlier run, or None (missing or unreadable)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        print(f"bench: WARNING: cannot read the previous results {path}: {exc}")
        return None


def finite(obj: Any) -> Any:
    """NaN (a figure that could not be measured) as JSON null."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [finite(v) for v in obj]
    return obj


def fmt(value: float, pattern: str) -> str:
    return "—" if math.isnan(value) else pattern.format(value)


def table(results: dict[str, Any], cfg: dict[str, Any]) -> str:
    lines = []
    for title, ponte, baselines in GROUPS:
        names = [ponte] + baselines
        header = ["", *[SERVERS[n]["label"] for n in names], *[f"Ponte ÷ {SERVERS[b]['label']}" for b in baselines]]
        body = []
        for label, path, pattern, better in rows(cfg):
            values = [get(results.get(n), path) for n in names]
            ratios = [values[0] / v if v and not math.isnan(v) and "gc" not in path else math.nan
                      for v in values[1:]]
            arrow = "↓" if better == "low" else "↑"
            body.append([f"{label} {arrow}", *[fmt(v, pattern) for v in values],
                         *[fmt(r, "{:.2f}") for r in ratios]])
        lines.append(f"\n{title} (↑ higher is better, ↓ lower is better; ratios are Ponte's figure ÷ the baseline's)")
        lines.append(markdown_table(header, body))
    return "\n".join(lines)


def markdown_table(header: list[str], body: list[list[str]], left: int = 1) -> str:
    """The first `left` columns aligned left, the others right."""
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) if i < left else str(c).rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    sep = "| " + " | ".join("-" * w if i < left else "-" * (w - 1) + ":" for i, w in enumerate(widths)) + " |"
    return "\n".join([line(header), sep, *[line(r) for r in body]])


def spread(result: dict[str, Any], path: str) -> float:
    """max − min of a figure over this run's passes: its noise. NaN with one pass (noise unknown)."""
    values = [v for v in (get(p, path) for p in result.get("passes", [])) if not math.isnan(v)]
    return max(values) - min(values) if len(values) >= 2 else math.nan


def percent(part: float, whole: float) -> float:
    """part as a % of whole: 0 when part is 0, NaN when whole is 0 or unknown."""
    if part == 0:
        return 0.0
    return part / abs(whole) * 100 if whole else math.nan


def compare(results: dict[str, Any], previous: dict[str, Any] | None, measured: list[str],
            cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Every figure of every server measured in this run against the previous results. `worse` is True
    when the figure went the wrong way by more than its spread between this run's passes, None when it
    went the wrong way but the noise is unknown (one pass), False otherwise."""
    before = (previous or {}).get("servers", {})
    out = []
    for name in measured:
        for label, path, _, better in rows(cfg):
            new, old = get(results[name], path), get(before.get(name), path)
            if math.isnan(new) and math.isnan(old):
                continue
            change, noise = new - old, spread(results[name], path)
            wrong_way = change > 0 if better == "low" else change < 0  # False when either is NaN
            out.append({"server": name, "figure": label, "path": path, "better": better, "previous": old,
                        "new": new, "change_pct": percent(change, old), "noise": noise,
                        "noise_pct": percent(noise, new),
                        "worse": (None if math.isnan(noise) else abs(change) > noise) if wrong_way else False})
    return out


def comparison_text(items: list[dict[str, Any]], cfg: dict[str, Any]) -> str:
    patterns = {path: pattern for _, path, pattern, _ in rows(cfg)}
    marks = {True: "WORSE", None: "worse?", False: ""}
    body = [[SERVERS[i["server"]]["label"], f"{i['figure']} {'↓' if i['better'] == 'low' else '↑'}",
             fmt(i["previous"], patterns[i["path"]]), fmt(i["new"], patterns[i["path"]]),
             fmt(i["change_pct"], "{:+.1f}%"),
             "unknown" if math.isnan(i["noise"]) else fmt(i["noise_pct"], "{:.1f}%"), marks[i["worse"]]]
            for i in items]
    return markdown_table(["server", "figure", "previous", "new", "change", "noise", "flag"], body, left=2)


def targets(results: dict[str, Any], measured: list[str], cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 11's targets, from this run's figures only. Each compares value ÷ reference with a limit;
    the reference is the baseline's figure, or the bound itself for an absolute target. A target whose
    figures this run did not measure (a server not run or failed, a size the run did not have) is
    "not measured"."""

    def fig(name: str, path: str) -> float:
        return get(results.get(name), path) if name in measured else math.nan

    def exponent(name: str) -> float:  # only over the sizes the target is about
        sizes = (results.get(name) or {}).get("derived", {}).get("disconnect_fit_sizes")
        return fig(name, "derived.disconnect_exponent_fit") if sizes == [1000, 5000, 10000] else math.nan

    raw, bare, sio, node = "ponte-raw", "aiohttp", "ponte-sio", "node-socketio"
    kb, at = "memory.kb_per_connection", f"(@{cfg['big']:,})"
    # (target, value, reference, relation, limit of value ÷ reference, format of value and reference)
    checks = [
        ("Socket.IO ping round trips/s ≥ 0.8 × Node's", fig(sio, "ping.rt_per_s"), fig(node, "ping.rt_per_s"),
         "≥", 0.8, "{:,.0f}"),
        ("Socket.IO ping p99 ≤ 1.5 × Node's", fig(sio, "ping.p99_ms"), fig(node, "ping.p99_ms"), "≤", 1.5, "{:.2f} ms"),
        ("raw ping round trips/s ≥ 0.9 × bare aiohttp's", fig(raw, "ping.rt_per_s"), fig(bare, "ping.rt_per_s"),
         "≥", 0.9, "{:,.0f}"),
        ("raw ping round trips/s ≥ 0.9 × bare aiohttp's on uvloop (Ponte's loop)", fig(raw, "ping.rt_per_s"),
         fig("aiohttp-uvloop", "ping.rt_per_s"), "≥", 0.9, "{:,.0f}"),
        (f"Socket.IO idle KB/connection ≤ 1.0 × Node's {at}", fig(sio, kb), fig(node, kb), "≤", 1.0, "{:.2f} KB"),
        (f"raw idle KB/connection ≤ 14 KB {at}", fig(raw, kb), 14.0, "≤", 1.0, "{:.2f} KB"),
        (f"raw idle KB/connection below bare aiohttp's {at}", fig(raw, kb), fig(bare, kb), "<", 1.0, "{:.2f} KB"),
        ("mass disconnect of 5,000 Socket.IO clients: CPU ≤ 1.2 × Node's", fig(sio, "disconnect_5000.cpu_s"),
         fig(node, "disconnect_5000.cpu_s"), "≤", 1.2, "{:.3f} s")]
    for name in (raw, sio):
        label = SERVERS[name]["label"]
        checks += [(f"{label}: mass-disconnect growth exponent (fit 1,000/5,000/10,000) ≤ 1.1", exponent(name),
                    1.1, "≤", 1.0, "{:.2f}"),
                   (f"{label}: mass disconnect of 10,000 ≤ 1 s CPU", fig(name, "disconnect_10000.cpu_s"), 1.0,
                    "≤", 1.0, "{:.3f} s")]
    checks += [
        ("fan-out to 5,000: Ponte raw user CPU µs/delivery ≤ 0.5 × bare aiohttp's",
         fig(raw, "fanout_5000.user_us_per_delivery"), fig(bare, "fanout_5000.user_us_per_delivery"), "≤", 0.5,
         "{:.2f}"),
        ("fan-out to 5,000: Ponte Socket.IO CPU µs/delivery ≤ 1.0 × Node's",
         fig(sio, "fanout_5000.cpu_us_per_delivery"), fig(node, "fanout_5000.cpu_us_per_delivery"), "≤", 1.0,
         "{:.2f}")]
    out = []
    for text, value, reference, relation, limit, pattern in checks:
        ratio = value / reference if reference else math.nan
        met = {"≥": ratio >= limit, "≤": ratio <= limit, "<": ratio < limit}[relation]
        out.append({"target": text, "value": value, "reference": reference, "ratio": ratio,
                    "relation": relation, "limit": limit,
                    "figures": f"{fmt(value, pattern)} ÷ {fmt(reference, pattern)}",
                    "status": "not measured" if math.isnan(ratio) else "PASS" if met else "FAIL"})
    return out


def targets_text(items: list[dict[str, Any]]) -> str:
    return "\n".join(f"  {t['status']:12} {t['target']}: {t['figures']} = {fmt(t['ratio'], '{:.3f}')} "
                     f"(needs {t['relation']} {t['limit']:g})" for t in items)


# ---------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes (200 / 1,000; 2,000 for the third mass-disconnect point), 3 repeats")
    parser.add_argument("--only", default="", help=f"comma-separated servers: {', '.join(SERVERS)}")
    parser.add_argument("--merge", action="store_true",
                        help="with --only: keep the other servers' figures from the existing results.json")
    parser.add_argument("--repeats", type=int, help="fan-out repeats per pass at the small size (default 5, quick 3)")
    parser.add_argument("--big-repeats", type=int,
                        help="fan-out repeats per pass at the big size (default 20, quick 3): its user/system split is "
                             "read in 10 ms steps, and 20 repeats make about 15 steps of a raw fan-out's user time")
    parser.add_argument("--passes", type=int, help="passes over all servers, interleaved (default 3, quick 1); "
                                                   "each figure is the median over the passes")
    parser.add_argument("--procs", type=int, default=1, help="load worker processes per fleet (default 1)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server and the clients to separate CPUs")
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--previous", help="results file to compare this run with "
                                           "(default: the --output file, read before it is overwritten)")
    args = parser.parse_args()

    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(SERVERS)
    unknown = set(names) - set(SERVERS)
    if unknown:
        parser.error(f"unknown servers {sorted(unknown)}; choose from {', '.join(SERVERS)}")
    cfg = {"big": 1000 if args.quick else 5000, "small": 200 if args.quick else 1000,
           "huge": 2000 if args.quick else 10000,  # the third mass-disconnect point
           "repeats": args.repeats or (3 if args.quick else 5),
           "big_repeats": args.big_repeats or (3 if args.quick else 20),
           "passes": args.passes or (1 if args.quick else 3),
           "procs": args.procs, "ping_clients": 100, "ping_count": 20, "ping_rounds": 3 if not args.quick else 2,
           "disconnect_timeout": 60.0, "server_max_seconds": 1800.0}
    # The server and the load workers each raise their soft limit to the hard one (inherited from here);
    # the server holds one descriptor per client, a load worker at most that many.
    nofile = raise_nofile()
    if nofile < cfg["huge"] + 1000:
        raise SystemExit(f"bench: open-file limit {nofile} is too low for {cfg['huge']:,} clients")
    previous_path = Path(args.previous or args.output)
    if args.previous and not previous_path.exists():
        parser.error(f"--previous {args.previous}: no such file")
    previous = read_previous(previous_path)
    if "node-socketio" in names:
        ensure_node_deps()
    client_loop = ensure_client_loop()
    os.environ["BENCH_CLIENT_LOOP"] = client_loop
    load.CLIENT_LOOP = client_loop

    results: dict[str, Any] = {}
    output = Path(args.output)
    if args.merge and output.exists():
        kept = json.loads(output.read_text())
        if kept.get("config", {}).get("big") == cfg["big"]:
            results = {k: v for k, v in kept.get("servers", {}).items() if k not in names}
    info = machine()
    info["affinity"] = pin_cpus(not args.no_pin)
    code = code_version()
    print(f"bench: {info['cpu_model']}, {info['nproc']} cores, Python {info['python']}, Node {info['node']}; "
          f"Ponte {code['commit']}{' (modified)' if code['server_code_modified'] else ''}; clients on {client_loop}; "
          f"sizes {cfg['small']:,}/{cfg['big']:,}/{cfg['huge']:,}, {cfg['big_repeats']}/{cfg['repeats']} repeats, "
          f"{cfg['passes']} passes; "
          f"CPUs {info['affinity']}", flush=True)
    started = time.monotonic()
    monitor = ForeignLoad().start()
    passes: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="ponte-bench-") as tmp:
        for number in range(1, cfg["passes"] + 1):
            for name in names:
                if name in errors:
                    continue
                print(f"bench: pass {number}/{cfg['passes']}: {name}", flush=True)
                t = time.monotonic()
                try:
                    passes[name].append(bench_server(name, cfg, Path(tmp)))
                except Exception as exc:  # noqa: BLE001 - report and go on with the other servers
                    log = Path(tmp) / f"{name}.log"
                    tail = log.read_text()[-1500:] if log.exists() else ""
                    print(f"bench: {name} FAILED: {type(exc).__name__}: {exc}\n{tail}", flush=True)
                    errors[name] = f"{type(exc).__name__}: {exc}"
                    continue
                print(f"bench: {name} done in {time.monotonic() - t:.0f} s", flush=True)
    for name in names:
        if name in errors:
            results[name] = {"label": SERVERS[name]["label"], "error": errors[name]}
            continue
        results[name] = {**combine(passes[name]), "passes": passes[name]}
        derive(results[name], cfg)
        for one in passes[name]:
            derive(one, cfg)  # per pass as well: the noise of the derived figures
    foreign = monitor.stop()
    measured = [name for name in names if name not in errors]
    checks = targets(results, measured, cfg)
    comparison = {"previous_file": str(previous_path) if previous else None,
                  "previous_generated": (previous or {}).get("generated"),
                  "previous_code": (previous or {}).get("code", {}).get("commit"),
                  "config_differences": {k: [(previous or {}).get("config", {}).get(k), cfg[k]] for k in cfg
                                         if previous and previous.get("config", {}).get(k) != cfg[k]},
                  "figures": compare(results, previous, measured, cfg)}
    code_after = code_version()
    if code_after != code:
        print(f"bench: WARNING: the server code changed during the run ({code['commit']} → {code_after['commit']})")
        code["changed_during_run_to"] = code_after
    report = {"generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": info, "code": code,
              "foreign_load": foreign,
              "client_loop": client_loop, "config": cfg, "servers": results, "targets": checks,
              "comparison": comparison, "seconds": round(time.monotonic() - started, 1)}
    output.write_text(json.dumps(finite(report), indent=1, default=str) + "\n")
    print(table(results, cfg))
    if previous is None:
        print(f"\ncomparison: no previous results at {previous_path}")
    else:
        noise = (f"noise = (max − min) ÷ median of the figure over this run's {cfg['passes']} passes"
                 if cfg["passes"] > 1 else "noise unknown: this run has one pass")
        print(f"\ncomparison with {previous_path} ({comparison['previous_generated']}, Ponte "
              f"{comparison['previous_code']}): change = new vs previous; {noise}; WORSE = the wrong way by more "
              f"than the noise, worse? = the wrong way, noise unknown")
        if comparison["config_differences"]:
            print(f"  NOTE: the configurations differ (previous, now): {comparison['config_differences']}")
        print(comparison_text(comparison["figures"], cfg))
    print("\ntargets (issue 11), from this run's figures (value ÷ reference = ratio):")
    print(targets_text(checks))
    print(f"\nbench: other processes used {foreign['mean_cores']:.2f} cores on average during the run "
          f"(max {foreign['max_cores']:.2f}; busiest: {foreign['top_commands_cpu_s']})")
    if foreign["mean_cores"] > 0.1 or foreign["seconds_over_0.25_cores"] > 10:
        print("bench: WARNING: the machine was not quiet; timings are disturbed, run again on an idle machine")
    print(f"\nbench: wrote {output} ({report['seconds']:.0f} s)")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
