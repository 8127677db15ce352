"""Which cluster and namespace a command talks to, from kubectl's global flags.

Precedence as kubectl: ``--kubeconfig``, then ``$KUBECONFIG`` (a list is merged, as kubectl
merges it), then in-cluster, then ``~/.kube/config``; ``--context`` picks a context; ``-n``
overrides the context's namespace.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sync_operator.kube import Connection, load_connection
from sync_operator.kube.config import connection_from_kubeconfig
from sync_operator.kube.config import kubeconfig_paths as config_paths


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


def kubeconfig_paths(flag: str | None) -> list[Path]:
    """The kubeconfig files to read (merged), or [] for in-cluster / the default file."""
    if flag:
        return [Path(flag)]
    return config_paths(os.environ.get("KUBECONFIG", ""))


def connect(kubeconfig: str | None = None, context: str | None = None,
            namespace: str | None = None, all_namespaces: bool = False) -> Target:
    paths = kubeconfig_paths(kubeconfig)
    path = ":".join(str(p) for p in paths)
    try:
        if not paths and context is None:
            connection = load_connection()
        else:
            connection = connection_from_kubeconfig(
                paths or [Path.home() / ".kube" / "config"], context)
    except FileNotFoundError as err:
        raise ConfigError(f"kubeconfig not found: {err.filename}") from None
    except ValueError as err:  # names the file and the missing context itself
        raise ConfigError(str(err)) from None
    except (KeyError, StopIteration, TypeError, OSError) as err:
        raise ConfigError(f"cannot load kubeconfig {path or ''}: {err!r}") from None
    return Target(connection, namespace or connection.namespace, all_namespaces)
