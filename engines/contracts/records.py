"""Contract records from an upload: a JSON list or a CSV text, validated row by row."""
from __future__ import annotations

import csv
import io
from typing import Any, Iterable, Mapping

from pydantic import ValidationError

from schemas.contracts import ContractRecord

from .model import Contract

FIELDS = ("contract_id", "agency", "supplier", "item", "category", "value", "date", "quantity")


class RecordError(ValueError):
    """A record is invalid: `row` (1-based, as the user counts them) and `field` say where."""

    def __init__(self, message: str, row: int, field: str | None) -> None:
        super().__init__(message)
        self.message, self.row, self.field = message, row, field


def parse_json(items: Any, max_records: int) -> list[Contract]:
    """Contracts from a JSON list of objects."""
    if not isinstance(items, list):
        raise RecordError("records: deve ser uma lista de objetos", 0, "records")
    return _parse(items, max_records)


def parse_csv(text: str, max_records: int) -> list[Contract]:
    """Contracts from CSV text with a header row (`,` or `;` separated)."""
    sample = text[:4096]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    missing = [f for f in FIELDS[:-1] if f not in (reader.fieldnames or [])]
    if missing:
        raise RecordError(f"cabeçalho CSV sem as colunas {', '.join(missing)}", 1, missing[0])
    return _parse(reader, max_records, first_row=2)


def _parse(rows: Iterable[Any], max_records: int, first_row: int = 1) -> list[Contract]:
    contracts: list[Contract] = []
    for number, row in enumerate(rows, start=first_row):
        if len(contracts) >= max_records:
            raise RecordError(f"no máximo {max_records} contratos por investigação", number, None)
        contracts.append(_contract(row, number))
    if not contracts:
        raise RecordError("nenhum contrato enviado", first_row, None)
    return contracts


def _contract(row: Any, number: int) -> Contract:
    if not isinstance(row, Mapping):
        raise RecordError(f"linha {number}: deve ser um objeto", number, None)
    try:
        record = ContractRecord.model_validate(dict(row))
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else None
        raise RecordError(f"linha {number}, campo {field}: {error['msg']}", number, field) from None
    return Contract(**record.model_dump())
