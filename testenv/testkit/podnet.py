"""Pod IPs for the process kubelet: one address per pod, on the loopback device.

Each pod gets an address of its own from 10.244.0.0/16 (the usual pod range), added to
`lo` as a /32 while the pod runs (as root: CI runs as root), without a network
namespace: two replicas of one Deployment listen on the same port at different
addresses, Endpoints list them (Kubernetes refuses loopback-range addresses there,
so 127.x would not do), and the API server reaches a webhook through its Service at
the pod's address. A pod keeps the address its status already shows, so a restarted
kubelet hands out the same one. Without root, addresses come from 127.1.0.0/16
instead: routed to lo by Linux as they are, but never in Endpoints.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import random
import shutil
import subprocess

log = logging.getLogger("process-kubelet.podnet")
ROUTED = ipaddress.IPv4Network("10.244.0.0/16")
LOOPBACK = ipaddress.IPv4Network("127.1.0.0/16")


def _can_add_addresses() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


class PodIPs:
    def __init__(self, *, routed: bool | None = None) -> None:
        self.routed = _can_add_addresses() if routed is None else routed
        self.network = ROUTED if self.routed else LOOPBACK
        self._by_uid: dict[str, str] = {}
        # A random start: two local clusters on one machine (a test run beside the demo)
        # share `lo`, and should not hand out the same addresses.
        self._next = self.network.network_address + 1 + random.randrange(
            self.network.num_addresses - 2)

    def of(self, uid: str, reported: str | None = None) -> str:
        """The pod's address: the one it has, the one its status reports, or a new one."""
        if uid in self._by_uid:
            return self._by_uid[uid]
        taken = set(self._by_uid.values())
        if reported and reported not in taken and \
                ipaddress.IPv4Address(reported) in self.network:
            return self._claim(uid, reported)
        first, last = self.network.network_address + 1, self.network.broadcast_address - 1
        for _ in range(self.network.num_addresses):
            candidate = str(self._next)
            self._next = first if self._next >= last else self._next + 1
            if candidate not in taken:
                return self._claim(uid, candidate)
        raise RuntimeError(f"no pod IP left in {self.network}")

    def _claim(self, uid: str, ip: str) -> str:
        self._by_uid[uid] = ip
        if self.routed:
            self._ip("add", ip)
        return ip

    def release(self, uid: str) -> None:
        ip = self._by_uid.pop(uid, None)
        if ip is not None and self.routed:
            self._ip("del", ip)

    @staticmethod
    def _ip(verb: str, ip: str) -> None:
        done = subprocess.run(["ip", "addr", verb, f"{ip}/32", "dev", "lo"],
                              capture_output=True, text=True, check=False)
        benign = ("File exists", "Cannot assign", "already assigned")  # an adopted pod's
        if done.returncode != 0 and not any(b in done.stderr for b in benign):
            log.warning("ip addr %s %s: %s", verb, ip, done.stderr.strip())
