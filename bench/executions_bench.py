"""Keyword executions: pages per second, extraction time per page, and the event loop's lag while an
execution runs beside 1,000 idle WebSocket connections.

    .venv/bin/python bench/executions_bench.py [--pages 200] [--idle 1000] [--runs 3]

The site (generated from the test fixture's articles) and the idle clients run in their own
processes; the Ponte app, the lag probe and the execution share one event loop, as in production.
Baseline, same run: the same execution with extraction on the event loop instead of the process pool.
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import statistics
import sys
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any, Callable

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from aiohttp import ClientSession, TCPConnector, web  # noqa: E402

from app.auth import issue_token  # noqa: E402
from app.factory import create_app  # noqa: E402
from app.settings import Settings  # noqa: E402
from engines.keywords.crawler import Crawler  # noqa: E402
from engines.keywords.extract import analyse_html  # noqa: E402
from engines.keywords.model import CrawlLimits  # noqa: E402
from engines.keywords.runner import ExecutionRunner, PageDone  # noqa: E402
from tests.fixtures.blog import TOPICS, article_body, page  # noqa: E402

ARTICLES = [(topic, slug, title, text) for topic, (_, items) in TOPICS.items() for slug, title, text in items]


def site_app(pages: int) -> web.Application:
    """A generated blog: /p/0 … /p/{pages-1}, each an article linking to the next ten."""
    async def handler(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        topic, slug, title, text = ARTICLES[n % len(ARTICLES)]
        links = "".join(f"<a href='/p/{m}'>artigo {m}</a> " for m in range(n * 10 + 1, min(n * 10 + 11, pages)))
        body = article_body(slug, f"{text} Edição {n}.", topic) + f"<p>{links}</p>"
        return web.Response(text=page(f"{title} {n}", body), content_type="text/html")
    app = web.Application()
    app.router.add_get("/p/{n}", handler)
    return app


def serve_site(pages: int, ready: Any) -> None:
    async def main() -> None:
        runner = web.AppRunner(site_app(pages), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ready.send(runner.addresses[0][1])
        await asyncio.Event().wait()
    asyncio.run(main())


def hold_idle(url: str, count: int, ready: Any) -> None:
    """Open `count` raw WebSocket connections and keep them open, answering pings."""
    async def main() -> None:
        async with ClientSession(connector=TCPConnector(limit=0)) as session:  # default: 100 at once
            sockets = [await session.ws_connect(url) for _ in range(count)]
            ready.send(len(sockets))
            await asyncio.gather(*(ws.receive() for ws in sockets))
    asyncio.run(main())


class InlineExecutor(Executor):
    """The baseline: extraction on the event loop's own thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


async def lag_probe(samples: list[float], stop: asyncio.Event, every: float = 0.01) -> None:
    """How late a 10 ms timer fires, in ms, until stopped."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + every
        await asyncio.sleep(every)
        samples.append((loop.time() - due) * 1000)


async def run_once(url: str, executor: Executor | None, pages: int) -> tuple[float, int, list[float]]:
    """One execution with a lag probe beside it: seconds, pages read, lag samples."""
    gate, stop, lag, done = asyncio.Event(), asyncio.Event(), [], 0
    gate.set()
    probe = asyncio.ensure_future(lag_probe(lag, stop))
    started = time.perf_counter()
    limits = CrawlLimits(max_pages=pages, concurrency=4)
    async with Crawler(limits, allow_private=True) as crawler:
        events = ExecutionRunner(crawler, executor).run(url, max_keywords=200, depth=5, timeout=10, gate=gate)
        async for event in events:
            done += isinstance(event, PageDone) and event.ok
    elapsed = time.perf_counter() - started
    stop.set()
    await probe
    return elapsed, done, lag


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


async def bench(args: argparse.Namespace) -> None:
    ctx = multiprocessing.get_context("spawn")
    site_recv, site_send = ctx.Pipe(False)
    site = ctx.Process(target=serve_site, args=(args.pages, site_send), daemon=True)
    site.start()
    url = f"http://127.0.0.1:{site_recv.recv()}/p/0"
    settings = Settings(jwt_secret="b" * 32, max_connections=args.idle + 100, idle_timeout=3600,
                        allow_private_urls=True, audit_log=False)
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    idle_recv, idle_send = ctx.Pipe(False)
    token = issue_token(settings, "bench")
    idle = ctx.Process(target=hold_idle, args=(f"http://127.0.0.1:{port}/ws?token={token}", args.idle, idle_send),
                       daemon=True)
    idle.start()
    await asyncio.get_running_loop().run_in_executor(None, idle_recv.recv)
    print(f"{args.idle} idle raw connections open; site of {args.pages} pages; {platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}")
    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver"))
    for future in [pool.submit(analyse_html, "<p>aquecimento</p>", url) for _ in range(4)]:
        future.result()  # workers started and their libraries imported before timing
    await extraction_times(url)
    rows = {"ponte (process pool)": [], "baseline (extraction on the loop)": []}
    for _ in range(args.runs):
        rows["ponte (process pool)"].append(await run_once(url, pool, args.pages))
        rows["baseline (extraction on the loop)"].append(await run_once(url, InlineExecutor(), args.pages))
    quiet: list[float] = []
    stop = asyncio.Event()
    probe = asyncio.ensure_future(lag_probe(quiet, stop))
    await asyncio.sleep(3)  # the probe samples an idle server for this long
    stop.set()
    await probe
    print(f"{'mode':36} {'pages/s':>8} {'lag p50':>8} {'lag p99':>8} {'lag max':>8}  "
          f"(medians of {args.runs} runs; lag in ms)")
    print(f"{'idle server, no execution':36} {'-':>8} {pct(quiet, 50):8.2f} {pct(quiet, 99):8.2f} {max(quiet):8.2f}")
    for name, runs in rows.items():
        rate = statistics.median(done / elapsed for elapsed, done, _ in runs)
        p50 = statistics.median(pct(lag, 50) for _, _, lag in runs)
        p99 = statistics.median(pct(lag, 99) for _, _, lag in runs)
        worst = statistics.median(max(lag) for _, _, lag in runs)
        print(f"{name:36} {rate:8.1f} {p50:8.2f} {p99:8.2f} {worst:8.2f}")
    pool.shutdown()
    idle.kill()
    site.kill()
    await runner.cleanup()


async def extraction_times(url: str) -> None:
    """Median extraction time of one page (one process, warm)."""
    async with ClientSession() as session:
        htmls = [await (await session.get(url.replace("/p/0", f"/p/{n}"))).text() for n in range(30)]
    analyse_html(htmls[0], url)
    times = []
    for n, html in enumerate(htmls):
        started = time.perf_counter()
        analyse_html(html, url)
        times.append((time.perf_counter() - started) * 1000)
    print(f"extraction per page: median {statistics.median(times):.1f} ms, max {max(times):.1f} ms "
          f"({len(htmls)} pages, ~{len(htmls[0]) // 1024} KB each)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(bench(parser.parse_args()))
