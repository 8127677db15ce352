"""A local upstream content source for the sync tasks, with fault injection.

Serves the datasets the quran, hadith, audio and finance tasks pull, in the paged
format sync_runner.upstream expects:

    GET /v1/<dataset>?page=N&pageSize=M
    -> {"items": [...], "page": N, "pageSize": M, "total": T, "totalPages": P}

Datasets: `quran/chapters` is the real chapter metadata shipped with the runner
(sync_runner/data/quran_chapters.json); `hadith/hadiths`, `audio/tracks` and
`finance/rates` are SYNTHETIC samples, generated from the seed and labelled as such in
their content (no real hadith text, no real market data, example.org audio URLs).

Faults are set per dataset (or "*" for all) and are deterministic for a seed: whether
a request fails depends on (seed, dataset, page, attempt number), whether a record is
malformed on (seed, dataset, record index), never on timing or request order. The
server counts requests per (dataset, page), so tests can see the retries.

In a test: `async with SourceServer(seed=1) as source: ... source.url ...`.
As a process: `python -m testkit.source_server --port 8099 [--error-rate 0.2 ...]`;
then `PUT /_faults/<dataset>` (a JSON Faults) and `GET /_stats` adjust and observe it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from types import MappingProxyType
from typing import Any

from aiohttp import web

API_PREFIX = "/v1"
ALL = "*"
MAX_PAGE_SIZE = 1000
SYNTHETIC = "[SYNTHETIC SAMPLE - not real content]"


def _empty_map() -> Mapping[int, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Faults:
    """What goes wrong, per dataset. All zero: nothing does."""

    # Share of requests answered with `error_status` (decided per page and attempt).
    error_rate: float = 0.0
    # page -> how many requests for it fail with `error_status` before it answers;
    # a negative count fails it every time.
    error_pages: Mapping[int, int] = field(default_factory=_empty_map)
    error_status: int = 503
    # Every response waits this long first.
    delay_seconds: float = 0.0
    # page -> seconds its responses wait (beyond a client's timeout: a timeout), for
    # the first `slow_times` requests of that page (negative: all of them).
    slow_pages: Mapping[int, float] = field(default_factory=_empty_map)
    slow_times: int = -1
    # Share of records replaced by a malformed one, and records (0-based index in the
    # dataset) that are always malformed.
    malformed_rate: float = 0.0
    malformed_records: frozenset[int] = frozenset()
    # Answer with a body that is not JSON, for these pages (every time).
    garbage_pages: frozenset[int] = frozenset()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Faults:
        """From the admin API's JSON (snake_case keys, page numbers as strings or ints)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = dict(data)
        for name in ("error_pages", "slow_pages"):
            if name in values:
                values[name] = MappingProxyType({int(k): v for k, v in values[name].items()})
        for name in ("malformed_records", "garbage_pages"):
            if name in values:
                values[name] = frozenset(int(v) for v in values[name])
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["error_pages"] = dict(self.error_pages)
        data["slow_pages"] = dict(self.slow_pages)
        data["malformed_records"] = sorted(self.malformed_records)
        data["garbage_pages"] = sorted(self.garbage_pages)
        return data


# -- datasets ----------------------------------------------------------------------------


def quran_chapters() -> list[dict[str, Any]]:
    """The real chapter metadata the runner ships (114 chapters)."""
    text = resources.files("sync_runner.data").joinpath("quran_chapters.json").read_text(
        encoding="utf-8")
    chapters: list[dict[str, Any]] = json.loads(text)["chapters"]
    return chapters


def synthetic_hadiths(count: int, seed: int, revision: int) -> list[dict[str, Any]]:
    rng = random.Random(f"hadith|{seed}")
    grades = ["sahih", "hasan", "daif", "unknown"]
    items = []
    for n in range(1, count + 1):
        collection = "synthetic-sample-a" if n % 2 else "synthetic-sample-b"
        grade = grades[rng.randrange(len(grades))]
        if revision > 1 and n % 10 == 0:  # a later revision regrades every tenth
            grade = grades[(grades.index(grade) + 1) % len(grades)]
        items.append({
            "collection": collection,
            "number": (n + 1) // 2,
            "narrator": f"Sample Narrator {rng.randrange(1, 40)}",
            "textEnglish": f"{SYNTHETIC} Sample text number {n} of the synthetic "
                           f"{collection} collection, for testing the sync only.",
            "textArabic": None if n % 3 == 0 else f"نص تجريبي رقم {n}",
            "grade": grade,
        })
    return items


def synthetic_tracks(reciters: int, seed: int, revision: int) -> list[dict[str, Any]]:
    rng = random.Random(f"audio|{seed}")
    verses = [c["versesCount"] for c in quran_chapters()]
    items = []
    for r in range(reciters):
        reciter = f"sample-reciter-{chr(ord('a') + r)}"
        pace = rng.uniform(5.0, 9.0)  # seconds per verse, this reciter's pace
        bitrate = 128 if revision == 1 or r else 192  # a later revision re-encodes one
        for surah, count in enumerate(verses, start=1):
            duration = max(20, round(count * pace * rng.uniform(0.8, 1.2)))
            items.append({
                "reciterId": reciter,
                "surah": surah,
                "url": f"https://audio.example.org/synthetic/{reciter}/{surah:03d}.mp3",
                "durationSeconds": duration,
                "bitrateKbps": bitrate,
                "sizeBytes": duration * bitrate * 125,
                "format": "mp3",
            })
    return items


def synthetic_rates(days: int, seed: int, revision: int) -> list[dict[str, Any]]:
    rng = random.Random(f"finance|{seed}")
    start = dt.date(2026, 1, 1)
    quotes = {"EUR": 0.92, "GBP": 0.79, "SAR": 3.75, "AED": 3.6725, "MYR": 4.45,
              "IDR": 15800.0, "TRY": 32.5, "PKR": 278.0}
    items = []
    for quote, level in quotes.items():
        for day in range(days):
            level *= 1 + rng.uniform(-0.004, 0.004)
            rate = level * (1.01 if revision > 1 and day == days - 1 else 1.0)
            items.append({
                "base": "USD", "quote": quote,
                "date": (start + dt.timedelta(days=day)).isoformat(),
                "rate": f"{rate:.6f}",
                "provider": "synthetic-sample",
            })
    return items


def _malform(record: Any, rng: random.Random) -> Any:
    """A record that no validator should accept, in one of a few shapes."""
    choice = rng.randrange(3)
    if choice == 0 or not isinstance(record, dict) or not record:
        return "not a record"
    broken = dict(record)
    key = next(iter(broken))
    if choice == 1:
        broken[key] = None  # the key field, nulled
    else:
        broken = {k: v for k, v in broken.items() if k != key}  # the key field, missing
    return broken


# -- the server --------------------------------------------------------------------------


class SourceServer:
    """The datasets, their faults and the request counts, behind an aiohttp app."""

    def __init__(self, *, seed: int = 0, hadiths: int = 250, reciters: int = 2,
                 rate_days: int = 30, revision: int = 1) -> None:
        self.seed = seed
        self.sizes = {"hadiths": hadiths, "reciters": reciters, "rate_days": rate_days}
        self.faults: dict[str, Faults] = {}
        self.requests: Counter[tuple[str, int]] = Counter()
        self.datasets: dict[str, list[Any]] = {}
        self.set_revision(revision)
        self.app = web.Application()
        self.app.router.add_get(API_PREFIX + "/{dataset:.+}", self._page)
        self.app.router.add_get("/_stats", self._stats)
        self.app.router.add_put("/_faults/{dataset:.+}", self._put_faults)
        self.app.router.add_delete("/_faults", self._delete_faults)
        self._runner: web.AppRunner | None = None
        self.host = "127.0.0.1"
        self.port = 0

    # -- configuration -------------------------------------------------------------------

    def set_revision(self, revision: int) -> None:
        """Regenerate the synthetic data as of `revision` (2+: some records change)."""
        self.revision = revision
        self.datasets = {
            "quran/chapters": quran_chapters(),
            "hadith/hadiths": synthetic_hadiths(self.sizes["hadiths"], self.seed, revision),
            "audio/tracks": synthetic_tracks(self.sizes["reciters"], self.seed, revision),
            "finance/rates": synthetic_rates(self.sizes["rate_days"], self.seed, revision),
        }

    def set_faults(self, dataset: str, faults: Faults) -> None:
        """Faults for one dataset, or for all with dataset "*"."""
        if dataset != ALL and dataset not in self.datasets:
            raise KeyError(f"no dataset {dataset!r}")
        self.faults[dataset] = faults

    def clear_faults(self) -> None:
        self.faults.clear()

    def faults_for(self, dataset: str) -> Faults:
        return self.faults.get(dataset) or self.faults.get(ALL) or Faults()

    def requests_for(self, dataset: str) -> dict[int, int]:
        return {page: n for (name, page), n in sorted(self.requests.items()) if name == dataset}

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL the tasks take as sourceUrl."""
        return f"http://{self.host}:{self.port}{API_PREFIX}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.host, self.port = host, int(self._runner.addresses[0][1])
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SourceServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- handlers ------------------------------------------------------------------------

    def _decide(self, *parts: object) -> random.Random:
        return random.Random("|".join(str(p) for p in (self.seed, *parts)))

    async def _page(self, request: web.Request) -> web.StreamResponse:
        dataset = request.match_info["dataset"]
        if dataset not in self.datasets:
            return web.json_response({"error": f"no dataset {dataset!r}"}, status=404)
        try:
            page = int(request.query.get("page", "1"))
            size = int(request.query.get("pageSize", "100"))
        except ValueError:
            return web.json_response({"error": "page and pageSize must be integers"},
                                     status=400)
        if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
            return web.json_response(
                {"error": f"page >= 1 and 1 <= pageSize <= {MAX_PAGE_SIZE}"}, status=400)
        self.requests[(dataset, page)] += 1
        attempt = self.requests[(dataset, page)]
        faults = self.faults_for(dataset)

        delay = faults.delay_seconds
        if page in faults.slow_pages and (faults.slow_times < 0 or attempt <= faults.slow_times):
            delay += faults.slow_pages[page]
        if delay > 0:
            await asyncio.sleep(delay)
        failing = faults.error_pages.get(page)
        if failing is not None and (failing < 0 or attempt <= failing):
            return web.json_response({"error": "injected failure"}, status=faults.error_status)
        if faults.error_rate and self._decide(dataset, page, attempt).random() < faults.error_rate:
            return web.json_response({"error": "injected failure"}, status=faults.error_status)
        if page in faults.garbage_pages:
            return web.Response(text="<html>upstream proxy error</html>",
                                content_type="text/html")

        records = self.datasets[dataset]
        first = (page - 1) * size
        items = []
        for index in range(first, min(first + size, len(records))):
            record = records[index]
            rng = self._decide(dataset, "record", index)
            if index in faults.malformed_records or (
                    faults.malformed_rate and rng.random() < faults.malformed_rate):
                record = _malform(record, rng)
            items.append(record)
        return web.json_response({
            "items": items, "page": page, "pageSize": size, "total": len(records),
            "totalPages": math.ceil(len(records) / size),
        })

    async def _stats(self, request: web.Request) -> web.StreamResponse:
        counts: dict[str, dict[str, int]] = {}
        for (dataset, page), n in sorted(self.requests.items()):
            counts.setdefault(dataset, {})[str(page)] = n
        return web.json_response({"requests": counts, "revision": self.revision,
                                  "faults": {k: v.to_json() for k, v in self.faults.items()}})

    async def _put_faults(self, request: web.Request) -> web.StreamResponse:
        try:
            self.set_faults(request.match_info["dataset"], Faults.from_json(await request.json()))
        except (KeyError, ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    async def _delete_faults(self, request: web.Request) -> web.StreamResponse:
        self.clear_faults()
        return web.json_response({"ok": True})


def main(argv: list[str] | None = None) -> int:
    """`python -m testkit.source_server`: serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--revision", type=int, default=1)
    parser.add_argument("--hadiths", type=int, default=250)
    parser.add_argument("--reciters", type=int, default=2)
    parser.add_argument("--rate-days", type=int, default=30)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--error-status", type=int, default=503)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--malformed-rate", type=float, default=0.0)
    args = parser.parse_args(argv)
    server = SourceServer(seed=args.seed, hadiths=args.hadiths, reciters=args.reciters,
                          rate_days=args.rate_days, revision=args.revision)
    server.set_faults(ALL, Faults(error_rate=args.error_rate, error_status=args.error_status,
                                  delay_seconds=args.delay,
                                  malformed_rate=args.malformed_rate))
    print(json.dumps({"event": "source_server.listening",
                      "url": f"http://{args.host}:{args.port}{API_PREFIX}"}), flush=True)
    web.run_app(server.app, host=args.host, port=args.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
