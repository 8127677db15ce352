"""finance: mirror daily currency exchange rates (e.g. for zakat/nisab figures).

params: see content.params.SourceParams. Lock: sync:lock:finance:rates.
Table: finance_rates.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sync_runner.content.models import FinanceRate
from sync_runner.content.pipeline import Dataset, SourceSyncTask
from sync_runner.tasks import register


class RateRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True,
                              str_strip_whitespace=True)

    base_currency: str = Field(alias="base", pattern=r"^[A-Z]{3}$")
    quote_currency: str = Field(alias="quote", pattern=r"^[A-Z]{3}$")
    rate_date: dt.date = Field(alias="date")
    rate: Decimal = Field(gt=0, max_digits=20, decimal_places=10)
    provider: str = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct_currencies(self) -> RateRecord:
        if self.base_currency == self.quote_currency:
            raise ValueError("base and quote currencies must differ")
        return self


def _row(record: Any) -> dict[str, Any]:
    assert isinstance(record, RateRecord)
    return record.model_dump()


@register("finance")
class FinanceTask(SourceSyncTask):
    job_type = "finance"
    DATASET = Dataset("finance", "rates", "finance/rates", "rates", RateRecord, FinanceRate,
                      _row)
