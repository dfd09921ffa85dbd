"""Site-level keywords, built page by page, and their clusters.

Relevance of a term = Σ over pages of (its page weight × (1 + ln count on that page)), divided by the
best term's sum: 0–1, 1 for the best. The site's keywords are the `max_keywords` most relevant terms
(during the crawl, among terms seen at least twice), except that a keyword once announced keeps its
place: every announced keyword is in the result, with the cluster it was announced with.

The clustering rule. A page is a vector of its content words and of the pages it links to (itself
included), weighted by inverse document frequency, so that navigation counts for nothing; a term is
the sum of the vectors of the pages it is on, each times the square of its strength there (see
`space`). Two terms are alike by the cosine of their vectors. A term joins the cluster whose members
it is most alike to on average, if that mean is at least 0.25 and it is alike (0.25) to more than half
of the cluster's first 25 members: a term that two topics share cannot chain them together. Terms that
join no cluster group among themselves by average linkage at the same 0.25 (the 150 most relevant of
them), and every group of two or more is a new cluster. A cluster is named after its most relevant
term when it forms; its id and its name never change, and it only grows (a term, once in a cluster,
stays there). Terms alike to nothing stay without a cluster.

During the crawl (a placement pass after each of the first ten pages, then whenever the page count has
grown by a tenth) a term is placed only once its evidence is in: seen on at least two pages besides the
start page (which links to everything), with 150 words of main text between them. A keyword is
announced (`KEYWORD_ENCONTRADA`, with its cluster) when it is placed; after the last page every
keyword still unannounced is placed as far as it can be, and announced. So every announcement,
`CLUSTER_FORMADO` included, holds in the final result.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Iterable

from .grouping import Profile, agglomerate, closest
from .model import Cluster, Keyword, PageAnalysis
from .space import PageSpace, Vector, term_vector

MIN_FREQUENCY = 2  # occurrences on the site before a term is admitted during the crawl
MAX_CANDIDATES = 20_000  # distinct candidate terms kept
ALIKE = 0.25  # the mean cosine at which a term belongs to a cluster
READY_PAGES = 2  # pages besides the start page before a term is placed during the crawl
READY_WORDS = 150  # words of main text on those pages
MAX_FOUNDERS = 150  # unplaced terms (the most relevant) that may found clusters in one pass


@dataclass(slots=True)
class Delta:
    """What one page changed: keywords announced and clusters formed."""

    new_keywords: list[Keyword] = field(default_factory=list)
    new_clusters: list[Cluster] = field(default_factory=list)


@dataclass(slots=True)
class Term:
    score: float = 0.0
    frequency: int = 0
    best_weight: float = -1.0
    url: str = ""
    pages: list[tuple[int, float]] = field(default_factory=list)  # (page index, strength there)


class SiteKeywords:
    """The keywords of a site as its pages arrive, with clusters over the announced ones."""

    def __init__(self, max_keywords: int) -> None:
        self.max_keywords = max_keywords
        self.terms: dict[str, Term] = {}
        self.space = PageSpace()
        self.words: list[int] = []  # words of main text, per page
        self.admitted: dict[str, None] = {}  # the current site keywords
        self.announced: dict[str, None] = {}
        self.cluster_of: dict[str, str] = {}  # term → cluster id
        self.clusters: dict[str, list[str]] = {}  # cluster id → its terms, its name first
        self._next_pass = 1  # pages read at the next grouping pass

    def add(self, page: PageAnalysis) -> Delta:
        """Fold one page in; the keywords it lets announce and the clusters it forms."""
        index = self.space.add(page)
        self.words.append(page.words)
        for term, weight in page.keywords:
            self._score(term, weight, page.counts.get(term, 1), page.url, index)
        self._select(t for t, v in self.terms.items() if v.frequency >= MIN_FREQUENCY)
        if len(self.words) < self._next_pass:
            return Delta()
        self._next_pass = len(self.words) + max(1, len(self.words) // 10)  # a pass costs O(pages)
        return self._place(final=False)

    def finish(self) -> Delta:
        """The final selection, among every term seen: the last announcements of a run."""
        self._select(self.terms)
        return self._place(final=True)

    def result(self) -> tuple[list[Keyword], list[Cluster]]:
        """The admitted keywords, ranked (posicao 1 = most relevant), and their clusters."""
        ranked, best = self._ranked(), self._best()
        return [self._keyword(t, i + 1, best) for i, t in enumerate(ranked)], [self._cluster(c) for c in self.clusters]

    # -- internals ---------------------------------------------------------------------------------

    def _score(self, term: str, weight: float, count: int, url: str, index: int) -> None:
        entry = self.terms.get(term)
        if entry is None:
            if len(self.terms) >= MAX_CANDIDATES:
                return
            entry = self.terms[term] = Term()
        strength = weight * (1.0 + math.log(count))
        entry.score += strength
        entry.frequency += count
        entry.pages.append((index, strength))
        if weight > entry.best_weight:
            entry.best_weight, entry.url = weight, url

    def _select(self, eligible: Iterable[str]) -> None:
        """The announced keywords, and the most relevant eligible terms in the room left."""
        room = self.max_keywords - len(self.announced)
        fresh = (t for t in eligible if t not in self.announced)
        best = heapq.nlargest(room, fresh, key=lambda t: (self.terms[t].score, t))
        self.admitted = dict.fromkeys([*self.announced, *best])

    def _ranked(self) -> list[str]:
        return sorted(self.admitted, key=lambda t: (-self.terms[t].score, t))

    def _ready(self, term: str) -> bool:
        """Whether a term was seen on enough pages besides the start page to be placed during the crawl."""
        pages = [index for index, _ in self.terms[term].pages if index]
        return len(pages) >= READY_PAGES and sum(self.words[i] for i in pages) >= READY_WORDS

    def _place(self, final: bool) -> Delta:
        """Place the admitted terms that are ready (all of them when final): join clusters, found new
        ones; announce the clusters formed and the keywords placed."""
        ranked = self._ranked()
        ready = [t for t in ranked if t not in self.cluster_of and (final or self._ready(t))]
        pages = self.space.vectors()
        vectors = {t: term_vector(self.terms[t].pages, pages) for t in [*ready, *self.cluster_of]}
        self._join(ready, vectors)
        founders = [t for t in ready if t not in self.cluster_of][:MAX_FOUNDERS]
        fresh = self._found(founders, vectors)
        placed = [t for t in ranked if t not in self.announced and (final or t in self.cluster_of)]
        self.announced.update(dict.fromkeys(placed))
        ranks, best = {t: i + 1 for i, t in enumerate(ranked)}, self._best()
        return Delta([self._keyword(t, ranks[t], best) for t in placed], [self._cluster(c) for c in fresh])

    def _join(self, terms: list[str], vectors: dict[str, Vector]) -> None:
        """Each term, most relevant first, joins the cluster it is most alike to, if alike enough."""
        profiles = {cid: Profile([vectors[t] for t in members]) for cid, members in self.clusters.items()}
        for term in terms:
            cid = closest(vectors[term], profiles, ALIKE)
            if cid is not None:
                self.clusters[cid].append(term)
                self.cluster_of[term] = cid
                profiles[cid].add(vectors[term])

    def _found(self, terms: list[str], vectors: dict[str, Vector]) -> list[str]:
        """New clusters among terms that joined none; their ids."""
        fresh = []
        for group in agglomerate([vectors[t] for t in terms], ALIKE):
            if len(group) >= 2:
                cid = f"cluster_{len(self.clusters) + 1}"
                self.clusters[cid] = [terms[i] for i in group]  # terms come ranked: the name first
                self.cluster_of.update(dict.fromkeys(self.clusters[cid], cid))
                fresh.append(cid)
        return fresh

    def _best(self) -> float:
        """The best admitted term's score: relevance 1."""
        return max((self.terms[t].score for t in self.admitted), default=1.0)

    def _keyword(self, term: str, rank: int, best: float) -> Keyword:
        entry = self.terms[term]
        return Keyword(termo=term, frequencia=entry.frequency, relevancia=round(min(entry.score / best, 1.0), 4),
                       posicao=rank, url=entry.url, cluster_id=self.cluster_of.get(term))

    def _cluster(self, cid: str) -> Cluster:
        """A cluster as announced and downloaded: its name first, then its terms by relevance."""
        members = self.clusters[cid]
        terms = [members[0], *sorted(members[1:], key=lambda t: -self.terms[t].score)]
        mean = sum(self.terms[t].score for t in terms) / len(terms) / self._best()
        return Cluster(id=cid, nome=members[0], keywords=terms, tamanho=len(terms),
                       relevancia_media=round(min(mean, 1.0), 4))
