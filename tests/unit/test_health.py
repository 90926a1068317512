"""object_health: True healthy, False unhealthy, None not determinable yet."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from enclave_operator.reconcile.health import object_health


def obj(
    kind: str, spec: Any = None, status: Any = None, generation: int | None = 2, **meta: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": kind, "metadata": {"name": "x", **meta}}
    if generation is not None:
        body["metadata"]["generation"] = generation
    if spec is not None:
        body["spec"] = spec
    if status is not None:
        body["status"] = status
    return body


def deploy(
    replicas: int = 1,
    observed: int = 2,
    updated: int = 1,
    available: int = 1,
    total: int = 1,
    conditions: Sequence[dict[str, str]] = (),
) -> dict[str, Any]:
    status = {
        "observedGeneration": observed,
        "replicas": total,
        "updatedReplicas": updated,
        "availableReplicas": available,
        "conditions": list(conditions),
    }
    return obj("Deployment", {"replicas": replicas}, status)


def sts(
    replicas: int = 2,
    observed: int = 2,
    updated: int = 2,
    ready: int = 2,
    strategy: dict[str, Any] | None = None,
    available: int | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "observedGeneration": observed,
        "updatedReplicas": updated,
        "readyReplicas": ready,
    }
    if available is not None:
        status["availableReplicas"] = available
    spec: dict[str, Any] = {"replicas": replicas}
    if strategy is not None:
        spec["updateStrategy"] = strategy
    return obj("StatefulSet", spec, status)


def ds(
    desired: int = 3,
    available: int = 3,
    updated: int = 3,
    observed: int = 2,
    strategy: str = "RollingUpdate",
) -> dict[str, Any]:
    status = {
        "observedGeneration": observed,
        "desiredNumberScheduled": desired,
        "numberAvailable": available,
        "updatedNumberScheduled": updated,
    }
    return obj("DaemonSet", {"updateStrategy": {"type": strategy}}, status)


def pvc(phase: str | None, **meta: Any) -> dict[str, Any]:
    return obj("PersistentVolumeClaim", {}, {"phase": phase} if phase else None, **meta)


DEADLINE = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
PROGRESSING = {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
FAILURE = {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "quota"}
LB = {"type": "LoadBalancer"}

CASES = [
    # Deployment
    ("deploy healthy", deploy(conditions=[PROGRESSING]), True, "1 of 1 replicas available"),
    ("deploy generation not observed", deploy(observed=1), None, "generation 2"),
    ("deploy no status yet", obj("Deployment", {"replicas": 1}), None, "generation 2"),
    ("deploy deadline exceeded", deploy(conditions=[DEADLINE]), False, "rollout stuck"),
    ("deploy replica failure", deploy(available=0, conditions=[FAILURE]), False, "quota"),
    ("deploy updating", deploy(updated=0), None, "0 of 1 replicas updated"),
    ("deploy old replicas", deploy(total=2), None, "1 old replicas"),
    ("deploy not available", deploy(available=0), None, "0 of 1 replicas available"),
    ("deploy scaled to zero", deploy(replicas=0, updated=0, available=0, total=0), True, "0"),
    ("deploy default replicas", obj("Deployment", {}, {"observedGeneration": 2}), None, "0 of 1"),
    # StatefulSet
    ("sts healthy", sts(), True, "2 of 2 replicas ready"),
    ("sts generation", sts(observed=1), None, "generation 2"),
    ("sts updating", sts(updated=1), None, "1 of 2 updated"),
    ("sts partition", sts(updated=1, strategy={"rollingUpdate": {"partition": 1}}), True, "ready"),
    ("sts on delete", sts(updated=0, strategy={"type": "OnDelete"}), True, "2 of 2"),
    ("sts not ready", sts(ready=1), None, "1 of 2 replicas ready"),
    ("sts available wins", sts(ready=2, available=1), None, "1 of 2"),
    # DaemonSet
    ("ds healthy", ds(), True, "3 of 3 nodes"),
    ("ds no nodes", ds(desired=0, available=0, updated=0), True, "no node matches"),
    ("ds generation", ds(observed=1), None, "generation 2"),
    ("ds updating", ds(updated=2), None, "2 of 3 nodes updated"),
    ("ds on delete ignores updates", ds(updated=0, strategy="OnDelete"), True, "3 of 3"),
    ("ds rolled out, pods down: the alert says", ds(available=1), True, "1 of 3 nodes"),
    ("ds unavailable on delete", ds(available=1, strategy="OnDelete"), True, "1 of 3"),
    # Service
    ("svc cluster ip", obj("Service", {"type": "ClusterIP"}, generation=None), True, "exists"),
    ("svc lb no address", obj("Service", LB, {"loadBalancer": {}}), True, "no external address"),
    (
        "svc lb address",
        obj("Service", LB, {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}),
        True,
        "load balancer address",
    ),
    # PersistentVolumeClaim
    ("pvc bound", pvc("Bound"), True, "bound"),
    ("pvc lost", pvc("Lost"), False, "lost"),
    ("pvc pending", pvc("Pending"), None, "Pending bound"),
    ("pvc no status", pvc(None), None, "not yet bound"),
    # Plain objects
    ("configmap", obj("ConfigMap", generation=None), True, "exists"),
    ("secret", obj("Secret", generation=None), True, "exists"),
    ("serviceaccount", obj("ServiceAccount", generation=None), True, "exists"),
    ("unknown kind", obj("Ingress", generation=None), True, "no health rule for Ingress"),
    # Any kind being deleted
    ("deleting", obj("ConfigMap", deletionTimestamp="2026-01-01T00:00:00Z"), None, "deleted"),
]


@pytest.mark.parametrize(
    ("body", "healthy", "fragment"),
    [pytest.param(body, healthy, fragment, id=name) for name, body, healthy, fragment in CASES],
)
def test_object_health(body, healthy, fragment):
    result, message = object_health(body)
    assert result is healthy, message
    assert fragment in message


def test_pvc_waiting_for_first_consumer_is_healthy():
    assert object_health(pvc("Pending"), waiting_for_consumer=True) == (
        True,
        "waiting for a first consumer before binding",
    )


def test_pvc_with_selected_node_is_binding_not_waiting():
    annotations = {"volume.kubernetes.io/selected-node": "sgx-node-0"}
    healthy, _ = object_health(pvc("Pending", annotations=annotations), waiting_for_consumer=True)
    assert healthy is None


def test_lost_is_unhealthy_even_when_waiting_for_consumer():
    assert object_health(pvc("Lost"), waiting_for_consumer=True)[0] is False
