"""Results in a database (issue 14): storing a 200,000-row investigation and an execution of 1,000 keywords
through Ponte's own store code, on SQLite and PostgreSQL: rows/s, the event loop's lag while it writes,
and the size on disk.

    python bench/db_bench.py                      # SQLite and PostgreSQL, 3 repeats (see bench/DB.md)
    python bench/db_bench.py --backend sqlite     # one of them
    python bench/db_bench.py --batch 20000        # contracts per statement (default: app/db/contracts.BATCH)
    python bench/db_bench.py --json out.json

Each repeat uses a database of its own: a new SQLite file in a temporary directory, or a throwaway
database on the PostgreSQL server at POSTGRES_ADMIN (127.0.0.1:5432, user postgres, trust), dropped
afterwards. It is migrated (app/db/migrate.py) and used through `Records` (app/db/store.py), on the loop a
serving process runs (uvloop when installed, and its collector's settings, as `python -m app`):

- *contracts*: an uploaded investigation's 200,000 contracts (the sample's rows repeated, parsed by the
  upload's own parser beforehand) kept with `app.uploads.keep`, as a job does, then read back with
  `app.uploads.read_back`, as a later attempt does;
- *execution*: 10 executions of 1,000 keywords and 50 clusters each, one after the other, each stored as
  its final save is (`records.put("execution", …)`: its document, then its keyword and cluster rows).

Loop lag: app/sampler.py's LoopLag, on the same loop, probing every millisecond (not its 100 ms: a
write lasts well under a second); the p99 and the worst probe over each write. rows/s: the rows written
(or read) / the wall time of the call(s). Size: SQLite's file after a WAL checkpoint, before and after;
PostgreSQL's `pg_total_relation_size` (table, indexes, TOAST) summed over the tables written.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import psutil  # noqa: E402
from sqlalchemy import text  # noqa: E402

from app import uploads  # noqa: E402
from app.db import DatabaseStore, Records, open_database  # noqa: E402
from app.db.contracts import BATCH  # noqa: E402
from app.db.migrate import upgrade  # noqa: E402
from app.factory import GC_THRESHOLDS, new_event_loop  # noqa: E402
from app.records import MemoryRecordStore  # noqa: E402
from app.sampler import LoopLag  # noqa: E402
from engines.contracts.model import Contract  # noqa: E402
from engines.contracts.records import parse_csv  # noqa: E402
from load import median, percentile  # noqa: E402
from redis_bench import markdown_table  # noqa: E402

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CONTRACT_ROWS = 200_000
KEYWORDS, CLUSTERS, EXECUTIONS = 1000, 50, 10
TICK = 0.001  # seconds between two probes of the loop
TABLES = {"contracts": ("contracts",), "execution": ("executions", "keywords", "clusters")}


def sample_contracts(rows: int) -> list[Contract]:
    """`rows` contracts: the sample's rows repeated, through the upload's parser."""
    header, *lines = (BENCH.parent / "engines/contracts/data/sample_contracts.csv").read_text().splitlines()
    return parse_csv("\n".join([header, *(lines[n % len(lines)] for n in range(rows))]), rows)


def investigation_doc(inv_id: str, rows: int) -> dict[str, Any]:
    now = time.time()
    return {"investigation_id": inv_id, "title": "bench", "query": None, "language": "pt", "creator_sub": "bench",
            "creator_session": None, "session_owner": "bench", "read_key": "k", "links": {}, "status": "running",
            "progress": 0.0, "message": "", "records": rows, "source": "upload", "filters": {}, "anomalies": [],
            "anomalies_total": 0, "findings": [], "summary": {}, "report_url": None, "created_at": now,
            "updated_at": now}


def execution_doc(execution_id: str) -> dict[str, Any]:
    """A finished execution with KEYWORDS keywords in CLUSTERS clusters, as its final save stores it."""
    now = time.time()
    keywords = [{"termo": f"termo {n} de uma execução", "frequencia": n % 17 + 1, "relevancia": 1 / (n + 1),
                 "posicao": n + 1, "url": f"https://blog.example/p/{n % 50}", "cluster_id": f"c{n % CLUSTERS}"}
                for n in range(KEYWORDS)]
    clusters = [{"id": f"c{n}", "nome": f"grupo {n}", "keywords": [k["termo"] for k in keywords[n::CLUSTERS]],
                 "tamanho": KEYWORDS // CLUSTERS, "relevancia_media": 0.5} for n in range(CLUSTERS)]
    return {"id": execution_id, "owner": "bench", "status": "concluida", "config": {"blog_url": "https://b.example"},
            "origin": "", "progress": {"total": 50, "atual": 50, "percentual": 100.0}, "keywords_encontradas": KEYWORDS,
            "started_at": now, "updated_at": now, "final": {"execucao_id": execution_id}, "keywords": keywords,
            "clusters": clusters}


# -- databases ----------------------------------------------------------------------------------------

async def admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_ADMIN, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


class Target:
    """One repeat's database: its URL, made before and removed after; its size on disk."""

    def __init__(self, backend: str, directory: Path) -> None:
        self.backend, self.name = backend, f"ponte_bench_{uuid.uuid4().hex[:12]}"
        self.file = directory / f"{self.name}.sqlite3"
        self.url = (f"sqlite:///{self.file}" if backend == "sqlite"
                    else POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{self.name}")

    async def create(self) -> None:
        if self.backend == "postgresql":
            await admin(f'CREATE DATABASE "{self.name}"')

    async def drop(self) -> None:
        if self.backend == "postgresql":
            await admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        else:
            for path in self.file.parent.glob(f"{self.file.name}*"):
                path.unlink()

    async def size(self, records: Records, kind: str) -> int:
        """Bytes on disk: SQLite's whole file (after a checkpoint), or PostgreSQL's tables of `kind`."""
        if self.backend == "sqlite":  # outside any timed window: a connection of its own, blocking
            with contextlib.closing(sqlite3.connect(self.file)) as connection:
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return self.file.stat().st_size
        database = records.durable.database
        names = ", ".join(f"'{name}'" for name in TABLES[kind])
        async with database.connection() as connection:
            query = f"SELECT sum(pg_total_relation_size(oid)) FROM pg_class WHERE relname IN ({names})"
            return int((await connection.execute(text(query))).scalar() or 0)


# -- one repeat -----------------------------------------------------------------------------------

def busy() -> tuple[float, float]:
    """CPU seconds used so far by the whole machine and by this process."""
    machine, mine = psutil.cpu_times(), psutil.Process().cpu_times()
    return machine.user + machine.nice + machine.system, mine.user + mine.system


async def timed(work: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    """Seconds `work` took, the loop's lags (ms) probed every TICK meanwhile, and the CPU other processes used
    (cores; PostgreSQL's server among them)."""
    lag = LoopLag(interval=TICK, window=10_000_000)
    probe = asyncio.get_running_loop().create_task(lag.run())
    await asyncio.sleep(2 * TICK)  # the probe is running
    lag.recent.clear()
    started, (machine, mine) = time.perf_counter(), busy()
    await work()
    seconds, (machine_after, mine_after) = time.perf_counter() - started, busy()
    probe.cancel()
    lags = [value * 1000 for value in lag.recent]
    return {"seconds": seconds, "lag_p99_ms": percentile(lags, 99), "lag_max_ms": max(lags, default=0.0),
            "probes": len(lags), "other_cores": ((machine_after - machine) - (mine_after - mine)) / seconds}


def figures(rows: int, timing: dict[str, Any], size: int | None = None) -> dict[str, Any]:
    return {"rows": rows, "rows_per_s": rows / timing["seconds"], "bytes": size, **timing}


async def contracts_phase(target: Target, records: Records, found: list[Contract], batch: int) -> dict[str, Any]:
    inv_id = f"INV-BENCH-{uuid.uuid4().hex[:8]}"
    await records.put("investigation", inv_id, investigation_doc(inv_id, len(found)))
    before = await target.size(records, "contracts")
    timing = await timed(lambda: uploads.keep(records, inv_id, found, batch))
    written = figures(len(found), timing, await target.size(records, "contracts") - before)
    back: list[Contract] = []

    async def read() -> None:
        back.extend(await uploads.read_back(records, inv_id, len(found), batch))
    timing = await timed(read)
    assert back == found, "the contracts read back differ from those written"
    return {"write": written, "read": figures(len(back), timing)}


async def execution_phase(target: Target, records: Records) -> dict[str, Any]:
    docs = [execution_doc(f"exec_bench{n:04d}{uuid.uuid4().hex[:6]}") for n in range(EXECUTIONS)]
    before = await target.size(records, "execution")

    async def store() -> None:
        for doc in docs:
            await records.put("execution", doc["id"], doc)
    timing = await timed(store)
    size = (await target.size(records, "execution") - before) // EXECUTIONS
    return {"write": figures(EXECUTIONS * (KEYWORDS + CLUSTERS + 1), timing, size)}


async def repeat(backend: str, directory: Path, found: list[Contract], batch: int) -> dict[str, Any]:
    target = Target(backend, directory)
    await target.create()
    database = open_database(target.url)
    try:
        await upgrade(database)
        records = Records(DatabaseStore(database), MemoryRecordStore(3600))
        return {"contracts": await contracts_phase(target, records, found, batch),
                "execution": await execution_phase(target, records)}
    finally:
        await database.close()
        await target.drop()


# -- the run --------------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown")
    return {"nproc": os.cpu_count(), "cpu_model": model, "python": sys.version.split()[0]}


ROWS = [("contracts", "write", "200,000 contracts written (`uploads.keep`)"),
        ("contracts", "read", "200,000 contracts read back (`uploads.read_back`)"),
        ("execution", "write", "execution of 1,000 keywords + 50 clusters (`records.put`) ×10")]


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    header = ["backend: what", "rows/s", "seconds", "loop lag p99 ms", "loop lag max ms", "size on disk MB",
              "other CPU (cores)"]
    body = []
    for backend, repeats in results.items():
        for phase, step, label in ROWS:
            runs = [r[phase][step] for r in repeats]
            size = [r["bytes"] for r in runs if r["bytes"] is not None]
            per = " per execution" if phase == "execution" else ""
            body.append([f"{backend}: {label}", f"{median([r['rows_per_s'] for r in runs]):,.0f}",
                         f"{median([r['seconds'] for r in runs]):.2f}",
                         f"{median([r['lag_p99_ms'] for r in runs]):.2f}",
                         f"{median([r['lag_max_ms'] for r in runs]):.2f}",
                         f"{median(size) / 2**20:.2f}{per}" if size else "—",
                         f"{median([r['other_cores'] for r in runs]):.2f}"])
    return markdown_table(header, body)


async def main_async(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    found = sample_contracts(CONTRACT_ROWS)
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="ponte-db-bench-") as directory:
        for backend in args.backend:
            for n in range(args.repeats):
                results.setdefault(backend, []).append(await repeat(backend, Path(directory), found, args.batch))
                print(f"{backend} repeat {n + 1}/{args.repeats} done", file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], action="append",
                        help="sqlite, postgresql (repeatable; default both)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=BATCH, help=f"contracts per statement (default {BATCH})")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args()
    args.backend = args.backend or ["sqlite", "postgresql"]
    gc.collect()  # as a serving process does once started (app/factory.py `freeze_heap_after_start`)
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    loop = new_event_loop("auto")
    results = loop.run_until_complete(main_async(args))
    loop.close()
    about = {**machine(), "loop": type(loop).__module__, "batch": args.batch, "repeats": args.repeats}
    print(json.dumps(about))
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps({"machine": about, "results": results}, indent=1))


if __name__ == "__main__":
    main()
