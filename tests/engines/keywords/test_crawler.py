"""The crawler against the fixture blog over real HTTP, and its refusal of private addresses."""
from __future__ import annotations

import asyncio

import pytest

from engines.keywords.crawler import Analyse, Crawler
from engines.keywords.extract import analyse_html
from engines.keywords.model import CrawlLimits, Page, PageAnalysis, SiteUnreachable, UnsafeURL
from engines.keywords.netguard import GuardedResolver, check_host, is_public
from engines.keywords.urls import links_of
from tests.fixtures import topics
from tests.fixtures.blog import BlogSite


async def links_only(page: Page) -> PageAnalysis:
    """An analysis that only extracts links (the keyword part is tested elsewhere)."""
    return PageAnalysis(page.url, "pt", links_of(page.html or "", page.url)[0])


async def full_analysis(page: Page) -> PageAnalysis:
    """The whole analysis, in the test's process."""
    return analyse_html(page.html or "", page.url)


async def crawl(site: BlogSite | topics.TopicSite, depth: int = 2, timeout: float = 1.0,
                gate: asyncio.Event | None = None, analyse: Analyse = links_only, **limits: int) -> list[Page]:
    """The pages a crawl of the site yields."""
    if gate is None:
        gate = asyncio.Event()
        gate.set()
    async with Crawler(CrawlLimits(**limits), allow_private=True) as crawler:
        pages = crawler.crawl(site.url, depth=depth, timeout=timeout, gate=gate, analyse=analyse)
        return [page async for page, _ in pages]


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.5.4", "169.254.169.254",
                                     "100.64.0.1", "::1", "fd00:ec2::254", "::ffff:10.0.0.1", "0.0.0.0",
                                     "224.0.0.1", "fe80::1"])
def test_non_public_addresses_are_refused(address: str) -> None:
    """Loopback, private, CGNAT, link-local, metadata, mapped, unspecified and multicast addresses are not public."""
    assert not is_public(address)
    with pytest.raises(UnsafeURL):
        check_host(address)


def test_public_addresses_pass() -> None:
    """Globally routable addresses are allowed."""
    assert is_public("8.8.8.8") and is_public("2606:4700:4700::1111")
    check_host("example.com")


async def test_resolver_refuses_names_that_resolve_to_loopback() -> None:
    """The connector's resolver refuses a name whose DNS answer is private, whatever the name."""
    resolver = GuardedResolver()
    with pytest.raises(UnsafeURL):
        await resolver.resolve("localhost", 80)
    with pytest.raises(UnsafeURL):
        await resolver.resolve("metadata.google.internal", 80)
    await resolver.close()


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "http://[::1]:8080/", "http://localhost/",
                                 "http://169.254.169.254/latest/meta-data/", "http://user:pw@example.com/",
                                 "ftp://example.com/"])
async def test_check_refuses_unsafe_urls(url: str) -> None:
    """check() refuses private hosts, credentials and non-http schemes unless private URLs are allowed."""
    async with Crawler(CrawlLimits()) as crawler:
        with pytest.raises(UnsafeURL):
            await crawler.check(url)


async def test_private_fixture_is_refused_without_the_setting(blog_site: BlogSite) -> None:
    """Without allow_private the crawler does not send a single request to 127.0.0.1."""
    gate = asyncio.Event()
    gate.set()
    async with Crawler(CrawlLimits()) as crawler:
        with pytest.raises(UnsafeURL):
            async for _ in crawler.crawl(blog_site.url, depth=1, timeout=1, gate=gate, analyse=links_only):
                pass
    assert blog_site.requests == []


async def test_depth_bounds_the_crawl(blog_site: BlogSite) -> None:
    """Depth 1 reads the home page and its links, never the articles two links away."""
    pages = await crawl(blog_site, depth=1)
    paths = {page.url.removeprefix(blog_site.url.rstrip("/")) for page in pages}
    assert {"/", "/cafe", "/solar", "/bicicleta"} <= paths
    assert blog_site.count("/cafe/") == 0 and blog_site.count("/solar/") == 1  # only via the /antigo redirect


async def test_max_pages_bounds_the_crawl(blog_site: BlogSite) -> None:
    """No more than max_pages pages are fetched."""
    pages = await crawl(blog_site, depth=3, max_pages=4)
    assert len(pages) == 4


async def test_robots_external_and_non_html(blog_site: BlogSite) -> None:
    """Robots.txt Disallow, other hosts and non-HTML answers: not crawled, or not analysed."""
    pages = await crawl(blog_site, depth=3)
    assert blog_site.count("/privado/") == 0 and blog_site.count("/robots.txt") == 1
    assert all(page.url.startswith(blog_site.url) for page in pages)
    pdf = [page for page in pages if page.url.endswith("/guia.pdf")]
    assert pdf and pdf[0].error == "not_html" and pdf[0].html is None
    assert [p.error for p in pages if p.url.endswith("/quebrado")] == ["http_500"]
    assert [p.error for p in pages if p.url.endswith("/lento")] == ["timeout"]
    ok = [p for p in pages if p.error is None]
    assert len({p.url for p in ok}) == len(ok)  # /antigo redirects to an article read only once
    assert blog_site.count("/cafe/") == 2 and blog_site.count("/bicicleta/") == 2


async def test_offsite_redirect_is_not_followed(blog_site: BlogSite) -> None:
    """A redirect to another host is refused on that hop (each hop is checked)."""
    gate = asyncio.Event()
    gate.set()
    async with Crawler(CrawlLimits(), allow_private=True) as crawler:
        page = await crawler.fetch(blog_site.url + "fora", 0, 1, gate)
    assert page.error == "offsite_redirect"


async def test_pause_holds_every_request(blog_site: BlogSite) -> None:
    """While the gate is clear no request leaves; once set again the crawl finishes."""
    gate = asyncio.Event()
    gate.set()
    blog_site.hold.clear()
    task = asyncio.ensure_future(crawl(blog_site, depth=2, gate=gate))
    # Every slot is busy with a held article, nothing else is on its way: four articles of the second
    # level, and the article /antigo redirects to, whose request the first level gave up on at 1 s.
    await blog_site.holding(5)
    gate.clear()
    before = len(blog_site.requests)
    blog_site.hold.set()  # the requests in flight may finish
    blog_site.arrived.clear()
    with pytest.raises(TimeoutError):  # an observation window: nothing may arrive while paused
        await asyncio.wait_for(blog_site.arrived.wait(), 1.5)
    assert len(blog_site.requests) == before and not task.done()
    gate.set()
    pages = await asyncio.wait_for(task, 10)
    assert len(blog_site.requests) > before and any(p.url.endswith("/ciclovia-segura") for p in pages)


async def test_unreachable_and_slow_start_pages(blog_site: BlogSite) -> None:
    """A start page that refuses connections is a NETWORK_ERROR, one that does not answer a TIMEOUT_ERROR."""
    gate = asyncio.Event()
    gate.set()
    async with Crawler(CrawlLimits(), allow_private=True) as crawler:
        with pytest.raises(SiteUnreachable) as slow:
            async for _ in crawler.crawl(blog_site.url + "lento", depth=1, timeout=1, gate=gate, analyse=links_only):
                pass
        with pytest.raises(SiteUnreachable) as closed:
            async for _ in crawler.crawl("http://127.0.0.1:9/", depth=1, timeout=1, gate=gate, analyse=links_only):
                pass
    assert slow.value.code == "TIMEOUT_ERROR" and closed.value.code == "NETWORK_ERROR"


async def test_cancel_leaves_nothing_running(blog_site: BlogSite) -> None:
    """Cancelling the consumer cancels every fetch: no task left, no further request."""
    blog_site.hold.clear()
    task = asyncio.ensure_future(crawl(blog_site, depth=2))
    await blog_site.next_request("/cafe/")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    before = len(blog_site.requests)
    blog_site.hold.set()
    leftovers = [t for t in asyncio.all_tasks() if "_visit" in repr(t.get_coro())]
    assert leftovers == [] and len(blog_site.requests) == before


async def test_a_page_under_many_names_is_read_once() -> None:
    """Index pages, trailing slashes, tracking parameters and fragments are canonicalised before any
    request; a copy naming its article as canonical takes the article's name, and a copy with the same
    text is fetched but not counted."""
    async with topics.TopicSite() as site:
        pages = await crawl(site, depth=2, timeout=5, analyse=full_analysis)
    names = [page.url.removeprefix(site.url.rstrip("/")) for page in pages]
    assert sorted(names) == sorted({*(path for path, _ in topics.distinct_pages()), "/archive/cycling/climbing"}
                                   - {"/cycling/climbing"})  # the archive copy was read first
    assert site.count("/") == 1 and site.count("/astronomy/telescopes") == 0 and site.count("/cycling/climbing") == 1
    assert not any(path.endswith(("/", "index.html")) or "?" in path for path in site.requests if path != "/")
