"""Console settings, from environment variables (SYNC_CONSOLE_*) or the chart's values."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    """What the console server can be told; defaults suit one replica behind a Service."""

    model_config = SettingsConfigDict(env_prefix="SYNC_CONSOLE_", frozen=True)

    listen_addr: str = Field(default="0.0.0.0", description="Address the server binds.")
    port: int = Field(default=8090, ge=1, le=65535)
    namespace: str | None = Field(
        default=None, description="Show only this namespace; unset: all namespaces.")
    database_url: str | None = Field(
        default=None, description="The mirror's PostgreSQL (history, audit, analytics).")
    token_cache_seconds: float = Field(
        default=60.0, ge=0, description="How long a TokenReview answer is reused.")
    access_cache_seconds: float = Field(
        default=10.0, ge=0, description="How long a SubjectAccessReview answer is reused.")
    recheck_seconds: float = Field(
        default=60.0, gt=0,
        description="A live stream re-checks its user's token and rights this often.")
    batch_seconds: float = Field(
        default=0.25, gt=0, description="Live changes are sent to browsers in batches.")
    heartbeat_seconds: float = Field(default=15.0, gt=0)
    cookie_secure: bool = Field(
        default=True, description="Send the session cookie over HTTPS only.")
    session_key: str | None = Field(
        default=None, repr=False,
        description="Fernet key shared by the replicas for `kubectl sync console` "
                    "handover codes; unset: each replica makes its own.")
