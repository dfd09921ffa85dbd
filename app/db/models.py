"""The tables: executions with their keywords and clusters, investigations with their uploaded contracts,
anomalies, findings and report, chat sessions with their messages. Owners are token `sub`s (an indexed
column, no table of their own: Ponte does not manage users). Times are seconds since the epoch (UTC), as
the documents carry them. The few nested bits not worth a table are JSON; `extra` keeps any key of a
document that has no column, so that what a service stores is what it reads back.

Alembic migrations (app/db/migrations) create these tables; a change here needs a new revision.
"""
from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID = String(64)
OWNER = String(128)  # a token's sub (schemas: 1 to 128 characters)
ROW = BigInteger().with_variant(Integer, "sqlite")  # a child row's id (SQLite autoincrements INTEGER only)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Execution(Base):
    __tablename__ = "executions"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    owner: Mapped[str] = mapped_column(OWNER)
    status: Mapped[str] = mapped_column(String(20))
    config: Mapped[dict[str, Any]]
    origin: Mapped[str] = mapped_column(Text, default="")
    progress: Mapped[dict[str, Any]]
    keywords_found: Mapped[int] = mapped_column(Integer, default=0)  # during the run (`keywords_encontradas`)
    keyword_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # stored keyword rows
    cluster_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    slot: Mapped[str | None] = mapped_column(Text)
    instance: Mapped[str | None] = mapped_column(String(64))
    final: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the final event's payload
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class Keyword(Base):
    __tablename__ = "keywords"
    id: Mapped[int] = mapped_column(ROW, primary_key=True, autoincrement=True)
    execution_id: Mapped[str] = mapped_column(ForeignKey("executions.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # order in the result
    termo: Mapped[str] = mapped_column(Text)
    frequencia: Mapped[int] = mapped_column(Integer)
    relevancia: Mapped[float] = mapped_column(Float)
    posicao: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(Text)
    cluster_id: Mapped[str | None] = mapped_column(String(64))


class Cluster(Base):
    __tablename__ = "clusters"
    id: Mapped[int] = mapped_column(ROW, primary_key=True, autoincrement=True)
    execution_id: Mapped[str] = mapped_column(ForeignKey("executions.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    cluster_id: Mapped[str] = mapped_column(String(64))
    nome: Mapped[str] = mapped_column(Text)
    keywords: Mapped[list[Any]]
    tamanho: Mapped[int] = mapped_column(Integer)
    relevancia_media: Mapped[float] = mapped_column(Float)


class Investigation(Base):
    __tablename__ = "investigations"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    owner: Mapped[str | None] = mapped_column(OWNER)  # creator_sub; None: started by an anonymous chat session
    creator_session: Mapped[str | None] = mapped_column(String(64))
    session_owner: Mapped[str | None] = mapped_column(OWNER)
    title: Mapped[str] = mapped_column(Text)
    query: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    read_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str | None] = mapped_column(Text)
    records: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[str | None] = mapped_column(String(32))
    anomalies_total: Mapped[int] = mapped_column(Integer, default=0)
    report_url: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    links: Mapped[dict[str, Any]]
    filters: Mapped[dict[str, Any]]
    summary: Mapped[dict[str, Any]]
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class ContractRow(Base):
    """One contract of an uploaded investigation (app/db/contracts.py writes and reads them by batch)."""

    __tablename__ = "contracts"
    investigation_id: Mapped[str] = mapped_column(ForeignKey("investigations.id", ondelete="CASCADE"),
                                                  primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)  # order in the upload, from 0
    contract_id: Mapped[str] = mapped_column(Text)
    agency: Mapped[str] = mapped_column(Text)
    supplier: Mapped[str] = mapped_column(Text)
    item: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(Text)
    value: Mapped[float] = mapped_column(Float)
    date: Mapped[datetime.date] = mapped_column(Date)
    quantity: Mapped[float | None] = mapped_column(Float)


class Anomaly(Base):
    __tablename__ = "anomalies"
    id: Mapped[int] = mapped_column(ROW, primary_key=True, autoincrement=True)
    investigation_id: Mapped[str] = mapped_column(ForeignKey("investigations.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    severity: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]]


class Finding(Base):
    __tablename__ = "findings"
    id: Mapped[int] = mapped_column(ROW, primary_key=True, autoincrement=True)
    investigation_id: Mapped[str] = mapped_column(ForeignKey("investigations.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    agent_id: Mapped[str] = mapped_column(String(64))
    agent_name: Mapped[str] = mapped_column(Text)
    finding: Mapped[str] = mapped_column(Text)
    confidence: Mapped[float] = mapped_column(Float)
    details: Mapped[dict[str, Any]]


class Report(Base):
    __tablename__ = "reports"
    investigation_id: Mapped[str] = mapped_column(ForeignKey("investigations.id", ondelete="CASCADE"),
                                                  primary_key=True)
    body: Mapped[dict[str, Any]]
    created_at: Mapped[float] = mapped_column(Float)


class ChatSession(Base):
    __tablename__ = "chat_sessions"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    owner: Mapped[str | None] = mapped_column(OWNER, index=True)  # its first opener; None: anonymous
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float, index=True)


class ChatMessage(Base):
    __tablename__ = "chat_messages"
    id: Mapped[int] = mapped_column(ROW, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)


# Listing: a user's own work newest first (and everyone's, for an admin); purging: the oldest.
for _table in (Execution, Investigation):
    _name = _table.__tablename__
    Index(f"ix_{_name}_owner_created", _table.owner, _table.created_at.desc(), _table.id.desc())
    Index(f"ix_{_name}_created", _table.created_at.desc(), _table.id.desc())
    Index(f"ix_{_name}_updated", _table.updated_at)
