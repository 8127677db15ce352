"""audio: mirror the recitation audio catalogue (one track per reciter and surah).

params: see content.params.SourceParams. Lock: sync:lock:audio:tracks. Table: audio_tracks.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from sync_runner.content.models import AudioTrack
from sync_runner.content.pipeline import Dataset, SourceSyncTask
from sync_runner.tasks import register


class TrackRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True,
                              str_strip_whitespace=True)

    reciter_id: str = Field(alias="reciterId", min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")
    surah_number: int = Field(alias="surah", ge=1, le=114)
    url: HttpUrl
    duration_seconds: int = Field(alias="durationSeconds", gt=0)
    bitrate_kbps: int = Field(alias="bitrateKbps", ge=8, le=1411)
    size_bytes: int = Field(alias="sizeBytes", gt=0)
    audio_format: Literal["mp3", "ogg", "opus", "aac", "flac"] = Field(alias="format")


def _row(record: Any) -> dict[str, Any]:
    assert isinstance(record, TrackRecord)
    return {**record.model_dump(), "url": str(record.url)}


@register("audio")
class AudioTask(SourceSyncTask):
    job_type = "audio"
    DATASET = Dataset("audio", "tracks", "audio/tracks", "tracks", TrackRecord, AudioTrack,
                      _row)
