"""Heavy work as jobs: executions and investigations, inside this process or on worker processes.

Without REDIS_URL (the embedded default) a job runs as a task of the server that accepted it. With
REDIS_URL it is put on a queue of SAQ (https://github.com/tobymao/saq: asyncio, Redis only, worker
heartbeats, a sweep that takes stuck jobs back, abort) and runs on whichever `python -m app worker`
takes it; gateways only accept, relay and fan out. Both ways run the same job function, through
`Jobs.attempt`.

What happens when a process dies:
- A worker killed (SIGKILL, a lost machine): its jobs stop beating. SAQ's sweep, which some live worker
  runs every SWEEP seconds, takes each job whose last beat is older than HEARTBEAT back onto the queue,
  and another worker starts it again: at worst HEARTBEAT + 2 × SWEEP + SWEEP_ABORT_WAIT (21 s) after its
  last beat, as the sweep's lock can make a worker just miss its turn (measured: 9 to 18 s, mostly 14 s).
  The attempt after the MAX_ATTEMPTS-th does not run: it reports the failure to the job's followers.
- A worker stopped (SIGTERM, a deploy): SAQ cancels its running jobs and puts them back on the queue
  at once; another worker takes them up. Such a hand-back is counted apart (in Redis, with the job): it
  does not spend one of the MAX_ATTEMPTS, so a job outlives any number of deploys up to MAX_HANDBACKS.
- A gateway killed: nothing happens to jobs; their events reach the other gateways.
- Two attempts of one job at once (a worker that was only slow, or a race in the engine's sweep): each
  attempt first takes the job's lease in Redis (`records.claim`, renewed with every beat, free LEASE
  seconds after its holder stopped renewing it); an attempt that cannot take it ends without a word.
  A job's final event is emitted by whoever stores it first (`records.put_new`): never two, never none.
"""
from __future__ import annotations

import asyncio
import bisect
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from .errors import RATE_LIMIT_ERROR, PonteError
from .records import RecordStore
from .tasks import stop

log = logging.getLogger("ponte.jobs")

BEAT = 2.0  # seconds between two beats of a running attempt (SAQ's heartbeat and the lease's renewal)
LEASE = 8.0  # seconds a job stays held by an attempt that stopped beating: less than HEARTBEAT, so the lease
# of a job the sweep takes back (no beat for HEARTBEAT seconds) has always expired when it starts again
HEARTBEAT = 10  # seconds without a beat after which SAQ's sweep takes a running job back (an integer)
SWEEP = 5  # seconds between two sweeps, cluster-wide (an integer)
SWEEP_ABORT_WAIT = 1.0  # seconds a sweep waits for a live worker to give up a job it takes back
MAX_ATTEMPTS = 3  # attempts that run; the one after reports the failure
MAX_HANDBACKS = 20  # attempts handed back by a stopping worker that do not count among MAX_ATTEMPTS
HANDBACKS_TTL = 7 * 86400  # seconds a job's count of hand-backs is kept after the last one
KEEP_FINISHED = 3600  # seconds SAQ keeps a finished job's entry (ours live in the record store)
DURATION_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)  # seconds one attempt of a job took

# A job function: (job id, attempt number from 1) → None. It emits its own events and final event.
JobFunction = Callable[[str, int], Awaitable[None]]
Beat = Callable[[], Awaitable[None]]


class GaveUp(Exception):
    """The job was attempted MAX_ATTEMPTS times and never finished: every process that ran it died."""


@dataclass
class Stats:
    """What /metrics says of the jobs, refreshed every few seconds (`Jobs.refresh`): with a queue, for the
    whole cluster (every worker adds its attempts' durations to counters in Redis)."""

    queued: int = 0
    running: int = 0
    workers: int | None = None  # None: jobs run inside the server
    # kind → [attempts, their seconds, retries (attempts after a first), given up, bucket counts...]
    kinds: dict[str, list[float]] = field(default_factory=dict)

    def row(self, kind: str) -> list[float]:
        return self.kinds.setdefault(kind, [0.0] * (4 + len(DURATION_BUCKETS) + 1))

    def add(self, kind: str, seconds: float, number: int) -> None:
        row = self.row(kind)
        row[0] += 1
        row[1] += seconds
        row[2] += number > 1
        row[4 + bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1


class Collector:
    """`ponte_jobs_queued`, `ponte_jobs_running`, `ponte_workers`, `ponte_job_retries_total`,
    `ponte_jobs_given_up_total` and `ponte_job_duration_seconds`, from the last refreshed Stats."""

    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs

    def collect(self) -> Iterator[Metric]:
        stats = self.jobs.stats
        yield GaugeMetricFamily("ponte_jobs_queued", "Jobs waiting for a worker", value=stats.queued)
        running = stats.running if self.jobs.mode == "queue" else self.jobs.running
        yield GaugeMetricFamily("ponte_jobs_running", "Jobs running (on every worker)", value=running)
        if stats.workers is not None:
            yield GaugeMetricFamily("ponte_workers", "Worker processes alive", value=stats.workers)
        retries = CounterMetricFamily("ponte_job_retries", "Attempts of a job after its first (its process died)",
                                      labels=["kind"])
        given_up = CounterMetricFamily("ponte_jobs_given_up", "Jobs failed after MAX_ATTEMPTS attempts died",
                                       labels=["kind"])
        durations = HistogramMetricFamily("ponte_job_duration_seconds", "Time one attempt of a job took",
                                          labels=["kind"])
        for kind, row in sorted(stats.kinds.items()):
            retries.add_metric([kind], row[2])
            given_up.add_metric([kind], row[3])
            running_total, buckets = 0.0, []
            for bound, count in zip([*map(str, DURATION_BUCKETS), "+Inf"], row[4:]):
                running_total += count
                buckets.append((bound, running_total))
            durations.add_metric([kind], buckets, row[1])
        yield from (retries, given_up, durations)


class Jobs:
    """The embedded way: every job runs at once as a task of this process."""

    mode = "embedded"

    def __init__(self, records: RecordStore) -> None:
        self.records = records
        self.functions: dict[str, JobFunction] = {}
        self.failures: dict[str, Callable[[str], Awaitable[None]]] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.running = 0  # attempts running in this process
        self.stats = Stats()

    def register(self, kind: str, function: JobFunction, gave_up: Callable[[str], Awaitable[None]]) -> None:
        """`function` runs the jobs of `kind`; `gave_up(job id)` reports one attempted too many times."""
        self.functions[kind] = function
        self.failures[kind] = gave_up

    async def open(self) -> None:
        """Ready to submit (and, on a worker, to take) jobs."""

    def local(self, kind: str) -> int:
        """Jobs of `kind` running in this process."""
        return sum(key.startswith(f"{kind}:") for key in self.tasks)

    async def submit(self, kind: str, job_id: str) -> int:
        """Start the job; its position in the queue (0: started at once)."""
        task = asyncio.get_running_loop().create_task(self.attempt(kind, job_id, 1))
        self.tasks[f"{kind}:{job_id}"] = task
        task.add_done_callback(lambda _: self.tasks.pop(f"{kind}:{job_id}", None))
        return 0

    async def withdraw(self, kind: str, job_id: str) -> bool:
        """Take a job off the queue if it is still waiting there (True: it will never run)."""
        return False

    async def depth(self) -> int:
        """Jobs waiting for a worker."""
        return 0

    async def workers(self) -> int | None:
        """Workers alive (None: jobs run inside the server)."""
        return None

    async def close(self) -> None:
        await stop(list(self.tasks.values()), timeout=5.0)

    async def attempt(self, kind: str, job_id: str, number: int, beat: Beat | None = None,
                      failed: int | None = None) -> None:
        """Run one attempt of a job while holding its lease, beating every BEAT seconds. `number` counts
        every attempt (the clients see it); `failed`, the attempts before this one that died, plus one."""
        lease = f"job-lease:{kind}:{job_id}"
        if (number if failed is None else failed) > MAX_ATTEMPTS:
            log.warning("%s %s: attempt %d after %d that never finished; reporting the failure",
                        kind, job_id, number, MAX_ATTEMPTS)
            await self.failures[kind](job_id)
            await self.count(kind, 0.0, number, gave_up=True)
            return
        if not await self._take(lease):
            log.warning("%s %s: another attempt holds it; attempt %d ends here", kind, job_id, number)
            return
        beating = asyncio.get_running_loop().create_task(self._beat(lease, beat))
        self.running += 1
        started = time.monotonic()
        try:
            await self.functions[kind](job_id, number)
        finally:
            self.running -= 1
            await stop([beating])
            try:
                await self.records.release(lease)
                await self.count(kind, time.monotonic() - started, number)
            except Exception as exc:  # noqa: BLE001 - the lease expires by itself; a lost count is only a metric
                log.warning("job bookkeeping failed: %s", type(exc).__name__)

    async def count(self, kind: str, seconds: float, number: int, gave_up: bool = False) -> None:
        """Count one attempt (metrics), or a job given up."""
        if gave_up:
            self.stats.row(kind)[3] += 1
        else:
            self.stats.add(kind, seconds, number)

    async def refresh(self) -> None:
        """Bring `stats` up to date (embedded: they are this process's own)."""
        self.stats.running = self.running

    async def _take(self, lease: str) -> bool:
        """Take the job's lease, waiting up to LEASE seconds for it: an attempt that was just stopped may not
        have given it back (a stopping worker gives its jobs 1 s), a dead one's expires by then; an attempt
        still renewing it after that is alive, and this one is a duplicate."""
        deadline = time.monotonic() + LEASE + BEAT
        while not await self.records.claim(lease, LEASE):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(BEAT / 4)
        return True

    async def _beat(self, lease: str, beat: Beat | None) -> None:
        while True:
            await asyncio.sleep(BEAT)
            try:
                await self.records.renew(lease, LEASE)
                if beat is not None:
                    await beat()
            except Exception as exc:  # noqa: BLE001 - a missed beat is retried at the next one
                log.warning("job beat failed: %s", type(exc).__name__)


class QueueJobs(Jobs):
    """Jobs on SAQ's queue in Redis, run by `python -m app worker` processes."""

    mode = "queue"

    def __init__(self, records: RecordStore, client: Any, name: str, max_queued: int) -> None:
        super().__init__(records)
        from saq.queue.redis import RedisQueue

        class Queue(RedisQueue):  # type: ignore[misc]
            async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
                # SAQ waits `abort` seconds per stuck job for its worker to confirm; a worker that died
                # confirms nothing, and a dead worker's jobs are swept one after the other.
                return await super().sweep(lock, abort=min(abort, SWEEP_ABORT_WAIT))  # type: ignore[no-any-return]

        self.queue = Queue(client, name=name)
        self.max_queued = max_queued
        self._refresh_failing = False

    async def open(self) -> None:
        await self.queue.connect()

    async def submit(self, kind: str, job_id: str) -> int:
        waiting = await self.queue.count("queued")
        if waiting >= self.max_queued:
            raise PonteError(RATE_LIMIT_ERROR, "Fila de trabalhos cheia: tente mais tarde",
                             {"limite": self.max_queued, "na_fila": waiting})
        await self.queue.enqueue(kind, key=f"{kind}:{job_id}", timeout=0, heartbeat=HEARTBEAT,
                                 retries=MAX_ATTEMPTS + 1 + MAX_HANDBACKS, ttl=KEEP_FINISHED, kwargs={"job_id": job_id})
        return waiting + 1

    async def withdraw(self, kind: str, job_id: str) -> bool:
        from saq.job import Status

        job = await self.queue.job(f"{kind}:{job_id}")
        if job is None or job.status != Status.QUEUED:
            return False
        await self.queue.abort(job, "withdrawn")
        return True

    async def depth(self) -> int:
        return int(await self.queue.count("queued"))

    async def workers(self) -> int | None:
        info = await self.queue.info()
        return len(info.get("workers") or {})

    def _counters(self, kind: str) -> str:
        return f"{self.queue.name}:stats:{kind}"

    async def count(self, kind: str, seconds: float, number: int, gave_up: bool = False) -> None:
        """Add one attempt to the cluster's counters in Redis: [attempts, seconds, retries, given up, buckets]."""
        async with self.queue.redis.pipeline(transaction=False) as pipe:
            key = self._counters(kind)
            if gave_up:
                pipe.hincrby(key, "3", 1)
            else:
                pipe.hincrby(key, "0", 1)
                pipe.hincrbyfloat(key, "1", seconds)
                pipe.hincrby(key, "2", int(number > 1))
                pipe.hincrby(key, str(4 + bisect.bisect_left(DURATION_BUCKETS, seconds)), 1)
            await pipe.execute()

    async def refresh(self) -> None:
        """Read the queue's depth, the jobs running, the workers alive and the counters from Redis (while
        Redis does not answer, the last reading stays, and /readyz says Redis is down)."""
        try:
            await self._refresh()
        except Exception as exc:  # noqa: BLE001 - said once per outage
            if not self._refresh_failing:
                log.warning("job statistics not read from Redis: %s", type(exc).__name__)
            self._refresh_failing = True
        else:
            self._refresh_failing = False

    async def _refresh(self) -> None:
        stats = Stats(queued=int(await self.queue.count("queued")), running=int(await self.queue.count("active")),
                      workers=await self.workers())
        for kind in self.functions:
            row: dict[Any, Any] = await self.queue.redis.hgetall(self._counters(kind))  # type: ignore[misc]
            values = stats.row(kind)
            for index, value in row.items():
                values[int(index)] = float(value)
        self.stats = stats

    def worker(self, concurrency: int, worker_id: str, metadata: dict[str, Any]) -> Any:
        """A SAQ worker running the registered functions, `concurrency` jobs at a time."""
        from saq import Worker

        def function(kind: str) -> Any:
            async def run(ctx: dict[str, Any], *, job_id: str) -> None:
                job, handbacks = ctx["job"], self._handbacks(kind, job_id)
                handed_back = min(int(await self.queue.redis.get(handbacks) or 0), MAX_HANDBACKS)
                try:
                    await self.attempt(kind, job_id, job.attempts, beat=job.update,
                                       failed=job.attempts - handed_back)
                except asyncio.CancelledError:
                    if worker.event.is_set():  # this worker stops (a deploy): handed back, not failed
                        await self._count_handback(handbacks)
                    raise
            return kind, run

        worker = Worker(self.queue, functions=[function(kind) for kind in self.functions], concurrency=concurrency,
                        id=worker_id, metadata=metadata,
                        timers={"sweep": SWEEP, "abort": 1, "worker_info": 5, "schedule": 1})
        return worker

    async def _count_handback(self, key: str) -> None:
        """Count a hand-back; Redis unreachable, it is not counted (the next attempt spends one of
        MAX_ATTEMPTS: the safe side) and the CancelledError that stops the job is not replaced."""
        try:
            async with self.queue.redis.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.expire(key, HANDBACKS_TTL)
                await pipe.execute()
        except Exception as exc:  # noqa: BLE001
            log.warning("hand-back not counted (%s): the next attempt counts as one", type(exc).__name__)

    def _handbacks(self, kind: str, job_id: str) -> str:
        return f"{self.queue.name}:handbacks:{kind}:{job_id}"
