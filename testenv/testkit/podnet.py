"""Pod IPs for the process kubelet: one loopback address per pod.

Linux routes all of 127.0.0.0/8 to the loopback device, so each pod gets an address of
its own (from 127.1.0.1 up, clear of the 127.0.0.x the servers use) without a network
namespace: two replicas of one Deployment listen on the same port at different
addresses, Endpoints list them, and the API server reaches a webhook through its
Service at the pod's address. A pod keeps the address its status already shows, so a
restarted kubelet hands out the same one.
"""

from __future__ import annotations

import ipaddress

FIRST = ipaddress.IPv4Address("127.1.0.1")
LAST = ipaddress.IPv4Address("127.1.255.254")


class PodIPs:
    def __init__(self) -> None:
        self._by_uid: dict[str, str] = {}
        self._next = FIRST

    def of(self, uid: str, reported: str | None = None) -> str:
        """The pod's address: the one it has, the one its status reports, or a new one."""
        if uid in self._by_uid:
            return self._by_uid[uid]
        taken = set(self._by_uid.values())
        if reported and reported not in taken and \
                FIRST <= ipaddress.IPv4Address(reported) <= LAST:
            self._by_uid[uid] = reported
            return reported
        for _ in range(int(LAST) - int(FIRST) + 1):
            candidate = str(self._next)
            self._next = FIRST if self._next >= LAST else self._next + 1
            if candidate not in taken:
                self._by_uid[uid] = candidate
                return candidate
        raise RuntimeError("no pod IP left in 127.1.0.0/16")

    def release(self, uid: str) -> None:
        self._by_uid.pop(uid, None)
