"""Keyword executions as a service: start, pause, resume, cancel, consult — on any instance.

An execution is a job (app/jobs.py): without Redis it runs in the server that started it; with Redis,
on whichever worker takes it from the queue. Its record (owner, state, progress, result) is kept in the
record store, so that any instance can answer for it. A control request for a job that runs elsewhere
travels to it as an `execution` control message, and the running process answers the requester's sid
through Redis; a job still waiting on the queue is paused, resumed or cancelled by the gateway itself.
Events go to `execution:{id}` and `user:{owner}`. MAX_EXECUTIONS_PER_USER holds across instances: each
run holds one of its owner's slots, claimed in the record store from its start until it ends.

A job taken up again after its worker died starts over with a clear status (EXECUCAO_STATUS with
`tentativa` 2, 3…); whatever happens, its followers get one final event (EXECUCAO_CONCLUIDA, _ERRO or
_CANCELADA): the first process to store it (`records.put_new`) is the one that emits it.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from engines.keywords.crawler import Crawler
from engines.keywords.extract import analyse_html
from engines.keywords.model import CrawlLimits, SiteUnreachable, UnsafeURL
from engines.keywords.runner import ClusterFormed, ExecutionRunner, Finished, KeywordFound, PageDone, RunEvent

from .transport.codecs import answering
from .transport.codecs.omni import RECOMMENDATIONS
from .errors import PERMISSION_ERROR, RATE_LIMIT_ERROR, SYSTEM_ERROR, VALIDATION_ERROR, PonteError
from .jobs import Jobs
from .records import RecordStore, RecordStoreError, patiently, put_patiently
from .settings import Settings
from .tasks import die_with

log = logging.getLogger("ponte.executions")

NAMESPACE = "/omni"
KIND = "execution"
CONTROL = "execution"  # the manager's control message carrying a pause/resume/cancel to the running instance
SAVE_EVERY = 1.0  # seconds between two progress writes of one execution
TOUCH_EVERY = 10.0  # seconds between liveness writes of an execution that makes no progress (paused)
STALE_AFTER = 60.0  # seconds without a write: the instance running it is gone
QUEUED_SLOT = 3600.0  # seconds the owner's slot is held for a job waiting for a worker
FINAL = "execution-final"  # the record kind whose first writer emits an execution's final event
TERMINAL = ("concluida", "cancelada", "erro")
# action → (states it is allowed from, the state it leads to, the answer event)
TRANSITIONS = {
    "pausar": (("iniciada", "em_andamento"), "pausada", "EXECUCAO_PAUSADA"),
    "resumir": (("pausada",), "em_andamento", "EXECUCAO_RESUMIDA"),
    "cancelar": (("iniciada", "em_andamento", "pausada"), "cancelada", "EXECUCAO_CANCELADA"),
}
ERROR_ADVICE = {"TIMEOUT_ERROR": "Aumentar o timeout ou tentar mais tarde",
                "NETWORK_ERROR": "Verificar se a URL do blog está correta e acessível",
                "VALIDATION_ERROR": "Usar a URL pública de um blog"}


@dataclass
class Run:
    """An execution running on this instance."""

    id: str
    owner: str
    config: dict[str, Any]
    origin: str
    status: str = "iniciada"
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    started: float = field(default_factory=time.time)
    progress: dict[str, Any] = field(default_factory=lambda: {"total": 0, "atual": 0, "percentual": 0.0})
    keywords: int = 0
    estimated: float | None = None
    saved: float = 0.0
    slot: str | None = None  # the owner's execution slot it holds (app.records claim)
    attempt: int = 1


class ExecutionService:
    """Runs executions on this instance and answers for executions on any instance."""

    def __init__(self, sio: Any, settings: Settings, records: RecordStore, jobs: Jobs) -> None:
        self.sio = sio
        self.settings = settings
        self.records = records
        self.jobs = jobs
        self.instance = uuid.uuid4().hex[:12]
        self.runs: dict[str, Run] = {}
        self._pool: ProcessPoolExecutor | None = None
        self._hooked = False
        jobs.register(KIND, self.execute, self.gave_up)

    # -- requests ----------------------------------------------------------------------------------

    async def start(self, owner: str, config: dict[str, Any], origin: str) -> Run:
        """Check the URL and the limits, record the execution (SYSTEM_ERROR if the store does not answer),
        then submit its job; the run as it stands."""
        self.listen()
        queued = self.jobs.mode == "queue"
        if not queued and self.jobs.local(KIND) >= self.settings.max_executions:
            raise PonteError(RATE_LIMIT_ERROR, "Limite de execuções simultâneas do servidor atingido",
                             {"limite": self.settings.max_executions, "ativas": len(self.runs)})
        await self._check_url(config["blog_url"])
        run = Run(f"exec_{uuid.uuid4().hex[:12]}", owner, config, origin)
        run.slot = await self._take_slot(owner, QUEUED_SLOT if queued else STALE_AFTER)
        try:  # the job starts from its record: no record, no job
            await self.records.put(KIND, run.id, self._doc(run))
        except RecordStoreError as exc:
            log.warning("execution %s not started: %s", run.id, exc)
            await self._free_slot(run)
            raise PonteError(SYSTEM_ERROR, "Registro de execuções indisponível",
                             {"motivo": "store_unavailable"}) from None
        try:
            position = await self.jobs.submit(KIND, run.id)
        except Exception as exc:
            await self._free_slot(run)
            run.status = "erro"
            reason = exc if isinstance(exc, PonteError) else PonteError(
                SYSTEM_ERROR, "fila de trabalhos indisponível", {"motivo": "queue_unavailable"})
            await self._save(run, force=True, error={"codigo": reason.code, "mensagem": reason.message,
                                                     "detalhes": reason.details})
            raise reason from None
        if position:
            await self.emit(run, "EXECUCAO_STATUS", {**self.status_payload(run), "status": "na_fila",
                                                     "posicao": position})
        return run

    async def execute(self, execution_id: str, attempt: int) -> None:
        """The job: run the execution its record describes (as it stands: paused, or taken up again). A store
        that does not answer is asked again for FINAL_PATIENCE seconds before the attempt fails."""
        record = await patiently(lambda: self.records.get(KIND, execution_id), f"execution {execution_id} not read")
        if record is None or record["status"] in TERMINAL:
            return  # expired, or ended while it waited (cancelled on the queue)
        run = Run(record["id"], record["owner"], record["config"], record["origin"], status=record["status"],
                  slot=record.get("slot"), attempt=attempt)
        if run.status != "pausada":
            run.gate.set()
        self.runs[run.id] = run
        if attempt > 1:  # its worker died: it starts over, and says so
            run.status = run.status if run.status == "pausada" else "em_andamento"
            log.warning("execution %s: attempt %d starts over", run.id, attempt)
            await self.emit(run, "EXECUCAO_STATUS", {**self.status_payload(run), "tentativa": attempt})
        await self._save(run, force=True)
        run.task = asyncio.get_running_loop().create_task(self._run(run))
        try:
            await asyncio.wait([run.task])
        except asyncio.CancelledError:  # this process stops: the run stops with it
            run.task.cancel()
            await asyncio.wait([run.task], timeout=1.0)
            raise
        if run.task.cancelled() and run.status != "cancelada":  # stopped by `close`, not by its owner: the
            raise asyncio.CancelledError  # job must go back on the queue, not be marked done

    async def gave_up(self, execution_id: str) -> None:
        """Every attempt of the job died with its process: its followers are told, once."""
        record = await self.records.get(KIND, execution_id)
        if record is None or record["status"] in TERMINAL:
            return
        run = Run(record["id"], record["owner"], record["config"], record["origin"], status=record["status"],
                  slot=record.get("slot"))
        await self._fail(run, SYSTEM_ERROR, "os processos que executavam esta execução pararam",
                         {"motivo": "worker_lost"})
        await self._free_slot(run)

    async def control(self, action: str, execution_id: str, sub: str, admin: bool,
                      requester: str, request_id: str | None) -> None:
        """Pause, resume or cancel, here, on the queue, or on the process running it."""
        self.listen()
        run = self.runs.get(execution_id)
        if run is not None:
            if run.owner != sub and not admin:
                raise _not_owner()
            await self._apply(run, action, requester, request_id)
            return
        record = await self.record(execution_id, sub, admin)
        if record["status"] in TERMINAL:
            raise _impossible(action, record["status"])
        if record.get("instance") is None:  # waiting for a worker (or about to start here)
            await self._control_waiting(record, action, requester, request_id)
            return
        await self.sio.share(CONTROL, {"id": execution_id, "action": action, "sid": requester,
                                       "request_id": request_id})

    async def _control_waiting(self, record: dict[str, Any], action: str, requester: str,
                               request_id: str | None) -> None:
        """Pause, resume or cancel a job that no process runs yet: its record says what it starts as."""
        run = Run(record["id"], record["owner"], record["config"], record["origin"], status=record["status"],
                  slot=record.get("slot"))
        allowed, status, event = TRANSITIONS[action]
        if run.status not in allowed:
            raise _impossible(action, run.status)
        run.status = status
        if action == "cancelar":
            if not await self._claim_final(run.id, status):
                raise _impossible(action, "concluida")
            await self.jobs.withdraw(KIND, run.id)
            await self._free_slot(run)
        await self._save(run, force=True)
        await self.emit(run, event, answering({"execucao_id": run.id, "status": status}, request_id), also=requester)
        # A worker may have taken the job between the record's reading and writing: it follows, quietly
        # (a control message with no sid), and writes the record again as it runs.
        await self.sio.share(CONTROL, {"id": run.id, "action": action, "sid": None, "request_id": None})

    async def _take_slot(self, owner: str, hold: float) -> str | None:
        """One of the user's MAX_EXECUTIONS_PER_USER slots, claimed in the record store so that the limit
        holds on every instance (a slot of a lost instance frees itself after STALE_AFTER). None: the store
        is unavailable and only this instance's executions are counted."""
        limit = self.settings.max_executions_per_user
        try:
            for index in range(limit):
                if await self.records.claim(slot_key(owner, index), hold):
                    return slot_key(owner, index)
        except RecordStoreError as exc:
            log.warning("execution limit for a user not shared: %s", exc)
            mine = sum(run.owner == owner for run in self.runs.values())
            if mine < limit:
                return None
        raise PonteError(RATE_LIMIT_ERROR, "Limite de execuções simultâneas por usuário atingido",
                         {"limite": limit, "ativas": limit})

    async def _free_slot(self, run: Run) -> None:
        """Give the run's slot back, once (a slot given back twice could free another run's)."""
        slot, run.slot = run.slot, None
        if slot is not None:
            try:
                await self.records.release(slot)
            except RecordStoreError as exc:
                log.warning("execution slot not released (it expires by itself): %s", exc)

    async def record(self, execution_id: str, sub: str, admin: bool) -> dict[str, Any]:
        """The stored record of an execution its owner (or an admin) asks about."""
        try:
            record = await self.records.get(KIND, execution_id)
        except RecordStoreError as exc:
            log.warning("execution %s not read: %s", execution_id, exc)
            raise PonteError(SYSTEM_ERROR, "Registro de execuções indisponível",
                             {"motivo": "store_unavailable"}) from None
        if record is None:
            raise PonteError(VALIDATION_ERROR, f"execução desconhecida: {execution_id}", {"campo": "execucao_id"})
        if record["owner"] != sub and not admin:
            raise _not_owner()
        if (record["status"] not in TERMINAL and record.get("instance") is not None
                and time.time() - record["updated_at"] > STALE_AFTER):
            record.update(status="erro", instance=None, error={
                "codigo": "SYSTEM_ERROR", "mensagem": "a instância que executava esta execução parou",
                "detalhes": {"motivo": "instance_lost"}})
        return record

    def active(self) -> int:
        return len(self.runs)

    async def close(self) -> None:
        """Stop every execution of this process and the extraction workers. Embedded, each is recorded
        as erro; on a worker they go back to the queue (SAQ re-queues them) for another worker."""
        for run in list(self.runs.values()):
            if run.task is not None:
                run.task.cancel()
        tasks = [run.task for run in self.runs.values() if run.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # -- the run ----------------------------------------------------------------------------------

    async def _run(self, run: Run) -> None:
        limits = CrawlLimits(self.settings.crawl_max_pages, self.settings.crawl_max_bytes,
                             self.settings.crawl_concurrency, self.settings.crawl_max_redirects)
        config = run.config
        try:
            async with Crawler(limits, self.settings.allow_private_urls) as crawler:
                if run.status == "iniciada":
                    run.status = "em_andamento"
                async for event in ExecutionRunner(crawler, self._executor()).run(
                        config["blog_url"], max_keywords=config["max_keywords"], depth=config["profundidade"],
                        timeout=config["timeout"], gate=run.gate):
                    await self._event(run, event)
        except asyncio.CancelledError:
            if run.status == "cancelada":  # by its owner
                pass
            elif self.jobs.mode == "queue":  # this worker stops: the job goes back on the queue
                await self._hand_back(run)
            else:  # the server stops, and its jobs with it
                await self._fail(run, "SYSTEM_ERROR", "o servidor foi reiniciado durante a execução",
                                 {"motivo": "shutdown"})
            raise
        except SiteUnreachable as exc:
            await self._fail(run, exc.code, exc.message, exc.details)
        except UnsafeURL as exc:
            await self._fail(run, VALIDATION_ERROR, str(exc), url_details(exc))
        except RecordStoreError as exc:  # its result could not be stored: it did not succeed
            log.error("execution %s: result not stored: %s", run.id, exc)
            run.status = "em_andamento"
            if self.jobs.mode == "queue":  # the queue runs it again
                await self._hand_back(run)
                raise
            await self._fail(run, SYSTEM_ERROR, "o resultado da execução não pôde ser guardado",
                             {"motivo": "store_unavailable"})
        except Exception:  # noqa: BLE001 - the owner gets EXECUCAO_ERRO, the server goes on
            log.exception("execution %s failed", run.id)
            await self._fail(run, SYSTEM_ERROR, "erro interno durante a execução", {})
        finally:
            self.runs.pop(run.id, None)
            if run.status in TERMINAL:
                await self._free_slot(run)

    async def _event(self, run: Run, event: RunEvent) -> None:
        if isinstance(event, PageDone):
            run.keywords, run.estimated = event.keywords, event.estimated
            run.progress = {"total": event.total, "atual": event.atual,
                            "percentual": round(100.0 * event.atual / max(event.total, 1), 1)}
            await self.emit(run, "EXECUCAO_STATUS", self.status_payload(run))
            await self._save(run)
        elif isinstance(event, KeywordFound):
            keyword = _keyword(event.keyword)
            await self.emit(run, "KEYWORD_ENCONTRADA", {"execucao_id": run.id, "keyword": keyword,
                                                        "cluster_id": event.keyword.cluster_id})
        elif isinstance(event, ClusterFormed):
            await self.emit(run, "CLUSTER_FORMADO", {"execucao_id": run.id, "cluster": vars_of(event.cluster)})
        elif isinstance(event, Finished):
            await self._finish(run, event)

    async def _finish(self, run: Run, done: Finished) -> None:
        run.status = "concluida"
        done_pages = run.progress["atual"]  # pages read: the total may count a copy found at the end
        run.progress = {**run.progress, "total": done_pages, "atual": done_pages, "percentual": 100.0}
        result = {"total_keywords": len(done.keywords), "clusters_formados": len(done.clusters),
                  "tempo_total": done.elapsed, "taxa_sucesso": done.success_rate}
        payload = {"execucao_id": run.id, "resultado": result,
                   "download_url": f"{self.settings.public_url or run.origin}/api/v1/executions/{run.id}/download"}
        keywords = [_keyword(k) | {"cluster_id": k.cluster_id} for k in done.keywords]
        # Stored before anyone is told (RecordStoreError after FINAL_PATIENCE: the attempt fails, see `_run`).
        await put_patiently(self.records, KIND, run.id, self._doc(run, final=payload, keywords=keywords,
                                                                  clusters=[vars_of(c) for c in done.clusters]))
        if not await self._claim_final(run.id, "concluida"):
            return
        await self.emit(run, "EXECUCAO_CONCLUIDA", payload)

    async def _fail(self, run: Run, code: str, message: str, details: dict[str, Any]) -> None:
        run.status = "erro"
        payload = {"execucao_id": run.id, "erro": {"codigo": code, "mensagem": message, "detalhes": details},
                   "recomendacao": ERROR_ADVICE.get(code, RECOMMENDATIONS.get(code))}
        if not await self._claim_final(run.id, "erro"):
            return
        await self._save(run, force=True, final=payload)
        await self.emit(run, "EXECUCAO_ERRO", payload)

    async def _hand_back(self, run: Run) -> None:
        """This worker stops mid-run: the record says no process runs it, until another worker takes it."""
        self.runs.pop(run.id, None)
        await self._save(run, force=True)

    async def _claim_final(self, execution_id: str, status: str) -> bool:
        """Whether this process is the one to end the execution (the first to store its end, everywhere).
        A store that does not answer is asked again for a few seconds, then the job fails (and is retried)."""
        for wait in (0.1, 0.5, 1.0, 2.0, None):
            try:
                return await self.records.put_new(FINAL, execution_id, {"status": status, "by": self.instance})
            except RecordStoreError:
                if wait is None:
                    raise
                await asyncio.sleep(wait)
        return False

    # -- transitions -------------------------------------------------------------------------------

    async def _apply(self, run: Run, action: str, requester: str | None, request_id: str | None,
                     quiet: bool = False) -> None:
        """Pause, resume or cancel a run of this process, and answer. `quiet`: the gateway already answered
        for the job while it waited on the queue; this process, which took it meanwhile, only follows."""
        allowed, status, event = TRANSITIONS[action]
        if run.status not in allowed:
            if quiet:
                return  # it started as the gateway left it
            raise _impossible(action, run.status)
        if action == "cancelar" and not await self._claim_final(run.id, status):
            quiet = True  # ended meanwhile, or cancelled on the queue: whoever ended it has said so
        run.status = status
        if action == "pausar":
            run.gate.clear()
        elif action == "resumir":
            run.gate.set()
        elif run.task is not None:
            run.task.cancel()
            self.runs.pop(run.id, None)
            await self._free_slot(run)
        if action != "cancelar" or not quiet:
            await self._save(run, force=True)
        if not quiet:
            await self.emit(run, event, answering({"execucao_id": run.id, "status": status}, request_id),
                            also=requester)

    async def _on_control(self, message: dict[str, Any]) -> None:
        """A control message from another instance: act if the execution runs here."""
        run = self.runs.get(str(message.get("id")))
        if run is None:
            return
        sid = message.get("sid")
        try:
            await self._apply(run, str(message["action"]), sid, message.get("request_id"), quiet=sid is None)
        except PonteError as exc:
            if sid:
                event, payload = self.sio.render_error(NAMESPACE, exc, message.get("request_id"))
                await self.sio.emit(event, payload, namespace=NAMESPACE, to=str(sid))

    # -- helpers ----------------------------------------------------------------------------------

    async def emit(self, run: Run, event: str, payload: dict[str, Any], also: str | None = None) -> None:
        rooms = [f"execution:{run.id}", f"user:{run.owner}", *([also] if also else [])]
        await self.sio.emit(event, payload, namespace=NAMESPACE, to=rooms)

    def status_payload(self, run: Run) -> dict[str, Any]:
        return {"execucao_id": run.id, "status": run.status, "progresso": run.progress,
                "keywords_encontradas": run.keywords, "tempo_decorrido": round(time.time() - run.started, 3),
                "tempo_estimado": run.estimated}

    async def _save(self, run: Run, force: bool = False, **extra: Any) -> None:
        """Write the record: always on state changes, at most every SAVE_EVERY seconds for progress."""
        now = time.monotonic()
        if not force and now - run.saved < SAVE_EVERY:
            return
        run.saved = now
        try:
            await self.records.put(KIND, run.id, self._doc(run, **extra))
        except RecordStoreError as exc:  # the run goes on; only consulting it elsewhere is affected
            log.warning("execution %s not recorded: %s", run.id, exc)

    def _doc(self, run: Run, **extra: Any) -> dict[str, Any]:
        """The execution's record as it stands."""
        running_here = run.status not in TERMINAL and self.runs.get(run.id) is run
        return {"id": run.id, "owner": run.owner, "status": run.status, "config": run.config,
                "origin": run.origin, "progress": run.progress, "keywords_encontradas": run.keywords,
                "started_at": run.started, "updated_at": time.time(), "slot": run.slot, "attempt": run.attempt,
                "instance": self.instance if running_here else None, **extra}

    async def touch(self) -> None:
        """Keep the records of quiet (paused) executions fresh, so other instances know they live."""
        for run in list(self.runs.values()):
            if time.monotonic() - run.saved > TOUCH_EVERY:
                await self._save(run, force=True)
            if run.slot is not None:
                try:
                    await self.records.renew(run.slot, STALE_AFTER)
                except RecordStoreError as exc:
                    log.warning("execution slot not renewed: %s", exc)

    async def _check_url(self, url: str) -> None:
        async with Crawler(CrawlLimits(), self.settings.allow_private_urls) as crawler:
            try:
                await crawler.check(url)
            except UnsafeURL as exc:
                raise PonteError(VALIDATION_ERROR, f"blog_url: {exc}", url_details(exc)) from None
            except SiteUnreachable as exc:
                raise PonteError(VALIDATION_ERROR, f"blog_url: {exc.message}", {"campo": "blog_url"}) from None

    def _executor(self) -> ProcessPoolExecutor:
        """The extraction workers, started on first use (forkserver: never fork a running event loop)."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.settings.extract_workers, initializer=warm_up,
                                             initargs=(os.getpid(),),
                                             mp_context=multiprocessing.get_context("forkserver"))
        return self._pool

    def listen(self) -> None:
        """Hear control messages for the executions this process runs (once)."""
        if not self._hooked:
            self.sio.on_share(CONTROL, self._on_control)
            self._hooked = True


def slot_key(owner: str, index: int) -> str:
    return f"execution-slot:{owner}:{index}"


def warm_up(owner: int) -> None:
    """In each extraction process: die with the process `owner` that uses the pool, and import the
    extraction libraries now rather than on the first page."""
    die_with(owner)
    analyse_html("<p>início</p>", "http://localhost/")


def _keyword(keyword: Any) -> dict[str, Any]:
    return {"termo": keyword.termo, "frequencia": keyword.frequencia, "relevancia": keyword.relevancia,
            "posicao": keyword.posicao, "url": keyword.url}


def vars_of(cluster: Any) -> dict[str, Any]:
    return {"id": cluster.id, "nome": cluster.nome, "keywords": list(cluster.keywords),
            "tamanho": cluster.tamanho, "relevancia_media": cluster.relevancia_media}


def _not_owner() -> PonteError:
    return PonteError(PERMISSION_ERROR, "esta execução pertence a outro usuário", {"campo": "execucao_id"})


def _impossible(action: str, status: str) -> PonteError:
    return PonteError(VALIDATION_ERROR, f"não é possível {action} uma execução com status {status}",
                      {"campo": "execucao_id", "status_atual": status})


def url_details(exc: UnsafeURL) -> dict[str, Any]:
    """`detalhes` of a refused blog_url: the field, and the setting that would allow it, if one would."""
    return {"campo": "blog_url", **({"configuracao": exc.setting} if exc.setting else {})}


def final_event(record: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """What a stored record says: its final event when it ended, else its last known status."""
    if record["status"] == "concluida" and "final" in record:
        return "EXECUCAO_CONCLUIDA", record["final"]
    if record["status"] == "erro":
        final = record.get("final") or {"execucao_id": record["id"], "erro": record["error"]}
        return "EXECUCAO_ERRO", final
    return "EXECUCAO_STATUS", {"execucao_id": record["id"], "status": record["status"],
                               "progresso": record["progress"], "keywords_encontradas": record["keywords_encontradas"],
                               "tempo_decorrido": round(record["updated_at"] - record["started_at"], 3)}
