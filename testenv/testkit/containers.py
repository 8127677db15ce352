"""How a container's process is started so that it sees a container's world, without a
container runtime: its volumes at their mount paths, its user, a read-only root.

The process gets a mount namespace of its own (util-linux `unshare -m`, private
propagation), in which a short POSIX shell script bind-mounts each volume at its
mountPath (read-only where asked), remounts the root read-only if
readOnlyRootFilesystem says so, and then execs the command as runAsUser/runAsGroup
(`setpriv`, with no supplementary groups and no new privileges). Nothing of this is
seen outside: other pods and the host keep their own view.

A command the pod's user could not even start (an interpreter under a 0700 /root, as
pyenv installs it) runs as the kubelet's own user instead, with a warning: the user
switch is kept wherever it can work, never at the price of a container that cannot
start. It needs root (CI runs as root). Without root, or without `unshare`, a container that
asks for none of this runs as a plain process, and one that asks for mounts or another
user is refused with a message saying why, rather than run with a different world.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testkit.podvolumes import Mount

Obj = dict[str, Any]
log = logging.getLogger("process-kubelet.containers")


class IsolationUnavailableError(Exception):
    """The container asks for mounts or a user this machine cannot give a process."""


@dataclass(frozen=True)
class Identity:
    user: int | None
    group: int | None
    read_only_root: bool
    no_new_privileges: bool


def identity(pod: Obj, container: Obj) -> Identity:
    """The effective securityContext: the container's fields over the pod's."""
    pod_ctx = pod["spec"].get("securityContext") or {}
    ctx = container.get("securityContext") or {}

    def pick(key: str) -> Any:
        return ctx.get(key, pod_ctx.get(key))

    user, group = pick("runAsUser"), pick("runAsGroup")
    return Identity(
        user=None if user is None else int(user),
        group=None if group is None else int(group),
        read_only_root=bool(ctx.get("readOnlyRootFilesystem")),
        no_new_privileges=ctx.get("allowPrivilegeEscalation") is False)


def reachable_by(path: str, uid: int) -> bool:
    """Whether user `uid` (no groups) can execute `path`: every directory on its real
    path searchable and the file executable, by owner or by others."""
    real = Path(shutil.which(path) or path).resolve()
    for part in [*reversed(real.parents), real]:
        try:
            st = part.stat()
        except OSError:
            return False
        bit = 0o100 if st.st_uid == uid else 0o001
        if not st.st_mode & bit:
            return False
    return True


def _not_over_the_command(argv: Sequence[str], mounts: Sequence[Mount]) -> list[Mount]:
    """Leave out a volume mounted over the directory the command itself lives in: an image
    brings its own files, but here the "image" is the host's (a checkout under /tmp, and a
    pod's emptyDir at /tmp would hide its interpreter and code)."""
    if not argv:
        return list(mounts)
    home = Path(os.path.abspath(argv[0])).parent
    kept = []
    for mount in mounts:
        target = Path(mount.target)
        if target == home or target in home.parents:
            log.warning("volume at %s left out: it would hide %s", mount.target, argv[0])
            continue
        kept.append(mount)
    return kept


def _sources_first(mounts: Sequence[Mount]) -> list[Mount]:
    """Mounts in an order that binds every source before another mount hides it: the
    volumes live under the kubelet's state directory, which may be under /tmp, where a
    pod mounts its emptyDir (a bind, once made, holds on to its source)."""
    def hides_a_source(mount: Mount) -> bool:
        target = Path(mount.target)
        return any(other is not mount and (target == other.source
                                           or target in other.source.parents)
                   for other in mounts)

    return sorted(mounts, key=hides_a_source)  # stable: the others keep their order


def can_isolate() -> bool:
    return os.geteuid() == 0 and shutil.which("unshare") is not None \
        and shutil.which("setpriv") is not None


def launch_argv(argv: Sequence[str], mounts: Sequence[Mount], who: Identity) -> list[str]:
    """The argv that runs `argv` in the container's world (or `argv` itself when the
    container needs nothing of it)."""
    needs = bool(mounts) or who.read_only_root or (who.user not in (None, os.geteuid()))
    if not needs:
        return list(argv)
    if not can_isolate():
        raise IsolationUnavailableError(
            "volume mounts, runAsUser and readOnlyRootFilesystem need root and util-linux "
            "(unshare, setpriv) for the process kubelet")
    if who.user is not None and argv and not reachable_by(argv[0], who.user):
        log.warning("%s cannot be run by uid %d on this machine: running it as uid %d",
                    argv[0], who.user, os.geteuid())
        who = Identity(None, None, who.read_only_root, who.no_new_privileges)
    kept = _not_over_the_command(argv, mounts)
    if len(kept) < len(mounts) and who.read_only_root:
        # What that volume gave (a writable /tmp, say) is missing: keep the root writable.
        who = Identity(who.user, who.group, False, who.no_new_privileges)
    mounts = kept
    lines = ["set -e"]
    for mount in mounts:  # mount points are made on the host's filesystem, once
        if mount.source.is_dir():
            lines.append(f"mkdir -p {shlex.quote(mount.target)}")
        else:
            lines.append(f"mkdir -p {shlex.quote(os.path.dirname(mount.target) or '/')}")
            lines.append(f"[ -e {shlex.quote(mount.target)} ] || : > "
                         f"{shlex.quote(mount.target)}")
    if who.read_only_root:
        lines.append("mount --rbind / /")  # recursive: /proc, /dev and the rest stay
    for mount in _sources_first(mounts):
        lines.append(f"mount --bind {shlex.quote(str(mount.source))} "
                     f"{shlex.quote(mount.target)}")
        if mount.read_only:
            lines.append(f"mount -o remount,bind,ro {shlex.quote(mount.target)}")
    if who.read_only_root:
        lines.append("mount -o remount,bind,ro /")
    setpriv = ["setpriv"]
    if who.user is not None:
        setpriv += [f"--reuid={who.user}", f"--regid={who.group or who.user}",
                    "--clear-groups"]
    elif who.group is not None:
        setpriv += [f"--regid={who.group}", "--clear-groups"]
    if who.no_new_privileges:
        setpriv.append("--no-new-privs")
    lines.append(f'exec {" ".join(setpriv)} -- "$@"')
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
            "\n".join(lines), "container", *argv]
