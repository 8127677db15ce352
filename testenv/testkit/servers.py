"""PostgreSQL and Redis servers from Debian's packages, each on a free loopback port."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from testkit.ports import free_port, port_open, wait_until
from testkit.process import ManagedProcess


def _pg_bin(name: str) -> str:
    """initdb and postgres live under /usr/lib/postgresql/N/bin on Debian."""
    found = shutil.which(name)
    if found:
        return found
    root = Path("/usr/lib/postgresql")
    for version in sorted(root.glob("*"), reverse=True) if root.exists() else []:
        candidate = version / "bin" / name
        if candidate.exists():
            return str(candidate)
    raise FileNotFoundError(f"{name} not found: apt-get install postgresql")


def _as_postgres_user() -> list[str]:
    """postgres refuses to run as root; drop to the 'postgres' user when we are root."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster in `root`, trusting local connections."""

    root: Path
    port: int = field(default_factory=free_port)
    user: str = "sync"
    database: str = "sync"
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def async_url(self) -> str:
        return self.url.replace("postgresql://", "postgresql+asyncpg://", 1)

    def sync_url(self) -> str:
        return self.url.replace("postgresql://", "postgresql+psycopg://", 1)

    def start(self) -> None:
        data = self.root / "data"
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # postgres runs as its own user: it must be able to reach its directory,
            # which may sit under root-only temporary directories.
            for parent in self.root.parents:
                if parent == Path("/"):
                    break
                parent.chmod(parent.stat().st_mode | 0o001)
            shutil.chown(self.root, "postgres", "postgres")
        if not data.exists():
            subprocess.run(
                [*_as_postgres_user(), _pg_bin("initdb"), "-D", str(data), "-U", self.user,
                 "--auth=trust", "-E", "UTF8", "--no-sync"],
                check=True, capture_output=True,
            )
        self.process = ManagedProcess(
            "postgres",
            [*_as_postgres_user(), _pg_bin("postgres"), "-D", str(data), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
             "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=200"],
            self.root / "postgres.log",
        )
        self.process.start()
        wait_until(self._accepting, 30, "postgres")
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d",
             "postgres", "-tAc", f"CREATE DATABASE {self.database}"],
            check=False, capture_output=True,
        )

    def _accepting(self) -> bool:
        assert self.process is not None
        self.process.check_alive()
        return subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d",
             "postgres", "-tAc", "select 1"], capture_output=True,
        ).returncode == 0

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class RedisServer:
    """A redis-server with no persistence, on a free port."""

    root: Path
    port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = ManagedProcess(
            "redis",
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root), "--protected-mode", "no"],
            self.root / "redis.log",
        )
        self.process.start()
        wait_until(lambda: self._up(), 15, "redis")

    def _up(self) -> bool:
        assert self.process is not None
        self.process.check_alive()
        return port_open(self.port)

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def restart(self) -> None:
        self.stop()
        self.start()
