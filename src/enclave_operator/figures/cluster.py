"""Compact, plain views of nodes and pods: what the figures need and nothing else, so that
caching every node and SGX pod of a large cluster stays small."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from enclave_operator.quantity import quantity

SGX_DEVICE = "sgx.k8s.io/sgx"
"""What the SGXPlugin's device plugin advertises: one unit per pod that may use SGX."""

# The resources the figures read. Only the plugin's own: other plugins' resources (Intel's
# enclave and provision devices, EPC sizes in bytes or, on Azure and Alibaba, in MiB) are not
# devices of this plugin, so no node view or pod view carries them.
SGX_RESOURCES = (SGX_DEVICE,)
EFFECTS = ("NoSchedule", "NoExecute")  # the taints that keep a daemon off a node
# What the DaemonSet controller adds to every daemon pod (AddOrUpdateDaemonPodTolerations; the
# network-unavailable one only with hostNetwork, which the charts do not use).
DAEMON_TOLERATIONS: tuple[Mapping[str, str], ...] = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)
# Put on a node by the node lifecycle controller because the node itself is down: the
# DaemonSet controller no longer counts such a node, but the replica alerts are about exactly
# that, so the nodes a daemon is expected on ignore them.
NODE_DOWN_TAINTS = frozenset({"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"})


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str


def tolerates(toleration: Mapping[str, Any], taint: Taint) -> bool:
    """Kubernetes' Toleration.ToleratesTaint: empty effect or key match any; Exists any value."""
    effect, key = toleration.get("effect") or "", toleration.get("key") or ""
    if (effect and effect != taint.effect) or (key and key != taint.key):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == taint.value


@dataclass(frozen=True)
class NodeView:
    name: str
    labels: Mapping[str, str]
    ready: bool
    address: str
    sgx: Mapping[str, Decimal | None]  # allocatable of SGX_DEVICE when present (None: unreadable)
    taints: tuple[Taint, ...]  # the NoSchedule and NoExecute ones
    created: float = 0.0  # unix time

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> NodeView:
        meta, spec, status = body["metadata"], body.get("spec") or {}, body.get("status") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        address = next(
            (a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP"),
            "",
        )
        allocatable = status.get("allocatable") or {}
        taints = tuple(
            Taint(str(t.get("key") or ""), str(t.get("value") or ""), str(t["effect"]))
            for t in spec.get("taints") or []
            if t.get("effect") in EFFECTS
        )
        return cls(
            name=meta["name"],
            labels=dict(meta.get("labels") or {}),
            ready=ready,
            address=address,
            sgx={r: quantity(allocatable[r]) for r in SGX_RESOURCES if r in allocatable},
            taints=taints,
            created=unix(meta.get("creationTimestamp")),
        )

    def selected_by(self, node_selector: Mapping[str, str]) -> bool:
        return all(self.labels.get(k) == v for k, v in node_selector.items())

    def admits(self, tolerations: Sequence[Mapping[str, Any]], *, down_too: bool = True) -> bool:
        """Whether a daemon pod with these tolerations (and the DaemonSet controller's own) may
        run here, as the DaemonSet controller decides; ``down_too=False`` disregards the taints
        that only say the node is down (NODE_DOWN_TAINTS)."""
        every = (*tolerations, *DAEMON_TOLERATIONS)
        return all(
            any(tolerates(t, taint) for t in every)
            for taint in self.taints
            if down_too or taint.key not in NODE_DOWN_TAINTS
        )


@dataclass(frozen=True)
class PodView:
    namespace: str
    name: str
    node: str
    ready: bool
    ready_since: str
    host_ip: str
    image: str
    terminated: bool
    sgx: Mapping[str, Decimal]  # effective requests per SGX resource
    created: float = 0.0  # unix time
    uid: str = ""
    ip: str = ""  # the pod's own address: where its service answers

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> PodView:
        meta, spec, status = body["metadata"], body.get("spec") or {}, body.get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        statuses = status.get("containerStatuses") or []
        containers = spec.get("containers") or []
        image = (statuses[0].get("image") if statuses else None) or (
            containers[0].get("image", "") if containers else ""
        )
        return cls(
            namespace=meta.get("namespace", ""),
            name=meta["name"],
            node=spec.get("nodeName") or _daemon_target(spec),
            ready=bool(ready and ready.get("status") == "True"),
            ready_since=str(ready.get("lastTransitionTime") or "") if ready else "",
            host_ip=status.get("hostIP") or "",
            image=image,
            terminated=status.get("phase") in ("Succeeded", "Failed")
            or bool(meta.get("deletionTimestamp")),
            sgx=sgx_requests(spec),
            created=unix(meta.get("creationTimestamp")),
            uid=meta.get("uid", ""),
            ip=status.get("podIP") or "",
        )

    @property
    def image_tag(self) -> str:
        """The image tag: what the pod was started from, as far as the API can tell."""
        tail = self.image.rsplit("/", 1)[-1]
        return tail.split("@", 1)[0].split(":", 1)[1] if ":" in tail else ""


def unix(stamp: Any) -> float:
    """An API timestamp (RFC 3339, UTC) as unix time; 0 when absent."""
    if not stamp:
        return 0.0
    return dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


def _daemon_target(spec: Mapping[str, Any]) -> str:
    """A DaemonSet pod names its node in a required node affinity before it is bound."""
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in affinity.get("nodeSelectorTerms") or []:
        for field in term.get("matchFields") or []:
            if field.get("key") == "metadata.name" and len(field.get("values") or []) == 1:
                return str(field["values"][0])
    return ""


def sgx_requests(spec: Mapping[str, Any]) -> dict[str, Decimal]:
    """What the scheduler counts: the sum over containers, or the largest init container."""

    def of(container: Mapping[str, Any]) -> dict[str, Decimal]:
        res = container.get("resources") or {}
        wanted = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        return {r: q for r in SGX_RESOURCES if r in wanted and (q := quantity(wanted[r]))}

    total: dict[str, Decimal] = {}
    for c in spec.get("containers") or []:
        for r, q in of(c).items():
            total[r] = total.get(r, Decimal(0)) + q
    for c in spec.get("initContainers") or []:
        for r, q in of(c).items():
            total[r] = max(total.get(r, Decimal(0)), q)
    return total
