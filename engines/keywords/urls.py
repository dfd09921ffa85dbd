"""One name per page: URL canonicalisation, and the links and canonical link of an HTML page.

`canonical` is what the crawler requests, compares and reports: a page reached under two names is read
once. It lowercases the scheme and host, drops credentials, default ports, the fragment, index file
names (`/index.html`, `/index.htm`, `/index.php` … → the directory), trailing slashes (`/a/` → `/a`,
the root stays `/`) and tracking parameters (`utm_*`, `gclid`, `fbclid`, `mc_cid`, `ref` …), and sorts
the rest of the query. Redirects still lead wherever the server says (a server that wants `/a/`
redirects `/a` there), and the page keeps the canonical name of where it ended.
"""
from __future__ import annotations

from urllib.parse import unquote_plus, urljoin, urlsplit, urlunsplit

import lxml.html

from .model import Page, PageAnalysis

INDEX_PAGES = frozenset({"index.html", "index.htm", "index.php", "index.shtml", "default.htm", "default.aspx"})
TRACKING = frozenset({"gclid", "dclid", "gbraid", "wbraid", "fbclid", "msclkid", "yclid", "twclid", "igshid",
                      "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "ref", "ref_src", "spm"})
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_LINKS = 500  # per page
SKIPPED = ("mailto:", "javascript:", "tel:", "data:", "#")


def canonical(url: str) -> str:
    """The URL's canonical form (see the module docstring); ValueError if it cannot be parsed."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    return urlunsplit((scheme, _netloc(scheme, parts.hostname or "", parts.port), _path(parts.path),
                       _query(parts.query), ""))


def _netloc(scheme: str, host: str, port: int | None) -> str:
    host = host.rstrip(".")  # urlsplit lowercases it already
    if ":" in host:
        host = f"[{host}]"
    return host if port is None or DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"


def _path(path: str) -> str:
    path = path.rstrip("/")
    head, _, last = path.rpartition("/")
    if last.lower() in INDEX_PAGES:
        path = head.rstrip("/")
    return path or "/"


def _query(query: str) -> str:
    pairs = [pair for pair in query.split("&") if pair and not tracking(pair.split("=", 1)[0])]
    return "&".join(sorted(pairs))


def tracking(name: str) -> bool:
    """Whether a query parameter only tells where a visitor came from."""
    name = unquote_plus(name).lower()
    return name.startswith("utm_") or name in TRACKING


def site_of(url: str) -> str:
    """The host a crawl stays on (`www.` is the same site)."""
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def links_of(html: str, base_url: str) -> tuple[list[str], str | None]:
    """The page's canonical http(s) links in document order (at most MAX_LINKS), and the canonical URL
    its `<link rel="canonical">` names, if any (absolute, not checked)."""
    try:
        doc = lxml.html.document_fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return [], None
    base = doc.find(".//base[@href]")
    base_url = urljoin(base_url, base.get("href")) if base is not None else base_url
    named = next((link.get("href") for link in doc.iter("link")
                  if "canonical" in (link.get("rel") or "").lower().split() and link.get("href")), None)
    return _anchors(doc, base_url), _absolute(base_url, named) if named else None


def _anchors(doc: lxml.html.HtmlElement, base_url: str) -> list[str]:
    links: dict[str, None] = {}
    for anchor in doc.iter("a"):
        href = (anchor.get("href") or "").strip()
        url = _absolute(base_url, href) if href and not href.startswith(SKIPPED) else None
        if url is not None:
            links[url] = None
            if len(links) >= MAX_LINKS:
                break
    return list(links)


def _absolute(base_url: str, href: str) -> str | None:
    """The canonical absolute http(s) URL a reference names, None for other schemes and broken URLs."""
    try:
        url = canonical(urljoin(base_url, href.strip()))
    except ValueError:
        return None
    return url if urlsplit(url).scheme in ("http", "https") and urlsplit(url).hostname else None


class Register:
    """The pages of one crawl, by name and by text: which links are new, which pages are copies.

    A page is counted under its canonical URL, or under the URL its `<link rel="canonical">` names when
    that is on the same site; a page whose name was read already, or whose main text equals a page read
    already, is a copy and is not counted. A canonical link naming the start page from another page is
    ignored: themes that print the home URL on every page would otherwise make the whole site one page.
    """

    def __init__(self, start: str) -> None:
        self.start = start
        self.queued: set[str] = {start}  # names read or to be read
        self.read: set[str] = set()
        self.texts: set[str] = set()
        self.copies = 0  # pages fetched and found to be copies

    def queue(self, url: str) -> bool:
        """Whether a link names a page not read nor queued yet (and now it is queued)."""
        new = url not in self.queued
        self.queued.add(url)
        return new

    def claim(self, url: str) -> bool:
        """Whether a fetched page's name is new (redirects can lead to a page read already)."""
        new = url not in self.read
        self.read.add(url)
        self.copies += not new
        return new

    def admit(self, page: Page, analysis: PageAnalysis) -> bool:
        """Whether an analysed page is the first copy of its content; it takes the name it is counted under."""
        name = self.name_of(page.url, analysis.canonical)
        if (name != page.url and name in self.read) or analysis.fingerprint in self.texts:
            self.copies += 1
            return False
        self.read.add(name)
        self.queued.add(name)
        if analysis.fingerprint:
            self.texts.add(analysis.fingerprint)
        page.url = analysis.url = name
        return True

    def name_of(self, url: str, named: str | None) -> str:
        """The name a page fetched at `url` is counted under, given the canonical URL it names."""
        try:
            name = canonical(named) if named else url
        except ValueError:
            return url
        if site_of(name) != site_of(url) or urlsplit(name).scheme not in ("http", "https"):
            return url
        return url if name == self.start and url != self.start else name
