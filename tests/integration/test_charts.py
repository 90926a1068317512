"""The charts installed, upgraded and uninstalled by HelmRunner on the dev cluster.

Every effect is observed through the API server, never through ``helm status``.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import pytest
from kubernetes import client

from enclave_operator.api.kinds import CAS, LAS, SGXPLUGIN
from enclave_operator.charts import chart_path
from enclave_operator.charts.drift import contradictions
from enclave_operator.charts.values import release_name, values_for
from enclave_operator.devcluster.binaries import toolset
from enclave_operator.helm.runner import HelmResult, HelmRunner
from enclave_operator.reconcile.health import object_health
from tests.integration.waiting import wait_for

LABEL = "app.kubernetes.io/instance"


@pytest.fixture
def helm(cluster) -> HelmRunner:
    return HelmRunner(toolset().path("helm-server"), cluster.kubeconfig)


def run(coro):
    return asyncio.run(coro)


def body(api_client, obj, kind):
    data = api_client.sanitize_for_serialization(obj)
    data["kind"] = kind
    return data


def missing(call) -> bool:
    try:
        call()
    except client.ApiException as e:
        if e.status == 404:
            return True
        raise
    return False


def release_records(api_client, namespace, release):
    secrets = client.CoreV1Api(api_client).list_namespaced_secret(
        namespace, label_selector=f"owner=helm,name={release}"
    )
    return [s.metadata.labels.get("status") for s in secrets.items]


def install(helm, kind, namespace, spec, name="t"):
    release = release_name(kind, name)
    values = values_for(kind, {"spec": spec}, None)
    result = run(helm.install(release, namespace, chart_path(kind), values))
    assert result.ok, result.error
    assert result.revision == 1
    return release, values


def node_count(api_client) -> int:
    return len(client.CoreV1Api(api_client).list_node().items)


def wait_daemonset_ready(api_client, namespace, name):
    apps = client.AppsV1Api(api_client)
    nodes = node_count(api_client)
    ds = wait_for(
        lambda: body(api_client, apps.read_namespaced_daemon_set(name, namespace), "DaemonSet"),
        lambda d: object_health(d)[0] is True and d["status"]["numberReady"] == nodes,
        what=f"DaemonSet {name} ready on {nodes} nodes",
    )
    pods = client.CoreV1Api(api_client).list_namespaced_pod(
        namespace, label_selector=f"{LABEL}={name}"
    )
    ready = [
        p
        for p in pods.items
        if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    ]
    assert len({p.spec.node_name for p in ready}) == nodes
    for p in pods.items:
        assert p.metadata.labels["app.kubernetes.io/part-of"] == "enclave-operator"
    return ds


def test_las_one_ready_pod_per_node_then_uninstall(helm, api_client, namespace):
    # Not the default port: host ports are per node, and other tests may run a LAS too.
    port = random.randint(20000, 29999)
    release, values = install(helm, LAS, namespace, {"hostPort": port})
    ds = wait_daemonset_ready(api_client, namespace, release)
    assert contradictions(LAS, values, ds) == []
    pods = client.CoreV1Api(api_client).list_namespaced_pod(
        namespace, label_selector=f"{LABEL}={release}"
    )
    assert {p.spec.containers[0].ports[0].host_port for p in pods.items} == {port}

    result = run(helm.uninstall(release, namespace))
    assert result.ok, result.error
    apps = client.AppsV1Api(api_client)
    wait_for(
        lambda: missing(lambda: apps.read_namespaced_daemon_set(release, namespace)),
        bool,
        what="DaemonSet deleted",
    )
    assert release_records(api_client, namespace, release) == []


def test_sgxplugin_value_change_and_hand_edit_are_applied(helm, api_client, namespace):
    release, values = install(helm, SGXPLUGIN, namespace, {"capacitySGXPods": 110})
    wait_daemonset_ready(api_client, namespace, release)
    apps = client.AppsV1Api(api_client)

    def live():
        return body(api_client, apps.read_namespaced_daemon_set(release, namespace), "DaemonSet")

    changed = values_for(SGXPLUGIN, {"spec": {"capacitySGXPods": 7}}, None)
    result = run(helm.upgrade(release, namespace, chart_path(SGXPLUGIN), changed))
    assert result.ok, result.error
    assert result.revision == 2
    assert contradictions(SGXPLUGIN, changed, live()) == []
    assert contradictions(SGXPLUGIN, values, live()) == [
        "DaemonSet capacitySGXPods argument is 7, spec says 110"
    ]

    # The equivalent of `kubectl set image`: a hand edit that the next upgrade must undo.
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "sgx-plugin", "image": "x:2"}]}}}
    }
    apps.patch_namespaced_daemon_set(release, namespace, patch)
    assert contradictions(SGXPLUGIN, changed, live()) == [
        'DaemonSet image is "x:2", spec says "enclave-operator:0.1.0"'
    ]
    result = run(helm.upgrade(release, namespace, chart_path(SGXPLUGIN), changed))
    assert result.ok, result.error
    assert result.revision == 3
    assert contradictions(SGXPLUGIN, changed, live()) == []
    wait_daemonset_ready(api_client, namespace, release)


def test_cas_with_persistence_upgrade_and_deleted_service(helm, api_client, namespace):
    spec = {"persistence": {"enabled": True}, "service": {"annotations": {"team": "a"}}}
    release, values = install(helm, CAS, namespace, spec)
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    deployment = wait_for(
        lambda: body(api_client, apps.read_namespaced_deployment(release, namespace), "Deployment"),
        lambda d: object_health(d)[0] is True,
        what="CAS Deployment available",
    )
    assert deployment["status"]["readyReplicas"] == 1
    assert contradictions(CAS, values, deployment) == []
    claim = wait_for(
        lambda: core.read_namespaced_persistent_volume_claim(f"{release}-db", namespace),
        lambda c: c.status.phase == "Bound",
        what="CAS PVC bound",
    )
    assert claim.spec.storage_class_name == "standard"  # the cluster default
    claim_body = body(api_client, claim, "PersistentVolumeClaim")
    assert object_health(claim_body) == (True, "bound to a volume")
    assert contradictions(CAS, values, claim_body) == []

    def service() -> Any:
        return core.read_namespaced_service(release, namespace)

    assert [(p.name, p.port) for p in service().spec.ports] == [
        ("client", 8081),
        ("enclave", 18765),
    ]
    assert contradictions(CAS, values, body(api_client, service(), "Service")) == []

    node_port = random.randint(30000, 32767)
    spec["service"] = {
        "type": "NodePort",
        "clientPort": 9001,
        "nodePorts": {"clientPort": node_port},
    }
    changed = values_for(CAS, {"spec": spec}, None)
    result = run(helm.upgrade(release, namespace, chart_path(CAS), changed))
    assert result.ok, result.error
    live = service()
    assert live.spec.type == "NodePort"
    assert [(p.name, p.port) for p in live.spec.ports] == [("client", 9001), ("enclave", 18765)]
    assert live.spec.ports[0].node_port == node_port
    assert "team" not in (live.metadata.annotations or {})
    assert contradictions(CAS, changed, body(api_client, live, "Service")) == []

    core.delete_namespaced_service(release, namespace)
    wait_for(lambda: missing(service), bool, what="Service deleted")
    result = run(helm.upgrade(release, namespace, chart_path(CAS), changed))
    assert result.ok, result.error
    assert service().spec.ports[0].node_port == node_port

    result = run(helm.uninstall(release, namespace))
    assert result.ok, result.error
    for read in (service, lambda: apps.read_namespaced_deployment(release, namespace)):
        wait_for(lambda read=read: missing(read), bool, what="CAS objects deleted")
    # the database claim is marked helm.sh/resource-policy: keep: no uninstall deletes it
    claim = core.read_namespaced_persistent_volume_claim(f"{release}-db", namespace)
    assert claim.metadata.deletion_timestamp is None


def test_install_over_unmanaged_service_fails_without_record(helm, api_client, namespace):
    release = release_name(CAS, "taken")
    core = client.CoreV1Api(api_client)
    core.create_namespaced_service(
        namespace,
        {"metadata": {"name": release}, "spec": {"ports": [{"port": 1}]}},
    )
    result = run(helm.install(release, namespace, chart_path(CAS), values_for(CAS, {}, None)))
    assert not result.ok
    assert result.revision is None
    assert "INSTALLATION FAILED" in result.error
    assert f'Service "{release}" in namespace "{namespace}" exists' in result.error
    assert release_records(api_client, namespace, release) == []
    assert missing(
        lambda: client.AppsV1Api(api_client).read_namespaced_deployment(release, namespace)
    )
    assert core.read_namespaced_service(release, namespace).spec.ports[0].port == 1


def test_install_into_missing_namespace_creates_nothing(helm, api_client):
    absent = f"absent-{uuid.uuid4().hex[:8]}"
    result = run(helm.install("las-x", absent, chart_path(LAS), values_for(LAS, {}, None)))
    assert not result.ok
    assert f'namespaces "{absent}" not found' in result.error
    assert missing(lambda: client.CoreV1Api(api_client).read_namespace(absent))


def test_uninstall_of_unknown_release_reports_helms_error(helm, namespace):
    result = run(helm.uninstall("las-nothing", namespace))
    assert not result.ok
    assert "not found" in result.error
    assert result.error == result.error.strip()


def test_timeout_kills_helm(cluster, namespace):
    slow = HelmRunner(toolset().path("helm-server"), cluster.kubeconfig, timeout=0.001)
    result = run(slow.uninstall("las-nothing", namespace))
    assert result == HelmResult(False, None, "helm uninstall las-nothing killed after 0.001s")
