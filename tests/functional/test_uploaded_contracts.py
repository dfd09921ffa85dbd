"""An uploaded investigation's contracts in the database: kept in batches by its job, in their order, the
file then forgotten; read back in batches by a later attempt; rewritten from any batch; purged with it."""
from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import text

from app import uploads
from app.db.contracts import BATCH
from app.db.purge import purge
from app.investigation_access import links
from app.investigations import KIND, UPLOAD
from app.keys import GATEWAY_KEY
from app.uploads import Upload
from conftest import TIMEOUT, make_settings, make_token
from tests.functional.test_investigations import CSV, post, sample_rows
from tests.functional.test_results_db import investigation_doc


async def finished(server: Any, inv_id: str) -> dict[str, Any]:
    """The investigation's document once it completed or failed (its state, polled)."""
    service = server.app[GATEWAY_KEY].services["investigations"]
    async with asyncio.timeout(6 * TIMEOUT):
        while (doc := await service.get(inv_id)) is None or doc["status"] not in ("completed", "failed"):
            await asyncio.sleep(0.05)
    return doc


async def test_the_job_keeps_the_uploaded_contracts_and_forgets_the_file(server: Any) -> None:
    """An upload of more than one batch: once analysed, every contract is in the database in the upload's
    order, as the upload's parser reads it, and the file is no longer kept."""
    rows = BATCH + BATCH // 4
    status, created = await post(server, None, make_token("alice"), data=sample_rows(rows), headers=CSV)
    assert status == 201, created
    inv_id, records = created["investigation_id"], server.app[GATEWAY_KEY].records
    assert (await finished(server, inv_id))["status"] == "completed"
    stored = await uploads.read_back(records, inv_id, rows)
    assert stored == uploads.contracts(Upload("csv", sample_rows(rows)), rows)
    assert await records.get_blob(UPLOAD, inv_id) is None


async def test_a_later_attempt_reads_the_contracts_back(server: Any) -> None:
    """The file gone (an earlier attempt kept the contracts and forgot it): the job analyses the contracts
    it reads back from the database; with neither file nor contracts it fails, saying they are gone."""
    records, jobs = server.app[GATEWAY_KEY].records, server.app[GATEWAY_KEY].services["jobs"]
    status, created = await post(server, None, make_token("alice"), data=sample_rows(300), headers=CSV)
    assert status == 201, created
    first = await finished(server, created["investigation_id"])
    found = await uploads.read_back(records, first["investigation_id"], 300)
    for inv_id, keep in (("INV-2026-000000000000000A", True), ("INV-2026-000000000000000B", False)):
        again = {**first, "investigation_id": inv_id, "status": "queued", "anomalies": [], "anomalies_total": 0,
                 "findings": [], "report": None, "summary": {}, "links": links("http://ponte.test", inv_id, "k")}
        await records.put(KIND, inv_id, again)
        if keep:
            await uploads.keep(records, inv_id, found)
        await jobs.submit(KIND, inv_id)
    done = await finished(server, "INV-2026-000000000000000A")
    assert done["status"] == "completed" and done["summary"] == first["summary"]
    gone = await finished(server, "INV-2026-000000000000000B")
    assert gone["status"] == "failed" and gone["error"] == "os contratos enviados não estão mais guardados"


async def test_batches_replace_what_they_cover(server: Any) -> None:
    """Written in batches of 4, read in pages of 3, the contracts come back in order; written again from 0
    with fewer, the surplus is gone; a batch written again from its position replaces only what follows."""
    records, inv_id = server.app[GATEWAY_KEY].records, "INV-2026-00000000000000C1"
    await records.put(KIND, inv_id, investigation_doc(inv_id, "alice", time.time()))
    found = uploads.contracts(Upload("csv", sample_rows(10)), 10)
    await uploads.keep(records, inv_id, found, batch=4)
    assert await uploads.read_back(records, inv_id, 10, batch=3) == found
    await uploads.keep(records, inv_id, found[5:], batch=4)
    assert await uploads.read_back(records, inv_id, 10, batch=3) == found[5:]
    await records.put_contracts(inv_id, 2, found[:1])
    assert await uploads.read_back(records, inv_id, 10) == [*found[5:7], found[0]]


async def test_purged_investigations_take_their_contracts(server: Any) -> None:
    """RETENTION_INVESTIGATIONS_DAYS: an investigation purged goes with its contracts (ON DELETE CASCADE)."""
    records, database = server.app[GATEWAY_KEY].records, server.app[GATEWAY_KEY].services["database"]
    inv_id = "INV-2026-00000000000000D1"
    await records.put(KIND, inv_id, investigation_doc(inv_id, "alice", time.time() - 40 * 86400))
    await uploads.keep(records, inv_id, uploads.contracts(Upload("csv", sample_rows(5)), 5))
    assert await purge(database, make_settings(retention_investigations_days=30)) == {"investigations": 1}
    async with database.connection() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM contracts"))).scalar() == 0
