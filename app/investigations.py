"""Investigations as a service: create, run the analysis off the event loop, stream its steps to
`investigation:{id}` (on `/investigations` and on `/chat`), keep the document and the report.

An investigation is a job (app/jobs.py): without Redis it runs in the server that created it; with Redis,
on whichever worker takes it from the queue, which finds everything in the record store: the document,
and an uploaded file as it was received (a blob, at most MAX_UPLOAD bytes, deleted once its contracts are
in the database, else after the records' TTL; Redis thus holds at most MAX_QUEUED_JOBS plus the running
jobs' files). The gateway only checks an upload, in a process of its own (`app.uploads`); the job parses
it in the analysis' thread and keeps its contracts in the database, a batch at a time, before analysing
them; a later attempt reads them back from there. A job taken up again after its worker died starts over
with a clear status (progress 0, "attempt n"); whatever happens, its followers get one final outcome
(`report_ready` with the completed progress, or the failed progress): the first process to store it
(`records.put_new`) is the one that emits.

Who may read and follow one is in app/investigation_access.py.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import secrets
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Sequence

from engines.contracts.analysis import analyse
from engines.contracts.model import Anomaly, Contract, Finding, Progress, Step
from engines.contracts.report import build_report
from engines.contracts.source import ContractSource, SourceError
from engines.contracts.texts import language, source_label, text

from . import uploads
from .auth import Principal
from .errors import RATE_LIMIT_ERROR, SYSTEM_ERROR, VALIDATION_ERROR, PonteError
from .investigation_access import links, new_id, view, visible
from .jobs import Jobs
from .db import Records
from .records import RecordStoreError, patiently, put_patiently
from .settings import Settings
from .tasks import die_with
from .uploads import Upload

log = logging.getLogger("ponte.investigations")

KIND = "investigation"
FINAL = "investigation-final"  # the record kind whose first writer emits an investigation's final outcome
UPLOAD = "investigation-upload"  # the blob kind holding an uploaded file until its investigation ends
TERMINAL = ("completed", "failed")
CHECKERS = 2  # processes checking uploads, per gateway
STOP_WAIT = 0.5  # seconds a stopped analysis waits for its thread
NAMESPACES = ("/investigations", "/chat")
QUEUE_SIZE = 256  # analysis steps waiting for the event loop
MAX_STORED_ANOMALIES = 1000  # per document; the counts stay exact
SAVE_EVERY = 1.0
DONE = object()


class InvestigationService:
    """Starts investigations as jobs (app/jobs.py) and runs them; their documents are in the record store
    for every instance."""

    def __init__(self, sio: Any, settings: Settings, records: Records, jobs: Jobs) -> None:
        self.sio, self.settings, self.records, self.jobs = sio, settings, records, jobs
        self.source: ContractSource | None = None  # set by the app once its HTTP session exists
        self.tasks: dict[str, asyncio.Task[Any]] = {}  # the analyses running in this process
        self.latest: dict[str, str] = {}  # chat session → its latest investigation (bounded)
        self._checker: ProcessPoolExecutor | None = None
        jobs.register(KIND, self.execute, self.gave_up)

    async def create(self, creator_sub: str | None, creator_session: str | None, origin: str, *,
                     session_owner: str | None = None, upload: Upload | None = None, query: str | None = None,
                     title: str | None = None, before_start: Any = None, lang: str = "pt") -> dict[str, Any]:
        """Register an investigation and submit its job; its first document. An upload is checked first
        (VALIDATION_ERROR: what is wrong, and where) and kept until the investigation ends. `session_owner`
        is the user owning `creator_session` (None: anonymous, its clients may see it). `before_start(id)`
        runs before the first event can be emitted (to put followers in its room). `lang` ("pt", "en")
        words its progress, anomalies, findings and report. A full queue is a RATE_LIMIT_ERROR, a store that
        does not answer a SYSTEM_ERROR."""
        if self.jobs.mode == "embedded" and self.jobs.local(KIND) >= self.settings.max_investigations:
            raise PonteError(RATE_LIMIT_ERROR, "Limite de investigações simultâneas atingido",
                             {"limite": self.settings.max_investigations})
        records, title = await self.check(upload) if upload is not None else (0, title)
        inv_id, key, lang = new_id(), secrets.token_urlsafe(16), language(lang)
        source = "upload" if upload is not None else self.source.name if self.source else None
        doc: dict[str, Any] = {
            "investigation_id": inv_id, "title": title or query or inv_id, "query": query, "language": lang,
            "creator_sub": creator_sub, "creator_session": creator_session, "session_owner": session_owner,
            "read_key": key, "links": links(self.settings.public_url or origin, inv_id, key),
            "status": "queued", "progress": 0.0, "message": text(lang, "queued"), "records": records,
            "source": source, "source_label": source_label(source, lang), "upload": upload and upload.format,
            "filters": self._filters(upload is not None, query), "anomalies": [], "anomalies_total": 0,
            "findings": [], "summary": {}, "report_url": None, "created_at": time.time(), "updated_at": time.time()}
        try:
            await self.records.put(KIND, inv_id, doc)
            if upload is not None:
                await self.records.put_blob(UPLOAD, inv_id, upload.body)
        except RecordStoreError as exc:
            log.warning("investigation %s not created: %s", inv_id, exc)
            raise PonteError(SYSTEM_ERROR, "Registro de investigações indisponível",
                             {"motivo": "store_unavailable"}) from None
        if before_start is not None:
            await before_start(inv_id)
        await self._submit(doc)
        return doc

    async def check(self, upload: Upload) -> tuple[int, str | None]:
        """An upload's contracts counted and its title, found in a process of its own (never on the event
        loop); a VALIDATION_ERROR names its first error."""
        if self._checker is None:  # forkserver: never fork a running event loop
            self._checker = ProcessPoolExecutor(CHECKERS, mp_context=multiprocessing.get_context("forkserver"),
                                                initializer=die_with, initargs=(os.getpid(),))
        # submitted from a thread: starting a checking process waits until it is forked
        checked = await asyncio.to_thread(self._check, self._checker, upload)
        if checked.error is not None:
            raise PonteError(VALIDATION_ERROR, checked.error, {"campo": checked.field} if checked.field else {})
        return checked.records, checked.title

    def _check(self, checker: ProcessPoolExecutor, upload: Upload) -> uploads.Checked:
        return checker.submit(uploads.check, upload, self.settings.max_investigation_records).result()

    async def _submit(self, doc: dict[str, Any]) -> None:
        """Put the investigation's job on the queue; one that cannot go there fails, and the caller is told why."""
        try:
            await self.jobs.submit(KIND, doc["investigation_id"])
        except Exception as exc:
            reason = exc if isinstance(exc, PonteError) else PonteError(
                SYSTEM_ERROR, "fila de trabalhos indisponível", {"motivo": "queue_unavailable"})
            doc.update(status="failed", error=reason.message, message=reason.message)
            await self._save(doc, True)
            await self._drop_upload(doc)
            raise reason from None

    def _filters(self, uploaded: bool, query: str | None) -> dict[str, Any]:
        """What the source understands of the query (nothing for uploaded contracts)."""
        if uploaded or self.source is None:
            return {}
        return self.source.interpret(query or "").to_dict()

    def remember(self, session_id: str, inv_id: str) -> None:
        """The chat session's latest investigation, for its agents (at most 10,000 sessions kept)."""
        self.latest.pop(session_id, None)
        self.latest[session_id] = inv_id
        while len(self.latest) > 10_000:
            del self.latest[next(iter(self.latest))]

    async def get(self, inv_id: str) -> dict[str, Any] | None:
        """The investigation's document; None when there is none or the store does not answer."""
        try:
            return await self.fetch(inv_id)
        except PonteError:
            return None

    async def fetch(self, inv_id: str) -> dict[str, Any] | None:
        """The investigation's document, or None; a store that does not answer is a SYSTEM_ERROR."""
        try:
            return await self.records.get(KIND, inv_id)
        except RecordStoreError as exc:
            log.warning("investigation %s not read: %s", inv_id, exc)
            raise PonteError(SYSTEM_ERROR, "Registro de investigações indisponível",
                             {"motivo": "store_unavailable"}) from None

    async def close(self) -> None:
        """Stop the upload checks and, embedded, the analyses of this process: they are recorded as failed. A
        worker's analyses are its jobs: SAQ stops them, and they go back on the queue (`_run`)."""
        if self._checker is not None:
            self._checker.shutdown(wait=False, cancel_futures=True)
        if self.jobs.mode == "queue":
            return
        for task in list(self.tasks.values()):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks.values()), timeout=5)

    # -- the job ----------------------------------------------------------------------------------

    async def execute(self, inv_id: str, attempt: int) -> None:
        """The job: analyse the investigation its document describes. A later attempt (the process that ran
        it stopped) starts over, and says so. A store that does not answer is asked again for FINAL_PATIENCE
        seconds before the attempt fails."""
        doc = await patiently(lambda: self.records.get(KIND, inv_id), f"investigation {inv_id} not read")
        if doc is None or doc["status"] in TERMINAL or await self.records.get(FINAL, inv_id) is not None:
            return  # expired, or ended (or being ended) by another attempt
        task = asyncio.current_task()
        assert task is not None
        self.tasks[inv_id] = task
        try:
            if attempt > 1:
                log.warning("investigation %s: attempt %d starts over", inv_id, attempt)
                doc.update(anomalies=[], anomalies_total=0, findings=[])
                await self._progress(doc, Progress("restarted", 0.0, text(doc["language"], "restarted",
                                                                          attempt=attempt)), force=True)
            await self._run(doc)
        finally:
            self.tasks.pop(inv_id, None)

    async def gave_up(self, inv_id: str) -> None:
        """Every attempt of the job stopped with its process: its followers are told it failed, once."""
        doc = await self.records.get(KIND, inv_id)
        if doc is None or doc["status"] in TERMINAL:
            return
        await self._fail(doc, text(doc["language"], "error_worker_lost"))

    async def _run(self, doc: dict[str, Any]) -> None:
        stop = threading.Event()  # set when the analysis' thread must stop waiting on this loop
        try:
            load = await self._contracts(doc, stop)
            doc["status"] = "running"
            await self._steps(doc, load, stop)
        except asyncio.CancelledError:
            if self.jobs.mode == "queue":  # this worker stops: another one takes the job up
                doc.update(status="queued", message=text(doc["language"], "queued"))
                await self._save(doc, True)
            else:  # the server stops, and its analyses with it
                await self._fail(doc, text(doc["language"], "error_restarted"))
            raise
        except SourceError as exc:
            await self._fail(doc, exc.text(doc["language"]))
        except RecordStoreError as exc:  # its contracts or report could not be stored: it did not succeed
            log.error("investigation %s: not stored: %s", doc["investigation_id"], exc)
            if self.jobs.mode == "queue":  # the queue runs it again
                doc.update(status="queued", message=text(doc["language"], "queued"))
                await self._save(doc, True)
                raise
            await self._fail(doc, text(doc["language"], "error_not_stored"))
        except Exception:  # noqa: BLE001 - the followers get a failed status, the server goes on
            log.exception("investigation %s failed", doc["investigation_id"])
            await self._fail(doc, text(doc["language"], "error_internal"))

    async def _contracts(self, doc: dict[str, Any], stop: threading.Event) -> Callable[[], Sequence[Contract]]:
        """What gives the analysis' thread its contracts: the upload's (kept in the database by batch, then the
        file forgotten: `uploads.loader`), or what the source found."""
        if doc["source"] == "upload":
            body = await self.records.get_blob(UPLOAD, doc["investigation_id"])
            return await uploads.loader(self.records, doc, body, self.settings.max_investigation_records, stop,
                                        lambda: self._drop_upload(doc))
        found = await self._load(doc)
        doc["records"] = len(found)
        return lambda: found

    async def _load(self, doc: dict[str, Any]) -> Sequence[Contract]:
        if self.source is None:
            raise SourceError("error_no_source")
        await self._progress(doc, Progress("loading_contracts", 1.0,
                                           text(doc["language"], "loading", source=doc["source_label"])))
        return await self.source.search(doc["query"] or "", self.settings.max_investigation_records)

    async def _steps(self, doc: dict[str, Any], load: Callable[[], Sequence[Contract]], stop: threading.Event) -> None:
        """Load the contracts and run the analysis in a worker thread; its steps come back through a bounded
        queue."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE_SIZE)
        worker = loop.run_in_executor(None, produce, load, queue, loop, stop, doc["language"])
        try:
            while (step := await queue.get()) is not DONE:
                if isinstance(step, BaseException):
                    raise step
                await self._step(doc, step)
        finally:
            stop.set()
            # bounded: a stopping worker's jobs have 1 s (SAQ), and a thread parsing an upload hears no stop
            await asyncio.wait([worker], timeout=STOP_WAIT)

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
        done = {**doc, "status": "completed", "summary": summary, "report": report, "progress": step.progress,
                "report_url": doc["links"]["report_url"], "message": step.message, "stage": step.stage,
                "updated_at": time.time()}
        # Stored before anyone is told (RecordStoreError after FINAL_PATIENCE: the attempt fails, see `_run`).
        # Stored before the final claim, too: a claim lost to another attempt leaves a complete report stored.
        await put_patiently(self.records, KIND, doc["investigation_id"], done)
        if not await self._claim_final(doc, "completed"):
            return  # another attempt ended it
        doc.update(done)
        await self._announce(doc, "completed")
        await self.emit(doc, "report_ready", {"investigation_id": doc["investigation_id"],
                                              "report_url": doc["report_url"], "formats": ["json", "md", "html"],
                                              "summary": step.message})
        await self._drop_upload(doc)

    async def _progress(self, doc: dict[str, Any], step: Progress, update_type: str = "progress",
                        force: bool = False) -> None:
        doc.update(progress=step.progress, message=step.message, stage=step.stage)
        await self._announce(doc, update_type)
        await self._save(doc, force)

    async def _announce(self, doc: dict[str, Any], update_type: str) -> None:
        await self.emit(doc, "investigation_progress", {
            "investigation_id": doc["investigation_id"], "update_type": update_type, "progress": doc["progress"],
            "status": doc["stage"], "message": doc["message"]})

    async def _fail(self, doc: dict[str, Any], reason: str) -> None:
        if not await self._claim_final(doc, "failed"):
            return  # another attempt ended it
        doc.update(status="failed", error=reason, message=reason)
        await self.emit(doc, "investigation_progress", {
            "investigation_id": doc["investigation_id"], "update_type": "failed", "progress": doc["progress"],
            "status": "failed", "message": reason})
        await self._save(doc, True)
        await self._drop_upload(doc)

    async def _claim_final(self, doc: dict[str, Any], status: str) -> bool:
        """Whether this process is the one to end the investigation (the first to store its end, everywhere).
        A store that does not answer is asked again for a few seconds, then the job fails (and is retried)."""
        for wait in (0.1, 0.5, 1.0, 2.0, None):
            try:
                return await self.records.put_new(FINAL, doc["investigation_id"], {"status": status})
            except RecordStoreError:
                if wait is None:
                    raise
                await asyncio.sleep(wait)
        return False

    async def _drop_upload(self, doc: dict[str, Any]) -> None:
        """Forget the uploaded file of an investigation that ended."""
        if doc["source"] == "upload":
            try:
                await self.records.delete_blob(UPLOAD, doc["investigation_id"])
            except RecordStoreError as exc:
                log.warning("investigation %s: upload not deleted (it expires by itself): %s",
                            doc["investigation_id"], exc)

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


def produce(load: Callable[[], Sequence[Contract]], queue: asyncio.Queue[Any], loop: asyncio.AbstractEventLoop,
            stop: threading.Event, lang: str = "pt") -> None:
    """The worker thread: the contracts loaded, then the analysis' steps (worded in `lang`) into the queue,
    waiting while it is full, until stopped."""
    try:
        for step in analyse(load(), lang=lang):
            if not hand_over(step, queue, loop, stop):
                return
        hand_over(DONE, queue, loop, stop)
    except Exception as exc:  # noqa: BLE001 - re-raised on the event loop
        hand_over(exc, queue, loop, stop)
        hand_over(DONE, queue, loop, stop)


def hand_over(item: Any, queue: asyncio.Queue[Any], loop: asyncio.AbstractEventLoop, stop: threading.Event) -> bool:
    if stop.is_set():  # the loop may be gone
        return False
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
