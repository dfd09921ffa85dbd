"""Hypothesis strategies for fuzzing Ponte: near-valid raw envelopes and Socket.IO packets with odd
fragments planted, a strict-JSON oracle of the tests' own, and the pure checks of what the codecs return."""
from __future__ import annotations

import contextlib
import json
import re
from typing import Any, get_args

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from socketio import packet as sio_wire

from app.transport.codecs import DecodeError, Inbound, cidadao, load_json, omni, sio_packet
from engines.agents.intent import intent
from schemas import cidadao as cidadao_schemas
from schemas import omni as omni_schemas

LIMIT = 8192  # MAX_MESSAGE_BYTES of the fuzzed server: small, so that oversized frames are cheap to send
REPRODUCIBLE = settings(deadline=None, derandomize=True, database=None, print_blob=False,
                        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                               HealthCheck.large_base_example, HealthCheck.filter_too_much])
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
