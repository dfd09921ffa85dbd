"""What a request asks of the contracts, in Portuguese or English: agencies, suppliers, categories
(matched under `names.fold`, by their aliases), a period and a value range.

Understood, for example: "Ministry of Health" / "Ministério da Saúde"; "in 2025", "from March to June
2025", "de março a junho de 2025", "last year", "ano passado", "this year", "last month", "last 6
months", "since 2024", "até 2025"; "above R$ 1 million", "over 100k", "acima de R$ 1 mi", "below 50
mil", "between 10k and 50k", "entre R$ 10 mil e R$ 50 mil". Amounts take "1.234,56" and "1,234.56".
"""
from __future__ import annotations

import datetime
import re
from dataclasses import asdict, dataclass, replace
from typing import Any, Iterable

from .model import Contract
from .names import agency_aliases, category_aliases, fold, supplier_aliases
from .periods import blank, period_of

AMOUNT = (r"(?:r\$\s*)?(\d[\d.,]*\d|\d)\s*(k|mil|thousand|mi|mm|milhao|milhoes|millions?|m|bi|bilhao|bilhoes|"
          r"billions?)?(?![\w$])")
SCALE = {"k": 1e3, "mil": 1e3, "thousand": 1e3, "mi": 1e6, "mm": 1e6, "milhao": 1e6, "milhoes": 1e6, "million": 1e6,
         "millions": 1e6, "m": 1e6, "bi": 1e9, "bilhao": 1e9, "bilhoes": 1e9, "billion": 1e9, "billions": 1e9}
ABOVE = (r"above|over|more than|greater than|higher than|at least|exceeding|no less than|acima de|mais de|"
         r"maior(?:es)? (?:do )?que|superior(?:es)? a|no minimo|pelo menos|a partir de")
BELOW = (r"below|under|less than|lower than|at most|up to|no more than|not exceeding|abaixo de|menos de|"
         r"menor(?:es)? (?:do )?que|inferior(?:es)? a|no maximo|ate")
BETWEEN = rf"(?:between|entre)\s+{AMOUNT}\s+(?:and|e|a)\s+{AMOUNT}"
UNKNOWN_AGENCY = re.compile(r"\b(?:ministerio|ministry)\s+(?:(?:da|do|das|dos|de|of|for)\s+)?(?:the\s+)?([a-z]{3,})"
                            r"|\b([a-z]{3,})\s+(?=ministry\b)")
NOT_A_NAME = {"the", "contracts", "contratos", "publico", "publica", "federal"}
ALIASES = {"agencies": agency_aliases, "categories": category_aliases, "suppliers": supplier_aliases}


@dataclass(frozen=True, slots=True)
class ContractQuery:
    """Filters on contracts; an empty field does not filter."""

    agencies: tuple[str, ...] = ()
    suppliers: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    start: datetime.date | None = None
    end: datetime.date | None = None
    months: tuple[int, int] | None = None  # a month range in any year ("from March to June")
    min_value: float | None = None
    max_value: float | None = None
    codes: tuple[str, ...] = ()  # agency codes, for a source that is queried by code (SIAFI)
    unknown_agency: str | None = None  # "ministry of X" with an X no agency is called

    def matches(self, contract: Contract) -> bool:
        """True when the contract passes every filter."""
        return (self.named(contract) and (self.start is None or contract.date >= self.start)
                and (self.end is None or contract.date <= self.end)
                and (self.months is None or in_months(contract.date.month, self.months))
                and (self.min_value is None or contract.value >= self.min_value)
                and (self.max_value is None or contract.value <= self.max_value))

    def named(self, contract: Contract) -> bool:
        return ((not self.agencies or contract.agency in self.agencies)
                and (not self.suppliers or contract.supplier in self.suppliers)
                and (not self.categories or contract.category in self.categories))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, only the filters set (dates as ISO text)."""
        data = {key: value for key, value in asdict(self).items() if value not in (None, ())}
        return {key: value.isoformat() if isinstance(value, datetime.date) else
                list(value) if isinstance(value, tuple) else value for key, value in data.items()}


class Vocabulary:
    """The names known in a set of contracts, each with its aliases, matched longest first."""

    def __init__(self, contracts: Iterable[Contract]) -> None:
        self.names: dict[str, tuple[str, str]] = {}  # alias → (kind, name as the data spells it)
        known = {(kind, name) for contract in contracts for kind, name in (
            ("agencies", contract.agency), ("categories", contract.category), ("suppliers", contract.supplier))}
        for kind, name in sorted(known):
            self.names.update((alias, (kind, name)) for alias in ALIASES[kind](name) if alias not in self.names)
        ordered = sorted(self.names, key=len, reverse=True)
        self.pattern = re.compile(r"(?<!\w)(" + "|".join(re.escape(a).replace(r"\ ", r"\s+") for a in ordered)
                                  + r")(?!\w)") if ordered else None

    def take(self, folded: str) -> tuple[dict[str, list[str]], str]:
        """The names a folded text holds, by kind, and the text with them blanked out."""
        found: dict[str, list[str]] = {"agencies": [], "categories": [], "suppliers": []}

        def blank(match: re.Match[str]) -> str:
            kind, name = self.names[" ".join(match.group(1).split())]
            if name not in found[kind]:
                found[kind].append(name)
            return " " * len(match.group(0))
        rest = self.pattern.sub(blank, folded) if self.pattern else folded
        return found, rest


def parse(text: str, vocabulary: Vocabulary, today: datetime.date | None = None) -> ContractQuery:
    """The filters a request names (see the module docstring for what is understood)."""
    names, rest = vocabulary.take(fold(text))
    rest = re.sub(r"\binv-\d{4}-[0-9a-f]+\b", " ", rest)
    (low, high), rest = values(rest)
    (start, end, months), rest = period_of(rest, today or datetime.date.today())
    query = ContractQuery(tuple(names["agencies"]), tuple(names["suppliers"]), tuple(names["categories"]),
                          start, end, months, low, high)
    unknown = next((a or b for a, b in UNKNOWN_AGENCY.findall(rest) if (a or b) not in NOT_A_NAME), None)
    return replace(query, unknown_agency=unknown) if not query.agencies and unknown else query


def values(folded: str) -> tuple[tuple[float | None, float | None], str]:
    """The value range a folded text names, and the text without it."""
    low = high = None
    match = re.search(BETWEEN, folded)
    if match and not (a_year(match, 1) and a_year(match, 3)):
        low, high = sorted((amount(match.group(1), match.group(2)), amount(match.group(3), match.group(4))))
        return (low, high), blank(folded, match)
    for words, is_low in ((ABOVE, True), (BELOW, False)):
        match = re.search(rf"\b(?:{words})\s+{AMOUNT}", folded)
        if match and not (match.group(0).startswith(("ate ", "a partir de", "up to")) and a_year(match, 1)):
            value = amount(match.group(1), match.group(2))
            low, high = (value, high) if is_low else (low, value)
            folded = blank(folded, match)
    return (low, high), folded


def a_year(match: re.Match[str], group: int) -> bool:
    """"até 2025" or "between 2024 and 2025" name years; "até R$ 2025" or "até 2025 mil" name values."""
    return ("r$" not in match.group(0) and not match.group(group + 1)
            and bool(re.fullmatch(r"(19|20)\d\d", match.group(group))))


def amount(digits: str, scale: str | None) -> float:
    """"1.234,56" or "1,234.56" or "1,5" with an optional scale word ("mil", "million", "k")."""
    if "," in digits and "." in digits:
        decimal = "," if digits.rfind(",") > digits.rfind(".") else "."
        number = digits.replace("." if decimal == "," else ",", "").replace(decimal, ".")
    elif re.fullmatch(r"\d{1,3}([.,]\d{3})+", digits):
        number = re.sub(r"[.,]", "", digits)
    else:
        number = digits.replace(",", ".")
    return float(number) * SCALE.get(scale or "", 1.0)


def in_months(month: int, months: tuple[int, int]) -> bool:
    """Whether a month falls in a range of months, which may wrap the year (November to February)."""
    first, last = months
    return first <= month <= last if first <= last else month >= first or month <= last
