"""The CR's status from a decision, written only when it changed, and Events for people."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from enclave_operator.api.kinds import Kind
from enclave_operator.kube import ApiException, Kube
from enclave_operator.reconcile.model import Condition, Decision

log = logging.getLogger("enclave_operator.report")


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    old: Sequence[Mapping[str, Any]], new: Sequence[Condition], generation: int, now: str
) -> list[dict[str, Any]]:
    """lastTransitionTime moves only when a condition's status changes."""
    previous = {c.get("type"): c for c in old}
    merged = []
    for c in new:
        before = previous.get(c.type)
        same = before is not None and before.get("status") == c.status.value
        merged.append(
            {
                "type": c.type,
                "status": c.status.value,
                "reason": c.reason,
                "message": c.message,
                "lastTransitionTime": before.get("lastTransitionTime", now)
                if same and before
                else now,
                "observedGeneration": generation,
            }
        )
    return merged


KEPT_CONDITIONS = frozenset({"AutoUpdate", "ImagePulled"})
"""Conditions another controller writes (autoupdate/): kept as they are, never dropped."""


def desired_status(
    current: Mapping[str, Any],
    decision: Decision,
    generation: int,
    now: str,
    figures: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The status to write: state, conditions and the kind's figures replaced, others kept."""
    status = {**current, **(figures or {})}
    status["state"] = decision.state.value
    status["observedGeneration"] = generation
    old = current.get("conditions") or []
    status["conditions"] = merge_conditions(old, decision.conditions, generation, now) + [
        dict(c) for c in old if c.get("type") in KEPT_CONDITIONS
    ]
    return status


def merge_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that makes ``current`` ``desired``: a key that went is nulled, at any
    depth, or the merge would keep it (a node that left would stay in the figures' map)."""
    patch = dict(desired)
    for key, old in current.items():
        if key not in desired:
            patch[key] = None
        elif isinstance(old, Mapping) and isinstance(desired[key], Mapping):
            patch[key] = merge_patch(old, desired[key])
    return patch


async def patch_status(
    kube: Kube, kind: Kind, cr: Mapping[str, Any], status: dict[str, Any]
) -> dict[str, Any] | None:
    """Write the status if it differs from the CR's; returns the CR as written, if it was."""
    if status == (cr.get("status") or {}):
        return None
    meta = cr["metadata"]
    path = kube.custom_path(kind, meta.get("namespace"), meta["name"]) + "/status"
    # A merge patch replaces lists whole, so conditions that no longer apply disappear.
    return await kube.merge_patch(path, {"status": merge_patch(cr.get("status") or {}, status)})


async def post_event(
    kube: Kube, kind: Kind, cr: Mapping[str, Any], reason: str, message: str, warning: bool = False
) -> None:
    """Best effort: an Event that cannot be written (say, a namespace being deleted) is logged,
    never allowed to fail the reconcile that already did its work."""
    try:
        await _create_event(kube, kind, cr, reason, message, warning)
    except ApiException as e:
        log.info("event %s for %s not written: %s", reason, cr["metadata"]["name"], e.reason)


async def _create_event(
    kube: Kube, kind: Kind, cr: Mapping[str, Any], reason: str, message: str, warning: bool
) -> None:
    meta = cr["metadata"]
    namespace = meta.get("namespace") or "default"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    event = {
        "metadata": {"generateName": f"{meta['name']}.", "namespace": namespace},
        "involvedObject": {
            "apiVersion": kind.api_version,
            "kind": kind.kind,
            "name": meta["name"],
            "namespace": meta.get("namespace"),
            "uid": meta["uid"],
            "resourceVersion": meta.get("resourceVersion"),
        },
        "reason": reason,
        "message": message[:1024],
        "type": "Warning" if warning else "Normal",
        "source": {"component": "enclave-operator"},
        "reportingComponent": "enclave-operator",
        "reportingInstance": "enclave-operator",
        "firstTimestamp": now[:19] + "Z",
        "lastTimestamp": now[:19] + "Z",
        "count": 1,
    }
    await kube.create(f"/api/v1/namespaces/{namespace}/events", event)
