"""When a status write is worth its cost: every write is an API request, a new resourceVersion
and a watch event for every client, and a busy API server is what slows many resources down.

- Conditions passing through on the way to an action that runs now are not written: the
  action's own effects bring the next pass, which reports. A state change is no exception (a
  new resource's first PENDING is written after its install, not before its finalizer). A
  retry after a failure is no such action: the failure is written first.
- While a resource stays PENDING, its conditions change as its objects come up; they are
  written at most every ``PENDING_EVERY`` seconds. A change of state, or of the generation the
  status describes, is written at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from enclave_operator.reconcile.model import ActionKind, Decision, State

PENDING_EVERY = 5.0


def worth_reporting(decision: Decision, acts_now: bool) -> bool:
    """``acts_now``: the decision's action runs in this pass, neither held back by a backoff
    nor a retry of one that failed (a failure is reported before it is tried again)."""
    action = decision.action
    return action is None or action.kind is ActionKind.WAIT or not acts_now


def hold_back(cr: Mapping[str, Any], decision: Decision, reported_at: float, now: float) -> float:
    """Seconds to wait before writing this decision's status (0: write it now).
    ``reported_at``: when this operator last wrote the CR's status (monotonic; 0: never)."""
    status = cr.get("status") or {}
    if decision.state is not State.PENDING or status.get("state") != State.PENDING.value:
        return 0.0
    if status.get("observedGeneration") != cr["metadata"].get("generation", 0):
        return 0.0
    if not reported_at:
        return 0.0
    return max(0.0, reported_at + PENDING_EVERY - now)
