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


def setup(level: str) -> None:
    """Plain lines on stdout, as a Heroku-style platform collects them."""
    logging.basicConfig(stream=sys.stdout, level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
