"""Fuzzing (hypothesis): the codecs take any text, and a real server answers any frame on the raw endpoints
and Socket.IO with its documented answer or close code: never silence, never a traceback.

The pure tests feed the codecs arbitrary and near-valid text. The server tests run one Ponte on port 0 and
real aiohttp WebSocket clients on an event loop in a background thread (hypothesis drives sync tests). Each
example is one frame, sent on a connection kept while the server keeps it open, then a probe: a keep-alive
and something whose answer names the probe. By then the server has either closed the connection with a
documented code or answered the probe. Every message it sent is checked against the protocol's schemas,
and the log may hold no traceback and no ERROR line. Expectations come from an oracle of the test's own
(the standard library's JSON parser for raw frames, labels fixed while building Socket.IO packets), not
from the code under test. Runs are reproducible (derandomized, no example database); inputs that once
failed stay as explicit examples, run first.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Sequence, get_args

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from socketio import packet as sio_wire
from yarl import URL

from app import create_app
from app.audit import AUDIT
from app.codecs import DecodeError, Inbound, cidadao, load_json, omni, sio_packet
from conftest import create_investigation, make_settings, make_token
from engines.agents.intent import intent
from schemas import cidadao as cidadao_schemas
from schemas import omni as omni_schemas

LIMIT = 8192  # MAX_MESSAGE_BYTES of the fuzzed server: small, so that oversized frames are cheap to send
SERVER_SETTINGS = {"rate_limit_per_second": 1e6, "rate_limit_burst": 10**6, "max_message_bytes": LIMIT,
                   "heartbeat": 600.0}  # no Engine.IO or raw pings during the run
STEP_TIMEOUT = 5.0  # seconds the server has to answer one probe
# A passing run takes seconds; shrinking a new failure against the server (5 s per silent step) takes longer.
SHRINK_TIME = pytest.mark.timeout(600)
REPRODUCIBLE = settings(deadline=None, derandomize=True, database=None, print_blob=False,
                        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                               HealthCheck.large_base_example, HealthCheck.filter_too_much])
OMNI_CODES = set(get_args(omni_schemas.ErrorCode))
CIDADAO_CODES = set(get_args(cidadao_schemas.ErrorCode))
CONNECT_ERROR_CODES = OMNI_CODES | CIDADAO_CODES | {"SERVER_OVERLOADED"}
SIO_NAMESPACE = re.compile(r"/[A-Za-z0-9_.~-]{0,127}")


# -- strict JSON, the test's own oracle ---------------------------------------------------------------------

def strict_json(text: str) -> Any:
    """Parse strict JSON (finite numbers, at most 200 levels, text UTF-8 can carry) or raise ValueError."""
    value = json.loads(text, parse_constant=_refuse, parse_float=_finite)
    _carryable(value, 0)
    return value


def _refuse(token: str) -> Any:
    raise ValueError(f"{token} is not JSON")


def _finite(token: str) -> float:
    value = float(token)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{token[:20]}… is too large for a float")
    return value


def _carryable(value: Any, depth: int) -> None:
    if depth > 200:
        raise ValueError("nested too deep")
    if isinstance(value, str):
        value.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError, a ValueError
    elif isinstance(value, dict):
        for key, item in value.items():
            _carryable(key, depth + 1)
            _carryable(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _carryable(item, depth + 1)


def assert_strict(value: Any) -> None:
    """A decoded value is what strict JSON can hold: no NaN or infinity, no lone surrogate."""
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except ValueError as exc:
        raise AssertionError(f"decoded a value strict JSON cannot hold ({exc}): {value!r:.200}") from None


# -- strategies -------------------------------------------------------------------------------------------

class Fragment(str):
    """JSON text put into a generated document as it is: a token `json.dumps` would never write."""


def render(value: Any) -> str:
    """JSON text of a document whose leaves may be Fragments."""
    if isinstance(value, Fragment):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{render(k) if isinstance(k, Fragment) else json.dumps(k, ensure_ascii=False)}:"
                              f"{render(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(render(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


# What a Socket.IO connection does with a packet carrying each fragment: "close" (invalid JSON), "error"
# (well-formed, but text UTF-8 cannot carry), "stays" (valid, if unusual, JSON).
FRAGMENTS: list[tuple[Fragment, str]] = [
    *((Fragment(text), "close") for text in (
        "NaN", "Infinity", "-Infinity", "1e999", "-1E+400", "1" + "0" * 400 + ".0", "-" + "9" * 320 + ".5",
        "9" * 4400, "[" * 260 + "]" * 260, '"\\x41"', '"\\u12"', "'quoted'", "01", "1.", ".5", "+1", "True")),
    *((Fragment(text), "error") for text in ('"\\ud800"', '"x\\udfff"', '"\\udc00\\ud800"', '"\\ud800\\u0041"')),
    *((Fragment(text), "stays") for text in (
        "1e308", "-0", "0.1e-999", "2.5E+3", "123456789012345678901234567890", "[" * 150 + "]" * 150,
        '"\\ud83d\\ude00"', '"\\u0000\\u001f"', '"\\/"', '"\u2028\u2029"', '"\\"\\\\"')),
]


@st.composite
def weighted(draw: Any, *choices: tuple[int, st.SearchStrategy[Any]]) -> Any:
    """A value of one of the strategies, each chosen as often as its weight says (st.one_of does not
    keep to its branches' weights, and hypothesis favours whatever comes first)."""
    return draw(draw(st.sampled_from([strategy for weight, strategy in choices for _ in range(weight)])))


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=12))
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


def plant(draw: Any, value: Any, fragment: Fragment) -> Any:
    """A copy of value with the fragment at a drawn place: inside a container, or instead of a scalar."""
    if isinstance(value, list) and value and draw(st.booleans()):
        i = draw(st.integers(0, len(value) - 1))
        return [*value[:i], plant(draw, value[i], fragment), *value[i + 1:]]
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        return {**value, key: plant(draw, value[key], fragment)}
    if isinstance(value, list):
        i = draw(st.integers(0, len(value)))
        return [*value[:i], fragment, *value[i:]]
    if isinstance(value, dict):
        return {**value, draw(st.text(max_size=4)): fragment}
    return fragment


OMNI_INBOUND = omni_schemas.INBOUND
CHAT_INBOUND = cidadao_schemas.CHAT_INBOUND
RESERVED = ["connect", "disconnect", "connect_error", "ERRO", "error", "E" * 65, ""]
# Values a field is likely to be checked against; only private blog URLs, so nothing leaves the machine.
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "request_id": st.text(max_size=10) | st.text(min_size=128, max_size=130),
    "blog_url": st.sampled_from(["http://127.0.0.1:9/", "https://localhost/x", "ftp://x", "javascript:alert(1)"]),
    "execucao_id": st.sampled_from(["e-1", "../../etc/passwd", ""]) | st.text(max_size=8),
    "tipos": st.lists(st.sampled_from(get_args(omni_schemas.NotificationType) + ("spam",)), max_size=11),
    "metricas": st.lists(st.sampled_from(get_args(omni_schemas.MetricName) + ("disco",)), max_size=11),
    "intervalo": st.integers(1000, 60_000) | st.integers(0, 70_000),
    "categoria_id": st.integers(-1, 3),
    "canal": st.sampled_from(["websocket", "email"]),
    "configuracoes": st.fixed_dictionaries({}, optional={
        "max_keywords": st.integers(0, 1001), "profundidade": st.integers(0, 6), "timeout": st.integers(0, 121)}),
    # never "investigate": that starts a whole analysis of the sample contracts
    "message": st.sampled_from(["oi", "Qual o andamento?", "Explique as anomalias", "Resuma o relatório", "   "])
    | st.text(max_size=40).filter(lambda text: intent(text) != "investigate"),
    "agent": st.text(max_size=66),
    "is_typing": st.booleans(),
    "investigation_id": st.sampled_from(["INV-2026-001", "INV 1; DROP", ""]) | st.text(max_size=8),
}


@st.composite
def payloads(draw: Any, inbound: dict[str, type[BaseModel]], event: Any) -> Any:
    """An event's data: mostly an object of some of its schema's fields, with likely or arbitrary values."""
    if draw(st.integers(0, 4)) == 4:
        return draw(JSON_VALUES)
    model = inbound.get(event) if isinstance(event, str) else None
    fields = model.model_fields if model else dict.fromkeys(FIELD_VALUES)
    required = [name for name, info in fields.items() if info and info.is_required()]
    if required and draw(st.integers(0, 5)) == 5:
        required.remove(draw(st.sampled_from(required)))
    optional = sorted(set(fields) - set(required)) + ["extra"]
    chosen = required + draw(st.lists(st.sampled_from(optional), unique=True, max_size=3))
    return {name: draw(weighted((3, FIELD_VALUES.get(name, JSON_VALUES)), (1, JSON_VALUES))) for name in chosen}


def event_names(inbound: dict[str, type[BaseModel]]) -> st.SearchStrategy[Any]:
    return weighted((8, st.sampled_from(sorted(inbound))), (1, st.sampled_from(RESERVED)), (1, st.text(max_size=12)),
                    (1, st.sampled_from([f for f, label in FRAGMENTS if label == "error"])))


@st.composite
def mutated(draw: Any, text: str) -> str:
    """The text, or the text truncated, with a character inserted or removed, deeply nested, or extended."""
    if draw(st.integers(0, 3)) < 3:  # hypothesis favours each draw's zero choice: here, the text as is
        return text
    how = draw(st.sampled_from(["truncate", "insert", "delete", "nest", "append"]))
    at = len(text) - draw(st.integers(1, max(1, len(text) - 1)))
    if how == "truncate":
        return text[:at]
    if how == "insert":
        return text[:at] + draw(st.characters()) + text[at:]
    if how == "delete":
        return text[:at] + text[at + 1:]
    if how == "nest":
        depth = draw(st.sampled_from([1, 150, 260]))
        return "[" * depth + text + "]" * depth
    return text + draw(st.sampled_from([",", "}", "]", " x", "\n", "{}", "\x00"]))


@st.composite
def envelopes(draw: Any, keys: tuple[str, ...], inbound: dict[str, type[BaseModel]]) -> str:
    """A raw-protocol envelope, likely valid, perhaps with an odd fragment or a mutation."""
    envelope: dict[Any, Any] = draw(st.dictionaries(
        st.sampled_from(["timestamp", "id", "event", "type", "extra"]),
        weighted((3, st.text(max_size=24)), (1, JSON_VALUES)), max_size=2))
    name = envelope[draw(st.sampled_from(keys))] = draw(event_names(inbound))
    if draw(st.integers(0, 3)) < 3:
        envelope["data"] = draw(payloads(inbound, name))
    if draw(st.integers(0, 4)) == 4:
        envelope = plant(draw, envelope, draw(st.sampled_from([f for f, _ in FRAGMENTS])))
    return draw(mutated(render(envelope)))


@st.composite
def padded(draw: Any, head: str, tail: str) -> str:
    """head + padding + tail, within a few bytes of LIMIT either way, in 1-, 2- or 4-byte characters."""
    char = draw(st.sampled_from(["x", "ã", "😀"]))
    room = LIMIT + draw(st.integers(-4, 4)) - len((head + tail).encode())
    return head + char * (room // len(char.encode())) + tail


def raw_frames(keys: tuple[str, ...], inbound: dict[str, type[BaseModel]]) -> st.SearchStrategy[str | bytes]:
    """Anything a raw client can send: envelopes, text, binary frames, frames around the size limit."""
    near_limit = padded('{"%s":"ping","data":{"request_id":"' % keys[0], '"}}')
    return weighted((12, envelopes(keys, inbound)), (1, st.text(max_size=40)), (1, st.binary(max_size=32)),
                    (1, near_limit))


NAMESPACES = [("/omni,", "stays")] * 12 + [
    ("/chat,", "any"), ("/investigations,", "any"), ("/nope,", "close"), ("/,", "close"), ("", "close")]
ACK_IDS = weighted((6, st.just("")), (1, st.integers(0, 99).map(str)), (1, st.integers(0, 10**15 - 1).map(str)),
                   (1, st.integers(10**15, 10**20).map(str)))


@st.composite
def packets(draw: Any) -> tuple[str, str]:
    """A Socket.IO EVENT packet, likely valid, and what the server must do with it (a FRAGMENTS label,
    or "close_or_error" / "any" where a mutation makes it unknowable)."""
    namespace, label = draw(st.sampled_from(NAMESPACES))
    ack = draw(ACK_IDS)
    if len(ack) > 15:
        label = "close"
    name = draw(event_names(OMNI_INBOUND))
    args = [draw(payloads(OMNI_INBOUND, name)), draw(JSON_VALUES)][:draw(st.sampled_from([1, 0, 2]))]
    if draw(st.integers(0, 3)) == 3:
        fragment, fragment_label = draw(st.sampled_from(FRAGMENTS))
        args = plant(draw, args, fragment)
    else:
        fragment_label = "stays"
    if label == "stays":  # JSON is read in order: a bad event name is met before anything in the arguments
        label = "error" if isinstance(name, Fragment) else fragment_label
    marked = mutated_packet(draw, f"2{namespace}{ack}{render([name, *args])}")
    return marked, {"=": label, "?": "close" if label == "close" else "close_or_error", "!": "any"}[marked[0]]


def mutated_packet(draw: Any, text: str) -> str:
    """The packet marked "=", or a proper prefix of it marked "?" (no prefix of a packet is valid: it
    closes, unless the JSON met text UTF-8 cannot carry first), or with another type digit or a character
    inserted, marked "!" (anything may happen)."""
    if draw(st.integers(0, 3)) < 3:
        return "=" + text
    how = draw(st.sampled_from(["truncate", "retype", "insert"]))
    if how == "truncate":
        return "?" + text[:len(text) - draw(st.integers(1, len(text)))]
    if how == "retype":
        return "!" + draw(st.sampled_from("0134567x")) + text[1:]
    at = draw(st.integers(0, len(text)))
    return "!" + text[:at] + draw(st.characters()) + text[at:]


PLACEHOLDER = '{"_placeholder":true,"num":0}'
# Frames a generator would rarely build, each with what the server must do with it: "stays" (keeps the
# connection and answers the probe), "error" (ERRO VALIDATION_ERROR, stays), "close" (1002), "closes"
# (any documented close: the client asked), "any" (a documented close or the probe's answer).
SIO_SPECIALS: list[tuple[str, str]] = [
    ("", "close"), ("x", "close"), ("7", "close"), ("4", "close"), ("42", "close"), ("4x", "close"),
    ("44/omni,{}", "close"), ('44/omni,{"message":"x"}', "close"), ("40/omni,{}", "close"),
    ("41/omni,", "any"), ("41/omni,{}", "close"), ("41/omni,1", "close"),
    ("43/omni,7[]", "stays"), ("43/omni,[]", "close"), ("43/omni,7{}", "close"),
    ("0", "stays"), ("0{}", "stays"), ("2", "stays"), ("2probe", "stays"), ("3", "stays"), ("5", "stays"),
    ("6", "stays"), ("1", "closes"),
    ("40/nope,{}", "stays"), ("40{}", "stays"), ('40/chat,{"session_id":"fuzz-sio"}', "stays"),
    ("40/chat,{}", "stays"), ("40/chat,[]", "close"), ('40/investigations,{"investigation_id":"INV-1"}', "stays"),
    ('42/nope,["x"]', "close"), ('42/,["x"]', "close"), ('42/om ni,["x"]', "close"),
    ('42/omni,1234567890123456["SESSAO_PING"]', "close"), ('42/omni,123456789012345["SESSAO_PING"]', "stays"),
    ("42/omni,[1]", "close"), ("42/omni,[]", "close"), ("42/omni,{}", "close"), ('42/omni,"x"', "close"),
    ('42/omni,["SESSAO_PING",{"request_id":"r"}]x', "close"),
    ('42/omni,["SESSAO_PING",{"request_id":"\\ud800"}]', "error"),
    (f'451-/omni,["SESSAO_PING",{PLACEHOLDER}]', "error"), (f'461-/omni,1[{PLACEHOLDER}]', "error"),
    ('4517-/omni,["x"]', "close"), ('450-/omni,["x"]', "close"), ('46/omni,1["x"]', "close"),
    (f'451²-/omni,["x",{PLACEHOLDER}]', "close"), (f'45١-/omni,["x",{PLACEHOLDER}]', "close"),
]


@st.composite
def sio_frames(draw: Any) -> tuple[str | bytes, str]:
    """Any frame a Socket.IO peer can send, with what the server must do with it."""
    branch = draw(st.sampled_from(["packet"] * 7 + ["text", "special", "special", "binary", "padded"]))
    if branch == "text":
        text = draw(st.text(max_size=30))
        return text, ("close" if not text or text[0] not in "0123456" else "closes" if text[0] == "1" else "any")
    if branch == "special":
        return draw(st.sampled_from(SIO_SPECIALS))
    if branch == "binary":
        return draw(st.binary(max_size=16)), "any"
    if branch == "padded":
        text = draw(padded('42/omni,["SESSAO_PING",{"request_id":"', '"}]'))
        return text, "too_big" if len(text.encode()) > LIMIT else "stays"
    text, label = draw(packets())
    return "4" + text[1:], label


# -- the pure codecs ------------------------------------------------------------------------------------

BINARY_HEADER = re.compile(r"([56])([0-9]{1,2})-(?:(/[A-Za-z0-9_.~-]{0,127})(?:,|$))?([0-9]{0,15})")
HEADER = re.compile(r"([0-6])()(?:(/[A-Za-z0-9_.~-]{0,127})(?:,|$))?([0-9]{0,15})")


def check_packet(text: str, pkt: sio_packet.Packet) -> None:
    """A decoded packet is the ASCII grammar's reading of the text, with data of the shape its type allows."""
    found = (BINARY_HEADER if text[:1] in ("5", "6") else HEADER).match(text)
    assert found, f"decoded text that is not the Socket.IO grammar: {text!r:.100}"
    kind, attachments, namespace, ack = found.groups()
    rest = text[found.end():]
    assert (pkt.type, pkt.attachments, pkt.namespace, pkt.id) == (
        int(kind), int(attachments or 0), namespace or "/", int(ack) if ack else None), text
    assert pkt.data == (load_json(rest) if rest else None)
    assert_strict(pkt.data)
    assert pkt.type != sio_packet.CONNECT_ERROR and 0 <= (pkt.id or 0) < 10**15
    if pkt.type in (sio_packet.EVENT, sio_packet.BINARY_EVENT):
        assert isinstance(pkt.data, list) and pkt.data and isinstance(pkt.data[0], str)


def check_inbound(inbound: Inbound, forms: tuple[str, ...]) -> None:
    assert isinstance(inbound.event, str) and 1 <= len(inbound.event) <= 64
    assert isinstance(inbound.data, dict) and inbound.form in forms
    assert_strict(inbound.data)
    assert_strict(inbound.event)


def decode_everywhere(text: str) -> None:
    """Every codec returns a well-formed value or raises its documented exception, nothing else."""
    with contextlib.suppress(DecodeError):
        assert_strict(load_json(text))
    with contextlib.suppress(DecodeError):
        check_inbound(omni.decode(text), (omni.EVENT_FORM, omni.TYPE_FORM))
    with contextlib.suppress(DecodeError):
        check_inbound(cidadao.decode(text), (cidadao.FORM,))
    try:
        check_packet(text, sio_packet.decode(text))
    except sio_packet.BadText as exc:
        assert SIO_NAMESPACE.fullmatch(exc.namespace), exc.namespace
    except (sio_packet.PacketError, DecodeError):
        pass


ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=80)  # lone surrogates included
NEAR_VALID = st.one_of(packets().map(lambda labelled: labelled[0][1:]),
                       envelopes(("event", "type"), OMNI_INBOUND), envelopes(("type",), CHAT_INBOUND),
                       JSON_VALUES.map(render).flatmap(mutated))


@settings(REPRODUCIBLE, max_examples=3000)
@given(ANY_TEXT)
@example('1' + '0' * 400 + '.0')  # found by this test: an infinite float without a 3-digit exponent
@example('"\ud800"')  # found by this test: a lone surrogate code point makes pydantic_core raise TypeError
@example('51²-["x",{"_placeholder":true,"num":0}]')  # found by this test (fixed): ValueError from int("1²")
def test_codecs_take_any_text(text: str) -> None:
    """On arbitrary text every codec returns a strict, well-formed value or raises DecodeError/PacketError."""
    decode_everywhere(text)


@settings(REPRODUCIBLE, max_examples=1500)  # costlier to generate: 1,500 keep the file well under a minute
@given(NEAR_VALID)
@example(f'5١-/omni,["x",{PLACEHOLDER}]')  # found by this test (fixed): a non-ASCII digit read as a count
@example('2/omni,["x",1' + "0" * 400 + '.0]')  # found by this test: an infinite float in a packet
def test_codecs_take_near_valid_text(text: str) -> None:
    """On packets and envelopes that are almost valid every codec returns a strict, well-formed value or
    raises DecodeError/PacketError."""
    decode_everywhere(text)


@st.composite
def client_packets(draw: Any) -> sio_wire.Packet:
    """A packet as python-socketio's client encodes it."""
    kind = draw(st.sampled_from([sio_wire.CONNECT, sio_wire.DISCONNECT, sio_wire.EVENT, sio_wire.ACK]))
    namespace = draw(st.from_regex(SIO_NAMESPACE, fullmatch=True))
    data: Any = None
    if kind == sio_wire.CONNECT:
        data = draw(st.none() | st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=3))
    elif kind == sio_wire.EVENT:
        data = [draw(st.text(max_size=10)), *draw(st.lists(JSON_VALUES, max_size=3))]
    elif kind == sio_wire.ACK:
        data = draw(st.lists(JSON_VALUES, max_size=3))
    ack = draw(st.none() | st.integers(0, 10**15 - 1)) if kind in (sio_wire.EVENT, sio_wire.ACK) else None
    if kind == sio_wire.ACK and ack is None:
        ack = 0
    return sio_wire.Packet(kind, data=data, namespace=namespace, id=ack)


@settings(REPRODUCIBLE, max_examples=300)
@given(client_packets())
def test_sio_decode_reads_what_clients_send(pkt: sio_wire.Packet) -> None:
    """Every packet python-socketio's client can encode decodes to its own type, namespace, id and data."""
    decoded = sio_packet.decode(pkt.encode())
    assert (decoded.type, decoded.namespace, decoded.id, decoded.data) == (
        pkt.packet_type, pkt.namespace or "/", pkt.id, pkt.data)


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


def check_omni_message(text: str) -> tuple[str, Any]:
    """One /ws message: valid JSON in either Omni envelope form, carrying a documented event."""
    message = server_json(text)
    if "event" in message:
        assert set(message) == {"event", "data", "timestamp"}, message
    else:
        assert set(message) == {"type", "data", "timestamp", "id"}, message
    name = message.get("event", message.get("type"))
    check_payload(omni_schemas.OUTBOUND, name, message["data"])
    return name, message["data"]


def check_cidadao_message(text: str) -> tuple[str, Any]:
    """One Cidadão.AI message: valid JSON {type, data, timestamp, id} carrying a documented event."""
    message = server_json(text)
    assert set(message) == {"type", "data", "timestamp", "id"}, message
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
    checked: Engine.IO ping/pong/noop, CONNECT {sid}, DISCONNECT, ACK with its id, CONNECT_ERROR."""
    if text == "2" or text[:1] in ("3", "6"):
        return None
    found = SERVER_PACKET.fullmatch(text)
    assert found, f"the server sent a frame outside the Socket.IO grammar: {text!r:.200}"
    kind, namespace, ack, body = found.groups()
    namespace = namespace or "/"
    data = strict_sio_data(body) if body else None
    if kind == "0":
        assert namespace in PROTOCOL_OF and isinstance(data, dict) and set(data) == {"sid"}, text
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
    """python-socketio's own refusal is a string; Ponte's is {message, data: {code, close, details}}."""
    if isinstance(data, str):
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


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    """One server for the module's fuzz tests, its log recorded."""
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


class Fuzzer:
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

    async def connect(self) -> aiohttp.ClientWebSocketResponse:
        raise NotImplementedError

    def probe(self, n: int) -> list[str]:
        raise NotImplementedError

    async def answered(self, text: str, outcome: Outcome) -> bool:
        """Check one server message; whether it is the probe's answer (else it joins the outcome)."""
        raise NotImplementedError


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
    frozenset(omni_schemas.INBOUND), None,
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


@SHRINK_TIME
def test_fuzz_omni_endpoint(harness: Harness) -> None:
    """Any frame on /ws gets its documented answer, VALIDATION_ERROR, or close 1009 when oversized; the
    connection stays open otherwise, answers are well-formed Omni messages, and nothing is logged as an error."""
    fuzzer = RawFuzzer(harness, OMNI)
    fuzz(harness, fuzzer, raw_frames(OMNI.keys, OMNI_INBOUND), 1500,
         lambda frame, outcome: judge_raw(OMNI, frame, outcome),
         examples=['{"event":"HACK","data":{"request_id":5}}',  # found by this test: request_id echoed as is
                   '{"event":"SESSAO_PING","data":{"request_id":1' + "0" * 400 + '.0}}'])  # … and as Infinity


@SHRINK_TIME
def test_fuzz_chat_endpoint(harness: Harness) -> None:
    """Any frame on the chat endpoint gets its documented answer, VALIDATION_ERROR, or close 1009 when
    oversized; the connection stays open otherwise and every message is a well-formed Cidadão.AI message."""
    fuzzer = RawFuzzer(harness, CHAT)
    fuzz(harness, fuzzer, raw_frames(CHAT.keys, CHAT_INBOUND), 1000,
         lambda frame, outcome: judge_raw(CHAT, frame, outcome),
         examples=['{"type":"ping","data":{"x":1' + "0" * 400 + '.0}}'])  # found by this test: Infinity accepted


@SHRINK_TIME
def test_fuzz_investigations_endpoint(harness: Harness) -> None:
    """Any frame on the investigations endpoint of an investigation its client created gets pong,
    VALIDATION_ERROR or close 1009 when oversized; the connection stays open otherwise and every message
    is a well-formed Cidadão.AI message."""
    investigation = harness.run(create_investigation(harness, INVESTIGATIONS.token))
    endpoint = replace(INVESTIGATIONS, path=INVESTIGATIONS.path + investigation)
    fuzz(harness, RawFuzzer(harness, endpoint), raw_frames(endpoint.keys, endpoint.inbound), 300,
         lambda frame, outcome: judge_raw(endpoint, frame, outcome),
         examples=['{"type":"ping","":1' + "0" * 400 + '.0}'])  # found by this test: Infinity accepted


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


@SHRINK_TIME
def test_fuzz_socketio(harness: Harness) -> None:
    """Any Engine.IO/Socket.IO frame after CONNECT to /omni gets its documented answer, ERRO
    VALIDATION_ERROR (text UTF-8 cannot carry), or close 1002 with a reason (not the grammar) after at most
    one log line; the connection is never left silent and every frame the server sends is well-formed."""
    fuzzer = SioFuzzer(harness)
    fuzz(harness, fuzzer, sio_frames(), 1500, judge_sio,
         examples=[(f'451²-/omni,["x",{PLACEHOLDER}]', "close"),  # found by this test (fixed): a traceback
                   (f'45١-/omni,["x",{PLACEHOLDER}]', "close"),  # found by this test (fixed): not the grammar
                   ("1", "closes"),  # found by this test: the Engine.IO close packet leaves the socket silent
                   ('42/omni,["HACK",{"request_id":[1]}]', "stays"),  # found by this test: request_id echoed
                   ('42/omni,["x",1' + "0" * 400 + '.0]', "close")])  # found by this test: Infinity accepted
    noisy = {sid: count for sid, count in fuzzer.log_lines().items() if count > 1}
    assert not noisy, f"more than one log line for a connection: {noisy}"
