"""Ponte: a realtime gateway serving the Omni and Cidadão.AI WebSocket protocols and Socket.IO."""
from .factory import create_app
from .settings import Settings

__all__ = ["create_app", "Settings"]
