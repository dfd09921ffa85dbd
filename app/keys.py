"""Typed keys for what the application object holds."""
from __future__ import annotations

from aiohttp import web

from .gateway import Gateway
from .metrics import Metrics
from .settings import Settings
from .transport.server import PonteServer

SIO_KEY = web.AppKey("sio", PonteServer)
SETTINGS_KEY = web.AppKey("settings", Settings)
METRICS_KEY = web.AppKey("metrics", Metrics)
DRAINING_KEY = web.AppKey("draining", list)  # non-empty once SIGTERM has started the drain
GATEWAY_KEY = web.AppKey("gateway", Gateway)  # settings, verifier, stores and domain services
