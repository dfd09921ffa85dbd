"""The raw protocol codecs, fed strings: no sockets involved."""
from __future__ import annotations

import json

import pytest

from app.transport.codecs import DecodeError, cidadao, omni


def test_omni_event_form_decodes() -> None:
    """The documented {"event","data","timestamp"} form decodes to its event and data."""
    inbound = omni.decode('{"event":"SESSAO_PING","data":{"request_id":"r1"},"timestamp":"2024-12-19T23:00:00Z"}')
    assert (inbound.event, inbound.data, inbound.form) == ("SESSAO_PING", {"request_id": "r1"}, omni.EVENT_FORM)


def test_omni_type_form_decodes() -> None:
    """The web client's {"type","data","timestamp","id"} form is accepted on /ws too."""
    inbound = omni.decode('{"type":"ping","data":{},"id":"m1"}')
    assert (inbound.event, inbound.form) == ("ping", omni.TYPE_FORM)


def test_omni_missing_data_is_empty() -> None:
    """An envelope without data decodes to an empty payload."""
    assert omni.decode('{"event":"SESSAO_PING"}').data == {}


@pytest.mark.parametrize("text,field", [
    ("not json", None), ("[]", None), ('"x"', None), ("3", None),
    ('{"data":{}}', "event"), ('{"event":"X","data":[]}', "data"), ('{"event":""}', "event"),
])
def test_omni_rejects_bad_envelopes(text: str, field: str | None) -> None:
    """Invalid JSON, non-objects and malformed envelopes raise DecodeError naming the field."""
    with pytest.raises(DecodeError) as caught:
        omni.decode(text)
    assert caught.value.field == field


def test_omni_encodes_in_the_form_used() -> None:
    """Event form carries event/data/timestamp; type form adds a unique id."""
    event_form = json.loads(omni.encode("SESSAO_PONG", {"request_id": "r"}, omni.EVENT_FORM))
    assert set(event_form) == {"event", "data", "timestamp"} and event_form["timestamp"].endswith("Z")
    first = json.loads(omni.encode("pong", {}, omni.TYPE_FORM))
    second = json.loads(omni.encode("pong", {}, omni.TYPE_FORM))
    assert set(first) == {"type", "data", "timestamp", "id"} and first["id"] != second["id"]


def test_cidadao_round_trip() -> None:
    """A Cidadão message decodes, and every encoded message has a timestamp and a unique id."""
    inbound = cidadao.decode('{"type":"subscribe","data":{"investigation_id":"INV-2025-001"}}')
    assert (inbound.event, inbound.data) == ("subscribe", {"investigation_id": "INV-2025-001"})
    encoded = [json.loads(cidadao.encode("pong", {"server_time": "t"})) for _ in range(2)]
    assert all(set(m) == {"type", "data", "timestamp", "id"} for m in encoded)
    assert encoded[0]["id"] != encoded[1]["id"]


def test_cidadao_requires_type() -> None:
    """A Cidadão message without `type` names the missing field."""
    with pytest.raises(DecodeError) as caught:
        cidadao.decode('{"data":{}}')
    assert caught.value.field == "type"


def test_deeply_nested_json_is_a_decode_error() -> None:
    """Pathologically nested JSON is refused cleanly instead of crashing the parser."""
    with pytest.raises(DecodeError):
        omni.decode("[" * 100000 + "]" * 100000)


def test_utf8_is_kept() -> None:
    """Portuguese text is sent as UTF-8, not escaped."""
    assert "Conexão" in omni.encode("X", {"m": "Conexão"}, omni.EVENT_FORM)
