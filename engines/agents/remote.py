"""Agents that answer through another service: an OpenAI-compatible chat-completions stream, or any
HTTP endpoint that streams server-sent events or newline-delimited JSON."""
from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

import aiohttp

from .base import AgentError, ChatContext
from .streams import Budget, content_of, lines, parse_json, sse_events
from .texts import say

MAX_ERROR_BODY = 2048
MAX_GROUNDING = 6000  # characters of investigation data in the system prompt


async def grounding(context: ChatContext) -> str:
    """The session's latest investigation, as compact JSON for the system prompt."""
    latest = await context.investigations.latest()
    if latest is None:
        return say(context.language, "no_grounding")
    keys = ("investigation_id", "status", "progress", "source_label", "records", "summary", "findings")
    data = {key: latest.get(key) for key in keys}
    data["anomalies"] = (latest.get("anomalies") or [])[:20]
    return json.dumps(data, ensure_ascii=False, default=str)[:MAX_GROUNDING]


class OpenAIChatAgent:
    """`POST {base_url}/chat/completions` with `stream: true`; yields `choices[0].delta.content`."""

    id = "llm"
    name = "Cidadão.AI"

    def __init__(self, session: aiohttp.ClientSession, base_url: str, api_key: str | None, model: str) -> None:
        self.session, self.url, self.api_key, self.model = session, base_url.rstrip("/") + "/chat/completions", \
            api_key, model

    async def stream(self, message: str, context: ChatContext) -> AsyncIterator[str]:
        system = say(context.language, "system", grounding=await grounding(context))
        body = {"model": self.model, "stream": True,
                "messages": [{"role": "system", "content": system}, *context.history[-10:],
                             {"role": "user", "content": message}]}
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        budget = Budget()
        async with request(self.session, self.url, body, headers) as response:
            async for event, data in sse_events(response):
                if data.strip() == "[DONE]":
                    return
                if event == "error":
                    raise AgentError("BACKEND_ERROR", "o modelo de linguagem respondeu com erro")
                choices = parse_json(data).get("choices") or [{}]
                piece = content_of((choices[0] or {}).get("delta") or {})
                if piece:
                    yield budget.take(piece)


class HttpStreamAgent:
    """`POST {url}` with `{message, session_id, history, language}`; the answer streams as SSE or NDJSON."""

    id = "http"
    name = "Cidadão.AI"

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, url

    async def stream(self, message: str, context: ChatContext) -> AsyncIterator[str]:
        body = {"message": message, "session_id": context.session_id, "history": context.history[-10:],
                "language": context.language}
        budget = Budget()
        async with request(self.session, self.url, body, {}) as response:
            if response.content_type == "text/event-stream":
                async for event, data in sse_events(response):
                    if data.strip() == "[DONE]":
                        return
                    if event == "error":
                        raise AgentError("BACKEND_ERROR", "o serviço de chat respondeu com erro")
                    piece = content_of(parse_json(data)) if data.lstrip().startswith(("{", '"')) else data
                    if piece:
                        yield budget.take(piece)
            else:
                async for line in lines(response):
                    if not line.strip():
                        continue
                    payload = parse_json(line)
                    if isinstance(payload, dict) and payload.get("error"):
                        raise AgentError("BACKEND_ERROR", "o serviço de chat respondeu com erro")
                    piece = content_of(payload)
                    if piece:
                        yield budget.take(piece)
                    if isinstance(payload, dict) and payload.get("done"):
                        return


class request:
    """POST and check the status; connection problems become AgentError (timeouts: TIMEOUT)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, body: dict[str, Any], headers: dict[str, str]):
        self.session, self.url, self.body, self.headers = session, url, body, headers
        self.response: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        try:
            self.response = await self.session.post(self.url, json=self.body, headers=self.headers)
        except (asyncio.TimeoutError, TimeoutError):
            raise AgentError("TIMEOUT", "o serviço de chat não respondeu a tempo") from None
        except aiohttp.ClientError as exc:
            raise AgentError("BACKEND_ERROR", f"serviço de chat indisponível ({type(exc).__name__})") from None
        if self.response.status >= 400:
            text = (await self.response.content.read(MAX_ERROR_BODY)).decode("utf-8", errors="replace")
            self.response.release()
            detail = text.replace(self.headers.get("Authorization", "\0"), "***")[:200]
            raise AgentError("BACKEND_ERROR", f"serviço de chat respondeu {self.response.status}: {detail}")
        return self.response

    async def __aexit__(self, *exc: object) -> None:
        if self.response is not None:
            self.response.release()
