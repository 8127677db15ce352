"""How kopf logs in: exactly as our own client does (kube.config), so the operator's
watches and the reconcilers' requests use one reading of the kubeconfig or the pod's
ServiceAccount: merged $KUBECONFIG lists, exec credential plugins, and the rotating
bound token (kopf logs in again when the credential says it expires, and after a 401).

kopf's built-in fallback login reads only static tokens and certificates, and the
official client that its richer login needs is what kube.credentials explains we do
not import.

Logins after refused credentials are spaced out (LoginBackoff says why).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf

from sync_operator.app.clock import Clock, SystemClock
from sync_operator.kube import load_connection

log = logging.getLogger(__name__)

LOGIN_BACKOFF_BASE_SECONDS = 1.0
LOGIN_BACKOFF_MAX_SECONDS = 30.0
# Credentials not refused for this long worked: a later refusal starts a new streak.
LOGIN_HEALTHY_SECONDS = 30.0
LOGIN_BACKOFF_JITTER = 0.2


class LoginBackoff:
    """Spaces out the logins that follow refused credentials, up to a cap.

    Why: kopf logs in again as soon as a request gets a 401 (its API client invalidates
    the credentials in kopf's vault; the authenticator activity, waiting for the vault
    to empty, calls the login handler at once and refills it), and has no backoff for
    that: its handler backoff applies only when a handler raises, and ours returns
    what it read, a token the server then refuses. When the refusal is lasting (the
    ServiceAccount deleted under a running pod at `helm uninstall`, a revoked token)
    every new login is refused again within milliseconds and the loop spins: ~1,600
    log lines in 10 s until the pod was killed. A sleep in the login handler throttles that loop, as
    every request waiting on the vault waits on the one login in progress.

    kopf does not say why it calls the handler, so it is inferred: the vault drops
    credentials when they expire or when they are refused, so a login asked for before
    the last credentials handed out expired means they were refused. The first refusal
    after credentials that worked logs in again at once (a rotated or revoked token is
    best replaced promptly); the n-th refusal in a row waits `base * 2**(n-2)`, capped
    at `cap`, less up to `jitter` of it at random (so replicas do not come back in
    lockstep; never more than the cap). Credentials that reach their expiry, or go
    unrefused for `healthy_seconds`, worked: the streak ends. Each refusal is logged
    once, with the wait it earned; the waits bound how many there are.
    """

    def __init__(
        self, *, base: float = LOGIN_BACKOFF_BASE_SECONDS,
        cap: float = LOGIN_BACKOFF_MAX_SECONDS,
        healthy_seconds: float = LOGIN_HEALTHY_SECONDS,
        jitter: float = LOGIN_BACKOFF_JITTER,
        clock: Clock | None = None, rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        logger: logging.Logger = log,
    ) -> None:
        if base < 0 or cap < 0 or healthy_seconds < 0 or not 0 <= jitter <= 1:
            raise ValueError("delays must be >= 0 and jitter within [0, 1]")
        self.base = base
        self.cap = cap
        self.healthy = timedelta(seconds=healthy_seconds)
        self.jitter = jitter
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._log = logger
        self.refusals = 0  # in a row, the last one included
        # The credentials handed out last and not yet judged: when, and their expiry.
        self._issued: tuple[datetime, datetime | None] | None = None

    def next_delay(self) -> float:
        """Judge the credentials handed out last, now that kopf asks for new ones, and
        say how long to wait before logging in (0: at once). Judges them once: a retry
        of a login that raised (kopf waits its own handler backoff) does not count."""
        issued, self._issued = self._issued, None
        if issued is None:
            return 0.0  # the first login, or a retry of one that failed
        now = self._clock.now()
        issued_at, expires_at = issued
        if expires_at is not None and now >= expires_at:
            self.refusals = 0  # they expired unrefused
            return 0.0
        if now - issued_at >= self.healthy:
            self.refusals = 0  # they worked for a while: a new streak
        self.refusals += 1
        if self.refusals == 1:
            self._log.warning("The API server refused the operator's credentials; "
                              "logging in again.")
            return 0.0
        # The exponent is bounded: a refusal that lasts for hours must not overflow a float.
        ceiling = min(self.cap, self.base * 2.0 ** min(self.refusals - 2, 32))
        delay = ceiling - self._rng.uniform(0.0, ceiling * self.jitter)
        self._log.warning(
            "The API server refused the operator's credentials %d times in a row "
            "(a deleted ServiceAccount or a revoked token?); logging in again in %.1f s.",
            self.refusals, delay)
        return delay

    async def wait(self) -> None:
        """Sleep the delay `next_delay` says, if any."""
        delay = self.next_delay()
        if delay > 0:
            await self._sleep(delay)

    def issued(self, expires_at: datetime | None) -> None:
        """New credentials were handed out to kopf, to be used until `expires_at`
        (None: until refused; naive means UTC, as kopf reads it)."""
        if expires_at is not None and expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        self._issued = (self._clock.now(), expires_at)


BACKOFF = LoginBackoff()


@kopf.on.login()
async def login(**_: Any) -> kopf.ConnectionInfo:
    await BACKOFF.wait()  # before reading: a token rotated meanwhile is picked up
    connection = load_connection()
    source = connection.token_source()
    token = await source.token()
    info = kopf.ConnectionInfo(
        server=connection.server, ca_data=connection.ca_data, insecure=connection.insecure,
        token=token, certificate_data=connection.client_cert_data,
        private_key_data=connection.client_key_data,
        default_namespace=connection.namespace, expiration=source.expires_at)
    BACKOFF.issued(info.expiration)
    return info
