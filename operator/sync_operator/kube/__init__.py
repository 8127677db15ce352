"""A small, typed asyncio client for the Kubernetes API (the only one the project uses)."""

from sync_operator.kube.client import ApiError, KubeClient
from sync_operator.kube.config import Connection, load_connection
from sync_operator.kube.resources import Resource

__all__ = ["ApiError", "Connection", "KubeClient", "Resource", "load_connection"]
