"""Observations for the decision tests: an all-healthy one, and builders that change one fact.

The all-healthy observation is a LAS whose release is deployed and whose two owned objects (a
DaemonSet and a Service) exist, are healthy and are owned by the CR alone.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from enclave_operator.helm.releases import ObjectRef, Release, ReleaseStatus
from enclave_operator.reconcile.decide import decide
from enclave_operator.reconcile.model import (
    Condition,
    Observation,
    ObservedObject,
    ObservedRelease,
    OwnerRef,
)

UID = "cr-uid"
DS = ObjectRef("apps/v1", "DaemonSet", "ns", "las-x")
SVC = ObjectRef("v1", "Service", "ns", "las-x")
ME = OwnerRef("base.enclave.dev/v1beta1", "LAS", "x", UID, controller=True)
OTHER = OwnerRef("v1", "ConfigMap", "intruder", "other-uid")


def record(
    status: ReleaseStatus = ReleaseStatus.DEPLOYED, description: str = "", revision: int = 1
) -> Release:
    return Release("las-x", "ns", revision, status, description, "", "0.1.0")


def obj(ref: ObjectRef = DS, **changes: Any) -> ObservedObject:
    """A present, healthy owned object of the CR alone."""
    healthy = ObservedObject(ref, present=True, owners=(ME,), healthy=True, health_message="ok")
    return replace(healthy, **changes)


def release(**changes: Any) -> ObservedRelease:
    return replace(ObservedRelease("las-x", "ns", record=record()), **changes)


def healthy(**changes: Any) -> Observation:
    obs = Observation(
        uid=UID,
        generation=1,
        deleting=False,
        has_finalizer=True,
        release=release(),
        objects=(obj(DS), obj(SVC)),
    )
    return replace(obs, **changes)


def conditions(obs: Observation) -> dict[str, Condition]:
    """The decision's conditions by type."""
    return {c.type: c for c in decide(obs).conditions}
