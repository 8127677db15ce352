"""A pod's volumes, made as the kubelet makes them, under the pod's own directory.

Secret, ConfigMap, emptyDir, downwardAPI and projected volumes (with serviceAccountToken
sources from the TokenRequest API, bound to the pod, refreshed at 80 % of their life
as the kubelet does) become directories under `<state>/pods/<uid>/volumes/<name>`;
`mounts()` says where each container sees them (testkit.containers bind-mounts them
at those paths in a mount namespace of the container's own), so code reads
/var/run/secrets/kubernetes.io/serviceaccount exactly as in a real cluster.

Files are written with an atomic rename, so a token refresh never shows a reader half
a token, and handed to the pod's user (runAsUser, fsGroup) the way the kubelet's
ownership management does, so a non-root container can read its Secret.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sync_operator.kube import ApiError, KubeClient
from sync_operator.kube.resources import CONFIGMAPS, SECRETS, SERVICEACCOUNTS

log = logging.getLogger("process-kubelet.volumes")
Obj = dict[str, Any]
DEFAULT_TOKEN_SECONDS = 3607  # what the ServiceAccount admission plugin projects
REFRESH_AT = 0.8  # of a token's life, as the kubelet's token manager


class VolumeNotReadyError(Exception):
    """A volume's source is missing (a Secret or ConfigMap not created yet): the pod
    waits in ContainerCreating, as with a real kubelet, and is tried again."""


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool


def _fs_group(pod: Obj) -> int | None:
    """The pod's fsGroup: the group the kubelet gives its volumes' files (readable)."""
    group = (pod["spec"].get("securityContext") or {}).get("fsGroup")
    return None if group is None else int(group)


def _field(pod: Obj, path: str) -> str:
    meta = pod["metadata"]
    simple = {"metadata.name": meta.get("name", ""),
              "metadata.namespace": meta.get("namespace", ""),
              "metadata.uid": meta.get("uid", "")}
    if path in simple:
        return str(simple[path])
    for section in ("labels", "annotations"):
        values = meta.get(section) or {}
        if path == f"metadata.{section}":
            return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
        prefix = f"metadata.{section}['"
        if path.startswith(prefix) and path.endswith("']"):
            return str(values.get(path[len(prefix):-2], ""))
    return ""


class PodVolumes:
    """Makes and refreshes one pod's volumes; `mounts(container)` for each container."""

    def __init__(self, client: KubeClient, pod: Obj, root: Path) -> None:
        self.client = client
        self.pod = pod
        self.root = root
        self.fs_group = _fs_group(pod)
        # (volume, file path, source) of each projected token, with when to renew it.
        self._tokens: list[tuple[Path, Obj, float]] = []

    @property
    def namespace(self) -> str:
        return str(self.pod["metadata"]["namespace"])

    def volume_dir(self, name: str) -> Path:
        return self.root / "volumes" / name

    async def prepare(self) -> None:
        """Make every volume of the pod; VolumeNotReadyError if a source does not exist yet."""
        self._tokens = []  # (again, on a retry: each try requests its tokens anew)
        for volume in self.pod["spec"].get("volumes") or []:
            target = self.volume_dir(volume["name"])
            target.mkdir(parents=True, exist_ok=True)
            await self._fill(volume, target)
        self._own(self.root / "volumes")

    async def _fill(self, volume: Obj, target: Path) -> None:
        if "emptyDir" in volume:
            return
        if "secret" in volume:
            src = volume["secret"]
            data = await self._source(SECRETS, src.get("secretName", ""),
                                      bool(src.get("optional")), b64=True)
            self._write_items(target, data, src.get("items"), src.get("defaultMode", 0o644))
        elif "configMap" in volume:
            src = volume["configMap"]
            data = await self._source(CONFIGMAPS, src.get("name", ""),
                                      bool(src.get("optional")), b64=False)
            self._write_items(target, data, src.get("items"), src.get("defaultMode", 0o644))
        elif "downwardAPI" in volume:
            src = volume["downwardAPI"]
            for item in src.get("items") or []:
                self._write(target / item["path"],
                            _field(self.pod, (item.get("fieldRef") or {}).get("fieldPath", ""))
                            .encode(), item.get("mode", src.get("defaultMode", 0o644)))
        elif "projected" in volume:
            await self._fill_projected(volume["projected"], target)
        else:
            kinds = sorted(k for k in volume if k != "name")
            raise VolumeNotReadyError(f"volume {volume['name']}: {kinds} not supported by the "
                                 "process kubelet")

    async def _fill_projected(self, projected: Obj, target: Path) -> None:
        mode = projected.get("defaultMode", 0o644)
        for source in projected.get("sources") or []:
            if "serviceAccountToken" in source:
                token = source["serviceAccountToken"]
                path = target / token.get("path", "token")
                renew_at = await self._write_token(path, token, mode)
                self._tokens.append((path, token, renew_at))
            elif "configMap" in source:
                src = source["configMap"]
                data = await self._source(CONFIGMAPS, src.get("name", ""),
                                          bool(src.get("optional")), b64=False)
                self._write_items(target, data, src.get("items"), mode)
            elif "secret" in source:
                src = source["secret"]
                data = await self._source(SECRETS, src.get("name", ""),
                                          bool(src.get("optional")), b64=True)
                self._write_items(target, data, src.get("items"), mode)
            elif "downwardAPI" in source:
                for item in source["downwardAPI"].get("items") or []:
                    self._write(target / item["path"], _field(
                        self.pod, (item.get("fieldRef") or {}).get("fieldPath", "")).encode(),
                        item.get("mode", mode))

    async def _source(self, res: Any, name: str, optional: bool, *, b64: bool
                      ) -> dict[str, bytes]:
        try:
            obj = await self.client.get(res, name, self.namespace)
        except ApiError as err:
            if err.not_found and optional:
                return {}
            if err.not_found:
                raise VolumeNotReadyError(f"{res.plural[:-1]} {name!r} not found") from None
            raise
        data: dict[str, bytes] = {}
        for key, value in (obj.get("data") or {}).items():  # type: ignore[attr-defined]
            data[key] = base64.b64decode(value) if b64 else str(value).encode()
        for key, value in (obj.get("binaryData") or {}).items():  # type: ignore[attr-defined]
            data[key] = base64.b64decode(value)
        return data

    def _write_items(self, target: Path, data: dict[str, bytes], items: list[Obj] | None,
                     mode: int) -> None:
        if items:
            for item in items:
                if item["key"] in data:
                    self._write(target / item["path"], data[item["key"]],
                                item.get("mode", mode))
            return
        for key, value in data.items():
            self._write(target / key, value, mode)

    async def _write_token(self, path: Path, source: Obj, mode: int) -> float:
        seconds = int(source.get("expirationSeconds", DEFAULT_TOKEN_SECONDS))
        meta = self.pod["metadata"]
        spec: Obj = {"expirationSeconds": seconds,
                     "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                                        "name": meta["name"], "uid": meta["uid"]}}
        if source.get("audience"):
            spec["audiences"] = [source["audience"]]
        account = self.pod["spec"].get("serviceAccountName") or "default"
        answer = await self.client.create(SERVICEACCOUNTS, {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
            self.namespace, "token", name=account)
        status = answer.get("status") or {}
        self._write(path, str(status["token"]).encode(), mode)
        return time.monotonic() + REFRESH_AT * seconds

    async def refresh_tokens(self) -> None:
        """Renew each projected token at 80 % of its life, for as long as the pod runs."""
        while self._tokens:
            now = time.monotonic()
            soonest = min(at for _, _, at in self._tokens)
            if soonest > now:
                await asyncio.sleep(soonest - now)
                continue
            renewed = []
            for path, source, at in self._tokens:
                if at <= now:
                    try:
                        at = await self._write_token(path, source, 0o644)
                    except (ApiError, OSError) as err:
                        log.warning("token refresh for %s failed: %s", path, err)
                        at = now + 5
                renewed.append((path, source, at))
            self._tokens = renewed

    def _write(self, path: Path, data: bytes, mode: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        if self.fs_group is not None:
            os.chmod(tmp, mode | 0o040)
            with contextlib.suppress(PermissionError):
                os.chown(tmp, -1, self.fs_group)
        else:
            os.chmod(tmp, mode)
        os.replace(tmp, path)  # atomic: a reader sees the old file or the new one

    def _own(self, top: Path) -> None:
        """Volume directories the pod's user can enter (emptyDir writable by fsGroup)."""
        if not top.exists():
            return
        for directory in [top, *[p for p in top.rglob("*") if p.is_dir()]]:
            if self.fs_group is not None:
                with contextlib.suppress(PermissionError):
                    os.chown(directory, -1, self.fs_group)
                os.chmod(directory, 0o2775)
            else:
                os.chmod(directory, 0o777 if directory.parent.name == "volumes"
                         and self._is_empty_dir(directory.name) else 0o755)

    def _is_empty_dir(self, name: str) -> bool:
        return any(v["name"] == name and "emptyDir" in v
                   for v in self.pod["spec"].get("volumes") or [])

    def mounts(self, container: Obj) -> list[Mount]:
        """Where this container sees the pod's volumes (volumeMounts, subPath too)."""
        found = []
        for mount in container.get("volumeMounts") or []:
            source = self.volume_dir(mount["name"])
            if mount.get("subPath"):
                source = source / mount["subPath"]
            found.append(Mount(source, mount["mountPath"], bool(mount.get("readOnly"))))
        return found

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
