"""The shipped reference data, and how bad or missing data is reported."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sync_runner.praytimes.reference import (
    MIN_CITIES,
    MIN_METHODS,
    PrerequisitesMissingError,
    load_reference,
)

DATA = Path(str(resources.files("sync_runner.data")))


def copy_data(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    target.mkdir()
    for name in ("cities.csv", "methods.json", "madhabs.json"):
        shutil.copy(DATA / name, target / name)
    return target


def city_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if not line.startswith("#")]


def test_shipped_reference_data_meets_the_prerequisites() -> None:
    reference = load_reference()

    assert len(reference.cities) >= MIN_CITIES
    assert len(reference.methods) >= MIN_METHODS
    assert {"shafi", "hanafi"} <= set(reference.madhabs)
    assert reference.rejected == ()


def test_every_data_file_names_its_source() -> None:
    assert "Source:" in (DATA / "cities.csv").read_text().split("id,name")[0]
    for name in ("methods.json", "madhabs.json", "quran_chapters.json"):
        assert json.loads((DATA / name).read_text())["source"]


def test_each_city_zone_offset_is_near_its_solar_time() -> None:
    """A gross coordinate or zone mistake shows as civil time far from solar time."""
    reference = load_reference()
    winter = dt.datetime(2026, 1, 15, 12, tzinfo=dt.UTC)
    for city in reference.cities.values():
        offset = winter.astimezone(ZoneInfo(city.time_zone)).utcoffset()
        assert offset is not None
        gap = abs(offset.total_seconds() / 3600 - city.longitude / 15)
        assert gap < 3.5, (city.id, gap)


def test_quran_chapters_file_has_114_chapters_and_6236_verses() -> None:
    chapters = json.loads((DATA / "quran_chapters.json").read_text())["chapters"]

    assert [c["number"] for c in chapters] == list(range(1, 115))
    assert sum(c["versesCount"] for c in chapters) == 6236
    assert sum(c["revelationPlace"] == "madinah" for c in chapters) == 28
    assert chapters[0]["nameEnglish"] == "Al-Fatihah"


def test_bad_city_rows_are_left_out_with_the_reason(tmp_path: Path) -> None:
    data = copy_data(tmp_path)
    with (data / "cities.csv").open("a") as out:
        out.write("atlantis,Atlantis,XX,95.0,10.0,Europe/Paris\n")
        out.write("nowhere,Nowhere,XX,10.0,10.0,Mars/Olympus_Mons\n")
        out.write("makkah,Makkah again,SA,21.4,39.8,Asia/Riyadh\n")

    reference = load_reference(data)

    assert len(reference.rejected) == 3
    assert "latitude" in reference.rejected[0]
    assert "Mars/Olympus_Mons" in reference.rejected[1]
    assert "duplicate city id 'makkah'" in reference.rejected[2]
    assert "atlantis" not in reference.cities


def test_ten_cities_are_not_enough(tmp_path: Path) -> None:
    data = copy_data(tmp_path)
    lines = city_lines(data / "cities.csv")
    (data / "cities.csv").write_text("\n".join(lines[:11]) + "\n")

    with pytest.raises(PrerequisitesMissingError, match="has 10 valid cities") as raised:
        load_reference(data)

    assert str(data) in str(raised.value)


def test_too_few_methods_and_a_missing_madhab_are_each_reported(tmp_path: Path) -> None:
    data = copy_data(tmp_path)
    methods = json.loads((data / "methods.json").read_text())
    methods["methods"] = methods["methods"][:5]
    (data / "methods.json").write_text(json.dumps(methods))
    (data / "madhabs.json").write_text(json.dumps(
        {"madhabs": [{"id": "shafi", "name": "Standard", "asrFactor": 1}]}))

    with pytest.raises(PrerequisitesMissingError) as raised:
        load_reference(data)

    assert raised.value.problems == [
        "methods.json has 5 valid calculation methods, at least 15 are needed",
        "madhabs.json lacks madhab(s) hanafi"]


def test_a_missing_file_is_reported_as_unreadable(tmp_path: Path) -> None:
    data = copy_data(tmp_path)
    (data / "cities.csv").unlink()

    with pytest.raises(PrerequisitesMissingError, match=r"cities\.csv unreadable"):
        load_reference(data)


def test_city_rows_parse_as_plain_csv() -> None:
    rows = list(csv.DictReader(city_lines(DATA / "cities.csv")))
    assert len({row["id"] for row in rows}) == len(rows)
