"""The local upstream source: pages, synthetic labelling, deterministic faults."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aiohttp
import pytest

from testkit.ports import free_port
from testkit.source_server import SYNTHETIC, Faults, SourceServer


async def get(url: str, **params: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, params=params) as resp:
        body = await resp.read()
        try:
            return resp.status, json.loads(body)
        except ValueError:
            return resp.status, body.decode()


async def all_items(server: SourceServer, dataset: str, size: int) -> list[Any]:
    items: list[Any] = []
    page, pages = 1, 1
    while page <= pages:
        status, body = await get(f"{server.url}/{dataset}", page=page, pageSize=size)
        assert status == 200
        pages = body["totalPages"]
        items.extend(body["items"])
        page += 1
    return items


@pytest.mark.parametrize(("dataset", "total"), [
    ("quran/chapters", 114), ("hadith/hadiths", 250), ("audio/tracks", 228),
    ("finance/rates", 240)])
async def test_pages_cover_each_dataset_exactly_once(
        source: SourceServer, dataset: str, total: int) -> None:
    items = await all_items(source, dataset, 37)

    assert len(items) == total
    assert [json.dumps(i, sort_keys=True) for i in items] == [
        json.dumps(i, sort_keys=True) for i in source.datasets[dataset]]


async def test_synthetic_samples_say_so(source: SourceServer) -> None:
    hadiths = source.datasets["hadith/hadiths"]
    assert all(h["textEnglish"].startswith(SYNTHETIC) for h in hadiths)
    assert all(h["collection"].startswith("synthetic-sample") for h in hadiths)
    assert all(r["provider"] == "synthetic-sample" for r in source.datasets["finance/rates"])
    assert all("/synthetic/" in t["url"] for t in source.datasets["audio/tracks"])


async def test_faults_are_the_same_for_the_same_seed() -> None:
    outcomes = []
    for _ in range(2):
        async with SourceServer(seed=3) as server:
            server.set_faults("*", Faults(error_rate=0.5, malformed_rate=0.2))
            seen = []
            for page in (1, 2, 3, 1, 2, 3):
                status, body = await get(f"{server.url}/hadith/hadiths", page=page, pageSize=20)
                seen.append((status, body if status == 200 else None))
            outcomes.append(seen)

    assert outcomes[0] == outcomes[1]
    assert {status for status, _ in outcomes[0]} == {200, 503}


async def test_a_failing_page_recovers_after_its_count(source: SourceServer) -> None:
    source.set_faults("quran/chapters", Faults(error_pages={2: 2}, error_status=502))
    url = f"{source.url}/quran/chapters"

    statuses = [(await get(url, page=2, pageSize=10))[0] for _ in range(3)]

    assert statuses == [502, 502, 200]
    assert source.requests_for("quran/chapters") == {2: 3}


async def test_bad_requests_are_refused(source: SourceServer) -> None:
    assert (await get(f"{source.url}/nothing/here"))[0] == 404
    assert (await get(f"{source.url}/quran/chapters", page=0))[0] == 400
    assert (await get(f"{source.url}/quran/chapters", pageSize="x"))[0] == 400


async def test_admin_api_sets_faults_and_reports_requests(source: SourceServer) -> None:
    base = source.url.removesuffix("/v1")
    async with aiohttp.ClientSession() as session:
        async with session.put(f"{base}/_faults/finance/rates",
                               json={"error_pages": {"1": -1}}) as resp:
            assert resp.status == 200
        async with session.put(f"{base}/_faults/finance/rates", json={"nope": 1}) as resp:
            assert resp.status == 400
    assert (await get(f"{source.url}/finance/rates"))[0] == 503

    _status, stats = await get(f"{base}/_stats")

    assert stats["requests"] == {"finance/rates": {"1": 1}}
    assert stats["faults"]["finance/rates"]["error_pages"] == {"1": -1}


async def test_runs_as_a_module_on_the_given_port() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "testkit.source_server", "--port", str(port), "--seed", "1",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                status, body = await get(f"http://127.0.0.1:{port}/v1/quran/chapters",
                                         pageSize=200)
                break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("source server did not come up")
        assert status == 200
        assert body["total"] == 114
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 5)
