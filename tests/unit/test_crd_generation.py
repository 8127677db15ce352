"""The CRDs under crds/: generated from the models, structural, with the promised rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from sync_operator.api.crd import (
    FORBIDDEN_KEYWORDS,
    PRESERVE,
    all_crds,
    render,
    structural_schema,
    syncjob_crd,
    syncschedule_crd,
)
from sync_operator.api.generate import main as generate_main

REPO = Path(__file__).resolve().parents[2]
CRDS = all_crds()


def _version(crd: dict[str, Any]) -> dict[str, Any]:
    versions: list[dict[str, Any]] = crd["spec"]["versions"]
    assert len(versions) == 1
    return versions[0]


def _schema(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = _version(crd)["schema"]["openAPIV3Schema"]
    return schema


def _nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _nodes(child, f"{path}.{name}")
    if "items" in node:
        yield from _nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _nodes(node["additionalProperties"], f"{path}{{}}")


def _at(schema: dict[str, Any], path: str) -> dict[str, Any]:
    node = schema
    for part in path.strip(".").split("."):
        node = node["properties"][part]
    return node


def _rules(node: dict[str, Any]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = node.get("x-kubernetes-validations", [])
    return rules


@pytest.mark.parametrize("name", sorted(CRDS))
def test_committed_crd_yaml_equals_freshly_generated_output(name: str) -> None:
    committed = REPO / "crds" / name
    assert committed.exists(), "run: python -m sync_operator.api.generate"
    assert committed.read_text() == render(CRDS[name]), (
        f"{committed} drifted from the models; run: python -m sync_operator.api.generate")


def test_committed_yaml_parses_back_to_the_same_crd() -> None:
    for name, crd in CRDS.items():
        assert yaml.safe_load((REPO / "crds" / name).read_text()) == crd


def test_generate_writes_then_check_reports_no_drift(tmp_path: Path) -> None:
    assert generate_main(["--check", "--out", str(tmp_path)]) == 1
    assert generate_main(["--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(CRDS)
    assert generate_main(["--check", "--out", str(tmp_path)]) == 0


@pytest.mark.parametrize("name", sorted(CRDS))
def test_schemas_are_structural(name: str) -> None:
    for path, node in _nodes(_schema(CRDS[name])):
        assert not FORBIDDEN_KEYWORDS & set(node), f"{path}: {FORBIDDEN_KEYWORDS & set(node)}"
        assert "type" in node or node.get(PRESERVE), f"{path} has no type"
        assert not ("properties" in node and "additionalProperties" in node), path
        assert "nullable" not in node, f"{path}: null values are pruned, not stored"
        assert node.get("default", 0) is not None, f"{path}: default null"
        if node.get("x-kubernetes-list-type") == "map":
            required = set(node["items"].get("required", []))
            assert set(node["x-kubernetes-list-map-keys"]) <= required, path


def test_syncjob_params_keep_unknown_fields() -> None:
    params = _at(_schema(syncjob_crd()), "spec.params")
    assert params["type"] == "object"
    assert params[PRESERVE] is True
    assert params["default"] == {}


def test_audit_details_keep_unknown_fields() -> None:
    pending = _at(_schema(syncjob_crd()), "status.mirror.pending")
    assert set(pending["items"]["properties"]) == {
        "seq", "action", "performedBy", "at", "phase", "details"}
    assert pending["items"]["properties"]["details"][PRESERVE] is True


@pytest.mark.parametrize("crd", [syncjob_crd(), syncschedule_crd()],
                         ids=["syncjob", "syncschedule"])
def test_conditions_are_a_list_map_keyed_by_type(crd: dict[str, Any]) -> None:
    conditions = _at(_schema(crd), "status.conditions")
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert {"type", "status", "reason", "message", "lastTransitionTime",
            "observedGeneration"} <= set(item["properties"])
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]


def test_cancel_cannot_be_unset_once_set() -> None:
    spec = _at(_schema(syncjob_crd()), "spec")
    [rule] = [r for r in _rules(spec) if r.get("fieldPath") == ".cancel"]
    assert rule["message"] == "spec.cancel cannot be unset once a SyncJob is cancelled"
    assert "oldSelf.cancel" in rule["rule"]
    assert "has(oldSelf.cancel)" in rule["rule"]  # safe when the old object lacks it


@pytest.mark.parametrize("field", ["jobType", "params"])
def test_required_or_defaulted_fields_are_immutable(field: str) -> None:
    node = _at(_schema(syncjob_crd()), f"spec.{field}")
    assert {"rule": "self == oldSelf", "message": f"spec.{field} is immutable",
            "reason": "FieldValueForbidden"} in _rules(node)


@pytest.mark.parametrize("field", ["dedupKey", "scheduleRef"])
def test_optional_fields_cannot_be_added_removed_or_changed(field: str) -> None:
    spec = _at(_schema(syncjob_crd()), "spec")
    [rule] = [r for r in _rules(spec) if r.get("fieldPath") == f".{field}"]
    assert rule["message"] == f"spec.{field} is immutable"
    assert f"has(self.{field}) == has(oldSelf.{field})" in rule["rule"]


def test_job_type_enum_lists_the_supported_values() -> None:
    job_type = _at(_schema(syncjob_crd()), "spec.jobType")
    assert job_type["enum"] == ["quran", "prayer", "hadith", "audio", "finance"]


@pytest.mark.parametrize("name", sorted(CRDS))
def test_every_cel_rule_has_a_message(name: str) -> None:
    for path, node in _nodes(_schema(CRDS[name])):
        for rule in _rules(node):
            assert rule["rule"], path
            assert rule["message"], path


def test_syncjob_spec_defaults_are_in_the_schema() -> None:
    spec = _at(_schema(syncjob_crd()), "spec")
    defaults = {k: v.get("default") for k, v in spec["properties"].items() if "default" in v}
    assert defaults == {"priority": 5, "paused": False, "cancel": False, "params": {},
                        "retryAttempts": 3}
    assert spec["required"] == ["jobType"]
    assert spec["properties"]["priority"]["minimum"] == 1
    assert spec["properties"]["priority"]["maximum"] == 10


def test_syncjob_printer_columns() -> None:
    columns = {c["name"]: c for c in _version(syncjob_crd())["additionalPrinterColumns"]}
    default_view = [n for n, c in columns.items() if not c.get("priority")]
    assert default_view == ["Type", "Phase", "Progress", "Priority", "Age"]
    assert columns["Progress"]["jsonPath"] == ".status.progress.percent"
    assert columns["Age"]["type"] == "date"


def test_syncschedule_printer_columns() -> None:
    columns = {c["name"]: c for c in _version(syncschedule_crd())["additionalPrinterColumns"]}
    default_view = [n for n, c in columns.items() if not c.get("priority")]
    assert default_view == ["Type", "Schedule", "Suspend", "Active", "Last", "Next", "Age"]
    assert columns["Active"]["jsonPath"] == ".status.activeCount"
    assert columns["Last"]["type"] == "date"
    assert columns["Next"]["type"] == "string"  # kubectl shows future dates as <invalid>


@pytest.mark.parametrize("name", sorted(CRDS))
def test_printer_columns_and_selectable_fields_point_into_the_schema(name: str) -> None:
    version = _version(CRDS[name])
    schema = _schema(CRDS[name])
    paths = [c["jsonPath"] for c in version["additionalPrinterColumns"]]
    paths += [f["jsonPath"] for f in version["selectableFields"]]
    for path in paths:
        if path.startswith(".metadata."):
            continue
        assert _at(schema, path)["type"] in ("string", "integer", "boolean"), path


@pytest.mark.parametrize(("name", "short", "kind"), [
    ("syncjobs.sync.jobcontrol.io.yaml", "sj", "SyncJob"),
    ("syncschedules.sync.jobcontrol.io.yaml", "ssched", "SyncSchedule"),
])
def test_names_scope_and_status_subresource(name: str, short: str, kind: str) -> None:
    crd = CRDS[name]
    names = crd["spec"]["names"]
    assert names["kind"] == kind
    assert names["listKind"] == f"{kind}List"
    assert names["shortNames"] == [short]
    assert names["categories"] == ["sync"]
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["group"] == "sync.jobcontrol.io"
    version = _version(crd)
    assert version["name"] == "v1alpha1"
    assert version["served"]
    assert version["storage"]
    assert version["subresources"] == {"status": {}}


def test_a_union_type_is_refused_rather_than_guessed() -> None:
    class Bad(BaseModel):
        value: int | str

    with pytest.raises(ValueError, match="not structural"):
        structural_schema(Bad)


def test_rendering_is_stable_and_free_of_yaml_anchors() -> None:
    for crd in CRDS.values():
        text = render(crd)
        assert text == render(crd)
        assert "&id" not in text
        assert "*id" not in text
