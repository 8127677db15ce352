"""`python -m sync_operator.app.uninstall`: what `helm uninstall` runs first (the chart's
pre-delete hook), while the operator still runs.

Helm deletes a release's objects all at once. The chart's SyncSchedules carry the
operator's finalizer (it records each deletion in the mirror), so deleted together with
the Deployment they would wait forever for an operator that is gone, and
`helm uninstall --wait` with them. The webhook configurations are kopf's, not Helm's
(registered by the operator at start, kept when a replica exits so the other still
serves), so Helm would leave them behind, pointing at a Service that no longer exists,
and a failurePolicy Fail webhook would then refuse every SyncSchedule change in the
cluster. So this hook deletes the release's SyncSchedules and waits until the operator
has let them go, then deletes the webhook configurations. SyncJobs and their history
stay: they are the users' work, and the CRDs stay with them.
"""

from __future__ import annotations

import asyncio
import sys
import time

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from sync_operator.api.common import SYNCSCHEDULES
from sync_operator.kube import ApiError, KubeClient, load_connection
from sync_operator.kube.resources import Resource

WEBHOOK_CONFIGURATIONS = [
    Resource("admissionregistration.k8s.io", "v1", plural, namespaced=False)
    for plural in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations")]


class UninstallSettings(BaseSettings):
    """What the hook removes (SYNC_OPERATOR_* variables, set by the chart)."""

    model_config = SettingsConfigDict(env_prefix="SYNC_OPERATOR_")

    namespace: str | None = Field(default=None, description="Where the schedules are "
                                  "(the chart's work namespace); None: every namespace.")
    schedule_selector: str = Field(description="Label selector of the release's schedules.")
    webhook_configuration_name: str | None = Field(default=None)
    timeout_seconds: float = Field(default=120.0, gt=0)


async def uninstall(client: KubeClient, settings: UninstallSettings) -> list[str]:
    """Delete the schedules, wait for them to go, delete the webhook configurations;
    the names of schedules still there at the timeout (empty: all went)."""
    listing = await client.list(SYNCSCHEDULES, settings.namespace,
                                label_selector=settings.schedule_selector)
    schedules = [(s["metadata"]["namespace"], s["metadata"]["name"])
                 for s in listing["items"]]
    for namespace, name in schedules:
        try:
            await client.delete(SYNCSCHEDULES, name, namespace)
        except ApiError as err:
            if not err.not_found:
                raise
    deadline = time.monotonic() + settings.timeout_seconds
    left = schedules
    while left and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        left = [(ns, n) for ns, n in left
                if await client.get_or_none(SYNCSCHEDULES, n, ns) is not None]
    if left:
        return [f"{ns}/{n}" for ns, n in left]
    if settings.webhook_configuration_name:
        for res in WEBHOOK_CONFIGURATIONS:
            try:
                await client.delete(res, settings.webhook_configuration_name)
            except ApiError as err:
                if not err.not_found:
                    raise
    return []


async def amain() -> int:
    try:
        settings = UninstallSettings()
    except ValidationError as err:
        print(f"sync-operator uninstall: invalid settings (SYNC_OPERATOR_* variables):\n{err}",
              file=sys.stderr)
        return 2
    async with KubeClient(load_connection()) as client:
        left = await uninstall(client, settings)
    if left:
        print(f"sync-operator uninstall: schedules still there after "
              f"{settings.timeout_seconds:.0f} s (is the operator running?): "
              f"{', '.join(left)}", file=sys.stderr)
        return 1
    print("sync-operator uninstall: schedules and webhook configurations removed")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(amain()))
