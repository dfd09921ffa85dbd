"""Stopping background tasks for sure, even when a library swallows a cancellation; processes that end with
the one they work for."""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import time
from typing import Any, Coroutine, TypeVar

import psutil

log = logging.getLogger("ponte")
T = TypeVar("T")


class Stopped(Exception):
    """What a worker thread waited for on the event loop was called off."""


def stop_if_cancelled() -> None:
    """Raise CancelledError if this task was asked to stop: redis-py can swallow a cancellation that lands
    inside a command, and a loop that went on would keep its task (and a shutdown waiting on it) alive."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def stop(tasks: list[asyncio.Task[Any]], timeout: float = 2.0) -> None:
    """Cancel tasks and wait for them, asking again (once) those that let a cancellation go by."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=timeout)


async def every(interval: float, job: Any, *args: Any) -> None:
    """Run job every interval seconds; a failure is logged and the loop goes on (not a cancellation)."""
    while True:
        stop_if_cancelled()
        await asyncio.sleep(interval)
        try:
            await job(*args)
        except Exception:  # noqa: BLE001
            log.exception("periodic job %s failed", job.__name__)


def die_with(pid: int, every: float = 0.5) -> None:
    """Exit as soon as process `pid` has ended, whatever ended it (SIGKILL included). A pool process's
    parent is multiprocessing's forkserver, which lives as long as any process it started, so nothing
    else ends the pool when the process that used it is killed; a thread watching that process does."""
    try:
        owner = psutil.Process(pid)
    except psutil.NoSuchProcess:
        os._exit(0)

    def ended() -> bool:
        try:  # is_running also tells a reused pid from the owner; a killed owner may linger as a zombie
            return not owner.is_running() or owner.status() == psutil.STATUS_ZOMBIE
        except psutil.Error:
            return True

    def watch() -> None:
        while not ended():
            time.sleep(every)
        os._exit(0)

    threading.Thread(target=watch, name="die-with-owner", daemon=True).start()


def on_loop(coroutine: Coroutine[Any, Any, T], loop: asyncio.AbstractEventLoop, stop: threading.Event) -> T:
    """From a worker thread: what `coroutine` returns, run on `loop`. Once `stop` is set the coroutine is
    cancelled and Stopped raised, so that the thread never waits on a loop that is going away."""
    future = asyncio.run_coroutine_threadsafe(coroutine, loop)
    while not stop.is_set():
        done, _ = concurrent.futures.wait([future], timeout=0.2)
        if done:
            return future.result()
    future.cancel()
    raise Stopped
