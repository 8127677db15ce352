"""`bash scripts/dev.sh demo` runs end to end: it installs the chart with `helm install
--wait` on a local cluster of its own, and its users act under their own rights (the
audit log names alice; carol, bound to `view`, is refused a pause)."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster


@pytest.mark.timeout(600)  # a control plane, an install and six jobs of its own
async def test_the_demo_installs_the_chart_and_runs_every_job_type(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "testkit.demo", "--dir", str(tmp_path / "demo"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 540)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
    assert re.search(r"installed in [\d.]+ s: .*\(leader, .*\(standby, |"
                     r"installed in [\d.]+ s: .*\(standby, .*\(leader, ", text), text[-6000:]
    assert 'User "carol" cannot patch resource "syncjobs"' in text
    audit = re.findall(r"^  \d\d:\d\d:\d\d  (\S+) +(\S+) +(\S+)$", text, re.MULTILINE)
    by_user = {(name, action): who for name, action, who in audit
               if action in {"create", "pause", "resume", "cancel"}}
    assert by_user[("long-demo", "pause")] == "alice"
    assert by_user[("long-demo", "cancel")] == "alice"
    assert {by_user[(name, "create")] for name in (
        "quran-chapters", "prayer-times", "hadith-collection", "audio-tracks",
        "finance-rates", "long-demo")} == {"alice"}
    control = dict(re.findall(r"^  (\S+) +(Succeeded|Cancelled|Failed) +[\d.]+%$", text,
                              re.MULTILINE))
    assert control == {"quran-chapters": "Succeeded", "prayer-times": "Succeeded",
                       "hadith-collection": "Succeeded", "audio-tracks": "Succeeded",
                       "finance-rates": "Succeeded", "long-demo": "Cancelled"}
