"""Builds the real `helm` CLI once (testenv/helm, a module of its own) and runs it on charts.

The chart is checked with the Helm users run, not a re-implementation: `helm lint` and
`helm template` from helm.sh/helm/v4, built from the Go module proxy because release
downloads are not reachable here. Like testkit.build, the binary is cached outside the
repo under a key of the module's go.mod, go.sum and the Go version, so it builds once.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from testkit.build import _go, cache_root, go_cache_key

HELM_MODULE_DIR = Path(__file__).resolve().parent.parent / "helm"
HELM_PACKAGE = "helm.sh/helm/v4/cmd/helm"
_REQUIRE = re.compile(r"^\s*(?:require\s+)?helm\.sh/helm/v4\s+(v\S+)", re.MULTILINE)


def helm_pin() -> str:
    """The Helm version go.mod pins (what `helm version` will report)."""
    match = _REQUIRE.search((HELM_MODULE_DIR / "go.mod").read_text())
    if match is None:
        raise RuntimeError(f"{HELM_MODULE_DIR / 'go.mod'} does not require helm.sh/helm/v4")
    return match.group(1)


def cache_key() -> str:
    """Changes when the pin, its dependency sums or the Go toolchain change."""
    return go_cache_key(HELM_MODULE_DIR, ["go.mod", "go.sum"])


def binary_path() -> Path:
    """Where the cached binary lives ($SYNC_HELM_BIN overrides, e.g. a system helm)."""
    override = os.environ.get("SYNC_HELM_BIN")
    if override:
        return Path(override)
    return cache_root() / f"helm-{helm_pin()}-{cache_key()}" / "helm"


def ensure_helm() -> Path:
    """Return the cached helm, building it first when the pin changed."""
    target = binary_path()
    if target.exists():
        return target
    pin = helm_pin()
    ldflags = " ".join([
        "-s -w",
        f"-X helm.sh/helm/v4/internal/version.version={pin}",
        "-X helm.sh/helm/v4/internal/version.metadata=",
        "-X helm.sh/helm/v4/internal/version.gitTreeState=clean",
    ])
    target.parent.mkdir(parents=True, exist_ok=True)
    # One partial file per process: two sessions building at once never share a file.
    tmp = target.with_name(f"helm.partial-{os.getpid()}")
    started = time.monotonic()
    print(f"building helm {pin} (first run only) ...", file=sys.stderr, flush=True)
    subprocess.run(
        [_go(), "build", "-trimpath", "-ldflags", ldflags, "-o", str(tmp), HELM_PACKAGE],
        cwd=HELM_MODULE_DIR, check=True, env={**os.environ, "CGO_ENABLED": "0"},
    )
    tmp.replace(target)
    print(f"built {target} in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return target


def helm_env() -> dict[str, str]:
    """Helm's own config/cache/data dirs under our cache, so runs leave $HOME alone."""
    home = cache_root() / "helm-home"
    env = dict(os.environ)
    env.update({"HELM_CACHE_HOME": str(home / "cache"),
                "HELM_CONFIG_HOME": str(home / "config"),
                "HELM_DATA_HOME": str(home / "data")})
    return env


def run_helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run helm with `args`; on failure with check=True, raise with its output."""
    result = subprocess.run([str(ensure_helm()), *args], capture_output=True, text=True,
                            env=helm_env(), check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"helm {' '.join(args)} failed ({result.returncode}):\n"
                           f"{result.stdout}\n{result.stderr}")
    return result


def _values_args(values: Mapping[str, Any] | None, directory: Path) -> list[str]:
    if not values:
        return []
    path = directory / "values.override.yaml"
    path.write_text(yaml.safe_dump(dict(values), sort_keys=False))
    return ["--values", str(path)]


def lint(chart: Path, values: Mapping[str, Any] | None = None, *,
         strict: bool = True) -> subprocess.CompletedProcess[str]:
    """`helm lint [--strict]` (not raising: the caller asserts on its output)."""
    with tempfile.TemporaryDirectory() as tmp:
        args = ["lint", str(chart), *(["--strict"] if strict else []),
                *_values_args(values, Path(tmp))]
        return run_helm(*args, check=False)


def template_text(chart: Path, release: str, namespace: str,
                  values: Mapping[str, Any] | None = None, *,
                  extra_args: Sequence[str] = ()) -> str:
    """The manifests `helm template` renders, as one multi-document YAML string."""
    with tempfile.TemporaryDirectory() as tmp:
        args = ["template", release, str(chart), "--namespace", namespace,
                *_values_args(values, Path(tmp)), *extra_args]
        return run_helm(*args).stdout


def template(chart: Path, release: str, namespace: str,
             values: Mapping[str, Any] | None = None, *,
             extra_args: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The rendered manifests, parsed, empty documents dropped."""
    text = template_text(chart, release, namespace, values, extra_args=extra_args)
    return [doc for doc in yaml.safe_load_all(text) if doc]


if __name__ == "__main__":
    print(ensure_helm())
