"""Which decisions are written to the CR's status, and when."""

from __future__ import annotations

from typing import Any

import pytest

from enclave_operator.controller.reporting import PENDING_EVERY, hold_back, worth_reporting
from enclave_operator.reconcile.model import Action, ActionKind, Decision, State


def decision(state: State, kind: ActionKind | None) -> Decision:
    return Decision((), state, Action(kind, "why") if kind else None)


@pytest.mark.parametrize(
    ("kind", "acts_now", "worth"),
    [
        (None, False, True),  # nothing to do: what is seen is written
        (ActionKind.WAIT, False, True),
        (ActionKind.ADD_FINALIZER, True, False),  # a new CR: the install's pass reports
        (ActionKind.INSTALL, True, False),
        (ActionKind.INSTALL, False, True),  # backing off after a failure: say so now
        (ActionKind.UPGRADE, False, True),
    ],
)
def test_worth_reporting(kind: ActionKind | None, acts_now: bool, worth: bool) -> None:
    assert worth_reporting(decision(State.PENDING, kind), acts_now) is worth


def cr(state: str | None, generation: int = 1, observed: int = 1) -> dict[str, Any]:
    status = {"state": state, "observedGeneration": observed} if state else {}
    return {"metadata": {"name": "x", "generation": generation}, "status": status}


NOW = 1000.0


def test_pending_conditions_wait_for_the_interval() -> None:
    pending = decision(State.PENDING, ActionKind.WAIT)
    assert hold_back(cr("PENDING"), pending, NOW - 1, NOW) == pytest.approx(PENDING_EVERY - 1)
    assert hold_back(cr("PENDING"), pending, NOW - PENDING_EVERY, NOW) == 0


@pytest.mark.parametrize(
    ("current", "state"),
    [
        (cr(None), State.PENDING),  # the first status
        (cr("PENDING"), State.HEALTHY),  # a change of state
        (cr("PENDING"), State.UNHEALTHY),
        (cr("HEALTHY"), State.PENDING),
        (cr("HEALTHY"), State.HEALTHY),  # not PENDING: conditions as they change
        (cr("PENDING", generation=2, observed=1), State.PENDING),  # a new spec was seen
    ],
)
def test_written_at_once(current: dict[str, Any], state: State) -> None:
    assert hold_back(current, decision(state, ActionKind.WAIT), NOW - 1, NOW) == 0


def test_never_reported_by_this_operator_is_written_at_once() -> None:
    # a restarted operator has no memory of its writes: the status may be stale
    assert hold_back(cr("PENDING"), decision(State.PENDING, None), 0.0, NOW) == 0
