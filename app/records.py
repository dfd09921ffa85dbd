"""The record store's interface (JSON documents by kind and id, blobs, claims) and its short-lived
stores, with a time to live.

Results — executions, investigations, reports, chat history — are kept in the database
(app/db/store.py `Records`, which implements this same interface); what stays here is short-lived:
claims (slots, job leases, chat locks), final-event markers and uploaded files until their
contracts are in the database. The memory store serves a single instance and forgets on restart. With Redis
configured, they live in Redis (`ponte:rec:<kind>:<id>`), so that every instance sees them. Blobs are
kept as bytes, never as JSON.
"""
from __future__ import annotations

import abc
import asyncio
import json
import logging
import time
from typing import Any, Awaitable, Callable, TypeVar

log = logging.getLogger("ponte.records")
T = TypeVar("T")

PREFIX = "ponte:rec:"
MAX_RECORDS = 10_000  # per kind, in memory
REDIS_TIMEOUT = 2.0
BLOB_TIMEOUT = 30.0  # a blob may weigh tens of megabytes
FINAL_PATIENCE = 30.0  # seconds a job keeps trying to store its result before its attempt fails


class RecordStoreError(Exception):
    """The backing store did not answer; the message is safe to log."""


class RecordStore(abc.ABC):
    """JSON documents by (kind, id), each kept for `ttl` seconds after its last write."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl

    @abc.abstractmethod
    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The document, or None if there is none (or it expired)."""

    @abc.abstractmethod
    async def put(self, kind: str, key: str, doc: dict[str, Any]) -> None:
        """Replace the document; raise RecordStoreError if it cannot be kept."""

    @abc.abstractmethod
    async def put_new(self, kind: str, key: str, doc: dict[str, Any]) -> bool:
        """Store the document only if there is none: True if this call stored it (first writer wins,
        on every instance)."""

    @abc.abstractmethod
    async def put_blob(self, kind: str, key: str, data: bytes) -> None:
        """Keep `data` as it is, for the store's time to live or until deleted."""

    @abc.abstractmethod
    async def get_blob(self, kind: str, key: str) -> bytes | None:
        """The blob, or None if there is none (or it expired)."""

    @abc.abstractmethod
    async def delete_blob(self, kind: str, key: str) -> None:
        """Forget the blob, if there is one."""

    @abc.abstractmethod
    async def claim(self, key: str, seconds: float) -> bool:
        """Take `key` for at most `seconds` if nobody holds it: a lock shared by every instance."""

    @abc.abstractmethod
    async def renew(self, key: str, seconds: float) -> None:
        """Hold a claimed `key` for `seconds` more (its holder's keep-alive)."""

    @abc.abstractmethod
    async def release(self, key: str) -> None:
        """Give `key` back."""


class MemoryRecordStore(RecordStore):
    """A bounded dict per kind: past `max_records`, the oldest write is forgotten."""

    def __init__(self, ttl: float, max_records: int = MAX_RECORDS) -> None:
        super().__init__(ttl)
        self.max_records = max_records
        self._docs: dict[str, dict[str, tuple[float, str]]] = {}
        self._claims: dict[str, float] = {}  # key → held until (monotonic)
        self._blobs: dict[str, tuple[float, bytes]] = {}  # "kind:key" → (expires at, data)

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        entry = self._docs.get(kind, {}).get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return json.loads(entry[1])  # a copy: callers may change what they get

    async def put(self, kind: str, key: str, doc: dict[str, Any]) -> None:
        docs = self._docs.setdefault(kind, {})
        docs.pop(key, None)
        docs[key] = (time.monotonic() + self.ttl, json.dumps(doc))
        while len(docs) > self.max_records:
            del docs[next(iter(docs))]

    async def put_new(self, kind: str, key: str, doc: dict[str, Any]) -> bool:
        if await self.get(kind, key) is not None:
            return False
        await self.put(kind, key, doc)
        return True

    async def put_blob(self, kind: str, key: str, data: bytes) -> None:
        self._blobs[f"{kind}:{key}"] = (time.monotonic() + self.ttl, data)
        while len(self._blobs) > self.max_records:
            del self._blobs[next(iter(self._blobs))]

    async def get_blob(self, kind: str, key: str) -> bytes | None:
        entry = self._blobs.get(f"{kind}:{key}")
        return None if entry is None or entry[0] < time.monotonic() else entry[1]

    async def delete_blob(self, kind: str, key: str) -> None:
        self._blobs.pop(f"{kind}:{key}", None)

    async def claim(self, key: str, seconds: float) -> bool:
        now = time.monotonic()
        if self._claims.get(key, 0.0) > now:
            return False
        self._claims[key] = now + seconds
        if len(self._claims) > self.max_records:  # forget expired claims
            self._claims = {k: until for k, until in self._claims.items() if until > now}
        return True

    async def renew(self, key: str, seconds: float) -> None:
        self._claims[key] = time.monotonic() + seconds

    async def release(self, key: str) -> None:
        self._claims.pop(key, None)


class RedisRecordStore(RecordStore):
    """One Redis string per document; `client` is a redis.asyncio client."""

    def __init__(self, client: Any, ttl: float, prefix: str = PREFIX, timeout: float = REDIS_TIMEOUT) -> None:
        super().__init__(ttl)
        self.client = client
        self.prefix = prefix
        self.timeout = timeout

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        raw = await self._call(self.client.get, f"{self.prefix}{kind}:{key}")
        return None if raw is None else json.loads(raw)

    async def put(self, kind: str, key: str, doc: dict[str, Any]) -> None:
        await self._call(self.client.set, f"{self.prefix}{kind}:{key}", json.dumps(doc), ex=int(self.ttl))

    async def put_new(self, kind: str, key: str, doc: dict[str, Any]) -> bool:
        return bool(await self._call(self.client.set, f"{self.prefix}{kind}:{key}", json.dumps(doc), nx=True,
                                     ex=int(self.ttl)))

    async def put_blob(self, kind: str, key: str, data: bytes) -> None:
        await self._call(self.client.set, f"{self.prefix}blob:{kind}:{key}", data, ex=int(self.ttl),
                         timeout=BLOB_TIMEOUT)

    async def get_blob(self, kind: str, key: str) -> bytes | None:
        data = await self._call(self.client.get, f"{self.prefix}blob:{kind}:{key}", timeout=BLOB_TIMEOUT)
        return None if data is None else bytes(data)

    async def delete_blob(self, kind: str, key: str) -> None:
        await self._call(self.client.delete, f"{self.prefix}blob:{kind}:{key}")

    async def claim(self, key: str, seconds: float) -> bool:
        return bool(await self._call(self.client.set, f"{self.prefix}claim:{key}", "1", nx=True,
                                     px=max(1, int(seconds * 1000))))

    async def renew(self, key: str, seconds: float) -> None:
        await self._call(self.client.set, f"{self.prefix}claim:{key}", "1", px=max(1, int(seconds * 1000)))

    async def release(self, key: str) -> None:
        await self._call(self.client.delete, f"{self.prefix}claim:{key}")

    async def _call(self, method: Any, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(timeout or self.timeout):
                return await method(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - one clear error for the caller
            reason = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            raise RecordStoreError(f"record store unavailable ({reason})") from exc


async def patiently(action: Callable[[], Awaitable[T]], what: str, patience: float = FINAL_PATIENCE) -> T:
    """What `action` returns, asking the store again after 0.5, 1, 2, 4, then every 5 seconds for up to
    `patience` seconds while it raises RecordStoreError; then the last RecordStoreError. For a job's reads
    and writes that must not be lost (its record at its start, its result at its end)."""
    deadline, pause = time.monotonic() + patience, 0.5
    while True:
        try:
            return await action()
        except RecordStoreError as exc:
            if time.monotonic() + pause > deadline:
                raise
            log.warning("%s: store unavailable, trying again in %.1f s: %s", what, pause, exc)
        await asyncio.sleep(pause)
        pause = min(2 * pause, 5.0)


async def put_patiently(records: RecordStore, kind: str, key: str, doc: dict[str, Any]) -> None:
    """Store a result that must not be lost (see `patiently`)."""
    await patiently(lambda: records.put(kind, key, doc), f"{kind} {key} not stored yet")
