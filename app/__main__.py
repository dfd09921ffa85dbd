"""`python -m app` serves; `python -m app token --sub USER` prints a token for the configured key."""
from __future__ import annotations

import argparse
import logging
import sys

from aiohttp import web

from . import logs
from .auth import ALL_SCOPES, USER_SCOPES, AuthError, issue_token
from .factory import create_app
from .settings import SettingsError, from_env

log = logging.getLogger("ponte")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the server (the default)")
    token = commands.add_parser("token", help="print a JWT signed with the configured key")
    token.add_argument("--sub", required=True, help="the user id (JWT sub claim)")
    token.add_argument("--scope", nargs="+", choices=ALL_SCOPES, default=list(USER_SCOPES),
                       help="scopes to grant (default: every user scope, not publish or admin)")
    token.add_argument("--ttl", type=float, default=3600.0, help="lifetime in seconds (default 3600)")
    args = parser.parse_args(argv)
    try:
        settings = from_env()
    except SettingsError as exc:
        print(f"ponte: {exc}", file=sys.stderr)
        return 2
    if args.command == "token":
        try:
            print(issue_token(settings, args.sub, tuple(args.scope), args.ttl))
        except AuthError as exc:
            print(f"ponte: {exc.message}", file=sys.stderr)
            return 2
        return 0
    logs.setup(settings.log_level, settings.audit_log)
    web.run_app(create_app(settings), host=settings.host, port=settings.port, shutdown_timeout=5,
                access_log_class=logs.AccessLogger, print=lambda text: log.info(" ".join(text.split())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
