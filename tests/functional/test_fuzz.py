"""Fuzzing (hypothesis): a real server answers any frame on the raw endpoints and Socket.IO with its
documented answer or close code: never silence, never a traceback (the codecs alone: test_fuzz_codecs.py).

One Ponte runs on port 0, with real aiohttp WebSocket clients on an event loop in a background thread
(hypothesis drives sync tests; tests/fuzzing/ holds the strategies and the harness). Each example is one
frame, sent on a connection kept while the server keeps it open, then a probe: a keep-alive and something
whose answer names the probe. By then the server has either closed the connection with a documented code
or answered the probe. Every message it sent is checked against the protocol's schemas, and the log may
hold no traceback and no ERROR line. Expectations come from an oracle of the test's own (the standard
library's JSON parser for raw frames, labels fixed while building Socket.IO packets), not from the code
under test. Runs are reproducible (derandomized, no example database); inputs that once failed stay as
explicit examples, run first.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Iterator

import pytest

from conftest import create_investigation
from tests.fuzzing.strategies import CHAT_INBOUND, OMNI_INBOUND, PLACEHOLDER, raw_frames, sio_frames
from tests.fuzzing.server import (CHAT, INVESTIGATIONS, OMNI, Harness, RawFuzzer, SioFuzzer, fuzz, judge_raw,
                                  judge_sio, serving)

# A passing run takes seconds; shrinking a new failure against the server (5 s per silent step) takes longer.
SHRINK_TIME = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    """One server for this module's fuzz tests, its log recorded."""
    with serving() as running:
        yield running


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
