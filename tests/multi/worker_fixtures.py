"""`python -m app worker` as subprocesses for the multi-process tests (started on a test's redis-server,
killable with any signal, and always cleaned up with every process they started, the forkserver and its
extraction processes included, even those a SIGKILL left behind), and what those tests read and do: SAQ's
job entries in Redis, execution records in the test's database, a sweep, a mark emitted the way a worker
emits."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from typing import Any, Callable

import psutil
import redis.asyncio as aioredis
import yarl

from app.db import DatabaseStore, open_database
from app.jobs import SWEEP, QueueJobs
from app.records import RedisRecordStore
from app.transport.emitter import Emitter
from app.worker import CODECS
from conftest import DATABASE, ROOT, SECRET, TIMEOUT, RedisProcess

READY = "jobs at a time from queue"  # the worker's start line (app/worker.py)
QUEUE = "socketio-jobs"  # "<REDIS_CHANNEL>-jobs" with the default channel
SWEEP_LOCK = f"saq:{QUEUE}:sweep"  # SAQ's cluster-wide lock that spaces sweeps SWEEP seconds apart
MARK = "TESTE_MARCA"  # an event a test emits to a room after a job's end, through a worker's emit path
# The settings of tests/functional/test_executions.py's SETTINGS, as a worker reads them.
WORKER_ENV = {"ALLOW_PRIVATE_URLS": "true", "EXTRACT_WORKERS": "1", "RATE_LIMIT_PER_SECOND": "100",
              "RATE_LIMIT_BURST": "100", "LOG_LEVEL": "INFO", "JWT_SECRET": SECRET, "PYTHONPATH": str(ROOT)}


class WorkerProcess:
    """One `python -m app worker`; its output is collected line by line as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._new_line = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())
        self.known: set[psutil.Process] = set()  # every descendant seen, to clean up after a SIGKILL

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def output(self) -> str:
        return "".join(self.lines)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.lines.append(line.decode(errors="replace"))
            self._new_line.set()
        self._new_line.set()

    async def read_until(self, needle: str, timeout: float = 3 * TIMEOUT) -> str:
        """The first line of its output containing `needle`, waiting for it to be written."""
        async with asyncio.timeout(timeout):
            seen = 0
            while True:
                for line in self.lines[seen:]:
                    if needle in line:
                        return line
                seen = len(self.lines)
                if self._reader.done():
                    raise AssertionError(f"worker output ended before {needle!r}:\n{self.output}")
                self._new_line.clear()
                await self._new_line.wait()

    def descendants(self) -> list[psutil.Process]:
        """Its live descendants now (remembered for the clean-up)."""
        try:
            found = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            found = []
        self.known.update(found)
        return found

    def signal(self, signum: int) -> None:
        self.descendants()
        self.proc.send_signal(signum)

    async def exited(self, timeout: float) -> int:
        """Its exit code, once it has exited (at most `timeout` seconds from now)."""
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def cleanup(self) -> None:
        """SIGTERM (then SIGKILL) it if it still runs, then kill whatever it started that outlived it."""
        if self.proc.returncode is None:
            self.signal(signal.SIGTERM)
            try:
                await self.exited(2 * TIMEOUT)
            except TimeoutError:
                self.proc.kill()
                await self.exited(TIMEOUT)
        for process in self.known:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()  # psutil checks the pid is still the process it saw (no reused pid is hit)
        assert not await all_gone(list(self.known)), "processes a worker started could not be killed"
        try:  # the output pipe closes when the last process holding it is gone
            await asyncio.wait_for(self._reader, TIMEOUT)
        except TimeoutError:
            pass


class Workers:
    """The workers a test started: `await workers.start(redis, WORKER_CONCURRENCY="1")` returns one ready
    (it has logged its start line); `stop()` cleans every one of them up."""

    def __init__(self) -> None:
        self.started: list[WorkerProcess] = []

    async def start(self, redis: RedisProcess, **env: str) -> WorkerProcess:
        environ = {**os.environ, **WORKER_ENV, "REDIS_URL": redis.url, **env}
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "app", "worker", cwd=ROOT, env=environ,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        worker = WorkerProcess(proc)
        self.started.append(worker)
        await worker.read_until(READY)
        return worker

    async def stop(self) -> None:
        failures = []
        for worker in self.started:
            try:
                await worker.cleanup()
            except Exception as exc:  # noqa: BLE001 - clean up the others first, then say so
                failures.append(exc)
        if failures:
            raise failures[0]


class QueueView:
    """What Redis holds about a job (SAQ's entry for it), and the execution's record in the database."""

    def __init__(self, client: Any) -> None:
        self.redis = client

    async def job(self, execution_id: str) -> dict[str, Any]:
        raw = await self.redis.get(f"saq:job:{QUEUE}:execution:{execution_id}")
        return json.loads(raw) if raw else {}

    async def record(self, execution_id: str) -> dict[str, Any]:
        """The execution's record, as the test's database holds it (results are not kept in Redis)."""
        database = open_database(DATABASE["url"])
        try:
            return await DatabaseStore(database).get("execution", execution_id) or {}
        finally:
            await database.close()

    async def until_job(self, execution_id: str, condition: Callable[[dict[str, Any]], bool],
                        timeout: float = 3 * TIMEOUT) -> dict[str, Any]:
        """SAQ's entry for the job once `condition` holds for it (a real condition, polled briefly)."""
        deadline = time.monotonic() + timeout
        while not condition(job := await self.job(execution_id)):
            assert time.monotonic() < deadline, f"job {execution_id} never got there: {job}"
            await asyncio.sleep(0.05)
        return job

    async def hold_sweeps(self, seconds: int = 60) -> None:
        """No worker sweeps for `seconds` (or until `sweep_now`): the cluster-wide lock a sweep takes is held."""
        await self.redis.set(SWEEP_LOCK, 1, ex=seconds)

    async def running(self, workers: list[WorkerProcess], execution_id: str) -> WorkerProcess:
        """The worker process running the job, as SAQ recorded it (its worker id ends with the pid)."""
        job = await self.until_job(execution_id, lambda job: job.get("status") == "active")
        found = re.search(r"\d+$", job["worker_id"])
        running = [worker for worker in workers if found and worker.pid == int(found.group())]
        assert len(running) == 1, f"no worker of {[w.pid for w in workers]} runs the job: {job}"
        return running[0]


async def sweep_now(redis_url: str) -> list[str]:
    """Run SAQ's sweep now, as a live worker's timer may run it at any moment: the jobs it took back."""
    client = aioredis.from_url(redis_url)
    jobs = QueueJobs(RedisRecordStore(client, 60.0), client, QUEUE, 1000)
    await jobs.open()
    try:
        await client.delete(SWEEP_LOCK)
        return await jobs.queue.sweep(lock=SWEEP)  # type: ignore[no-any-return]
    finally:
        await jobs.queue.disconnect()
        await client.aclose()


async def mark(redis_url: str, room: str) -> None:
    """Emit MARK to `room` the way a worker emits (app.transport.emitter): a client in the room gets it
    after everything emitted to the room before it."""
    client = aioredis.from_url(redis_url)
    try:
        await Emitter(client, "socketio", 1000, CODECS).emit(MARK, {}, namespace="/omni", to=[room])
    finally:
        await client.aclose()


async def all_gone(processes: list[psutil.Process], timeout: float = TIMEOUT) -> list[psutil.Process]:
    """The processes still alive after up to `timeout` seconds (a zombie counts as gone)."""
    def alive(process: psutil.Process) -> bool:
        try:
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
    deadline = time.monotonic() + timeout
    while (left := [p for p in processes if alive(p)]) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return left


class Address:
    """A gateway run as `python -m app` (conftest.served_app), addressed as the client fixtures address one."""

    def __init__(self, base: str) -> None:
        self.base = yarl.URL(base)

    def make_url(self, path: str) -> yarl.URL:
        return self.base.with_path(path)
