"""Logging set-up, with an access log that never prints a query string (tokens travel there)."""
from __future__ import annotations

import logging
import sys

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse


class AccessLogger(AbstractAccessLogger):
    """Method, path without query, status and time: no query string, no Referer."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info('%s "%s %s" %s %.3fs', request.remote, request.method, request.path,
                         response.status, time)


def setup(level: str, audit: bool = True) -> None:
    """Plain lines on stdout, as a Heroku-style platform collects them; audit lines are bare JSON."""
    logging.basicConfig(stream=sys.stdout, level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    audit_log = logging.getLogger("ponte.audit")
    audit_log.propagate = False
    audit_log.setLevel(logging.INFO if audit else logging.WARNING)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    audit_log.addHandler(handler)
