"""Events the API server would refuse are made to fit: a long object name, a long reason."""

from __future__ import annotations

import re

from fake_kube import FakeKube

from sync_operator.kube.events import EventRecorder

DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


async def test_an_event_about_a_253_character_name_has_a_valid_name_and_reason() -> None:
    kube = FakeKube()
    name = ("a" * 239) + "-" + ("b" * 13)  # the cut lands right after the "-"
    body = {"apiVersion": "sync.jobcontrol.io/v1", "kind": "SyncJob",
            "metadata": {"name": name, "namespace": "team-a", "uid": "u1"}}
    await EventRecorder(client=kube.client, instance="op-0").record(
        body, "R" * 300, "message")
    [event] = kube.events("team-a")
    assert len(event["metadata"]["name"]) <= 253
    assert DNS_SUBDOMAIN.fullmatch(event["metadata"]["name"])
    assert len(event["reason"]) == 128
    assert len(event["action"]) == 128
    assert event["involvedObject"]["name"] == name
