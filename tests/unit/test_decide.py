"""The decision table, row by row against the spec's condition table, and its priorities."""

from __future__ import annotations

from dataclasses import replace

import pytest

from enclave_operator.helm.releases import ObjectRef, Release, ReleaseStatus
from enclave_operator.reconcile.decide import decide, state_of
from enclave_operator.reconcile.model import (
    ActionKind,
    Condition,
    Observation,
    ObservedObject,
    ObservedRelease,
    OwnerRef,
    State,
    Status,
)

UID = "cr-uid"
DS = ObjectRef("apps/v1", "DaemonSet", "ns", "las-x")
SVC = ObjectRef("v1", "Service", "ns", "las-x")
ME = OwnerRef("base.enclave.dev/v1beta1", "LAS", "x", UID, controller=True)
OTHER = OwnerRef("v1", "ConfigMap", "intruder", "other-uid")


def record(status: ReleaseStatus = ReleaseStatus.DEPLOYED, description: str = "") -> Release:
    return Release("las-x", "ns", 1, status, description, "", "0.1.0")


def healthy_object(ref: ObjectRef = DS, **changes: object) -> ObservedObject:
    obj = ObservedObject(ref, present=True, owners=(ME,), healthy=True, health_message="ok")
    return replace(obj, **changes)  # type: ignore[arg-type]


def healthy(**changes: object) -> Observation:
    obs = Observation(
        uid=UID,
        generation=1,
        deleting=False,
        has_finalizer=True,
        release=ObservedRelease("las-x", "ns", record=record()),
        objects=(healthy_object(), healthy_object(SVC)),
    )
    return replace(obs, **changes)  # type: ignore[arg-type]


def release(**changes: object) -> ObservedRelease:
    return replace(ObservedRelease("las-x", "ns", record=record()), **changes)  # type: ignore[arg-type]


def cond(obs: Observation, type_: str) -> Condition:
    return next(c for c in decide(obs).conditions if c.type == type_)


def action(obs: Observation) -> ActionKind | None:
    a = decide(obs).action
    return a.kind if a else None


def test_all_true_is_healthy_and_idle():
    d = decide(healthy())
    assert d.state is State.HEALTHY
    assert d.action is None
    assert {c.type for c in d.conditions} >= {
        "IsHealthy",
        "DeletionPresent",
        "FinalizerPresent",
        "ReleaseExists",
        "ReleaseSteady",
        "ReleaseFailed",
        "ReleaseDeployed",
        "AtLeastOneOwnedObjectPresent",
        "AllOwnedObjectsPresent",
        "daemonset.las-x/OwnedObjectHealthy",
        "daemonset.las-x/OwnedObjectPresent",
        "daemonset.las-x/OwnedObjectDeletionPresent",
        "daemonset.las-x/OwnedObjectValidOwners",
        "daemonset.las-x/OwnsOwnedObject",
        "daemonset.las-x/SoleOwner",
        "daemonset.las-x/EqualSpecs",
        "service.las-x/EqualSpecs",
    }
    assert len(d.conditions) == 9 + 2 * 7


# --- CR rows -------------------------------------------------------------------------------


def test_is_healthy_false_is_unhealthy():
    obs = healthy(objects=(healthy_object(healthy=False, health_message="0/3 available"),))
    assert cond(obs, "IsHealthy").status is Status.FALSE
    assert "0/3 available" in cond(obs, "IsHealthy").message
    assert decide(obs).state is State.UNHEALTHY


def test_is_healthy_unknown_is_pending():
    obs = healthy(objects_error="forbidden")
    assert cond(obs, "IsHealthy").status is Status.UNKNOWN
    assert decide(obs).state is State.PENDING


def test_deletion_present_true_uninstalls_release_first():
    obs = healthy(deleting=True)
    assert cond(obs, "DeletionPresent").status is Status.TRUE
    assert decide(obs).state is State.PENDING
    assert action(obs) is ActionKind.UNINSTALL_DELETED


def test_deletion_present_true_without_release_removes_finalizer():
    obs = healthy(deleting=True, release=release(record=None), objects=())
    assert action(obs) is ActionKind.REMOVE_FINALIZER
    assert decide(obs).state is State.PENDING


def test_deletion_done_without_finalizer_does_nothing():
    obs = healthy(deleting=True, has_finalizer=False, release=release(record=None), objects=())
    assert action(obs) is None


def test_finalizer_present_false_adds_finalizer():
    obs = healthy(has_finalizer=False)
    assert cond(obs, "FinalizerPresent").status is Status.FALSE
    assert decide(obs).state is State.PENDING
    assert action(obs) is ActionKind.ADD_FINALIZER


def test_release_exists_false_installs():
    obs = healthy(release=release(record=None), objects=())
    assert cond(obs, "ReleaseExists").status is Status.FALSE
    assert decide(obs).state is State.PENDING
    assert action(obs) is ActionKind.INSTALL


def test_release_exists_unknown_is_pending_and_does_not_touch_helm():
    obs = healthy(release=release(record=None, error="secrets is forbidden"), objects=())
    assert cond(obs, "ReleaseExists").status is Status.UNKNOWN
    assert decide(obs).state is State.PENDING
    assert action(obs) is None


@pytest.mark.parametrize(
    "status",
    [ReleaseStatus.PENDING_INSTALL, ReleaseStatus.PENDING_UPGRADE, ReleaseStatus.UNINSTALLING],
)
def test_release_steady_false_waits(status):
    obs = healthy(release=release(record=record(status)))
    assert cond(obs, "ReleaseSteady").status is Status.FALSE
    assert decide(obs).state is State.PENDING
    assert action(obs) is ActionKind.WAIT


def test_stalled_pending_release_counts_as_failed_and_is_uninstalled():
    obs = healthy(release=release(record=record(ReleaseStatus.PENDING_INSTALL), stalled=True))
    assert cond(obs, "ReleaseSteady").status is Status.TRUE
    assert cond(obs, "ReleaseFailed").status is Status.TRUE
    assert action(obs) is ActionKind.UNINSTALL_FAILED


def test_release_failed_true_uninstalls_and_reports_helms_error():
    obs = healthy(release=release(record=record(ReleaseStatus.FAILED, "Service exists")))
    assert cond(obs, "ReleaseFailed").status is Status.TRUE
    assert cond(obs, "ReleaseFailed").message == "Service exists"
    assert cond(obs, "IsHealthy").status is Status.FALSE
    assert decide(obs).state is State.UNHEALTHY
    assert action(obs) is ActionKind.UNINSTALL_FAILED


def test_failed_install_without_record_reports_and_installs_again():
    obs = healthy(release=release(record=None, last_failure="chart rejected: x"), objects=())
    assert cond(obs, "ReleaseFailed").status is Status.TRUE
    assert "chart rejected: x" in cond(obs, "ReleaseExists").message
    assert decide(obs).state is State.UNHEALTHY
    assert action(obs) is ActionKind.INSTALL


@pytest.mark.parametrize("status", [ReleaseStatus.SUPERSEDED, ReleaseStatus.UNKNOWN])
def test_release_deployed_false_upgrades(status):
    obs = healthy(release=release(record=record(status)))
    assert cond(obs, "ReleaseDeployed").status is Status.FALSE
    assert decide(obs).state is State.PENDING
    assert action(obs) is ActionKind.UPGRADE


def test_changed_spec_upgrades():
    obs = healthy(release=release(outdated=True))
    assert cond(obs, "ReleaseDeployed").reason == "SpecChanged"
    assert action(obs) is ActionKind.UPGRADE


def test_at_least_one_owned_object_present_false_is_pending():
    absent = (ObservedObject(DS), ObservedObject(SVC))
    obs = healthy(objects=absent)
    assert cond(obs, "AtLeastOneOwnedObjectPresent").status is Status.FALSE
    assert cond(obs, "AllOwnedObjectsPresent").status is Status.FALSE
    assert decide(obs).state is State.PENDING


def test_all_owned_objects_present_unknown_on_read_error():
    obs = healthy(objects=(healthy_object(), ObservedObject(SVC, error="timeout")))
    assert cond(obs, "AtLeastOneOwnedObjectPresent").status is Status.TRUE
    assert cond(obs, "AllOwnedObjectsPresent").status is Status.UNKNOWN
    assert decide(obs).state is State.PENDING


# --- owned-object rows -----------------------------------------------------------------------


def test_owned_object_healthy_false_is_unhealthy():
    obs = healthy(objects=(healthy_object(healthy=False, health_message="deadline exceeded"),))
    assert cond(obs, "daemonset.las-x/OwnedObjectHealthy").status is Status.FALSE
    assert decide(obs).state is State.UNHEALTHY
    assert action(obs) is None


def test_owned_object_healthy_unknown_while_rolling_out_is_pending():
    obs = healthy(objects=(healthy_object(healthy=None, health_message="1/3 updated"),))
    assert cond(obs, "daemonset.las-x/OwnedObjectHealthy").status is Status.UNKNOWN
    assert decide(obs).state is State.PENDING


def test_owned_object_present_false_upgrades_to_recreate_it():
    obs = healthy(objects=(healthy_object(), ObservedObject(SVC)))
    assert cond(obs, "service.las-x/OwnedObjectPresent").status is Status.FALSE
    assert cond(obs, "service.las-x/EqualSpecs").status is Status.FALSE
    assert decide(obs).state is State.PENDING
    assert action(obs) is ActionKind.UPGRADE


def test_owned_object_present_unknown_on_read_error():
    obs = healthy(objects=(ObservedObject(DS, error="500"),))
    assert all(
        c.status is Status.UNKNOWN for c in decide(obs).conditions if c.type.startswith("daemonset")
    )
    assert action(obs) is None


def test_owned_object_deletion_present_true_is_pending_without_action():
    obs = healthy(objects=(healthy_object(deleting=True),))
    assert cond(obs, "daemonset.las-x/OwnedObjectDeletionPresent").status is Status.TRUE
    assert decide(obs).state is State.PENDING
    assert action(obs) is None


def test_owned_object_valid_owners_false_removes_all_owners():
    obs = healthy(objects=(healthy_object(owners=(ME, OTHER)),))
    assert cond(obs, "daemonset.las-x/OwnedObjectValidOwners").status is Status.FALSE
    assert cond(obs, "daemonset.las-x/SoleOwner").status is Status.FALSE
    assert decide(obs).state is State.PENDING
    a = decide(obs).action
    assert a is not None
    assert (a.kind, a.target) == (ActionKind.REMOVE_OWNERS, DS)


def test_owns_owned_object_false_sets_the_cr_as_owner():
    obs = healthy(objects=(healthy_object(owners=()),))
    assert cond(obs, "daemonset.las-x/OwnsOwnedObject").status is Status.FALSE
    assert cond(obs, "daemonset.las-x/OwnedObjectValidOwners").status is Status.TRUE
    assert decide(obs).state is State.PENDING
    a = decide(obs).action
    assert a is not None
    assert (a.kind, a.target) == (ActionKind.SET_OWNER, DS)


def test_sole_owner_false_with_one_foreign_owner_sets_the_cr():
    obs = healthy(objects=(healthy_object(owners=(OTHER,)),))
    assert cond(obs, "daemonset.las-x/SoleOwner").status is Status.FALSE
    assert action(obs) is ActionKind.SET_OWNER


def test_equal_specs_false_upgrades_and_names_the_field():
    obs = healthy(objects=(healthy_object(contradictions=('image is "b", spec says "a"',)),))
    c = cond(obs, "daemonset.las-x/EqualSpecs")
    assert c.status is Status.FALSE
    assert "image" in c.message
    assert decide(obs).state is State.PENDING
    assert action(obs) is ActionKind.UPGRADE


# --- priorities ------------------------------------------------------------------------------


def test_priority_order_from_everything_wrong_downwards():
    broken = healthy(
        deleting=False,
        has_finalizer=False,
        release=release(record=record(ReleaseStatus.FAILED, "boom")),
        objects=(healthy_object(owners=(ME, OTHER)), healthy_object(SVC, owners=())),
    )
    seen = []
    obs = broken
    fixes = {
        ActionKind.ADD_FINALIZER: lambda o: replace(o, has_finalizer=True),
        ActionKind.REMOVE_OWNERS: lambda o: replace(
            o, objects=(healthy_object(owners=()), o.objects[1])
        ),
        ActionKind.SET_OWNER: lambda o: replace(
            o,
            objects=(o.objects[0], healthy_object(SVC))
            if o.objects[0].owners == (ME,)
            else (healthy_object(), o.objects[1]),
        ),
        ActionKind.UNINSTALL_FAILED: lambda o: replace(o, release=release(record=None), objects=()),
        ActionKind.INSTALL: lambda o: replace(o, release=release(), objects=(healthy_object(),)),
    }
    while (a := decide(obs).action) is not None:
        seen.append(a.kind)
        obs = fixes[a.kind](obs)
    assert seen == [
        ActionKind.ADD_FINALIZER,
        ActionKind.REMOVE_OWNERS,
        ActionKind.SET_OWNER,
        ActionKind.SET_OWNER,
        ActionKind.UNINSTALL_FAILED,
        ActionKind.INSTALL,
    ]
    assert decide(obs).state is State.HEALTHY


def test_deletion_outranks_every_other_repair():
    obs = healthy(deleting=True, has_finalizer=True, objects=(healthy_object(owners=(OTHER,)),))
    assert action(obs) is ActionKind.UNINSTALL_DELETED


def test_wait_outranks_uninstall_and_upgrade():
    pending = record(ReleaseStatus.PENDING_UPGRADE, "")
    obs = healthy(release=release(record=pending, outdated=True))
    assert action(obs) is ActionKind.WAIT


def test_unsynced_cache_only_waits():
    obs = healthy(has_finalizer=False, synced=False)
    assert action(obs) is ActionKind.WAIT


def test_state_rules_in_order():
    u = Condition("ReleaseSteady", Status.UNKNOWN, "x")
    f = Condition("IsHealthy", Status.FALSE, "x")
    p = Condition("FinalizerPresent", Status.FALSE, "x")
    ok = Condition("IsHealthy", Status.TRUE, "x")
    assert state_of([u, f]) is State.PENDING
    assert state_of([f, p]) is State.UNHEALTHY
    assert state_of([ok, p]) is State.PENDING
    assert state_of([ok]) is State.HEALTHY
