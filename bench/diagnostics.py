"""Bench-only diagnostics for the Python servers.

`--gc-stats`: GET /bench/gc reports collections, seconds and objects collected per generation of
CPython's cyclic GC since start and gc.get_count(); `?tracked=1` adds the number of tracked objects;
`?types=1` lists the most numerous types among them instead, `?tasks=1` the live asyncio tasks and
exceptions by where they stand (for leak hunting); `?collect=1` runs a full collection first.
bench/run.py starts the Python servers with it (a callback per collection: two clock reads) and reads
it outside the CPU-time windows, to say how much of a figure was the GC.
`--tracemalloc`: GET /bench/tracemalloc?mark=1 takes a snapshot; ?diff=1 returns the source lines
whose allocations grew most since the mark (for memory per connection).
"""
from __future__ import annotations

import collections
import gc
import time
import tracemalloc
from typing import Any

from aiohttp import web


class GcStats:
    def __init__(self) -> None:
        self.started = 0.0
        self.seconds = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]
        self.collected = [0, 0, 0]

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
            return
        generation = info["generation"]
        self.seconds[generation] += time.perf_counter() - self.started
        self.collections[generation] += 1
        self.collected[generation] += info.get("collected", 0)

    def report(self, tracked: bool = False) -> dict[str, Any]:
        out = {"seconds": self.seconds, "collections": self.collections, "collected": self.collected,
               "count": gc.get_count(), "threshold": gc.get_threshold()}
        if tracked:  # walks every tracked object: only when asked
            out["tracked"] = len(gc.get_objects())
        return out

    @staticmethod
    def tasks(top: int = 30) -> list[tuple[str, int]]:
        """Live asyncio tasks and exceptions the GC tracks, by where they are (for leak hunting)."""
        import asyncio
        counts: collections.Counter[str] = collections.Counter()
        for o in gc.get_objects():
            if isinstance(o, asyncio.Task):
                coro = o.get_coro()
                frame = getattr(coro, "cr_frame", None)
                where = f"{frame.f_code.co_filename.split('site-packages/')[-1]}:{frame.f_lineno}" if frame else "-"
                state = "done" if o.done() else "pending"
                counts[f"task {state} {getattr(coro, '__qualname__', coro)} at {where}"] += 1
            elif isinstance(o, BaseException):
                tb = o.__traceback__
                while tb is not None and tb.tb_next is not None:
                    tb = tb.tb_next
                where = f"{tb.tb_frame.f_code.co_filename.split('site-packages/')[-1]}:{tb.tb_lineno}" if tb else "-"
                counts[f"exception {type(o).__name__} raised at {where}"] += 1
        return counts.most_common(top)

    @staticmethod
    def types(top: int = 30) -> list[tuple[str, int]]:
        """The most numerous types among the objects the GC tracks (for leak hunting)."""
        counts = collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())
        return counts.most_common(top)


def install_gc_stats(app: web.Application) -> None:
    stats = GcStats()
    gc.callbacks.append(stats)

    async def report(request: web.Request) -> web.Response:
        if "collect" in request.query:  # a full collection first: what is left is really referenced
            gc.collect()
        if "tasks" in request.query:
            return web.json_response(stats.tasks(int(request.query.get("top", "30"))))
        if "types" in request.query:
            return web.json_response(stats.types(int(request.query.get("top", "30"))))
        return web.json_response(stats.report(tracked="tracked" in request.query))

    app.router.add_get("/bench/gc", report)


def install_tracemalloc(app: web.Application, frames: int = 12) -> None:
    tracemalloc.start(frames)
    marks: dict[str, tracemalloc.Snapshot] = {}

    async def report(request: web.Request) -> web.Response:
        gc.collect()
        snapshot = tracemalloc.take_snapshot().filter_traces([
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap>")])
        if "mark" in request.query:
            marks["mark"] = snapshot
            return web.json_response({"marked": True})
        if "mark" not in marks:
            raise web.HTTPBadRequest(text="mark first")
        key = request.query.get("by", "lineno")
        limit = int(request.query.get("top", "40"))
        stats = snapshot.compare_to(marks["mark"], key)
        total = sum(s.size_diff for s in stats)
        rows = []
        for s in stats[:limit]:
            frames = [f"{f.filename.split('site-packages/')[-1]}:{f.lineno}" for f in s.traceback]
            rows.append({"size_diff": s.size_diff, "count_diff": s.count_diff, "where": frames})
        return web.json_response({"total_diff": total, "top": rows})

    app.router.add_get("/bench/tracemalloc", report)


def install(app: web.Application, gc_stats: bool, trace: bool) -> None:
    if gc_stats:
        install_gc_stats(app)
    if trace:
        install_tracemalloc(app)
