"""The policy controller's plain data and its pure decision.

observe → decide → act → report, as for the services: ``decide`` picks exactly one next
action from the observation, in a fixed order; ``settle`` turns an action's outcome into the
status to report. Neither does I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FINALIZER = "enclave.dev/cas-policy"
DELETE_GRACE = 300.0
"""Seconds a deletion waits for an unreachable CAS before the finalizer is removed anyway."""


class State(enum.StrEnum):
    REGISTERED = "REGISTERED"
    PENDING = "PENDING"
    FAILED = "FAILED"


class Act(enum.Enum):
    ADD_FINALIZER = "add finalizer"
    REGISTER = "register in CAS"
    UNREGISTER = "delete from CAS"
    REMOVE_FINALIZER = "remove finalizer"
    RETRY = "retry later"
    NOTHING = "nothing"


@dataclass(frozen=True)
class Probe:
    """What the CAS said when asked for its version: its instance id, or why it did not."""

    instance: str | None
    error: str = ""


@dataclass(frozen=True)
class Observation:
    generation: int
    has_finalizer: bool
    deleting_for: float | None
    """Seconds since deletion was requested; None while not being deleted."""
    status: Mapping[str, Any]
    probe: Probe
    address_error: str = ""


@dataclass(frozen=True)
class Decision:
    act: Act
    reason: str


def registered_here(obs: Observation) -> bool:
    status = obs.status
    return (
        status.get("state") == State.REGISTERED
        and obs.probe.instance is not None
        and status.get("casInstance") == obs.probe.instance
    )


def failed_for_good(obs: Observation) -> bool:
    """A refusal is final: the resource cannot change, so asking again gets the same answer."""
    status = obs.status
    return status.get("state") == State.FAILED and status.get("observedGeneration") == (
        obs.generation
    )


def decide(obs: Observation) -> Decision:
    if obs.deleting_for is not None:
        return _deleting(obs)
    if not obs.has_finalizer:
        return Decision(Act.ADD_FINALIZER, "deletion must first remove the policy from its CAS")
    if obs.address_error:
        return Decision(Act.NOTHING, obs.address_error)
    if failed_for_good(obs):
        return Decision(Act.NOTHING, "the CAS refused this policy; re-create the resource")
    if obs.probe.instance is None:
        return Decision(Act.RETRY, f"CAS unreachable: {obs.probe.error}")
    if registered_here(obs):
        return Decision(Act.NOTHING, "registered")
    if obs.status.get("casInstance") not in (None, obs.probe.instance):
        return Decision(Act.REGISTER, "the CAS restarted with an empty store")
    return Decision(Act.REGISTER, "not registered yet")


def _deleting(obs: Observation) -> Decision:
    if not obs.has_finalizer:
        return Decision(Act.NOTHING, "being deleted")
    if obs.address_error or obs.status.get("state") != State.REGISTERED:
        return Decision(Act.REMOVE_FINALIZER, "never registered")
    if obs.probe.instance is not None and not registered_here(obs):
        return Decision(Act.REMOVE_FINALIZER, "the CAS restarted with an empty store")
    if (obs.deleting_for or 0.0) >= DELETE_GRACE:
        why = f" (CAS unreachable: {obs.probe.error})" if obs.probe.instance is None else ""
        return Decision(
            Act.REMOVE_FINALIZER,
            f"not deleted from the CAS within {DELETE_GRACE:.0f}s{why}; the policy may remain"
            " there (`enclavectl policy delete` removes it)",
        )
    if obs.probe.instance is None:
        return Decision(Act.RETRY, f"CAS unreachable: {obs.probe.error}")
    return Decision(Act.UNREGISTER, "the resource is being deleted")


@dataclass(frozen=True)
class Outcome:
    """What an action brought: the CAS's answer, a refusal, or no answer."""

    ok: bool
    message: str
    refused: bool = False
    code: str = ""
    registered: Mapping[str, Any] = field(default_factory=dict)
