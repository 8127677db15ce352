"""Typed shapes of the objects the API server sends, as kopf types its raw bodies.

They type what the core reads off an object (metadata above all) without copying it
into models: `spec` is validated into the pydantic models of `api/` where it is used,
and `status` stays a document the controllers rewrite as a whole. Every key is
optional (`total=False`), as it is on the wire.
"""

from __future__ import annotations

from typing import Any, TypedDict


class OwnerReference(TypedDict, total=False):
    apiVersion: str
    kind: str
    name: str
    uid: str
    controller: bool
    blockOwnerDeletion: bool


class ObjectMeta(TypedDict, total=False):
    name: str
    generateName: str
    namespace: str
    uid: str
    resourceVersion: str
    generation: int
    creationTimestamp: str
    deletionTimestamp: str
    labels: dict[str, str]
    annotations: dict[str, str]
    finalizers: list[str]
    ownerReferences: list[OwnerReference]


class RawBody(TypedDict, total=False):
    """One object: a SyncJob, a SyncSchedule, a batch Job, a Lease, an Event, ..."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: dict[str, Any]
    status: dict[str, Any]


class ListMeta(TypedDict, total=False):
    resourceVersion: str
    # Set when the server cut the list short (pagination); pass it back as `continue`.
    # ("continue" is a Python keyword, so it is read with .get("continue").)


class ObjectList(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ListMeta
    items: list[RawBody]


# A status (or spec) document as a controller builds it: rewritten as a whole, compared
# with the stored one, and sent as a merge patch of the difference.
Document = dict[str, Any]
