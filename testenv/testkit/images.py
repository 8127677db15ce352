"""The project's image table (deploy/images.yaml), as the process kubelet runs it.

One file names each image, the Dockerfile that builds it, its entrypoint and the commands
the chart's containers run in it; the kubelet's image -> argv table is derived from it
here, so the tests, the demo and the benchmarks run exactly what the images would.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

REPO = Path(__file__).resolve().parents[2]
IMAGE_TABLE = REPO / "deploy" / "images.yaml"
PYTHON = "python"


class Image(BaseModel):
    """One image of the project: where it is built and what its containers run."""

    model_config = ConfigDict(extra="forbid")

    dockerfile: str | None = None
    entrypoint: list[str] = Field(min_length=1)
    commands: dict[str, list[str]] = Field(default_factory=dict)


def image_table(path: Path = IMAGE_TABLE) -> dict[str, Image]:
    """The table as written, validated (an unknown key or an empty entrypoint fails)."""
    raw = yaml.safe_load(path.read_text())
    return {name: Image.model_validate(entry) for name, entry in raw.items()}


def local_entrypoints(path: Path = IMAGE_TABLE) -> dict[str, list[str]]:
    """image name -> the argv a container of it runs on this machine (the kubelet's table):
    `python` is this interpreter, whose environment holds the project's packages."""
    return {name: [sys.executable if arg == PYTHON else arg for arg in image.entrypoint]
            for name, image in image_table(path).items()}
