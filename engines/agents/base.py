"""The one interface every agent backend implements, and the session context it is given."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Protocol


class AgentError(Exception):
    """An agent could not answer: `code` is BACKEND_ERROR or TIMEOUT; the message is safe to show."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvestigationDesk(Protocol):
    """What agents may do with investigations, on behalf of one chat session.

    A view is a JSON-ready dict: investigation_id, status ("running", "completed", "failed"),
    progress (0–100), message, query, language ("pt", "en"), filters (what the source understood of the
    query: `ContractQuery.to_dict()`), source ("upload", "sample", "transparencia"), source_label,
    records (count), anomalies (list of {kind, severity, description, details {contract_id,
    expected_value, actual_value, …}}), findings (list of {agent_id, agent_name, finding,
    confidence, details}), report_url (None until ready) and summary (counts by severity and kind).
    """

    async def start(self, query: str, language: str = "pt") -> dict[str, Any]:
        """Start an investigation of the contracts `query` describes, worded in `language`; its first view."""

    async def latest(self) -> dict[str, Any] | None:
        """The view of the session's most recent investigation, if any."""

    async def get(self, investigation_id: str) -> dict[str, Any] | None:
        """The view of an investigation this session may see, or None."""


@dataclass(slots=True)
class ChatContext:
    """One chat session, as an agent sees it."""

    session_id: str
    user: str | None  # the token's sub; None for an anonymous session
    investigations: InvestigationDesk
    history: list[dict[str, str]] = field(default_factory=list)  # [{role, content}], oldest first, bounded
    language: str = "pt"  # of the message being answered ("pt" or "en"): see engines.agents.language


class Agent(Protocol):
    """A message and a session context in, an async stream of text chunks out."""

    id: str  # "zumbi", "anita", "tiradentes", "drummond", "llm", "http"
    name: str  # shown to users as agent_name

    def stream(self, message: str, context: ChatContext) -> AsyncIterator[str]:
        """The answer, chunk by chunk; raise AgentError when the backend fails."""
