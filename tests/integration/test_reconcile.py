"""The operator against the real control plane: every effect observed through the API."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kubernetes import client

from enclave_operator.api.kinds import CAS, LAS, SGXPLUGIN
from enclave_operator.reconcile.observe import FINALIZER
from tests.integration.crs import CRs, condition, unique
from tests.integration.waiting import wait_for

CR_TYPES = {
    "IsHealthy",
    "DeletionPresent",
    "FinalizerPresent",
    "ReleaseExists",
    "ReleaseSteady",
    "ReleaseFailed",
    "ReleaseDeployed",
    "AtLeastOneOwnedObjectPresent",
    "AllOwnedObjectsPresent",
}
OO_TYPES = {
    "OwnedObjectHealthy",
    "OwnedObjectPresent",
    "OwnedObjectDeletionPresent",
    "OwnedObjectValidOwners",
    "OwnsOwnedObject",
    "SoleOwner",
    "EqualSpecs",
}


@pytest.fixture
def crs(api_client, operator) -> CRs:
    return CRs(api_client)


def release_secrets(api_client, ns: str, release: str) -> list[Any]:
    core = client.CoreV1Api(api_client)
    return core.list_namespaced_secret(ns, label_selector=f"owner=helm,name={release}").items


def las_spec(namespace: str) -> dict[str, Any]:
    """LAS pods bind a hostPort on every node: two LAS on one port cannot both be scheduled."""
    return {"namespace": namespace, "hostPort": 20000 + int(namespace[2:], 16) % 10000}


def owner_uids(obj) -> list[str]:
    return [o.uid for o in obj.metadata.owner_references or []]


def test_all_three_services_become_healthy(crs, cluster, namespace):
    crs.create(CAS, "cas", {"persistence": {"enabled": True, "size": "2Gi"}}, namespace)
    las, sgx = unique("las"), unique("sgx")
    crs.create(LAS, las, las_spec(namespace))
    crs.create(SGXPLUGIN, sgx, {"namespace": namespace, "capacitySGXPods": 20})
    try:
        cas_cr = crs.wait_state(CAS, "cas", "HEALTHY", namespace)
        for kind, name in ((LAS, las), (SGXPLUGIN, sgx)):
            crs.wait_state(kind, name, "HEALTHY")
        types = {c["type"] for c in cas_cr["status"]["conditions"]}
        assert types >= CR_TYPES
        for obj in ("deployment.cas-cas", "service.cas-cas", "persistentvolumeclaim.cas-cas-db"):
            assert {f"{obj}/{t}" for t in OO_TYPES} <= types
        assert all(c["status"] in ("True", "False") for c in cas_cr["status"]["conditions"])
        got = cluster.kubectl("get", "cas", "-n", namespace).stdout
        assert "HEALTHY" in got
        described = cluster.kubectl("describe", "cas", "cas", "-n", namespace).stdout
        for t in CR_TYPES | {"deployment.cas-cas/EqualSpecs"}:
            assert t in described
        events = cluster.kubectl(
            "get",
            "events",
            "-n",
            namespace,
            "--field-selector",
            "involvedObject.name=cas",
            "-o",
            "json",
        ).stdout
        reasons = {e["reason"] for e in json.loads(events)["items"]}
        assert {"Install", "StateChanged"} <= reasons
        assert "AddFinalizer" not in reasons  # bookkeeping, not news; a failure would be
    finally:
        crs.delete(LAS, las)
        crs.delete(SGXPLUGIN, sgx)


def test_deleting_the_cr_uninstalls_everything(crs, api_client, namespace):
    name = unique("las")
    crs.create(LAS, name, las_spec(namespace))
    crs.wait_state(LAS, name, "HEALTHY")
    apps = client.AppsV1Api(api_client)
    assert apps.list_namespaced_daemon_set(namespace).items
    crs.delete(LAS, name)
    crs.wait_gone(LAS, name)
    assert release_secrets(api_client, namespace, f"las-{name}") == []
    wait_for(
        lambda: apps.list_namespaced_daemon_set(namespace).items,
        lambda items: items == [],
        what="the DaemonSet to be gone",
    )


def test_repairs_finalizer_owners_deletion_and_drift(crs, api_client, namespace):
    name = unique("las")
    crs.create(LAS, name, las_spec(namespace))
    try:
        cr = crs.wait_state(LAS, name, "HEALTHY")
        uid = cr["metadata"]["uid"]
        ds_name = f"las-{name}"
        apps = client.AppsV1Api(api_client)

        # a finalizer removed by hand comes back
        crs.patch(LAS, name, {"metadata": {"finalizers": None}})
        wait_for(
            lambda: crs.get(LAS, name)["metadata"].get("finalizers") or [],
            lambda f: FINALIZER in f,
            what="the finalizer to come back",
        )

        # a second owner: all owners removed, then the CR set as sole owner
        intruder = client.CoreV1Api(api_client).create_namespaced_config_map(
            namespace, {"metadata": {"name": "intruder"}}
        )
        ds = apps.read_namespaced_daemon_set(ds_name, namespace)
        refs = [
            *(ds.metadata.owner_references or []),
            client.V1OwnerReference(
                api_version="v1", kind="ConfigMap", name="intruder", uid=intruder.metadata.uid
            ),
        ]
        apps.patch_namespaced_daemon_set(
            ds_name,
            namespace,
            {
                "metadata": {
                    "ownerReferences": [
                        client.ApiClient().sanitize_for_serialization(r) for r in refs
                    ]
                }
            },
        )
        wait_for(
            lambda: owner_uids(apps.read_namespaced_daemon_set(ds_name, namespace)),
            lambda uids: uids == [uid],
            what="the CR to be the DaemonSet's sole owner",
        )
        ds = apps.read_namespaced_daemon_set(ds_name, namespace)
        assert ds.metadata.owner_references[0].controller is True

        # an image edited by hand is put back by an upgrade
        image = ds.spec.template.spec.containers[0].image
        apps.patch_namespaced_daemon_set(
            ds_name,
            namespace,
            {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {
                                    "name": ds.spec.template.spec.containers[0].name,
                                    "image": "evil:1",
                                }
                            ]
                        }
                    }
                }
            },
        )
        wait_for(
            lambda: apps.read_namespaced_daemon_set(ds_name, namespace),
            lambda d: d.spec.template.spec.containers[0].image == image,
            what="the DaemonSet image to be restored",
        )

        # a deleted owned object comes back
        apps.delete_namespaced_daemon_set(ds_name, namespace)
        wait_for(
            lambda: [d.metadata.uid for d in apps.list_namespaced_daemon_set(namespace).items],
            lambda uids: len(uids) == 1 and uids[0] != ds.metadata.uid,
            what="the DaemonSet to be recreated",
        )
        crs.wait_state(LAS, name, "HEALTHY")

        # a spec change is upgraded into the live object
        new_port = las_spec(namespace)["hostPort"] + 1
        crs.patch(LAS, name, {"spec": {"hostPort": new_port}})
        wait_for(
            lambda: apps.read_namespaced_daemon_set(ds_name, namespace),
            lambda d: d.spec.template.spec.containers[0].ports[0].host_port == new_port,
            what="the new hostPort to be live",
        )
        secrets = release_secrets(api_client, namespace, ds_name)
        assert max(int(s.metadata.labels["version"]) for s in secrets) >= 3
        crs.wait_state(LAS, name, "HEALTHY")
    finally:
        crs.delete(LAS, name)


def test_service_port_edited_by_hand_is_restored(crs, api_client, namespace):
    crs.create(CAS, "cas", {}, namespace)
    crs.wait_state(CAS, "cas", "HEALTHY", namespace)
    core = client.CoreV1Api(api_client)
    svc = core.read_namespaced_service("cas-cas", namespace)
    ports = [(p.name, p.port) for p in svc.spec.ports]
    assert ("client", 8081) in ports
    index = [p.name for p in svc.spec.ports].index("client")
    core.patch_namespaced_service(
        "cas-cas",
        namespace,
        [{"op": "replace", "path": f"/spec/ports/{index}/port", "value": 9999}],
    )
    edited = core.read_namespaced_service("cas-cas", namespace)
    assert ("client", 9999) in [(p.name, p.port) for p in edited.spec.ports]
    # Helm cannot patch a port list whose key was edited (the names collide), so the upgrade
    # fails and the table's next rows apply: uninstall the failed release, install again.
    wait_for(
        lambda: _service_ports(core, namespace, "cas-cas"),
        lambda got: got == sorted(ports),
        timeout=120,
        what="the Service ports to be restored",
    )
    crs.wait_state(CAS, "cas", "HEALTHY", namespace)


def _service_ports(core, namespace: str, name: str) -> list[tuple[str, int]] | None:
    try:
        return sorted(
            (p.name, p.port) for p in core.read_namespaced_service(name, namespace).spec.ports
        )
    except client.ApiException as e:
        if e.status == 404:
            return None
        raise


def test_failed_install_is_reported_then_recovers(crs, api_client, namespace):
    core = client.CoreV1Api(api_client)
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "cas-blocked"},
            "spec": {"ports": [{"port": 1}]},
        },
    )
    crs.create(CAS, "blocked", {}, namespace)
    cr = crs.wait_state(CAS, "blocked", "UNHEALTHY", namespace)
    failed = condition(cr, "ReleaseFailed")
    assert failed["status"] == "True"
    assert "cas-blocked" in failed["message"]  # Helm's own words name the conflicting object
    assert condition(cr, "IsHealthy")["status"] == "False"
    core.delete_namespaced_service("cas-blocked", namespace)
    cr = crs.wait_state(CAS, "blocked", "HEALTHY", namespace, timeout=120)
    assert condition(cr, "ReleaseFailed")["status"] == "False"
    assert (
        len(
            [
                s
                for s in release_secrets(api_client, namespace, "cas-blocked")
                if s.metadata.labels["status"] == "deployed"
            ]
        )
        == 1
    )


def test_kill_9_during_install_then_restart(crs, operator, api_client, namespace):
    operator.kill9()
    operator.start()
    time.sleep(3)  # let it list and settle before the CR appears
    name = unique("las")
    crs.create(LAS, name, las_spec(namespace))
    release = f"las-{name}"
    deadline = time.monotonic() + 60
    while not operator.children():  # helm running under the operator: kill it now
        assert time.monotonic() < deadline, "the operator never ran helm"
        time.sleep(0.01)
    operator.kill9()
    operator.start()
    try:
        cr = crs.wait_state(LAS, name, "HEALTHY", timeout=120)
        secrets = release_secrets(api_client, namespace, release)
        assert [s.metadata.labels["status"] for s in secrets].count("deployed") == 1
        apps = client.AppsV1Api(api_client)
        sets = apps.list_namespaced_daemon_set(namespace).items
        assert [d.metadata.name for d in sets] == [release]
        assert owner_uids(sets[0]) == [cr["metadata"]["uid"]]
    finally:
        crs.delete(LAS, name)


def test_missing_namespace_is_reported_and_retried_with_backoff(crs, cluster, namespace):
    name, target = unique("las"), unique("absent")
    crs.create(LAS, name, {**las_spec(namespace), "namespace": target})
    try:
        cr = crs.wait_state(LAS, name, "UNHEALTHY")
        failed = condition(cr, "ReleaseFailed")
        assert failed["status"] == "True"
        assert f'namespaces "{target}" not found' in failed["message"]
        cluster.kubectl("create", "namespace", target)
        crs.wait_state(LAS, name, "HEALTHY", timeout=120)
    finally:
        crs.delete(LAS, name)
        crs.wait_gone(LAS, name)
        cluster.kubectl("delete", "namespace", target, "--wait=false", check=False)


def test_only_the_first_valid_pull_secret_is_used(crs, api_client, namespace):
    core = client.CoreV1Api(api_client)
    core.create_namespaced_secret(namespace, {"metadata": {"name": "opaque"}, "type": "Opaque"})
    for name in ("registry", "registry2"):
        core.create_namespaced_secret(
            namespace,
            {
                "metadata": {"name": name},
                "type": "kubernetes.io/dockerconfigjson",
                "stringData": {".dockerconfigjson": '{"auths": {}}'},
            },
        )
    spec = {
        "imagePullSecrets": [
            {"name": "missing"},
            {"name": "opaque"},
            {"name": "registry"},
            {"name": "registry2"},
        ],
        "autoUpdate": False,
    }
    crs.create(CAS, "cas", spec, namespace)
    cr = crs.wait_state(CAS, "cas", "HEALTHY", namespace)
    deployment = client.AppsV1Api(api_client).read_namespaced_deployment("cas-cas", namespace)
    assert [s.name for s in deployment.spec.template.spec.image_pull_secrets] == ["registry"]
    message = condition(cr, "IsHealthy")["message"]
    # pull secrets come from a watch of that type only: a Secret of another type is unseen
    assert "missing (no Secret of type kubernetes.io/dockerconfigjson by that name)" in message
    assert "opaque (no Secret of type kubernetes.io/dockerconfigjson by that name)" in message
    assert "registry2 (only the first valid one is used)" in message
