"""The table's actions as decided from observations: kind, reason and target, exactly (the
reason becomes the Event's message), and the cases where a row must not act."""

from __future__ import annotations

import pytest

from enclave_operator.helm.releases import ReleaseStatus
from enclave_operator.reconcile.decide import decide
from enclave_operator.reconcile.model import Action, ActionKind, ObservedObject
from tests.unit.observations import DS, ME, OTHER, SVC, healthy, obj, record
from tests.unit.observations import release as rel

GONE = rel(record=None)  # no release record left

ACTS = [
    (
        healthy(synced=False),
        Action(ActionKind.WAIT, "waiting for the watches to show the last change"),
    ),
    (healthy(deleting=True), Action(ActionKind.UNINSTALL_DELETED, "the CR is being deleted")),
    (
        healthy(deleting=True, release=GONE, objects=()),
        Action(ActionKind.REMOVE_FINALIZER, "the release is gone"),
    ),
    (healthy(has_finalizer=False), Action(ActionKind.ADD_FINALIZER, "the CR has no finalizer")),
    (
        healthy(objects=(obj(DS), obj(SVC, owners=(ME, OTHER)))),
        Action(ActionKind.REMOVE_OWNERS, "2 owners", SVC),
    ),
    (
        healthy(objects=(obj(DS), obj(SVC, owners=(OTHER,)))),
        Action(ActionKind.SET_OWNER, "the CR does not own it", SVC),
    ),
    (healthy(release=GONE, objects=()), Action(ActionKind.INSTALL, "no release")),
    (
        healthy(release=rel(record=record(ReleaseStatus.PENDING_UPGRADE))),
        Action(ActionKind.WAIT, "release is pending-upgrade"),
    ),
    (
        healthy(release=rel(record=record(ReleaseStatus.FAILED, "it broke"))),
        Action(ActionKind.UNINSTALL_FAILED, "it broke"),
    ),
    (
        healthy(release=rel(record=record(ReleaseStatus.SUPERSEDED))),
        Action(ActionKind.UPGRADE, "release is superseded"),
    ),
    (
        healthy(release=rel(outdated=True)),
        Action(ActionKind.UPGRADE, "the deployed revision predates the current spec"),
    ),
    (
        healthy(objects=(obj(DS, contradictions=("c1",)), ObservedObject(SVC))),
        Action(
            ActionKind.UPGRADE,
            "c1; the spec needs this object and it is missing",
            drift=(
                "daemonset.las-x: c1",
                "service.las-x: the spec needs this object and it is missing",
            ),
        ),
    ),
]


@pytest.mark.parametrize(("obs", "want"), ACTS, ids=[a.kind.name for _, a in ACTS])
def test_action(obs, want):
    assert decide(obs).action == want


NOTHING = {
    "all healthy": healthy(),
    # The release cannot be read: neither helm nor the finalizer is touched.
    "release unreadable, object drifted": healthy(
        release=rel(error="boom"), objects=(obj(contradictions=("c",)),)
    ),
    "deleting, release unreadable": healthy(deleting=True, release=rel(error="boom")),
    # Deleted and released: a leftover object is not the CR's business any more.
    "deleting done, leftover shared": healthy(
        deleting=True, has_finalizer=False, release=GONE, objects=(obj(owners=(ME, OTHER)),)
    ),
    "deleting done, leftover foreign": healthy(
        deleting=True, has_finalizer=False, release=GONE, objects=(obj(owners=(OTHER,)),)
    ),
    "deleting done, install failed before": healthy(
        deleting=True, has_finalizer=False, release=rel(record=None, last_failure="x"), objects=()
    ),
    # An object on its way out: neither its owners nor its spec are repaired.
    "object deleting, shared": healthy(objects=(obj(deleting=True, owners=(ME, OTHER)),)),
    "object deleting, foreign": healthy(objects=(obj(deleting=True, owners=(OTHER,)),)),
    # Absent objects have no owners to repair; the upgrade recreates them.
    "object unhealthy": healthy(objects=(obj(healthy=False),)),
}


@pytest.mark.parametrize("case", NOTHING)
def test_no_action(case):
    assert decide(NOTHING[case]).action is None


def test_the_first_object_needing_a_repair_is_the_target():
    obs = healthy(objects=(obj(DS, owners=(ME, OTHER)), obj(SVC, owners=(ME, OTHER))))
    assert decide(obs).action == Action(ActionKind.REMOVE_OWNERS, "2 owners", DS)
    obs = healthy(objects=(obj(DS, owners=()), obj(SVC, owners=())))
    assert decide(obs).action == Action(ActionKind.SET_OWNER, "the CR does not own it", DS)


def test_an_absent_object_gets_no_owner_repair_but_an_upgrade():
    obs = healthy(objects=(obj(DS), ObservedObject(SVC)))
    action = decide(obs).action
    assert action is not None
    assert action.kind is ActionKind.UPGRADE


def test_one_owner_is_not_too_many():
    assert decide(healthy(objects=(obj(owners=(ME,)),))).action is None
