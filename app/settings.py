"""Configuration, read once from the environment into a frozen object."""
from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

log = logging.getLogger("ponte.settings")

ASYMMETRIC = {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "EdDSA"}
DEV_SECRET_FILE = Path(".ponte/dev-jwt-secret")


class SettingsError(Exception):
    """A setting is missing or invalid; the message is one line for the operator."""


class Settings(BaseModel):
    """Everything Ponte can be configured with; tests build it directly."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    jwt_secret: str | None = Field(None, min_length=32)
    jwt_public_key: str | None = None
    jwt_private_key: str | None = None
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_leeway: float = Field(10.0, ge=0, le=300)
    allowed_origins: tuple[str, ...] = ()
    max_connections: int = Field(1000, ge=1)
    max_message_bytes: int = Field(65536, ge=256, le=16 * 1024 * 1024)
    idle_timeout: float = Field(300.0, gt=0)
    handshake_timeout: float = Field(10.0, gt=0)  # seconds for a request line and headers (app.http_guard)
    heartbeat: float = Field(30.0, gt=0)
    rate_limit_per_second: float = Field(10.0, gt=0)
    rate_limit_burst: int = Field(20, ge=1)
    rate_limit_close_after: int = Field(50, ge=1)
    connect_timeout: float = Field(5.0, gt=0)  # seconds a Socket.IO connection may stay without a namespace
    typing_debounce: float = Field(2.0, ge=0)
    send_queue_limit: int = Field(1024, ge=16)
    redis_url: str | None = Field(None, pattern=r"^(redis|rediss|redis\+sentinel|unix)://")
    redis_tls_verify: bool = True
    redis_channel: str = "socketio"
    log_level: str = "INFO"
    audit_log: bool = True
    alert_cpu_percent: float = Field(80.0, ge=0, le=100)  # SISTEMA_ALERTA thresholds (handlers.monitoring)
    alert_memory_percent: float = Field(90.0, ge=0, le=100)
    alert_error_rate: float = Field(0.05, ge=0, le=1)  # failed / handled messages per sampling period
    alert_connections_ratio: float = Field(0.9, gt=0, le=1)  # of max_connections
    alert_interval: float = Field(5.0, gt=0)  # seconds between alert samples
    public_url: str | None = Field(None, pattern=r"^https?://[^/?#]+$")  # base of download/report URLs
    records_ttl: float = Field(7 * 86400.0, gt=0)  # how long execution results and investigations are kept
    # keyword executions (issue 4)
    allow_private_urls: bool = False  # let executions crawl loopback/private hosts (tests, intranets)
    max_executions: int = Field(20, ge=1)  # running at once on this instance
    max_executions_per_user: int = Field(3, ge=1)
    crawl_max_pages: int = Field(50, ge=1, le=10000)
    crawl_max_bytes: int = Field(2 * 1024 * 1024, ge=1024)  # per page
    crawl_concurrency: int = Field(4, ge=1, le=32)  # requests in flight per execution
    crawl_max_redirects: int = Field(5, ge=0, le=20)
    extract_workers: int = Field(2, ge=1, le=64)  # processes doing text and keyword extraction
    # chat agents and investigations (issue 5)
    llm_base_url: str | None = Field(None, pattern=r"^https?://")
    llm_api_key: str | None = None
    llm_model: str | None = None
    agent_backend_url: str | None = Field(None, pattern=r"^https?://")  # SSE or NDJSON chat service
    chat_timeout: float = Field(60.0, gt=0)  # seconds for one whole answer
    contracts_source: str = Field("sample", pattern=r"^(sample|transparencia)$")
    transparencia_api_key: str | None = None
    max_investigation_records: int = Field(200_000, ge=1)
    max_investigations: int = Field(10, ge=1)  # running at once on this instance

    @model_validator(mode="after")
    def _check_keys(self) -> "Settings":
        asym = [a for a in self.jwt_algorithms if a in ASYMMETRIC]
        sym = [a for a in self.jwt_algorithms if a.startswith("HS")]
        unknown = set(self.jwt_algorithms) - ASYMMETRIC - {"HS256", "HS384", "HS512"}
        if unknown or not self.jwt_algorithms:
            raise ValueError(f"JWT_ALGORITHMS: unsupported {sorted(unknown) or 'empty list'}")
        if asym and sym:
            raise ValueError("JWT_ALGORITHMS: do not mix HMAC and public-key algorithms")
        if asym and not self.jwt_public_key:
            raise ValueError("JWT_PUBLIC_KEY is required for " + ",".join(asym))
        if sym and not self.jwt_secret:
            raise ValueError("JWT_SECRET is required for " + ",".join(sym))
        if self.contracts_source == "transparencia" and not self.transparencia_api_key:
            raise ValueError("TRANSPARENCIA_API_KEY is required for CONTRACTS_SOURCE=transparencia")
        return self

    @property
    def verify_key(self) -> str:
        """The key tokens are verified with."""
        return self.jwt_public_key or self.jwt_secret or ""

    @property
    def signing_key(self) -> str | None:
        """The key `python -m app token` signs with, when this process has one."""
        return self.jwt_private_key or self.jwt_secret


_ENV_NAMES = {name.upper(): name for name in Settings.model_fields}
_TUPLES = {"jwt_algorithms", "allowed_origins"}


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from environment variables, or raise SettingsError with one line."""
    env = os.environ if env is None else env
    raw: dict[str, object] = {}
    for key, name in _ENV_NAMES.items():
        value = env.get(key)
        if value is None or value == "":
            continue
        raw[name] = tuple(v.strip() for v in value.split(",") if v.strip()) if name in _TUPLES else value
    if not raw.get("jwt_secret") and not raw.get("jwt_public_key"):
        raw["jwt_secret"] = _dev_secret(env)
    try:
        return Settings(**raw)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(_one_line(exc)) from None


def _dev_secret(env: Mapping[str, str]) -> str:
    """A development secret kept in .ponte/, so the server and the token command agree."""
    if env.get("DYNO") or env.get("PONTE_ENV", "").lower() == "production":
        raise SettingsError("missing JWT_SECRET (or JWT_PUBLIC_KEY): required in production")
    if DEV_SECRET_FILE.exists():
        return DEV_SECRET_FILE.read_text().strip()
    DEV_SECRET_FILE.parent.mkdir(exist_ok=True)
    secret = secrets.token_urlsafe(32)
    DEV_SECRET_FILE.touch(mode=0o600)
    DEV_SECRET_FILE.write_text(secret)
    log.warning("no JWT_SECRET set: generated a development secret in %s", DEV_SECRET_FILE)
    return secret


def _one_line(exc: ValidationError) -> str:
    """The first problem of a validation error, named by its environment variable."""
    err = exc.errors()[0]
    field = str(err["loc"][0]).upper() if err["loc"] else ""
    msg = err["msg"].removeprefix("Value error, ")
    return f"invalid setting {field}: {msg}" if field else f"invalid settings: {msg}"
