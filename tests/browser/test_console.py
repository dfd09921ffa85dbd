"""The console, used as a person uses it, in a headless Chromium against a real server: signing in,
a ping over both transports, an execution on the fixture blog, a chat answer streamed, the sample
contracts investigated, the operator view, and a refused token said clearly."""
from __future__ import annotations

from typing import Any

import pytest

from app.errors import CLOSE_SERVICE_RESTART
from app.keys import SIO_KEY
from conftest import make_token
from tests.fixtures.console import WAIT, Console

pytestmark = pytest.mark.browser


async def rows(console: Console, selector: str) -> int:
    return int(await console.page.locator(selector).count())


async def test_sign_in_with_a_development_token(console: Console) -> None:
    """The development-token button signs in under the typed name, kept in sessionStorage, never in the URL;
    signing out forgets it and a pasted token signs in again."""
    page = console.page
    await console.sign_in("ana")
    assert (await page.text_content("#who-text") or "").startswith("ana · executions notifications")
    token = await page.evaluate("sessionStorage.getItem('ponte.token')")
    assert token and token not in page.url
    await page.click("#signout")
    await page.wait_for_selector("#signin:not([hidden])")
    assert await page.evaluate("sessionStorage.getItem('ponte.token')") is None
    await page.fill("#token-input", make_token("bruno"))
    await page.click("#signin-button")
    await page.wait_for_selector("#who:not([hidden])")
    assert (await page.text_content("#who-text") or "").startswith("bruno ·")


async def test_ping_over_both_transports(console: Console) -> None:
    """SESSAO_PING sent from its generated form is answered by SESSAO_PONG over the raw WebSocket, then
    over Socket.IO, and the frames panel shows both directions of both."""
    page = console.page
    await console.sign_in()
    for transport, where in [("raw", "raw /ws"), ("socketio", "sio /omni")]:
        await console.transport(transport)
        await page.click("[data-event=SESSAO_PING]")
        await page.click("#ev-send")
        await page.wait_for_selector("#ev-answer [data-event=SESSAO_PONG]")
        sent = page.locator("#fr-list li[data-dir=out][data-event=SESSAO_PING]", has_text=where)
        received = page.locator("#fr-list li[data-dir=in][data-event=SESSAO_PONG]", has_text=where)
        assert await sent.count() == 1 and await received.count() == 1
    assert "connected · Socket.IO /omni" in (await page.text_content("#ev-status") or "")


async def test_the_form_checks_the_schema_before_sending(console: Console) -> None:
    """A field the schema refuses (profundidade 9 > 5, no blog_url) is named in the page and nothing is sent."""
    page = console.page
    await console.sign_in()
    await page.click("[data-event=EXECUCAO_INICIAR]")
    await page.fill("#f-data-configuracoes-profundidade", "9")
    await page.click("#ev-send")
    error = await page.text_content("#ev-answer [role=alert]") or ""
    assert "data.blog_url: required" in error and "data.configuracoes.profundidade: at most 5" in error
    assert await rows(console, "#fr-list li[data-dir=out]") == 0


@pytest.mark.timeout(120)
async def test_an_execution_on_the_fixture_blog(console: Console, blog_site: Any) -> None:
    """An execution started from the form fills the progress bar to 100 % and the keyword table, forms
    clusters, and offers its downloads at the end."""
    page = console.page
    await console.sign_in()
    await console.tab("executions")
    await page.fill("#ex-url", blog_site.url)
    await page.fill("#ex-timeout", "2")
    await page.click("#ex-start")
    await page.wait_for_selector("#ex-progress[value='100']", timeout=90_000)  # the CSP forbids wait_for_function
    await page.wait_for_selector("#ex-downloads:not([hidden])", timeout=WAIT)
    assert await page.text_content("#ex-state") == "concluida"
    assert await rows(console, "#ex-keywords tbody tr") >= 5
    assert await rows(console, "#ex-clusters .cluster") >= 1
    assert await page.is_disabled("#ex-pause") and await page.is_disabled("#ex-cancel")
    relevance = [float(text) for text in await page.locator("#ex-keywords tbody td:nth-child(3)").all_text_contents()]
    assert relevance == sorted(relevance, reverse=True)


async def test_chat_streams_the_answer(console: Console) -> None:
    """A question in the chat window gets the agent's answer chunk by chunk under its name, then whole."""
    page = console.page
    await console.sign_in()
    await console.tab("chat")
    await page.fill("#chat-input", "What can you do?")
    await page.click("#chat-send")
    answer = page.locator(".msg.assistant[data-done=true]")
    await answer.wait_for(timeout=WAIT)
    assert (await answer.locator(".agent").text_content() or "").strip()
    assert len((await answer.locator(".content").text_content() or "").strip()) > 20
    assert await rows(console, "#fr-list li[data-dir=in][data-event=chat]") >= 2  # chunks, then the whole


@pytest.mark.timeout(120)
async def test_the_sample_contracts_investigated(console: Console) -> None:
    """Uploading the sample fills the anomalies table (severity colours), the chart and the report."""
    page = console.page
    await console.sign_in()
    await console.tab("investigations")
    await page.click("#inv-sample")
    await page.wait_for_selector("#inv-report iframe", timeout=90_000)
    await page.wait_for_selector("#inv-progress[value='100']")
    assert await rows(console, "#inv-anomalies tbody tr") >= 5
    assert await rows(console, "#inv-anomalies .sev-critical") >= 1
    assert await rows(console, "#inv-chart svg rect.bar-actual") >= 1
    assert await page.text_content("#inv-state") == "completed"


async def test_monitoring_draws_the_metrics(console: Console) -> None:
    """Starting monitoring draws METRICA_PERFORMANCE samples as they come."""
    page = console.page
    await console.sign_in()
    await console.tab("monitoring")
    await page.select_option("#mon-interval", "1000")
    await page.click("#mon-start")
    await page.locator("#fr-list li[data-event=METRICA_PERFORMANCE]").nth(1).wait_for()
    points = await page.get_attribute("#mon-cpu polyline.s0", "points") or ""
    assert len(points.split()) >= 2


async def test_operator_view_lists_this_tests_connections(console: Console) -> None:
    """With the admin scope the operator view lists the instances with their state and the page's own
    connections (on /omni and /chat, over Socket.IO once the switch says so: every view follows it) under
    the test's user, and their rooms."""
    page = console.page
    await console.sign_in("operadora", admin=True)
    await page.click("[data-event=SESSAO_PING]")
    await page.click("#ev-send")
    await page.wait_for_selector("#ev-answer [data-event=SESSAO_PONG]")
    await console.transport("socketio")
    await console.tab("chat")
    await page.click("#chat-connect")
    await page.wait_for_selector("#chat-status.ok")
    await console.tab("operator")
    clients = page.locator("#op-clients tbody tr", has_text="operadora")
    await clients.first.wait_for()
    await clients.nth(1).wait_for()
    texts = await clients.all_text_contents()
    assert len(texts) == 2 and all("socketio" in t for t in texts), texts
    assert {t.split("operadora")[0] for t in texts} == {"/omni", "/chat"}
    assert await page.locator("#op-body td", has_text="user:operadora").count() == 2  # one room per namespace
    assert await page.locator("#op-body td", has_text="(this one)").count() == 1  # the instances, with their state


async def test_a_refused_token_is_said_clearly(console: Console) -> None:
    """A token signed with another key is refused: the status and the banner say so, no reconnection loop."""
    page = console.page
    await page.fill("#token-input", make_token("mallory", key="another-key-0123456789-0123456789-xx"))
    await page.click("#signin-button")
    await page.click("#ev-connect")
    await page.wait_for_selector("#ev-status.bad")
    assert "refused" in (await page.text_content("#ev-status") or "")
    assert "assinado com outra chave" in (await page.text_content("#banner") or "")


async def test_a_dropped_connection_is_shown_and_comes_back(console: Console, console_server: Any) -> None:
    """When the server closes the raw connection with 1012 (as on a restart) the status and the banner say
    it is reconnecting, and it reconnects by itself, taking up where it stood (pid and offset)."""
    page = console.page
    await console.sign_in()
    await page.click("#ev-connect")
    await page.wait_for_selector("#ev-status.ok")
    assert console_server.app[SIO_KEY].close_raw(CLOSE_SERVICE_RESTART, "server restarting: please reconnect") == 1
    await page.wait_for_selector("#ev-status.warn")
    assert "reconnecting" in (await page.text_content("#banner") or "")
    await page.wait_for_selector("#ev-status.ok")
    assert await page.is_hidden("#banner")
    assert await rows(console, "#fr-list li[data-event=open]") == 2
    hello = page.locator("#fr-list li[data-event=SESSAO_CONECTADA]").first
    await hello.locator("summary").click()
    assert '"recovered": true' in (await hello.locator("pre").text_content() or "")


@pytest.mark.timeout(120)
async def test_an_investigation_started_from_chat_is_followed_in_place(console: Console) -> None:
    """Asking the agents to investigate puts the investigation in the chat window, followed to its report."""
    page = console.page
    await console.sign_in()
    await console.tab("chat")
    await page.fill("#chat-input", "Investigate contracts of the Ministry of Health")
    await page.click("#chat-send")
    card = page.locator(".inv-card")
    await card.locator("a", has_text="Open the report").wait_for(timeout=90_000)
    assert await card.locator("progress").get_attribute("value") == "100"
    assert await card.locator(".sev").count() >= 1
    assert await page.locator(".msg.assistant[data-done=true] .agent", has_text="Zumbi").count() >= 1
