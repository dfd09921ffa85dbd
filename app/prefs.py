"""Notification preferences (Omni's NOTIFICACAO_CONFIGURAR): the `tipo`s each user wants pushed.

`get` answers None for a user who never configured anything: every type is admitted. The memory
store serves a single instance; with Redis configured, preferences live in Redis so that they
follow a user to every instance and survive restarts.
"""
from __future__ import annotations

import abc
import asyncio
import json
import logging
import time
from typing import Any, Iterable

log = logging.getLogger("ponte.prefs")

PREFIX = "ponte:prefs:"
MAX_USERS = 100_000
REDIS_TIMEOUT = 1.0  # seconds: a lost Redis must not hold a handshake for long
WARN_EVERY = 5.0  # seconds between two warnings about an unavailable Redis


class PreferenceStoreError(Exception):
    """Preferences could not be stored (the backing store is unavailable)."""


class PreferenceStore(abc.ABC):
    """Where users' notification preferences are kept."""

    @abc.abstractmethod
    async def get(self, sub: str) -> frozenset[str] | None:
        """The types `sub` admits, or None if they never configured any (everything admitted)."""

    @abc.abstractmethod
    async def set(self, sub: str, tipos: Iterable[str]) -> None:
        """Replace the types `sub` admits; raise PreferenceStoreError if they cannot be kept."""


class MemoryPreferenceStore(PreferenceStore):
    """Preferences of this instance's users, in a bounded dict: past `max_users`, the user who
    configured longest ago is forgotten (and admits everything again)."""

    def __init__(self, max_users: int = MAX_USERS) -> None:
        self.max_users = max_users
        self._tipos: dict[str, frozenset[str]] = {}

    async def get(self, sub: str) -> frozenset[str] | None:
        return self._tipos.get(sub)

    async def set(self, sub: str, tipos: Iterable[str]) -> None:
        self._tipos.pop(sub, None)  # re-inserted last: insertion order is configuration order
        self._tipos[sub] = frozenset(tipos)
        while len(self._tipos) > self.max_users:
            del self._tipos[next(iter(self._tipos))]

    def __len__(self) -> int:
        return len(self._tipos)


class RedisPreferenceStore(PreferenceStore):
    """One key per user, `ponte:prefs:<sub>`, holding a JSON list of types (a list, not a Redis
    set: Redis cannot store an empty set, and "nothing" is a valid choice). `client` is a
    redis.asyncio client. With Redis unavailable, `get` answers None (everything admitted) and
    logs a warning; `set` raises PreferenceStoreError."""

    def __init__(self, client: Any, prefix: str = PREFIX, timeout: float = REDIS_TIMEOUT) -> None:
        self.client = client
        self.prefix = prefix
        self.timeout = timeout
        self.failures = 0  # reads and writes that Redis did not answer
        self._last_warning = 0.0

    async def get(self, sub: str) -> frozenset[str] | None:
        key = self.prefix + sub
        try:
            async with asyncio.timeout(self.timeout):
                raw = await self.client.get(key)
        except Exception as exc:  # noqa: BLE001 - Redis down or slow: admit everything, say so
            self._warn(f"could not read notification preferences from Redis ({_describe(exc)}); "
                       "admitting every type")
            return None
        return None if raw is None else self._decode(key, raw)

    async def set(self, sub: str, tipos: Iterable[str]) -> None:
        text = json.dumps(sorted(set(tipos)), separators=(",", ":"))
        try:
            async with asyncio.timeout(self.timeout):
                await self.client.set(self.prefix + sub, text)
        except Exception as exc:  # noqa: BLE001 - turned into a clear error for the handler
            self.failures += 1
            raise PreferenceStoreError(
                f"could not store notification preferences in Redis ({_describe(exc)})") from exc

    def _decode(self, key: str, raw: bytes | str) -> frozenset[str] | None:
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            log.warning("ignored malformed notification preferences under %r", key)
            return None
        return frozenset(value)

    def _warn(self, message: str) -> None:
        self.failures += 1
        now = time.monotonic()
        if now - self._last_warning > WARN_EVERY:  # one line per outage burst, the count is exact
            self._last_warning = now
            log.warning("%s; %d failures so far", message, self.failures)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"
