"""Pages and terms as vectors, to tell which terms belong together.

A page is the content words of its main text plus the pages it links to (itself included), each
weighted by its inverse document frequency over the pages read so far: what every page has (the
navigation, the footer's links) weighs nothing, what few pages share weighs most. Words and links each
count for half of a page's vector. A term is the sum of the vectors of the pages it is on, each times
the square of the term's strength there (weight × (1 + ln count)): a word that two topics use goes with
the pages where it weighs most. Two terms are alike as far as their vectors point the same way (cosine,
0–1).
"""
from __future__ import annotations

import heapq
import math
from collections import Counter, defaultdict
from typing import Iterable

from .model import PageAnalysis

Vector = dict[str, float]
TERM_PAGES = 50  # a term's strongest pages that make its vector
TERM_FEATURES = 400  # the largest components a term's vector keeps


class PageSpace:
    """The pages of a site, by their words and links."""

    def __init__(self) -> None:
        self.pages: list[tuple[dict[str, int], frozenset[str]]] = []
        self.df: Counter[str] = Counter()  # feature → pages that have it

    def add(self, page: PageAnalysis) -> int:
        """Add a page; its index."""
        links = frozenset(page.links) | {page.url}  # URLs hold "://": never a word
        self.pages.append((page.vocabulary, links))
        self.df.update(page.vocabulary.keys())
        self.df.update(links)
        return len(self.pages) - 1

    def vectors(self) -> list[Vector]:
        """Every page's vector, weighted by the document frequencies of now."""
        return [self._vector(words, links) for words, links in self.pages]

    def _vector(self, words: dict[str, int], links: frozenset[str]) -> Vector:
        text = unit({w: (1.0 + math.log(c)) * self._idf(w) for w, c in words.items()})
        refs = unit({link: self._idf(link) for link in links})
        return unit(combined((text, refs)))

    def _idf(self, feature: str) -> float:
        return math.log(len(self.pages) / self.df[feature])


def term_vector(occurrences: Iterable[tuple[int, float]], pages: list[Vector]) -> Vector:
    """A term's vector: the sum of its pages' vectors, each times the square of the term's strength there."""
    total: defaultdict[str, float] = defaultdict(float)
    for index, strength in heapq.nlargest(TERM_PAGES, occurrences, key=lambda o: o[1]):
        for feature, value in pages[index].items():
            total[feature] += strength * strength * value
    return unit(dict(heapq.nlargest(TERM_FEATURES, total.items(), key=lambda item: item[1])))


def unit(vector: Vector) -> Vector:
    """The vector scaled to length 1, without its zero components (the empty vector stays empty)."""
    norm = math.sqrt(sum(v * v for v in vector.values()))
    return {k: v / norm for k, v in vector.items() if v} if norm else {}


def combined(vectors: Iterable[Vector]) -> Vector:
    """The sum of vectors."""
    total: defaultdict[str, float] = defaultdict(float)
    for vector in vectors:
        for feature, value in vector.items():
            total[feature] += value
    return dict(total)


def dot(a: Vector, b: Vector) -> float:
    """The dot product (the cosine, for unit vectors)."""
    if len(a) > len(b):
        a, b = b, a
    return sum(value * b.get(feature, 0.0) for feature, value in a.items())
