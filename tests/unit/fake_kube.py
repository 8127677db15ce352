"""An in-memory API server for unit tests of the reconcilers and the admitter.

It implements the part of `sync_operator.kube.KubeClient` they call (get, get_or_none,
list, create, patch, delete) with the API server's semantics that matter to them:

- create answers 409 AlreadyExists for a taken name and sets uid, resourceVersion,
  generation and creationTimestamp;
- a merge patch is applied as RFC 7386 (recursively; None removes a key), a JSON patch
  supports add/replace/remove/test (a failed test answers 422);
- a patch of the main resource ignores status, a patch of the status subresource
  ignores everything else; metadata.resourceVersion in a patch is a precondition
  (409 Conflict when it differs); generation grows when the spec changes;
- delete answers 404 for a missing object; an object with finalizers gets a
  deletionTimestamp and goes once a patch removes its last finalizer.

Every change of a stored object (a call, or a test's own `seed`, `touch`, `set_status`,
`remove`) is delivered at once to the functions in `watchers`, as a watch without lag
would deliver it: (event type, resource, object).

Every call is recorded in order (`calls`), before it is carried out, so a test can
assert what was written, in which order, or that nothing was. `before` runs a hook
just before a matching call, to simulate another writer racing the code under test.
Errors are `sync_operator.kube.ApiError` with the status, reason and Status body the
real client raises.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sync_operator.kube import ApiError, KubeClient, Resource
from sync_operator.kube.resources import EVENTS
from sync_operator.kube.timestamps import format_time

Obj = dict[str, Any]
WRITES = frozenset({"create", "patch", "delete"})
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Call:
    """One request, as the client made it."""

    verb: str
    resource: Resource
    namespace: str | None
    name: str | None = None
    body: Any = None
    subresource: str | None = None
    patch_type: str | None = None
    label_selector: str | None = None
    propagation: str | None = None

    def is_write(self) -> bool:
        return self.verb in WRITES


@dataclass
class _Hook:
    verb: str
    resource: Resource
    subresource: str | None
    action: Callable[[], None]
    once: bool


def _kind_name(res: Resource) -> str:
    return f"{res.plural}.{res.group}" if res.group else res.plural


def _status_error(code: int, reason: str, message: str, res: Resource,
                  name: str | None) -> ApiError:
    """The error KubeClient.request raises for a metav1.Status answer."""
    body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                 "message": message, "reason": reason,
                 "details": {"name": name, "group": res.group, "kind": res.plural},
                 "code": code}
    return ApiError(code, reason, message, body)


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch of `patch` onto `target` (a new value)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out: Obj = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise ValueError(f"bad JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _json_patch(obj: Obj, ops: list[Obj]) -> Obj:
    """RFC 6902 add, replace, remove and test on dict members (all this project uses)."""
    out = copy.deepcopy(obj)
    for op in ops:
        *parents, last = _pointer(str(op["path"]))
        node: Any = out
        for part in parents:
            if not isinstance(node, dict) or part not in node:
                raise ValueError(f"path {op['path']!r} does not exist")
            node = node[part]
        if not isinstance(node, dict):
            raise ValueError(f"path {op['path']!r} is not in an object")
        kind = op["op"]
        if kind == "test":
            if node.get(last) != op.get("value"):
                raise ValueError(f"testing value {op['path']} failed")
        elif kind in ("add", "replace"):
            if kind == "replace" and last not in node:
                raise ValueError(f"replace of missing {op['path']!r}")
            node[last] = copy.deepcopy(op["value"])
        elif kind == "remove":
            if last not in node:
                raise ValueError(f"remove of missing {op['path']!r}")
            del node[last]
        else:
            raise ValueError(f"unsupported JSON patch op {kind!r}")
    return out


def _matches(labels: dict[str, str], selector: str | None) -> bool:
    if not selector:
        return True
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip():
            return False
    return True


class FakeKube:
    """Objects by (resource, namespace, name); see the module docstring."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._objects: dict[tuple[Resource, str | None, str], Obj] = {}
        self._rv = itertools.count(1000)
        self._clock = clock or (lambda: START)
        self.calls: list[Call] = []
        self._hooks: list[_Hook] = []
        self.watchers: list[Callable[[str, Resource, Obj], None]] = []

    @property
    def client(self) -> KubeClient:
        """This fake, typed as what the code under test expects."""
        return cast(KubeClient, self)

    # -- test set-up and inspection -------------------------------------------------

    def seed(self, res: Resource, obj: Obj) -> Obj:
        """Store an object as if it existed already (not recorded as a call); missing
        uid, resourceVersion, generation and creationTimestamp are filled in."""
        stored = copy.deepcopy(obj)
        meta = stored.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", format_time(self._clock()))
        meta["resourceVersion"] = self._next_rv()
        self._objects[(res, meta.get("namespace"), meta["name"])] = stored
        self._notify("ADDED", res, stored)
        return copy.deepcopy(stored)

    def stored(self, res: Resource, name: str, namespace: str | None) -> Obj | None:
        """What the server holds now (a copy), or None."""
        obj = self._objects.get((res, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def names(self, res: Resource, namespace: str | None) -> list[str]:
        return sorted(n for (r, ns, n) in self._objects if r == res and ns == namespace)

    def touch(self, res: Resource, name: str, namespace: str | None) -> None:
        """Another writer changed the object: only its resourceVersion moves."""
        self._objects[(res, namespace, name)]["metadata"]["resourceVersion"] = self._next_rv()
        self._notify("MODIFIED", res, self._objects[(res, namespace, name)])

    def set_status(self, res: Resource, name: str, namespace: str | None, status: Obj) -> None:
        """Another writer merged `status` into the object's status (not recorded)."""
        obj = self._objects[(res, namespace, name)]
        obj["status"] = merge(obj.get("status") or {}, status)
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._notify("MODIFIED", res, obj)

    def remove(self, res: Resource, name: str, namespace: str | None) -> None:
        """The object is gone (not recorded)."""
        obj = self._objects.pop((res, namespace, name))
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._notify("DELETED", res, obj)

    def before(self, verb: str, res: Resource, action: Callable[[], None], *,
               subresource: str | None = None, once: bool = True) -> None:
        """Run `action` just before the next matching call (every one, if not `once`)."""
        self._hooks.append(_Hook(verb, res, subresource, action, once))

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.is_write()]

    def calls_of(self, verb: str, res: Resource, *,
                 subresource: str | None = None) -> list[Call]:
        return [c for c in self.calls
                if c.verb == verb and c.resource == res and c.subresource == subresource]

    def events(self, namespace: str, involved: str | None = None) -> list[Obj]:
        """Events about `involved` (by name), oldest first."""
        found = [o for (r, ns, _), o in self._objects.items() if r == EVENTS and ns == namespace
                 and (involved is None or o["involvedObject"]["name"] == involved)]
        return [copy.deepcopy(e) for e in found]  # insertion order: Events are never patched

    def event_reasons(self, namespace: str, involved: str | None = None) -> list[str]:
        return [str(e["reason"]) for e in self.events(namespace, involved)]

    # -- the KubeClient subset ------------------------------------------------------

    async def get(self, res: Resource, name: str, namespace: str | None = None,
                  subresource: str | None = None) -> Obj:
        self._record(Call("get", res, namespace, name, subresource=subresource))
        return copy.deepcopy(self._existing(res, name, namespace))

    async def get_or_none(self, res: Resource, name: str,
                          namespace: str | None = None) -> Obj | None:
        try:
            return await self.get(res, name, namespace)
        except ApiError as err:
            if err.not_found:
                return None
            raise

    async def list(self, res: Resource, namespace: str | None = None, *,
                   label_selector: str | None = None,
                   field_selector: str | None = None) -> Obj:
        if field_selector:
            raise NotImplementedError("FakeKube.list has no field selectors")
        self._record(Call("list", res, namespace, label_selector=label_selector))
        items = [copy.deepcopy(o) for (r, ns, _), o in sorted(
                     self._objects.items(), key=lambda kv: (kv[0][1] or "", kv[0][2]))
                 if r == res and (namespace is None or ns == namespace)
                 and _matches(o["metadata"].get("labels") or {}, label_selector)]
        return {"kind": "List", "apiVersion": res.api_version,
                "metadata": {"resourceVersion": self._current_rv()}, "items": items}

    async def create(self, res: Resource, obj: Obj, namespace: str | None = None,
                     subresource: str | None = None, name: str | None = None) -> Obj:
        self._record(Call("create", res, namespace, obj["metadata"].get("name"),
                          body=copy.deepcopy(obj), subresource=subresource))
        stored = copy.deepcopy(obj)
        meta = stored.setdefault("metadata", {})
        key = (res, namespace, meta["name"])
        if key in self._objects:
            raise _status_error(409, "AlreadyExists",
                                f'{_kind_name(res)} "{meta["name"]}" already exists',
                                res, meta["name"])
        if namespace is not None:
            meta["namespace"] = namespace
        meta.update(uid=str(uuid.uuid4()), generation=1,
                    creationTimestamp=format_time(self._clock()),
                    resourceVersion=self._next_rv())
        meta.pop("deletionTimestamp", None)
        self._objects[key] = stored
        self._notify("ADDED", res, stored)
        return copy.deepcopy(stored)

    async def patch(self, res: Resource, name: str, patch: Any, namespace: str | None = None,
                    *, subresource: str | None = None, patch_type: str = "merge",
                    field_manager: str | None = None, force: bool = False) -> Obj:
        self._record(Call("patch", res, namespace, name, body=copy.deepcopy(patch),
                          subresource=subresource, patch_type=patch_type))
        current = self._existing(res, name, namespace)
        if patch_type == "merge":
            if not isinstance(patch, dict):
                raise _status_error(400, "BadRequest", "a merge patch must be an object",
                                    res, name)
            wanted = ((patch.get("metadata") or {}).get("resourceVersion"))
            if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
                raise _status_error(
                    409, "Conflict",
                    f'Operation cannot be fulfilled on {_kind_name(res)} "{name}": the object '
                    "has been modified; please apply your changes to the latest version and "
                    "try again", res, name)
            patched = merge(current, patch)
        elif patch_type == "json":
            try:
                patched = _json_patch(current, list(patch))
            except (ValueError, KeyError) as err:
                raise _status_error(422, "Invalid", str(err), res, name) from err
        else:
            raise NotImplementedError(f"FakeKube.patch has no {patch_type} patches")
        result = self._scoped(current, patched, subresource)
        if result.get("spec") != current.get("spec"):
            result["metadata"]["generation"] = int(current["metadata"]["generation"]) + 1
        result["metadata"]["resourceVersion"] = self._next_rv()
        meta = result["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            del self._objects[(res, namespace, name)]
            self._notify("DELETED", res, result)
        else:
            self._objects[(res, namespace, name)] = result
            self._notify("MODIFIED", res, result)
        return copy.deepcopy(result)

    async def delete(self, res: Resource, name: str, namespace: str | None = None, *,
                     grace_period_seconds: int | None = None,
                     propagation: str | None = None,
                     preconditions: Obj | None = None,
                     missing_ok: bool = True) -> Obj | None:
        self._record(Call("delete", res, namespace, name, propagation=propagation))
        key = (res, namespace, name)
        if key not in self._objects:
            if missing_ok:
                return None
            raise self._not_found(res, name)
        obj = self._objects[key]
        if obj["metadata"].get("finalizers"):
            obj["metadata"].setdefault("deletionTimestamp", format_time(self._clock()))
            obj["metadata"]["resourceVersion"] = self._next_rv()
            self._notify("MODIFIED", res, obj)
            return copy.deepcopy(obj)
        del self._objects[key]
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._notify("DELETED", res, obj)
        return {"kind": "Status", "apiVersion": "v1", "status": "Success"}

    # -- internals --------------------------------------------------------------------

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        for hook in list(self._hooks):
            if hook.verb == call.verb and hook.resource == call.resource \
                    and hook.subresource == call.subresource:
                if hook.once:
                    self._hooks.remove(hook)
                hook.action()

    def _notify(self, event: str, res: Resource, obj: Obj) -> None:
        for watcher in list(self.watchers):
            watcher(event, res, copy.deepcopy(obj))

    def _next_rv(self) -> str:
        return str(next(self._rv))

    def _current_rv(self) -> str:
        rvs = [int(o["metadata"]["resourceVersion"]) for o in self._objects.values()]
        return str(max(rvs, default=0))

    def _not_found(self, res: Resource, name: str) -> ApiError:
        return _status_error(404, "NotFound", f'{_kind_name(res)} "{name}" not found', res,
                             name)

    def _existing(self, res: Resource, name: str, namespace: str | None) -> Obj:
        obj = self._objects.get((res, namespace, name))
        if obj is None:
            raise self._not_found(res, name)
        return obj

    @staticmethod
    def _scoped(current: Obj, patched: Obj, subresource: str | None) -> Obj:
        """The status subresource changes only status; the main resource all but status.
        (uid, creationTimestamp and namespace never change.)"""
        if subresource == "status":
            result = copy.deepcopy(current)
            if "status" in patched:
                result["status"] = patched["status"]
            else:
                result.pop("status", None)
            return result
        if subresource is not None:
            raise NotImplementedError(f"FakeKube.patch has no {subresource} subresource")
        result = copy.deepcopy(patched)
        if "status" in current:
            result["status"] = copy.deepcopy(current["status"])
        else:
            result.pop("status", None)
        for fixed in ("uid", "creationTimestamp", "namespace", "name"):
            if fixed in current["metadata"]:
                result["metadata"][fixed] = current["metadata"][fixed]
        return result


@dataclass
class RecordingMirror:
    """The PostgreSQL mirror's side of a reconciler, recorded (the Mirror protocol)."""

    kube: FakeKube
    resource: Resource
    notified: list[Obj] = field(default_factory=list)
    deletions: list[tuple[str, str]] = field(default_factory=list)
    # Whether the object still existed on the API server when its deletion was recorded.
    present_at_deletion: list[bool] = field(default_factory=list)

    def notify(self, body: Mapping[str, Any]) -> None:
        self.notified.append(dict(body))

    async def record_deletion(self, body: Mapping[str, Any], performed_by: str) -> None:
        meta = body["metadata"]
        self.deletions.append((meta["uid"], performed_by))
        self.present_at_deletion.append(
            self.kube.stored(self.resource, meta["name"], meta["namespace"]) is not None)
