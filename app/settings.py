"""Configuration, read once from the environment into a frozen object."""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo

ASYMMETRIC = {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "EdDSA"}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEV_SECRET_NAME = "dev-jwt-secret"
NOT_FROM_ENV = frozenset({"dev_secret_path"})
HELP_HINT = "`python -m app --help` lists every setting"


def shown(default: str) -> dict[str, Any]:
    """How --help and the README show a default that is not a plain value."""
    return {"shown_default": default}


class SettingsError(Exception):
    """A setting is missing or invalid; the message is one line for the operator."""


class Settings(BaseModel):
    """Everything Ponte can be configured with; tests build it directly."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field("127.0.0.1", description="the address to listen on (the Procfile binds 0.0.0.0)")
    port: int = Field(8000, ge=0, le=65535, description="the port to listen on (the Procfile uses the platform's)")
    jwt_secret: str | None = Field(
        None, min_length=32, json_schema_extra=shown("generated in $PONTE_HOME/dev-jwt-secret for development"),
        description="HS256 key, at least 32 characters; required when DYNO or PONTE_ENV=production is set")
    jwt_public_key: str | None = Field(
        None, description="PEM public key that verifies public-key tokens (with JWT_ALGORITHMS RS256, ES256, ...)")
    jwt_private_key: str | None = Field(
        None, description="PEM private key beside JWT_PUBLIC_KEY, so that `python -m app token` can sign")
    jwt_algorithms: tuple[str, ...] = Field(
        ("HS256",), description="comma-separated algorithms tokens may use (HS256, or RS256, ES256, ... with a "
                                "public key); never taken from the token")
    jwt_audience: str | None = Field(None, description="the `aud` every token must carry, when set")
    jwt_issuer: str | None = Field(None, description="the `iss` every token must carry, when set")
    jwt_leeway: float = Field(10.0, ge=0, le=300, description="clock leeway for `exp` and `nbf`, seconds")
    allowed_origins: tuple[str, ...] = Field(
        (), json_schema_extra=shown("same origin only"),
        description="comma-separated exact origins browsers may connect from, or *")
    max_connections: int = Field(
        1000, ge=1, description="connections per instance, all endpoints and namespaces together")
    max_message_bytes: int = Field(
        65536, ge=256, le=16 * 1024 * 1024, description="the largest client message, bytes")
    idle_timeout: float = Field(300.0, gt=0, description="seconds a silent connection stays open")
    handshake_timeout: float = Field(
        10.0, gt=0, description="seconds for a request line and headers to arrive; a slower connection (or an "
                                "idle keep-alive one) is closed")
    heartbeat: float = Field(30.0, gt=0, description="ping interval, seconds (a peer silent for two is dropped)")
    rate_limit_per_second: float = Field(
        10.0, gt=0, description="messages a second per user, shared by all of that user's connections (and "
                                "instances, with Redis); an anonymous connection has its own")
    rate_limit_burst: int = Field(20, ge=1, description="messages a user may send at once")
    rate_limit_close_after: int = Field(
        50, ge=1, description="rejected messages in a row before a connection is closed")
    connect_timeout: float = Field(
        5.0, gt=0, description="seconds a Socket.IO (Engine.IO) connection may stay without connecting a namespace")
    typing_debounce: float = Field(2.0, ge=0, description="seconds during which a repeated typing state is dropped")
    send_queue_limit: int = Field(
        1024, ge=16, description="messages queued for a slow client before it is disconnected")
    history_size: int = Field(
        1000, ge=0, le=1_000_000, description="events to rooms kept per namespace for reconnecting clients "
                                              "(0: no connection-state recovery)")
    recovery_window: float = Field(
        120.0, gt=0, le=86400, description="seconds a client that lost its connection may come back and get "
                                           "what it missed")
    socketio_offsets: bool = Field(
        False, description="every event to rooms carries its offset as a last argument for Socket.IO clients, "
                           "so the official client (4.6+) recovers with no code; a client may say "
                           "otherwise with auth.offsets (off: a python-socketio handler would get one "
                           "argument more)")
    redis_url: str | None = Field(
        None, pattern=r"^(redis|rediss|redis\+sentinel|unix)://",
        description="redis://, rediss:// or redis+sentinel://host:port[,host:port]/db/service: every instance "
                    "behind it behaves as one")
    redis_cluster_url: str | None = Field(
        None, pattern=r"^rediss?://",
        description="redis:// or rediss:// of a Redis Cluster node: the rooms' channels then ride Redis 7 sharded "
                    "pub/sub (SSUBSCRIBE/SPUBLISH), spread over the cluster's shards; REDIS_URL still keeps "
                    "presence, sessions, limits, preferences, jobs and the shared channel. Needs HISTORY_SIZE=0 "
                    "(as socket.io's sharded adapter: no connection-state recovery)")
    redis_pool_size: int = Field(
        32, ge=2, le=1000, description="connections to Redis per instance; a burst waits for one (up to "
                                       "REDIS_POOL_TIMEOUT) rather than failing")
    redis_pool_timeout: float = Field(
        5.0, gt=0, le=60, description="seconds a Redis command waits for a free connection of the pool before "
                                      "it fails (a notification preference read gives up sooner: 1.5 s in all)")
    redis_tls_verify: bool = Field(
        True, description="false accepts a managed Redis's self-signed certificate (Heroku Redis)")
    redis_channel: str = Field(
        "socketio", description="the shared pub/sub channel (python-socketio's default, so its emitters need no "
                                "setting), and the prefix of the rooms' channels and history streams")
    log_level: str = Field(
        "INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL; logs go to stdout, the access log never "
                            "prints query strings")
    event_loop: Literal["auto", "uvloop", "asyncio"] = Field(
        "auto", description="auto runs on uvloop where it is installed (Linux and macOS; about twice the "
                            "messages per CPU second of asyncio's own loop, bench/README.md), else asyncio")
    audit_log: bool = Field(True, description="one JSON line per client action or refused message on stdout")
    alert_cpu_percent: float = Field(80.0, ge=0, le=100, description="SISTEMA_ALERTA threshold: host CPU, percent")
    alert_memory_percent: float = Field(
        90.0, ge=0, le=100, description="SISTEMA_ALERTA threshold: host memory, percent")
    alert_error_rate: float = Field(
        0.05, ge=0, le=1, description="SISTEMA_ALERTA threshold: failed / handled messages per sampling period")
    alert_connections_ratio: float = Field(
        0.9, gt=0, le=1, description="SISTEMA_ALERTA threshold: share of MAX_CONNECTIONS in use")
    alert_interval: float = Field(5.0, gt=0, description="seconds between alert samples")
    public_url: str | None = Field(
        None, pattern=r"^https?://[^/?#]+$", json_schema_extra=shown("the host clients connected to"),
        description="https://host[:port]: the base of download and report URLs")
    records_ttl: float = Field(
        7 * 86400.0, gt=0, description="seconds the short-lived records live in Redis or memory: claims, "
                                       "final-event markers, uploaded files until their contracts are in the database "
                                       "(results live in the database)")
    # results in a database (issue 14)
    database_url: str | None = Field(
        None, pattern=r"^(postgres|postgresql|postgresql\+asyncpg|sqlite|sqlite\+aiosqlite)://",
        json_schema_extra=shown("SQLite in $PONTE_HOME/ponte.sqlite3"),
        description="where executions, investigations, reports and chat history are kept: postgres:// or "
                    "postgresql:// (Heroku's own variable; ?sslmode=require for TLS, the default on a dyno), "
                    "or sqlite:///path")
    database_pool_size: int = Field(
        5, ge=1, le=100, description="connections to PostgreSQL per process (as many more under a burst)")
    retention_executions_days: float = Field(
        0.0, ge=0, description="days `python -m app purge` keeps executions after their last change (0: forever)")
    retention_investigations_days: float = Field(
        0.0, ge=0, description="days `python -m app purge` keeps investigations and their reports (0: forever)")
    retention_chat_days: float = Field(
        0.0, ge=0, description="days `python -m app purge` keeps a chat session's history after its last message "
                               "(0: forever)")
    # keyword executions (issue 4)
    allow_private_urls: bool = Field(
        False, description="let executions crawl loopback and private addresses (local sites, tests, intranets)")
    max_executions: int = Field(20, ge=1, description="executions running at once on this instance")
    max_executions_per_user: int = Field(3, ge=1, description="executions running at once per user")
    crawl_max_pages: int = Field(50, ge=1, le=10000, description="pages one crawl reads at most")
    crawl_max_bytes: int = Field(2 * 1024 * 1024, ge=1024, description="bytes read of each page at most")
    crawl_concurrency: int = Field(4, ge=1, le=32, description="requests in flight per execution")
    crawl_max_redirects: int = Field(5, ge=0, le=20, description="redirects followed per page")
    extract_workers: int = Field(2, ge=1, le=64, description="processes extracting text and keywords")
    # chat agents and investigations (issue 5)
    llm_base_url: str | None = Field(
        None, pattern=r"^https?://",
        description="an OpenAI-compatible streaming chat backend, e.g. https://api.openai.com/v1")
    llm_api_key: str | None = Field(None, description="the key of LLM_BASE_URL")
    llm_model: str | None = Field(None, description="the model LLM_BASE_URL answers with")
    agent_backend_url: str | None = Field(
        None, pattern=r"^https?://",
        description="a chat service answering with SSE or NDJSON (used when no LLM is set)")
    chat_timeout: float = Field(60.0, gt=0, description="seconds for one whole answer")
    contracts_source: str = Field(
        "sample", pattern=r"^(sample|transparencia)$",
        description="where investigations started from chat get contracts: sample or transparencia (needs the key)")
    transparencia_api_key: str | None = Field(None, description="the Portal da Transparência API key")
    max_investigation_records: int = Field(200_000, ge=1, description="records per investigation at most")
    max_investigations: int = Field(10, ge=1, description="analyses running at once on this instance")
    # jobs on worker processes (issue 13)
    worker_concurrency: int = Field(
        4, ge=1, le=256, description="jobs (executions, investigations) one `python -m app worker` runs at once")
    max_queued_jobs: int = Field(
        1000, ge=1, description="jobs waiting for a worker at most; past it new work is refused (RATE_LIMIT_ERROR)")
    gateway_workers: int = Field(
        0, ge=0, le=256, description="with REDIS_URL, jobs this server also runs from the queue itself (0: only "
                                     "`python -m app worker` processes run them; for a one-process deploy)")
    # the development secret (issue 10)
    ponte_home: str | None = Field(
        None, json_schema_extra=shown("$XDG_CONFIG_HOME/ponte or ~/.config/ponte"),
        description="where the development JWT secret lives (dev-jwt-secret, readable only by you): the server "
                    "and `python -m app token` share it from any directory; and the SQLite database "
                    "(ponte.sqlite3) when DATABASE_URL is not set")
    dev_secret_path: str | None = Field(
        None, description="set by from_env when tokens are checked with the development secret (not a variable)")

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        """One of logging's level names, in capitals."""
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"{value[:40]!r} is not a level: use one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @model_validator(mode="after")
    def _check_keys(self) -> "Settings":
        asym = [a for a in self.jwt_algorithms if a in ASYMMETRIC]
        sym = [a for a in self.jwt_algorithms if a.startswith("HS")]
        unknown = set(self.jwt_algorithms) - ASYMMETRIC - {"HS256", "HS384", "HS512"}
        if unknown or not self.jwt_algorithms:
            raise ValueError(f"JWT_ALGORITHMS: unsupported {sorted(unknown) or 'empty list'}")
        if asym and sym:
            raise ValueError("JWT_ALGORITHMS: do not mix HMAC and public-key algorithms")
        if asym:
            _check_key_pair(self.jwt_public_key, self.jwt_private_key, asym)
        if sym and not self.jwt_secret:
            raise ValueError("JWT_SECRET is required for " + ",".join(sym))
        if self.redis_cluster_url and not self.redis_url:
            raise ValueError("REDIS_CLUSTER_URL needs REDIS_URL (presence, sessions, jobs stay on one Redis)")
        if self.redis_cluster_url and self.history_size:
            raise ValueError("REDIS_CLUSTER_URL needs HISTORY_SIZE=0: events to rooms are not kept for recovery "
                             "when they are spread over a cluster's shards")
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


def _check_key_pair(public: str | None, private: str | None, algorithms: list[str]) -> None:
    """Refuse at start-up a missing key or one PyJWT cannot use, rather than every token later."""
    if not public:
        raise ValueError("JWT_PUBLIC_KEY is required for " + ",".join(algorithms))
    if not any(_usable(lambda alg: jwt.get_algorithm_by_name(alg).prepare_key(public), a) for a in algorithms):
        raise ValueError(f"JWT_PUBLIC_KEY: not a PEM public key for {','.join(algorithms)}")
    if private and not any(_usable(lambda alg: jwt.encode({}, private, algorithm=alg), a) for a in algorithms):
        raise ValueError(f"JWT_PRIVATE_KEY: not a PEM private key for {','.join(algorithms)}")


def _usable(attempt: Callable[[str], object], algorithm: str) -> bool:
    """True when `attempt(algorithm)` does not raise: PyJWT and cryptography raise several kinds."""
    try:
        attempt(algorithm)
    except Exception:  # noqa: BLE001 - InvalidKeyError, ValueError, TypeError… all mean "not this key"
        return False
    return True


_ENV_NAMES = {name.upper(): name for name in Settings.model_fields if name not in NOT_FROM_ENV}
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
        if env.get("DYNO") or env.get("PONTE_ENV", "").lower() == "production":
            raise SettingsError("missing JWT_SECRET (or JWT_PUBLIC_KEY): required in production")
        home = ponte_home(env)
        raw["ponte_home"], raw["dev_secret_path"] = str(home), str(home / DEV_SECRET_NAME)
        raw["jwt_secret"] = _dev_secret(home / DEV_SECRET_NAME)
    raw["database_url"] = database_url(env)
    try:
        return Settings(**raw)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(_one_line(exc)) from None


def database_url(env: Mapping[str, str]) -> str:
    """DATABASE_URL, else SQLite in PONTE_HOME; on Heroku (DYNO set), PostgreSQL over TLS unless the URL
    says otherwise (Heroku Postgres refuses connections without it, and its URL does not say so)."""
    url = env.get("DATABASE_URL") or f"sqlite:///{ponte_home(env) / 'ponte.sqlite3'}"
    if env.get("DYNO") and url.startswith("postgres") and "sslmode=" not in url:
        url += ("&" if "?" in url else "?") + "sslmode=require"
    return url


def ponte_home(env: Mapping[str, str]) -> Path:
    """PONTE_HOME, else $XDG_CONFIG_HOME/ponte, else ~/.config/ponte: never the working directory."""
    if env.get("PONTE_HOME"):
        return Path(env["PONTE_HOME"]).expanduser().absolute()
    config = env.get("XDG_CONFIG_HOME", "")
    if not Path(config).is_absolute():  # the XDG rule: a relative value is ignored
        config = str(Path(env["HOME"]) if env.get("HOME") else Path.home()) + "/.config"
    return Path(config) / "ponte"


def _dev_secret(path: Path) -> str:
    """The development secret kept in `path` (created on first use), shared by the server and the token
    command whatever directory they run from."""
    try:
        if not path.exists():
            _create_private(path, secrets.token_urlsafe(32))
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)  # a secret others can read is no secret
        secret = path.read_text().strip()
    except OSError as exc:
        raise SettingsError(f"cannot use the development secret {path}: {exc.strerror or exc}; "
                            "set JWT_SECRET, or PONTE_HOME to a directory of yours") from None
    if len(secret) < 32:
        raise SettingsError(f"the development secret {path} is shorter than 32 characters: "
                            "delete it to generate a new one, or set JWT_SECRET")
    return secret


def _create_private(path: Path, secret: str) -> None:
    """Write a file only its owner can read; if another process created it first, keep theirs. It appears
    whole or not at all (written aside, then linked into place): two instances started at once on a new
    PONTE_HOME must not read it half written."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(secret + "\n")
        os.link(aside, path)
    except FileExistsError:
        pass
    finally:
        aside.unlink()


def documented() -> list[tuple[str, str, str]]:
    """Every environment variable: its name, its default as people read it, and what it means."""
    return [(name.upper(), shown_default(info), info.description or "")
            for name, info in Settings.model_fields.items() if name not in NOT_FROM_ENV]


def shown_default(info: FieldInfo) -> str:
    """A field's default as --help and the README write it: `unset` for None, `true`, `10` for 10.0."""
    extra, value = info.json_schema_extra, info.default
    if isinstance(extra, dict) and "shown_default" in extra:
        return str(extra["shown_default"])
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return ",".join(value) if isinstance(value, tuple) else str(value)


def _one_line(exc: ValidationError) -> str:
    """The first problem of a validation error, named by its environment variable."""
    err = exc.errors()[0]
    field = str(err["loc"][0]).upper() if err["loc"] else ""
    msg = " ".join(err["msg"].removeprefix("Value error, ").split())
    where = f"invalid setting {field}" if field else "invalid settings"
    return f"{where}: {msg} ({HELP_HINT})"
