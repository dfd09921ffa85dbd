"""Shared base classes and constrained types for the wire schemas."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

SafeId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
]


class Inbound(BaseModel):
    """Client-sent payload: unknown fields and type coercion are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Outbound(BaseModel):
    """Server-sent payload: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")
