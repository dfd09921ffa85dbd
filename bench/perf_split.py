"""A second reading of a fan-out's user/system split: perf's samples, not the kernel's ticks.

    python bench/perf_split.py                                   # ponte-raw, aiohttp, aiohttp-uvloop; 5,000 clients
    python bench/perf_split.py --only ponte-raw,aiohttp --passes 3

run.py splits a fan-out's CPU time by the utime and stime of /proc/<pid>/stat, which the kernel charges a
whole scheduler tick at a time. Here `perf record -e cpu-clock -F FREQ` samples the server under test
while it makes `--repeats` fan-outs, and a sample counts as kernel time when it landed in the kernel's
code. Printed per server, median over the passes: the user share of the samples and the user seconds
they stand for per delivery (perf's own interrupts add kernel time, and some user time, to the server:
compare within one run only). Needs Linux perf (Debian's linux-perf) allowed to sample the server.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import load
from run import SERVERS, Server, ensure_client_loop, pin_cpus, raise_nofile


def dso_shares(data: Path) -> tuple[float, float]:
    """(user share, total seconds) of a perf.data file: samples outside [kernel.*] are user time."""
    report = subprocess.run(["perf", "report", "-i", str(data), "--sort", "dso", "--stdio"],
                            capture_output=True, text=True, check=True).stdout
    user = kernel = total = 0.0
    for line in report.splitlines():
        if line.startswith("# Event count"):
            total = float(line.split(":")[1]) / 1e9  # cpu-clock counts nanoseconds
        elif line.strip() and not line.startswith("#") and "%" in line:
            share, dso = line.split()[0].rstrip("%"), line.split()[1]
            if dso.startswith("[kernel"):
                kernel += float(share)
            else:
                user += float(share)
    return user / (user + kernel), total


def measure(name: str, clients: int, repeats: int, freq: int) -> dict[str, float]:
    """One fresh server: `clients` clients, 3 warm-up fan-outs, then `repeats` under perf."""
    with tempfile.TemporaryDirectory(prefix="ponte-perf-") as tmp:
        server = Server(name, Path(tmp), max_seconds=600)
        fleet = None
        try:
            fleet = load.Fleet(SERVERS[name]["kind"], server.url, clients).wait_ready()
            load.wait_count(server.url, lambda c: c >= clients, 60)
            for _ in range(3):
                fleet.fanout(server.pid)
            data = Path(tmp) / "perf.data"
            perf = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", str(freq), "-p",
                                     str(server.pid), "-o", str(data)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(1.0)  # perf attaches
            for _ in range(repeats):
                fleet.fanout(server.pid)
            perf.send_signal(2)  # SIGINT: perf writes its file and exits
            _, err = perf.communicate(timeout=60)
            if not data.exists():
                raise RuntimeError(f"perf record failed: {err.decode()[-500:]}")
            share, total = dso_shares(data)
            return {"user_share": share, "user_us_per_delivery": share * total / (clients * repeats) * 1e6}
        finally:
            if fleet is not None:
                fleet.stop()
            server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="ponte-raw,aiohttp,aiohttp-uvloop")
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--freq", type=int, default=10000, help="perf samples per second")
    parser.add_argument("--reference", default="aiohttp", help="the server the ratios divide by")
    args = parser.parse_args()
    if shutil.which("perf") is None:
        raise SystemExit("perf_split: perf not found (apt-get install linux-perf)")
    names = args.only.split(",")
    if args.reference not in names:
        names.append(args.reference)
    raise_nofile()
    affinity = pin_cpus(True)
    load.CLIENT_LOOP = ensure_client_loop()
    print(f"perf_split: {args.clients} clients, {args.repeats} fan-outs x {args.passes} passes, "
          f"{args.freq} samples/s; {affinity}", flush=True)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for _ in range(args.passes):
        for name in names:  # servers in turn, as run.py: a slow minute does not land on one only
            runs[name].append(measure(name, args.clients, args.repeats, args.freq))
    print(f"\n{'server':16} {'user share':>10} {'user µs/delivery':>17} {'÷ ' + args.reference:>16}")
    reference = statistics.median(r["user_us_per_delivery"] for r in runs[args.reference])
    for name in names:
        share = statistics.median(r["user_share"] for r in runs[name])
        user = statistics.median(r["user_us_per_delivery"] for r in runs[name])
        print(f"{name:16} {share:10.1%} {user:17.2f} {user / reference:16.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
