"""Page analysis (pure): main text without boilerplate, language, weighted keywords; site aggregation."""
from __future__ import annotations

from engines.keywords.cluster import SiteKeywords
from engines.keywords.extract import analyse_html, language, main_text
from engines.keywords.model import PageAnalysis
from tests.fixtures.blog import TOPICS, article_body, page

ENGLISH = ("<html><body><nav>Home | Subscribe to our newsletter</nav><article><h1>Solar panels</h1><p>"
           + "Solar panels turn sunlight into electricity. A solar panel on the roof with a good inverter "
           "cuts the electricity bill. The inverter converts direct current from the solar panels. " * 4
           + "</p></article><footer>Subscribe to our newsletter</footer></body></html>")


def article(topic: str, index: int = 0) -> str:
    slug, title, text = TOPICS[topic][1][index]
    return page(title, article_body(slug, text, topic))


def test_portuguese_article_keywords() -> None:
    """A Portuguese article's topic terms rank high, with weights in (0, 1] and real counts."""
    analysis = analyse_html(article("cafe"), "http://blog/cafe/torra-do-cafe")
    terms = [term for term, _ in analysis.keywords]
    assert analysis.lang == "pt" and {"torra", "café especial", "grãos"} <= set(terms[:15])
    assert all(0 < weight <= 1 for _, weight in analysis.keywords)
    assert analysis.counts["torra"] >= 5 and analysis.words > 80
    assert "http://blog/cafe/moagem-e-espresso" in analysis.links


def test_boilerplate_is_removed() -> None:
    """Navigation and footer text repeated on every page does not become a keyword."""
    for text in (main_text(article("solar")), main_text(page("Sobre", "<p>Um blog.</p>"))):
        assert "newsletter" not in text.lower() and "direitos reservados" not in text.lower()


def test_english_page() -> None:
    """An English page without a lang attribute is detected as English and scored as such."""
    analysis = analyse_html(ENGLISH, "http://blog/solar")
    assert analysis.lang == "en" and "newsletter" not in " ".join(t for t, _ in analysis.keywords)
    assert {"solar panels", "inverter"} & {term for term, _ in analysis.keywords[:10]}
    assert language("<html lang='pt-BR'>", "the of and") == "pt"


def test_garbage_does_not_crash() -> None:
    """Empty, binary-looking or broken markup gives an empty analysis, not an exception."""
    for html in ("", "<<<>>>", "\x00\x01" * 50, "<html><body></body></html>", "<p>" * 5000):
        analysis = analyse_html(html, "http://blog/")
        assert analysis.keywords == [] or all(0 < w <= 1 for _, w in analysis.keywords)


def test_site_keywords_are_bounded_ranked_and_announced_once() -> None:
    """The result never exceeds max_keywords, ranks are 1..n, relevance is 0–1, and every result term was announced."""
    site = SiteKeywords(max_keywords=8)
    announced: list[str] = []
    for topic in TOPICS:
        for index in (0, 1):
            delta = site.add(analyse_html(article(topic, index), f"http://b/{topic}/{index}"))
            announced += [k.termo for k in delta.new_keywords]
    announced += [k.termo for k in site.finish().new_keywords]
    keywords, clusters = site.result()
    assert len(keywords) == 8 and [k.posicao for k in keywords] == list(range(1, 9))
    assert keywords[0].relevancia == 1.0 and all(0 <= k.relevancia <= 1 for k in keywords)
    assert len(announced) == len(set(announced)) and {k.termo for k in keywords} <= set(announced)
    assert all(c.tamanho == len(c.keywords) >= 2 for c in clusters)


def test_unrelated_terms_are_not_clustered() -> None:
    """Terms that never share a page stay apart; terms sharing pages group, with a stable id."""
    site = SiteKeywords(max_keywords=10)
    for index, terms in enumerate((["café", "torra"], ["café", "torra"], ["ciclovia"], ["ciclovia"])):
        site.add(PageAnalysis(f"http://b/{index}", "pt", keywords=[(t, 0.5) for t in terms],
                              counts={t: 2 for t in terms}))
    keywords, clusters = site.result()
    assert [sorted(c.keywords) for c in clusters] == [["café", "torra"]]
    assert {k.termo: k.cluster_id for k in keywords}["ciclovia"] is None
