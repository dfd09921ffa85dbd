"""Fuzzing a real Ponte: one server on port 0 and real aiohttp WebSocket clients on an event loop in a
background thread (hypothesis drives sync tests), the probe after each frame, the log recorder, and the
judges of each outcome against the protocols' documented answers and close codes."""
from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence, get_args

import aiohttp
from aiohttp import web
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from yarl import URL

from app import create_app
from app.audit import AUDIT
from conftest import make_settings, make_token
from schemas import cidadao as cidadao_schemas
from schemas import omni as omni_schemas
from tests.fuzzing.strategies import LIMIT, REPRODUCIBLE, strict_json

SERVER_SETTINGS = {"rate_limit_per_second": 1e6, "rate_limit_burst": 10**6, "max_message_bytes": LIMIT,
                   "heartbeat": 600.0}  # no Engine.IO or raw pings during the run
STEP_TIMEOUT = 5.0  # seconds the server has to answer one probe
OMNI_CODES = set(get_args(omni_schemas.ErrorCode))
CIDADAO_CODES = set(get_args(cidadao_schemas.ErrorCode))
CONNECT_ERROR_CODES = OMNI_CODES | CIDADAO_CODES | {"SERVER_OVERLOADED"}


# -- what the server may send -------------------------------------------------------------------------------

def check_payload(models: dict[str, type[BaseModel]], name: Any, data: Any) -> None:
    """A server event is one the protocol documents, with a payload its schema accepts."""
    assert name in models, f"undocumented event {name!r}"
    try:
        models[name].model_validate(data)
    except ValidationError as exc:
        raise AssertionError(f"{name} does not match its schema: {exc.errors(include_url=False)[0]}: "
                             f"{data!r:.300}") from None
    if name == "ERRO":
        assert {"codigo", "mensagem", "detalhes", "recomendacao"} <= set(data), data
    if name == "error":
        assert {"code", "message"} <= set(data) <= {"code", "message", "details"}, data


RECOVERY_FIELDS = {"offset", "recovery"}  # what connection-state recovery adds to an envelope


def check_omni_message(text: str) -> tuple[str, Any]:
    """One /ws message: valid JSON in either Omni envelope form, carrying a documented event."""
    message = server_json(text)
    if "event" in message:
        assert set(message) - RECOVERY_FIELDS == {"event", "data", "timestamp"}, message
    else:
        assert set(message) - RECOVERY_FIELDS == {"type", "data", "timestamp", "id"}, message
    name = message.get("event", message.get("type"))
    check_payload(omni_schemas.OUTBOUND, name, message["data"])
    return name, message["data"]


def check_cidadao_message(text: str) -> tuple[str, Any]:
    """One Cidadão.AI message: valid JSON {type, data, timestamp, id} carrying a documented event."""
    message = server_json(text)
    assert set(message) - RECOVERY_FIELDS == {"type", "data", "timestamp", "id"}, message
    check_payload(cidadao_schemas.OUTBOUND, message["type"], message["data"])
    return message["type"], message["data"]


def server_json(text: str) -> Any:
    try:
        message = strict_json(text)
    except (ValueError, RecursionError) as exc:
        raise AssertionError(f"the server sent text that is not strict JSON ({exc}): {text!r:.300}") from None
    assert isinstance(message, dict), text
    return message


SERVER_PACKET = re.compile(r"4([0-4])(?:(/[A-Za-z0-9_.~-]*),)?([0-9]*)(.*)", re.DOTALL)
PROTOCOL_OF = {"/omni": omni_schemas.OUTBOUND, "/chat": cidadao_schemas.OUTBOUND,
               "/investigations": cidadao_schemas.OUTBOUND}


def check_sio_frame(text: str) -> tuple[str, str, Any] | None:
    """One Socket.IO server frame: (namespace, event, data) for an EVENT, None for anything else, each
    checked: Engine.IO ping/pong/noop, CONNECT {sid, pid}, DISCONNECT, ACK with its id, CONNECT_ERROR."""
    if text == "2" or text[:1] in ("3", "6"):
        return None
    found = SERVER_PACKET.fullmatch(text)
    assert found, f"the server sent a frame outside the Socket.IO grammar: {text!r:.200}"
    kind, namespace, ack, body = found.groups()
    namespace = namespace or "/"
    data = strict_sio_data(body) if body else None
    if kind == "0":
        # sid, and the pid of connection-state recovery (Socket.IO's own CONNECT answer carries both)
        assert namespace in PROTOCOL_OF and isinstance(data, dict) and set(data) == {"sid", "pid"}, text
    elif kind == "1":
        assert data is None and not ack, text
    elif kind == "2":
        assert isinstance(data, list) and len(data) == 2 and not ack, text
        check_payload(PROTOCOL_OF[namespace], data[0], data[1])
        return namespace, data[0], data[1]
    elif kind == "3":
        assert ack and isinstance(data, list), text
    else:
        check_connect_error(data)
    return None


def strict_sio_data(body: str) -> Any:
    try:
        return strict_json(body)
    except (ValueError, RecursionError) as exc:
        raise AssertionError(f"the server sent a packet whose data is not strict JSON ({exc}): "
                             f"{body!r:.300}") from None


def check_connect_error(data: Any) -> None:
    """An unknown namespace is refused as socket.io refuses it, `{"message": "Invalid namespace"}`; a served
    namespace's refusal is Ponte's `{message, data: {code, close, details}}`."""
    if data == {"message": "Invalid namespace"}:
        return
    assert isinstance(data, dict) and isinstance(data.get("message"), str), data
    info = data.get("data")
    assert isinstance(info, dict) and info.get("code") in CONNECT_ERROR_CODES, data
    assert info.get("close") in (1008, 1013), data


# -- the server, on a loop of its own ---------------------------------------------------------------------

class LogRecorder(logging.Handler):
    """Keeps every log record the server writes."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def problems(records: Sequence[logging.LogRecord]) -> list[str]:
    """Records that are a traceback or an ERROR line."""
    return [f"{r.name} {r.levelname}: {r.getMessage()[:300]}" for r in records
            if r.exc_info or r.levelno >= logging.ERROR or "Traceback" in r.getMessage()]


@contextlib.contextmanager
def recording(recorder: LogRecorder) -> Iterator[None]:
    """Record every log line: the transport's from INFO up (each close of a connection writes one), and
    the audit lines through a logger of their own (pytest would keep thousands of them for its report)."""
    transport = [logging.getLogger("ponte.sio"), logging.getLogger("ponte.bridge")]
    saved = [logger.level for logger in transport], AUDIT.logger
    audit = logging.Logger("fuzz.audit", logging.INFO)  # not registered: no pytest handler reaches it
    audit.addHandler(recorder)
    logging.getLogger().addHandler(recorder)
    for logger in transport:
        logger.setLevel(logging.INFO)
    AUDIT.logger = audit
    try:
        yield
    finally:
        AUDIT.logger = saved[1]
        for logger, level in zip(transport, saved[0]):
            logger.setLevel(level)
        logging.getLogger().removeHandler(recorder)


class Harness:
    """A Ponte server and an aiohttp client session on an event loop in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-loop", daemon=True)
        self.log = LogRecorder()
        self.checked = 0  # log records already checked
        self.base = ""

    def run(self, coro: Any, timeout: float = 4 * STEP_TIMEOUT) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def start(self) -> None:
        self.runner = web.AppRunner(create_app(make_settings(**SERVER_SETTINGS)))
        await self.runner.setup()
        await web.TCPSite(self.runner, host="127.0.0.1", port=0).start()
        host, port = self.runner.addresses[0][:2]
        self.base = f"http://{host}:{port}"
        self.session = aiohttp.ClientSession()

    def make_url(self, path: str) -> URL:
        return URL(self.base + path)

    async def stop(self) -> None:
        await self.session.close()
        await self.runner.cleanup()
        # what asyncio.run does: Engine.IO's ping timers (one per socket, HEARTBEAT long) end here
        tasks = asyncio.all_tasks() - {asyncio.current_task()}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def assert_log_clean(self) -> None:
        """No traceback and no ERROR line since the last check."""
        new = self.log.records[self.checked:]
        self.checked += len(new)
        assert not problems(new), "\n".join(problems(new))


@contextlib.contextmanager
def serving() -> Iterator[Harness]:
    """One server and its client loop for a module's fuzz tests, its log recorded."""
    harness = Harness()
    with recording(harness.log):
        harness.thread.start()
        harness.run(harness.start())
        try:
            yield harness
        finally:
            harness.run(harness.stop())
            harness.loop.call_soon_threadsafe(harness.loop.stop)
            harness.thread.join(10)
            harness.loop.close()


@dataclass
class Outcome:
    """What one frame led to: the server's messages until the probe's answer, or its close."""

    messages: list[tuple[str, Any]] = field(default_factory=list)
    close: tuple[int | None, str] | None = None

    def error_codes(self) -> list[str]:
        return [data.get("codigo", data.get("code")) for name, data in self.messages if name in ("ERRO", "error")]


class Fuzzer(abc.ABC):
    """One client connection, reopened whenever the server closed it: sends a frame, then a probe."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.probes = 0

    async def step(self, frame: str | bytes) -> Outcome:
        try:
            if self.ws is None or self.ws.closed:
                self.ws = await self.connect()
            self.probes += 1
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):  # the server may have closed it
                await (self.ws.send_bytes(frame) if isinstance(frame, bytes) else self.ws.send_str(frame))
                for probe in self.probe(self.probes):
                    await self.ws.send_str(probe)
            return await self.read(frame)
        except BaseException:
            await self.close()  # the next example starts on a fresh connection
            raise

    async def read(self, frame: str | bytes) -> Outcome:
        assert self.ws is not None
        outcome = Outcome()
        deadline = asyncio.get_running_loop().time() + STEP_TIMEOUT
        while True:
            try:
                msg = await self.ws.receive(timeout=max(0.01, deadline - asyncio.get_running_loop().time()))
            except TimeoutError:
                raise AssertionError(f"silent: no close and no answer to the probe {STEP_TIMEOUT:g} s after "
                                     f"{frame!r:.200}") from None
            if msg.type is aiohttp.WSMsgType.CLOSE:
                outcome.close = (msg.data, msg.extra or "")
                return outcome
            if msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                outcome.close = (self.ws.close_code, "")
                return outcome
            assert msg.type is aiohttp.WSMsgType.TEXT, f"the server sent a {msg.type.name} frame: {msg.data!r:.100}"
            if await self.answered(msg.data, outcome):
                return outcome

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
            self.ws = None

    @abc.abstractmethod
    async def connect(self) -> aiohttp.ClientWebSocketResponse:
        """A fresh connection, past the protocol's greeting."""

    @abc.abstractmethod
    def probe(self, n: int) -> list[str]:
        """The frames of probe number `n`."""

    @abc.abstractmethod
    async def answered(self, text: str, outcome: Outcome) -> bool:
        """Check one server message; whether it is the probe's answer (else it joins the outcome)."""


# -- raw endpoints ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RawEndpoint:
    """How to fuzz one raw endpoint and what its protocol promises."""

    path: str
    token: str | None
    check: Callable[[str], tuple[str, Any]]
    keys: tuple[str, ...]  # envelope keys naming the event, in the order the codec looks for them
    inbound: dict[str, type[BaseModel]]
    answered_events: frozenset[str]  # events answered before the next message is read
    welcome: str | None
    probe: Callable[[int], list[str]]
    probe_answer: Callable[[int, str, Any], bool]
    probe_overhead: tuple[str, ...]  # messages the probe itself adds before its final answer


OMNI = RawEndpoint(
    "/ws", make_token("fuzz"), check_omni_message, ("event", "type"), omni_schemas.INBOUND,
    frozenset(omni_schemas.INBOUND), "SESSAO_CONECTADA",
    lambda n: [json.dumps({"event": "SESSAO_PING", "data": {"request_id": f"probe-{n}"}})],
    lambda n, name, data: name == "SESSAO_PONG" and data.get("request_id") == f"probe-{n}", ())
# Chat's pong carries no id: the probe is a ping then an unsubscribe, whose answer names the probe.
CHAT = RawEndpoint(
    "/api/v1/ws/chat/fuzz-session", None, check_cidadao_message, ("type",), cidadao_schemas.CHAT_INBOUND,
    frozenset({"ping", "subscribe", "unsubscribe"}), "connection",
    lambda n: ['{"type":"ping","data":{}}',
               json.dumps({"type": "unsubscribe", "data": {"investigation_id": f"probe-{n}"}})],
    lambda n, name, data: name == "unsubscribed" and data.get("investigation_id") == f"probe-{n}", ("pong",))


# The investigations endpoint serves ping alone: an unknown event's refusal, which names it, ends the probe.
INVESTIGATIONS = RawEndpoint(
    "/api/v1/ws/investigations/", make_token("fuzz"), check_cidadao_message, ("type",),
    cidadao_schemas.INVESTIGATIONS_INBOUND, frozenset({"ping"}), "connection",
    lambda n: ['{"type":"ping","data":{}}', '{"type":"probe-%d","data":{}}' % n],
    lambda n, name, data: name == "error" and data.get("message", "").endswith(f": probe-{n}"), ("pong",))


class RawFuzzer(Fuzzer):
    """A raw-WebSocket client of one endpoint."""

    def __init__(self, harness: Harness, endpoint: RawEndpoint) -> None:
        super().__init__(harness)
        self.endpoint = endpoint

    async def connect(self) -> aiohttp.ClientWebSocketResponse:
        url = self.harness.base + self.endpoint.path
        params = {"token": self.endpoint.token} if self.endpoint.token else None
        ws = await self.harness.session.ws_connect(url, params=params)
        while self.endpoint.welcome is not None:
            msg = await ws.receive(timeout=STEP_TIMEOUT)
            assert msg.type is aiohttp.WSMsgType.TEXT, msg
            if self.endpoint.check(msg.data)[0] == self.endpoint.welcome:
                break
        return ws

    def probe(self, n: int) -> list[str]:
        return self.endpoint.probe(n)

    async def answered(self, text: str, outcome: Outcome) -> bool:
        name, data = self.endpoint.check(text)
        if self.endpoint.probe_answer(self.probes, name, data):
            return True
        outcome.messages.append((name, data))
        return False


def raw_expectation(endpoint: RawEndpoint, frame: str | bytes) -> str:
    """What the endpoint must do with a frame, by the README: "too_big" (close 1009), "error"
    (VALIDATION_ERROR), "answer" (an event it answers, or an error), "stays" (anything but a close)."""
    if isinstance(frame, bytes):
        return "error"
    if len(frame.encode()) > LIMIT:
        return "too_big"
    try:
        message = strict_json(frame)
    except (ValueError, RecursionError):
        return "error"
    if not isinstance(message, dict):
        return "error"
    key = next((k for k in endpoint.keys if k in message), None)
    if key is None or not envelope_ok(message, key):
        return "error"
    name = message[key]
    if name not in endpoint.inbound or name in ("connect", "disconnect"):
        return "error"
    return "answer" if name in endpoint.answered_events else "stays"


def envelope_ok(message: dict[str, Any], key: str) -> bool:
    """The envelope's own fields have their documented types (its data is the handler's business)."""
    name, checked = message[key], ("timestamp",) if key == "event" else ("timestamp", "id")
    return (isinstance(name, str) and 1 <= len(name) <= 64 and isinstance(message.get("data", {}), dict)
            and all(isinstance(message.get(k), (str, type(None))) for k in checked))


def judge_raw(endpoint: RawEndpoint, frame: str | bytes, outcome: Outcome) -> None:
    expected = raw_expectation(endpoint, frame)
    if expected == "too_big":
        assert outcome.close is not None and outcome.close[0] == 1009, (outcome, f"{frame!r:.100}")
        return
    assert outcome.close is None, f"closed {outcome.close} after {frame!r:.200}"
    names = [name for name, _ in outcome.messages]
    for name in endpoint.probe_overhead:
        assert name in names, f"no {name} for the probe after {frame!r:.200}: {outcome}"
    if expected == "error":
        assert "VALIDATION_ERROR" in outcome.error_codes(), f"no VALIDATION_ERROR for {frame!r:.200}: {outcome}"
    if expected == "answer":
        assert len(names) > len(endpoint.probe_overhead), f"no answer to {frame!r:.200}: {outcome}"


def fuzz(harness: Harness, fuzzer: Fuzzer, strategy: st.SearchStrategy[Any], max_examples: int,
         judge: Callable[[Any, Outcome], None], examples: Sequence[Any] = ()) -> None:
    """Send `max_examples` frames from `strategy` (the explicit `examples` first), judging each outcome and
    the log; then check the log once more after the connection closed."""
    @settings(REPRODUCIBLE, max_examples=max_examples)
    @given(strategy)
    def each(value: Any) -> None:
        frame = value[0] if isinstance(value, tuple) else value
        judge(value, harness.run(fuzzer.step(frame)))
        harness.assert_log_clean()

    for value in reversed(examples):
        each = example(value)(each)
    try:
        each()
    finally:
        harness.run(fuzzer.close())
    harness.assert_log_clean()


# -- Socket.IO ------------------------------------------------------------------------------------------------

class SioFuzzer(Fuzzer):
    """A raw WebSocket speaking Engine.IO v4 and Socket.IO v5 by hand, connected to /omni."""

    def __init__(self, harness: Harness) -> None:
        super().__init__(harness)
        self.sids: list[str] = []  # Engine.IO sids, to count each connection's log lines

    async def connect(self) -> aiohttp.ClientWebSocketResponse:
        ws = await self.harness.session.ws_connect(self.harness.base + "/socket.io/",
                                                   params={"EIO": "4", "transport": "websocket"})
        opened = await ws.receive_str(timeout=STEP_TIMEOUT)
        assert opened[:1] == "0", opened
        self.sids.append(json.loads(opened[1:])["sid"])
        await ws.send_str("40/omni," + json.dumps({"token": make_token("fuzz")}))
        while not (text := await ws.receive_str(timeout=STEP_TIMEOUT)).startswith("40/omni,"):
            check_sio_frame(text)
        check_sio_frame(text)
        return ws

    def probe(self, n: int) -> list[str]:
        return ['42/omni,["SESSAO_PING",{"request_id":"probe-%d"}]' % n]

    async def answered(self, text: str, outcome: Outcome) -> bool:
        if text == "2":  # an Engine.IO ping: a live client answers it
            assert self.ws is not None
            await self.ws.send_str("3")
        event = check_sio_frame(text)
        if event is None:
            return False
        namespace, name, data = event
        if namespace == "/omni" and name == "SESSAO_PONG" and data.get("request_id") == f"probe-{self.probes}":
            return True
        outcome.messages.append((name, data))
        return False

    def log_lines(self) -> dict[str, int]:
        """Log lines naming each connection (audit lines aside)."""
        lines = [r.getMessage() for r in self.harness.log.records if r.name not in ("fuzz.audit", "aiohttp.access")]
        return {sid: sum(sid in line for line in lines) for sid in self.sids}


CLOSING = {"close": {1002}, "closes": {1000, 1002}, "too_big": {1009}, "close_or_error": {1002},
           "any": {1002, 1008, 1009}}


def judge_sio(labelled: tuple[str | bytes, str], outcome: Outcome) -> None:
    """A close has the code the label allows (and a reason); no close where the label demands one; the
    refusal where the label demands it."""
    frame, label = labelled
    if outcome.close is not None:
        code, reason = outcome.close
        allowed = CLOSING.get(label, set()) | ({1000} if isinstance(frame, str) and frame[:1] == "1" else set())
        assert code in allowed, f"closed {outcome.close}, expected {label}: {frame!r:.200}"
        assert code != 1002 or reason, f"closed 1002 without a reason after {frame!r:.200}"
        return
    assert label not in ("close", "closes", "too_big"), f"not closed, expected {label}: {frame!r:.200} {outcome}"
    if label == "error":
        assert "VALIDATION_ERROR" in outcome.error_codes(), f"no VALIDATION_ERROR for {frame!r:.200}: {outcome}"
