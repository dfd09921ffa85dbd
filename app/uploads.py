"""An investigation's uploaded contracts: checked where they are received, parsed where they are analysed,
kept in the database a batch at a time.

The file travels as received (`Upload`: "csv" or "json", and its bytes). The gateway that receives it
checks it in a process of its own (`check`: back come only a count, a title or the first error), so that
parsing 200,000 rows never holds its event loop; the job parses it again where it runs (`contracts`, in
the analysis' thread), as contracts cannot travel through the queue. The job then keeps them in the
database (`keep`: app/db/contracts.py, BATCH rows per statement, each batch a short step of the event
loop) and the file is forgotten; a later attempt of the job reads them back the same way (`read_back`).
"""
from __future__ import annotations

import asyncio
import functools
import threading
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence

from engines.contracts.model import Contract
from engines.contracts.records import RecordError, parse_csv, parse_json
from engines.contracts.source import SourceError

from .db.contracts import BATCH
from .db.store import Records
from .records import patiently
from .tasks import on_loop
from .transport.codecs import DecodeError, load_json


@dataclass(frozen=True)
class Upload:
    """An uploaded file of contracts as received: its format ("csv" or "json") and its bytes."""

    format: str
    body: bytes


@dataclass(frozen=True)
class Checked:
    """What checking an upload found: its contracts counted and its title, or its first error and where."""

    records: int = 0
    title: str | None = None
    error: str | None = None
    field: str | None = None


class UploadError(ValueError):
    """An upload that cannot be analysed: the message and the field at fault, as the client is told."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message, self.field = message, field


def check(upload: Upload, limit: int) -> Checked:
    """Parse the upload and keep only what the gateway answers with (run in a process of its own)."""
    try:
        found, title = parse(upload, limit)
    except UploadError as exc:
        return Checked(error=exc.message, field=exc.field)
    return Checked(len(found), title)


def contracts(upload: Upload, limit: int) -> list[Contract]:
    """The upload's contracts (for the job, which checked nothing)."""
    return parse(upload, limit)[0]


def parse(upload: Upload, limit: int) -> tuple[list[Contract], str | None]:
    """The contracts of a CSV text or of a JSON body (`{"records": [...], "title"}` or a list), and its
    title; at most `limit` contracts."""
    try:
        if upload.format == "csv":
            return parse_csv(upload.body.decode("utf-8-sig"), limit), None
        data = load_json(upload.body)
    except RecordError as exc:
        raise UploadError(exc.message, exc.field or "records") from None
    except DecodeError as exc:  # not JSON, or text UTF-8 cannot carry (a lone surrogate)
        raise UploadError(f"corpo inválido: {exc.message}") from None
    except (ValueError, UnicodeDecodeError):
        raise UploadError("corpo inválido: JSON com records, ou CSV (text/csv)") from None
    records, title = (data.get("records"), data.get("title")) if isinstance(data, dict) else (data, None)
    if title is not None and (not isinstance(title, str) or len(title) > 200):
        raise UploadError("title: texto de até 200 caracteres", "title")
    try:
        return parse_json(records, limit), title
    except RecordError as exc:
        raise UploadError(exc.message, f"records.{exc.row - 1}.{exc.field}" if exc.field else "records") from None


async def keep(records: Records, inv_id: str, found: Sequence[Contract], batch: int = BATCH) -> None:
    """Store the contracts in the database, `batch` at a time; a batch the database does not take is asked
    again for FINAL_PATIENCE seconds (app/records.py `patiently`), then RecordStoreError."""
    for first in range(0, len(found), batch):
        part = found[first:first + batch]
        await patiently(functools.partial(records.put_contracts, inv_id, first, part),
                        f"investigation {inv_id}: contracts {first}+ not stored yet")


async def read_back(records: Records, inv_id: str, expected: int, batch: int = BATCH) -> list[Contract]:
    """The contracts stored by `keep`, read `batch` at a time (fewer than `expected` if they are not all there)."""
    found: list[Contract] = []
    while len(found) < expected:
        page = await patiently(functools.partial(records.get_contracts, inv_id, len(found), batch),
                               f"investigation {inv_id}: contracts not read yet")
        if not page:
            break
        found.extend(page)
    return found


async def loader(records: Records, doc: dict[str, Any], body: bytes | None, limit: int, stop: threading.Event,
                 forget: Callable[[], Awaitable[None]]) -> Callable[[], Sequence[Contract]]:
    """What gives an investigation's analysis thread its uploaded contracts: the file `body` parsed there, the
    contracts kept in the database (`keep`, on this loop) and the file forgotten (`forget`) before they are
    analysed; without the file (a later attempt), the contracts read back (SourceError if any is missing)."""
    inv_id, loop = doc["investigation_id"], asyncio.get_running_loop()
    if body is None:
        found = await read_back(records, inv_id, doc["records"])
        if not found or len(found) != doc["records"]:
            raise SourceError("error_upload_gone")
        return lambda: found
    held = {"file": Upload(doc["upload"], body)}  # let go once parsed: the analysis needs the contracts only

    async def kept(found: Sequence[Contract]) -> None:
        await keep(records, inv_id, found)
        await forget()

    def parse_and_keep() -> Sequence[Contract]:
        found = contracts(held.pop("file"), limit)
        on_loop(kept(found), loop, stop)
        return found
    return parse_and_keep
