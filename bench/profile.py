"""Profile one bench server with py-spy while the load tool drives it.

    pip install py-spy          # once; `py-spy record` needs root or ptrace permission
    python bench/profile.py ponte-sio --clients 5000 --what fanout --repeats 20
    python bench/profile.py ponte-raw --clients 5000 --what disconnect

Writes the collapsed stacks (flamegraph input) to /tmp/ponte-bench-profile/NAME-WHAT.txt (or --out) and
prints where the samples fall: by function (self time, then inclusive time) and by source file.
Python servers only (py-spy reads CPython frames).
"""
from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import load  # noqa: E402
from common import raise_nofile  # noqa: E402
from run import SERVERS, Server, ensure_client_loop, pin_cpus  # noqa: E402


def summarize(path: Path, top: int) -> str:
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    by_file: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f]
        if frames and frames[0].startswith("process "):
            frames = frames[1:]
        if frames and frames[0].startswith("thread "):
            frames = frames[1:]
        if not frames or any(f.startswith("Thread._bootstrap") for f in frames):
            continue  # empty, or the bench's idle watcher threads (lifetime.py)
        total += count
        self_time[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
        leaf_file = frames[-1].rsplit("(", 1)[-1].split(":")[0]
        by_file[leaf_file] += count

    def block(title: str, counter: collections.Counter[str]) -> list[str]:
        out = [f"\n{title}"]
        for frame, count in counter.most_common(top):
            out.append(f"  {100 * count / total:5.1f}%  {frame}")
        return out

    lines = [f"{total} samples"]
    lines += block("self time (the frame on top of the stack)", self_time)
    lines += block("inclusive time (the frame anywhere on the stack)", inclusive)
    lines += block("self time by source file", by_file)
    return "\n".join(lines)


def gc_accounting(server: Server, fleet: load.Fleet, args: argparse.Namespace) -> None:
    """Per operation: the server's CPU time and the part of it CPython's cyclic GC took."""
    def gc_now() -> dict:
        return load.http_call(server.url, "GET", "/bench/gc")
    print(f"{args.server}: {fleet.n} clients, tracked objects "
          f"{load.http_call(server.url, 'GET', '/bench/gc?tracked=1')['tracked']:,}")
    print("  op  server CPU ms  GC ms (gen0/gen1/gen2)  collections (gen0/gen1/gen2)  all received ms")
    for i in range(args.repeats):
        before, cpu = gc_now(), load.Cpu.read(server.pid)
        if args.what == "fanout":
            result = fleet.fanout(server.pid)
            label = f"{result['all_ms']:.1f}"
        elif args.what == "ping":
            fleet.ping(100, 20)
            label = "-"
        else:
            print(load.measure_disconnect(fleet, server.url, server.pid))
            label = "-"
        cpu_ms = (load.Cpu.read(server.pid).clock - cpu.clock) * 1000
        after = gc_now()
        secs = [1000 * (a - b) for a, b in zip(after["seconds"], before["seconds"])]
        cols = [a - b for a, b in zip(after["collections"], before["collections"])]
        print(f"  {i:2}  {cpu_ms:12.1f}  {sum(secs):6.1f} ({'/'.join(f'{s:.1f}' for s in secs)})"
              f"  {'/'.join(map(str, cols)):>28}  {label}")
        if args.what == "disconnect":
            break
        time.sleep(0.3)


def memory(args: argparse.Namespace, kind: str) -> int:
    """tracemalloc: which source lines hold the memory that N idle connections add."""
    with tempfile.TemporaryDirectory(prefix="ponte-profile-") as tmp:
        server = Server(args.server, Path(tmp), max_seconds=900, extra_args=("--tracemalloc",))
        fleet = None
        try:
            warm = load.Fleet(kind, server.url, 20).wait_ready()
            warm.fanout(server.pid)
            warm.close()
            load.wait_count(server.url, lambda c: c == 0, 30)
            rss0 = load.rss_kb(server.pid)
            load.http_call(server.url, "GET", "/bench/tracemalloc?mark=1", timeout=120)
            fleet = load.Fleet(kind, server.url, args.clients).wait_ready()
            load.wait_count(server.url, lambda c: c >= args.clients, 60)
            time.sleep(2)
            rss1 = load.rss_kb(server.pid)
            for by in ("filename", "lineno"):
                report = load.http_call(server.url, "GET", f"/bench/tracemalloc?diff=1&by={by}&top={args.top}",
                                        timeout=300)
                n = args.clients
                print(f"\n{args.server}: {n} idle clients; RSS +{(rss1 - rss0) / n:.1f} KB/connection "
                      f"(with tracemalloc on); traced Python allocations +{report['total_diff'] / n / 1024:.2f} "
                      f"KB/connection, by {by}:")
                for row in report["top"]:
                    print(f"  {row['size_diff'] / n:8.0f} B {row['count_diff'] / n:6.1f} blocks  {row['where'][0]}")
        finally:
            if fleet is not None:
                fleet.stop()
            server.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("server", choices=[n for n in SERVERS if n != "node-socketio"])
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--what", choices=("fanout", "disconnect", "ping", "memory"), default="fanout")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--rate", type=int, default=1000, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", default="/tmp/ponte-bench-profile")
    parser.add_argument("--no-spy", action="store_true", help="no py-spy: only the GC and CPU accounting")
    parser.add_argument("--native", action="store_true", help="include C frames (py-spy --native)")
    parser.add_argument("--summarize", metavar="FILE", help="only print the summary of an existing profile")
    args = parser.parse_args()
    if args.summarize:
        print(summarize(Path(args.summarize), args.top))
        return 0
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("profile: py-spy not found (pip install py-spy)")
    raise_nofile()
    pin_cpus()
    load.CLIENT_LOOP = ensure_client_loop()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{args.server}-{args.what}.txt"
    kind = SERVERS[args.server]["kind"]
    if args.what == "memory":
        return memory(args, kind)
    with tempfile.TemporaryDirectory(prefix="ponte-profile-") as tmp:
        server = Server(args.server, Path(tmp), max_seconds=900, extra_args=("--gc-stats",))
        fleet = None
        try:
            n = 100 if args.what == "ping" else args.clients
            fleet = load.Fleet(kind, server.url, n).wait_ready()
            load.wait_count(server.url, lambda c: c >= n, 60)
            fleet.fanout(server.pid)  # warm-up
            if args.no_spy:
                gc_accounting(server, fleet, args)
                return 0
            spy = subprocess.Popen([py_spy, "record", "--pid", str(server.pid), "--rate", str(args.rate),
                                    "--format", "raw", "--output", str(out)] + (["--native"] if args.native else []),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(1.0)  # py-spy attaches
            if args.what == "fanout":
                for _ in range(args.repeats):
                    fleet.fanout(server.pid)
            elif args.what == "ping":
                for _ in range(args.repeats):
                    fleet.ping(100, 20)
            else:
                print(load.measure_disconnect(fleet, server.url, server.pid))
            time.sleep(0.5)
            spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
            _, err = spy.communicate(timeout=60)
            if spy.returncode not in (0, None) and not out.exists():
                raise RuntimeError(f"py-spy failed: {err.decode()[-1000:]}")
        finally:
            if fleet is not None:
                fleet.stop()
            server.stop()
    print(f"profile: {out}")
    print(summarize(out, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
