"""Faults injected into the operator and its releases; after each, the CR must converge with no
orphan object, no duplicate or pending release record, and no data lost. The module prints
`faults injected / converged / orphans left / data lost` at the end.

"Data" is the CAS database claim: kwok runs no CAS process, so the PersistentVolumeClaim and its
uid stand for the database; a claim deleted or replaced is data lost.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from enclave_operator.api.kinds import CAS, LAS
from enclave_operator.charts import chart_path
from enclave_operator.devcluster.cluster import DevCluster
from enclave_operator.devcluster.restart import restart
from tests.integration.crs import CRs, unique
from tests.integration.faults import (
    SLOW,
    Killer,
    Tally,
    TrackedCRs,
    has_record,
    healthy_las,
    node_port_holder,
    node_port_spec,
    pvc_uid,
    release_records,
    settle,
    write_pending_upgrade,
)
from tests.integration.isolated import api_up, isolated_cluster, start_operator, stop_operator
from tests.integration.test_reconcile import las_spec
from tests.integration.waiting import wait_for

TALLY = Tally()


@pytest.fixture(scope="module", autouse=True)
def summary(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n" + TALLY.summary())


@pytest.fixture
def killer(operator) -> Iterator[Killer]:
    k = Killer(operator)
    k.ensure_running()
    yield k
    k.ensure_running()


@pytest.fixture
def crs(api_client) -> Iterator[TrackedCRs]:
    tracked = TrackedCRs(api_client)
    yield tracked
    tracked.delete_all()


KILLS = [
    "add_finalizer",
    "install",
    "wait",
    "remove_owners",
    "set_owner",
    "upgrade",
    "uninstall_failed",
    "rollback",
    "uninstall_deleted",
    "remove_finalizer",
]


@pytest.mark.parametrize("case", KILLS)
def test_sigkill_of_the_operator_group_at_each_action(case, killer, crs, api_client, namespace):
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    ns, kind, present, cr_ns = namespace, LAS, True, None
    pvc_before: str | None = None
    if case in ("add_finalizer", "install"):
        name = unique("las")
        release = f"las-{name}"
        killer.arm()
        crs.create(LAS, name, las_spec(ns))
        if case == "add_finalizer":
            landed = killer.kill_at(name, "ADD_FINALIZER", helm=False)
        else:
            pending = has_record(core, ns, release, "pending-install")
            landed = killer.kill_at(name, "INSTALL", helm=True, ready=pending)
    elif case == "wait":
        # a fresh pending record, as a helm that is (or may be) still running leaves it
        name, release, _ = healthy_las(crs, ns)
        write_pending_upgrade(core, ns, release, age=0)
        wait_for(
            lambda: _condition(crs.get(LAS, name), "ReleaseSteady"),
            lambda c: c is not None and c["status"] == "False",
            timeout=60,
            what="the operator to wait on the pending record",
        )
        killer.operator.kill_group()
        landed = "while waiting on a fresh pending-upgrade record"
    elif case in ("uninstall_failed", "rollback"):
        kind, cr_ns, name = CAS, ns, unique("cas")
        release = f"cas-{name}"
        port = node_port_holder(core, ns)
        if case == "uninstall_failed":
            killer.arm()
            crs.create(CAS, name, node_port_spec(port), ns)
            landed = killer.kill_at(name, "UNINSTALL_FAILED", helm=True)
        else:
            crs.create(CAS, name, {"persistence": {"enabled": True}}, ns)
            crs.wait_state(CAS, name, "HEALTHY", ns, timeout=SLOW)
            pvc_before = pvc_uid(core, ns, f"{release}-db")
            killer.arm()
            crs.patch(CAS, name, {"spec": node_port_spec(port)}, ns)
            landed = killer.kill_at(name, "ROLLBACK", helm=True)
        core.delete_namespaced_service("port-holder", ns)
    else:
        name, release, _cr = healthy_las(crs, ns)
        killer.arm()
        if case == "remove_owners":
            cm = core.create_namespaced_config_map(ns, {"metadata": {"name": unique("cm")}})
            foreign = {"apiVersion": "v1", "kind": "ConfigMap", "name": cm.metadata.name}
            owner = {**foreign, "uid": cm.metadata.uid}
            ds = apps.read_namespaced_daemon_set(release, ns)
            refs = [
                client.ApiClient().sanitize_for_serialization(r)
                for r in ds.metadata.owner_references
            ]
            body = {"metadata": {"ownerReferences": [*refs, owner]}}
            apps.patch_namespaced_daemon_set(release, ns, body)
            landed = killer.kill_at(name, "REMOVE_OWNERS", helm=False)
        elif case == "set_owner":
            apps.patch_namespaced_daemon_set(release, ns, {"metadata": {"ownerReferences": None}})
            landed = killer.kill_at(name, "SET_OWNER", helm=False)
        elif case == "upgrade":
            crs.patch(LAS, name, {"spec": {"hostPort": las_spec(ns)["hostPort"] + 1}})
            pending = has_record(core, ns, release, "pending-upgrade")
            landed = killer.kill_at(name, "UPGRADE", helm=True, ready=pending)
        else:
            present = False
            crs.delete(LAS, name)
            if case == "uninstall_deleted":
                # helm marks the record uninstalling and deletes it within milliseconds:
                # kill as soon as helm runs, not after it wrote something
                landed = killer.kill_at(name, "UNINSTALL_DELETED", helm=True)
            else:
                landed = killer.kill_at(name, "REMOVE_FINALIZER", helm=False)
    killer.restart()
    converged, left = settle(crs, api_client, kind, name, ns, release, present=present, cr_ns=cr_ns)
    lost = 0
    if pvc_before is not None:
        lost = int(pvc_uid(core, ns, f"{release}-db") != pvc_before)
    TALLY.add(f"SIGKILL at {case} ({landed})", converged, len(left), lost)
    if present:
        crs.delete(kind, name, cr_ns)
    assert converged, left
    assert left == []
    assert lost == 0


def _condition(cr: Any, type_: str) -> dict[str, Any] | None:
    conditions = ((cr or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == type_), None)


TAMPERING = ["delete_object", "edit_spec", "foreign_owner", "drop_finalizer", "failed_release"]


@pytest.mark.parametrize("case", TAMPERING)
def test_tampering_is_repaired(case, killer, crs, cluster, api_client, namespace):
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    name, release, cr = healthy_las(crs, namespace)
    ds = apps.read_namespaced_daemon_set(release, namespace)
    container = ds.spec.template.spec.containers[0]
    if case == "delete_object":
        apps.delete_namespaced_daemon_set(release, namespace)
    elif case == "edit_spec":
        body = {"name": container.name, "image": "evil:1"}
        patch = {"spec": {"template": {"spec": {"containers": [body]}}}}
        apps.patch_namespaced_daemon_set(release, namespace, patch)
    elif case == "foreign_owner":
        cm = core.create_namespaced_config_map(namespace, {"metadata": {"name": unique("cm")}})
        owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": cm.metadata.name}
        refs = [
            client.ApiClient().sanitize_for_serialization(r) for r in ds.metadata.owner_references
        ]
        body = {"metadata": {"ownerReferences": [*refs, {**owner, "uid": cm.metadata.uid}]}}
        apps.patch_namespaced_daemon_set(release, namespace, body)
    elif case == "drop_finalizer":
        crs.patch(LAS, name, {"metadata": {"finalizers": None}})
    else:  # someone's helm upgrade that fails: an invalid label key in the nodeSelector
        chart = str(chart_path(LAS))
        bad = ("--reuse-values", "--set-string", "nodeSelector.a/b/c=x", "--server-side=false")
        cluster.helm("upgrade", release, chart, "-n", namespace, *bad, check=False)
        wait_for(has_record(core, namespace, release, "failed"), bool, 60, "a failed record")
    uid = cr["metadata"]["uid"]

    def repaired() -> bool:
        """The tampered thing is back as the chart and the CR want it."""
        try:
            now = apps.read_namespaced_daemon_set(release, namespace)
        except client.ApiException:
            return False
        finalizers = crs.get(LAS, name)["metadata"].get("finalizers") or []
        return (now.metadata.uid != ds.metadata.uid if case == "delete_object" else True) and (
            now.spec.template.spec.containers[0].image == container.image
            and [o.uid for o in now.metadata.owner_references or []] == [uid]
            and bool(finalizers)
        )

    try:
        wait_for(repaired, bool, SLOW, f"{case} to be repaired")
        fixed = True
    except AssertionError:
        fixed = False
    converged, left = settle(crs, api_client, LAS, name, namespace, release, present=True)
    TALLY.add(f"tampering: {case}", converged and fixed, len(left), 0)
    crs.delete(LAS, name)
    assert fixed
    assert converged, left
    assert left == []


def test_a_failed_cas_upgrade_keeps_the_database_claim(killer, crs, cluster, api_client, namespace):
    """A NodePort taken by another Service makes the upgrade fail; before, the operator then
    uninstalled the release and the claim went with it."""
    core = client.CoreV1Api(api_client)
    name = unique("cas")
    release, claim = f"cas-{name}", f"cas-{name}-db"
    crs.create(CAS, name, {"persistence": {"enabled": True}}, namespace)
    crs.wait_state(CAS, name, "HEALTHY", namespace, timeout=SLOW)
    uid = pvc_uid(core, namespace, claim)
    assert uid is not None
    port = node_port_holder(core, namespace)
    crs.patch(CAS, name, {"spec": node_port_spec(port)}, namespace)
    seen = set()

    def rolled_back() -> bool:
        seen.add(pvc_uid(core, namespace, claim))
        records = release_records(core, namespace, release)
        return any(s.metadata.labels.get("status") == "failed" for s in records) and any(
            s.metadata.labels.get("status") == "deployed" and int(s.metadata.labels["version"]) > 2
            for s in records
        )

    wait_for(rolled_back, bool, SLOW, "the failed upgrade to be rolled back")
    events = cluster.kubectl(
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        f"involvedObject.name={name}",
        "-o",
        "json",
    ).stdout
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    core.delete_namespaced_service("port-holder", namespace)
    converged, left = settle(
        crs, api_client, CAS, name, namespace, release, present=True, cr_ns=namespace
    )
    seen.add(pvc_uid(core, namespace, claim))
    service = core.read_namespaced_service(release, namespace)
    live = [p.node_port for p in service.spec.ports if p.name == "client"] == [port]
    lost = int(seen != {uid})
    TALLY.add("failed CAS upgrade with data in the claim", converged and live, len(left), lost)
    crs.delete(CAS, name, namespace)
    assert "Rollback" in reasons
    assert "UninstallFailed" not in reasons
    assert seen == {uid}  # the claim never went away or changed
    assert converged, left
    assert live
    assert left == []


# --- kube-apiserver restart and 410 Gone, on a dev cluster of its own --------------------------
# The operator is frozen (SIGSTOP) across a kube-apiserver restart, and the CAS's Deployment is
# deleted meanwhile. Running again, its watches cannot resume (the new API server's watch cache
# starts after their resourceVersion: 410 Gone) and re-list: the Deployment is not in the list,
# and nothing else says it is gone. The same for Helm's release record. Its own cluster: the
# restart would disturb the session's.


@pytest.fixture(scope="module")
def gap_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    with isolated_cluster(tmp_path_factory, "gaps", nodes=1) as (dev, _):
        yield dev


def uid(obj: Any) -> str:
    return str(obj.metadata.uid)


def name(obj: Any) -> str:
    return str(obj.metadata.name)


def test_an_owned_object_deleted_during_an_apiserver_restart_is_recreated(
    gap_cluster: DevCluster, tmp_path: Path
) -> None:
    api: client.ApiClient = config.new_client_from_config(str(gap_cluster.kubeconfig))  # type: ignore[no-untyped-call]
    crs, apps, core = CRs(api), client.AppsV1Api(api), client.CoreV1Api(api)
    ns = unique("gap")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    log = tmp_path / "operator.log"
    operator = start_operator(gap_cluster.kubeconfig, log)
    converged = False
    try:
        crs.create(CAS, "cas", {}, ns)
        crs.wait_state(CAS, "cas", "HEALTHY", ns, timeout=120)
        before = uid(apps.read_namespaced_deployment("cas-cas", ns))

        os.killpg(operator.pid, signal.SIGSTOP)
        try:
            restart(gap_cluster, "kube-apiserver")
            wait_for(lambda: api_up(api), bool, 60, "the API server back")
            apps.delete_namespaced_deployment("cas-cas", ns)
            wait_for(
                lambda: [name(d) for d in apps.list_namespaced_deployment(ns).items],
                lambda names: "cas-cas" not in names,
                60,
                "the Deployment gone",
            )
        finally:
            os.killpg(operator.pid, signal.SIGCONT)

        recreated = wait_for(
            lambda: [uid(d) for d in apps.list_namespaced_deployment(ns).items],
            lambda uids: bool(uids) and before not in uids,
            90,
            "the operator to recreate the Deployment",
        )
        assert len(recreated) == 1
        crs.wait_state(CAS, "cas", "HEALTHY", ns, timeout=120)
        text = log.read_text(errors="replace")
        assert "was deleted while the watch was down" in text, text[-3000:]
        converged = True
    finally:
        TALLY.add(
            "kube-apiserver restart and 410 re-list, a Deployment deleted in the gap",
            converged,
            max(0, len(apps.list_namespaced_deployment(ns).items) - 1),
            0,
            "own dev cluster",
        )
        stop_operator(operator)
        print("operator log tail:\n" + "\n".join(log.read_text().splitlines()[-25:]))


def test_a_release_record_deleted_during_an_apiserver_restart_is_written_again(
    gap_cluster: DevCluster, tmp_path: Path
) -> None:
    """Helm's record of the CAS's release deleted while the operator's Secret watch was down:
    after the re-listing the operator must not go on trusting the record it cached; it
    installs again (Helm takes over the objects its annotations name) and a new record
    exists."""
    api: client.ApiClient = config.new_client_from_config(str(gap_cluster.kubeconfig))  # type: ignore[no-untyped-call]
    crs, core = CRs(api), client.CoreV1Api(api)
    ns = unique("gaprel")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    record = "sh.helm.release.v1.cas-cas.v1"
    log = tmp_path / "operator.log"
    operator = start_operator(gap_cluster.kubeconfig, log)
    converged = False

    def records() -> list[str]:
        found = core.list_namespaced_secret(ns, label_selector="owner=helm").items
        return [uid(s) for s in found]

    try:
        crs.create(CAS, "cas", {}, ns)
        crs.wait_state(CAS, "cas", "HEALTHY", ns, timeout=120)
        before = uid(core.read_namespaced_secret(record, ns))

        os.killpg(operator.pid, signal.SIGSTOP)
        try:
            restart(gap_cluster, "kube-apiserver")
            wait_for(lambda: api_up(api), bool, 60, "the API server back")
            core.delete_namespaced_secret(record, ns)
            wait_for(records, lambda uids: before not in uids, 60, "the record gone")
        finally:
            os.killpg(operator.pid, signal.SIGCONT)

        again = wait_for(
            records, lambda uids: bool(uids), 90, "the operator to write a release record again"
        )
        assert before not in again, again
        assert len(again) == 1, again
        crs.wait_state(CAS, "cas", "HEALTHY", ns, timeout=120)
        text = log.read_text(errors="replace")
        assert f"{ns}/{record} was deleted while the watch was down" in text, text[-3000:]
        converged = True
    finally:
        TALLY.add(
            "kube-apiserver restart and 410 re-list, a release record deleted in the gap",
            converged,
            0,
            0,
            "own dev cluster",
        )
        stop_operator(operator)
        print("operator log tail:\n" + "\n".join(log.read_text().splitlines()[-25:]))
