"""Background tasks stop for sure, even when a library swallows a cancellation (redis-py can, inside a
command: a shutdown then waited forever on the fan-out's publish loop)."""
from __future__ import annotations

import asyncio

from app.tasks import stop, stop_if_cancelled


async def swallow_once() -> None:
    """Like a library that catches the CancelledError of a command and returns normally."""
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        pass


async def test_a_loop_stops_after_a_swallowed_cancellation() -> None:
    """A loop that checks stop_if_cancelled ends at its next turn though the cancellation was swallowed."""
    async def loop() -> None:
        while True:
            stop_if_cancelled()
            await swallow_once()

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    await stop([task], timeout=5)
    assert task.cancelled()


async def test_stop_asks_again_a_task_that_let_it_go_by() -> None:
    """A task that swallowed the cancellation and waits again is cancelled a second time."""
    async def stubborn() -> None:
        await swallow_once()
        await asyncio.sleep(60)

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await stop([task], timeout=0.1)
    assert task.cancelled()
