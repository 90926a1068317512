"""Compact, plain views of nodes and pods: what the figures need and nothing else, so that
caching every node and SGX pod of a large cluster stays small."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
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
# DaemonSet pods tolerate these taints on their own; any other NoSchedule/NoExecute taint
# keeps a daemon off the node, so such a node is not one where it "should run".
_DAEMON_TOLERATED = {
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
    "node.kubernetes.io/disk-pressure",
    "node.kubernetes.io/memory-pressure",
    "node.kubernetes.io/pid-pressure",
    "node.kubernetes.io/unschedulable",
    "node.kubernetes.io/network-unavailable",
}


@dataclass(frozen=True)
class NodeView:
    name: str
    labels: Mapping[str, str]
    ready: bool
    address: str
    sgx: Mapping[str, Decimal | None]  # allocatable of SGX_DEVICE when present (None: unreadable)
    daemon_blocked: bool  # a taint keeps daemons off it
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
        blocked = any(
            t.get("effect") in ("NoSchedule", "NoExecute") and t.get("key") not in _DAEMON_TOLERATED
            for t in spec.get("taints") or []
        )
        return cls(
            name=meta["name"],
            labels=dict(meta.get("labels") or {}),
            ready=ready,
            address=address,
            sgx={r: quantity(allocatable[r]) for r in SGX_RESOURCES if r in allocatable},
            daemon_blocked=blocked,
            created=unix(meta.get("creationTimestamp")),
        )

    def selected_by(self, node_selector: Mapping[str, str]) -> bool:
        return all(self.labels.get(k) == v for k, v in node_selector.items())


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
