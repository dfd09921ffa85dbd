"""Notification preferences (Omni's NOTIFICACAO_CONFIGURAR): the `tipo`s each user wants pushed.

`get` answers None for a user who never configured anything: every type is admitted. The memory
store serves a single instance; with Redis configured, preferences live in Redis so that they
follow a user to every instance and survive restarts.

A read Redis cannot answer (down, slow, its pool exhausted under a burst) is never taken as "everything
on". It is retried with a short back-off within `READ_BUDGET` seconds; if it still fails, `read`
answers, marked as not `known`:
1. the last value this instance read or wrote for that user (an LRU of `CACHE_USERS` users), or else
2. `SAFE_CHOICE`: no optional type at all. A user who turned a type off must not get it because Redis
   was busy, so an unknown preference delivers only what cannot be turned off: a `NOTIFICACAO_GERAL`
   without a `tipo`, and an execution's end to the connections following that execution.
Each fallback is counted (`ponte_preference_fallbacks_total{source="cache"|"safe"}`), and an outage is
logged once when it starts and once when reads work again (no user names or tokens in either line).
"""
from __future__ import annotations

import abc
import asyncio
import json
import logging
import time
from collections import OrderedDict
from typing import Any, Callable, Iterable, NamedTuple

log = logging.getLogger("ponte.prefs")

PREFIX = "ponte:prefs:"
MAX_USERS = 100_000
REDIS_TIMEOUT = 1.0  # seconds for a write: a lost Redis must not hold a handler for long
READ_BUDGET = 1.5  # seconds all attempts at one read may take together: a handshake waits on it
READ_ATTEMPT = 0.5  # seconds one attempt may take (a pool that waits, or a slow Redis)
BACKOFF = (0.05, 0.1, 0.2, 0.4)  # seconds before each retry, while the budget lasts
CACHE_USERS = 50_000  # users whose last known preferences an instance keeps for an outage
SAFE_CHOICE: frozenset[str] = frozenset()  # what an unknown preference admits: no optional type

Tipos = frozenset[str] | None  # None: never configured (everything admitted)


class Reading(NamedTuple):
    """What a store answered for a user: their types, and whether the store itself said so (`known`) or
    the answer is a fallback (`source`: "cache" or "safe") because the store could not be read."""

    tipos: Tipos
    known: bool = True
    source: str = "store"


class PreferenceStoreError(Exception):
    """Preferences could not be stored (the backing store is unavailable)."""


class PreferenceStore(abc.ABC):
    """Where users' notification preferences are kept."""

    @abc.abstractmethod
    async def read(self, sub: str) -> Reading:
        """The types `sub` admits (None if they never configured any: everything admitted)."""

    @abc.abstractmethod
    async def set(self, sub: str, tipos: Iterable[str]) -> None:
        """Replace the types `sub` admits; raise PreferenceStoreError if they cannot be kept."""

    async def get(self, sub: str) -> Tipos:
        """The types of `read`, whether known or a fallback."""
        return (await self.read(sub)).tipos

    def remember(self, sub: str, tipos: Tipos) -> None:
        """A value learnt elsewhere (another instance's change), for a store that caches (hook)."""


class MemoryPreferenceStore(PreferenceStore):
    """Preferences of this instance's users, in a bounded dict: past `max_users`, the user who
    configured longest ago is forgotten (and admits everything again)."""

    def __init__(self, max_users: int = MAX_USERS) -> None:
        self.max_users = max_users
        self._tipos: dict[str, frozenset[str]] = {}

    async def read(self, sub: str) -> Reading:
        return Reading(self._tipos.get(sub))

    async def set(self, sub: str, tipos: Iterable[str]) -> None:
        self._tipos.pop(sub, None)  # re-inserted last: insertion order is configuration order
        self._tipos[sub] = frozenset(tipos)
        while len(self._tipos) > self.max_users:
            del self._tipos[next(iter(self._tipos))]

    def __len__(self) -> int:
        return len(self._tipos)


class LastKnown:
    """The last preferences read or written per user, least recently used forgotten past `size`."""

    def __init__(self, size: int = CACHE_USERS) -> None:
        self.size = size
        self._tipos: OrderedDict[str, Tipos] = OrderedDict()

    def put(self, sub: str, tipos: Tipos) -> None:
        self._tipos[sub] = tipos
        self._tipos.move_to_end(sub)
        if len(self._tipos) > self.size:
            self._tipos.popitem(last=False)

    def find(self, sub: str) -> Reading | None:
        if sub not in self._tipos:
            return None
        self._tipos.move_to_end(sub)
        return Reading(self._tipos[sub], known=False, source="cache")

    def __len__(self) -> int:
        return len(self._tipos)


class RedisPreferenceStore(PreferenceStore):
    """One key per user, `ponte:prefs:<sub>`, holding a JSON list of types (a list, not a Redis
    set: Redis cannot store an empty set, and "nothing" is a valid choice). `client` is a
    redis.asyncio client. A read that fails is retried, then answered from `LastKnown` or with
    `SAFE_CHOICE` (see the module's docstring); `set` raises PreferenceStoreError."""

    def __init__(self, client: Any, prefix: str = PREFIX, timeout: float = REDIS_TIMEOUT,
                 budget: float = READ_BUDGET, cache_users: int = CACHE_USERS) -> None:
        self.client = client
        self.prefix = prefix
        self.timeout = timeout
        self.budget = budget
        self.last_known = LastKnown(cache_users)
        self.failures = 0  # reads and writes that Redis did not answer (a read counts once, retries aside)
        self.fallbacks = {"cache": 0, "safe": 0}
        self.on_fallback: Callable[[str], None] = lambda source: None  # metrics
        self._down = False  # an outage is under way (it was logged)

    async def read(self, sub: str) -> Reading:
        key = self.prefix + sub
        try:
            raw = await self._get(key)
        except Exception as exc:  # noqa: BLE001 - Redis down, slow or out of connections: fall back, say so
            return self._fallback(sub, exc)
        self._up()
        tipos = None if raw is None else self._decode(key, raw)
        self.last_known.put(sub, tipos)
        return Reading(tipos)

    async def _get(self, key: str) -> Any:
        """GET with retries: each attempt bounded, a short back-off between them, all within `budget`."""
        deadline = time.monotonic() + self.budget
        pauses = iter(BACKOFF)
        while True:
            try:
                async with asyncio.timeout(min(READ_ATTEMPT, max(0.0, deadline - time.monotonic()))):
                    return await self.client.get(key)
            except Exception:  # noqa: BLE001 - retried while the budget lasts, then raised
                pause = next(pauses, None)
                if pause is None or time.monotonic() + pause >= deadline:
                    raise
            await asyncio.sleep(pause)

    async def set(self, sub: str, tipos: Iterable[str]) -> None:
        chosen = sorted(set(tipos))
        try:
            async with asyncio.timeout(self.timeout):
                await self.client.set(self.prefix + sub, json.dumps(chosen, separators=(",", ":")))
        except Exception as exc:  # noqa: BLE001 - turned into a clear error for the handler
            self.failures += 1
            raise PreferenceStoreError(
                f"could not store notification preferences in Redis ({_describe(exc)})") from exc
        self.last_known.put(sub, frozenset(chosen))

    def remember(self, sub: str, tipos: Tipos) -> None:
        self.last_known.put(sub, tipos)

    def _decode(self, key: str, raw: bytes | str) -> Tipos:
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            log.warning("ignored malformed notification preferences under %r", key)
            return None
        return frozenset(value)

    def _fallback(self, sub: str, exc: BaseException) -> Reading:
        self.failures += 1
        reading = self.last_known.find(sub) or Reading(SAFE_CHOICE, known=False, source="safe")
        self.fallbacks[reading.source] += 1
        self.on_fallback(reading.source)
        if not self._down:
            self._down = True
            log.warning("could not read notification preferences from Redis (%s): until it answers, users get "
                        "their last preferences read here or, for users not seen here, no optional notification "
                        "type", _describe(exc))
        return reading

    def _up(self) -> None:
        if self._down:
            self._down = False
            log.info("notification preferences readable from Redis again (fallbacks so far: %d from the "
                     "cache, %d safe choices)", self.fallbacks["cache"], self.fallbacks["safe"])


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"
