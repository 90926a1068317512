"""The spec's condition table, one test per row: the state that each value forces on its own.

Every row starts from the conditions of an all-healthy observation and changes exactly that one
condition. The expected states are transcribed from the spec's "Resulting CR State" column (an
empty cell reads HEALTHY; an empty cell of an Unknown reads PENDING, the spec's rule for any
Unknown), not computed from the code's tables, so a rule removed or changed fails its rows.
One deliberate difference from the column: ReleaseFailed=True is UNHEALTHY (UNHEALTHY_WHEN in
reconcile/conditions.py says why).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from enclave_operator.helm.releases import ReleaseStatus
from enclave_operator.reconcile.decide import decide, state_of
from enclave_operator.reconcile.model import ActionKind, Condition, State, Status
from tests.unit.observations import healthy, record, release

# type, value, state; OO types apply to one owned object (the DaemonSet).
SPEC_COLUMN = """
CR IsHealthy                    True    HEALTHY
CR IsHealthy                    False   UNHEALTHY
CR IsHealthy                    Unknown PENDING
CR DeletionPresent              True    PENDING
CR DeletionPresent              False   HEALTHY
CR DeletionPresent              Unknown PENDING
CR FinalizerPresent             True    HEALTHY
CR FinalizerPresent             False   PENDING
CR FinalizerPresent             Unknown PENDING
CR ReleaseExists                True    HEALTHY
CR ReleaseExists                False   PENDING
CR ReleaseExists                Unknown PENDING
CR ReleaseSteady                True    HEALTHY
CR ReleaseSteady                False   PENDING
CR ReleaseSteady                Unknown PENDING
CR ReleaseFailed                True    UNHEALTHY
CR ReleaseFailed                False   HEALTHY
CR ReleaseFailed                Unknown PENDING
CR ReleaseDeployed              True    HEALTHY
CR ReleaseDeployed              False   PENDING
CR ReleaseDeployed              Unknown PENDING
CR AtLeastOneOwnedObjectPresent True    HEALTHY
CR AtLeastOneOwnedObjectPresent False   PENDING
CR AtLeastOneOwnedObjectPresent Unknown PENDING
CR AllOwnedObjectsPresent       True    HEALTHY
CR AllOwnedObjectsPresent       False   PENDING
CR AllOwnedObjectsPresent       Unknown PENDING
OO OwnedObjectHealthy           True    HEALTHY
OO OwnedObjectHealthy           False   UNHEALTHY
OO OwnedObjectHealthy           Unknown PENDING
OO OwnedObjectPresent           True    HEALTHY
OO OwnedObjectPresent           False   PENDING
OO OwnedObjectPresent           Unknown PENDING
OO OwnedObjectDeletionPresent   True    PENDING
OO OwnedObjectDeletionPresent   False   HEALTHY
OO OwnedObjectDeletionPresent   Unknown PENDING
OO OwnedObjectValidOwners       True    HEALTHY
OO OwnedObjectValidOwners       False   PENDING
OO OwnedObjectValidOwners       Unknown PENDING
OO OwnsOwnedObject              True    HEALTHY
OO OwnsOwnedObject              False   PENDING
OO OwnsOwnedObject              Unknown PENDING
OO SoleOwner                    True    HEALTHY
OO SoleOwner                    False   PENDING
OO SoleOwner                    Unknown PENDING
OO EqualSpecs                   True    HEALTHY
OO EqualSpecs                   False   PENDING
OO EqualSpecs                   Unknown PENDING
"""
ROWS = [
    (f"daemonset.las-x/{type_}" if scope == "OO" else type_, Status(value), State(state))
    for scope, type_, value, state in (line.split() for line in SPEC_COLUMN.strip().splitlines())
]


def all_healthy() -> tuple[Condition, ...]:
    return decide(healthy()).conditions


def changed(base: tuple[Condition, ...], type_: str, status: Status) -> tuple[Condition, ...]:
    return tuple(replace(c, status=status) if c.type == type_ else c for c in base)


def test_the_table_has_every_value_of_every_type_once():
    assert len(ROWS) == 16 * 3
    assert len({(t, v) for t, v, _ in ROWS}) == len(ROWS)


def test_the_all_healthy_observation_is_healthy_and_carries_every_row():
    base = all_healthy()
    assert state_of(base) is State.HEALTHY
    assert {t for t, _, _ in ROWS} <= {c.type for c in base}
    # The rows whose state is HEALTHY hold the base's own values: the healthy ones.
    healthy_values = {(t, v) for t, v, s in ROWS if s is State.HEALTHY}
    assert {(c.type, c.status) for c in base} >= healthy_values


@pytest.mark.parametrize(("type_", "status", "state"), ROWS, ids=[f"{t}={v}" for t, v, _ in ROWS])
def test_one_condition_changed_from_all_healthy(type_, status, state):
    base = all_healthy()
    after = changed(base, type_, status)
    assert [c.type for c, b in zip(after, base, strict=True) if c != b] in ([], [type_])
    assert state_of(after) is state


# --- the rules' order: any Unknown, then UNHEALTHY, then PENDING, else HEALTHY ---------------


def test_an_unknown_outranks_unhealthy():
    after = changed(
        changed(all_healthy(), "IsHealthy", Status.FALSE), "ReleaseSteady", Status.UNKNOWN
    )
    assert state_of(after) is State.PENDING


def test_unhealthy_outranks_pending():
    after = changed(
        changed(all_healthy(), "daemonset.las-x/OwnedObjectHealthy", Status.FALSE),
        "FinalizerPresent",
        Status.FALSE,
    )
    assert state_of(after) is State.UNHEALTHY


def test_an_unknown_of_a_type_outside_the_table_is_pending():
    extra = Condition("service.las-x/Somewhere", Status.UNKNOWN, "ReadError")
    assert state_of((*all_healthy(), extra)) is State.PENDING


def test_values_outside_the_table_leave_it_healthy():
    extra = Condition("service.las-x/Somewhere", Status.FALSE, "Whatever")
    assert state_of((*all_healthy(), extra)) is State.HEALTHY


# --- ReleaseFailed=True, from real observations ----------------------------------------------

FAILURES = {
    "failed": healthy(release=release(record=record(ReleaseStatus.FAILED, "Service exists"))),
    "stalled": healthy(release=release(record=record(ReleaseStatus.PENDING_UPGRADE), stalled=True)),
    "install failed": healthy(release=release(record=None, last_failure="rejected"), objects=()),
}


@pytest.mark.parametrize("cause", FAILURES)
def test_release_failed_true_is_unhealthy_with_the_failure_in_is_healthy(cause):
    d = decide(FAILURES[cause])
    by_type = {c.type: c for c in d.conditions}
    assert by_type["ReleaseFailed"].status is Status.TRUE
    assert by_type["IsHealthy"].status is Status.FALSE
    assert by_type["IsHealthy"].reason == "ReleaseFailed"
    assert by_type["IsHealthy"].message == by_type["ReleaseFailed"].message
    assert d.state is State.UNHEALTHY
    # The row's action still runs: uninstall a failed record, or install again without one.
    assert d.action is not None
    want = ActionKind.INSTALL if cause == "install failed" else ActionKind.UNINSTALL_FAILED
    assert d.action.kind is want
