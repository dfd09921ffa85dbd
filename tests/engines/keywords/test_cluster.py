"""Site keywords and their clusters (pure): ranking, the clustering rule, and announcements that hold."""
from __future__ import annotations

import functools
import random

import pytest

from engines.keywords.cluster import Delta, SiteKeywords
from engines.keywords.extract import analyse_html
from engines.keywords.model import Cluster, Keyword, PageAnalysis
from tests.fixtures import blog, topics


def synthetic(url: str, terms: list[str], words: list[str], links: list[str]) -> PageAnalysis:
    """A page with the given keywords (weight 0.5, twice each), content words and links."""
    return PageAnalysis(url, "en", links=links, words=200, keywords=[(t, 0.5) for t in terms],
                        counts={t: 2 for t in terms}, vocabulary={w: 3 for w in words})


@functools.cache
def topic_pages() -> tuple[PageAnalysis, ...]:
    """The four-topic site's distinct pages, analysed once for all tests."""
    return tuple(analyse_html(html, "http://t.org" + path) for path, html in topics.distinct_pages())


def crawl_order(seed: int) -> list[PageAnalysis]:
    """The home page first, then the other pages in an order a concurrent crawl could produce."""
    home, *rest = topic_pages()
    indexes, others = rest[:4], rest[4:]
    order = random.Random(seed)
    order.shuffle(indexes)
    order.shuffle(others)
    return [home, *indexes, *others]


def run(pages: list[PageAnalysis], max_keywords: int) -> tuple[SiteKeywords, list[Delta]]:
    """Every page folded in, then finished: the site and each step's announcements."""
    site = SiteKeywords(max_keywords)
    deltas = [site.add(page) for page in pages]
    return site, [*deltas, site.finish()]


def test_terms_on_pages_apart_stay_apart() -> None:
    """Terms that never share a page stay apart; terms sharing pages group."""
    site = SiteKeywords(max_keywords=10)
    for index, terms in enumerate((["café", "torra"], ["café", "torra"], ["ciclovia"], ["ciclovia"])):
        site.add(synthetic(f"http://b/{index}", terms, [], []))
    site.finish()
    keywords, clusters = site.result()
    assert [sorted(c.keywords) for c in clusters] == [["café", "torra"]]
    assert {k.termo: k.cluster_id for k in keywords}["ciclovia"] is None


def test_a_shared_word_does_not_chain_two_topics() -> None:
    """A word used on pages of two topics joins at most one of them; the two topics stay two clusters."""
    astronomy = [f"http://s/astro/{i}" for i in range(3)]
    cycling = [f"http://s/bike/{i}" for i in range(3)]
    pages = [synthetic("http://s/", [], ["welcome"], [*astronomy, *cycling])]
    for group, terms, words in ((astronomy, ["telescope", "planets", "moon"], ["orbit", "lens", "star"]),
                                (cycling, ["bike", "saddle", "chain"], ["wheel", "pedal", "tyre"])):
        for index, url in enumerate(group):
            shared = ["costs"] if index == 0 else []
            pages.append(synthetic(url, [terms[index], terms[(index + 1) % 3], *shared], words, group))
    site, _ = run(pages, 20)
    _, clusters = site.result()
    sides = [{"astro" if t in ("telescope", "planets", "moon") else "bike" for t in c.keywords if t != "costs"}
             for c in clusters]
    assert sorted(map(sorted, sides)) == [["astro"], ["bike"]]


def test_the_blog_ranks_and_bounds_its_keywords() -> None:
    """The result never exceeds max_keywords, ranks are 1..n, relevance is 0–1, and every term was announced once."""
    site = SiteKeywords(max_keywords=8)
    deltas = []
    for topic, (_, articles) in blog.TOPICS.items():
        for slug, title, text in articles:
            html = blog.page(title, blog.article_body(slug, text, topic))
            deltas.append(site.add(analyse_html(html, f"http://b/{topic}/{slug}")))
    deltas.append(site.finish())
    keywords, clusters = site.result()
    announced = [k.termo for delta in deltas for k in delta.new_keywords]
    assert len(keywords) == 8 and [k.posicao for k in keywords] == list(range(1, 9))
    assert keywords[0].relevancia == 1.0 and all(0 <= k.relevancia <= 1 for k in keywords)
    assert sorted(announced) == sorted(k.termo for k in keywords)
    assert all(c.tamanho == len(c.keywords) >= 2 for c in clusters)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("max_keywords", [30, 50, 100])
def test_four_topics_make_pure_clusters(seed: int, max_keywords: int) -> None:
    """On the four-topic site, in any crawl order, every cluster is ≥ 90% one topic and none holds half the terms."""
    site, _ = run(crawl_order(seed), max_keywords)
    _, clusters = site.result()
    clustered = sum(c.tamanho for c in clusters)
    assert len(clusters) >= 4 and clustered >= 0.8 * max_keywords
    for cluster in clusters:
        assert topics.purity(cluster.keywords) >= 0.9, cluster
        assert cluster.tamanho <= clustered / 2, cluster


@pytest.mark.parametrize("seed", range(4))
def test_announcements_hold_in_the_result(seed: int) -> None:
    """Each keyword is announced once, with the cluster it ends in; each cluster keeps its announced id
    and name and only grows; no keyword is announced before its cluster is."""
    site, deltas = run(crawl_order(seed), 40)
    keywords, clusters = site.result()
    final = {k.termo: k.cluster_id for k in keywords}
    by_id = {c.id: c for c in clusters}
    formed: set[str] = set()
    announced: list[Keyword] = []
    for delta in deltas:
        formed |= {c.id for c in delta.new_clusters}
        assert all(k.cluster_id is None or k.cluster_id in formed for k in delta.new_keywords)
        announced += delta.new_keywords
        for cluster in delta.new_clusters:
            assert_grown(cluster, by_id[cluster.id])
    assert sorted(k.termo for k in announced) == sorted(final)
    assert all(final[k.termo] == k.cluster_id for k in announced)
    assert formed == set(by_id) and all(c.nome == c.keywords[0] for c in clusters)


def assert_grown(announced: Cluster, final: Cluster) -> None:
    """The final cluster is the announced one, grown: same id and name, every announced member kept."""
    assert (final.id, final.nome) == (announced.id, announced.nome)
    assert set(announced.keywords) <= set(final.keywords)


def test_a_term_waits_for_its_evidence() -> None:
    """During the crawl a term seen only on the start page and one other page is not announced; after
    the last page it is."""
    site = SiteKeywords(max_keywords=10)
    early = [site.add(synthetic("http://s/", ["solo"], ["a"], [])),
             site.add(synthetic("http://s/x", ["solo"], ["b"], []))]
    assert [k for delta in early for k in delta.new_keywords] == []
    assert [k.termo for k in site.finish().new_keywords] == ["solo"]
