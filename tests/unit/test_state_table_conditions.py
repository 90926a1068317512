"""Each condition of the table as computed from an observation: type, status, reason and
message, exactly, for every way it can come out. They are what `kubectl describe` and
`enclavectl status` show, so a changed reason or message is a changed interface."""

from __future__ import annotations

import pytest

from enclave_operator.helm.releases import ReleaseStatus
from enclave_operator.reconcile.conditions import base_type, oo_conditions
from enclave_operator.reconcile.decide import decide
from enclave_operator.reconcile.model import Condition, ObservedObject, Status
from tests.unit.observations import DS, ME, OTHER, SVC, UID, conditions, healthy, obj, record
from tests.unit.observations import release as rel

T, F, U = Status.TRUE, Status.FALSE, Status.UNKNOWN


def oo(base: str, status: Status, reason: str, message: str = "", kind: str = "daemonset"):
    return Condition(f"{kind}.las-x/{base}", status, reason, message)


def test_all_healthy_in_order():
    assert decide(healthy()).conditions[:9] == (
        Condition("IsHealthy", T, "Healthy", "all owned objects are healthy"),
        Condition("DeletionPresent", F, "NotDeleting"),
        Condition("FinalizerPresent", T, "Finalizer"),
        Condition("ReleaseExists", T, "Found", "release ns/las-x revision 1"),
        Condition("ReleaseSteady", T, "Steady", "release is deployed"),
        Condition("ReleaseFailed", F, "NotFailed"),
        Condition("ReleaseDeployed", T, "Deployed", "revision 1"),
        Condition("AtLeastOneOwnedObjectPresent", T, "Present", "2 present"),
        Condition("AllOwnedObjectsPresent", T, "AllPresent", "2 owned objects"),
    )
    assert decide(healthy()).conditions[9:] == tuple(
        oo(base, status, reason, message, kind)
        for kind in ("daemonset", "service")
        for base, status, reason, message in (
            ("OwnedObjectHealthy", T, "Healthy", "ok"),
            ("OwnedObjectPresent", T, "Present", ""),
            ("OwnedObjectDeletionPresent", F, "NotDeleting", ""),
            ("OwnedObjectValidOwners", T, "Owners", "LAS/x"),
            ("OwnsOwnedObject", T, "Owners", "LAS/x"),
            ("SoleOwner", T, "Owners", "LAS/x"),
            ("EqualSpecs", T, "Equal", ""),
        )
    )


NO_RELEASE = healthy(release=rel(record=None), objects=())
FAILED_INSTALL = healthy(release=rel(record=None, last_failure="bad values"), objects=())
STALLED = healthy(release=rel(record=record(ReleaseStatus.PENDING_INSTALL), stalled=True))
READ_ERROR = healthy(release=rel(error="boom"))
BOTH_ERRORS = healthy(release=rel(error="b"), objects_error="a")
ONE_MISSING = healthy(objects=(obj(DS), ObservedObject(SVC)))
TWO_ERRORS = healthy(objects=(ObservedObject(DS, error="e1"), ObservedObject(SVC, error="e2")))
ANY = healthy()

CR_CASES = [
    (healthy(deleting=True), Condition("DeletionPresent", T, "Deleting")),
    (healthy(has_finalizer=False), Condition("FinalizerPresent", F, "NoFinalizer")),
    (NO_RELEASE, Condition("ReleaseExists", F, "NotFound", "no release ns/las-x")),
    (NO_RELEASE, Condition("ReleaseSteady", T, "NoRelease", "no release to change")),
    (NO_RELEASE, Condition("ReleaseFailed", F, "NotFailed")),
    (NO_RELEASE, Condition("ReleaseDeployed", F, "NoRelease")),
    (
        NO_RELEASE,
        Condition("AtLeastOneOwnedObjectPresent", F, "NonePresent", "no owned object found"),
    ),
    (
        NO_RELEASE,
        Condition("AllOwnedObjectsPresent", F, "NoRelease", "no release, so no owned objects"),
    ),
    (NO_RELEASE, Condition("IsHealthy", U, "NotInstalled", "the release is not installed yet")),
    (
        FAILED_INSTALL,
        Condition(
            "ReleaseExists",
            F,
            "NotFound",
            "no release ns/las-x; the last install failed: bad values",
        ),
    ),
    (FAILED_INSTALL, Condition("ReleaseFailed", T, "InstallFailed", "bad values")),
    (FAILED_INSTALL, Condition("IsHealthy", F, "ReleaseFailed", "bad values")),
    (
        STALLED,
        Condition(
            "ReleaseSteady", T, "Stalled", "pending-install with no helm process working on it"
        ),
    ),
    (
        STALLED,
        Condition("ReleaseFailed", T, "Stalled", "left pending-install by an interrupted helm run"),
    ),
    (
        STALLED,
        Condition(
            "IsHealthy", F, "ReleaseFailed", "left pending-install by an interrupted helm run"
        ),
    ),
    (STALLED, Condition("ReleaseDeployed", F, "NotDeployed", "release is pending-install")),
    (
        healthy(release=rel(record=record(ReleaseStatus.PENDING_UPGRADE))),
        Condition("ReleaseSteady", F, "InTransition", "release is pending-upgrade"),
    ),
    (
        healthy(release=rel(record=record(ReleaseStatus.SUPERSEDED))),
        Condition("IsHealthy", U, "Progressing", "waiting for the release"),
    ),
    (
        healthy(release=rel(record=record(ReleaseStatus.FAILED, "it broke"))),
        Condition("ReleaseFailed", T, "Failed", "it broke"),
    ),
    (
        healthy(release=rel(outdated=True)),
        Condition(
            "ReleaseDeployed", F, "SpecChanged", "the deployed revision predates the current spec"
        ),
    ),
    (
        healthy(release=rel(outdated=True)),
        Condition("IsHealthy", T, "Healthy", "all owned objects are healthy"),
    ),
    (
        healthy(release=rel(record=record(revision=3))),
        Condition("ReleaseDeployed", T, "Deployed", "revision 3"),
    ),
    (
        healthy(release=rel(record=record(revision=3))),
        Condition("ReleaseExists", T, "Found", "release ns/las-x revision 3"),
    ),
    *[
        (READ_ERROR, Condition(t, U, "ReadError", "boom"))
        for t in (
            "IsHealthy",
            "ReleaseExists",
            "ReleaseSteady",
            "ReleaseFailed",
            "ReleaseDeployed",
            "AllOwnedObjectsPresent",
        )
    ],
    (READ_ERROR, Condition("AtLeastOneOwnedObjectPresent", T, "Present", "2 present")),
    (
        healthy(release=rel(error="boom"), objects=()),
        Condition("AtLeastOneOwnedObjectPresent", U, "ReadError", "boom"),
    ),
    (BOTH_ERRORS, Condition("IsHealthy", U, "ReadError", "a")),
    (BOTH_ERRORS, Condition("AllOwnedObjectsPresent", U, "ReadError", "a")),
    (ONE_MISSING, Condition("AtLeastOneOwnedObjectPresent", T, "Present", "1 present")),
    (ONE_MISSING, Condition("AllOwnedObjectsPresent", F, "Missing", "Service/las-x")),
    (ONE_MISSING, Condition("IsHealthy", U, "Progressing", "waiting for Service/las-x")),
    (
        healthy(objects=(ObservedObject(DS), ObservedObject(SVC))),
        Condition("AllOwnedObjectsPresent", F, "Missing", "DaemonSet/las-x, Service/las-x"),
    ),
    (TWO_ERRORS, Condition("AllOwnedObjectsPresent", U, "ReadError", "e1")),
    (TWO_ERRORS, Condition("AtLeastOneOwnedObjectPresent", U, "ReadError", "e1")),
    (
        TWO_ERRORS,
        Condition("IsHealthy", U, "Progressing", "waiting for DaemonSet/las-x, Service/las-x"),
    ),
    (
        healthy(objects=(obj(DS, healthy=None), obj(SVC))),
        Condition("IsHealthy", U, "Progressing", "waiting for DaemonSet/las-x"),
    ),
    (
        healthy(
            objects=(
                obj(DS, healthy=False, health_message="m1"),
                obj(SVC, healthy=False, health_message="m2"),
            )
        ),
        Condition(
            "IsHealthy", F, "OwnedObjectsUnhealthy", "DaemonSet/las-x: m1; Service/las-x: m2"
        ),
    ),
    (healthy(alerts=("a1", "a2")), Condition("IsHealthy", F, "Alert", "a1; a2")),
    (
        healthy(starting=("n1", "n2")),
        Condition("IsHealthy", U, "Starting", "pods starting on n1, n2"),
    ),
    (healthy(notes=("n1", "n2")), Condition("IsHealthy", T, "Healthy", "n1; n2")),
]


@pytest.mark.parametrize(
    ("obs", "want"), CR_CASES, ids=[f"{w.type}-{w.reason}" for _, w in CR_CASES]
)
def test_cr_condition(obs, want):
    assert conditions(obs)[want.type] == want


# IsHealthy tells the first problem it finds, in this order.
FIRST_PROBLEM = [
    (
        healthy(
            release=rel(record=record(ReleaseStatus.FAILED, "f")), objects=(obj(healthy=False),)
        ),
        "ReleaseFailed",
    ),
    (healthy(release=rel(record=None), objects=(obj(healthy=False),)), "OwnedObjectsUnhealthy"),
    (healthy(release=rel(record=None), alerts=("a",)), "NotInstalled"),
    (healthy(alerts=("a",), starting=("n",)), "Alert"),
    (healthy(starting=("n",), objects=(obj(healthy=None),)), "Starting"),
    (healthy(objects=(ObservedObject(DS, healthy=False),)), "Progressing"),  # absent: not sick
]


@pytest.mark.parametrize(("obs", "reason"), FIRST_PROBLEM, ids=[r for _, r in FIRST_PROBLEM])
def test_is_healthy_reports_the_first_problem(obs, reason):
    assert conditions(obs)["IsHealthy"].reason == reason


OO_TYPES = (
    "OwnedObjectHealthy",
    "OwnedObjectPresent",
    "OwnedObjectDeletionPresent",
    "OwnedObjectValidOwners",
    "OwnsOwnedObject",
    "SoleOwner",
    "EqualSpecs",
)


def test_an_object_that_cannot_be_read_is_unknown_in_every_condition():
    got = oo_conditions(ObservedObject(DS, error="500"), UID)
    assert got == [oo(t, U, "ReadError", "500") for t in OO_TYPES]


def test_an_absent_object():
    assert oo_conditions(ObservedObject(DS), UID) == [
        oo("OwnedObjectHealthy", U, "Absent", "the object does not exist"),
        oo("OwnedObjectPresent", F, "Absent", "the object does not exist"),
        oo("OwnedObjectDeletionPresent", F, "Absent"),
        oo("OwnedObjectValidOwners", U, "Absent"),
        oo("OwnsOwnedObject", U, "Absent"),
        oo("SoleOwner", U, "Absent"),
        oo("EqualSpecs", F, "Absent", "the spec needs this object and it is missing"),
    ]


def by_base(obj_: ObservedObject) -> dict[str, Condition]:
    return {base_type(c.type): c for c in oo_conditions(obj_, UID)}


@pytest.mark.parametrize(
    ("changes", "want"),
    [
        ({"deleting": True}, oo("OwnedObjectDeletionPresent", T, "Deleting")),
        ({"deleting": True}, oo("EqualSpecs", U, "Deleting", "the object is being deleted")),
        ({"contradictions": ("c1", "c2")}, oo("EqualSpecs", F, "Contradicts", "c1; c2")),
        ({"healthy": None, "health_message": "m"}, oo("OwnedObjectHealthy", U, "Progressing", "m")),
        ({"healthy": False, "health_message": "m"}, oo("OwnedObjectHealthy", F, "Unhealthy", "m")),
    ],
)
def test_a_present_object(changes, want):
    assert by_base(obj(**changes))[base_type(want.type)] == want


MINE, THEIRS, BOTH = "LAS/x", "ConfigMap/intruder", "LAS/x, ConfigMap/intruder"


@pytest.mark.parametrize(
    ("owners", "valid", "owns", "sole", "names"),
    [
        ((), T, F, F, "none"),
        ((ME,), T, T, T, MINE),
        ((OTHER,), T, F, F, THEIRS),
        ((ME, OTHER), F, T, F, BOTH),
        ((OTHER, OTHER), F, F, F, f"{THEIRS}, {THEIRS}"),
    ],
)
def test_owners(owners, valid, owns, sole, names):
    got = by_base(obj(owners=owners))
    assert got["OwnedObjectValidOwners"] == oo("OwnedObjectValidOwners", valid, "Owners", names)
    assert got["OwnsOwnedObject"] == oo("OwnsOwnedObject", owns, "Owners", names)
    assert got["SoleOwner"] == oo("SoleOwner", sole, "Owners", names)


def test_base_type_drops_the_owned_object_prefix_only():
    assert base_type("daemonset.las-x/EqualSpecs") == "EqualSpecs"
    assert base_type("IsHealthy") == "IsHealthy"
