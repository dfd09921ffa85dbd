"""Pydantic wire schemas for the Omni and Cidadão.AI WebSocket APIs."""
