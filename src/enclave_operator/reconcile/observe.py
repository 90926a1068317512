"""Turning cached cluster state into an Observation. No I/O: the worker gathers the inputs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from enclave_operator.api.kinds import Kind
from enclave_operator.charts.drift import contradictions
from enclave_operator.helm.releases import ObjectRef, Release, ReleaseStatus, last_good, latest
from enclave_operator.reconcile.health import object_health
from enclave_operator.reconcile.model import (
    Condition,
    Observation,
    ObservedObject,
    ObservedRelease,
    OwnerRef,
)

FINALIZER = "enclave.dev/release"
STALL_AFTER = 30.0  # seconds a release may stay pending before it counts as abandoned

Lookup = Callable[[ObjectRef], "Mapping[str, Any] | None"]


class LookupError_(Exception):
    """Raised by a lookup when the object's kind is not watched or its read failed."""


@dataclass(frozen=True)
class Inputs:
    kind: Kind
    cr: Mapping[str, Any]
    release_name: str
    release_namespace: str
    releases: Sequence[Release]
    release_error: str | None
    lookup: Lookup
    values: Mapping[str, Any]
    chart_version: str
    last_failure: str | None = None
    synced: bool = True
    notes: tuple[str, ...] = ()
    alerts: tuple[str, ...] = ()
    starting: tuple[str, ...] = ()
    figures: tuple[Condition, ...] = ()
    now: float = 0.0
    helm_busy: bool = False  # a helm process of this operator is acting on the release now
    kept: tuple[ObjectRef, ...] = ()  # objects Helm keeps after an uninstall
    delete_kept: bool = False
    drift_repeats: int = 0
    repeated_drift: tuple[str, ...] = ()


def observe(i: Inputs) -> Observation:
    meta = i.cr["metadata"]
    record = latest(i.releases)
    release = ObservedRelease(
        name=i.release_name,
        namespace=i.release_namespace,
        record=record,
        error=i.release_error,
        stalled=not i.helm_busy and _stalled(record, i.now),
        outdated=record is not None and _outdated(record, i.values, i.chart_version),
        last_failure=i.last_failure,
        last_good=_rollback_target(record, i.releases),
    )
    deleting = bool(meta.get("deletionTimestamp"))
    objects: tuple[ObservedObject, ...] = ()
    if record is not None and i.release_error is None:
        refs = record.objects(i.release_namespace)
        objects = tuple(_observe_object(i, ref) for ref in refs)
    return Observation(
        uid=meta["uid"],
        generation=int(meta.get("generation") or 0),
        deleting=deleting,
        has_finalizer=FINALIZER in (meta.get("finalizers") or []),
        release=release,
        objects=objects,
        synced=i.synced,
        notes=i.notes,
        alerts=i.alerts,
        starting=i.starting,
        figures=i.figures,
        kept=tuple(_observe_object(i, ref) for ref in i.kept) if deleting else (),
        delete_kept=i.delete_kept,
        drift_repeats=i.drift_repeats,
        repeated_drift=i.repeated_drift,
    )


def _stalled(record: Release | None, now: float) -> bool:
    """Helm runs to completion inside one reconcile; a record still pending long after its last
    write (creation included: helm never updates a pending-install or pending-upgrade record
    before it finishes) was left by a helm process that died, e.g. with the operator."""
    if record is None or record.status.steady:
        return False
    return record.modified_at is not None and now - record.modified_at > STALL_AFTER


def _rollback_target(record: Release | None, releases: Sequence[Release]) -> int | None:
    """A failed or abandoned upgrade, or an abandoned rollback, goes back to the revision that
    worked. A rollback that failed (an object no patch can repair, such as a Service whose port
    was edited by hand) is uninstalled and installed again instead, and so is an interrupted
    uninstall: the CAS database claim is marked keep, so it survives either."""
    if record is None or record.status is ReleaseStatus.UNINSTALLING:
        return None
    if record.status is ReleaseStatus.FAILED and record.rollback_of:
        return None
    return last_good(releases)


def _outdated(record: Release, values: Mapping[str, Any], chart_version: str) -> bool:
    if record.status is not ReleaseStatus.DEPLOYED:
        return False
    return dict(record.values) != dict(values) or record.chart_version != chart_version


def _observe_object(i: Inputs, ref: ObjectRef) -> ObservedObject:
    try:
        body = i.lookup(ref)
    except LookupError_ as e:
        return ObservedObject(ref, error=str(e))
    if body is None:
        return ObservedObject(ref)
    meta = body.get("metadata") or {}
    healthy, message = object_health(body)
    return ObservedObject(
        ref,
        present=True,
        deleting=bool(meta.get("deletionTimestamp")),
        owners=tuple(
            OwnerRef(o["apiVersion"], o["kind"], o["name"], o["uid"], bool(o.get("controller")))
            for o in meta.get("ownerReferences") or []
        ),
        healthy=healthy,
        health_message=message,
        contradictions=tuple(contradictions(i.kind, i.values, body)),
    )
