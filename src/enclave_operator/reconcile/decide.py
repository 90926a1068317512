"""From an observation to conditions, a state and the one next action. Pure, like kopf's cause
detection: every branch is a row of the spec's condition table, tried in priority order."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from enclave_operator.figures.certificate import RENEWABLE_REASON
from enclave_operator.reconcile.conditions import (
    PENDING_WHEN,
    UNHEALTHY_WHEN,
    base_type,
    cr_conditions,
    drift_persists,
    oo_conditions,
)
from enclave_operator.reconcile.model import (
    Action,
    ActionKind,
    Condition,
    Decision,
    Observation,
    State,
    Status,
)


def decide(obs: Observation) -> Decision:
    oo = tuple(c for obj in obs.objects for c in oo_conditions(obj, obs.uid))
    drift = drift_of(oo)
    conditions = (*cr_conditions(obs), *drift_persists(obs, drift), *oo)
    return Decision(conditions, state_of(conditions), next_action(obs, conditions), drift)


def drift_of(conditions: Sequence[Condition]) -> tuple[str, ...]:
    """What drifted, as the EqualSpecs conditions say it: the same text means the same drift."""
    return tuple(
        f"{c.type.rpartition('/')[0]}: {c.message}"
        for c in conditions
        if base_type(c.type) == "EqualSpecs" and c.status is Status.FALSE
    )


def state_of(conditions: Sequence[Condition]) -> State:
    """Unknown anywhere → PENDING; an UNHEALTHY row → UNHEALTHY; a PENDING row → PENDING."""
    if any(c.status is Status.UNKNOWN for c in conditions):
        return State.PENDING
    if any(UNHEALTHY_WHEN.get(base_type(c.type)) is c.status for c in conditions):
        return State.UNHEALTHY
    if any(PENDING_WHEN.get(base_type(c.type)) is c.status for c in conditions):
        return State.PENDING
    return State.HEALTHY


Rule = Callable[[Observation, dict[str, Condition]], Action | None]


def next_action(obs: Observation, conditions: Sequence[Condition]) -> Action | None:
    """The highest-priority applicable repair; None when nothing is to be done."""
    if not obs.synced:
        return Action(ActionKind.WAIT, "waiting for the watches to show the last change")
    by_type = {c.type: c for c in conditions}
    for rule in _RULES:
        if action := rule(obs, by_type):
            return action
    return None


def _is(by_type: dict[str, Condition], type_: str, status: Status) -> bool:
    cond = by_type.get(type_)
    return cond is not None and cond.status is status


def _uninstall_deleted(obs: Observation, c: dict[str, Condition]) -> Action | None:
    if obs.deleting and _is(c, "ReleaseExists", Status.TRUE):
        return Action(ActionKind.UNINSTALL_DELETED, "the CR is being deleted")
    return None


def _settle_kept(obs: Observation, c: dict[str, Condition]) -> Action | None:
    """Once the release is gone, what Helm kept goes too if the spec says so; otherwise the CR
    stops owning it, or the garbage collector would delete it with the CR."""
    if not (obs.deleting and _is(c, "ReleaseExists", Status.FALSE)):
        return None
    for obj in obs.kept:
        if not obj.present or obj.deleting:
            continue
        if obs.delete_kept:
            return Action(ActionKind.DELETE_KEPT, "the spec asks to delete it", obj.ref)
        if any(o.uid == obs.uid for o in obj.owners):
            return Action(ActionKind.DISOWN_KEPT, "kept after the CR is deleted", obj.ref)
    return None


def _remove_finalizer(obs: Observation, c: dict[str, Condition]) -> Action | None:
    if obs.deleting and obs.has_finalizer and _is(c, "ReleaseExists", Status.FALSE):
        return Action(ActionKind.REMOVE_FINALIZER, "the release is gone")
    return None


def _add_finalizer(obs: Observation, c: dict[str, Condition]) -> Action | None:
    if not obs.deleting and not obs.has_finalizer:
        return Action(ActionKind.ADD_FINALIZER, "the CR has no finalizer")
    return None


def _remove_owners(obs: Observation, c: dict[str, Condition]) -> Action | None:
    for obj in obs.objects:
        if not obs.deleting and obj.present and not obj.deleting and len(obj.owners) > 1:
            return Action(ActionKind.REMOVE_OWNERS, f"{len(obj.owners)} owners", obj.ref)
    return None


def _set_owner(obs: Observation, c: dict[str, Condition]) -> Action | None:
    for obj in obs.objects:
        owned = any(o.uid == obs.uid for o in obj.owners)
        if not obs.deleting and obj.present and not obj.deleting and not owned:
            return Action(ActionKind.SET_OWNER, "the CR does not own it", obj.ref)
    return None


def _install(obs: Observation, c: dict[str, Condition]) -> Action | None:
    if not obs.deleting and _is(c, "ReleaseExists", Status.FALSE):
        return Action(ActionKind.INSTALL, "no release")
    return None


def _wait(obs: Observation, c: dict[str, Condition]) -> Action | None:
    if _is(c, "ReleaseSteady", Status.FALSE):
        return Action(ActionKind.WAIT, c["ReleaseSteady"].message)
    return None


def _repair_failed(obs: Observation, c: dict[str, Condition]) -> Action | None:
    """Row 8 for a failed or abandoned release: back to the revision that worked when there
    is one (its objects and data stay), uninstall only when there is none."""
    record = obs.release.record
    if obs.deleting or not _is(c, "ReleaseFailed", Status.TRUE) or record is None:
        return None
    message = c["ReleaseFailed"].message
    if (good := obs.release.last_good) is not None:
        reason = f"{message}; rolling back to revision {good}"
        return Action(ActionKind.ROLLBACK, reason, rollback=(record.revision, good))
    return Action(ActionKind.UNINSTALL_FAILED, message)


def _upgrade(obs: Observation, c: dict[str, Condition]) -> Action | None:
    if obs.deleting or not _is(c, "ReleaseExists", Status.TRUE):
        return None
    if _is(c, "ReleaseDeployed", Status.FALSE):  # with a release, it always says why
        return Action(ActionKind.UPGRADE, c["ReleaseDeployed"].message)
    drifted = [
        t for t, cond in c.items() if base_type(t) == "EqualSpecs" and cond.status is Status.FALSE
    ]
    if drifted and not _is(c, "DriftPersists", Status.TRUE):
        drift = drift_of([c[t] for t in drifted])
        return Action(ActionKind.UPGRADE, "; ".join(c[t].message for t in drifted), drift=drift)
    return None


def _renew_certificate(obs: Observation, c: dict[str, Condition]) -> Action | None:
    """Last: a certificate due, whose CA is at hand (the figures say Renewing)."""
    cert = c.get("CertificateValid")
    if obs.deleting or cert is None or cert.reason != RENEWABLE_REASON:
        return None
    return Action(ActionKind.RENEW_CERTIFICATE, cert.message)


_RULES: tuple[Rule, ...] = (
    _uninstall_deleted,
    _settle_kept,
    _remove_finalizer,
    _add_finalizer,
    _remove_owners,
    _set_owner,
    _install,
    _wait,
    _repair_failed,
    _upgrade,
    _renew_certificate,
)
