"""Investigations as a service: create, run the analysis off the event loop, stream its steps to
`investigation:{id}` (on `/investigations` and on `/chat`), keep the document and the report.

Who may read and follow an investigation (`visible`): a token with the `admin` scope; the user whose
token created it; and the clients of the chat session it was started from, when that session was
anonymous at the time or the client is the session's owner. The `investigations` scope lets a user use
investigations, not see other people's. Its report links carry a random read key (`holds_key`), which
proves read access over HTTP to whoever was handed the link. Ids are `INV-YYYY-` and 64 random bits,
and everyone else is answered exactly as for an id that does not exist (`not_found`): no existence oracle.
"""
from __future__ import annotations

import asyncio
import datetime
import hmac
import logging
import secrets
import threading
import time
from typing import Any, Sequence

from engines.contracts.analysis import analyse
from engines.contracts.model import Anomaly, Contract, Finding, Progress, Step
from engines.contracts.report import build_report
from engines.contracts.source import ContractSource, SourceError
from engines.contracts.texts import language, source_label, text

from .auth import Principal
from pydantic import TypeAdapter, ValidationError

from schemas._base import SafeId

from .errors import RATE_LIMIT_ERROR, VALIDATION_ERROR, PonteError
from .records import RecordStore, RecordStoreError
from .settings import Settings

log = logging.getLogger("ponte.investigations")

KIND = "investigation"
NAMESPACES = ("/investigations", "/chat")
QUEUE_SIZE = 256  # analysis steps waiting for the event loop
MAX_STORED_ANOMALIES = 1000  # per document; the counts stay exact
SAVE_EVERY = 1.0
DONE = object()
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


class InvestigationService:
    """Runs investigations on this instance; their documents are in the record store for every instance."""

    def __init__(self, sio: Any, settings: Settings, records: RecordStore, jobs: Any = None) -> None:
        self.sio, self.settings, self.records, self.jobs = sio, settings, records, jobs
        self.source: ContractSource | None = None  # set by the app once its HTTP session exists
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.latest: dict[str, str] = {}  # chat session → its latest investigation (bounded)

    async def create(self, creator_sub: str | None, creator_session: str | None, origin: str, *,
                     session_owner: str | None = None, contracts: Sequence[Contract] | None = None,
                     query: str | None = None, title: str | None = None, before_start: Any = None,
                     lang: str = "pt") -> dict[str, Any]:
        """Register an investigation and start analysing it; its first document. `session_owner` is
        the user owning `creator_session` (None: anonymous, its clients may see it). `before_start(id)`
        runs before the first event can be emitted (to put followers in its room). `lang` ("pt", "en")
        words its progress, anomalies, findings and report."""
        if len(self.tasks) >= self.settings.max_investigations:
            raise PonteError(RATE_LIMIT_ERROR, "Limite de investigações simultâneas atingido",
                             {"limite": self.settings.max_investigations})
        inv_id, key, lang = new_id(), secrets.token_urlsafe(16), language(lang)
        source = "upload" if contracts is not None else self.source.name if self.source else None
        doc: dict[str, Any] = {
            "investigation_id": inv_id, "title": title or query or inv_id, "query": query, "language": lang,
            "creator_sub": creator_sub, "creator_session": creator_session, "session_owner": session_owner,
            "read_key": key, "links": links(self.settings.public_url or origin, inv_id, key),
            "status": "queued", "progress": 0.0, "message": text(lang, "queued"), "records": len(contracts or ()),
            "source": source, "source_label": source_label(source, lang), "filters": self._filters(contracts, query),
            "anomalies": [], "anomalies_total": 0, "findings": [], "summary": {}, "report_url": None,
            "created_at": time.time(), "updated_at": time.time()}
        await self.records.put(KIND, inv_id, doc)
        if before_start is not None:
            await before_start(inv_id)
        task = asyncio.get_running_loop().create_task(self._run(doc, contracts))
        self.tasks[inv_id] = task
        task.add_done_callback(lambda _: self.tasks.pop(inv_id, None))
        return doc

    def _filters(self, contracts: Sequence[Contract] | None, query: str | None) -> dict[str, Any]:
        """What the source understands of the query (nothing for uploaded contracts)."""
        if contracts is not None or self.source is None:
            return {}
        return self.source.interpret(query or "").to_dict()

    def remember(self, session_id: str, inv_id: str) -> None:
        """The chat session's latest investigation, for its agents (at most 10,000 sessions kept)."""
        self.latest.pop(session_id, None)
        self.latest[session_id] = inv_id
        while len(self.latest) > 10_000:
            del self.latest[next(iter(self.latest))]

    async def get(self, inv_id: str) -> dict[str, Any] | None:
        try:
            return await self.records.get(KIND, inv_id)
        except RecordStoreError as exc:
            log.warning("investigation %s not read: %s", inv_id, exc)
            return None

    async def close(self) -> None:
        """Stop the analyses of this instance; they are recorded as failed."""
        for task in list(self.tasks.values()):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks.values()), timeout=5)

    # -- the run ----------------------------------------------------------------------------------

    async def _run(self, doc: dict[str, Any], contracts: Sequence[Contract] | None) -> None:
        try:
            if contracts is None:
                contracts = await self._load(doc)
            doc.update(status="running", records=len(contracts))
            await self._steps(doc, contracts)
        except asyncio.CancelledError:
            await self._fail(doc, text(doc["language"], "error_restarted"))
            raise
        except SourceError as exc:
            await self._fail(doc, exc.text(doc["language"]))
        except Exception:  # noqa: BLE001 - the followers get a failed status, the server goes on
            log.exception("investigation %s failed", doc["investigation_id"])
            await self._fail(doc, text(doc["language"], "error_internal"))

    async def _load(self, doc: dict[str, Any]) -> Sequence[Contract]:
        if self.source is None:
            raise SourceError("error_no_source")
        await self._progress(doc, Progress("loading_contracts", 1.0,
                                           text(doc["language"], "loading", source=doc["source_label"])))
        return await self.source.search(doc["query"] or "", self.settings.max_investigation_records)

    async def _steps(self, doc: dict[str, Any], contracts: Sequence[Contract]) -> None:
        """Run the analysis in a worker thread; its steps come back through a bounded queue."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE_SIZE)
        stop = threading.Event()
        worker = loop.run_in_executor(None, produce, contracts, queue, loop, stop, doc["language"])
        try:
            while (step := await queue.get()) is not DONE:
                if isinstance(step, BaseException):
                    raise step
                await self._step(doc, step)
        finally:
            stop.set()
            await asyncio.shield(worker)

    async def _step(self, doc: dict[str, Any], step: Step) -> None:
        if isinstance(step, Anomaly):
            data = anomaly_data(doc["investigation_id"], step)
            doc["anomalies_total"] += 1
            if len(doc["anomalies"]) < MAX_STORED_ANOMALIES:
                doc["anomalies"].append(data)
            await self.emit(doc, "anomaly_detected", data)
        elif isinstance(step, Finding):
            data = {"investigation_id": doc["investigation_id"], "agent_id": step.agent_id,
                    "agent_name": step.agent_name, "finding": step.finding, "confidence": step.confidence,
                    "details": step.details}
            doc["findings"].append(data)
            await self.emit(doc, "agent_finding", data)
        elif step.stage == "completed":
            await self._complete(doc, step)
        else:
            await self._progress(doc, step)

    async def _complete(self, doc: dict[str, Any], step: Progress) -> None:
        report = build_report(doc, doc["records"], doc["anomalies"], doc["findings"])
        summary = {"contracts": doc["records"], "anomalies": doc["anomalies_total"],
                   "by_severity": report["by_severity"], "by_kind": report["by_kind"]}
        doc.update(status="completed", summary=summary, report=report, report_url=doc["links"]["report_url"])
        await self._progress(doc, step, update_type="completed", force=True)
        await self.emit(doc, "report_ready", {"investigation_id": doc["investigation_id"],
                                              "report_url": doc["report_url"], "formats": ["json", "md", "html"],
                                              "summary": step.message})

    async def _progress(self, doc: dict[str, Any], step: Progress, update_type: str = "progress",
                        force: bool = False) -> None:
        doc.update(progress=step.progress, message=step.message, stage=step.stage)
        await self.emit(doc, "investigation_progress", {
            "investigation_id": doc["investigation_id"], "update_type": update_type, "progress": step.progress,
            "status": step.stage, "message": step.message})
        await self._save(doc, force)

    async def _fail(self, doc: dict[str, Any], reason: str) -> None:
        doc.update(status="failed", error=reason, message=reason)
        await self.emit(doc, "investigation_progress", {
            "investigation_id": doc["investigation_id"], "update_type": "failed", "progress": doc["progress"],
            "status": "failed", "message": reason})
        await self._save(doc, True)

    async def emit(self, doc: dict[str, Any], event: str, data: dict[str, Any]) -> None:
        for namespace in NAMESPACES:
            await self.sio.emit(event, data, namespace=namespace, to=f"investigation:{doc['investigation_id']}")

    async def _save(self, doc: dict[str, Any], force: bool = False) -> None:
        now = time.time()
        if not force and now - doc["updated_at"] < SAVE_EVERY:
            return
        doc["updated_at"] = now
        try:
            await self.records.put(KIND, doc["investigation_id"], doc)
        except RecordStoreError as exc:
            log.warning("investigation %s not recorded: %s", doc["investigation_id"], exc)


class SessionDesk:
    """The investigations one chat session may start and see (what its agents are given)."""

    def __init__(self, service: InvestigationService, session_id: str, principal: Principal, origin: str,
                 follow: Any = None, session_owner: str | None = None) -> None:
        self.service, self.session_id, self.principal, self.origin = service, session_id, principal, origin
        self.follow = follow  # async (investigation id) → None: the session's clients join its room
        self.session_owner = session_owner  # the user the chat session belongs to; None: anonymous

    async def start(self, query: str, language: str = "pt") -> dict[str, Any]:
        creator = None if self.principal.anonymous else self.principal.sub
        doc = await self.service.create(creator, self.session_id, self.origin, session_owner=self.session_owner,
                                        query=query, title=query[:200], before_start=self.follow, lang=language)
        # Only what the session itself started: an upload naming this session_id over HTTP must not
        # become what its agents answer about.
        self.service.remember(self.session_id, doc["investigation_id"])
        return view(doc)

    async def latest(self) -> dict[str, Any] | None:
        inv_id = self.service.latest.get(self.session_id)
        return await self.get(inv_id) if inv_id else None

    async def get(self, investigation_id: str) -> dict[str, Any] | None:
        doc = await self.service.get(investigation_id)
        return view(doc) if doc is not None and visible(doc, self.principal, self.session_id) else None


def produce(contracts: Sequence[Contract], queue: asyncio.Queue[Any], loop: asyncio.AbstractEventLoop,
            stop: threading.Event, lang: str = "pt") -> None:
    """The worker thread: the analysis' steps (worded in `lang`) into the queue, waiting while it is full,
    until stopped."""
    try:
        for step in analyse(contracts, lang=lang):
            if not hand_over(step, queue, loop, stop):
                return
        hand_over(DONE, queue, loop, stop)
    except Exception as exc:  # noqa: BLE001 - re-raised on the event loop
        hand_over(exc, queue, loop, stop)
        hand_over(DONE, queue, loop, stop)


def hand_over(item: Any, queue: asyncio.Queue[Any], loop: asyncio.AbstractEventLoop, stop: threading.Event) -> bool:
    future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
    while not stop.is_set():
        try:
            future.result(0.2)
            return True
        except TimeoutError:
            continue
    future.cancel()
    return False


def anomaly_data(inv_id: str, anomaly: Anomaly) -> dict[str, Any]:
    """The `anomaly_detected` payload: the evidence in `details`, the rule as `kind`."""
    return {"investigation_id": inv_id, "severity": anomaly.severity, "description": anomaly.description,
            "details": {"contract_id": anomaly.contract_id, "expected_value": anomaly.expected_value,
                        "actual_value": anomaly.actual_value, "kind": anomaly.kind, **anomaly.details}}
