"""kubectl-sync without a cluster: the grammar, exit codes of bad input, the watch's end rule."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from sync_operator.api import SYNCJOB, SYNCSCHEDULE, JobType, Phase, SyncJob
from sync_operator.cli.commands.control import note
from sync_operator.cli.connect import connect, kubeconfig_paths
from sync_operator.cli.main import main
from sync_operator.cli.output import qualified
from sync_operator.cli.parser import build_parser
from sync_operator.cli.watchstate import WatchState
from sync_operator.kube.stream import RESET, Event

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {{server: "{server}", insecure-skip-tls-verify: true}}
users:
- name: u
  user: {{token: t}}
contexts:
- name: one
  context: {{cluster: c, user: u, namespace: team-a}}
- name: two
  context: {{cluster: c, user: u}}
current-context: one
"""


def body(name: str, phase: str | None = "Running", namespace: str = "ns") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"jobType": "quran"}, "status": {"phase": phase} if phase else {}}


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "config"
    path.write_text(KUBECONFIG.format(server="https://127.0.0.1:1"))
    return path


# -- grammar --------------------------------------------------------------------------------


def test_global_flags_go_before_or_after_the_command() -> None:
    parser = build_parser()
    after = parser.parse_args(["list", "-n", "x", "--context", "c"])
    before = parser.parse_args(["-n", "x", "--context", "c", "list"])
    for args in (after, before):
        assert (args.namespace, args.context, args.kubeconfig) == ("x", "c", None)
    assert parser.parse_args(["list"]).namespace is None


def test_types_and_phases_are_case_insensitive_lists() -> None:
    args = build_parser().parse_args(["ls", "--type", "Quran,prayer", "--phase", "queued,RUNNING",
                                      "-A", "-o", "wide"])
    assert args.type == [JobType.QURAN, JobType.PRAYER]
    assert args.phase == [Phase.QUEUED, Phase.RUNNING]
    assert args.all_namespaces
    assert args.output == "wide"


@pytest.mark.parametrize("argv", [
    [], ["create", "nope"], ["create", "quran", "--name", "a", "--generate-name"],
    ["list", "--phase", "Sleeping"], ["priority", "q1", "high"], ["priority", "q1"],
    ["get"], ["get", "q1", "-o", "name"], ["pause"], ["bogus"],
])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err


def test_unknown_type_names_the_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["create", "nope"]) == 2
    assert "unknown job type 'nope' (expected one of: quran, prayer, hadith, audio, finance)" \
        in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "kubectl sync" in capsys.readouterr().out


def test_bad_params_are_usage_errors_before_any_connection(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--kubeconfig", "/nonexistent", "create", "quran", "--param", "oops"]) == 2
    assert "--param 'oops': expected KEY=VALUE" in capsys.readouterr().err
    assert main(["--kubeconfig", "/nonexistent", "create", "quran", "--params-json", "[]"]) == 2


def test_cancel_without_a_terminal_needs_yes(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["--kubeconfig", "/nonexistent", "cancel", "q1"]) == 2
    assert "pass --yes" in capsys.readouterr().err
    # With --yes it gets as far as the (missing) kubeconfig: an error, not a usage one.
    assert main(["--kubeconfig", "/nonexistent", "cancel", "q1", "--yes"]) == 1


def test_config_and_connection_failures_exit_1(kubeconfig: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--kubeconfig", "/nonexistent", "list"]) == 1
    assert "kubeconfig not found: /nonexistent" in capsys.readouterr().err
    assert main(["--kubeconfig", str(kubeconfig), "--context", "three", "list"]) == 1
    assert "no context named 'three'" in capsys.readouterr().err
    assert main(["--kubeconfig", str(kubeconfig), "list"]) == 1
    assert "cannot reach the API server" in capsys.readouterr().err


# -- where to connect -------------------------------------------------------------------------


def test_namespace_comes_from_the_flag_else_the_context(kubeconfig: Path) -> None:
    assert connect(str(kubeconfig)).namespace == "team-a"
    assert connect(str(kubeconfig), "two").namespace == "default"
    target = connect(str(kubeconfig), namespace="x", all_namespaces=True)
    assert (target.namespace, target.scope) == ("x", None)
    assert connect(str(kubeconfig), namespace="x").scope == "x"


def test_a_kubeconfig_list_is_merged_and_a_flag_wins(
        kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", f"/nonexistent:{kubeconfig}")
    assert kubeconfig_paths(None) == [Path("/nonexistent"), kubeconfig]
    assert kubeconfig_paths("/explicit") == [Path("/explicit")]
    assert connect().namespace == "team-a"  # the missing file is skipped, as kubectl does


# -- small pure rules ---------------------------------------------------------------------------


def test_qualified_names_read_like_kubectl() -> None:
    assert qualified(SYNCJOB, "q1") == "syncjob.sync.jobcontrol.io/q1"
    assert qualified(SYNCSCHEDULE, "d") == "syncschedule.sync.jobcontrol.io/d"


def test_notes_when_a_patch_changes_nothing() -> None:
    def job(phase: str, **spec: Any) -> SyncJob:
        b = body("q1", phase)
        b["spec"].update(spec)
        return SyncJob.model_validate(b)

    assert note("pause", job("Succeeded")) == \
        "q1 has already finished (Succeeded): pause has no effect"
    assert note("cancel", job("Cancelled", cancel=True)) is None
    assert note("resume", job("Cancelling", cancel=True)) == \
        "q1 is being cancelled: resume has no effect"
    assert "only orders jobs waiting" in (note("priority", job("Running")) or "")
    assert note("priority", job("Queued")) is None
    assert note("pause", job("Running")) is None


# -- the watch's state and end ----------------------------------------------------------------


def test_named_watch_ends_when_its_jobs_are_terminal() -> None:
    state = WatchState(names=frozenset({"a", "b"}))
    changes = state.apply(Event(RESET, [body("a"), body("b"), body("other")]))
    assert [c.key for c in changes] == [("ns", "a"), ("ns", "b")]
    assert not state.finished()
    state.apply(Event("MODIFIED", [body("a", "Succeeded")]))
    state.apply(Event("MODIFIED", [body("other", "Failed")]))
    assert not state.finished()
    state.apply(Event("DELETED", [body("b")]))
    assert state.finished()


def test_missing_named_jobs_are_reported() -> None:
    state = WatchState(names=frozenset({"a", "ghost"}))
    state.apply(Event(RESET, [body("a")]))
    assert state.missing() == ["ghost"]
    assert not state.finished()


def test_namespace_watch_waits_for_a_job_and_follow_never_ends() -> None:
    state = WatchState()
    assert not state.finished()
    state.apply(Event(RESET, []))
    assert not state.finished()  # nothing to watch yet: wait for jobs to appear
    state.apply(Event("ADDED", [body("a", None)]))
    assert not state.finished()
    state.apply(Event("MODIFIED", [body("a", "Cancelled")]))
    assert state.finished()
    following = WatchState(follow=True)
    following.apply(Event(RESET, [body("a", "Succeeded")]))
    assert not following.finished()


def test_a_relist_reports_jobs_deleted_meanwhile() -> None:
    state = WatchState()
    state.apply(Event(RESET, [body("a"), body("b")]))
    changes = state.apply(Event(RESET, [body("b", "Succeeded")]))
    assert [(c.key[1], c.job is None) for c in changes] == [("a", True), ("b", False)]
    assert list(state.jobs) == [("ns", "b")]


def test_unreadable_objects_are_skipped_with_a_warning(
        capsys: pytest.CaptureFixture[str]) -> None:
    state = WatchState()
    bad = {"metadata": {"name": "x", "namespace": "ns"}, "spec": {"jobType": "nope"}}
    assert state.apply(Event("ADDED", [bad])) == []
    assert "cannot read SyncJob ns/x" in capsys.readouterr().err
