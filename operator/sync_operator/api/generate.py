"""(Re)writes crds/*.yaml and the chart's copy from the models:
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, action="append",
                        help="target directory (repeatable; default: crds/ and the chart's)")
    parser.add_argument("--check", action="store_true", help="only report drift")
    args = parser.parse_args(argv)
    outs: list[Path] = args.out or [DEFAULT_OUT, CHART_CRDS]
    stale = []
    for out in outs:
        for name, crd in all_crds().items():
            path = out / name
            text = render(crd)
            if path.exists() and path.read_text() == text:
                continue
            stale.append(path)
            if not args.check:
                out.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    verb = "out of date" if args.check else "written"
    for path in stale:
        print(f"{verb}: {path}")
    if not stale:
        print(f"up to date: {', '.join(map(str, outs))}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
