"""One contract record as uploaded to `POST /api/v1/investigations` (JSON item or CSV row)."""

import datetime
import math
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ContractRecord(BaseModel):
    """Fields of one public contract; `value` is the contract's total in BRL."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    contract_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    agency: Text
    supplier: Text
    item: Text
    category: Text
    value: float = Field(gt=0, le=1e13)
    date: datetime.date
    quantity: float | None = Field(default=None, gt=0, le=1e9)

    @field_validator("value", "quantity", mode="before")
    @classmethod
    def _number(cls, value: object) -> object:
        """Accept numbers, "1234.56" and Brazilian "1.234,56" (CSV cells are text); refuse NaN and infinity."""
        if isinstance(value, str):
            text = value.strip().replace("R$", "").strip()
            if not text:
                return None
            if "," in text:  # Brazilian format: dots group thousands, the comma is the decimal mark
                text = text.replace(".", "").replace(",", ".")
            value = text
        if isinstance(value, bool):
            raise ValueError("must be a number")
        if isinstance(value, (int, float)) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value
