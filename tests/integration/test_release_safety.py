"""Releases the operator must recover, keep, leave alone or stop repairing: a pending record an
hour old, the CAS database claim on deletion, a foreign release of the same name, and drift
that something keeps putting back."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from enclave_operator.api.kinds import CAS, LAS
from enclave_operator.charts import chart_path
from enclave_operator.helm.releases import OPERATOR_LABEL
from tests.integration.crs import condition, unique
from tests.integration.faults import (
    TrackedCRs,
    record_trouble,
    release_records,
    write_pending_upgrade,
)
from tests.integration.test_reconcile import las_spec
from tests.integration.waiting import wait_for


@pytest.fixture
def crs(api_client, operator) -> Iterator[TrackedCRs]:
    tracked = TrackedCRs(api_client)
    yield tracked
    tracked.delete_all()


def revisions(core: client.CoreV1Api, ns: str, release: str) -> list[int]:
    return sorted(int(s.metadata.labels["version"]) for s in release_records(core, ns, release))


def test_a_pending_upgrade_record_an_hour_old_is_rolled_back(crs, api_client, namespace):
    """The record is written as helm writes one when it starts an upgrade (then dies): a new
    Secret, labelled createdAt, no modifiedAt."""
    core = client.CoreV1Api(api_client)
    name = unique("las")
    release = f"las-{name}"
    crs.create(LAS, name, las_spec(namespace))
    try:
        crs.wait_state(LAS, name, "HEALTHY")
        write_pending_upgrade(core, namespace, release, age=3600)
        wait_for(
            lambda: record_trouble(core, namespace, release, True),
            lambda problems: problems == [],
            timeout=120,
            what="the abandoned upgrade to be rolled back",
        )
        crs.wait_state(LAS, name, "HEALTHY", timeout=120)
        assert revisions(core, namespace, release) == [1, 2, 3]
    finally:
        crs.delete(LAS, name)


@pytest.mark.parametrize("when_deleted", ["Retain", "Delete"])
def test_the_cas_claim_outlives_the_cas_unless_the_spec_says_delete(
    when_deleted, crs, api_client, namespace
):
    core = client.CoreV1Api(api_client)
    name = unique("cas")
    spec = {"persistence": {"enabled": True, "whenDeleted": when_deleted}}
    crs.create(CAS, name, spec, namespace)
    crs.wait_state(CAS, name, "HEALTHY", namespace)
    claim = f"cas-{name}-db"
    uid = core.read_namespaced_persistent_volume_claim(claim, namespace).metadata.uid
    crs.delete(CAS, name, namespace)
    crs.wait_gone(CAS, name, namespace)
    time.sleep(3)  # the garbage collector acts on the CR's deletion within a second or two

    def left() -> Any:
        try:
            return core.read_namespaced_persistent_volume_claim(claim, namespace)
        except client.ApiException as e:
            if e.status == 404:
                return None
            raise

    if when_deleted == "Retain":
        pvc = left()
        assert pvc is not None
        assert pvc.metadata.uid == uid
        assert pvc.metadata.deletion_timestamp is None
        assert not pvc.metadata.owner_references
    else:
        wait_for(left, lambda p: p is None or p.metadata.deletion_timestamp is not None)


def test_a_foreign_release_of_the_same_name_is_reported_and_left_alone(
    crs, cluster, api_client, namespace
):
    core = client.CoreV1Api(api_client)
    name = unique("las")
    release = f"las-{name}"
    port = las_spec(namespace)["hostPort"]
    cluster.helm(
        "install", release, str(chart_path(LAS)), "-n", namespace, "--set", f"hostPort={port}"
    )
    before = {
        s.metadata.name: s.metadata.resource_version
        for s in release_records(core, namespace, release)
    }
    crs.create(LAS, name, las_spec(namespace))
    try:
        cr = crs.wait_state(LAS, name, "UNHEALTHY", timeout=60)
        failed = condition(cr, "ReleaseFailed")
        assert failed["status"] == "True"
        assert "did not make" in failed["message"]
        assert OPERATOR_LABEL[0] in failed["message"]
        time.sleep(5)
        after = {
            s.metadata.name: s.metadata.resource_version
            for s in release_records(core, namespace, release)
        }
        assert after == before  # never upgraded, rolled back or uninstalled
    finally:
        crs.delete(LAS, name)
    crs.wait_gone(LAS, name)
    after = {
        s.metadata.name: s.metadata.resource_version
        for s in release_records(core, namespace, release)
    }
    assert after == before
    ds = client.AppsV1Api(api_client).read_namespaced_daemon_set(release, namespace)
    assert not ds.metadata.owner_references


class Fighter(threading.Thread):
    """Another controller that keeps setting the DaemonSet's image to its own."""

    def __init__(self, apps: client.AppsV1Api, ns: str, name: str) -> None:
        super().__init__(daemon=True)
        self.apps, self.ns, self.name = apps, ns, name
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            try:
                ds: Any = self.apps.read_namespaced_daemon_set(self.name, self.ns)
                container = ds.spec.template.spec.containers[0]
                if container.image != "fighter:1":
                    body = {"name": container.name, "image": "fighter:1"}
                    patch = {"spec": {"template": {"spec": {"containers": [body]}}}}
                    self.apps.patch_namespaced_daemon_set(self.name, self.ns, patch)
            except client.ApiException:
                pass


def test_drift_that_keeps_coming_back_stops_after_three_upgrades(
    crs, cluster, api_client, namespace
):
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    name = unique("las")
    release = f"las-{name}"
    crs.create(LAS, name, las_spec(namespace))
    crs.wait_state(LAS, name, "HEALTHY")
    fighter = Fighter(apps, namespace, release)
    fighter.start()
    try:
        cr = wait_for(
            lambda: crs.get(LAS, name),
            lambda c: any(
                x["type"] == "DriftPersists" and x["status"] == "True"
                for x in (c.get("status") or {}).get("conditions") or []
            ),
            timeout=180,
            what="DriftPersists",
        )
        assert "fighter:1" in condition(cr, "DriftPersists")["message"]
        assert cr["status"]["state"] != "HEALTHY"
        made = revisions(core, namespace, release)
        assert len(made) <= 1 + 3 + 1  # the install, three upgrades, at most one in flight
        time.sleep(30)
        assert revisions(core, namespace, release) == made  # no new revision
        events = cluster.kubectl(
            "get", "events", "-A", "--field-selector", f"involvedObject.name={name}", "-o", "json"
        ).stdout
        assert "DriftPersists" in {e["reason"] for e in json.loads(events)["items"]}
    finally:
        fighter.stop.set()
        fighter.join()
    # a different drift (the object gone) is repaired again
    apps.delete_namespaced_daemon_set(release, namespace)
    crs.wait_state(LAS, name, "HEALTHY", timeout=120)
    crs.delete(LAS, name)
