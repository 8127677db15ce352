"""Kubernetes machinery with no business logic: the asyncio API client and kubeconfig
reader, typed bodies, resources, patches, metav1 conditions and timestamps, the object
key, Events, the keyed work queue and the Prometheus counters."""

from sync_operator.kube.client import ApiError, KubeClient
from sync_operator.kube.config import Connection, load_connection
from sync_operator.kube.resources import Resource

__all__ = ["ApiError", "Connection", "KubeClient", "Resource", "load_connection"]
