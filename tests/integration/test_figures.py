"""Status figures and alerts on the real control plane: nodes going NotReady, SGX devices
running out, node selectors, and the same figures on /metrics."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from enclave_operator.api.kinds import LAS, SGXPLUGIN
from tests.integration.crs import CRs, condition, unique
from tests.integration.test_reconcile import las_spec
from tests.integration.waiting import wait_for

KWOK = "kwok.x-k8s.io/node"
ENCLAVE = "sgx.intel.com/enclave"
SGX = "sgx.k8s.io/sgx"


@pytest.fixture
def crs(api_client, operator) -> CRs:
    return CRs(api_client)


@pytest.fixture
def nodes(api_client) -> list[Any]:
    found = client.CoreV1Api(api_client).list_node(label_selector="type=kwok").items
    assert len(found) >= 3
    return sorted(found, key=lambda n: n.metadata.name)


@pytest.fixture
def daemons(crs, namespace) -> Iterator[tuple[str, str]]:
    las, sgx = unique("las"), unique("sgx")
    crs.create(LAS, las, las_spec(namespace))
    crs.create(SGXPLUGIN, sgx, {"namespace": namespace})
    yield las, sgx
    crs.delete(LAS, las)
    crs.delete(SGXPLUGIN, sgx)
    crs.wait_gone(LAS, las)
    crs.wait_gone(SGXPLUGIN, sgx)


def set_ready(core: client.CoreV1Api, name: str, ready: bool) -> None:
    """kwok keeps a node it manages Ready; let go of it first to make it NotReady."""
    if not ready:
        core.patch_node(name, {"metadata": {"annotations": {KWOK: None}}})
        node: Any = core.read_node(name)
        conditions = [
            {
                "type": c.type,
                "status": "False" if c.type == "Ready" else c.status,
                "reason": "Test",
                "message": "made NotReady by a test",
            }
            for c in node.status.conditions
        ]
        core.patch_node_status(name, {"status": {"conditions": conditions}})
    else:
        core.patch_node(name, {"metadata": {"annotations": {KWOK: "fake"}}})


def test_las_replica_alert_follows_a_node(crs, api_client, nodes, daemons):
    las, _ = daemons
    core = client.CoreV1Api(api_client)
    cr = crs.wait_state(LAS, las, "HEALTHY")
    assert cr["status"]["desiredNumberScheduled"] == len(nodes)
    assert cr["status"]["numberAvailable"] == len(nodes)
    assert cr["status"]["lasReplicaAlert"] == 0
    victim = nodes[1].metadata.name
    assert cr["status"]["nodes"][victim]["ready"] is True
    set_ready(core, victim, False)
    try:
        cr = crs.wait_state(LAS, las, "UNHEALTHY")
        assert cr["status"]["lasReplicaAlert"] == 1
        assert cr["status"]["numberAvailable"] == len(nodes) - 1
        assert cr["status"]["nodes"][victim]["ready"] is False
        assert victim in condition(cr, "IsHealthy")["message"]
    finally:
        set_ready(core, victim, True)
    cr = crs.wait_state(LAS, las, "HEALTHY")
    assert cr["status"]["lasReplicaAlert"] == 0


def advertise(core: client.CoreV1Api, name: str, devices: int | None) -> None:
    """What the plugin's registration does to a node (None: what its removal leaves)."""
    amount = None if devices is None else str(devices)
    status = {"capacity": {SGX: amount}, "allocatable": {SGX: amount}}
    core.patch_node_status(name, {"status": status})


def user_pod(node: str, name: str, limits: dict[str, str]) -> dict[str, Any]:
    container = {"name": "c", "image": "app:1", "resources": {"limits": limits}}
    return {
        "metadata": {"name": name},
        "spec": {"nodeSelector": {"kubernetes.io/hostname": node}, "containers": [container]},
    }


def test_sgx_device_alert_when_a_node_runs_out(crs, api_client, nodes, daemons, namespace):
    """Only the plugin's own sgx.k8s.io/sgx counts: the fake nodes' Intel devices do not, and
    a node that does not advertise the plugin's devices is neither counted nor alerted on."""
    _, sgx = daemons
    core = client.CoreV1Api(api_client)
    cr = crs.wait_state(SGXPLUGIN, sgx, "HEALTHY")
    assert int(nodes[0].status.allocatable[ENCLAVE]) > 0, "fake nodes of Intel's plugin"
    assert cr["status"]["capacitySGXDevicesPerNode"] == {}
    assert (cr["status"]["capacitySGXDevices"], cr["status"]["sgxDeviceAlert"]) == (0, 0)
    full = nodes[0].metadata.name
    advertise(core, full, 2)
    try:
        cr = wait_for(
            lambda: crs.get(SGXPLUGIN, sgx),
            lambda c: c["status"]["capacitySGXDevicesPerNode"] == {full: 2},
            60,
            "the plugin's devices on one node",
        )
        assert (cr["status"]["capacitySGXDevices"], cr["status"]["usedSGXDevices"]) == (2, 0)
        assert cr["status"]["state"] == "HEALTHY"
        pods = [
            ("user-0", {SGX: "1", ENCLAVE: "1"}),
            ("user-1", {SGX: "1"}),
            ("intel", {ENCLAVE: "1"}),
        ]
        for name, limits in pods:
            core.create_namespaced_pod(namespace, user_pod(full, name, limits))
        cr = crs.wait_state(SGXPLUGIN, sgx, "UNHEALTHY")
        status = cr["status"]
        assert status["usedSGXDevicesPerNode"] == {full: 2}, "Intel's device is not counted"
        assert status["availableSGXDevicesPerNode"] == {full: 0}
        assert (status["usedSGXDevices"], status["availableSGXDevices"]) == (2, 0)
        assert status["sgxDeviceAlert"] == 1
        assert full in condition(cr, "IsHealthy")["message"]
        core.delete_collection_namespaced_pod(
            namespace, field_selector=f"spec.nodeName={full}", grace_period_seconds=0
        )
        cr = crs.wait_state(SGXPLUGIN, sgx, "HEALTHY")
        assert cr["status"]["sgxDeviceAlert"] == 0
    finally:
        advertise(core, full, None)


def test_node_selector_chooses_the_desired_nodes(crs, api_client, nodes, namespace):
    core = client.CoreV1Api(api_client)
    chosen = [n.metadata.name for n in nodes[:2]]
    label = f"enclave-test/{namespace}"
    for name in chosen:
        core.patch_node(name, {"metadata": {"labels": {label: "yes"}}})
    las = unique("las")
    crs.create(LAS, las, {**las_spec(namespace), "nodeSelector": {label: "yes"}})
    try:
        cr = crs.wait_state(LAS, las, "HEALTHY")
        assert cr["status"]["desiredNumberScheduled"] == 2
        assert sorted(cr["status"]["nodes"]) == sorted(chosen)
    finally:
        crs.delete(LAS, las)
        for name in chosen:
            core.patch_node(name, {"metadata": {"labels": {label: None}}})


def test_metrics_endpoint_serves_the_figures(crs, operator, nodes, daemons):
    las, sgx = daemons
    crs.wait_state(LAS, las, "HEALTHY")
    crs.wait_state(SGXPLUGIN, sgx, "HEALTHY")

    def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics") as r:
            text = r.read().decode()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    key = frozenset({("namespace", ""), ("name", las)})
    got = wait_for(
        scrape,
        lambda m: m.get(("enclave_las_number_available", key)) == len(nodes),
        what="the LAS figures on /metrics",
    )
    assert got[("enclave_las_las_replica_alert", key)] == 0
    state = frozenset({("kind", "las"), ("namespace", ""), ("name", las), ("state", "HEALTHY")})
    assert got[("enclave_cr_state", state)] == 1
    sgx_key = frozenset({("namespace", ""), ("name", sgx)})
    assert got[("enclave_sgxplugin_ready_replicas", sgx_key)] == len(nodes)
    assert any(name == "enclave_reconcile_duration_seconds_count" for name, _ in got)
