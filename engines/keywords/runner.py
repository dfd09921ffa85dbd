"""One keyword execution as a stream of events: crawl, extract in worker processes, aggregate, cluster.

Per page the order is: the clusters it formed, the keywords it placed, then `PageDone`; after the
last page, the clusters and keywords of the final placement, then `Finished` (whose keywords and
clusters hold every announcement, see `cluster`).
"""
from __future__ import annotations

import asyncio
import functools
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import AsyncIterator, Union

from .cluster import Delta, SiteKeywords
from .crawler import Crawler
from .extract import analyse_html
from .model import Cluster, Keyword, Page, PageAnalysis


@dataclass(slots=True)
class PageDone:
    """A page was read (ok) or failed; counters of the whole run so far."""

    url: str
    ok: bool
    atual: int  # pages done
    total: int  # pages known so far (done + queued), bounded by max_pages
    keywords: int  # keywords announced so far
    elapsed: float  # seconds
    estimated: float | None  # seconds left, from the average page time


@dataclass(slots=True)
class KeywordFound:
    keyword: Keyword


@dataclass(slots=True)
class ClusterFormed:
    cluster: Cluster


@dataclass(slots=True)
class Finished:
    keywords: list[Keyword]
    clusters: list[Cluster]
    elapsed: float
    success_rate: float  # pages read / pages attempted


RunEvent = Union[PageDone, KeywordFound, ClusterFormed, Finished]


class ExecutionRunner:
    """Drives one crawl; extraction runs in `executor` (a process pool in production)."""

    def __init__(self, crawler: Crawler, executor: Executor | None = None) -> None:
        self.crawler = crawler
        self.executor = executor

    async def run(self, url: str, *, max_keywords: int, depth: int, timeout: float,
                  gate: asyncio.Event) -> AsyncIterator[RunEvent]:
        """The events of one execution; raises SiteUnreachable or UnsafeURL when the site cannot be read."""
        started = time.monotonic()
        site = SiteKeywords(max_keywords)
        done = ok = 0
        async for page, analysis in self.crawler.crawl(url, depth=depth, timeout=timeout, gate=gate,
                                                       analyse=self._analyse):
            done += 1
            ok += analysis is not None
            if analysis is not None:
                for event in _announce(site.add(analysis)):
                    yield event
            total = max(self.crawler.expected, done)
            elapsed = time.monotonic() - started
            estimated = elapsed / done * max(total - done, 0)
            yield PageDone(page.url, analysis is not None, done, total, len(site.announced),
                           round(elapsed, 3), round(estimated, 3))
        for event in _announce(site.finish()):
            yield event
        keywords, clusters = site.result()
        yield Finished(keywords, clusters, round(time.monotonic() - started, 3), round(ok / max(done, 1), 4))

    async def _analyse(self, page: Page) -> PageAnalysis | None:
        """The page's analysis, computed off the event loop; None if the page could not be analysed."""
        if page.html is None:
            return None
        loop = asyncio.get_running_loop()
        call = functools.partial(analyse_html, page.html, page.url)
        try:
            return await loop.run_in_executor(self.executor, call)
        except (ValueError, RuntimeError, MemoryError):  # one unreadable page does not fail the run
            return None


def _announce(delta: Delta) -> list[RunEvent]:
    return [*(ClusterFormed(c) for c in delta.new_clusters), *(KeywordFound(k) for k in delta.new_keywords)]
