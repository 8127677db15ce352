"""Prometheus metrics: what an on-call engineer graphs and alerts on.

Gauges are computed at scrape time from the parts that own the numbers (the
admission gate, the queues, the mirror writer), so nothing is counted twice and
nothing drifts; counters are incremented where the event happens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

PREFIX = "sync_operator"


class OperatorMetrics:
    """One registry per operator process (tests may run several in one interpreter)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconciles = Counter(f"{PREFIX}_reconciles", "SyncJob reconciles.",
                                  ["outcome"], registry=self.registry)
        self.transitions = Counter(f"{PREFIX}_phase_transitions",
                                   "SyncJob phase transitions.", ["to"],
                                   registry=self.registry)
        self.schedule_jobs = Counter(f"{PREFIX}_scheduled_jobs_created",
                                     "SyncJobs created by schedules.", registry=self.registry)

    def watch(self, collect: Callable[[], Iterable[GaugeMetricFamily]]) -> None:
        """Add gauges computed on every scrape."""
        self.registry.register(_Gauges(collect))

    def serve(self, port: int, addr: str = "0.0.0.0") -> Any:
        return start_http_server(port, addr=addr, registry=self.registry)


class _Gauges(Collector):
    def __init__(self, collect: Callable[[], Iterable[GaugeMetricFamily]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return self._collect()


def gauge(name: str, doc: str, value: float,
          labels: dict[str, str] | None = None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=list(labels or {}))
    family.add_metric(list((labels or {}).values()), value)
    return family
