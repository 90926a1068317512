"""Status figures and alerts from node and pod bodies, against hand-counted expectations."""

from __future__ import annotations

import datetime as dt
from typing import Any

from enclave_operator.figures.cluster import NodeView, PodView
from enclave_operator.figures.compute import GRACE, cas_figures, las_figures, sgx_figures

NOW = 1_800_000_000.0
LONG_AGO = "2020-01-01T00:00:00Z"


def node(
    name: str, ready: bool = True, labels: dict[str, str] | None = None, **alloc: str
) -> NodeView:
    resources = {k.replace("__", "/").replace("_", "."): v for k, v in alloc.items()}
    return NodeView.of(
        {
            "metadata": {"name": name, "labels": labels or {}},
            "status": {
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                "addresses": [{"type": "InternalIP", "address": f"10.0.0.{name[-1]}"}],
                "allocatable": resources,
            },
        }
    )


def pod(
    name: str,
    on: str,
    ready: bool = True,
    created: str = LONG_AGO,
    image: str = "las:1.2",
    limits: dict[str, str] | None = None,
    phase: str = "Running",
    bound: bool = True,
) -> PodView:
    spec: dict[str, Any] = {
        "containers": [{"name": "c", "image": image, "resources": {"limits": limits or {}}}]
    }
    if bound:
        spec["nodeName"] = on
    else:
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {"key": "metadata.name", "operator": "In", "values": [on]}
                            ]
                        }
                    ]
                }
            }
        }
    return PodView.of(
        {
            "metadata": {
                "name": name,
                "namespace": "ns",
                "creationTimestamp": created,
                "uid": f"uid-{name}",
            },
            "spec": spec,
            "status": {
                "phase": phase,
                "hostIP": "10.0.0.9",
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True" if ready else "False",
                        "lastTransitionTime": LONG_AGO,
                    }
                ],
            },
        }
    )


NODES = [node("n1"), node("n2"), node("n3", labels={"pool": "b"})]


def test_las_all_running():
    reported = {"uid-a": "1.2", "uid-b": "1.2", "uid-c": "1.2"}
    f = las_figures(
        {}, NODES, [pod("a", "n1"), pod("b", "n2"), pod("c", "n3")], NOW, reported=reported
    )
    assert f.status["desiredNumberScheduled"] == 3
    assert f.status["numberAvailable"] == 3
    assert f.status["lasReplicaAlert"] == 0
    assert f.status["version"] == "1.2"
    assert f.status["nodes"]["n1"] == {
        "ready": True,
        "pod": "a",
        "hostIP": "10.0.0.9",
        "version": "1.2",
        "since": LONG_AGO,
    }
    assert f.alerts == ()


def test_las_node_not_ready_and_missing_pod_alert_by_name():
    nodes = [node("n1"), node("n2", ready=False), node("n3")]
    f = las_figures({}, nodes, [pod("a", "n1"), pod("b", "n2")], NOW)
    assert f.status["numberAvailable"] == 1
    assert f.status["lasReplicaAlert"] == 2
    assert f.alerts == ("lasReplicaAlert=2: not running on n2, n3",)


def test_a_starting_pod_gets_its_grace_then_alerts():
    young = NOW - GRACE / 2
    stamp = dt.datetime.fromtimestamp(young, dt.UTC)
    fresh = pod("a", "n1", ready=False, created=stamp.strftime("%Y-%m-%dT%H:%M:%SZ"), bound=False)
    f = las_figures({"nodeSelector": {}}, [node("n1")], [fresh], NOW)
    assert (f.status["lasReplicaAlert"], f.starting, f.alerts) == (0, ("n1",), ())
    stale = pod("a", "n1", ready=False)
    f = las_figures({}, [node("n1")], [stale], NOW)
    assert f.status["lasReplicaAlert"] == 1


def test_node_selector_and_taints_choose_where_daemons_belong():
    tainted = NodeView.of(
        {
            "metadata": {"name": "t"},
            "spec": {"taints": [{"key": "dedicated", "effect": "NoSchedule"}]},
            "status": {},
        }
    )
    f = las_figures({"nodeSelector": {"pool": "b"}}, [*NODES, tainted], [], NOW)
    assert f.status["desiredNumberScheduled"] == 1
    assert las_figures({}, [*NODES, tainted], [], NOW).status["desiredNumberScheduled"] == 3


def test_sgx_devices_per_node_and_exhaustion():
    nodes = [node("n1", **{"sgx.k8s.io__sgx": "2"}), node("n2", **{"sgx.k8s.io__sgx": "2"})]
    plugins = [pod("p1", "n1"), pod("p2", "n2")]
    users = [
        pod("u1", "n1", limits={"sgx.k8s.io/sgx": "1"}),
        pod("u2", "n1", limits={"sgx.k8s.io/sgx": "1"}),
        pod("u3", "n2", limits={"sgx.k8s.io/sgx": "1"}),
        pod("done", "n2", limits={"sgx.k8s.io/sgx": "1"}, phase="Succeeded"),
    ]
    f = sgx_figures({}, nodes, plugins, users, NOW)
    assert f.status["capacitySGXDevicesPerNode"] == {"n1": 2, "n2": 2}
    assert f.status["usedSGXDevicesPerNode"] == {"n1": 2, "n2": 1}
    assert f.status["availableSGXDevicesPerNode"] == {"n1": 0, "n2": 1}
    assert (f.status["capacitySGXDevices"], f.status["usedSGXDevices"]) == (4, 3)
    assert f.status["availableSGXDevices"] == 1
    assert (f.status["desiredReplicas"], f.status["readyReplicas"]) == (2, 2)
    assert f.status["sgxDeviceAlert"] == 1
    assert f.alerts == ("sgxDeviceAlert=1: no SGX device left on n1",)


READY = {"conditions": [{"type": "Ready", "status": "True"}]}


def test_other_plugins_resources_are_not_the_plugins_devices():
    """Intel's devices and EPC, Azure's and Alibaba's EPC MiB: neither counted nor alerted on,
    even used up; only sgx.k8s.io/sgx is."""
    allocatable = [
        {"sgx.k8s.io/sgx": "3", "sgx.intel.com/enclave": "1"},
        {"sgx.intel.com/enclave": "1", "sgx.intel.com/epc": "128Mi"},
        {"kubernetes.azure.com/sgx_epc_mem_in_MiB": "128"},
        {"alibabacloud.com/sgx_epc_MiB": "128"},
    ]
    nodes = [
        NodeView.of({"metadata": {"name": f"n{i}"}, "status": {**READY, "allocatable": a}})
        for i, a in enumerate(allocatable, 1)
    ]
    plugins = [pod(f"p{i}", f"n{i}") for i in range(1, 5)]
    users = [
        pod("u1", "n1", limits={"sgx.intel.com/enclave": "1", "sgx.k8s.io/sgx": "1"}),
        pod("u2", "n2", limits={"sgx.intel.com/enclave": "1"}),
        pod("u3", "n3", limits={"kubernetes.azure.com/sgx_epc_mem_in_MiB": "128"}),
        pod("u4", "n1", limits={"sgx.intel.com/enclave": "1"}),  # beside the plugin's devices
    ]
    f = sgx_figures({}, nodes, plugins, users, NOW)
    assert f.status["capacitySGXDevicesPerNode"] == {"n1": 3}
    assert f.status["usedSGXDevicesPerNode"] == {"n1": 1}
    assert f.status["availableSGXDevicesPerNode"] == {"n1": 2}
    assert (f.status["capacitySGXDevices"], f.status["usedSGXDevices"]) == (3, 1)
    assert f.status["availableSGXDevices"] == 2
    assert (f.status["desiredReplicas"], f.status["sgxDeviceAlert"]) == (4, 0)
    assert f.alerts == ()
    assert users[1].sgx == {}, "not an SGX pod of this plugin: the operator does not cache it"


def test_sgx_unreadable_capacity_is_minus_one():
    f = sgx_figures({}, [node("n1", **{"sgx.k8s.io__sgx": "lots"})], [pod("p", "n1")], [], NOW)
    assert f.status["capacitySGXDevicesPerNode"] == {"n1": -1}
    assert f.status["capacitySGXDevices"] == -1
    assert f.status["sgxDeviceAlert"] == 1


def test_cas_version_is_what_the_running_service_reports():
    running = pod("c", "n1", image="reg.io/cas:5.8.0")
    assert cas_figures([running]).status == {"version": ""}, "not the image tag"
    assert cas_figures([running], {running.uid: "0.1.0"}).status == {"version": "0.1.0"}
    assert cas_figures([]).status == {"version": ""}


def test_a_node_without_pod_waits_for_a_young_daemonset_or_node():
    f = las_figures({}, [node("n1")], [], NOW, daemon_since=NOW - 5)
    assert (f.status["lasReplicaAlert"], f.starting) == (0, ("n1",))
    f = las_figures({}, [node("n1")], [], NOW, daemon_since=NOW - GRACE - 1)
    assert (f.status["lasReplicaAlert"], f.starting) == (1, ())
