"""Operator settings, from environment variables (SYNC_OPERATOR_*) or the chart's values."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sync_operator.api.common import JobType
from sync_operator.syncjob.queue.plan import DEFAULT_GLOBAL_LIMIT, DEFAULT_TYPE_LIMITS

Controller = Literal["syncjobs", "schedules"]
CONTROLLERS: tuple[Controller, ...] = ("syncjobs", "schedules")


class OperatorSettings(BaseSettings):
    """Everything the operator can be told; defaults suit a small production install."""

    model_config = SettingsConfigDict(env_prefix="SYNC_OPERATOR_", frozen=True)

    namespace: str | None = Field(
        default=None, description="Watch only this namespace; unset watches all namespaces.")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0",
                           description="Redis for progress, control flags and checkpoints.")
    database_url: str | None = Field(
        default=None, description="PostgreSQL for the mirror; unset disables the mirror.")
    runner_database_url: str | None = Field(
        default=None, description="Database URL handed to the runner pods (app tables).")
    runner_image: str = Field(default="sync-runner:0.1.0",
                              description="Image of the sync runner pods.")
    runner_service_account: str | None = Field(default=None)
    runner_env: dict[str, str] = Field(
        default_factory=dict,
        description="Extra environment of runner pods, e.g. SYNC_SOURCE_URL (JSON object).")
    runner_env_from_secret: str | None = Field(
        default=None, description="A Secret whose keys become runner env (credentials).")
    runner_grace_seconds: int = Field(default=30, ge=1,
                                      description="terminationGracePeriodSeconds of runner pods.")
    global_limit: int = Field(default=DEFAULT_GLOBAL_LIMIT, ge=1,
                              description="Running jobs across all types.")
    type_limits: dict[JobType, int] = Field(
        default_factory=lambda: {JobType(t): n for t, n in DEFAULT_TYPE_LIMITS.items()},
        description="Per-type running limit unless a SyncSchedule sets maxConcurrency.")
    pause_grace_seconds: float = Field(
        default=60.0, gt=0,
        description="How long a running job may take to reach a checkpoint after a pause "
                    "request before its Job is suspended anyway (SIGTERM).")
    cancel_grace_seconds: float = Field(
        default=30.0, gt=0,
        description="How long a cooperative cancel may take before it is forced.")
    heartbeat_stale_seconds: float = Field(
        default=60.0, gt=0, description="A running job's runner silent this long is reported "
                                        "as not progressing (condition and Warning Event).")
    progress_interval_seconds: float = Field(
        default=1.0, gt=0, description="At most one progress status write per job per interval.")
    progress_writes_per_second: float = Field(
        default=20.0, gt=0, description="All jobs' progress writes together stay under this "
                                        "rate; each job's interval stretches to fit.")
    api_qps: float = Field(
        default=50.0, gt=0, description="Requests per second to the API server (client-side "
                                        "limiter, as client-go's QPS).")
    api_burst: int = Field(
        default=100, ge=1, description="Requests allowed at once above api_qps (client-go's "
                                       "burst).")
    admission_interval_seconds: float = Field(
        default=5.0, gt=0, description="Admission passes run on every change and at least this "
                                       "often.")
    relist_seconds: float = Field(
        default=300.0, gt=0, description="A full LIST refreshes the admission cache this "
                                         "often, in case the watch missed a deletion.")
    controllers: list[Controller] = Field(
        default_factory=lambda: list(CONTROLLERS),
        description="Which controllers run (both in production; one for focused tests).")
    workers: int = Field(default=16, ge=1, description="Concurrent reconciles (different jobs); "
                         "I/O-bound, so more than cores (4 drained 1,000 jobs at 220/min).")
    identity: str = Field(default="sync-operator",
                          description="Who system transitions are performed by (audit log).")
    leader_election: bool = Field(default=True)
    pod_name: str | None = Field(
        default=None, description="This replica's pod (downward API metadata.name): names it "
                                  "in the Lease where the host name does not (pods sharing "
                                  "one host); defaults to the host name.")
    lease_namespace: str = Field(default="default")
    lease_name: str = Field(default="sync-operator")
    lease_duration_seconds: float = Field(default=15.0, gt=0)
    lease_renew_deadline_seconds: float = Field(default=10.0, gt=0)
    lease_retry_period_seconds: float = Field(default=2.0, gt=0)
    migrate: bool = Field(
        default=False, description="Run the database migrations at start-up instead of "
                                   "refusing to start against an older schema.")
    webhook_enabled: bool = Field(default=False, description="Serve the admission webhooks.")
    webhook_persistent: bool = Field(
        default=False, description="Leave the webhooks registered when this replica exits "
                                   "(replicas sharing one configuration; the chart's "
                                   "pre-delete hook removes it). Off, kopf removes them on "
                                   "exit.")
    stamp_webhooks: bool = Field(
        default=True, description="Also stamp who did what in a webhook (with webhook_enabled): "
                                  "for clusters without MutatingAdmissionPolicy, where the "
                                  "API server cannot stamp; the chart turns it off where it "
                                  "installs the policies.")
    webhook_addr: str = Field(default="0.0.0.0", description="Where the webhook server listens.")
    webhook_port: int = Field(default=9443, ge=1, le=65535)
    webhook_host: str | None = Field(
        default=None, description="Host name the API server calls (the Service's DNS name); "
                                  "defaults to webhook_addr.")
    webhook_cert_file: str | None = Field(default=None, description="Serving certificate.")
    webhook_key_file: str | None = Field(default=None, description="Its private key.")
    webhook_ca_file: str | None = Field(default=None, description="CA bundle for the "
                                        "webhook configurations' caBundle.")
    webhook_service_name: str | None = Field(
        default=None, description="Register the webhooks by this Service (resolved by the API "
                                  "server) instead of by URL.")
    webhook_service_namespace: str | None = Field(default=None)
    webhook_service_port: int = Field(default=443, ge=1, le=65535)
    webhook_configuration_name: str = Field(
        default="sync.jobcontrol.io",
        description="Name of the Validating/MutatingWebhookConfiguration kopf manages.")
    listen_addr: str = Field(
        default="0.0.0.0", description="Where the metrics and health servers listen (the "
                                       "pod's IP where pods share a network, as in the "
                                       "process kubelet).")
    health_port: int = Field(default=8081, ge=0, le=65535,
                             description="kopf's liveness endpoint /healthz; 0 disables it.")
    metrics_port: int = Field(default=8080, ge=0, description="0 disables the metrics server.")

    @model_validator(mode="after")
    def _lease_timing_is_consistent(self) -> OperatorSettings:
        if not (self.lease_duration_seconds > self.lease_renew_deadline_seconds
                > self.lease_retry_period_seconds):
            raise ValueError(
                "lease timings must satisfy lease_duration_seconds > "
                "lease_renew_deadline_seconds > lease_retry_period_seconds (got "
                f"{self.lease_duration_seconds}, {self.lease_renew_deadline_seconds}, "
                f"{self.lease_retry_period_seconds})")
        return self
