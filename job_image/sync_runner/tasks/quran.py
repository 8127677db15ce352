"""quran: mirror the Quran's chapter metadata (114 surahs) from the upstream source.

params: see content.params.SourceParams (sourceUrl, pageSize, maxFailureRatio,
lockPolicy, ...). Lock: sync:lock:quran:chapters. Table: quran_chapters.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sync_runner.content.models import QuranChapter
from sync_runner.content.pipeline import Dataset, SourceSyncTask
from sync_runner.tasks import register


class ChapterRecord(BaseModel):
    """One chapter as the source sends it; the bounds are the Quran's own."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True,
                              str_strip_whitespace=True)

    number: int = Field(ge=1, le=114)
    name_arabic: str = Field(alias="nameArabic", min_length=1)
    name_english: str = Field(alias="nameEnglish", min_length=1)
    name_translation: str = Field(alias="nameTranslation", min_length=1)
    verses_count: int = Field(alias="versesCount", ge=3, le=286)
    revelation_place: Literal["makkah", "madinah"] = Field(alias="revelationPlace")


def _row(record: Any) -> dict[str, Any]:
    assert isinstance(record, ChapterRecord)
    return record.model_dump()


@register("quran")
class QuranTask(SourceSyncTask):
    job_type = "quran"
    DATASET = Dataset("quran", "chapters", "quran/chapters", "chapters", ChapterRecord,
                      QuranChapter, _row)
