"""The console's run-now: a schedule stored before a schema change is refused with what
is wrong and where, and nothing is created (logic only; the real path is in
tests/console/test_console_views.py)."""

from __future__ import annotations

import pytest
from fake_kube import FakeKube

from sync_operator.api import SYNCJOBS, SYNCSCHEDULES
from sync_operator.api.common import API_VERSION
from sync_operator.console.new_jobs import UnreadableScheduleError, trigger


async def test_an_unreadable_schedule_is_refused_by_field_and_creates_nothing() -> None:
    kube = FakeKube()
    kube.seed(SYNCSCHEDULES, {
        "apiVersion": API_VERSION, "kind": "SyncSchedule",
        "metadata": {"name": "old", "namespace": "ns"},
        "spec": {"jobType": "hadith", "schedule": "0 2 * * *", "priority": 99}})
    with pytest.raises(UnreadableScheduleError) as refused:
        await trigger(kube.client, "ns", "old")
    assert "SyncSchedule old cannot be read" in str(refused.value)
    assert "spec.priority" in str(refused.value)
    assert kube.names(SYNCJOBS, "ns") == []
