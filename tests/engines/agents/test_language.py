"""Which language a chat message is in: detection on real sentences, names that do not count, and the
session's language for messages too short to tell."""
from __future__ import annotations

import time

import pytest

from engines.agents.language import detect, session_language

HEALTH_EN = "Investigate contracts of the Ministry of Health"
HEALTH_PT = "Investigar contratos do Ministério da Saúde"


@pytest.mark.parametrize("message, expected", [
    (HEALTH_EN, "en"), (HEALTH_PT, "pt"), ("investigar contratos do ministerio da saude", "pt"),
    ("INVESTIGATE CONTRACTS OF THE MINISTRY OF HEALTH", "en"), ("INVESTIGAR CONTRATOS DO MINISTÉRIO DA SAÚDE", "pt"),
    ("Explain the anomalies", "en"), ("Explique as anomalias", "pt"), ("What's the progress?", "en"),
    ("Qual o andamento?", "pt"), ("Summarise the report", "en"), ("Resuma o relatório", "pt"),
    ("O que você pode fazer?", "pt"), ("What can you do?", "en")])
def test_sentences_in_either_language(message: str, expected: str) -> None:
    """Questions and requests of three words or more are told apart, whatever their case and accents."""
    assert detect(message) == expected


@pytest.mark.parametrize("message", [
    "Investigate contracts of the Ministério da Saúde above R$ 1 million",
    "Investigate contracts of Rô Limpeza (fictícia) above R$ 50 mil",
    "Investigate contracts of Alfa Comércio Ltda in 2025",
    "Investigate medicamentos contracts of Ministério da Saúde"])
def test_portuguese_names_do_not_make_english_portuguese(message: str) -> None:
    """Agency and category names, supplier names, amounts and years are left out of the decision."""
    assert detect(message) == "en"


@pytest.mark.parametrize("message", ["ok", "help", "Why?", "Explique INV-2026-9F3A1C0B7D2E4A68", "👍", ""])
def test_short_messages_are_not_decided(message: str) -> None:
    """Fewer than three words left is too little to tell: detect answers None."""
    assert detect(message) is None


def test_short_messages_keep_the_session_language() -> None:
    """A short message is answered in the language of the session's latest long message; a session with
    none takes a very sure detection, else Portuguese."""
    assert session_language("ok", [HEALTH_EN]) == "en"
    assert session_language("ok", [HEALTH_PT]) == "pt"
    assert session_language("ok", [HEALTH_PT, HEALTH_EN, "Why?"]) == "en"
    assert session_language("Qual o andamento?", [HEALTH_EN]) == "pt"  # a long enough message decides alone
    assert session_language("ajuda") == "pt" and session_language("hm") == "pt"
    assert session_language("help") == "en"


def test_detection_is_fast_enough_per_message() -> None:
    """Once the models are loaded, a chat message is decided in under 5 ms on average (a fraction of one here)."""
    detect(HEALTH_EN)
    start = time.perf_counter()
    for _ in range(200):
        detect(HEALTH_PT)
        detect(HEALTH_EN)
    assert (time.perf_counter() - start) / 400 < 0.005
