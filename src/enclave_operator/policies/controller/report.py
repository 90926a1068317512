"""The policy's status after a pass: pure, from the observation, the decision and the outcome.

``state``: REGISTERED (the CAS holds it), PENDING (on the way, or the CAS cannot be reached),
FAILED (the CAS refused it, or casAddress is unusable; final, as the resource cannot change).
Conditions: ``Registered`` (with the CAS's own reason when refused) and ``CASReachable``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from enclave_operator.policies.controller.model import Act, Decision, Observation, Outcome, State
from enclave_operator.reconcile.model import Condition, Status
from enclave_operator.reconcile.report import merge_conditions


def _reachable(obs: Observation, outcome: Outcome | None) -> Condition:
    if obs.address_error:
        return Condition("CASReachable", Status.UNKNOWN, "InvalidAddress", obs.address_error)
    if obs.probe.instance is None:
        return Condition("CASReachable", Status.FALSE, "Unreachable", obs.probe.error)
    if outcome is not None and not outcome.ok and not outcome.refused:
        return Condition("CASReachable", Status.FALSE, "Unreachable", outcome.message)
    return Condition("CASReachable", Status.TRUE, "Answered", f"CAS {obs.probe.instance}")


def _registered(state: State, message: str, code: str) -> Condition:
    if state is State.REGISTERED:
        return Condition("Registered", Status.TRUE, "Registered", message)
    if state is State.FAILED:
        return Condition("Registered", Status.FALSE, code or "Refused", message)
    return Condition("Registered", Status.UNKNOWN, code or "Pending", message)


def desired(
    obs: Observation,
    decision: Decision,
    outcome: Outcome | None,
    url: str,
    now: str,
) -> dict[str, Any] | None:
    """The status to write, or None when this pass has nothing to say (finalizer steps)."""
    current: Mapping[str, Any] = obs.status
    status: dict[str, Any] = dict(current)
    code = ""
    if decision.act in (Act.ADD_FINALIZER, Act.REMOVE_FINALIZER, Act.UNREGISTER):
        return None
    if obs.address_error:
        state, message, code = State.FAILED, obs.address_error, "InvalidAddress"
    elif decision.act is Act.REGISTER and outcome is not None:
        if outcome.ok:
            state, message = State.REGISTERED, outcome.message
            reg = outcome.registered
            status.update(
                policyName=reg.get("name"),
                digest=reg.get("digest"),
                signers=[s.get("fingerprint") for s in reg.get("signers") or []],
                casInstance=obs.probe.instance,
                casURL=url,
            )
        elif outcome.refused:
            state, message, code = State.FAILED, outcome.message, outcome.code
        else:
            state, message, code = State.PENDING, outcome.message, "CASUnreachable"
    elif decision.act is Act.RETRY:
        was = current.get("state")
        state = State.REGISTERED if was == State.REGISTERED else State.PENDING
        message, code = decision.reason, "CASUnreachable"
        if state is State.REGISTERED:
            message = _registered_message(current)
    else:  # NOTHING: registered here, or refused before
        state = State(current.get("state") or State.PENDING)
        message = _current_message(current, decision.reason)
        code = _current_reason(current)
    status["state"] = state.value
    status["observedGeneration"] = obs.generation
    conditions = [_registered(state, message, code), _reachable(obs, outcome)]
    status["conditions"] = merge_conditions(
        current.get("conditions") or [], conditions, obs.generation, now
    )
    return status


def _condition(current: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    found: Mapping[str, Any] = next(
        (c for c in current.get("conditions") or [] if c.get("type") == kind), {}
    )
    return found


def _current_message(current: Mapping[str, Any], fallback: str) -> str:
    return str(_condition(current, "Registered").get("message") or fallback)


def _current_reason(current: Mapping[str, Any]) -> str:
    return str(_condition(current, "Registered").get("reason") or "")


def _registered_message(current: Mapping[str, Any]) -> str:
    return _current_message(current, "registered")


def registered_message(meta: Mapping[str, Any], url: str) -> str:
    return f"registered in {url} as {meta.get('name')} (digest {str(meta.get('digest'))[:16]}…)"
