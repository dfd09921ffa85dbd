"""Page analysis (pure): main text without boilerplate, language, weighted keywords, content words, fingerprint."""
from __future__ import annotations

from engines.keywords.extract import analyse_html, language, main_text
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


def test_list_items_are_sentences_of_their_own() -> None:
    """No term runs from one list item or heading into the next."""
    html = page("Café", "<p>Artigos sobre café</p><ul><li>A torra do café</li><li>Moagem fina</li></ul>")
    terms = [term for term, _ in analyse_html(html, "http://blog/cafe").keywords]
    lines = ["café", "artigos sobre café", "a torra do café", "moagem fina"]
    assert all(any(term in line for line in lines) for term in terms), terms
    assert "torra" in terms and "moagem fina" in terms


def test_same_page_same_analysis() -> None:
    """Analysing a page twice gives the same result (nothing is remembered between pages), so copies of a
    page share a fingerprint; another text has another."""
    first, second = (analyse_html(article("cafe"), f"http://blog/{n}") for n in (1, 2))
    assert first.fingerprint and first.fingerprint == second.fingerprint
    assert first.keywords == second.keywords and first.vocabulary == second.vocabulary
    assert analyse_html(article("solar"), "http://blog/3").fingerprint != first.fingerprint
    assert analyse_html(page("Vazio", ""), "http://blog/4").fingerprint == ""


def test_content_words_and_canonical_link() -> None:
    """The vocabulary holds the page's content words without stopwords; the canonical link is read."""
    html = article("cafe").replace("</head>", "<link rel='canonical' href='/cafe/torra'></head>")
    analysis = analyse_html(html, "http://blog/cafe/torra?utm_source=x")
    assert analysis.vocabulary["torra"] >= 5 and "de" not in analysis.vocabulary and "que" not in analysis.vocabulary
    assert analysis.canonical == "http://blog/cafe/torra"
