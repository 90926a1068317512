"""Health of one live owned object, read from its body alone.

Three answers, because the CR's state has three: True (healthy), False (a problem that will
not go away on its own: UNHEALTHY) and None (cannot tell yet, e.g. a rollout in progress:
PENDING). Pure, so the watch handlers can call it on every event without an API request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Health = tuple[bool | None, str]

SELECTED_NODE_ANNOTATION = "volume.kubernetes.io/selected-node"
"""Set on a claim by the scheduler once a pod using it was placed: binding is under way."""


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    node: Any = obj
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in _get(obj, "status", "conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return condition
    return None


def _generation_pending(obj: Mapping[str, Any]) -> Health | None:
    """None while the controller has not yet seen the latest spec; its status is stale."""
    generation = _get(obj, "metadata", "generation")
    observed = _get(obj, "status", "observedGeneration")
    if isinstance(generation, int) and (not isinstance(observed, int) or observed < generation):
        return None, f"controller has not observed generation {generation} yet"
    return None


def _deployment(obj: Mapping[str, Any]) -> Health:
    if (stale := _generation_pending(obj)) is not None:
        return stale
    progressing = _condition(obj, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return False, f"rollout stuck: {progressing.get('message') or 'progress deadline exceeded'}"
    failure = _condition(obj, "ReplicaFailure")
    if failure is not None and failure.get("status") == "True":
        return False, f"cannot create pods: {failure.get('message') or failure.get('reason')}"
    desired = _get(obj, "spec", "replicas")
    desired = desired if isinstance(desired, int) else 1
    status = obj.get("status") or {}
    updated = _int(status.get("updatedReplicas"))
    available = _int(status.get("availableReplicas"))
    total = _int(status.get("replicas"))
    if desired == 0 and total == 0:
        return True, "scaled to 0 replicas"
    if updated < desired:
        return None, f"rollout in progress: {updated} of {desired} replicas updated"
    if total > updated:
        return None, f"rollout in progress: {total - updated} old replicas still running"
    if available < desired:
        return None, f"{available} of {desired} replicas available"
    return True, f"{available} of {desired} replicas available"


def _statefulset(obj: Mapping[str, Any]) -> Health:
    if (stale := _generation_pending(obj)) is not None:
        return stale
    desired = _get(obj, "spec", "replicas")
    desired = desired if isinstance(desired, int) else 1
    status = obj.get("status") or {}
    strategy = _get(obj, "spec", "updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        partition = _int(_get(strategy, "rollingUpdate", "partition"))
        updated = _int(status.get("updatedReplicas"))
        if updated < desired - partition:
            return None, f"rollout in progress: {updated} of {desired - partition} updated"
    ready = _int(status.get("availableReplicas", status.get("readyReplicas")))
    if ready < desired:
        return None, f"{ready} of {desired} replicas ready"
    return True, f"{ready} of {desired} replicas ready"


def _daemonset(obj: Mapping[str, Any]) -> Health:
    if (stale := _generation_pending(obj)) is not None:
        return stale
    status = obj.get("status") or {}
    desired = _int(status.get("desiredNumberScheduled"))
    available = _int(status.get("numberAvailable"))
    updated = _int(status.get("updatedNumberScheduled"))
    if desired == 0:
        return True, "no node matches the node selector: 0 pods wanted"
    on_delete = _get(obj, "spec", "updateStrategy", "type") == "OnDelete"
    if not on_delete and updated < desired:
        return None, f"rollout in progress: {updated} of {desired} nodes updated"
    # Rolled out: whether each node's pod is up is the CR's replica alert, which knows the
    # nodes and gives a starting pod its grace; here it would only turn an outage into PENDING.
    return True, f"rolled out; {available} of {desired} nodes have an available pod"


def _service(obj: Mapping[str, Any]) -> Health:
    if _get(obj, "spec", "type") == "LoadBalancer":
        if not _get(obj, "status", "loadBalancer", "ingress"):
            return True, "exists; the load balancer has no external address yet"
        return True, "exists with a load balancer address"
    return True, "exists"


def _pvc(obj: Mapping[str, Any], waiting_for_consumer: bool) -> Health:
    phase = _get(obj, "status", "phase")
    if phase == "Bound":
        return True, "bound to a volume"
    if phase == "Lost":
        return False, "lost its volume: the bound PersistentVolume no longer exists"
    annotations = _get(obj, "metadata", "annotations") or {}
    if waiting_for_consumer and SELECTED_NODE_ANNOTATION not in annotations:
        return True, "waiting for a first consumer before binding"
    return None, f"{phase or 'not yet'} bound: waiting for a volume"


def _present(obj: Mapping[str, Any]) -> Health:
    return True, "exists"


_BY_KIND: dict[str, Callable[[Mapping[str, Any]], Health]] = {
    "Deployment": _deployment,
    "StatefulSet": _statefulset,
    "DaemonSet": _daemonset,
    "Service": _service,
    "ConfigMap": _present,
    "Secret": _present,
    "ServiceAccount": _present,
}


def object_health(obj: Mapping[str, Any], *, waiting_for_consumer: bool = False) -> Health:
    """(healthy?, why) of a live object; None means PENDING rather than UNHEALTHY.

    A claim's body does not say whether its StorageClass binds on first consumer, so the
    caller passes ``waiting_for_consumer`` when it knows (the class's volumeBindingMode is
    WaitForFirstConsumer); such a claim is healthy while it waits.
    """
    if _get(obj, "metadata", "deletionTimestamp"):
        return None, "being deleted"
    kind = obj.get("kind")
    if kind == "PersistentVolumeClaim":
        return _pvc(obj, waiting_for_consumer)
    check = _BY_KIND.get(str(kind))
    if check is None:
        return True, f"exists (no health rule for {kind})"
    return check(obj)
