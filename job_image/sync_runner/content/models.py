"""The content tables the sync tasks fill (typed ORM; DDL in migrations 0002_content).

Each content table has a surrogate id, a natural key (UPSERT_KEY, unique) that the
upsert conflicts on, the data columns, and two bookkeeping columns: `fence_token`,
the fencing token of the lease under which the row last changed, and `synced_at`,
when it last changed. A re-run that brings nothing new touches neither.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Identity,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

BOOKKEEPING = ("id", "fence_token", "synced_at")


class ContentBase(DeclarativeBase):
    """Declarative base of the content schema (separate from the operator's mirror)."""


class ContentTable(ContentBase):
    """A synced table: natural key, fence token of the last change, time of that change."""

    __abstract__ = True
    UPSERT_KEY: ClassVar[tuple[str, ...]]

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    fence_token: Mapped[int] = mapped_column(BigInteger)
    synced_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                                server_default=func.now())


class PrayerTime(ContentTable):
    __tablename__ = "prayer_times"
    __table_args__ = (
        UniqueConstraint("city_id", "method", "madhab", "date",
                         name="uq_prayer_times_city_method_madhab_date"),
        Index("ix_prayer_times_date", "date"),
    )
    UPSERT_KEY = ("city_id", "method", "madhab", "date")

    city_id: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(Text)
    madhab: Mapped[str] = mapped_column(Text)
    date: Mapped[dt.date] = mapped_column(Date)
    time_zone: Mapped[str] = mapped_column(Text)
    fajr: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    sunrise: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    dhuhr: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    asr: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    maghrib: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    isha: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class QuranChapter(ContentTable):
    __tablename__ = "quran_chapters"
    __table_args__ = (
        UniqueConstraint("number", name="uq_quran_chapters_number"),
        CheckConstraint("number BETWEEN 1 AND 114", name="ck_quran_chapters_number"),
    )
    UPSERT_KEY = ("number",)

    number: Mapped[int] = mapped_column(SmallInteger)
    name_arabic: Mapped[str] = mapped_column(Text)
    name_english: Mapped[str] = mapped_column(Text)
    name_translation: Mapped[str] = mapped_column(Text)
    verses_count: Mapped[int] = mapped_column(SmallInteger)
    revelation_place: Mapped[str] = mapped_column(Text)


class Hadith(ContentTable):
    __tablename__ = "hadiths"
    __table_args__ = (
        UniqueConstraint("collection", "hadith_number", name="uq_hadiths_collection_number"),
    )
    UPSERT_KEY = ("collection", "hadith_number")

    collection: Mapped[str] = mapped_column(Text)
    hadith_number: Mapped[int] = mapped_column(Integer)
    narrator: Mapped[str] = mapped_column(Text)
    text_english: Mapped[str] = mapped_column(Text)
    text_arabic: Mapped[str | None] = mapped_column(Text, nullable=True)
    grade: Mapped[str] = mapped_column(Text)


class AudioTrack(ContentTable):
    __tablename__ = "audio_tracks"
    __table_args__ = (
        UniqueConstraint("reciter_id", "surah_number", name="uq_audio_tracks_reciter_surah"),
        CheckConstraint("surah_number BETWEEN 1 AND 114", name="ck_audio_tracks_surah_number"),
    )
    UPSERT_KEY = ("reciter_id", "surah_number")

    reciter_id: Mapped[str] = mapped_column(Text)
    surah_number: Mapped[int] = mapped_column(SmallInteger)
    url: Mapped[str] = mapped_column(Text)
    duration_seconds: Mapped[int] = mapped_column(Integer)
    bitrate_kbps: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    audio_format: Mapped[str] = mapped_column(Text)


class FinanceRate(ContentTable):
    __tablename__ = "finance_rates"
    __table_args__ = (
        UniqueConstraint("base_currency", "quote_currency", "rate_date",
                         name="uq_finance_rates_pair_date"),
        CheckConstraint("rate > 0", name="ck_finance_rates_rate_positive"),
    )
    UPSERT_KEY = ("base_currency", "quote_currency", "rate_date")

    base_currency: Mapped[str] = mapped_column(Text)
    quote_currency: Mapped[str] = mapped_column(Text)
    rate_date: Mapped[dt.date] = mapped_column(Date)
    rate: Mapped[Decimal] = mapped_column(Numeric(20, 10))
    provider: Mapped[str] = mapped_column(Text)


class SyncFence(ContentBase):
    """The highest fencing token that has written each resource: older ones are refused."""

    __tablename__ = "sync_fences"

    resource: Mapped[str] = mapped_column(Text, primary_key=True)
    token: Mapped[int] = mapped_column(BigInteger)
    holder: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())


CONTENT_TABLES: tuple[type[ContentTable], ...] = (
    PrayerTime, QuranChapter, Hadith, AudioTrack, FinanceRate)
