"""The last-known preferences an instance keeps for an outage: bounded, least recently used forgotten."""
from __future__ import annotations

from app.prefs import LastKnown, Reading


def test_last_known_forgets_the_least_recently_used() -> None:
    """Past its size, the user read or written longest ago is forgotten; a lookup counts as a use."""
    cache = LastKnown(size=2)
    cache.put("ana", frozenset({"info"}))
    cache.put("bia", None)
    assert cache.find("ana") == Reading(frozenset({"info"}), known=False, source="cache")
    cache.put("caio", frozenset())
    assert len(cache) == 2 and cache.find("bia") is None
    assert cache.find("ana") is not None and cache.find("caio") == Reading(frozenset(), False, "cache")
