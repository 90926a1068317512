"""The node and pod views: which pods are kept, how a listing replaces a scope, what an event
changes and which CRs it concerns."""

from __future__ import annotations

import json
from typing import Any

import pytest

from enclave_operator.api.kinds import LAS, SGXPLUGIN
from enclave_operator.controller.views import (
    INSTANCE,
    PART_OF_KEY,
    ClusterViews,
    PodEntry,
    node_view,
    pod_entry,
)
from enclave_operator.controller.viewstream import ViewStream, replace
from enclave_operator.figures.cluster import SGX_DEVICE
from enclave_operator.kube import ApiException


def pod(name: str, ns: str = "ns", labels: Any = None, sgx: int = 0, rv: str = "1") -> Any:
    res = {"requests": {SGX_DEVICE: str(sgx)}} if sgx else {}
    return {
        "metadata": {"name": name, "namespace": ns, "labels": labels or {}, "resourceVersion": rv},
        "spec": {"nodeName": "n1", "containers": [{"image": "x:1", "resources": res}]},
        "status": {"phase": "Running"},
    }


OURS = {PART_OF_KEY: "enclave-operator", INSTANCE: "las-a"}


def node(name: str, ready: str = "True", heartbeat: str = "t0", rv: str = "1") -> Any:
    return {
        "metadata": {"name": name, "resourceVersion": rv, "labels": {"a": "b"}},
        "status": {
            "conditions": [{"type": "Ready", "status": ready, "lastHeartbeatTime": heartbeat}]
        },
    }


def test_only_pods_of_our_releases_and_pods_using_sgx_are_kept():
    assert pod_entry(pod("other")) is None
    assert pod_entry(pod("half", labels={INSTANCE: "las-a"})) is None  # not part of ours
    ours = pod_entry(pod("d", labels=OURS))
    assert ours is not None
    assert ours.release == "las-a"
    assert ours.pod.name == "d"
    sgx = pod_entry(pod("w", sgx=1))
    assert sgx is not None
    assert sgx.release == ""
    assert sgx.pod.sgx


def test_a_listing_replaces_its_scope_and_leaves_the_others():
    items = {("a", "1"): 1, ("a", "2"): 2, ("b", "1"): 1}
    changed = replace(items, "a", {("a", "2"): 20, ("a", "3"): 3})
    assert items == {("a", "2"): 20, ("a", "3"): 3, ("b", "1"): 1}
    assert sorted(changed) == [("a", "1"), ("a", "2"), ("a", "3")]
    assert replace(items, None, dict(items)) == []  # the same listing again: nothing changed
    replace(items, None, {})
    assert items == {}


class Recorder:
    def __init__(self) -> None:
        self.touched: list[tuple[tuple[str, ...], str, str]] = []

    def __call__(self, kinds: Any, namespace: str, release: str) -> None:
        self.touched.append((tuple(k.plural for k in kinds), namespace, release))


def stream_of(view: Any, changed: Any) -> ViewStream[Any]:
    return ViewStream(None, "/api/v1/pods", view, changed)  # type: ignore[arg-type]


def event(kind: str, body: Any) -> str:
    return json.dumps({"type": kind, "object": body})


def test_node_events_that_change_no_view_concern_no_cr():
    touched = Recorder()
    views = ClusterViews(touched)
    nodes = stream_of(node_view, views.node_changed)
    assert nodes.apply(event("ADDED", node("n1", rv="5"))) == "5"
    assert [n.name for n in views.nodes()] == ["n1"]
    assert touched.touched == [((LAS.plural, SGXPLUGIN.plural), "", "")]
    nodes.apply(event("MODIFIED", node("n1", heartbeat="t1", rv="6")))  # a heartbeat only
    assert len(touched.touched) == 1
    nodes.apply(event("MODIFIED", node("n1", ready="False", rv="7")))
    assert len(touched.touched) == 2
    assert not views.nodes()[0].ready
    nodes.apply(event("DELETED", node("n1", rv="8")))
    assert views.nodes() == []
    assert len(touched.touched) == 3


def test_pod_events_index_ours_and_sgx_pods_and_forget_the_rest():
    touched = Recorder()
    views = ClusterViews(touched)
    pods = stream_of(pod_entry, views.pod_changed)
    pods.apply(event("ADDED", pod("other")))
    assert pods.items == {}
    assert touched.touched == []
    pods.apply(event("ADDED", pod("d", labels=OURS)))
    assert [p.name for p in views.release_pods("ns", "las-a")] == ["d"]
    assert touched.touched == [((), "ns", "las-a")]
    pods.apply(event("ADDED", pod("w", sgx=1)))
    assert [p.name for p in views.sgx_pods()] == ["w"]
    assert touched.touched[-1] == ((SGXPLUGIN.plural,), "", "")
    pods.apply(event("MODIFIED", pod("w", rv="9")))  # no longer requests SGX: dropped
    assert views.sgx_pods() == []
    assert pods.items.keys() == {("ns", "d")}
    assert touched.touched[-1] == ((SGXPLUGIN.plural,), "", "")
    pods.apply(event("DELETED", pod("d", labels=OURS)))
    assert views.release_pods("ns", "las-a") == []
    assert views.by_release == {}


def test_a_relisting_drops_what_was_deleted_during_the_gap():
    views = ClusterViews()
    pods = stream_of(pod_entry, views.pod_changed)
    pods.apply(event("ADDED", pod("d", labels=OURS)))
    pods.apply(event("ADDED", pod("w", sgx=1)))
    before = dict(pods.items)
    for key in replace(pods.items, None, {("ns", "w"): before[("ns", "w")]}):
        views.pod_changed(key, before.get(key), pods.items.get(key))
    assert views.release_pods("ns", "las-a") == []
    assert len(views.sgx_pods()) == 1


def test_a_pod_changing_release_leaves_the_old_one():
    views = ClusterViews()
    old = pod_entry(pod("d", labels=OURS))
    new = pod_entry(pod("d", labels={**OURS, INSTANCE: "las-b"}))
    assert isinstance(old, PodEntry)
    assert isinstance(new, PodEntry)
    views.pod_changed(("ns", "d"), None, old)
    views.pod_changed(("ns", "d"), old, new)
    assert views.release_pods("ns", "las-a") == []
    assert [p.name for p in views.release_pods("ns", "las-b")] == ["d"]


def test_an_error_event_is_raised_and_a_bookmark_only_moves_the_version():
    pods = stream_of(pod_entry, lambda *a: pytest.fail("no view changes"))
    gone = {"kind": "Status", "code": 410, "message": "too old resource version"}
    with pytest.raises(ApiException) as e:
        pods.apply(event("ERROR", gone))
    assert e.value.status == 410
    bookmark = {"kind": "Pod", "metadata": {"resourceVersion": "42"}}
    assert pods.apply(event("BOOKMARK", bookmark)) == "42"
