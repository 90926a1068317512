"""Figures at their edges: the 60 s grace, replacement and finished pods, nodes without SGX
or without SGX pods, and the SGXPlugin's replica alert, which test_figures.py leaves out."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from enclave_operator.figures.cluster import NodeView, PodView
from enclave_operator.figures.compute import las_figures, sgx_figures

NOW = 1_800_000_000.0
SGX = "sgx.k8s.io/sgx"


def node(name: str, ready: bool = True, devices: str | None = None) -> NodeView:
    resources = {SGX: Decimal(devices)} if devices is not None else {}
    return NodeView(name, {}, ready, f"10.0.0.{name[-1]}", resources, (), created=NOW - 3600)


def pod(name: str, on: str, ready: bool = True, age: float = 3600.0, **changes: object) -> PodView:
    made = PodView("ns", name, on, ready, "", "", "", False, {}, NOW - age, uid=f"uid-{name}")
    return replace(made, **changes)  # type: ignore[arg-type]


def las(nodes: list[NodeView], pods: list[PodView], **versions: str) -> dict[str, object]:
    """LAS figures; ``versions``: what each pod's LAS answered, by pod name."""
    reported = {f"uid-{name}": v for name, v in versions.items()}
    return las_figures({}, nodes, pods, NOW, reported=reported).status


def test_a_pod_not_ready_60_s_after_creation_alerts():
    f = las_figures({}, [node("n1")], [pod("a", "n1", ready=False, age=60.0)], NOW)
    assert (f.starting, f.status["lasReplicaAlert"]) == ((), 1)
    f = las_figures({}, [node("n1")], [pod("a", "n1", ready=False, age=59.5)], NOW)
    assert (f.starting, f.status["lasReplicaAlert"]) == (("n1",), 0)


def test_a_not_ready_node_does_not_hide_the_nodes_after_it():
    status = las([node("n1", ready=False), node("n2")], [pod("a", "n1"), pod("b", "n2")])
    assert status["numberAvailable"] == 1


def test_finished_pods_are_not_the_nodes_daemon():
    pods = [pod("done", "n1", terminated=True), pod("b", "n2")]
    status = las([node("n1"), node("n2")], pods, done="1.1", b="1.2")
    assert status["numberAvailable"] == 1
    assert status["nodes"] == {
        "n1": {"ready": False, "pod": "", "hostIP": "10.0.0.1", "version": ""},
        "n2": {"ready": True, "pod": "b", "hostIP": "10.0.0.2", "version": "1.2"},
    }


def test_a_ready_replacement_wins_over_its_predecessor_and_not_the_reverse():
    old, new = pod("old", "n1", ready=False), pod("new", "n1")
    for pods in ([old, new], [new, old]):
        assert las([node("n1")], pods)["nodes"]["n1"]["pod"] == "new"
    first, second = pod("first", "n1"), pod("second", "n1")
    assert las([node("n1")], [first, second])["nodes"]["n1"]["pod"] == "first"


def test_version_counts_ready_pods_only():
    pods = [pod("a", "n1"), pod("b", "n2", ready=False), pod("c", "n3", ready=False)]
    nodes = [node("n1"), node("n2"), node("n3")]
    assert las(nodes, pods, a="1.2", b="1.3", c="1.3")["version"] == "1.2"
    assert las([node("n1")], [pod("a", "n1", ready=False)], a="1.2")["version"] == ""


def test_a_las_that_has_not_answered_has_no_version_yet():
    status = las([node("n1")], [pod("a", "n1")])
    assert status["version"] == ""
    assert status["nodes"] == {
        "n1": {"ready": True, "pod": "a", "hostIP": "10.0.0.1", "version": ""}
    }


def test_sgx_nodes_without_the_plugins_devices_or_without_sgx_pods():
    nodes = [node("bare"), node("idle", devices="1"), node("used", devices="2")]
    plugins = [pod(f"p-{n.name}", n.name) for n in nodes]
    users = [pod("u", "used", sgx={SGX: Decimal(1)})]
    f = sgx_figures({}, nodes, plugins, users, NOW)
    # bare advertises no sgx.k8s.io/sgx (yet): not counted, not alerted
    assert f.status["capacitySGXDevicesPerNode"] == {"idle": 1, "used": 2}
    assert f.status["usedSGXDevicesPerNode"] == {"idle": 0, "used": 1}
    assert f.status["availableSGXDevicesPerNode"] == {"idle": 1, "used": 1}
    assert (f.status["desiredReplicas"], f.status["sgxDeviceAlert"]) == (3, 0)
    assert f.alerts == ()


def test_devices_used_beyond_capacity_leave_none_available_not_a_negative_count():
    """The kubelet takes unhealthy devices out of allocatable while pods still hold them."""
    users = [pod("u1", "n1", sgx={SGX: Decimal(1)}), pod("u2", "n1", sgx={SGX: Decimal(1)})]
    f = sgx_figures({}, [node("n1", devices="1")], [pod("p1", "n1")], users, NOW)
    assert f.status["availableSGXDevicesPerNode"] == {"n1": 0}
    assert (f.status["availableSGXDevices"], f.status["usedSGXDevices"]) == (0, 2)
    assert f.status["sgxDeviceAlert"] == 1


def test_a_used_up_node_alerts_only_while_its_plugin_is_ready():
    users = [pod("u1", "n1", sgx={SGX: Decimal(1)})]
    f = sgx_figures({}, [node("n1", devices="1")], [pod("p1", "n1", ready=False)], users, NOW)
    assert f.status["availableSGXDevicesPerNode"] == {"n1": 0}
    assert f.status["sgxDeviceAlert"] == 0


def test_one_unreadable_capacity_makes_the_total_unknown_and_the_rest_still_counts():
    unreadable = replace(node("n1"), sgx={SGX: None})
    nodes = [unreadable, node("n2", devices="2")]
    f = sgx_figures({}, nodes, [pod("p1", "n1"), pod("p2", "n2")], [], NOW)
    assert f.status["capacitySGXDevicesPerNode"] == {"n1": -1, "n2": 2}
    assert f.status["capacitySGXDevices"] == -1


def test_sgx_exhausted_nodes_are_named_in_one_alert():
    nodes = [node("n1", devices="1"), node("n2", devices="1")]
    users = [pod("u1", "n1", sgx={SGX: Decimal(1)}), pod("u2", "n2", sgx={SGX: Decimal(1)})]
    f = sgx_figures({}, nodes, [pod("p1", "n1"), pod("p2", "n2")], users, NOW)
    assert f.alerts == ("sgxDeviceAlert=2: no SGX device left on n1, n2",)


def test_sgx_replica_alert_gives_starting_plugins_their_grace():
    nodes = [node("n1", devices="1"), node("n2", devices="1"), node("n3", devices="1")]
    plugins = [pod("p1", "n1"), pod("p2", "n2", ready=False, age=10.0)]  # none on n3
    f = sgx_figures({}, nodes, plugins, [], NOW, daemon_since=NOW - 3600)
    assert (f.status["desiredReplicas"], f.status["readyReplicas"]) == (3, 1)
    assert f.status["sgxReplicaAlert"] == 1
    assert f.starting == ("n2",)
    assert f.alerts == ("sgxReplicaAlert=1: not running on n3",)
