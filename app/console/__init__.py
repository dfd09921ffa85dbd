"""The console: a page served at `/console` (`/` leads there) from the files in `static/`, shipped in the
package (plain ES modules, CSS and the vendored Socket.IO client: no CDN, no build step).

Every answer under `/console` carries a strict Content-Security-Policy: scripts, styles, images and
frames from this origin only, no inline script or style, connections to this origin and its own
WebSocket URLs; no framing by other sites. `/console/config.json` tells the page whether the
development-token button applies; `/console/sample-contracts.csv` is the sample data set the
investigations view offers to upload.
"""
from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from engines.contracts.source import SAMPLE

from ..keys import SETTINGS_KEY

STATIC = Path(__file__).resolve().parent / "static"
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml",
         ".csv": "text/csv"}
HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")  # what may go into the CSP


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", root)
    app.router.add_get("/console", page)
    app.router.add_get("/console/config.json", config)
    app.router.add_get("/console/sample-contracts.csv", sample_contracts)
    app.router.add_get("/console/{path:.+}", static)


async def root(request: web.Request) -> web.Response:
    """`/` leads to the console."""
    raise web.HTTPFound("/console")


def policy(request: web.Request) -> str:
    """The page's Content-Security-Policy; `connect-src` names this host's ws: and wss: URLs explicitly
    (older browsers do not count them as 'self')."""
    host = request.host if HOST.match(request.host) else ""
    sockets = f" ws://{host} wss://{host}" if host else ""
    return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            f"connect-src 'self'{sockets}; frame-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'")


def headers(request: web.Request, content_type: str) -> dict[str, str]:
    return {"Content-Security-Policy": policy(request), "Content-Type": content_type,
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers=headers(request, "text/html; charset=utf-8"))


async def static(request: web.Request) -> web.FileResponse:
    """A file of `static/`, by a path that stays inside it; 404 for anything else."""
    relative = request.match_info["path"]
    target = (STATIC / relative).resolve()
    if STATIC not in target.parents or not target.is_file() or target.suffix not in TYPES:
        raise web.HTTPNotFound()
    return web.FileResponse(target, headers=headers(request, f"{TYPES[target.suffix]}; charset=utf-8"))


async def config(request: web.Request) -> web.Response:
    """What the page needs to know of this server before signing in."""
    body = {"dev_tokens": bool(request.app[SETTINGS_KEY].dev_secret_path)}
    return web.json_response(body, headers={"Content-Security-Policy": policy(request), "Cache-Control": "no-cache"})


async def sample_contracts(request: web.Request) -> web.FileResponse:
    """The synthetic sample data set (engines/contracts/data), for the investigations view's upload."""
    return web.FileResponse(SAMPLE, headers=headers(request, "text/csv; charset=utf-8"))
