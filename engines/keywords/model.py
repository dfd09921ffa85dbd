"""The values that pass between the crawler, the extractor, the aggregator and the runner."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class CrawlLimits:
    """Bounds on one crawl."""

    max_pages: int = 50
    max_bytes: int = 2 * 1024 * 1024  # per page body
    concurrency: int = 4  # requests in flight
    max_redirects: int = 5
    user_agent: str = "PonteBot/0.1 (+https://github.com/ponte-realtime/ponte; keyword extraction)"


class UnsafeURL(ValueError):
    """The URL resolves to loopback, private, link-local, reserved or metadata addresses (or cannot
    be resolved at all): refused with VALIDATION_ERROR unless private URLs are allowed. `setting` names
    the setting that would allow it, when one would."""

    def __init__(self, message: str, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class SiteUnreachable(Exception):
    """The start page could not be read at all: `code` is TIMEOUT_ERROR or NETWORK_ERROR."""

    def __init__(self, code: str, message: str, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


@dataclass(slots=True)
class Page:
    """One fetched URL: its HTML when it could be read, otherwise why not."""

    url: str  # the final URL, after redirects
    depth: int  # 0 for the start page
    html: str | None = None
    status: int | None = None
    error: str | None = None  # "timeout", "network", "http_<status>", "not_html", "offsite_redirect", "duplicate" …


@dataclass(slots=True)
class PageAnalysis:
    """What extraction found on one page (a picklable value: it comes back from a worker process)."""

    url: str  # the page's canonical URL
    lang: str  # "pt" or "en" (or another ISO code)
    links: list[str] = field(default_factory=list)  # canonical absolute http(s) links
    words: int = 0  # words of main text
    keywords: list[tuple[str, float]] = field(default_factory=list)  # (term, weight 0–1, higher is better)
    counts: dict[str, int] = field(default_factory=dict)  # term → occurrences in the main text
    vocabulary: dict[str, int] = field(default_factory=dict)  # content word → occurrences (the most frequent)
    canonical: str | None = None  # the URL its <link rel="canonical"> names, absolute
    fingerprint: str = ""  # a hash of its main text ("" when it has next to none): equal texts, one page


@dataclass(slots=True)
class Keyword:
    """One keyword of the site, with the fields the Omni document shows."""

    termo: str
    frequencia: int
    relevancia: float  # 0–1
    posicao: int  # rank, 1 is the best
    url: str  # the page where it weighs most
    cluster_id: str | None = None


@dataclass(slots=True)
class Cluster:
    """A group of related keywords."""

    id: str
    nome: str  # a representative term
    keywords: list[str]
    tamanho: int
    relevancia_media: float  # 0–1
