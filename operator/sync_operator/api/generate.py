"""(Re)writes crds/*.yaml and the chart's copy from the models, and copies the admission
policies (policies/*.yaml, written by hand) into the chart:
``python -m sync_operator.api.generate``.

With --check it writes nothing and exits 1 when a file differs, for CI.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from sync_operator.api.crd import all_crds, render

# operator/sync_operator/api/generate.py -> the repository root's crds/ (editable install).
REPO = Path(__file__).resolve().parents[3]
DEFAULT_OUT = REPO / "crds"
CHART_CRDS = REPO / "charts" / "sync-operator" / "crds"
# The one source of the stamp policies, and the chart's byte-for-byte copy of it.
POLICIES = REPO / "policies"
CHART_POLICIES = REPO / "charts" / "sync-operator" / "policies"


def policy_files(source: Path = POLICIES) -> dict[str, str]:
    """The policy manifests by file name (README.md is not one)."""
    return {p.name: p.read_text() for p in sorted(source.glob("*.yaml"))}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, action="append",
                        help="target directory (repeatable; default: crds/ and the chart's)")
    parser.add_argument("--policies-out", type=Path, action="append",
                        help="where policies/ is copied (repeatable; default: the chart's "
                             "policies/, unless --out is given)")
    parser.add_argument("--check", action="store_true", help="only report drift")
    args = parser.parse_args(argv)
    outs: list[Path] = args.out or [DEFAULT_OUT, CHART_CRDS]
    policy_outs: list[Path] = args.policies_out or ([] if args.out else [CHART_POLICIES])
    wanted: list[tuple[Path, str]] = [
        (out / name, render(crd)) for out in outs for name, crd in all_crds().items()]
    policies = policy_files()
    wanted += [(out / name, text) for out in policy_outs for name, text in policies.items()]
    stale = []
    for path, text in wanted:
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    # A policy deleted from policies/ must leave the chart too.
    for out in policy_outs:
        for path in sorted(out.glob("*.yaml")) if out.exists() else []:
            if path.name not in policies:
                stale.append(path)
                if not args.check:
                    path.unlink()
    verb = "out of date" if args.check else "written"
    for path in stale:
        print(f"{verb}: {path}")
    if not stale:
        print(f"up to date: {', '.join(map(str, [*outs, *policy_outs]))}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
