"""The prayer task's reference data: cities, calculation methods and madhabs.

Loaded from the package's data/ directory (or one named by `params.dataDir` /
SYNC_PRAYER_DATA_DIR) and checked before any work: a bad row is reported and left
out, and too little usable data is a PrerequisitesMissing failure that names the file
and what to fix, because computing times for half a catalogue would be silently wrong.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sync_runner.praytimes.calculator import City, Madhab, Method

ENV_DATA_DIR = "SYNC_PRAYER_DATA_DIR"
CITIES_FILE = "cities.csv"
METHODS_FILE = "methods.json"
MADHABS_FILE = "madhabs.json"
MIN_CITIES = 100
MIN_METHODS = 15
REQUIRED_MADHABS = ("shafi", "hanafi")


class PrerequisitesMissingError(Exception):
    """The reference data cannot support the task; the message says what to fix."""

    def __init__(self, location: str, problems: list[str], rejected: list[str]) -> None:
        message = f"reference data in {location}: {'; '.join(problems)}"
        if rejected:
            message += f" (rows left out: {'; '.join(rejected[:5])})"
        super().__init__(message)
        self.problems = problems


class _CityRow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    id: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str = Field(min_length=1)
    country: str = Field(pattern=r"^[A-Z]{2}$")
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    timezone: str = Field(min_length=1)

    @model_validator(mode="after")
    def _zone_loads(self) -> _CityRow:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"time zone {self.timezone!r} does not load: {exc}") from None
        return self


class _MethodRow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    fajr_angle: float = Field(alias="fajrAngle", gt=0, lt=30)
    isha_angle: float | None = Field(default=None, alias="ishaAngle", gt=0, lt=30)
    isha_minutes: float | None = Field(default=None, alias="ishaMinutes", gt=0, le=180)
    maghrib_angle: float | None = Field(default=None, alias="maghribAngle", gt=0, lt=10)
    maghrib_minutes: float = Field(default=0.0, alias="maghribMinutes", ge=0, le=30)
    adjustments: dict[Literal["fajr", "sunrise", "dhuhr", "asr", "maghrib", "isha"], float] = (
        Field(default_factory=dict))

    @model_validator(mode="after")
    def _one_isha_rule(self) -> _MethodRow:
        if (self.isha_angle is None) == (self.isha_minutes is None):
            raise ValueError("give exactly one of ishaAngle and ishaMinutes")
        return self

    def to_method(self) -> Method:
        return Method(self.id, self.name, self.fajr_angle, self.isha_angle, self.isha_minutes,
                      self.maghrib_angle, self.maghrib_minutes,
                      MappingProxyType({str(k): v for k, v in self.adjustments.items()}))


class _MadhabRow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    asr_factor: Literal[1, 2] = Field(alias="asrFactor")


@dataclass(frozen=True)
class ReferenceData:
    """Validated cities, methods and madhabs, each by id in file order."""

    location: str
    cities: Mapping[str, City]
    methods: Mapping[str, Method]
    madhabs: Mapping[str, Madhab]
    # Rows left out (each a message); the task reports them as warnings.
    rejected: tuple[str, ...] = ()


def data_dir(override: str | None = None) -> Path | None:
    """The directory to read: the param, then SYNC_PRAYER_DATA_DIR; None: the package's."""
    chosen = override or os.environ.get(ENV_DATA_DIR)
    return Path(chosen) if chosen else None


def _read_text(directory: Path | None, name: str) -> str:
    if directory is None:
        return resources.files("sync_runner.data").joinpath(name).read_text(encoding="utf-8")
    return (directory / name).read_text(encoding="utf-8")


def _csv_rows(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a CSV whose leading `#` lines are its header comment (the source)."""
    lines = text.splitlines()
    skipped = 0
    while skipped < len(lines) and lines[skipped].lstrip().startswith("#"):
        skipped += 1
    yield from enumerate(csv.DictReader(lines[skipped:]), start=skipped + 2)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def _load_json(directory: Path | None, name: str, key: str) -> list[Any]:
    doc = json.loads(_read_text(directory, name))
    items = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise ValueError(f"{name} has no {key!r} list")
    return items


def load_reference(directory: Path | None = None) -> ReferenceData:
    """Read and validate the three files; PrerequisitesMissingError if they cannot serve."""
    location = str(directory) if directory is not None else "the sync image's sync_runner/data"
    problems: list[str] = []
    rejected: list[str] = []
    cities: dict[str, City] = {}
    methods: dict[str, Method] = {}
    madhabs: dict[str, Madhab] = {}

    try:
        for line, raw in _csv_rows(_read_text(directory, CITIES_FILE)):
            try:
                row = _CityRow.model_validate(raw)
            except ValidationError as exc:
                rejected.append(f"{CITIES_FILE} line {line}: {_first_error(exc)}")
                continue
            if row.id in cities:
                rejected.append(f"{CITIES_FILE} line {line}: duplicate city id {row.id!r}")
                continue
            cities[row.id] = City(row.id, row.name, row.country, row.latitude, row.longitude,
                                  row.timezone)
    except (OSError, ValueError) as exc:
        problems.append(f"{CITIES_FILE} unreadable: {exc}")

    try:
        for index, item in enumerate(_load_json(directory, METHODS_FILE, "methods")):
            try:
                method = _MethodRow.model_validate(item).to_method()
            except ValidationError as exc:
                rejected.append(f"{METHODS_FILE} method #{index}: {_first_error(exc)}")
                continue
            methods.setdefault(method.id, method)
    except (OSError, ValueError) as exc:
        problems.append(f"{METHODS_FILE} unreadable: {exc}")

    try:
        for index, item in enumerate(_load_json(directory, MADHABS_FILE, "madhabs")):
            try:
                madhab_row = _MadhabRow.model_validate(item)
            except ValidationError as exc:
                rejected.append(f"{MADHABS_FILE} madhab #{index}: {_first_error(exc)}")
                continue
            madhabs.setdefault(madhab_row.id, Madhab(madhab_row.id, madhab_row.name,
                                                     madhab_row.asr_factor))
    except (OSError, ValueError) as exc:
        problems.append(f"{MADHABS_FILE} unreadable: {exc}")

    if not any(p.startswith(CITIES_FILE) for p in problems) and len(cities) < MIN_CITIES:
        problems.append(f"{CITIES_FILE} has {len(cities)} valid cities with coordinates and "
                        f"time zones, at least {MIN_CITIES} are needed")
    if not any(p.startswith(METHODS_FILE) for p in problems) and len(methods) < MIN_METHODS:
        problems.append(f"{METHODS_FILE} has {len(methods)} valid calculation methods, "
                        f"at least {MIN_METHODS} are needed")
    missing = [m for m in REQUIRED_MADHABS if m not in madhabs]
    if not any(p.startswith(MADHABS_FILE) for p in problems) and missing:
        problems.append(f"{MADHABS_FILE} lacks madhab(s) {', '.join(missing)}")
    if problems:
        raise PrerequisitesMissingError(location, problems, rejected)
    return ReferenceData(location, MappingProxyType(cities), MappingProxyType(methods),
                         MappingProxyType(madhabs), tuple(rejected))
