"""hadith: mirror hadith collections (number, narrator, text, grade) from the source.

params: see content.params.SourceParams. Lock: sync:lock:hadith:hadiths. Table: hadiths.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sync_runner.content.models import Hadith
from sync_runner.content.pipeline import Dataset, SourceSyncTask
from sync_runner.tasks import register


class HadithRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True,
                              str_strip_whitespace=True)

    collection: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")
    hadith_number: int = Field(alias="number", ge=1)
    narrator: str = Field(min_length=1)
    text_english: str = Field(alias="textEnglish", min_length=1)
    text_arabic: str | None = Field(default=None, alias="textArabic")
    grade: Literal["sahih", "hasan", "daif", "unknown"]


def _row(record: Any) -> dict[str, Any]:
    assert isinstance(record, HadithRecord)
    return record.model_dump()


@register("hadith")
class HadithTask(SourceSyncTask):
    job_type = "hadith"
    DATASET = Dataset("hadith", "hadiths", "hadith/hadiths", "hadiths", HadithRecord, Hadith,
                      _row)
