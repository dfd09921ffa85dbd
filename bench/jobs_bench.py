"""Executions as jobs (issue 13): pages per second with 1 and 2 workers, the gateway's event-loop lag
while they run, and the time from a worker's SIGKILL to its job moving again.

    python bench/jobs_bench.py            # the full run (about 2.5 minutes; see bench/JOBS.md)
    python bench/jobs_bench.py --quick    # one round of everything (under a minute)
    python bench/jobs_bench.py --no-pin   # let the scheduler place every process

Every process is this script's child, in a session of its own (`start_new_session`), and ends with it
(stdin closed, then SIGKILL to its whole process group): a generated site (4 sections of 50 interlinked
Portuguese articles, and a slow section), a private redis-server, one gateway holding 1,000 idle raw
WebSocket connections (bench/load.py's Fleet) and a pinger (SESSAO_PING every 10 ms on one more
connection, round trips logged), and `python -m app worker` processes. Gateways and workers are
`python -m app` as an operator runs them, with the settings below in their environment.

One round: 4 executions at once (4 users, one section each, CRAWL_MAX_PAGES=50); pages/s is the
pages all four read / the wall time from the first request to the last EXECUCAO_CONCLUIDA. Loop lag:
the p99 of the gateway's `ponte_event_loop_lag_seconds` histogram over the round (interpolated in its
bucket, as Prometheus's histogram_quantile does) and the p99 of the pinger's round trips. Modes, in
one run: embedded (no REDIS_URL: the jobs run inside the gateway, the baseline), then on a queue with
1 worker and with 2 workers (WORKER_CONCURRENCY=2 each, so that 4 executions keep 2 workers busy).
Takeover: one execution on the slow section with 2 workers; at its first progress, SIGKILL the worker
running it (SAQ's job says which); the time until the client gets EXECUCAO_STATUS with `tentativa`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import aiohttp  # noqa: E402
import psutil  # noqa: E402
from aiohttp import web  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from common import SECRET, dumps, make_token, raise_nofile, stop_process  # noqa: E402
from lifetime import stop_when_orphaned  # noqa: E402
from load import RAW, Fleet, median, percentile  # noqa: E402
from redis_bench import ForeignLoad, fmt, machine, markdown_table  # noqa: E402
from redis_servers import RedisServer, free_port, pinner  # noqa: E402
from tests.fixtures.blog import TOPICS, page  # noqa: E402

PY = sys.executable
LIFETIME = 900.0  # seconds any child lives at most, whatever happens to this script
SECTIONS, SECTION_PAGES, FANOUT = 4, 50, 7  # p/n links to p/7n+1 … p/7n+7: depth 2 reaches all 50
SLOW_SECONDS = 0.2  # per page of the slow section, so that a run lasts while a worker is killed
IDLE_CLIENTS = 1000
QUEUE = "socketio-jobs"  # the gateways' queue: f"{REDIS_CHANNEL}-jobs"
ARTICLES = [text for _, items in TOPICS.values() for _, _, text in items]
TITLES = [title for _, items in TOPICS.values() for _, title, _ in items]
SETTINGS = {"HOST": "127.0.0.1", "JWT_SECRET": SECRET, "ALLOW_PRIVATE_URLS": "true", "CRAWL_MAX_PAGES": "50",
            "CRAWL_CONCURRENCY": "4", "EXTRACT_WORKERS": "2", "WORKER_CONCURRENCY": "2", "AUDIT_LOG": "false",
            "LOG_LEVEL": "WARNING", "MAX_CONNECTIONS": "5000", "IDLE_TIMEOUT": "3600",
            "RATE_LIMIT_PER_SECOND": "1000", "RATE_LIMIT_BURST": "1000", "MAX_EXECUTIONS_PER_USER": "10"}


# -- the site ---------------------------------------------------------------------------------------

def article(section: str, n: int) -> str:
    """Page n of a section: three articles' text (one repeated) and links to its neighbours."""
    text = " ".join(ARTICLES[(n + k * 2) % len(ARTICLES)] for k in range(3))
    targets = {0, (n + 1) % SECTION_PAGES, *range(FANOUT * n + 1, min(FANOUT * n + FANOUT + 1, SECTION_PAGES))}
    links = "".join(f"<li><a href='/{section}/p/{m}'>{TITLES[m % len(TITLES)]} ({m})</a></li>" for m in sorted(targets))
    body = f"<article><p>{text}</p><p>Edição {n} da seção {section}.</p><p>{ARTICLES[n % len(ARTICLES)]}</p>"
    return page(f"{TITLES[n % len(TITLES)]} — {section} {n}", f"{body}</article><ul>{links}</ul>")


def site_app() -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        section, n = request.match_info["section"], int(request.match_info["n"])
        if section == "lento":
            await asyncio.sleep(SLOW_SECONDS)
        return web.Response(text=article(section, n % SECTION_PAGES), content_type="text/html")

    async def robots(request: web.Request) -> web.Response:
        return web.Response(text="User-agent: *\nAllow: /\n")

    app = web.Application()
    app.router.add_get("/robots.txt", robots)
    app.router.add_get("/{section}/p/{n:\\d+}", handler)
    return app


# -- the children -----------------------------------------------------------------------------------

def child_main(args: argparse.Namespace) -> None:
    """A child process of this bench: the site, a gateway, a worker or the pinger."""
    stop_when_orphaned(LIFETIME)
    raise_nofile()
    if args.role == "site":
        web.run_app(site_app(), host="127.0.0.1", port=args.port, access_log=None, print=None)
    elif args.role == "pinger":
        asyncio.run(ping_forever(args.url, Path(args.out)))
    else:
        import app.__main__ as entry
        if args.role == "serve":
            entry.create_app = with_lag_probe(entry.create_app)
        sys.exit(entry.main([args.role]))


def with_lag_probe(create: Any) -> Any:
    """create_app, plus the loop-lag probe if the app does not start one itself (app/factory.py)."""
    from app.keys import METRICS_KEY

    async def probe(application: web.Application) -> AsyncIterator[None]:
        lag = application[METRICS_KEY].loop_lag

        async def start_unless_running() -> None:
            await asyncio.sleep(1.0)  # a probe the factory started has samples by now
            if not lag.recent:
                await lag.run()
        task = asyncio.create_task(start_unless_running())
        yield
        task.cancel()

    def create_app(settings: Any) -> web.Application:
        application = create(settings)
        application.cleanup_ctx.append(probe)
        return application
    return create_app


async def ping_forever(url: str, out: Path) -> None:
    """SESSAO_PING every 10 ms, one at a time; each round trip as a line `sent rtt` (monotonic s)."""
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        with open(out, "w", buffering=1) as log:
            loop = asyncio.get_running_loop()
            while True:
                sent = time.monotonic()
                await ws.send_str(dumps({"event": "SESSAO_PING", "data": {"request_id": uuid.uuid4().hex[:8]}}))
                while True:
                    msg = await ws.receive()
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        raise SystemExit(f"pinger: connection ended ({msg.type})")
                    if "SESSAO_PONG" in msg.data:
                        break
                log.write(f"{sent:.6f} {time.monotonic() - sent:.6f}\n")
                await asyncio.sleep(max(0.0, sent + 0.01 - loop.time()))


class Child:
    """One child process in a session of its own; stop() ends it and everything it started."""

    def __init__(self, name: str, args: list[str], logdir: Path, env: dict[str, str] | None = None,
                 cpus: set[int] | None = None) -> None:
        self.name, self.log_path = name, logdir / f"{name}.log"
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen([PY, __file__, "child", *args], stdin=subprocess.PIPE, stdout=log,
                                            stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                            start_new_session=True, preexec_fn=pinner(cpus))

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the process alone, as a crash would (its extraction processes must follow by themselves)."""
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        stop_process(self.process)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # its forkserver and pool, if still there
        except (ProcessLookupError, PermissionError):
            pass


@dataclass(frozen=True)
class Layout:
    """Where processes run: pinned, the gateway has the last CPU to itself and everything else (this
    script, its clients, the site, Redis, workers, extraction processes) shares the others, so that
    its loop lag shows its own work, not waiting for a CPU; unpinned (None), the scheduler decides."""

    gateway: set[int] | None = None
    others: set[int] | None = None
    foreign: ForeignLoad | None = None

    @classmethod
    def of(cls, pin: bool, foreign: ForeignLoad) -> "Layout":
        cpus = sorted(os.sched_getaffinity(0))
        if not pin or len(cpus) < 2:
            return cls(foreign=foreign)
        return cls({cpus[-1]}, set(cpus[:-1]), foreign)

    def release_gateway_children(self, pid: int) -> None:
        """Move what the gateway started (its extraction processes) off the gateway's CPU."""
        if self.others:
            for process in psutil.Process(pid).children(recursive=True):
                process.cpu_affinity(sorted(self.others))


class Cluster:
    """Everything one mode runs: the site, maybe Redis, a gateway with its idle clients and pinger, workers."""

    def __init__(self, logdir: Path, site: str, redis: RedisServer | None, layout: Layout) -> None:
        self.logdir, self.site, self.redis, self.layout = logdir, site, redis, layout
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**SETTINGS, "PORT": str(self.port), **({"REDIS_URL": redis.url} if redis else {})}
        self.children: list[Child] = []
        self.workers: list[Child] = []
        self.started_workers = 0
        self.fleet: Fleet | None = None
        self.pings = logdir / f"pings-{self.port}.txt"

    def start(self) -> None:
        self.gateway = Child(f"gateway-{self.port}", ["serve"], self.logdir, self.env, self.layout.gateway)
        self.children.append(self.gateway)
        wait_http(f"{self.base}/healthz", 60)
        self.fleet = Fleet(RAW, self.base, IDLE_CLIENTS, procs=1).wait_ready()
        url = f"{self.base.replace('http', 'ws')}/ws?token={make_token('pinger')}"
        self.children.append(Child(f"pinger-{self.port}", ["pinger", "--url", url, "--out", str(self.pings)],
                                   self.logdir, cpus=self.layout.others))

    def add_worker(self) -> Child:
        self.started_workers += 1
        worker = Child(f"worker-{self.started_workers}-{self.port}", ["worker"], self.logdir, self.env,
                       self.layout.others)
        self.workers.append(worker)
        self.children.append(worker)
        return worker

    def rtts(self, start: float, end: float) -> list[float]:
        """The pinger's round trips sent in [start, end), seconds."""
        with open(self.pings) as f:
            pairs = [line.split() for line in f if line.count(" ") == 1]
        return [float(rtt) for sent, rtt in pairs if start <= float(sent) < end]

    def stop(self) -> None:
        if self.fleet is not None:
            self.fleet.kill()
        for child in reversed(self.children):
            child.stop()


def wait_http(url: str, timeout: float) -> None:
    import urllib.request
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer in {timeout:g} s") from None
            time.sleep(0.2)


# -- measuring --------------------------------------------------------------------------------------

async def lag_buckets(session: aiohttp.ClientSession, base: str) -> dict[float, float]:
    """The gateway's loop-lag histogram now: {upper bound: cumulative count}."""
    async with session.get(f"{base}/metrics") as response:
        text = await response.text()
    return {float(s.labels["le"]): s.value for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == "ponte_event_loop_lag_seconds_bucket"}


def quantile(q: float, before: dict[float, float], after: dict[float, float]) -> float:
    """The q-quantile of the samples between two scrapes, linear within its bucket; NaN without any."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return float("nan")
    rank, lower, below = q * counts[-1], 0.0, 0.0
    for bound, count in zip(bounds, counts):
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return lower


async def messages(ws: aiohttp.ClientWebSocketResponse) -> AsyncIterator[dict[str, Any]]:
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT:
            yield json.loads(msg.data)


async def start_execution(session: aiohttp.ClientSession, base: str, user: str,
                          blog_url: str) -> tuple[aiohttp.ClientWebSocketResponse, str]:
    ws = await session.ws_connect(f"{base}/ws?token={make_token(user)}")
    config = {"max_keywords": 50, "profundidade": 3, "timeout": 10}
    await ws.send_str(dumps({"event": "EXECUCAO_INICIAR",
                             "data": {"blog_url": blog_url, "configuracoes": config, "request_id": "r1"}}))
    async for message in messages(ws):
        if message["event"] == "EXECUCAO_INICIADA":
            return ws, message["data"]["execucao_id"]
        if message["event"] == "ERRO":
            raise RuntimeError(f"{user}: {message['data']}")
    raise RuntimeError(f"{user}: connection closed before EXECUCAO_INICIADA")


async def run_execution(session: aiohttp.ClientSession, base: str, user: str, blog_url: str) -> int:
    """One execution to its end: the pages it read."""
    ws, _ = await start_execution(session, base, user, blog_url)
    pages = 0
    async with ws:
        async for message in messages(ws):
            event, data = message["event"], message.get("data", {})
            if event == "EXECUCAO_STATUS":
                pages = max(pages, data.get("progresso", {}).get("atual", 0))
            elif event == "EXECUCAO_CONCLUIDA":
                return pages
            elif event in ("EXECUCAO_ERRO", "ERRO"):
                raise RuntimeError(f"{user}: {event} {data}")
    raise RuntimeError(f"{user}: connection closed before EXECUCAO_CONCLUIDA")


async def idle(seconds: float) -> int:
    await asyncio.sleep(seconds)
    return 0


async def window(cluster: Cluster, session: aiohttp.ClientSession, work: Any) -> dict[str, Any]:
    """Await `work` (a coroutine returning the pages it read) and measure the gateway around it."""
    before, start = await lag_buckets(session, cluster.base), time.monotonic()
    pages = await work
    end = time.monotonic()
    await asyncio.sleep(0.3)  # the pinger's last lines, the probe's last samples
    rtts = cluster.rtts(start, end)
    return {"seconds": end - start, "pages": pages, "pages_per_s": pages / (end - start),
            "lag_p99_ms": quantile(0.99, before, await lag_buckets(session, cluster.base)) * 1000,
            "ping_p50_ms": percentile(rtts, 50) * 1000, "ping_p99_ms": percentile(rtts, 99) * 1000,
            "pings": len(rtts), "foreign_cores": cluster.layout.foreign.between(start, end)
            if cluster.layout.foreign else float("nan")}


async def round_of_four(cluster: Cluster, session: aiohttp.ClientSession) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    runs = [run_execution(session, cluster.base, f"leitor{k}-{tag}", f"{cluster.site}/secao{k}/p/0")
            for k in range(SECTIONS)]

    async def all_four() -> int:
        return sum(await asyncio.gather(*runs))
    return await window(cluster, session, all_four())


def contracts_csv(rows: int) -> bytes:
    """`rows` contracts as the upload API takes them: the sample's rows repeated."""
    header, *lines = (BENCH.parent / "engines/contracts/data/sample_contracts.csv").read_text().splitlines()
    return "\n".join([header, *(lines[n % len(lines)] for n in range(rows))]).encode()


UPLOAD_ROWS = 200_000  # about 15 MB of CSV


async def upload(cluster: Cluster, session: aiohttp.ClientSession, body: bytes) -> dict[str, Any]:
    """POST an upload of contracts; the window is the gateway's part: from the request to its answer (the
    body read, the file checked in a process of its own and stored, the job submitted)."""
    async def post() -> int:
        async with session.post(f"{cluster.base}/api/v1/investigations", data=body,
                                headers={"Content-Type": "text/csv",
                                         "Authorization": f"Bearer {make_token('auditora')}"}) as response:
            if response.status != 201:
                raise RuntimeError(f"upload: {response.status} {await response.text()}")
            return 0
    return await window(cluster, session, post())


async def takeover(cluster: Cluster, session: aiohttp.ClientSession, queue: Any) -> dict[str, Any]:
    """SIGKILL the worker running an execution at its first progress; seconds until it moves again."""
    ws, execution_id = await start_execution(session, cluster.base, f"vitima-{uuid.uuid4().hex[:6]}",
                                             f"{cluster.site}/lento/p/0")
    killed_at, moved, completions = 0.0, float("nan"), 0
    async with ws:
        async for message in messages(ws):
            event, data = message["event"], message.get("data", {})
            if event == "EXECUCAO_STATUS" and not killed_at and data.get("progresso", {}).get("atual", 0) >= 1:
                job = await queue.job(f"execution:{execution_id}")
                pid = int(job.worker_id.rsplit("-", 1)[1])  # the worker's id is host-pid
                victim = next(w for w in cluster.workers if w.pid == pid)
                killed_at = time.monotonic()
                victim.kill()
                cluster.workers.remove(victim)
            elif event == "EXECUCAO_STATUS" and killed_at and "tentativa" in data and moved != moved:
                moved = time.monotonic() - killed_at
            elif event in ("EXECUCAO_CONCLUIDA", "EXECUCAO_ERRO"):
                completions += event == "EXECUCAO_CONCLUIDA"
                await asyncio.sleep(2.0)  # a second final event would come now
                break
    return {"seconds": moved, "completions": completions}


async def wait_worker(queue: Any, pid: int, timeout: float = 60.0) -> None:
    """Until the worker with this pid has registered with the queue (its id is host-pid)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(str(worker).endswith(f"-{pid}") for worker in (await queue.info()).get("workers") or {}):
            return
        await asyncio.sleep(0.3)
    raise RuntimeError(f"worker {pid} did not register with the queue in {timeout:g} s")


# -- the run ----------------------------------------------------------------------------------------

async def measure_mode(cluster: Cluster, rounds: int, idle_seconds: float) -> dict[str, Any]:
    """The idle gateway, then one warm-up round (worker pools start) and `rounds` measured rounds."""
    async with aiohttp.ClientSession() as session:
        quiet = await window(cluster, session, idle(idle_seconds))
        await round_of_four(cluster, session)
        cluster.layout.release_gateway_children(cluster.gateway.pid)
        measured = [await round_of_four(cluster, session) for _ in range(rounds)]
        body = contracts_csv(UPLOAD_ROWS)
        uploads = [await upload(cluster, session, body) for _ in range(rounds)]
    keys = ("pages_per_s", "lag_p99_ms", "ping_p50_ms", "ping_p99_ms", "foreign_cores")
    return {"idle": quiet, "rounds": measured, **{key: median([r[key] for r in measured]) for key in keys},
            "upload": {"rounds": uploads, **{key: median([r[key] for r in uploads]) for key in keys[1:]},
                       "seconds": median([r["seconds"] for r in uploads])}}


async def queue_modes(cluster: Cluster, rounds: int, idle_seconds: float, kills: int) -> dict[str, Any]:
    """1 worker, 2 workers, then `kills` SIGKILLs of the worker running an execution."""
    from saq.queue.redis import RedisQueue

    assert cluster.redis is not None
    queue = RedisQueue.from_url(cluster.redis.url, name=QUEUE)
    await queue.connect()
    try:
        await wait_worker(queue, cluster.add_worker().pid)
        one = await measure_mode(cluster, rounds, idle_seconds)
        await wait_worker(queue, cluster.add_worker().pid)
        two = await measure_mode(cluster, rounds, 0.0)
        two["idle"] = one["idle"]
        takeovers = []
        async with aiohttp.ClientSession() as session:
            for _ in range(kills):
                takeovers.append(await takeover(cluster, session, queue))
                await wait_worker(queue, cluster.add_worker().pid)  # back to two workers
    finally:
        await queue.disconnect()
    return {"1 worker": one, "2 workers": two, "takeovers": takeovers}


def run(args: argparse.Namespace, logdir: Path, layout: Layout) -> dict[str, Any]:
    rounds, kills, idle_seconds = (1, 1, 3.0) if args.quick else (args.rounds, 3, 10.0)
    site_port = free_port()
    site = Child("site", ["site", "--port", str(site_port)], logdir, cpus=layout.others)
    redis: RedisServer | None = None
    clusters: list[Cluster] = []
    report: dict[str, Any] = {}
    try:
        wait_http(f"http://127.0.0.1:{site_port}/robots.txt", 30)
        site_url = f"http://127.0.0.1:{site_port}"
        clusters.append(Cluster(logdir, site_url, None, layout))
        clusters[-1].start()
        print("embedded mode: measuring", flush=True)
        report["embedded"] = asyncio.run(measure_mode(clusters[-1], rounds, idle_seconds))
        clusters.pop().stop()
        redis = RedisServer(logdir, layout.others)
        clusters.append(Cluster(logdir, site_url, redis, layout))
        clusters[-1].start()
        print("queue mode: measuring", flush=True)
        report.update(asyncio.run(queue_modes(clusters[-1], rounds, idle_seconds, kills)))
    finally:
        for cluster in clusters:
            cluster.stop()
        if redis is not None:
            redis.stop()
        site.stop()
    return report


def row(name: str, result: dict[str, Any], pages: bool = True) -> list[str]:
    return [name, fmt(result["pages_per_s"], "{:.1f}") if pages else "—", fmt(result["lag_p99_ms"], "{:.2f}"),
            fmt(result["ping_p50_ms"], "{:.2f}"), fmt(result["ping_p99_ms"], "{:.2f}"),
            fmt(result["foreign_cores"], "{:.2f}")]


def uploaded(mode: dict[str, Any]) -> dict[str, Any]:
    """A mode's upload figures as a table row reads them (no pages)."""
    return {**mode["upload"], "pages_per_s": float("nan")}


def print_report(report: dict[str, Any], header: dict[str, Any]) -> None:
    print(json.dumps(header, indent=1))
    rows = [row("gateway idle, embedded (1,000 idle clients)", report["embedded"]["idle"], pages=False),
            row("embedded: 4 executions in the gateway (baseline)", report["embedded"]),
            row("gateway idle, queue mode (Redis, 1 worker)", report["1 worker"]["idle"], pages=False),
            row("queue: 4 executions, 1 worker", report["1 worker"]),
            row("queue: 4 executions, 2 workers", report["2 workers"]),
            row(f"upload of {UPLOAD_ROWS:,} contracts, embedded", uploaded(report["embedded"]), pages=False),
            row(f"upload of {UPLOAD_ROWS:,} contracts, queue (1 worker)", uploaded(report["1 worker"]), pages=False)]
    print(markdown_table(["mode", "pages/s", "loop lag p99 ms (/metrics)", "ping p50 ms", "ping p99 ms",
                          "other processes' CPU (cores)"], rows))
    times = [t["seconds"] for t in report["takeovers"]]
    print(f"\nSIGKILL → EXECUCAO_STATUS with tentativa: median {fmt(median(times), '{:.1f}')} s over "
          f"{len(times)} ({', '.join(fmt(t, '{:.1f}') for t in times)}); completions per execution: "
          f"{[t['completions'] for t in report['takeovers']]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    child = sub.add_parser("child", help="internal: one child process of the bench")
    child.add_argument("role", choices=["site", "serve", "worker", "pinger"])
    child.add_argument("--port", type=int)
    child.add_argument("--url")
    child.add_argument("--out")
    parser.add_argument("--quick", action="store_true", help="one round of everything")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per mode (default 3)")
    parser.add_argument("--no-pin", action="store_true", help="let the scheduler place every process")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    if args.command == "child":
        child_main(args)
        return 0
    raise_nofile()
    foreign = ForeignLoad()
    layout = Layout.of(not args.no_pin, foreign)
    if layout.others:
        os.sched_setaffinity(0, layout.others)  # this script and the idle clients it forks
    started = time.monotonic()
    logdir = Path(tempfile.mkdtemp(prefix="jobs-bench-"))
    print(f"logs of every process: {logdir}", flush=True)
    report = run(args, logdir, layout)
    header = {"commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                       cwd=BENCH.parent).stdout.strip(),
              "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
              "pinned": {"gateway": sorted(layout.gateway or []), "others": sorted(layout.others or [])},
              "seconds": round(time.monotonic() - started), "other_processes_cpu": foreign.stop()}
    print_report(report, header)
    if args.json:
        args.json.write_text(json.dumps({"header": header, "report": report}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
