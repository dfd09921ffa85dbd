"""The private names of python-socketio, python-engineio and aiohttp that app/transport and app/http_guard.py
rely on still exist with the parameters Ponte calls them with: an upgrade that moves one fails here,
naming it, before any functional test fails in a way that is hard to read."""
from __future__ import annotations

import inspect
from typing import Any

import engineio
import pytest
import socketio
from aiohttp import web
from aiohttp.http_parser import RawRequestMessage
from aiohttp.web_protocol import RequestHandler
from engineio.async_socket import AsyncSocket
from socketio import packet

# (owner, name, the parameters Ponte passes or overrides with, or None for an attribute)
METHODS: list[tuple[Any, str, tuple[str, ...]]] = [
    (socketio.AsyncServer, "_send_packet", ("eio_sid", "pkt")),
    (socketio.AsyncServer, "_send_eio_packet", ("eio_sid", "eio_pkt")),
    (socketio.AsyncServer, "_handle_connect", ("eio_sid", "namespace", "data")),
    (socketio.AsyncServer, "_handle_disconnect", ("eio_sid", "namespace", "reason")),
    (socketio.AsyncServer, "_handle_eio_connect", ("eio_sid", "environ")),
    (socketio.AsyncServer, "_handle_eio_disconnect", ("eio_sid", "reason")),
    (socketio.AsyncServer, "_handle_eio_message", ("eio_sid", "data")),
    (socketio.AsyncServer, "_engineio_server_class", ()),
    (socketio.AsyncServer, "_trigger_event", ("event", "namespace")),
    (socketio.AsyncManager, "pre_connect", ("eio_sid", "namespace")),
    (socketio.AsyncManager, "connect", ("sid", "namespace")),
    (socketio.AsyncManager, "basic_enter_room", ("sid", "namespace", "room", "eio_sid")),
    (socketio.AsyncManager, "basic_leave_room", ("sid", "namespace", "room")),
    (socketio.AsyncManager, "basic_disconnect", ("sid", "namespace")),
    (socketio.AsyncManager, "get_participants", ("namespace", "room")),
    (socketio.AsyncManager, "sid_from_eio_sid", ("eio_sid", "namespace")),
    (socketio.AsyncManager, "eio_sid_from_sid", ("sid", "namespace")),
    (socketio.AsyncManager, "is_connected", ("sid", "namespace")),
    (AsyncSocket, "close", ("wait", "abort", "reason")),
    (AsyncSocket, "_send_ping", ()),
    (AsyncSocket, "_upgrade_websocket", ("environ",)),
    (AsyncSocket, "_websocket_handler", ("ws",)),
    (engineio.AsyncServer, "disconnect", ("sid",)),
    (engineio.AsyncServer, "start_background_task", ("target",)),
    (web.Application, "_make_handler", ()),
    (RequestHandler, "handle_error", ("request", "status", "exc", "message")),
    (RequestHandler, "_process_keepalive", ()),
]
SERVER_ATTRIBUTES = ["_binary_packet", "environ", "eio", "manager", "manager_initialized", "namespace_handlers",
                     "packet_class", "reason", "reserved_events"]
MANAGER_ATTRIBUTES = ["pending_connect", "pending_disconnect", "callbacks", "rooms", "server"]
SOCKET_ATTRIBUTES = ["queue", "connected", "upgrading", "upgraded", "closed", "closing", "sid", "last_ping"]
ENGINEIO_ATTRIBUTES = ["async_handlers", "max_http_buffer_size", "ping_timeout", "reason", "sockets"]
ENGINEIO_REASONS = ["CLIENT_DISCONNECT", "PING_TIMEOUT", "SERVER_DISCONNECT", "TRANSPORT_CLOSE", "TRANSPORT_ERROR"]
# app/http_guard.py: what `shed` and `GuardedRequestHandler.data_received` trim
REQUEST_SLOTS = ["_message", "_headers", "_rel_url", "_cache", "_protocol"]
HANDLER_SLOTS = ["_messages", "_parser"]
RAW_MESSAGE_FIELDS = ["headers", "raw_headers", "url", "_replace"]
ENGINEIO_DRIVER_KEYS = ["websocket", "translate_request"]
PACKET_NAMES = ["CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK"]


@pytest.mark.parametrize("owner,name,parameters", METHODS, ids=[f"{o.__name__}.{n}" for o, n, _ in METHODS])
def test_method_exists_with_its_parameters(owner: Any, name: str, parameters: tuple[str, ...]) -> None:
    """Each overridden or called private method exists and takes the parameters Ponte uses, in order."""
    method = getattr(owner, name, None)
    assert method is not None, f"{owner.__module__}.{owner.__name__}.{name} is gone"
    names = [p for p in inspect.signature(method).parameters if p != "self"]
    assert names[:len(parameters)] == list(parameters), f"{owner.__name__}.{name}{inspect.signature(method)}"


def test_attributes_exist() -> None:
    """The server's, manager's and Engine.IO socket's attributes Ponte reads are there, as are the driver
    hooks it replaces and Socket.IO's packet types."""
    server = socketio.AsyncServer(async_mode="aiohttp")
    socket = AsyncSocket(server.eio, "contract")
    for owner, names in ((server, SERVER_ATTRIBUTES), (server.manager, MANAGER_ATTRIBUTES),
                         (socket, SOCKET_ATTRIBUTES), (packet, PACKET_NAMES), (server.eio, ENGINEIO_ATTRIBUTES),
                         (server.eio.reason, ENGINEIO_REASONS)):
        missing = [name for name in names if not hasattr(owner, name)]
        assert not missing, f"{type(owner).__name__} lacks {missing}"
    assert set(ENGINEIO_DRIVER_KEYS) <= set(server.eio._async), sorted(server.eio._async)
    assert hasattr(server.reason, "CLIENT_DISCONNECT")
    request_slots = web.BaseRequest.ATTRS  # the attributes a request may have (it refuses others)
    handler_slots = {name for cls in RequestHandler.__mro__ for name in getattr(cls, "__slots__", ())}
    assert set(REQUEST_SLOTS) <= request_slots, f"aiohttp's BaseRequest lacks {set(REQUEST_SLOTS) - request_slots}"
    assert set(HANDLER_SLOTS) <= handler_slots, f"aiohttp's RequestHandler lacks {set(HANDLER_SLOTS) - handler_slots}"
    missing = [name for name in RAW_MESSAGE_FIELDS if not hasattr(RawRequestMessage, name)]
    assert not missing, f"aiohttp's RawRequestMessage lacks {missing}"
