"""LAS and SGXPlugin figures against the DaemonSet controller's own count (kube-controller-manager
runs in the dev cluster): under a node selector, tolerated taints (the spec's and the
installation's SGX toleration) and untolerated ones; and a pod that never becomes ready
alerts once its grace ends, with no other event."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from enclave_operator.api.kinds import LAS, SGXPLUGIN
from enclave_operator.figures.compute import GRACE
from tests.integration.crs import CRs, condition, unique
from tests.integration.test_reconcile import las_spec
from tests.integration.waiting import wait_for

pytestmark = pytest.mark.integration
SGX_TOLERATION = {"key": "sgx.intel.com/epc", "operator": "Exists", "effect": "NoSchedule"}


@pytest.fixture
def crs(api_client, operator) -> CRs:
    return CRs(api_client)


@pytest.fixture
def pair(api_client, namespace) -> Iterator[tuple[str, str, str]]:
    """Two kwok nodes labelled for this test only: (label key, node a, node b); labels and any
    taint a test adds are removed afterwards."""
    core = client.CoreV1Api(api_client)
    listed: Any = core.list_node(label_selector="type=kwok")
    nodes: list[str] = sorted(str(n.metadata.name) for n in listed.items)
    assert len(nodes) >= 3
    label = f"enclave-test/{namespace}"
    a, b = nodes[0], nodes[1]
    for name in (a, b):
        core.patch_node(name, {"metadata": {"labels": {label: "yes"}}})
    yield label, a, b
    for name in (a, b):
        node: Any = core.read_node(name)
        taints = node.spec.taints or []
        kept = [t.to_dict() for t in taints if not t.key.startswith(("enclave-test", "sgx."))]
        core.patch_node(name, {"metadata": {"labels": {label: None}}, "spec": {"taints": kept}})


def taint(core: client.CoreV1Api, node: str, key: str, value: str, effect: str) -> None:
    body: Any = core.read_node(node)
    current = [t.to_dict() for t in body.spec.taints or []]
    added = {"key": key, "value": value, "effect": effect}
    core.patch_node(node, {"spec": {"taints": [*current, added]}})


def daemonset_counts(apps: client.AppsV1Api, namespace: str, name: str) -> tuple[int, int] | None:
    try:
        ds: Any = apps.read_namespaced_daemon_set(name, namespace)
    except client.ApiException as e:
        if e.status == 404:
            return None
        raise
    if (ds.status.observed_generation or 0) < ds.metadata.generation:
        return None
    return ds.status.desired_number_scheduled, ds.status.number_available or 0


def cr_counts(crs: CRs, kind: Any, name: str) -> tuple[int, int] | None:
    status = (crs.get(kind, name) or {}).get("status") or {}
    fields = (
        ("desiredNumberScheduled", "numberAvailable")
        if kind is LAS
        else ("desiredReplicas", "readyReplicas")
    )
    if any(f not in status for f in fields):
        return None
    return status[fields[0]], status[fields[1]]


def test_figures_agree_with_the_daemonset_controller(crs, api_client, namespace, pair):
    label, a, b = pair
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    tolerations = [
        {"key": label, "operator": "Equal", "value": "db", "effect": "NoSchedule"},
        SGX_TOLERATION,  # what the installation adds to the specs it writes
    ]
    placement = {"nodeSelector": {label: "yes"}, "tolerations": tolerations}
    las, sgx = unique("las"), unique("sgx")
    crs.create(LAS, las, {**las_spec(namespace), **placement})
    crs.create(SGXPLUGIN, sgx, {"namespace": namespace, **placement})
    daemons = ((LAS, las, f"las-{las}"), (SGXPLUGIN, sgx, f"sgxplugin-{sgx}"))

    def poke() -> None:
        """The DaemonSet controller (1.34) counts again only when it syncs the DaemonSet, and a
        NoSchedule taint on a node that already runs its pod does not make it sync (its
        syncNodeUpdate): a change to the pods does."""
        stamp = str(time.monotonic())
        for pod in core.list_namespaced_pod(namespace).items:
            patch = {"metadata": {"annotations": {"enclave-test/poke": stamp}}}
            try:
                core.patch_namespaced_pod(pod.metadata.name, namespace, patch)
            except client.ApiException as e:
                if e.status != 404:  # replaced or evicted meanwhile
                    raise

    def counts(kind: Any, name: str, ds: str) -> tuple[Any, Any]:
        poke()
        return daemonset_counts(apps, namespace, ds), cr_counts(crs, kind, name)

    def agree(expected: tuple[int, int], what: str) -> None:
        for kind, name, ds in daemons:
            got = wait_for(
                functools.partial(counts, kind, name, ds),
                lambda pair: pair[0] == pair[1] == expected,
                120,
                f"{kind.kind} and its DaemonSet to agree on {expected} ({what})",
            )
            assert got[0] == expected
        # and they still do once the operator has surely seen the change (a stale status
        # may agree by chance for a moment)
        time.sleep(3)
        for kind, name, ds in daemons:
            assert counts(kind, name, ds) == (expected, expected), f"{kind.kind}: {what}"

    try:
        agree((2, 2), "selected nodes only")
        # the reported case: a taint the spec tolerates on one of the two nodes
        taint(core, b, label, "db", "NoSchedule")
        agree((2, 2), "a tolerated taint")
        taint(core, a, "sgx.intel.com/epc", "true", "NoSchedule")
        agree((2, 2), "the SGX node pool taint")
        taint(core, a, f"{label}-other", "x", "NoSchedule")
        agree((1, 1), "an untolerated taint")
        taint(core, b, label, "other", "NoExecute")  # the value is not the tolerated one
        agree((0, 0), "an untolerated NoExecute taint")
    finally:
        crs.delete(LAS, las)
        crs.delete(SGXPLUGIN, sgx)
        crs.wait_gone(LAS, las)
        crs.wait_gone(SGXPLUGIN, sgx)


def test_a_pod_never_ready_alerts_when_its_grace_ends(crs, api_client, namespace, pair):
    """Its pod asks for more CPU than the node has, so it stays Pending: after the events of its
    creation nothing changes, and only the operator's own timer can raise the alert."""
    label, a, _ = pair
    core = client.CoreV1Api(api_client)
    core.patch_node(a, {"metadata": {"labels": {f"{label}-only": "yes"}}})
    las = unique("las")
    spec = {
        **las_spec(namespace),
        "nodeSelector": {f"{label}-only": "yes"},
        "resources": {"requests": {"cpu": "100000"}},
    }
    crs.create(LAS, las, spec)
    try:
        pods = wait_for(
            lambda: core.list_namespaced_pod(namespace).items,
            lambda items: len(items) == 1,
            90,
            "the LAS pod",
        )
        created = pods[0].metadata.creation_timestamp.timestamp()
        cr = crs.wait_state(LAS, las, "UNHEALTHY", timeout=GRACE + 90)
        alerted = time.time()
        assert cr["status"]["lasReplicaAlert"] == 1
        assert a in condition(cr, "IsHealthy")["message"]
        assert alerted - created >= GRACE - 1, "alerted before the grace ended"
        assert alerted - created < GRACE + 30, f"alerted {alerted - created:.0f}s after creation"
        assert core.list_namespaced_pod(namespace).items[0].status.phase == "Pending"
    finally:
        crs.delete(LAS, las)
        crs.wait_gone(LAS, las)
        core.patch_node(a, {"metadata": {"labels": {f"{label}-only": None}}})
