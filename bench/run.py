"""Run the whole benchmark on loopback: Ponte (raw /ws and Socket.IO /omni) and three baselines.

    python bench/run.py                  # the full run (about 10 minutes), writes bench/results.json
    python bench/run.py --quick          # a small run to check that everything works (about 2 minutes)
    python bench/run.py --only ponte-raw,aiohttp --merge   # some servers; others taken from results.json

Each server runs in its own process; the load clients run in other processes (bench/load.py). For each
server, in this order: a fresh server process, warmed up; 5,000 idle clients connected (memory per
connection); fan-out to those 5,000; all 5,000 killed at once (CPU until /bench/count reads 0). Then a
fresh process: the same fan-out and kill with 1,000; then 100 clients pinging. All of that once per
pass, servers interleaved; figures are medians. See bench/README.md for what each one means.
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
from common import raise_nofile  # noqa: E402
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
    "ponte-sio": {"cmd": [PY, str(BENCH / "ponte_server.py"), "--gc-stats"], "kind": SIO,
                  "label": "Ponte /omni (Socket.IO)", "gc": True},
    "python-socketio": {"cmd": [PY, str(BENCH / "baseline_socketio.py"), "--gc-stats"], "kind": SIO,
                        "label": "plain python-socketio", "gc": True},
    "node-socketio": {"cmd": ["node", str(NODE_DIR / "server.js")], "kind": SIO,
                      "label": "Node socket.io", "gc": False},
}
GROUPS = [("raw WebSocket clients", "ponte-raw", ["aiohttp"]),
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


def code_version() -> dict[str, Any]:
    """The commit measured, and whether the server code differs from it."""
    root = BENCH.parent

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
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()  # the server exits on EOF
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(10)
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
    big, small, repeats, procs = cfg["big"], cfg["small"], cfg["repeats"], cfg["procs"]
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
        step(f"fan-out to {big:,} x{repeats}")
        result[f"fanout_{big}"] = load.measure_fanout(crowd, server.pid, repeats)
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


def rows(big: int, small: int) -> list[tuple[str, str, str, str]]:
    """(label, path in a server's result, format, better): better is 'low' or 'high'."""
    out = [("ping p50 (ms)", "ping.p50_ms", "{:.2f}", "low"),
           ("ping p99 (ms)", "ping.p99_ms", "{:.2f}", "low"),
           ("ping round trips/s", "ping.rt_per_s", "{:,.0f}", "high")]
    for n in (small, big):
        out += [(f"fan-out {n:,}: all received (ms)", f"fanout_{n}.all_ms", "{:.1f}", "low"),
                (f"fan-out {n:,}: deliveries/s", f"fanout_{n}.deliveries_per_s", "{:,.0f}", "high"),
                (f"fan-out {n:,}: server CPU µs/delivery", f"fanout_{n}.cpu_us_per_delivery", "{:.1f}", "low"),
                (f"fan-out {n:,}: of the CPU, in Python's GC", f"fanout_{n}.gc_share", "{:.0%}", "low")]
    out += [(f"idle memory KB/connection @{big:,}", "memory.kb_per_connection", "{:.1f}", "low"),
            (f"mass disconnect {small:,}: server CPU s", f"disconnect_{small}.cpu_s", "{:.3f}", "low"),
            (f"mass disconnect {big:,}: server CPU s", f"disconnect_{big}.cpu_s", "{:.3f}", "low"),
            (f"mass disconnect {big:,}: of which Python's GC s", f"disconnect_{big}.gc_s", "{:.3f}", "low"),
            (f"mass disconnect {big:,}: wall s to 0", f"disconnect_{big}.wall_s", "{:.2f}", "low"),
            (f"disconnect cost growth {small:,}→{big:,} (×)", "derived.disconnect_growth", "{:.1f}", "low")]
    return out


def derive(result: dict[str, Any], big: int, small: int) -> None:
    a, b = get(result, f"disconnect_{small}.cpu_s"), get(result, f"disconnect_{big}.cpu_s")
    growth = b / a if a > 0 else math.nan
    result["derived"] = {"disconnect_growth": growth,
                         "disconnect_exponent": math.log(growth) / math.log(big / small) if growth > 0 else math.nan}


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


def table(results: dict[str, Any], big: int, small: int) -> str:
    lines = []
    for title, ponte, baselines in GROUPS:
        names = [ponte] + baselines
        header = ["", *[SERVERS[n]["label"] for n in names], *[f"Ponte ÷ {SERVERS[b]['label']}" for b in baselines]]
        body = []
        for label, path, pattern, better in rows(big, small):
            values = [get(results.get(n), path) for n in names]
            ratios = [values[0] / v if v and not math.isnan(v) and "gc" not in path else math.nan
                      for v in values[1:]]
            arrow = "↓" if better == "low" else "↑"
            body.append([f"{label} {arrow}", *[fmt(v, pattern) for v in values],
                         *[fmt(r, "{:.2f}") for r in ratios]])
        lines.append(f"\n{title} (↑ higher is better, ↓ lower is better; ratios are Ponte's figure ÷ the baseline's)")
        lines.append(markdown_table(header, body))
    return "\n".join(lines)


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    sep = "| " + " | ".join("-" * w if i == 0 else "-" * (w - 1) + ":" for i, w in enumerate(widths)) + " |"
    return "\n".join([line(header), sep, *[line(r) for r in body]])


def targets(results: dict[str, Any], big: int, small: int, memory_limit_kb: float = 16.0) -> list[dict[str, Any]]:
    out = []

    def ratio(a: str, b: str, path: str) -> float:
        x, y = get(results.get(a), path), get(results.get(b), path)
        return x / y if y and not math.isnan(y) else math.nan

    for n in (small, big):
        r = ratio("ponte-raw", "aiohttp", f"fanout_{n}.deliveries_per_s")
        out.append({"target": f"raw fan-out to {n:,} ≥ 0.8× bare aiohttp (deliveries/s)",
                    "figure": fmt(r, "{:.2f}×"), "met": None if math.isnan(r) else r >= 0.8})
    for n in (small, big):
        r = ratio("ponte-sio", "python-socketio", f"fanout_{n}.deliveries_per_s")
        out.append({"target": f"Socket.IO fan-out to {n:,} ≥ 3× plain python-socketio (deliveries/s)",
                    "figure": fmt(r, "{:.2f}×"), "met": None if math.isnan(r) else r >= 3.0})
    kb = get(results.get("ponte-raw"), "memory.kb_per_connection")
    out.append({"target": f"idle raw connection ≤ {memory_limit_kb:g} KB (@{big:,})", "figure": fmt(kb, "{:.1f} KB"),
                "met": None if math.isnan(kb) else kb <= memory_limit_kb})
    linear, square = big / small, (big / small) ** 2
    for name in ("python-socketio", "ponte-sio", "ponte-raw"):
        g = get(results.get(name), "derived.disconnect_growth")
        e = get(results.get(name), "derived.disconnect_exponent")
        a, b = get(results.get(name), f"disconnect_{small}.cpu_s"), get(results.get(name), f"disconnect_{big}.cpu_s")
        figure = f"{fmt(a, '{:.3f}')} s → {fmt(b, '{:.3f}')} s: {fmt(g, '{:.1f}')}× (exponent {fmt(e, '{:.2f}')})"
        if name == "python-socketio":
            out.append({"target": f"plain python-socketio's mass-disconnect cost grows with the square "
                                  f"(×{square:g} for {small:,}→{big:,})", "figure": figure,
                        "met": None if math.isnan(e) else e >= 1.5})
        else:
            out.append({"target": f"{SERVERS[name]['label']}: mass-disconnect cost not quadratic "
                                  f"(exponent < 1.5; linear is 1, ×{linear:g})", "figure": figure,
                        "met": None if math.isnan(e) else e < 1.5})
    return out


def targets_text(items: list[dict[str, Any]]) -> str:
    marks = {True: "MET", False: "MISSED", None: "n/a"}
    return "\n".join(f"  {marks[t['met']]:6} {t['target']}: {t['figure']}" for t in items)


# ---------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (200 / 1,000), 3 repeats")
    parser.add_argument("--only", default="", help=f"comma-separated servers: {', '.join(SERVERS)}")
    parser.add_argument("--merge", action="store_true",
                        help="with --only: keep the other servers' figures from the existing results.json")
    parser.add_argument("--repeats", type=int, help="fan-out repeats per pass (default 5, quick 3)")
    parser.add_argument("--passes", type=int, help="passes over all servers, interleaved (default 3, quick 1); "
                                                   "each figure is the median over the passes")
    parser.add_argument("--procs", type=int, default=1, help="load worker processes per fleet (default 1)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server and the clients to separate CPUs")
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()

    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(SERVERS)
    unknown = set(names) - set(SERVERS)
    if unknown:
        parser.error(f"unknown servers {sorted(unknown)}; choose from {', '.join(SERVERS)}")
    cfg = {"big": 1000 if args.quick else 5000, "small": 200 if args.quick else 1000,
           "repeats": args.repeats or (3 if args.quick else 5), "passes": args.passes or (1 if args.quick else 3),
           "procs": args.procs, "ping_clients": 100, "ping_count": 20, "ping_rounds": 3 if not args.quick else 2,
           "disconnect_timeout": 60.0, "server_max_seconds": 1800.0}
    nofile = raise_nofile()
    if nofile < 2 * cfg["big"] + 1000:
        raise SystemExit(f"bench: open-file limit {nofile} is too low for {cfg['big']} clients")
    if "node-socketio" in names:
        ensure_node_deps()
    client_loop = ensure_client_loop()
    os.environ["BENCH_CLIENT_LOOP"] = client_loop
    load.CLIENT_LOOP = client_loop

    results: dict[str, Any] = {}
    output = Path(args.output)
    if args.merge and output.exists():
        previous = json.loads(output.read_text())
        if previous.get("config", {}).get("big") == cfg["big"]:
            results = {k: v for k, v in previous.get("servers", {}).items() if k not in names}
    info = machine()
    info["affinity"] = pin_cpus(not args.no_pin)
    code = code_version()
    print(f"bench: {info['cpu_model']}, {info['nproc']} cores, Python {info['python']}, Node {info['node']}; "
          f"Ponte {code['commit']}{' (modified)' if code['server_code_modified'] else ''}; clients on {client_loop}; "
          f"sizes {cfg['small']:,}/{cfg['big']:,}, {cfg['repeats']} repeats, {cfg['passes']} passes; "
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
        derive(results[name], cfg["big"], cfg["small"])
    foreign = monitor.stop()
    checks = targets(results, cfg["big"], cfg["small"])
    code_after = code_version()
    if code_after != code:
        print(f"bench: WARNING: the server code changed during the run ({code['commit']} → {code_after['commit']})")
        code["changed_during_run_to"] = code_after
    report = {"generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": info, "code": code,
              "foreign_load": foreign,
              "client_loop": client_loop, "config": cfg, "servers": results, "targets": checks,
              "seconds": round(time.monotonic() - started, 1)}
    output.write_text(json.dumps(finite(report), indent=1, default=str) + "\n")
    print(table(results, cfg["big"], cfg["small"]))
    print("\ntargets:")
    print(targets_text(checks))
    print(f"\nbench: other processes used {foreign['mean_cores']:.2f} cores on average during the run "
          f"(max {foreign['max_cores']:.2f}; busiest: {foreign['top_commands_cpu_s']})")
    if foreign["mean_cores"] > 0.1 or foreign["seconds_over_0.25_cores"] > 10:
        print("bench: WARNING: the machine was not quiet; timings are disturbed, run again on an idle machine")
    print(f"\nbench: wrote {output} ({report['seconds']:.0f} s)")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
