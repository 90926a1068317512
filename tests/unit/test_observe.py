"""From cached bodies to an Observation: stalled and outdated releases, owners, read errors."""

from __future__ import annotations

from enclave_operator.api.kinds import LAS
from enclave_operator.helm.releases import Release, ReleaseStatus, manifest_objects
from enclave_operator.kube import Kube
from enclave_operator.reconcile.observe import (
    FINALIZER,
    STALL_AFTER,
    Inputs,
    LookupError_,
    observe,
)

MANIFEST = """
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: las-x}
"""
CR = {"metadata": {"uid": "u1", "generation": 2, "finalizers": [FINALIZER]}, "spec": {}}
NOW = 10_000.0


def rel(status=ReleaseStatus.DEPLOYED, values=None, modified=NOW, chart="0.1.0", revision=1):
    return Release(
        "las-x", "ns", revision, status, "", MANIFEST, chart, values or {"a": 1}, modified
    )


def inputs(releases, lookup=lambda ref: None, **kw) -> Inputs:
    base = {
        "kind": LAS,
        "cr": CR,
        "release_name": "las-x",
        "release_namespace": "ns",
        "releases": releases,
        "release_error": None,
        "lookup": lookup,
        "values": {"a": 1},
        "chart_version": "0.1.0",
        "now": NOW,
    }
    return Inputs(**{**base, **kw})


def test_latest_revision_and_its_manifest_objects():
    obs = observe(inputs([rel(revision=1), rel(revision=2, status=ReleaseStatus.SUPERSEDED)]))
    assert obs.release.record is not None
    assert obs.release.record.revision == 2
    assert [o.ref.name for o in obs.objects] == ["las-x"]
    assert obs.objects[0].present is False
    assert obs.has_finalizer
    assert obs.generation == 2


def test_pending_release_stalls_only_after_a_while():
    fresh = observe(inputs([rel(ReleaseStatus.PENDING_INSTALL, modified=NOW - 1)]))
    old = observe(inputs([rel(ReleaseStatus.PENDING_INSTALL, modified=NOW - STALL_AFTER - 1)]))
    assert not fresh.release.stalled
    assert old.release.stalled


def test_changed_values_or_chart_make_the_release_outdated():
    assert not observe(inputs([rel()])).release.outdated
    assert observe(inputs([rel(values={"a": 2})])).release.outdated
    assert observe(inputs([rel(chart="0.0.9")])).release.outdated


def test_owned_object_owners_health_and_read_errors():
    body = {
        "metadata": {
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "LAS", "name": "x", "uid": "u1", "controller": True}
            ]
        },
        "status": {},
    }
    obs = observe(inputs([rel()], lookup=lambda ref: body))
    assert obs.objects[0].present
    assert [o.uid for o in obs.objects[0].owners] == ["u1"]

    def failing(ref):
        raise LookupError_("not watched")

    assert observe(inputs([rel()], lookup=failing)).objects[0].error == "not watched"


def test_cluster_scoped_objects_have_no_namespace_in_ref_or_path():
    """The watches index a ClusterRole under namespace None: a ref with the release's namespace
    would never be found, and the object would count as missing."""
    manifest = MANIFEST + "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
    manifest += "metadata: {name: enclave-ns-las-x}\n"
    refs = manifest_objects(manifest, "ns")
    assert [(r.kind, r.namespace) for r in refs] == [("DaemonSet", "ns"), ("ClusterRole", None)]
    assert Kube.object_path(refs[0]) == "/apis/apps/v1/namespaces/ns/daemonsets/las-x"
    assert Kube.object_path(refs[1]) == (
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/enclave-ns-las-x"
    )
