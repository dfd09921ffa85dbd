"""Which agent answers a message: intents by keyword (Portuguese or English, accent-insensitive), in order."""
from __future__ import annotations

from typing import Any

import aiohttp

from .base import Agent, ChatContext
from .builtin import Anita, Drummond, Tiradentes, Zumbi
from .intent import intent
from .remote import HttpStreamAgent, OpenAIChatAgent

BUILTIN: dict[str, Agent] = {"investigate": Zumbi(), "progress": Zumbi(), "explain": Anita(),
                             "summarise": Tiradentes(), "help": Drummond()}


class AgentRouter:
    """Built-in agents for the investigation intents and for help; the external backend (if any) for the rest."""

    def __init__(self, fallback: Any = None) -> None:
        self.fallback: Agent = fallback or Drummond()

    def route(self, message: str, context: ChatContext) -> Agent:
        name = intent(message)
        return BUILTIN[name] if name else self.fallback


def build_router(llm_base_url: str | None, llm_api_key: str | None, llm_model: str | None,
                 agent_backend_url: str | None, session: aiohttp.ClientSession | None) -> AgentRouter:
    """The LLM backend when configured, else the HTTP backend, else Drummond answers open questions."""
    if session is not None and llm_base_url and llm_model:
        return AgentRouter(OpenAIChatAgent(session, llm_base_url, llm_api_key, llm_model))
    if session is not None and agent_backend_url:
        return AgentRouter(HttpStreamAgent(session, agent_backend_url))
    return AgentRouter()
