"""Who may read and follow an investigation, and what they are shown.

Who may (`visible`): a token with the `admin` scope; the user whose token created it; and the clients of
the chat session it was started from, when that session was anonymous at the time or the client is the
session's owner. The `investigations` scope lets a user use investigations, not see other people's. Its
report links carry a random read key (`holds_key`), which proves read access over HTTP to whoever was
handed the link. Ids are `INV-YYYY-` and 64 random bits, and everyone else is answered exactly as for an
id that does not exist (`not_found`): no existence oracle.
"""
from __future__ import annotations

import datetime
import hmac
import secrets
from typing import Any

from pydantic import TypeAdapter, ValidationError

from schemas._base import SafeId

from .auth import Principal
from .errors import VALIDATION_ERROR, PonteError

NOT_FOUND = "NOT_FOUND"


def visible(doc: dict[str, Any], principal: Principal, session_id: str | None) -> bool:
    """Admin, the creating user, or a client of the creating chat session that was anonymous when the
    investigation was created (`session_owner` None) or is that session's owner."""
    if principal.allows("admin"):
        return True
    user = None if principal.anonymous else principal.sub
    if user is not None and doc.get("creator_sub") == user:
        return True
    if not session_id or doc.get("creator_session") != session_id:
        return False
    # documents written before `session_owner` existed: the session was its creator's
    return doc.get("session_owner", doc.get("creator_sub")) in (None, user)


def holds_key(doc: dict[str, Any], key: str | None) -> bool:
    """True when `key` is the investigation's read key (what its report links carry)."""
    expected = doc.get("read_key")
    return bool(key and expected) and hmac.compare_digest(str(key).encode(), str(expected).encode())


def not_found() -> PonteError:
    """The one answer for an investigation that does not exist or that the client may not see."""
    return PonteError(NOT_FOUND, "investigação não encontrada", {"campo": "investigation_id"})


def new_id() -> str:
    """`INV-YYYY-` and 64 random bits in hex: ids cannot be guessed or counted."""
    return f"INV-{datetime.date.today().year}-{secrets.token_hex(8).upper()}"


def links(base: str, inv_id: str, key: str) -> dict[str, str]:
    """The investigation's URLs; the HTTP ones carry its read key, as a browser cannot send a token."""
    path = f"{base}/api/v1/investigations/{inv_id}"
    return {"url": f"{path}?key={key}", "report_url": f"{path}/report?key={key}",
            "ws_url": base.replace("http", "ws", 1) + f"/api/v1/ws/investigations/{inv_id}"}


def view(doc: dict[str, Any]) -> dict[str, Any]:
    """What clients and agents see of an investigation (the report itself is served apart)."""
    keys = ("investigation_id", "title", "status", "progress", "message", "query", "language", "filters", "source",
            "source_label", "records", "anomalies", "findings", "report_url", "summary", "created_at", "error")
    return {key: doc.get(key) for key in keys}


_safe_id = TypeAdapter(SafeId)


def checked_id(name: str, value: str) -> str:
    """A path or handshake id that is safe to use in a room name, or a VALIDATION_ERROR."""
    try:
        return _safe_id.validate_python(value)
    except ValidationError:
        raise PonteError(VALIDATION_ERROR, f"{name}: 1 a 64 caracteres [A-Za-z0-9_.:-]",
                         {"campo": name}) from None
