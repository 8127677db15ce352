"""What a fault drill checks at its end: the trace each SyncJob left in the cluster and in
PostgreSQL, compared with the trace of the same work run without the fault.

A trace is everything a person could later read about a job: its phase and attempts,
its audit story (who did what, in the order the operator recorded it), its control row,
its Jobs and whether any of its pods still runs. A drill passes when every interrupted
job's trace equals the uninterrupted one's (no lost and no doubled row), nothing is
stuck (terminal phase, outbox drained, no live pod), and no audit row exists twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from sync_operator.api.common import SYNCJOBS
from sync_operator.kube import KubeClient
from sync_operator.kube.resources import JOBS, PODS
from testkit.waiting import eventually

TERMINAL = frozenset({"Succeeded", "Failed", "Cancelled"})
JOB_UID_LABEL = "sync.jobcontrol.io/job-uid"  # on the Job and its pods (job_builder)
Story = list[tuple[str, str]]  # (action, performed_by), in the operator's recording order
# Passing phases that timing alone decides (a runner that acks a pause before the
# operator wrote Pausing goes Running -> Paused directly): not part of the comparison,
# but never recorded twice in a row either.
TRANSIENT = frozenset({"pause_requested", "cancel_requested"})


def lasting(story: Story) -> Story:
    return [(action, by) for action, by in story if action not in TRANSIENT]


def rows(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of one query on the mirror's database (a psycopg or SQLAlchemy URL)."""
    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain) as conn:
        return list(conn.execute(sql, args).fetchall())


def story(url: str, uid: str) -> Story:
    """The audit rows of one job in outbox order (the seq of `uid:seq`), not by time:
    seconds-granular times of a user's action and the operator's reaction can tie."""
    return [(str(a), str(p)) for a, p in rows(
        url, "select action, performed_by from sync_job_audit_logs where job_uid = %s "
             "order by split_part(idempotency_key, ':', 2)::bigint", uid)]


@dataclass(frozen=True)
class Trace:
    name: str
    uid: str
    phase: str
    attempts: int
    story: Story
    control: list[tuple[str, int]]  # (status, priority) rows of sync_job_control
    jobs: int  # batch/v1 Jobs carrying its uid
    live_pods: list[str]  # its pods not yet Succeeded or Failed

    @property
    def system_story(self) -> list[str]:
        return [action for action, by in self.story if by not in USERS]

    @property
    def user_story(self) -> Story:
        return [(action, by) for action, by in self.story if by in USERS]


USERS = frozenset({"alice", "bob", "admin"})


async def trace(kube: KubeClient, url: str, namespace: str, name: str) -> Trace:
    body = await kube.get(SYNCJOBS, name, namespace)
    uid = body["metadata"]["uid"]
    status = body.get("status") or {}
    selector = f"{JOB_UID_LABEL}={uid}"
    jobs = (await kube.list(JOBS, namespace, label_selector=selector))["items"]
    pods = (await kube.list(PODS, namespace, label_selector=selector))["items"]
    live = [p["metadata"]["name"] for p in pods
            if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    control = [(str(s), int(p)) for s, p in rows(
        url, "select status, priority from sync_job_control where job_uid = %s", uid)]
    return Trace(name=name, uid=uid, phase=str(status.get("phase")),
                 attempts=int(status.get("attempts") or 0), story=story(url, uid),
                 control=control, jobs=len(jobs), live_pods=live)


async def settled(kube: KubeClient, url: str, namespace: str, names: Iterable[str],
                  timeout: float = 120.0) -> dict[str, Trace]:
    """Wait until every job is terminal, its outbox drained and none of its pods lives;
    return their traces. A job that never gets there is the drill's failure: stuck."""
    names = list(names)

    async def all_settled() -> dict[str, Trace] | None:
        traces = {}
        for name in names:
            body = await kube.get(SYNCJOBS, name, namespace)
            status = body.get("status") or {}
            if status.get("phase") not in TERMINAL or (status.get("mirror") or {}).get(
                    "pending"):
                return None
            traces[name] = await trace(kube, url, namespace, name)
            if traces[name].live_pods:
                return None
        return traces

    try:
        return await eventually(all_settled, timeout=timeout, what="every job settled")
    except AssertionError:
        stuck = {}
        for name in names:
            body = await kube.get_or_none(SYNCJOBS, name, namespace)
            stuck[name] = (body or {}).get("status")
        raise AssertionError(f"jobs not settled after {timeout}s: {stuck}") from None


def duplicate_audit_rows(url: str) -> list[tuple[Any, ...]]:
    """Audit rows recorded twice for the same thing (same key, or same job and seq)."""
    return rows(url, "select idempotency_key, count(*) from sync_job_audit_logs "
                     "group by idempotency_key having count(*) > 1")


def assert_same_as_uninterrupted(reference: Trace, drilled: Trace, *,
                                 attempts: int | None = None) -> None:
    """The drilled job left what the uninterrupted one left: same phase, same story,
    one control row in its final state, one Job, nothing running."""
    where = f"{drilled.name} (reference {reference.name})"
    # A story that was never recorded would compare equal to another unrecorded one.
    assert reference.story[:1] == [("create", "alice")], f"{where}: {reference.story}"
    assert len(reference.system_story) >= 2, f"{where}: {reference.story}"
    assert drilled.phase == reference.phase, where
    assert lasting(drilled.story) == lasting(reference.story), \
        f"{where}: audit story\n  drilled   {drilled.story}\n  reference {reference.story}"
    assert all(a != b or a[0] not in TRANSIENT
               for a, b in zip(drilled.story, drilled.story[1:], strict=False)), \
        f"{where}: a passing phase recorded twice: {drilled.story}"
    assert [s for s, _ in drilled.control] == [drilled.phase], f"{where}: {drilled.control}"
    assert drilled.jobs == reference.jobs == 1, where
    assert drilled.attempts == (reference.attempts if attempts is None else attempts), where
    assert drilled.live_pods == [], where
