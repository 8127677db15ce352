"""The synced content: prayer times, Quran chapters, hadiths, audio tracks, finance
rates, and the sync fences that refuse a stale lock holder's writes.

Revision ID: 0002_content
Revises: 0001_mirror
Create Date: 2026-01-02

Written by hand to match sync_runner.content.models (tests/tasks compares the two).
The downgrade drops these tables and their rows; the operator's mirror tables of
0001_mirror are not touched. Every table refills from its source on the next sync.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_content"
down_revision: str | Sequence[str] | None = "0001_mirror"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")


def _content_table(name: str, *columns: sa.Column[object] | sa.Constraint) -> None:
    """A content table: id, the given columns, then the fence token and sync time."""
    op.create_table(
        name,
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        *columns,
        sa.Column("fence_token", sa.BigInteger(), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{name}"),
    )


def _tz(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    _content_table(
        "prayer_times",
        sa.Column("city_id", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("madhab", sa.Text(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("time_zone", sa.Text(), nullable=False),
        _tz("fajr"), _tz("sunrise"), _tz("dhuhr"), _tz("asr"), _tz("maghrib"), _tz("isha"),
        sa.UniqueConstraint("city_id", "method", "madhab", "date",
                            name="uq_prayer_times_city_method_madhab_date"),
    )
    op.create_index("ix_prayer_times_date", "prayer_times", ["date"])

    _content_table(
        "quran_chapters",
        sa.Column("number", sa.SmallInteger(), nullable=False),
        sa.Column("name_arabic", sa.Text(), nullable=False),
        sa.Column("name_english", sa.Text(), nullable=False),
        sa.Column("name_translation", sa.Text(), nullable=False),
        sa.Column("verses_count", sa.SmallInteger(), nullable=False),
        sa.Column("revelation_place", sa.Text(), nullable=False),
        sa.UniqueConstraint("number", name="uq_quran_chapters_number"),
        sa.CheckConstraint("number BETWEEN 1 AND 114", name="ck_quran_chapters_number"),
    )

    _content_table(
        "hadiths",
        sa.Column("collection", sa.Text(), nullable=False),
        sa.Column("hadith_number", sa.Integer(), nullable=False),
        sa.Column("narrator", sa.Text(), nullable=False),
        sa.Column("text_english", sa.Text(), nullable=False),
        sa.Column("text_arabic", sa.Text(), nullable=True),
        sa.Column("grade", sa.Text(), nullable=False),
        sa.UniqueConstraint("collection", "hadith_number", name="uq_hadiths_collection_number"),
    )

    _content_table(
        "audio_tracks",
        sa.Column("reciter_id", sa.Text(), nullable=False),
        sa.Column("surah_number", sa.SmallInteger(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("duration_seconds", sa.Integer(), nullable=False),
        sa.Column("bitrate_kbps", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("audio_format", sa.Text(), nullable=False),
        sa.UniqueConstraint("reciter_id", "surah_number", name="uq_audio_tracks_reciter_surah"),
        sa.CheckConstraint("surah_number BETWEEN 1 AND 114",
                           name="ck_audio_tracks_surah_number"),
    )

    _content_table(
        "finance_rates",
        sa.Column("base_currency", sa.Text(), nullable=False),
        sa.Column("quote_currency", sa.Text(), nullable=False),
        sa.Column("rate_date", sa.Date(), nullable=False),
        sa.Column("rate", sa.Numeric(20, 10), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.UniqueConstraint("base_currency", "quote_currency", "rate_date",
                            name="uq_finance_rates_pair_date"),
        sa.CheckConstraint("rate > 0", name="ck_finance_rates_rate_positive"),
    )

    op.create_table(
        "sync_fences",
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW,
                  nullable=False),
        sa.PrimaryKeyConstraint("resource", name="pk_sync_fences"),
    )


def downgrade() -> None:
    op.drop_table("sync_fences")
    op.drop_table("finance_rates")
    op.drop_table("audio_tracks")
    op.drop_table("hadiths")
    op.drop_table("quran_chapters")
    op.drop_index("ix_prayer_times_date", table_name="prayer_times")
    op.drop_table("prayer_times")
