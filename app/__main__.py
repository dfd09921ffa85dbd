"""`python -m app` serves; `python -m app worker` runs jobs from the queue in Redis; `python -m app token
--sub USER` prints a token for the configured key; `python -m app migrate` brings the database's schema up
to date; `python -m app purge` deletes what retention no longer keeps."""
from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import sys
import textwrap
from typing import Any

from aiohttp import web

from . import logs, worker
from .auth import ALL_SCOPES, USER_SCOPES, AuthError, issue_token
from .db import open_database
from .db.engine import safe_url
from .db.migrate import upgrade
from .db.purge import purge
from .db.store import UNAVAILABLE
from .factory import create_app, freeze_heap_after_start, new_event_loop
from .settings import Settings, SettingsError, documented, from_env

log = logging.getLogger("ponte")
BIND_ERRORS = {errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES}


class StartupError(Exception):
    """Ponte could not start; the message is one line for the operator."""


def settings_help() -> str:
    """Every environment variable with its default and meaning, from the settings model."""
    lines = ["settings (environment variables, read once at start):"]
    for name, default, meaning in documented():
        lines.append(f"  {name} (default: {default})")
        lines.extend(textwrap.wrap(meaning, 96, initial_indent=" " * 6, subsequent_indent=" " * 6))
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """The command line: `serve` (the default) and `token`, each documenting the settings."""
    formatting: dict[str, Any] = {"formatter_class": argparse.RawDescriptionHelpFormatter, "epilog": settings_help()}
    main = argparse.ArgumentParser(prog="python -m app", description=__doc__, **formatting)
    commands = main.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the server (the default)", description="Run the server.", **formatting)
    commands.add_parser("worker", help="run executions and investigations from the queue (needs REDIS_URL)",
                        description="Run jobs (executions, investigations) from the queue in REDIS_URL, "
                                    "WORKER_CONCURRENCY at a time, until SIGTERM.", **formatting)
    commands.add_parser("migrate", help="bring the database (DATABASE_URL) to the latest schema and exit",
                        description="Migrate the database (DATABASE_URL, else SQLite in PONTE_HOME) to the latest "
                                    "schema: what Heroku's release phase runs. Servers and workers also do it "
                                    "when they start.", **formatting)
    commands.add_parser("purge", help="delete results older than the RETENTION_*_DAYS settings and exit",
                        description="Delete executions, investigations (with their reports) and chat histories "
                                    "older than RETENTION_EXECUTIONS_DAYS, RETENTION_INVESTIGATIONS_DAYS and "
                                    "RETENTION_CHAT_DAYS (0: kept forever).", **formatting)
    token = commands.add_parser("token", help="print a JWT signed with the configured key",
                                description="Print a JWT signed with JWT_SECRET or JWT_PRIVATE_KEY (or the "
                                            "development secret in PONTE_HOME).", **formatting)
    token.add_argument("--sub", required=True, help="the user id (JWT sub claim)")
    token.add_argument("--scope", nargs="+", choices=ALL_SCOPES, default=list(USER_SCOPES),
                       help="scopes to grant (default: every user scope, not publish or admin)")
    token.add_argument("--ttl", type=float, default=3600.0, help="lifetime in seconds (default 3600)")
    return main


def main(argv: list[str] | None = None) -> int:
    """Run a command; 2 and one line on stderr when it cannot start."""
    args = parser().parse_args(argv)
    try:
        settings = from_env()
        if args.command == "token":
            return token(settings, args.sub, tuple(args.scope), args.ttl)
        if args.command == "worker":
            worker.run(settings)
            return 0
        if args.command in ("migrate", "purge"):
            return asyncio.run(database_command(args.command, settings))
        serve(settings)
    except (SettingsError, StartupError, worker.WorkerError) as exc:
        print(f"ponte: {exc}", file=sys.stderr)
        return 2
    return 0


async def database_command(command: str, settings: Settings) -> int:
    """`migrate` or `purge`: one line saying what was done; a database that does not answer is a StartupError."""
    database = open_database(settings.database_url)
    where = safe_url(database.url)
    try:
        if command == "migrate":
            print(f"ponte: database {where} at revision {await upgrade(database)}")
        else:
            await upgrade(database)
            deleted = await purge(database, settings)
            done = ", ".join(f"{count} {name}" for name, count in deleted.items())
            print(f"ponte: purged {done or 'nothing (no RETENTION_*_DAYS set)'} from {where}")
    except UNAVAILABLE as exc:
        raise StartupError(f"database {where} unavailable: {type(exc).__name__}") from None
    finally:
        await database.close()
    return 0


def token(settings: Settings, sub: str, scopes: tuple[str, ...], ttl: float) -> int:
    """Print a token; say on stderr which development secret signed it, if one did."""
    try:
        print(issue_token(settings, sub, scopes, ttl))
    except AuthError as exc:
        raise StartupError(exc.message) from None
    if settings.dev_secret_path:
        print(f"ponte: signed with the development secret in {settings.dev_secret_path}", file=sys.stderr)
    return 0


def serve(settings: Settings) -> None:
    """Run the server until it is stopped; a failure before it listens raises StartupError."""
    logs.setup(settings.log_level, settings.audit_log)
    if settings.dev_secret_path:
        log.warning("no JWT_SECRET: using the development secret in %s (development only; PONTE_HOME moves it); "
                    "mint a token, from any directory, with: python -m app token --sub alice",
                    settings.dev_secret_path)
    listening = False

    loop = new_event_loop(settings.event_loop)

    def running(text: str) -> None:
        nonlocal listening
        listening = True
        log.info("%s (event loop: %s)", " ".join(text.split()), type(loop).__module__.split(".")[0])

    try:
        app = create_app(settings)
        freeze_heap_after_start(app)
        web.run_app(app, host=settings.host, port=settings.port, shutdown_timeout=5,
                    access_log_class=logs.AccessLogger, print=running, loop=loop)
    except Exception as exc:
        if listening:
            raise
        log.debug("start-up failed", exc_info=True)
        raise StartupError(startup_failure(settings, exc)) from None


def startup_failure(settings: Settings, exc: Exception) -> str:
    """One line saying why the server could not start, and what to do when that is known."""
    if isinstance(exc, OSError) and exc.errno in BIND_ERRORS:
        advice = "stop what is using it, or " if exc.errno == errno.EADDRINUSE else ""
        return (f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}; "
                f"{advice}set PORT (and HOST) to another address")
    detail = " ".join(str(exc).split()) or "no details"
    return f"start-up failed: {type(exc).__name__}: {detail} (LOG_LEVEL=DEBUG logs the traceback)"


if __name__ == "__main__":
    sys.exit(main())
