"""The dev cluster behaves like Kubernetes: scheduling, controllers, kwok, garbage collection."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from tests.integration.waiting import wait_for

SGX_NODE = {"feature.node.kubernetes.io/cpu-sgx.enabled": "true"}


def _pod_spec(limits: dict[str, str] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "registry.invalid/app:1"}
    if limits:
        container["resources"] = {"limits": limits}
    return {"containers": [container]}


def _pods(core: client.CoreV1Api, ns: str, selector: str) -> list[Any]:
    return list(core.list_namespaced_pod(ns, label_selector=selector).items)


def _ready(pod: Any) -> bool:
    conds = pod.status.conditions or []
    return pod.status.phase == "Running" and any(
        c.type == "Ready" and c.status == "True" for c in conds
    )


def test_fake_nodes_are_ready_and_advertise_sgx(api_client):
    nodes = client.CoreV1Api(api_client).list_node(label_selector="type=kwok").items
    assert len(nodes) >= 3
    for node in nodes:
        assert node.metadata.labels["feature.node.kubernetes.io/cpu-sgx.enabled"] == "true"
        assert node.status.allocatable["sgx.intel.com/epc"] == "128Mi"
        assert node.status.allocatable["sgx.intel.com/enclave"] == "20"
        assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)


def test_deployment_gets_ready_pods(api_client, namespace):
    apps = client.AppsV1Api(api_client)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": _pod_spec()},
            },
        },
    )
    dep = wait_for(
        lambda: apps.read_namespaced_deployment("web", namespace),
        lambda d: (d.status.ready_replicas or 0) == 3 and (d.status.available_replicas or 0) == 3,
        what="deployment web to have 3 ready replicas",
    )
    assert dep.status.updated_replicas == 3
    pods = _pods(client.CoreV1Api(api_client), namespace, "app=web")
    assert len(pods) == 3
    assert all(_ready(p) and p.spec.node_name.startswith("sgx-node-") for p in pods)


def test_daemonset_runs_one_pod_per_matching_node(api_client, namespace):
    apps = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    nodes = core.list_node(label_selector="feature.node.kubernetes.io/cpu-sgx.enabled=true").items
    chosen = nodes[0].metadata.name
    for name, selector, expected in (
        ("all", SGX_NODE, len(nodes)),
        ("one", {"kubernetes.io/hostname": chosen}, 1),
    ):
        labels = {"ds": name}
        apps.create_namespaced_daemon_set(
            namespace,
            {
                "metadata": {"name": name},
                "spec": {
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {**_pod_spec(), "nodeSelector": selector},
                    },
                },
            },
        )
        ds = wait_for(
            lambda n=name: apps.read_namespaced_daemon_set(n, namespace),
            lambda d, e=expected: (
                d.status.desired_number_scheduled == e and d.status.number_ready == e
            ),
            what=f"daemonset {name} to have {expected} ready pods",
        )
        pods = _pods(core, namespace, f"ds={name}")
        assert ds.status.number_available == expected
        assert sorted(p.spec.node_name for p in pods) == sorted({p.spec.node_name for p in pods}), (
            "two pods on one node"
        )
        assert len(pods) == expected
    assert _pods(core, namespace, "ds=one")[0].spec.node_name == chosen


def test_scheduler_respects_sgx_capacity(api_client, namespace):
    core = client.CoreV1Api(api_client)
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "fits", "labels": {"t": "fits"}},
            "spec": _pod_spec({"sgx.intel.com/epc": "64Mi", "sgx.intel.com/enclave": "1"}),
        },
    )
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "too-big"},
            "spec": _pod_spec({"sgx.intel.com/epc": "1Gi"}),
        },
    )
    wait_for(lambda: core.read_namespaced_pod("fits", namespace), _ready, what="pod fits Ready")

    def unschedulable(pod: Any) -> bool:
        conds = pod.status.conditions or []
        return any(c.type == "PodScheduled" and c.reason == "Unschedulable" for c in conds)

    pod = wait_for(
        lambda: core.read_namespaced_pod("too-big", namespace),
        unschedulable,
        what="the scheduler to refuse pod too-big",
    )
    assert pod.status.phase == "Pending"
    assert pod.spec.node_name is None
    message = next(c.message for c in pod.status.conditions if c.type == "PodScheduled")
    assert "Insufficient sgx.intel.com/epc" in message


def test_garbage_collector_deletes_dependents(api_client, namespace):
    core = client.CoreV1Api(api_client)
    apps = client.AppsV1Api(api_client)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "dependent", "ownerReferences": [ref]}}
    )
    labels = {"app": "gc"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "gc"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": _pod_spec()},
            },
        },
    )
    wait_for(lambda: _pods(core, namespace, "app=gc"), lambda ps: len(ps) == 1, what="gc pod")
    core.delete_namespaced_config_map("owner", namespace)
    apps.delete_namespaced_deployment("gc", namespace)  # background propagation by default

    wait_for(
        lambda: [c.metadata.name for c in core.list_namespaced_config_map(namespace).items],
        lambda names: "dependent" not in names,
        what="the garbage collector to delete ConfigMap dependent",
    )
    wait_for(
        lambda: (
            apps.list_namespaced_replica_set(namespace).items,
            _pods(core, namespace, "app=gc"),
        ),
        lambda seen: seen == ([], []),
        what="the garbage collector to delete the ReplicaSet and its pod",
    )


def test_pvc_with_default_storage_class_binds(api_client, namespace):
    core = client.CoreV1Api(api_client)
    core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    pvc = wait_for(
        lambda: core.read_namespaced_persistent_volume_claim("data", namespace),
        lambda c: c.status.phase == "Bound",
        what="PVC data to be Bound",
    )
    assert pvc.spec.storage_class_name == "standard"
    assert pvc.status.capacity["storage"] == "1Gi"
