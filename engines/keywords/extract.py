"""One page's main text and keywords: trafilatura removes the boilerplate, YAKE scores the terms.

Pure and CPU-only: `analyse_html` runs in a worker process, which keeps its extractors between pages.
Each line of the main text (a paragraph, a heading, a list item) is a sentence of its own, so that no
term runs from one list item into the next.
"""
from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections import Counter

import lxml.html
import trafilatura
import yake

from .model import PageAnalysis
from .urls import links_of

LANGUAGES = ("pt", "en")
STOPWORDS = {
    "pt": frozenset("de a o que e do da em um para é com não uma os no se na por mais as dos como mas ao ele "
                    "das à seu sua ou quando muito nos já eu também só pelo pela até isso ela entre depois "
                    "sem mesmo aos seus quem nas me esse eles você essa num nem suas meu às minha numa pelos".split()),
    "en": frozenset("the of and to a in is that for it as was with be by on not he this are or his from at "
                    "which but have an they you were her all she there would their we him been has when who "
                    "will more no if out so what up about into than them can only other new some".split()),
}
WORD = re.compile(r"\w+", re.UNICODE)
SENTENCE_END = re.compile(r"[.!?:;…]$")
BLOCKS = ("p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th", "dt", "dd", "blockquote", "pre",
          "br", "tr", "section", "article", "figcaption")
VOCABULARY = 300  # the most frequent content words kept per page, for comparing pages
SHORT_TEXT = 500  # characters: below this, trafilatura's result is checked against a structural cleanup
MIN_TEXT = 20  # characters: below this the page has no text worth scoring


@functools.cache
def extractor(lang: str, top: int) -> yake.KeywordExtractor:
    """A YAKE extractor per language, built once per process."""
    return yake.KeywordExtractor(lan=lang, n=3, top=top, dedup_lim=0.8)


def analyse_html(html: str, url: str, max_terms: int = 40) -> PageAnalysis:
    """Links, language, main-text word count, weighted keywords and their counts, content words and
    fingerprint of one HTML page."""
    text = sentences(main_text(html))
    lang = language(html, text)
    links, named = links_of(html, url)
    analysis = PageAnalysis(url=url, lang=lang, links=links, words=len(WORD.findall(text)), canonical=named)
    if len(text) < MIN_TEXT:
        return analysis
    lowered = text.lower()
    analysis.fingerprint = hashlib.sha256(" ".join(lowered.split()).encode()).hexdigest()
    analysis.vocabulary = vocabulary(lowered, lang)
    for term, score in extractor(lang if lang in LANGUAGES else "en", max_terms).extract_keywords(text):
        term = " ".join(term.lower().split())
        count = occurrences(term, lowered)
        if useful(term) and count and term not in analysis.counts:
            analysis.keywords.append((term, weight(float(score))))
            analysis.counts[term] = count
    return analysis


def main_text(html: str) -> str:
    """The page's main text without navigation, headers and footers."""
    try:
        text = trafilatura.extract(html, include_comments=False, include_tables=False, deduplicate=False)
    except Exception:  # noqa: BLE001 - malformed markup: fall back to the markup below
        text = None
    if text and len(text) >= SHORT_TEXT:
        return str(text)
    return fallback_text(html) or str(text or "")  # on short pages trafilatura keeps the navigation


def fallback_text(html: str) -> str:
    """For pages too short for trafilatura: `<main>` or `<article>` if any, else the body, without
    nav, header, footer, aside, script and style."""
    try:
        doc = lxml.html.document_fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return ""
    for element in doc.xpath("//nav|//header|//footer|//aside|//script|//style|//noscript|//form"):
        element.drop_tree()
    root = next(iter(doc.xpath("//main|//article")), doc)
    for block in root.iter(*BLOCKS):
        block.tail = "\n" + (block.tail or "")
    lines = (" ".join(line.split()) for line in root.text_content().splitlines())
    return "\n".join(line for line in lines if line)


def sentences(text: str) -> str:
    """The text with each line ended as a sentence, so that YAKE's terms never span two lines."""
    lines = (line.strip() for line in text.splitlines())
    return "\n".join(line if SENTENCE_END.search(line) else line + "." for line in lines if line)


def vocabulary(lowered_text: str, lang: str) -> dict[str, int]:
    """The page's most frequent content words (letters only, 3+ of them, no stopwords)."""
    stop = STOPWORDS.get(lang, STOPWORDS["en"])
    words = Counter(w for w in WORD.findall(lowered_text) if len(w) > 2 and w.isalpha() and w not in stop)
    return dict(words.most_common(VOCABULARY))


def language(html: str, text: str) -> str:
    """The page's declared language (`<html lang>`), else the language whose stopwords it uses most."""
    match = re.search(r"<html[^>]*\blang=[\"']?([A-Za-z]{2})", html[:2048], re.IGNORECASE)
    if match:
        return match.group(1).lower()
    words = [w.lower() for w in WORD.findall(text[:5000])]
    return max(LANGUAGES, key=lambda lang: sum(w in STOPWORDS[lang] for w in words))


def weight(score: float) -> float:
    """YAKE's score (lower is better, unbounded) as a weight in (0, 1], higher is better."""
    return round(1.0 / (1.0 + 10.0 * max(score, 0.0)), 4)


def occurrences(term: str, lowered_text: str) -> int:
    """How often a term occurs in the text as whole words."""
    return len(re.findall(rf"(?<!\w){re.escape(term)}(?!\w)", lowered_text))


def useful(term: str) -> bool:
    """Drop one-letter terms, numbers and URL fragments."""
    bare = unicodedata.normalize("NFKC", term)
    return len(bare) > 2 and not bare.replace(" ", "").isdigit() and "/" not in bare and "." not in bare
