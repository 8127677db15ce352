"""deploy/images.yaml is the one image table: the Dockerfile, the chart and the operator's
runner Jobs say the same thing, and the process kubelet runs what it says."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from chart_helpers import REPO, render

from sync_operator.app.settings import OperatorSettings
from sync_operator.syncjob.job_builder import JobSettings, build_job
from testkit.images import image_table, local_entrypoints
from testkit.kubelet import image_key

TABLE = image_table()


def _dockerfile_entrypoint(dockerfile: Path) -> list[str]:
    """The exec-form ENTRYPOINT of the final stage (the last one in the file)."""
    lines = [line for line in dockerfile.read_text().splitlines()
             if line.startswith("ENTRYPOINT ")]
    assert lines, f"{dockerfile} has no ENTRYPOINT"
    entrypoint = json.loads(lines[-1].removeprefix("ENTRYPOINT "))
    assert isinstance(entrypoint, list), "ENTRYPOINT must be the exec form"
    return [str(arg) for arg in entrypoint]


def test_each_dockerfile_entrypoint_is_its_images_entrypoint() -> None:
    built = {name: image for name, image in TABLE.items() if image.dockerfile}
    assert built, "no image of the table is built from a Dockerfile"
    for name, image in built.items():
        assert image.dockerfile is not None
        assert _dockerfile_entrypoint(REPO / image.dockerfile) == image.entrypoint, name


def test_every_container_the_chart_renders_runs_a_command_of_its_image(
        helm_binary: Path) -> None:
    """The Deployment, the migrate hook and the uninstall hook: each container's image is
    in the table and its command is one the table lists for that image."""
    release = render("sync-system", {"database": {"existingSecret": "sync-db"}})
    pods = [m["spec"]["template"]["spec"] for m in release.manifests
            if m["kind"] in {"Deployment", "Job"}]
    seen = set()
    for pod in pods:
        for container in pod.get("initContainers", []) + pod["containers"]:
            image = TABLE.get(image_key(container["image"]))
            assert image is not None, f"{container['image']} is not in deploy/images.yaml"
            command = container.get("command") or image.entrypoint
            role = next((r for r, c in image.commands.items() if c == command), None)
            assert role is not None, f"{container['name']} runs {command}, not in the table"
            seen.add(role)
    assert seen == set(TABLE["sync-runner"].commands)  # every listed command is used
    assert image_key(release.operator_env()["SYNC_OPERATOR_RUNNER_IMAGE"]) in TABLE


def test_runner_jobs_run_the_images_entrypoint() -> None:
    """The operator's Jobs name the runner image and no command: the entrypoint runs."""
    image = OperatorSettings.model_fields["runner_image"].default
    assert image_key(image) in TABLE
    job = build_job({"apiVersion": "sync.jobcontrol.io/v1alpha1", "kind": "SyncJob",
                     "metadata": {"name": "j", "namespace": "ns", "uid": "u-1"},
                     "spec": {"jobType": "quran"}},
                    JobSettings(image=image, redis_url="redis://r"))
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert "command" not in container
    assert "args" not in container


def test_the_kubelet_runs_each_entrypoint_with_this_interpreter() -> None:
    table = local_entrypoints()
    assert table["sync-runner"] == [sys.executable, "-m", "sync_runner"]
    assert table["python"] == [sys.executable]
