"""Owned objects' health, exactly: the answer and the message that becomes the condition's
message, for the edges the table-driven tests in test_health.py reach only by substring."""

from __future__ import annotations

from typing import Any

import pytest

from enclave_operator.reconcile.health import object_health


def body(kind: str, spec: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "metadata": {"generation": 1},
        "spec": spec or {},
        "status": {"observedGeneration": 1, **status},
    }


def deployment(replicas: int = 1, total: int = 1, updated: int = 1, **status: Any):
    return body(
        "Deployment",
        {"replicas": replicas},
        replicas=total,
        updatedReplicas=updated,
        availableReplicas=updated,
        **status,
    )


def condition(type_: str, **fields: str) -> dict[str, str]:
    return {"type": type_, **fields}


LB = {"type": "LoadBalancer"}
DEADLINE = {"reason": "ProgressDeadlineExceeded"}

CASES = {
    "deadline, no message": (
        deployment(conditions=[condition("Progressing", **DEADLINE)]),
        (False, "rollout stuck: progress deadline exceeded"),
    ),
    "deadline": (
        deployment(conditions=[condition("Progressing", **DEADLINE, message="took too long")]),
        (False, "rollout stuck: took too long"),
    ),
    "replica failure, no message": (
        deployment(conditions=[condition("ReplicaFailure", status="True", reason="FailedCreate")]),
        (False, "cannot create pods: FailedCreate"),
    ),
    "scaled to zero": (deployment(0, 0, 0), (True, "scaled to 0 replicas")),
    "scaling to zero": (
        deployment(0, 1, 0),
        (None, "rollout in progress: 1 old replicas still running"),
    ),
    "statefulset, replicas defaulted": (
        body("StatefulSet", updatedReplicas=1, availableReplicas=1),
        (True, "1 of 1 replicas ready"),
    ),
    "statefulset partition": (
        body(
            "StatefulSet",
            {"replicas": 3, "updateStrategy": {"rollingUpdate": {"partition": 1}}},
            updatedReplicas=0,
        ),
        (None, "rollout in progress: 0 of 2 updated"),
    ),
    "daemonset on no node": (
        body("DaemonSet", desiredNumberScheduled=0),
        (True, "no node matches the node selector: 0 pods wanted"),
    ),
    "service": (body("Service", {"type": "ClusterIP"}), (True, "exists")),
    "load balancer, no status": (
        body("Service", LB),
        (True, "exists; the load balancer has no external address yet"),
    ),
    "load balancer, no ingress yet": (
        body("Service", LB, loadBalancer={"ingress": []}),
        (True, "exists; the load balancer has no external address yet"),
    ),
    "load balancer": (
        body("Service", LB, loadBalancer={"ingress": [{"ip": "192.0.2.1"}]}),
        (True, "exists with a load balancer address"),
    ),
    "claim bound": (body("PersistentVolumeClaim", phase="Bound"), (True, "bound to a volume")),
    "claim lost": (
        body("PersistentVolumeClaim", phase="Lost"),
        (False, "lost its volume: the bound PersistentVolume no longer exists"),
    ),
    "configmap": (body("ConfigMap"), (True, "exists")),
    "secret": (body("Secret"), (True, "exists")),
    "serviceaccount": (body("ServiceAccount"), (True, "exists")),
}


@pytest.mark.parametrize("case", CASES)
def test_health(case):
    obj, want = CASES[case]
    assert object_health(obj) == want


def test_an_object_being_deleted_is_pending_whatever_its_kind():
    obj = body("ConfigMap")
    obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert object_health(obj) == (None, "being deleted")
