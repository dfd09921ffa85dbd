"""Fuzzing the codecs (hypothesis): on any text, and on packets and envelopes that are almost valid, each
returns a strict, well-formed value or raises its documented error; what a Socket.IO client encodes decodes back."""
from __future__ import annotations

from hypothesis import example, given, settings
from socketio import packet as sio_wire

from app.transport.codecs import sio_packet
from tests.fuzzing.strategies import ANY_TEXT, NEAR_VALID, PLACEHOLDER, REPRODUCIBLE, client_packets, decode_everywhere


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


@settings(REPRODUCIBLE, max_examples=300)
@given(client_packets())
def test_sio_decode_reads_what_clients_send(pkt: sio_wire.Packet) -> None:
    """Every packet python-socketio's client can encode decodes to its own type, namespace, id and data."""
    decoded = sio_packet.decode(pkt.encode())
    assert (decoded.type, decoded.namespace, decoded.id, decoded.data) == (
        pkt.packet_type, pkt.namespace or "/", pkt.id, pkt.data)
