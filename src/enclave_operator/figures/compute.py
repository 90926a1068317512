"""Status figures and alerts per kind, from node and pod views. -1 marks what cannot be told."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from enclave_operator.figures.cluster import SGX_DEVICE, NodeView, PodView

GRACE = 60.0  # seconds a daemon pod may take to become ready before its node alerts


@dataclass(frozen=True)
class Figures:
    status: dict[str, Any] = field(default_factory=dict)  # merged into the CR's status
    alerts: tuple[str, ...] = ()  # one line per alerting figure, naming the nodes
    starting: tuple[str, ...] = ()  # nodes whose daemon pod is still within its grace
    recheck_at: float | None = None  # unix time the first grace ends: the figures change then
    conditions: tuple[tuple[str, str, str, str], ...] = ()  # (type, status, reason, message)


def _node_states(
    nodes: Sequence[NodeView], running: Mapping[str, PodView], now: float, daemon_since: float
) -> tuple[set[str], list[str], float | None]:
    """(ready nodes, starting nodes, when the first grace ends). A node is down when it is
    NotReady, or its pod is not ready GRACE seconds after the pod's creation, or it has no pod
    GRACE seconds after both the DaemonSet and the node appeared (a new node, a new DaemonSet:
    their pod is still coming). Nothing else happens when a grace ends, so the caller has to
    look again then."""
    ready, starting, ends = set(), [], []
    for node in nodes:
        pod = running.get(node.name)
        if not node.ready:
            continue
        if pod is not None and pod.ready:
            ready.add(node.name)
            continue
        born = pod.created if pod is not None else max(daemon_since, node.created)
        if now - born < GRACE:
            starting.append(node.name)
            ends.append(born + GRACE)
    return ready, starting, min(ends, default=None)


def _running(pods: Iterable[PodView]) -> dict[str, PodView]:
    """The live pod per node (a replacement may overlap its predecessor: prefer a ready one)."""
    by_node: dict[str, PodView] = {}
    for pod in pods:
        if pod.terminated or not pod.node:
            continue
        if pod.node not in by_node or (pod.ready and not by_node[pod.node].ready):
            by_node[pod.node] = pod
    return by_node


def _daemon_nodes(
    nodes: Sequence[NodeView], spec: Mapping[str, Any]
) -> tuple[list[NodeView], set[str]]:
    """(nodes where the daemon is expected, names of those the DaemonSet controller counts).

    Both: selected by spec.nodeSelector, every NoSchedule/NoExecute taint tolerated by
    spec.tolerations (which carry the installation's SGX toleration) or by the DaemonSet
    controller's own. The controller also leaves out a node tainted as down (NotReady,
    unreachable); the replica alerts keep it, since a node down is what they are for."""
    selector = spec.get("nodeSelector") or {}
    tolerations = [t for t in spec.get("tolerations") or [] if isinstance(t, Mapping)]
    expected = [
        n for n in nodes if n.selected_by(selector) and n.admits(tolerations, down_too=False)
    ]
    return expected, {n.name for n in expected if n.admits(tolerations)}


def _version(pods: Iterable[PodView], reported: Mapping[str, str]) -> str:
    """What most ready pods' services say they are (their version endpoint), not the image
    tag; empty until one has answered."""
    versions = Counter(reported[p.uid] for p in pods if p.ready and reported.get(p.uid))
    return versions.most_common(1)[0][0] if versions else ""


def _missing(
    nodes: Sequence[NodeView], ready: set[str], starting: Sequence[str], name: str
) -> tuple[str, ...]:
    down = sorted(n.name for n in nodes if n.name not in ready and n.name not in starting)
    return (f"{name}={len(down)}: not running on {', '.join(down)}",) if down else ()


def las_figures(
    spec: Mapping[str, Any],
    nodes: Sequence[NodeView],
    pods: Sequence[PodView],
    now: float,
    daemon_since: float = 0.0,
    reported: Mapping[str, str] | None = None,
) -> Figures:
    """``reported``: the version each pod's LAS answered, by pod uid."""
    reported = reported or {}
    selected, desired = _daemon_nodes(nodes, spec)
    running = _running(pods)
    ready, starting, recheck_at = _node_states(selected, running, now, daemon_since)
    details: dict[str, dict[str, Any]] = {}
    for node in selected:
        pod = running.get(node.name)
        details[node.name] = {
            "ready": node.name in ready,
            "pod": pod.name if pod else "",
            "hostIP": (pod.host_ip if pod else "") or node.address,
            "version": reported.get(pod.uid, "") if pod else "",
            **({"since": pod.ready_since} if pod and pod.ready_since else {}),
        }
    status = {
        "desiredNumberScheduled": len(desired),
        "numberAvailable": len(ready & desired),
        "nodes": details,
        "version": _version(running.values(), reported),
        "lasReplicaAlert": len(selected) - len(ready) - len(starting),
    }
    alerts = _missing(selected, ready, starting, "lasReplicaAlert")
    return Figures(status, alerts, tuple(starting), recheck_at)


def sgx_figures(
    spec: Mapping[str, Any],
    nodes: Sequence[NodeView],
    plugin_pods: Sequence[PodView],
    sgx_pods: Sequence[PodView],
    now: float,
    daemon_since: float = 0.0,
) -> Figures:
    """Devices are the plugin's own (SGX_DEVICE) on the nodes where it should run. A node that
    does not advertise them (the plugin has not registered there yet, or the node is served by
    another SGX plugin) is left out of the device maps and of sgxDeviceAlert: its devices
    cannot be counted in the plugin's unit, and a missing plugin is sgxReplicaAlert's business."""
    selected, desired = _daemon_nodes(nodes, spec)
    running = _running(plugin_pods)
    ready, starting, recheck_at = _node_states(selected, running, now, daemon_since)
    used: dict[str, Decimal] = {}
    for pod in sgx_pods:
        if pod.node and not pod.terminated:
            used[pod.node] = used.get(pod.node, Decimal(0)) + pod.sgx.get(SGX_DEVICE, Decimal(0))
    capacity_pn: dict[str, int] = {}
    used_pn: dict[str, int] = {}
    available_pn: dict[str, int] = {}
    exhausted: list[str] = []
    for node in selected:
        if SGX_DEVICE not in node.sgx:
            continue  # the plugin's devices are not advertised here (yet): nothing to count
        cap = node.sgx[SGX_DEVICE]
        if cap is None:  # unparsable allocatable
            capacity_pn[node.name] = used_pn[node.name] = available_pn[node.name] = -1
            exhausted.append(node.name)
            continue
        capacity_pn[node.name] = int(cap)
        used_pn[node.name] = int(used.get(node.name, 0))
        # never below 0: pods keep devices the kubelet has since taken away (unhealthy)
        available_pn[node.name] = max(0, capacity_pn[node.name] - used_pn[node.name])
        if node.name in ready and available_pn[node.name] <= 0:
            exhausted.append(node.name)

    def total(per_node: Mapping[str, int]) -> int:
        return -1 if any(v < 0 for v in per_node.values()) else sum(per_node.values())

    status = {
        "capacitySGXDevices": total(capacity_pn),
        "capacitySGXDevicesPerNode": capacity_pn,
        "usedSGXDevices": total(used_pn),
        "usedSGXDevicesPerNode": used_pn,
        "availableSGXDevices": total(available_pn),
        "availableSGXDevicesPerNode": available_pn,
        "desiredReplicas": len(desired),
        "readyReplicas": len(ready & desired),
        "sgxDeviceAlert": len(exhausted),
        "sgxReplicaAlert": len(selected) - len(ready) - len(starting),
    }
    alerts = list(_missing(selected, ready, starting, "sgxReplicaAlert"))
    if exhausted:
        names = ", ".join(sorted(exhausted))
        alerts.append(f"sgxDeviceAlert={len(exhausted)}: no SGX device left on {names}")
    return Figures(status, tuple(alerts), tuple(starting), recheck_at)


def cas_figures(pods: Sequence[PodView], reported: Mapping[str, str] | None = None) -> Figures:
    """``reported``: the version each pod's service answered, by pod uid."""
    return Figures({"version": _version(_running(pods).values(), reported or {})})
