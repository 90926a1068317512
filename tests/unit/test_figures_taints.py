"""Where a daemon should run, as the DaemonSet controller decides it: taints against the spec's
tolerations and the controller's own; and when the figures must be looked at again."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from enclave_operator.figures.cluster import NodeView
from enclave_operator.figures.compute import GRACE, las_figures, sgx_figures
from tests.unit.test_figures import NOW, pod

SGX_TOLERATION = {"key": "sgx.intel.com/epc", "operator": "Exists", "effect": "NoSchedule"}


def tainted(name: str, *taints: dict[str, str], ready: bool = True) -> NodeView:
    return NodeView.of(
        {
            "metadata": {"name": name, "labels": {"pool": "sgx"}},
            "spec": {"taints": list(taints)},
            "status": {"conditions": [{"type": "Ready", "status": str(ready)}]},
        }
    )


def desired(spec: dict[str, Any], *nodes: NodeView) -> int:
    las = las_figures(spec, nodes, [], NOW).status["desiredNumberScheduled"]
    plugin = sgx_figures(spec, nodes, [], [], NOW).status["desiredReplicas"]
    assert las == plugin
    return int(las)


def test_a_taint_named_in_spec_tolerations_keeps_its_node():
    """The reported case: two selected nodes, one tainted with what the spec tolerates."""
    db = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
    spec = {"nodeSelector": {"pool": "sgx"}, "tolerations": [{**db, "operator": "Equal"}]}
    assert desired(spec, tainted("n1"), tainted("n2", db)) == 2
    assert desired({"nodeSelector": {"pool": "sgx"}}, tainted("n1"), tainted("n2", db)) == 1


@pytest.mark.parametrize(
    ("toleration", "tolerated"),
    [
        ({"key": "dedicated", "operator": "Exists"}, True),
        ({"operator": "Exists"}, True),  # no key: every taint
        ({"key": "dedicated", "operator": "Equal", "value": "db"}, True),
        ({"key": "dedicated", "value": "db"}, True),  # Equal is the default operator
        ({"key": "dedicated", "operator": "Equal", "value": "web"}, False),
        ({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}, False),
        ({"key": "other", "operator": "Exists"}, False),
    ],
)
def test_toleration_matching_follows_kubernetes(toleration, tolerated):
    node = tainted("n1", {"key": "dedicated", "value": "db", "effect": "NoSchedule"})
    assert desired({"tolerations": [toleration]}, node) == int(tolerated)


def test_the_installations_sgx_toleration_admits_sgx_node_pools():
    pool = tainted("n1", {"key": "sgx.intel.com/epc", "value": "true", "effect": "NoSchedule"})
    assert desired({"tolerations": [SGX_TOLERATION]}, pool) == 1
    assert desired({}, pool) == 0


def test_the_daemonset_controllers_own_tolerations_and_what_they_leave_out():
    own = [
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/pid-pressure", "effect": "NoSchedule"},
    ]
    assert desired({}, *(tainted(f"n{i}", t) for i, t in enumerate(own))) == len(own)
    # only daemons with hostNetwork tolerate this one, and the charts use none
    network = {"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}
    assert desired({}, tainted("n1", network)) == 0
    # PreferNoSchedule keeps nothing off
    assert desired({}, tainted("n1", {"key": "x", "effect": "PreferNoSchedule"})) == 1


def test_a_node_tainted_as_down_is_not_desired_but_still_alerts():
    """The node lifecycle controller taints a NotReady node not-ready:NoSchedule: the DaemonSet
    controller stops counting it, the replica alert does not."""
    down = tainted(
        "n2", {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}, ready=False
    )
    f = las_figures({}, [tainted("n1"), down], [pod("a", "n1"), pod("b", "n2")], NOW)
    assert (f.status["desiredNumberScheduled"], f.status["numberAvailable"]) == (1, 1)
    assert f.status["lasReplicaAlert"] == 1
    assert f.alerts == ("lasReplicaAlert=1: not running on n2",)
    noexec = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
    assert desired({}, tainted("n1", noexec)) == 1  # tolerated by every daemon pod


def _stamp(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_figures_say_when_the_first_grace_ends():
    """Nothing happens when a pod's grace ends, so the figures name the moment to look again."""
    nodes = [tainted("n1"), tainted("n2"), tainted("n3")]
    pods = [
        pod("a", "n1", ready=False, created=_stamp(NOW - 50)),
        pod("b", "n2", ready=False, created=_stamp(NOW - 10)),
        pod("c", "n3"),
    ]
    f = las_figures({}, nodes, pods, NOW)
    assert f.starting == ("n1", "n2")
    assert f.recheck_at == NOW - 50 + GRACE
    later = las_figures({}, nodes, pods, f.recheck_at)
    assert later.status["lasReplicaAlert"] == 1
    assert later.recheck_at == NOW - 10 + GRACE
    assert las_figures({}, nodes[2:], pods[2:], NOW).recheck_at is None
    plugin = sgx_figures({}, nodes, pods, [], NOW)
    assert plugin.recheck_at == NOW - 50 + GRACE
