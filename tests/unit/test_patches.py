"""kube.patches.merge_patch: an RFC 7386 diff, checked against an RFC 7386 apply."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fake_kube import merge

from sync_operator.kube.patches import merge_patch

Doc = dict[str, Any]


def test_equal_documents_give_an_empty_patch() -> None:
    doc: Doc = {"a": 1, "b": {"c": [1, 2], "d": {"e": "x"}}}
    assert merge_patch(doc, copy.deepcopy(doc)) == {}


def test_top_level_changes_additions_and_removals() -> None:
    old: Doc = {"keep": 1, "change": 1, "drop": 1}
    new: Doc = {"keep": 1, "change": 2, "add": 3}
    assert merge_patch(old, new) == {"change": 2, "add": 3, "drop": None}


def test_a_key_removed_inside_a_nested_object_is_sent_as_null() -> None:
    old: Doc = {"progress": {"done": 50, "percent": 50, "etaSeconds": 30}}
    new: Doc = {"progress": {"done": 100, "percent": 100}}
    assert merge_patch(old, new) == {
        "progress": {"done": 100, "percent": 100, "etaSeconds": None}}


def test_unchanged_nested_keys_and_objects_are_left_out() -> None:
    old: Doc = {"phase": "Running", "control": {"generation": 1, "cancel": False},
                "progress": {"done": 1, "unit": "items"}}
    new: Doc = {"phase": "Running", "control": {"generation": 1, "cancel": False},
                "progress": {"done": 2, "unit": "items"}}
    assert merge_patch(old, new) == {"progress": {"done": 2}}


def test_it_recurses_through_several_levels() -> None:
    old: Doc = {"a": {"b": {"c": {"d": 1, "e": 2}, "f": 3}}}
    new: Doc = {"a": {"b": {"c": {"d": 1}, "f": 3}}}
    assert merge_patch(old, new) == {"a": {"b": {"c": {"e": None}}}}


def test_lists_are_replaced_whole() -> None:
    old: Doc = {"conditions": [{"type": "A", "status": "True"}, {"type": "B"}]}
    new: Doc = {"conditions": [{"type": "A", "status": "False"}]}
    assert merge_patch(old, new) == {"conditions": [{"type": "A", "status": "False"}]}


@pytest.mark.parametrize(("before", "after"), [
    ({"x": 1}, 5),          # an object becomes a scalar
    (5, {"x": 1}),          # a scalar becomes an object
    ([1, 2], {"x": 1}),     # a list becomes an object
    ({"x": 1}, [1]),        # an object becomes a list
])
def test_a_change_of_type_is_sent_whole(before: Any, after: Any) -> None:
    assert merge_patch({"v": before}, {"v": after}) == {"v": after}


def test_a_new_nested_object_is_sent_whole_and_an_emptied_one_clears_its_keys() -> None:
    assert merge_patch({}, {"mirror": {"pending": [1]}}) == {"mirror": {"pending": [1]}}
    assert merge_patch({"mirror": {"pending": [1], "seq": 2}}, {"mirror": {}}) == {
        "mirror": {"pending": None, "seq": None}}


def test_a_null_for_a_key_that_was_never_there_is_left_out() -> None:
    assert merge_patch({"a": 1}, {"a": 1, "b": None}) == {}


def test_the_inputs_are_not_changed() -> None:
    old: Doc = {"a": {"b": 1, "c": 2}}
    new: Doc = {"a": {"b": 2}}
    old_copy, new_copy = copy.deepcopy(old), copy.deepcopy(new)
    merge_patch(old, new)
    assert (old, new) == (old_copy, new_copy)


@pytest.mark.parametrize(("old", "new"), [
    ({"a": {"b": {"c": 1, "d": [1, {"e": 2}]}, "f": "g"}, "h": 1},
     {"a": {"b": {"d": [1]}, "i": {"j": 0}}, "k": [{"l": 1}]}),
    ({"status": {"phase": "Running", "progress": {"etaSeconds": 3, "done": 1},
                 "conditions": [{"type": "Running"}], "mirror": {"pending": [{"n": 1}]}}},
     {"status": {"phase": "Succeeded", "progress": {"done": 100, "percent": 100},
                 "conditions": [{"type": "Running"}, {"type": "Succeeded"}],
                 "mirror": {"pending": []}}}),
    ({"x": {"y": 1}}, {}),
    ({}, {"x": {"y": {"z": 1}}}),
])
def test_applying_the_patch_to_old_gives_new(old: Doc, new: Doc) -> None:
    assert merge(old, merge_patch(old, new)) == new
