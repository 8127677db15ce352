"""Database URL spelling per driver.

Alembic runs synchronously (psycopg) and the operator runs on asyncio
(asyncpg), yet operators configure one URL. These helpers accept any
PostgreSQL spelling and return the one each side needs.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url

_POSTGRES_SCHEMES = {"postgres", "postgresql"}


def _driver_url(url: str | URL, driver: str) -> URL:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in _POSTGRES_SCHEMES:
        raise ValueError(f"not a PostgreSQL URL: {parsed.render_as_string(hide_password=True)}")
    return parsed.set(drivername=f"postgresql+{driver}")


def sync_url(url: str | URL) -> URL:
    """The psycopg (v3) form, for Alembic and other blocking callers."""
    return _driver_url(url, "psycopg")


def async_url(url: str | URL) -> URL:
    """The asyncpg form, for the operator's event loop."""
    return _driver_url(url, "asyncpg")


def safe(url: str | URL) -> str:
    """The URL with its password masked, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)
