"""What a request asks of the contracts, in Portuguese and English: agencies by any of their names,
suppliers, categories, periods and value ranges; and the sample source filtering by them."""
from __future__ import annotations

import datetime
from dataclasses import replace

import pytest

from engines.contracts.names import AGENCY_ALIASES
from engines.contracts.query import Vocabulary, amount, parse
from engines.contracts.source import NoMatch, SampleSource, SourceError, sample_contracts, sample_vocabulary
from engines.contracts.texts import describe

TODAY = datetime.date(2026, 11, 29)


def filters(text: str) -> dict[str, object]:
    """The filters the sample's vocabulary finds in a request, as JSON-ready data."""
    return parse(text, sample_vocabulary(), TODAY).to_dict()


@pytest.mark.parametrize("text", [
    "Investigate contracts of the Ministry of Health", "Investigar contratos do Ministério da Saúde",
    "INVESTIGAR CONTRATOS DO MINISTERIO DA SAUDE", "investigar contratos do ministério da saude",
    "Look into the health ministry", "Investigar contratos da saúde"])
def test_an_agency_by_any_of_its_names(text: str) -> None:
    """English and Portuguese names, with or without accents, in any case, name the same agency."""
    assert filters(text) == {"agencies": ["Ministério da Saúde"]}


def test_every_sample_agency_has_english_and_portuguese_aliases() -> None:
    """Each agency of the shipped sample is found by its own name and by an English name."""
    agencies = {c.agency for c in sample_contracts()}
    assert agencies <= set(AGENCY_ALIASES)
    for agency in agencies:
        english = next(alias for alias in AGENCY_ALIASES[agency] if alias.startswith("ministry of"))
        assert filters(f"Investigate the {english.title()}")["agencies"] == [agency]
        assert filters(f"Investigar o {agency.upper()}")["agencies"] == [agency]


@pytest.mark.parametrize("english, portuguese, expected", [
    ("contracts of Kapa Farma from March to June 2025 over 100k",
     "contratos da Kapa Farma de março a junho de 2025 acima de 100 mil",
     {"suppliers": ["Kapa Farma (fictícia)"], "start": "2025-03-01", "end": "2025-06-30", "min_value": 100000.0}),
    ("cleaning services of the Ministry of Health last year", "serviços de limpeza do Ministério da Saúde ano passado",
     {"agencies": ["Ministério da Saúde"], "categories": ["limpeza"], "start": "2025-01-01", "end": "2025-12-31"}),
    ("computing contracts above R$ 1 million", "contratos de informática acima de R$ 1 mi",
     {"categories": ["informática"], "min_value": 1000000.0}),
    ("computers between 10k and 50k in May 2025", "informática entre R$ 10 mil e R$ 50 mil em maio de 2025",
     {"categories": ["informática"], "start": "2025-05-01", "end": "2025-05-31", "min_value": 10000.0,
      "max_value": 50000.0}),
    ("vehicles of Iota Veículos under 200,000.00 this year", "veículos da Iota Veículos abaixo de 200.000,00 este ano",
     {"suppliers": ["Iota Veículos (fictícia)"], "categories": ["veículos"], "start": "2026-01-01",
      "end": "2026-12-31", "max_value": 200000.0}),
    ("medicines from November to February", "medicamentos de novembro a fevereiro",
     {"categories": ["medicamentos"], "months": [11, 2]}),
    ("Defence contracts in the last 6 months", "contratos da Defesa nos últimos 6 meses",
     {"agencies": ["Ministério da Defesa"], "start": "2026-05-29", "end": "2026-11-29"}),
])
def test_english_and_portuguese_twins_mean_the_same(english: str, portuguese: str, expected: dict[str, object]) -> None:
    """A request and its translation give the same filters: supplier, category, period and value range."""
    assert filters(english) == filters(portuguese) == expected


@pytest.mark.parametrize("text, expected", [
    ("1.234,56", 1234.56), ("1,234.56", 1234.56), ("100.000", 100000.0), ("100,000", 100000.0), ("1,5", 1.5),
    ("1.5", 1.5), ("62.725,59", 62725.59)])
def test_amounts_in_either_notation(text: str, expected: float) -> None:
    """Brazilian and English digit grouping and decimal marks are both read."""
    assert amount(text, None) == expected


def test_words_that_look_like_filters_but_are_not() -> None:
    """"may" as a verb, years as years, and an id's digits do not become filters."""
    assert filters("Investigate contracts that may be overpriced") == {}
    assert filters("até 2025") == {"end": "2025-12-31"} and filters("since 2024") == {"start": "2024-01-01"}
    assert filters("between 2024 and 2025") == {"start": "2024-01-01", "end": "2025-12-31"}
    assert filters("Explique INV-2026-9F3A1C0B7D2E4A68") == {}


def test_an_agency_the_data_lacks_is_reported() -> None:
    """"Ministry of Tourism" names no agency of the sample: it is kept as unknown, not ignored."""
    assert filters("Investigate the Ministry of Tourism") == {"unknown_agency": "tourism"}
    assert filters("Investigar o Ministério do Turismo") == {"unknown_agency": "turismo"}


def test_filters_are_described_in_either_language() -> None:
    """The filters read back in words, dates and amounts written the language's way."""
    found = filters("contratos da Kapa Farma de março a junho de 2025 acima de 1,5 milhão")
    assert describe(found, "pt") == ("fornecedor Kapa Farma (fictícia); período de 01/03/2025 a 30/06/2025; "
                                     "valor a partir de R$ 1.500.000,00")
    assert describe(found, "en") == ("supplier Kapa Farma (fictícia); period 2025-03-01 to 2025-06-30; "
                                     "value from R$ 1,500,000.00")


async def test_the_sample_source_applies_every_filter() -> None:
    """The sample source returns exactly the contracts that pass the filters, the same for both languages."""
    english = await SampleSource().search("contracts of Kapa Farma from March to June 2025 over 100k", 100_000)
    portuguese = await SampleSource().search("contratos da Kapa Farma de março a junho de 2025 acima de 100 mil",
                                             100_000)
    expected = [c for c in sample_contracts() if c.supplier.startswith("Kapa Farma") and c.value >= 100_000
                and datetime.date(2025, 3, 1) <= c.date <= datetime.date(2025, 6, 30)]
    assert english == portuguese == expected and 0 < len(expected) < 100


async def test_the_sample_source_refuses_what_it_cannot_answer() -> None:
    """No contract matching, or an agency the sample lacks, is an error worded in either language."""
    with pytest.raises(NoMatch) as none:
        await SampleSource().search("Ministry of Health contracts in 2019", 100)
    assert "no contract in the sample data matches" in none.value.text("en") and "2019" in none.value.text("en")
    assert "nenhum contrato dos dados de exemplo" in str(none.value)
    with pytest.raises(SourceError) as unknown:
        await SampleSource().search("Investigate the Ministry of Tourism", 100)
    assert "Ministério da Saúde" in unknown.value.text("en") and "tourism" in unknown.value.text("en")


def test_a_vocabulary_of_uploaded_names() -> None:
    """Agencies outside the alias table are found by their own name, accents and case aside."""
    vocabulary = Vocabulary([replace(c, agency="Prefeitura de São Paulo") for c in sample_contracts()[:3]])
    assert parse("contratos da PREFEITURA DE SAO PAULO", vocabulary).agencies == ("Prefeitura de São Paulo",)
