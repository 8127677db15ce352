"""Which cluster and namespace a command talks to, from kubectl's global flags.

Precedence as kubectl: ``--kubeconfig``, then ``$KUBECONFIG`` (the first existing file of
a list), then in-cluster, then ``~/.kube/config``; ``--context`` picks a context; ``-n``
overrides the context's namespace.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sync_operator.kube import Connection, load_connection
from sync_operator.kube.config import connection_from_kubeconfig


class ConfigError(Exception):
    """No usable kubeconfig/context: reported like an API error (exit 1), as kubectl does."""


@dataclass(frozen=True)
class Target:
    """The connection plus the namespace scope of one command."""

    connection: Connection
    namespace: str
    all_namespaces: bool = False

    @property
    def scope(self) -> str | None:
        """The namespace for list and watch paths; None means every namespace."""
        return None if self.all_namespaces else self.namespace


def kubeconfig_path(flag: str | None) -> Path | None:
    """The kubeconfig file to read, or None for in-cluster / the default file."""
    if flag:
        return Path(flag)
    listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    existing = [Path(p) for p in listed if Path(p).exists()]
    if existing:
        return existing[0]
    return Path(listed[0]) if listed else None


def connect(kubeconfig: str | None = None, context: str | None = None,
            namespace: str | None = None, all_namespaces: bool = False) -> Target:
    path = kubeconfig_path(kubeconfig)
    try:
        if path is None and context is None:
            connection = load_connection()
        else:
            path = path or Path.home() / ".kube" / "config"
            connection = connection_from_kubeconfig(path, context)
    except FileNotFoundError as err:
        raise ConfigError(f"kubeconfig not found: {err.filename}") from None
    except ValueError as err:  # names the file and the missing context itself
        raise ConfigError(str(err)) from None
    except (KeyError, StopIteration, TypeError, OSError) as err:
        raise ConfigError(f"cannot load kubeconfig {path or ''}: {err!r}") from None
    return Target(connection, namespace or connection.namespace, all_namespaces)
