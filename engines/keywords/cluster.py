"""Site-level keywords, built page by page, and their clusters.

Relevance of a term = Σ over pages of (its page weight × (1 + ln count on that page)), divided by the
best term's sum: 0–1, 1 for the best. The site's keywords are the `max_keywords` most relevant terms
(during the crawl, among terms seen at least twice). A term is announced once, when it first enters
that set; a term announced early may be pushed out by better ones found later, so the result (the
final set, ranked) holds at most `max_keywords` terms, each of which was announced.

Two admitted terms are related when they appear together on at least two pages, on at least 60% of
the pages of the rarer one, or when they share a word of 4+ letters and appear together on two pages.
A cluster is a connected group of 2+ related terms; it keeps its id as it grows ("formed" once).
"""
from __future__ import annotations

import heapq
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable

from .model import Cluster, Keyword, PageAnalysis

MIN_FREQUENCY = 2  # occurrences on the site before a term is admitted during the crawl
PAIR_TERMS = 25  # per page, the best terms whose co-occurrences are counted
MAX_CANDIDATES = 20_000  # distinct candidate terms kept
MAX_PAIRS = 200_000  # distinct co-occurring pairs kept


@dataclass(slots=True)
class Delta:
    """What one page changed: keywords admitted and clusters formed."""

    new_keywords: list[Keyword] = field(default_factory=list)
    new_clusters: list[Cluster] = field(default_factory=list)


@dataclass(slots=True)
class Term:
    score: float = 0.0
    frequency: int = 0
    best_weight: float = -1.0
    url: str = ""
    pages: int = 0


class SiteKeywords:
    """The keywords of a site as its pages arrive, with clusters over the admitted ones."""

    def __init__(self, max_keywords: int) -> None:
        self.max_keywords = max_keywords
        self.terms: dict[str, Term] = {}
        self.admitted: dict[str, None] = {}  # the current site keywords
        self.announced: set[str] = set()
        self.pairs: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.pair_count = 0
        self.cluster_of: dict[str, str] = {}  # admitted term → cluster id
        self.clusters: dict[str, list[str]] = {}  # cluster id → terms
        self._next_cluster = 1

    def add(self, page: PageAnalysis) -> Delta:
        """Fold one page in; the keywords it admits and the clusters it forms."""
        for term, weight in page.keywords:
            self._score(term, weight, page.counts.get(term, 1), page.url)
        self._count_pairs([term for term, _ in page.keywords[:PAIR_TERMS] if term in self.terms])
        return self._select(t for t, v in self.terms.items() if v.frequency >= MIN_FREQUENCY)

    def finish(self) -> Delta:
        """The final selection, among every term seen: the last announcements of a run."""
        return self._select(self.terms)

    def result(self) -> tuple[list[Keyword], list[Cluster]]:
        """The admitted keywords, ranked (posicao 1 = most relevant), and their clusters."""
        ranked = self._ranked()
        return [self._keyword(t, i + 1) for i, t in enumerate(ranked)], [self._cluster(c) for c in self.clusters]

    # -- internals ---------------------------------------------------------------------------------

    def _score(self, term: str, weight: float, count: int, url: str) -> None:
        entry = self.terms.get(term)
        if entry is None:
            if len(self.terms) >= MAX_CANDIDATES:
                return
            entry = self.terms[term] = Term()
        entry.score += weight * (1.0 + math.log(count))
        entry.frequency += count
        entry.pages += 1
        if weight > entry.best_weight:
            entry.best_weight, entry.url = weight, url

    def _count_pairs(self, terms: list[str]) -> None:
        for i, a in enumerate(terms):
            for b in terms[i + 1:]:
                if self.pair_count >= MAX_PAIRS and b not in self.pairs[a]:
                    continue
                self.pair_count += b not in self.pairs[a]
                self.pairs[a][b] += 1
                self.pairs[b][a] += 1

    def _select(self, eligible: Iterable[str]) -> Delta:
        """Make the most relevant eligible terms the site keywords; announce the new ones."""
        best = heapq.nlargest(self.max_keywords, eligible, key=lambda t: (self.terms[t].score, t))
        self.admitted = dict.fromkeys(best)
        delta = Delta(new_clusters=self._regroup())
        ranks = {t: i + 1 for i, t in enumerate(self._ranked())}
        fresh = [t for t in best if t not in self.announced]
        self.announced.update(fresh)
        delta.new_keywords = [self._keyword(t, ranks[t]) for t in fresh]
        return delta

    def _ranked(self) -> list[str]:
        return sorted(self.admitted, key=lambda t: (-self.terms[t].score, t))

    def _related(self, a: str, b: str) -> bool:
        together = self.pairs[a].get(b, 0)
        if together >= 2 and together >= 0.6 * min(self.terms[a].pages, self.terms[b].pages):
            return True
        return together >= 2 and any(len(w) >= 4 for w in set(a.split()) & set(b.split()))

    def _regroup(self) -> list[Cluster]:
        """Recompute the groups of admitted terms; a group keeps the id most of its terms had; new
        groups get new ids and are reported."""
        clusters: dict[str, list[str]] = {}
        fresh: list[str] = []
        seen: set[str] = set()
        for term in self.admitted:
            if term in seen:
                continue
            group = self._component(term, seen)
            if len(group) < 2:
                continue
            old = [c for c, _ in Counter(self.cluster_of[t] for t in group if t in self.cluster_of).most_common()
                   if c not in clusters]
            cid = old[0] if old else f"cluster_{self._next_cluster}"
            if not old:
                self._next_cluster += 1
                fresh.append(cid)
            clusters[cid] = group
        self.clusters = clusters
        self.cluster_of = {t: cid for cid, group in clusters.items() for t in group}
        return [self._cluster(cid) for cid in fresh]

    def _component(self, start: str, seen: set[str]) -> list[str]:
        group, todo = [], [start]
        seen.add(start)
        while todo:
            term = todo.pop()
            group.append(term)
            for other in self.pairs[term]:
                if other in self.admitted and other not in seen and self._related(term, other):
                    seen.add(other)
                    todo.append(other)
        return group

    def _keyword(self, term: str, rank: int) -> Keyword:
        entry, best = self.terms[term], max((self.terms[t].score for t in self.admitted), default=1.0)
        return Keyword(termo=term, frequencia=entry.frequency, relevancia=round(min(entry.score / best, 1.0), 4),
                       posicao=rank, url=entry.url, cluster_id=self.cluster_of.get(term))

    def _cluster(self, cid: str) -> Cluster:
        terms = sorted(self.clusters[cid], key=lambda t: -self.terms[t].score)
        best = max((self.terms[t].score for t in self.admitted), default=1.0)
        mean = sum(self.terms[t].score for t in terms) / len(terms) / best
        return Cluster(id=cid, nome=terms[0], keywords=terms, tamanho=len(terms),
                       relevancia_media=round(min(mean, 1.0), 4))
