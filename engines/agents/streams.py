"""Reading streamed HTTP answers: server-sent events and newline-delimited JSON, bounded."""
from __future__ import annotations

import json
from typing import Any, AsyncIterator

import aiohttp

from .base import AgentError

MAX_LINE = 64 * 1024
MAX_ANSWER = 64 * 1024  # characters of one answer


async def lines(response: aiohttp.ClientResponse) -> AsyncIterator[str]:
    """The body's lines (`\\n`, `\\r\\n` or `\\r` ended), each at most MAX_LINE bytes."""
    buffer = b""
    async for chunk in response.content.iter_any():
        buffer += chunk
        while True:
            cut = min((i for i in (buffer.find(b"\n"), buffer.find(b"\r")) if i >= 0), default=-1)
            if cut < 0:
                break
            if buffer[cut:cut + 1] == b"\r" and cut + 1 == len(buffer):
                break  # a lone \r at the end: wait to see whether \n follows
            end = cut + 2 if buffer[cut:cut + 2] == b"\r\n" else cut + 1
            line, buffer = buffer[:cut], buffer[end:]
            yield line.decode("utf-8", errors="replace")
        if len(buffer) > MAX_LINE:
            raise AgentError("BACKEND_ERROR", "linha do stream acima do limite")
    if buffer:
        yield buffer.decode("utf-8", errors="replace")


async def sse_events(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, str]]:
    """(event, data) of each server-sent event: multi-line data joined, comments skipped."""
    event, data = "message", list[str]()
    async for line in lines(response):
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", list[str]()
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    if data:
        yield event, "\n".join(data)


def content_of(payload: Any) -> str:
    """The text piece of a JSON chunk: `content`, `delta` (text or {content}), or `text`."""
    if isinstance(payload, str):
        return payload
    if not isinstance(payload, dict):
        return ""
    for key in ("content", "delta", "text"):
        value = payload.get(key)
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            return value
    return ""


def parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise AgentError("BACKEND_ERROR", "resposta malformada do serviço de chat") from None


class Budget:
    """Counts an answer's characters and stops it past MAX_ANSWER."""

    def __init__(self) -> None:
        self.used = 0

    def take(self, piece: str) -> str:
        self.used += len(piece)
        if self.used > MAX_ANSWER:
            raise AgentError("BACKEND_ERROR", "resposta do serviço de chat acima do limite")
        return piece
