"""A status write is a JSON merge patch (RFC 7386): what it leaves out of a map stays, unless
nulled. The figures' per-node map must lose a node that left."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from enclave_operator.reconcile.report import merge_patch


def apply(target: Any, patch: Any) -> Any:
    """RFC 7386 MergePatch, as the API server applies it."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply(result.get(key), value)
    return result


def test_the_patch_makes_the_status_exactly_the_desired_one():
    current = {
        "state": "HEALTHY",
        "nodes": {"n0": {"ready": True, "pod": "p0"}, "n1": {"ready": True, "pod": "p1"}},
        "conditions": [{"type": "A"}, {"type": "B"}],
        "old": 1,
    }
    desired = {
        "state": "UNHEALTHY",
        "nodes": {"n0": {"ready": False}},
        "conditions": [{"type": "A"}],
    }
    assert apply(current, merge_patch(current, desired)) == desired
    assert apply(current, desired) != desired  # a plain merge keeps n1, p0 and old


def test_an_unchanged_status_patches_to_itself():
    status = {"nodes": {"n0": {"ready": True}}, "state": "HEALTHY"}
    assert merge_patch(status, status) == status
