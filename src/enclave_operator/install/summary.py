"""What `status`, `check` and the install's progress say about custom resources. Pure.

A condition is a problem when it is not at its healthy value: most are healthy when True,
but some (DeletionPresent, ReleaseFailed, ...) are healthy when False. The operator's own
condition table says which, so the CLI never disagrees with the operator's state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from enclave_operator.api.kinds import CAS, LAS, SGXPLUGIN, Kind
from enclave_operator.reconcile.conditions import PENDING_WHEN, base_type
from enclave_operator.reconcile.model import Status

SERVICE_KINDS: tuple[Kind, ...] = (SGXPLUGIN, LAS, CAS)
"""The kinds that reach HEALTHY, in the order they come up."""

HEALTHY = "HEALTHY"
_BAD_WHEN_TRUE = {t for t, v in PENDING_WHEN.items() if v is Status.TRUE}


@dataclass(frozen=True)
class Unmet:
    type: str
    status: str
    message: str


@dataclass(frozen=True)
class Row:
    kind: str
    namespace: str | None
    name: str
    state: str
    ready: bool
    unmet: tuple[Unmet, ...] = ()
    alerts: Mapping[str, int] = field(default_factory=dict)
    devices: Mapping[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"

    def as_dict(self) -> dict[str, Any]:
        """The machine-readable form of ``status -o json|yaml``."""
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "state": self.state,
            "ready": self.ready,
            "unmetConditions": [u.__dict__ for u in self.unmet],
            "alerts": dict(self.alerts),
            "devices": dict(self.devices),
        }


def healthy_value(condition_type: str) -> str:
    return "False" if base_type(condition_type) in _BAD_WHEN_TRUE else "True"


def unmet_conditions(status: Mapping[str, Any]) -> tuple[Unmet, ...]:
    """Conditions not at their healthy value, in the operator's order."""
    return tuple(
        Unmet(str(c.get("type")), str(c.get("status")), str(c.get("message") or ""))
        for c in status.get("conditions") or []
        if c.get("status") != healthy_value(str(c.get("type")))
    )


def alerts(status: Mapping[str, Any]) -> dict[str, int]:
    """Alert figures that fire (> 0); -1 (unknown) and 0 (all well) are not alerts."""
    return {
        k: v
        for k, v in status.items()
        if k.endswith("Alert") and isinstance(v, int) and not isinstance(v, bool) and v > 0
    }


def devices(status: Mapping[str, Any]) -> dict[str, str]:
    """SGX devices per node as ``used/capacity`` (``?`` where the operator could not tell)."""
    used = status.get("usedSGXDevicesPerNode") or {}
    capacity = status.get("capacitySGXDevicesPerNode") or {}

    def show(value: Any) -> str:
        return "?" if value is None or value == -1 else str(value)

    return {
        node: f"{show(used.get(node))}/{show(capacity.get(node))}"
        for node in sorted({*used, *capacity})
    }


def is_ready(body: Mapping[str, Any]) -> bool:
    """HEALTHY for the current spec, and not on its way out."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    return (
        status.get("state") == HEALTHY
        and int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0)
        and not meta.get("deletionTimestamp")
    )


def row(kind: Kind, body: Mapping[str, Any]) -> Row:
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    state = str(status.get("state") or "-")
    if meta.get("deletionTimestamp"):
        state = f"{state} (deleting)"
    return Row(
        kind=kind.kind,
        namespace=meta.get("namespace"),
        name=str(meta.get("name")),
        state=state,
        ready=is_ready(body),
        unmet=unmet_conditions(status),
        alerts=alerts(status),
        devices=devices(status),
    )


def rows(bodies: Iterable[tuple[Kind, Mapping[str, Any]]]) -> list[Row]:
    """Rows sorted by kind (in the given order of first appearance), namespace and name."""
    listed = [row(kind, body) for kind, body in bodies]
    order = {k: i for i, k in enumerate(dict.fromkeys(r.kind for r in listed))}
    return sorted(listed, key=lambda r: (order[r.kind], r.namespace or "", r.name))


@dataclass(frozen=True)
class Verdict:
    ready: int
    total: int
    waiting: tuple[Row, ...]

    @property
    def ok(self) -> bool:
        """Nothing to wait for, and something there: an empty cluster is not a healthy one."""
        return self.total > 0 and self.ready == self.total


def verdict(listed: Sequence[Row]) -> Verdict:
    """check's decision over the service kinds' rows (policies never reach HEALTHY)."""
    services = {k.kind for k in SERVICE_KINDS}
    relevant = [r for r in listed if r.kind in services]
    waiting = tuple(r for r in relevant if not r.ready)
    return Verdict(len(relevant) - len(waiting), len(relevant), waiting)


def waiting_for(r: Row, limit: int = 3) -> str:
    """The first unmet conditions of a resource that is not ready, as one short phrase."""
    if not r.unmet and r.state == "-":
        return "no status yet (is the operator running?)"
    parts = [f"{u.type}={u.status}" + (f" ({u.message})" if u.message else "") for u in r.unmet]
    more = f"; +{len(parts) - limit} more" if len(parts) > limit else ""
    return "; ".join(parts[:limit]) + more


def describe(r: Row) -> str:
    """One line for a resource that is not ready: its state and what it waits for."""
    why = waiting_for(r)
    if r.state == "-":
        return f"{r.ref}: {why}"
    return f"{r.ref}: {r.state}" + (f" — {why}" if why else "")
