"""`kubectl sync stats`: the throughput sparkline, drawn from the console's buckets."""

from __future__ import annotations

from sync_operator.cli.commands.history import sparkline, throughput_rows


def test_a_sparkline_scales_to_the_busiest_bucket_and_shows_any_run() -> None:
    assert sparkline([0, 1, 4, 8]) == " ▁▄█"
    assert sparkline([1, 100]) == "▁█"  # one run is never drawn as nothing
    assert sparkline([]) == ""


def test_throughput_rows_fill_the_buckets_a_type_had_no_runs_in() -> None:
    points = [
        {"bucket": "2026-12-04T10:00:00Z", "job_type": "quran", "succeeded": 2, "failed": 0,
         "cancelled": 0},
        {"bucket": "2026-12-04T11:00:00Z", "job_type": "prayer", "succeeded": 1, "failed": 1,
         "cancelled": 0},
        {"bucket": "2026-12-04T12:00:00Z", "job_type": "quran", "succeeded": 1, "failed": 0,
         "cancelled": 3},
    ]
    headers, rows = throughput_rows(points)
    assert headers == ["TYPE", "FINISHED PER BUCKET (3)", "TOTAL"]
    assert rows == [["prayer", " █ ", "2"], ["quran", "▄ █", "6"]]
