"""Stopping background tasks for sure, even when a library swallows a cancellation."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("ponte")


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
