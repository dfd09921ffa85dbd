"""Keyword executions as a service: start, pause, resume, cancel, consult — on any instance.

An execution runs on the instance that started it. Its record (owner, state, progress, result) is
kept in the record store, so that any instance can answer for it: a control request that reaches
another instance travels to the running one as an `execution` control message, and the running one
answers the requester's sid through the manager. Events go to `execution:{id}` and `user:{owner}`.
MAX_EXECUTIONS_PER_USER holds across instances: each run holds one of its owner's slots, claims in the
record store; MAX_EXECUTIONS is this instance's.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
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
from .records import RecordStore, RecordStoreError
from .settings import Settings

log = logging.getLogger("ponte.executions")

NAMESPACE = "/omni"
KIND = "execution"
CONTROL = "execution"  # the manager's control message carrying a pause/resume/cancel to the running instance
SAVE_EVERY = 1.0  # seconds between two progress writes of one execution
TOUCH_EVERY = 10.0  # seconds between liveness writes of an execution that makes no progress (paused)
STALE_AFTER = 60.0  # seconds without a write: the instance running it is gone
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


class ExecutionService:
    """Runs executions on this instance and answers for executions on any instance."""

    def __init__(self, sio: Any, settings: Settings, records: RecordStore) -> None:
        self.sio = sio
        self.settings = settings
        self.records = records
        self.instance = uuid.uuid4().hex[:12]
        self.runs: dict[str, Run] = {}
        self._pool: ProcessPoolExecutor | None = None
        self._hooked = False

    # -- requests ----------------------------------------------------------------------------------

    async def start(self, owner: str, config: dict[str, Any], origin: str) -> Run:
        """Check the URL and the limits, then start an execution in the background."""
        self._hook()
        if len(self.runs) >= self.settings.max_executions:
            raise PonteError(RATE_LIMIT_ERROR, "Limite de execuções simultâneas do servidor atingido",
                             {"limite": self.settings.max_executions, "ativas": len(self.runs)})
        await self._check_url(config["blog_url"])
        run = Run(f"exec_{uuid.uuid4().hex[:12]}", owner, config, origin)
        run.slot = await self._take_slot(owner)
        run.gate.set()
        self.runs[run.id] = run
        await self._save(run, force=True)
        run.task = asyncio.get_running_loop().create_task(self._run(run))
        return run

    async def control(self, action: str, execution_id: str, sub: str, admin: bool,
                      requester: str, request_id: str | None) -> None:
        """Pause, resume or cancel, here or on the instance running it."""
        self._hook()
        run = self.runs.get(execution_id)
        if run is not None:
            if run.owner != sub and not admin:
                raise _not_owner()
            await self._apply(run, action, requester, request_id)
            return
        record = await self.record(execution_id, sub, admin)
        if record["status"] in TERMINAL or record.get("instance") is None:
            raise _impossible(action, record["status"])
        await self.sio.share(CONTROL, {"id": execution_id, "action": action, "sid": requester,
                                       "request_id": request_id})

    async def _take_slot(self, owner: str) -> str | None:
        """One of the user's MAX_EXECUTIONS_PER_USER slots, claimed in the record store so that the limit
        holds on every instance (a slot of a lost instance frees itself after STALE_AFTER). None: the store
        is unavailable and only this instance's executions are counted."""
        limit = self.settings.max_executions_per_user
        try:
            for index in range(limit):
                if await self.records.claim(slot_key(owner, index), STALE_AFTER):
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
        if record["status"] not in TERMINAL and time.time() - record["updated_at"] > STALE_AFTER:
            record.update(status="erro", instance=None, error={
                "codigo": "SYSTEM_ERROR", "mensagem": "a instância que executava esta execução parou",
                "detalhes": {"motivo": "instance_lost"}})
        return record

    def active(self) -> int:
        return len(self.runs)

    async def close(self) -> None:
        """Stop every execution of this instance (recorded as erro) and the extraction workers."""
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
            if run.status != "cancelada":  # stopped by shutdown, not by the user
                await self._fail(run, "SYSTEM_ERROR", "o servidor foi reiniciado durante a execução",
                                 {"motivo": "shutdown"})
            raise
        except SiteUnreachable as exc:
            await self._fail(run, exc.code, exc.message, exc.details)
        except UnsafeURL as exc:
            await self._fail(run, VALIDATION_ERROR, str(exc), url_details(exc))
        except Exception:  # noqa: BLE001 - the owner gets EXECUCAO_ERRO, the server goes on
            log.exception("execution %s failed", run.id)
            await self._fail(run, SYSTEM_ERROR, "erro interno durante a execução", {})
        finally:
            self.runs.pop(run.id, None)
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
        await self._save(run, force=True, final=payload, keywords=[_keyword(k) | {"cluster_id": k.cluster_id}
                                                                   for k in done.keywords],
                         clusters=[vars_of(c) for c in done.clusters])
        await self.emit(run, "EXECUCAO_CONCLUIDA", payload)

    async def _fail(self, run: Run, code: str, message: str, details: dict[str, Any]) -> None:
        run.status = "erro"
        payload = {"execucao_id": run.id, "erro": {"codigo": code, "mensagem": message, "detalhes": details},
                   "recomendacao": ERROR_ADVICE.get(code, RECOMMENDATIONS.get(code))}
        await self._save(run, force=True, final=payload)
        await self.emit(run, "EXECUCAO_ERRO", payload)

    # -- transitions -------------------------------------------------------------------------------

    async def _apply(self, run: Run, action: str, requester: str, request_id: str | None) -> None:
        allowed, status, event = TRANSITIONS[action]
        if run.status not in allowed:
            raise _impossible(action, run.status)
        run.status = status
        if action == "pausar":
            run.gate.clear()
        elif action == "resumir":
            run.gate.set()
        elif run.task is not None:
            run.task.cancel()
            self.runs.pop(run.id, None)
            await self._free_slot(run)
        await self._save(run, force=True)
        await self.emit(run, event, answering({"execucao_id": run.id, "status": status}, request_id), also=requester)

    async def _on_control(self, message: dict[str, Any]) -> None:
        """A control message from another instance: act if the execution runs here."""
        run = self.runs.get(str(message.get("id")))
        if run is None:
            return
        try:
            await self._apply(run, str(message["action"]), str(message["sid"]), message.get("request_id"))
        except PonteError as exc:
            event, payload = self.sio.render_error(NAMESPACE, exc, message.get("request_id"))
            await self.sio.emit(event, payload, namespace=NAMESPACE, to=str(message["sid"]))

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
        doc = {"id": run.id, "owner": run.owner, "status": run.status, "config": run.config,
               "origin": run.origin, "progress": run.progress, "keywords_encontradas": run.keywords,
               "started_at": run.started, "updated_at": time.time(),
               "instance": None if run.status in TERMINAL else self.instance, **extra}
        try:
            await self.records.put(KIND, run.id, doc)
        except RecordStoreError as exc:  # the run goes on; only consulting it elsewhere is affected
            log.warning("execution %s not recorded: %s", run.id, exc)

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
                                             mp_context=multiprocessing.get_context("forkserver"))
        return self._pool

    def _hook(self) -> None:
        if not self._hooked:
            self.sio.on_share(CONTROL, self._on_control)
            self._hooked = True


def slot_key(owner: str, index: int) -> str:
    return f"execution-slot:{owner}:{index}"


def warm_up() -> None:
    """Import the extraction libraries when a worker starts, not on its first page."""
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
