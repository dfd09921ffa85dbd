"""A polite, bounded, same-site breadth-first crawler on aiohttp's client.

`profundidade` (depth) counts links followed from the start page: depth 1 reads the start page and
the pages it links to, depth 2 also the pages those link to, and so on; `max_pages` bounds the requests
of the whole crawl. Every URL is canonicalised before it is requested (`urls.canonical`), and a page
read under another name (a redirect, `<link rel="canonical">`, the same main text) is fetched but not
counted (`urls.Register`). Robots.txt is read once (Protego); a missing or unreadable robots.txt allows
everything, as most crawlers do. Every request waits on the execution's gate first, so no request
leaves while an execution is paused (requests already in flight may finish).
"""
from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator, Awaitable, Callable
from urllib.parse import urldefrag, urljoin, urlsplit

import aiohttp
from protego import Protego

from .model import CrawlLimits, Page, PageAnalysis, SiteUnreachable, UnsafeURL
from .netguard import ALLOW_HINT, ALLOW_SETTING, GuardedResolver, check_host
from .urls import Register, canonical, site_of

HTML_TYPES = ("text/html", "application/xhtml+xml")
MAX_CRAWL_DELAY = 5.0  # seconds: a robots.txt Crawl-delay above this is capped
Analyse = Callable[[Page], Awaitable["PageAnalysis | None"]]


class Crawler:
    """One crawl session: a guarded connector (no private addresses), robots.txt, bounded everything."""

    def __init__(self, limits: CrawlLimits, allow_private: bool = False) -> None:
        self.limits = limits
        self.allow_private = allow_private
        self._resolver = GuardedResolver(allow_private)
        self._session: aiohttp.ClientSession | None = None
        self._register = Register("")
        self.expected = 0  # pages of the current crawl read or to be read, as far as known
        self._delay = 0.0
        self._next_request = 0.0
        self._pacing = asyncio.Lock()

    async def __aenter__(self) -> "Crawler":
        connector = aiohttp.TCPConnector(resolver=self._resolver, limit=self.limits.concurrency)
        self._session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                              headers={"User-Agent": self.limits.user_agent})
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def check(self, url: str) -> None:
        """Raise UnsafeURL for a URL that is not public http(s), SiteUnreachable if its host has no address."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UnsafeURL("only absolute http and https URLs can be crawled")
        if parts.username or parts.password:
            raise UnsafeURL("URLs with credentials are not crawled")
        if self.allow_private:
            return
        check_host(parts.hostname)
        try:
            await self._resolver.resolve(parts.hostname, parts.port or 0)
        except OSError as exc:
            raise SiteUnreachable("NETWORK_ERROR", f"não foi possível resolver {parts.hostname}",
                                  {"url": url, "causa": type(exc).__name__}) from None

    async def crawl(self, start_url: str, *, depth: int, timeout: float, gate: asyncio.Event,
                    analyse: Analyse) -> AsyncIterator[tuple[Page, PageAnalysis | None]]:
        """Pages breadth-first with their analyses; SiteUnreachable if the start page cannot be read."""
        await self.check(start_url)
        start = canonical(start_url)
        robots = await self._robots(start, timeout, gate)
        self._register = Register(start)
        first, analysis = await self._visit(start, 0, timeout, gate, analyse)
        if first.error is not None:
            raise unreachable(first)
        budget = self.limits.max_pages - 1
        frontier = self._follow(analysis, start, robots) if depth else []
        self.expected = 1 + min(len(frontier), budget)
        yield first, analysis
        for level in range(1, depth + 1):
            if not frontier or budget <= 0:
                return
            frontier, taken = frontier[:budget], []
            budget -= len(frontier)
            async for page, analysis in self._level(frontier, level, timeout, gate, analyse):
                if level < depth:
                    taken.extend(self._follow(analysis, start, robots))
                self.expected = self.limits.max_pages - budget + min(len(taken), budget) - self._register.copies
                yield page, analysis
            frontier = taken

    async def _level(self, urls: list[str], level: int, timeout: float, gate: asyncio.Event,
                     analyse: Analyse) -> AsyncIterator[tuple[Page, PageAnalysis | None]]:
        """One breadth-first level, at most `concurrency` pages at once, yielded as they complete."""
        todo, pending = iter(urls), set[asyncio.Task[tuple[Page, PageAnalysis | None]]]()
        try:
            while True:
                while len(pending) < self.limits.concurrency and (url := next(todo, None)) is not None:
                    pending.add(asyncio.ensure_future(self._visit(url, level, timeout, gate, analyse)))
                if not pending:
                    return
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    page, analysis = task.result()
                    if page.error != "duplicate":
                        yield page, analysis
        finally:  # the consumer stopped (cancel, aclose): nothing of ours keeps running
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _visit(self, url: str, level: int, timeout: float, gate: asyncio.Event,
                     analyse: Analyse) -> tuple[Page, PageAnalysis | None]:
        """The page and its analysis, or none: a page read already under another name is a "duplicate"."""
        if not self._register.claim(url):  # a page read since it was queued took this name (rel=canonical)
            return Page(url, level, error="duplicate"), None
        page = await self.fetch(url, level, timeout, gate)
        if page.url != url and not self._register.claim(page.url) and page.error is None:
            page.error = "duplicate"  # redirected to a page read already
        analysis = await analyse(page) if page.error is None else None
        if analysis is not None and not self._register.admit(page, analysis):
            page.error, analysis = "duplicate", None
        return page, analysis

    def _follow(self, analysis: PageAnalysis | None, start: str, robots: Protego) -> list[str]:
        """New same-site links of a page that robots.txt allows."""
        if analysis is None:
            return []
        site, agent, found = site_of(start), self.limits.user_agent, []
        for link in analysis.links:
            try:
                link = canonical(link)
            except ValueError:
                continue
            if site_of(link) == site and self._register.queue(link) and robots.can_fetch(link, agent):
                found.append(link)
        return found

    async def fetch(self, url: str, depth: int, timeout: float, gate: asyncio.Event) -> Page:
        """One page, following same-site redirects by hand so that each hop is checked."""
        assert self._session is not None, "use the crawler as an async context manager"
        for _ in range(self.limits.max_redirects + 1):
            await gate.wait()
            await self._pace()
            try:
                async with self._session.get(url, allow_redirects=False,
                                             timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                    redirect = response.status in (301, 302, 303, 307, 308)
                    location = response.headers.get("Location") if redirect else None
                    if location is None:
                        return await self._read(response, url, depth)
            except UnsafeURL:
                return Page(url, depth, error="unsafe_address")
            except (asyncio.TimeoutError, TimeoutError):
                return Page(url, depth, error="timeout")
            except (aiohttp.ClientError, OSError, ValueError):
                return Page(url, depth, error="network")
            target = urldefrag(urljoin(url, location))[0]  # as the server says: canonical is for names
            if site_of(target) != site_of(url) or urlsplit(target).scheme not in ("http", "https"):
                return Page(url, depth, error="offsite_redirect")
            url = target
        return Page(url, depth, error="too_many_redirects")

    async def _read(self, response: aiohttp.ClientResponse, url: str, depth: int) -> Page:
        """The body of an HTML answer, at most max_bytes of it."""
        if response.status >= 400:
            return Page(url, depth, status=response.status, error=f"http_{response.status}")
        if response.content_type not in HTML_TYPES:
            return Page(url, depth, status=response.status, error="not_html")
        body = await response.content.read(self.limits.max_bytes)  # a longer page is cut there
        html = body.decode(response.charset or "utf-8", errors="replace")
        return Page(canonical(str(response.url)), depth, html=html, status=response.status)

    async def _robots(self, start: str, timeout: float, gate: asyncio.Event) -> Protego:
        """The site's robots.txt rules: everything is allowed when it is missing or unreadable."""
        await gate.wait()
        text = ""
        assert self._session is not None
        try:  # redirects are not followed: a hop could lead off the checked host
            async with self._session.get(urljoin(start, "/robots.txt"), allow_redirects=False,
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                if response.status == 200:
                    body = await response.content.read(512 * 1024)
                    text = body.decode(response.charset or "utf-8", errors="replace")
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError, UnsafeURL):
            pass
        robots = Protego.parse(text)
        self._delay = min(float(robots.crawl_delay(self.limits.user_agent) or 0), MAX_CRAWL_DELAY)
        return robots

    async def _pace(self) -> None:
        """Honour robots.txt's Crawl-delay between two requests (capped)."""
        if not self._delay:
            return
        async with self._pacing:
            wait = self._next_request - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_request = time.monotonic() + self._delay


def unreachable(page: Page) -> Exception:
    """Why the start page could not be read, as the error the execution reports."""
    if page.error == "unsafe_address":
        return UnsafeURL(f"{page.url}: unsafe address; {ALLOW_HINT}", ALLOW_SETTING)
    if page.error == "offsite_redirect":
        return UnsafeURL(f"{page.url}: offsite redirect")
    code = "TIMEOUT_ERROR" if page.error == "timeout" else "NETWORK_ERROR"
    message = {"timeout": "o site não respondeu a tempo", "network": "não foi possível conectar ao site",
               "not_html": "a página inicial não é HTML"}.get(page.error or "", f"o site respondeu {page.error}")
    return SiteUnreachable(code, message, {"url": page.url, "causa": page.error, "status": page.status})
