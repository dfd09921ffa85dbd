"""URL canonicalisation, a page's links and canonical link, and the register that counts each page once."""
from __future__ import annotations

import pytest

from engines.keywords.model import Page, PageAnalysis
from engines.keywords.urls import Register, canonical, links_of


@pytest.mark.parametrize("url, expected", [
    ("http://example.com", "http://example.com/"),
    ("http://example.com/index.html", "http://example.com/"),
    ("http://example.com/blog/index.htm", "http://example.com/blog"),
    ("http://example.com/blog/INDEX.PHP?p=2", "http://example.com/blog?p=2"),
    ("http://example.com/blog/", "http://example.com/blog"),
    ("http://example.com/blog//", "http://example.com/blog"),
    ("http://example.com/blog/index.html/", "http://example.com/blog"),
    ("http://example.com/a#section-2", "http://example.com/a"),
    ("http://example.com/#top", "http://example.com/"),
    ("HTTP://Example.COM./A", "http://example.com/A"),
    ("http://example.com:80/a", "http://example.com/a"),
    ("https://example.com:443/a", "https://example.com/a"),
    ("https://example.com:8443/a", "https://example.com:8443/a"),
    ("http://user:secret@example.com/a", "http://example.com/a"),
    ("http://[::1]:8080/a/", "http://[::1]:8080/a"),
    ("http://example.com/a?utm_source=x&utm_medium=email&UTM_Campaign=y", "http://example.com/a"),
    ("http://example.com/a?gclid=1&fbclid=2&mc_cid=3&mc_eid=4&ref=home&msclkid=5", "http://example.com/a"),
    ("http://example.com/a?b=2&a=1&utm_term=z", "http://example.com/a?a=1&b=2"),
    ("http://example.com/a?q=caf%C3%A9+cr%C3%A8me&&page=2", "http://example.com/a?page=2&q=caf%C3%A9+cr%C3%A8me"),
    ("http://example.com/a?", "http://example.com/a"),
    ("http://example.com/Caf%C3%A9/", "http://example.com/Caf%C3%A9"),
    ("http://example.com/reference", "http://example.com/reference"),
    ("http://example.com/a?referrer=x", "http://example.com/a?referrer=x"),
])
def test_canonical_forms(url: str, expected: str) -> None:
    """Scheme and host case, credentials, default ports, fragments, index pages, trailing slashes and
    tracking parameters go; the rest of the query is sorted, and a path keeps its case and escapes."""
    assert canonical(url) == expected


@pytest.mark.parametrize("url", ["http://EXAMPLE.com/x/index.html?utm_source=a&b=1#f", "https://e.com:443/",
                                 "http://e.com/a/b/?z=1&y=2", "http://[::1]/"])
def test_canonical_is_idempotent(url: str) -> None:
    """Canonicalising a canonical URL changes nothing."""
    assert canonical(canonical(url)) == canonical(url)


def test_canonical_refuses_a_broken_port() -> None:
    """A URL that cannot be parsed raises ValueError (callers skip it)."""
    with pytest.raises(ValueError):
        canonical("http://example.com:99999999/")


def test_links_are_canonical_and_the_canonical_link_is_found() -> None:
    """Links come back canonical and once each, other schemes and broken URLs are dropped, and
    <link rel="canonical"> is read relative to <base>."""
    html = ("<html><head><base href='http://b.org/blog/'><link rel='alternate stylesheet' href='/s.css'>"
            "<link rel='Canonical' href='post'></head><body><a href='post/#c'>1</a><a href='post?utm_source=x'>2</a>"
            "<a href='/index.html'>3</a><a href='mailto:a@b.org'>4</a><a href='ftp://b.org/f'>5</a>"
            "<a href='http://b.org:99999999/'>6</a><a href='HTTPS://B.org/Other/'>7</a></body></html>")
    links, named = links_of(html, "http://b.org/blog/post")
    assert links == ["http://b.org/blog/post", "http://b.org/", "https://b.org/Other"]
    assert named == "http://b.org/blog/post"
    assert links_of("<p>no links</p>", "http://b.org/") == ([], None)


def analysed(url: str, canonical_link: str | None = None, text: str = "") -> tuple[Page, PageAnalysis]:
    """A fetched page and its analysis, with the canonical link and main-text fingerprint given."""
    return Page(url, 1, html="<p/>"), PageAnalysis(url, "en", canonical=canonical_link, fingerprint=text)


def test_register_counts_each_page_once() -> None:
    """Names queue once; a page naming a same-site canonical URL takes that name; a copy by name or by
    text is refused; a canonical link to another site, or to the start page from elsewhere, is ignored."""
    register = Register("http://s.org/")
    assert register.queue("http://s.org/a") and not register.queue("http://s.org/a")
    assert register.claim("http://s.org/") and not register.claim("http://s.org/")
    page, analysis = analysed("http://s.org/print/a", "http://s.org/a", "text-a")
    assert register.admit(page, analysis) and page.url == analysis.url == "http://s.org/a"
    assert not register.claim("http://s.org/a")  # queued before: its name is taken now
    assert not register.admit(*analysed("http://s.org/archive/a", None, "text-a"))  # the same main text
    offsite = analysed("http://s.org/b", "http://other.org/b", "text-b")
    assert register.admit(*offsite) and offsite[0].url == "http://s.org/b"
    home = analysed("http://s.org/c", "http://s.org/", "text-c")
    assert register.admit(*home) and home[0].url == "http://s.org/c"
    empty = [analysed(f"http://s.org/e{i}", None, "") for i in range(2)]
    assert all(register.admit(*pair) for pair in empty)  # no text, no fingerprint: not copies of each other
    assert register.copies == 3
