"""The spec's condition table, computed from an observation. Pure."""

from __future__ import annotations

from collections.abc import Iterator

from enclave_operator.helm.releases import ObjectRef, ReleaseStatus
from enclave_operator.reconcile.model import (
    Condition,
    Observation,
    ObservedObject,
    ObservedRelease,
    Status,
)

T, F, U = Status.TRUE, Status.FALSE, Status.UNKNOWN

# Values that force UNHEALTHY, per condition type; they outrank the PENDING ones below.
# The spec's column says PENDING for ReleaseFailed=True, but a failed release does not heal on
# its own (Helm never retries it, and the operator's reinstall fails the same way until someone
# removes the cause), and the spec's IsHealthy is False for "problems being deployed": UNHEALTHY.
# DriftPersists=True (not a row of the spec's table): upgrades keep leaving the same drift
# behind, so the operator stopped making revisions and someone has to find what fights it.
UNHEALTHY_WHEN: dict[str, Status] = {
    "IsHealthy": F,
    "OwnedObjectHealthy": F,
    "ReleaseFailed": T,
    "DriftPersists": T,
}
# Values that force PENDING, per condition type (the "Resulting CR State" column). It also
# tells `enclavectl status` each condition's healthy value, hence ReleaseFailed's entry.
PENDING_WHEN: dict[str, Status] = {
    "DeletionPresent": T,
    "FinalizerPresent": F,
    "ReleaseExists": F,
    "ReleaseSteady": F,
    "ReleaseFailed": T,
    "ReleaseDeployed": F,
    "AtLeastOneOwnedObjectPresent": F,
    "AllOwnedObjectsPresent": F,
    "OwnedObjectPresent": F,
    "OwnedObjectDeletionPresent": T,
    "OwnedObjectValidOwners": F,
    "OwnsOwnedObject": F,
    "SoleOwner": F,
    "EqualSpecs": F,
    "DriftPersists": T,
}
MAX_DRIFT_UPGRADES = 3
"""Upgrades in a row that may leave the same drift behind before the operator stops upgrading
for it (the worker spaces them exponentially)."""


def oo_type(ref: ObjectRef, base: str) -> str:
    """An owned object's condition type: a qualified name `<kind>.<name>/<Type>`."""
    return f"{ref.kind.lower()}.{ref.name}/{base}"


def base_type(condition_type: str) -> str:
    """The type without an owned object's `<kind>.<name>/` prefix."""
    return condition_type.rpartition("/")[2]


def cr_conditions(obs: Observation) -> list[Condition]:
    rel = obs.release
    return [
        _is_healthy(obs),
        Condition(
            "DeletionPresent",
            Status.of(obs.deleting),
            "Deleting" if obs.deleting else "NotDeleting",
        ),
        Condition(
            "FinalizerPresent",
            Status.of(obs.has_finalizer),
            "Finalizer" if obs.has_finalizer else "NoFinalizer",
        ),
        _release_exists(rel),
        _release_steady(rel),
        _release_failed(rel),
        _release_deployed(rel),
        *_objects_present(obs),
        *obs.figures,
    ]


def drift_persists(obs: Observation, drift: tuple[str, ...]) -> list[Condition]:
    """Present only while something drifted. ``drift``: what the EqualSpecs conditions say
    now; the observation says how many upgrades in a row already left exactly that behind."""
    if not drift:
        return []
    repeats = obs.drift_repeats if drift == obs.repeated_drift else 0
    if repeats >= MAX_DRIFT_UPGRADES:
        message = (
            f"{repeats} upgrades in a row left the same drift behind, so no further upgrade is"
            f" made for it until it or the spec changes: {'; '.join(drift)}"
        )
        return [Condition("DriftPersists", T, "UpgradesDidNotRepair", message)]
    message = f"{repeats} upgrade(s) so far left this drift behind"
    return [Condition("DriftPersists", F, "Repairing", message)]


def _release_exists(rel: ObservedRelease) -> Condition:
    if rel.error:
        return Condition("ReleaseExists", U, "ReadError", rel.error)
    if rel.record is None:
        why = f"; the last install failed: {rel.last_failure}" if rel.last_failure else ""
        return Condition(
            "ReleaseExists", F, "NotFound", f"no release {rel.namespace}/{rel.name}{why}"
        )
    return Condition(
        "ReleaseExists",
        T,
        "Found",
        f"release {rel.namespace}/{rel.name} revision {rel.record.revision}",
    )


def _release_steady(rel: ObservedRelease) -> Condition:
    if rel.error:
        return Condition("ReleaseSteady", U, "ReadError", rel.error)
    if rel.record is None:
        return Condition("ReleaseSteady", T, "NoRelease", "no release to change")
    status = rel.record.status
    if rel.stalled:
        return Condition(
            "ReleaseSteady", T, "Stalled", f"{status} with no helm process working on it"
        )
    if not status.steady:
        return Condition("ReleaseSteady", F, "InTransition", f"release is {status}")
    return Condition("ReleaseSteady", T, "Steady", f"release is {status}")


def _release_failed(rel: ObservedRelease) -> Condition:
    if rel.error:
        return Condition("ReleaseFailed", U, "ReadError", rel.error)
    record = rel.record
    if record is not None and record.status is ReleaseStatus.FAILED:
        return Condition("ReleaseFailed", T, "Failed", record.description)
    if record is not None and rel.stalled:
        return Condition(
            "ReleaseFailed", T, "Stalled", f"left {record.status} by an interrupted helm run"
        )
    if record is None and rel.last_failure:
        return Condition("ReleaseFailed", T, "InstallFailed", rel.last_failure)
    return Condition("ReleaseFailed", F, "NotFailed")


def _release_deployed(rel: ObservedRelease) -> Condition:
    if rel.error:
        return Condition("ReleaseDeployed", U, "ReadError", rel.error)
    if rel.record is None:
        return Condition("ReleaseDeployed", F, "NoRelease")
    if rel.record.status is not ReleaseStatus.DEPLOYED:
        return Condition("ReleaseDeployed", F, "NotDeployed", f"release is {rel.record.status}")
    if rel.outdated:
        return Condition(
            "ReleaseDeployed", F, "SpecChanged", "the deployed revision predates the current spec"
        )
    return Condition("ReleaseDeployed", T, "Deployed", f"revision {rel.record.revision}")


def _read_error(obs: Observation) -> str | None:
    errors = [o.error for o in obs.objects if o.error]
    return obs.objects_error or obs.release.error or (errors[0] if errors else None)


def _objects_present(obs: Observation) -> Iterator[Condition]:
    present = [o for o in obs.objects if o.present]
    missing = [o.ref.description for o in obs.objects if not o.present and not o.error]
    error = _read_error(obs)
    if present:
        yield Condition("AtLeastOneOwnedObjectPresent", T, "Present", f"{len(present)} present")
    elif error:
        yield Condition("AtLeastOneOwnedObjectPresent", U, "ReadError", error)
    else:
        yield Condition("AtLeastOneOwnedObjectPresent", F, "NonePresent", "no owned object found")
    if error:
        yield Condition("AllOwnedObjectsPresent", U, "ReadError", error)
    elif obs.release.record is None:
        yield Condition("AllOwnedObjectsPresent", F, "NoRelease", "no release, so no owned objects")
    elif missing:
        yield Condition("AllOwnedObjectsPresent", F, "Missing", ", ".join(missing))
    else:
        yield Condition("AllOwnedObjectsPresent", T, "AllPresent", f"{len(present)} owned objects")


def _is_healthy(obs: Observation) -> Condition:
    rel = obs.release
    notes = "; ".join(obs.notes)
    if error := obs.objects_error or rel.error:
        return Condition("IsHealthy", U, "ReadError", error)
    failed = _release_failed(rel)
    if failed.status is T:
        return Condition("IsHealthy", F, "ReleaseFailed", failed.message)
    sick = [
        f"{o.ref.description}: {o.health_message}"
        for o in obs.objects
        if o.present and o.healthy is False
    ]
    if sick:
        return Condition("IsHealthy", F, "OwnedObjectsUnhealthy", "; ".join(sick))
    if rel.record is None:
        return Condition("IsHealthy", U, "NotInstalled", "the release is not installed yet")
    if obs.alerts:
        return Condition("IsHealthy", F, "Alert", "; ".join(obs.alerts))
    if obs.starting:
        return Condition("IsHealthy", U, "Starting", "pods starting on " + ", ".join(obs.starting))
    waiting = [
        o.ref.description for o in obs.objects if o.error or not o.present or o.healthy is None
    ]
    if waiting or rel.record.status is not ReleaseStatus.DEPLOYED:
        return Condition(
            "IsHealthy", U, "Progressing", "waiting for " + (", ".join(waiting) or "the release")
        )
    return Condition("IsHealthy", T, "Healthy", notes or "all owned objects are healthy")


def oo_conditions(obj: ObservedObject, cr_uid: str) -> list[Condition]:
    ref = obj.ref

    def c(base: str, status: Status, reason: str, message: str = "") -> Condition:
        return Condition(oo_type(ref, base), status, reason, message)

    if obj.error:
        return [c(t, U, "ReadError", obj.error) for t in _OO_TYPES]
    if not obj.present:
        return [
            c("OwnedObjectHealthy", U, "Absent", "the object does not exist"),
            c("OwnedObjectPresent", F, "Absent", "the object does not exist"),
            c("OwnedObjectDeletionPresent", F, "Absent"),
            c("OwnedObjectValidOwners", U, "Absent"),
            c("OwnsOwnedObject", U, "Absent"),
            c("SoleOwner", U, "Absent"),
            c("EqualSpecs", F, "Absent", "the spec needs this object and it is missing"),
        ]
    owners = obj.owners
    ours = [o for o in owners if o.uid == cr_uid]
    owner_names = ", ".join(f"{o.kind}/{o.name}" for o in owners) or "none"
    if obj.deleting:
        equal = c("EqualSpecs", U, "Deleting", "the object is being deleted")
    elif obj.contradictions:
        equal = c("EqualSpecs", F, "Contradicts", "; ".join(obj.contradictions))
    else:
        equal = c("EqualSpecs", T, "Equal")
    return [
        c(
            "OwnedObjectHealthy",
            Status.of(obj.healthy),
            _health_reason(obj.healthy),
            obj.health_message,
        ),
        c("OwnedObjectPresent", T, "Present"),
        c(
            "OwnedObjectDeletionPresent",
            Status.of(obj.deleting),
            "Deleting" if obj.deleting else "NotDeleting",
        ),
        c("OwnedObjectValidOwners", Status.of(len(owners) <= 1), "Owners", owner_names),
        c("OwnsOwnedObject", Status.of(bool(ours)), "Owners", owner_names),
        c("SoleOwner", Status.of(len(owners) == 1 and bool(ours)), "Owners", owner_names),
        equal,
    ]


_OO_TYPES = (
    "OwnedObjectHealthy",
    "OwnedObjectPresent",
    "OwnedObjectDeletionPresent",
    "OwnedObjectValidOwners",
    "OwnsOwnedObject",
    "SoleOwner",
    "EqualSpecs",
)


def _health_reason(healthy: bool | None) -> str:
    return {True: "Healthy", False: "Unhealthy", None: "Progressing"}[healthy]
