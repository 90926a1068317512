"""How many SGX devices to advertise when `capacitySGXPods` is not set.

The spec's default is "the maximum number of pods per node": the Node's allocatable pods,
read once at start. When the Node cannot be read (no NODE_NAME, not in a cluster, no RBAC to
get nodes) the kubelet's default of 110 pods per node is used, and the log says why.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from enclave_operator.quantity import quantity

log = logging.getLogger(__name__)

FALLBACK_PODS = 110
"""The kubelet's default maxPods."""

MAX_DEVICES = 10000
"""The CRD's maximum of capacitySGXPods."""

ReadPods = Callable[[str], Any]
"""Returns the Node's ``status.allocatable["pods"]`` (a quantity) or raises."""


def resolve_capacity(flag: int, node_name: str | None, read_pods: ReadPods | None = None) -> int:
    """``flag`` when set (> 0), else the node's allocatable pods, else 110."""
    if flag > 0:
        return flag
    if not node_name:
        log.warning(
            "capacity: no node name (set NODE_NAME from spec.nodeName); advertising %d devices",
            FALLBACK_PODS,
        )
        return FALLBACK_PODS
    reader = read_pods or _read_allocatable_pods
    try:
        raw = reader(node_name)
    except Exception as e:  # any failure to read the Node is the same fallback
        log.warning(
            "capacity: cannot read the allocatable pods of node %s (%s); advertising %d devices",
            node_name,
            _reason(e),
            FALLBACK_PODS,
        )
        return FALLBACK_PODS
    pods = quantity(raw)
    if pods is None or pods < 1 or pods != int(pods):
        log.warning(
            "capacity: node %s has allocatable pods %r, not a positive count; advertising %d",
            node_name,
            raw,
            FALLBACK_PODS,
        )
        return FALLBACK_PODS
    count = min(int(pods), MAX_DEVICES)
    log.info("capacity: %d devices, the allocatable pods of node %s", count, node_name)
    return count


def _reason(e: Exception) -> str:
    status = getattr(e, "status", None)
    reason = getattr(e, "reason", None)
    if status is not None:
        return f"{status} {reason}"
    return str(e) or type(e).__name__


def _read_allocatable_pods(node_name: str) -> Any:
    """In a pod: the ServiceAccount's credentials; elsewhere: KUBECONFIG or ~/.kube/config."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))  # type: ignore[no-untyped-call]
    with client.ApiClient() as api:
        node = client.CoreV1Api(api).read_node(node_name, _request_timeout=10)
    status = node.status
    return (status.allocatable or {}).get("pods") if status is not None else None
