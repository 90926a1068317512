"""The node and pod streams against the API server: a list in pages, the watch that follows,
and a failed watch that lists again and drops what was deleted while it was down."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from kubernetes import client

from enclave_operator.controller import viewstream
from enclave_operator.controller.views import (
    INSTANCE,
    PART_OF_KEY,
    PART_OF_VALUE,
    ClusterViews,
    node_view,
    pod_entry,
)
from enclave_operator.controller.viewstream import ViewStream
from enclave_operator.figures.cluster import SGX_DEVICE
from enclave_operator.kube import Kube

OURS = {PART_OF_KEY: PART_OF_VALUE, INSTANCE: "las-v"}


def make_pod(core: client.CoreV1Api, ns: str, name: str, labels: Any, sgx: bool = False) -> None:
    resources = {"limits": {SGX_DEVICE: "1"}, "requests": {SGX_DEVICE: "1"}} if sgx else {}
    body: Any = {
        "metadata": {"name": name, "labels": labels},
        # an unschedulable name: nothing runs it, the API object is what counts
        "spec": {
            "nodeSelector": {"enclave.dev/nowhere": "x"},
            "containers": [{"name": "c", "image": "x:1", "resources": resources}],
        },
    }
    core.create_namespaced_pod(ns, body)


async def until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        await asyncio.sleep(0.2)


def test_pods_listed_in_pages_then_relisted_after_a_failed_watch_then_followed(
    cluster: Any, api_client: client.ApiClient, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(viewstream, "LIMIT", 2)  # five kept pods and some others: three pages
    core = client.CoreV1Api(api_client)
    for i in range(5):
        make_pod(core, namespace, f"ours-{i}", OURS)
    make_pod(core, namespace, "other", {"app": "x"})
    make_pod(core, namespace, "sgx", {"app": "x"}, sgx=True)
    touched: list[str] = []
    pages: list[str] = []

    class OutOfDate(ViewStream[Any]):
        """Lists as ever; the first time, deletes two pods after the list and hands on a
        version the API server refuses (400): the watch fails, as a broken one would."""

        first = True

        async def _list(self, scope: str | None) -> str:
            version = await super()._list(scope)
            pages.append(version)
            if not self.first:
                return version
            self.first = False
            for name in ("ours-0", "sgx"):
                await asyncio.to_thread(core.delete_namespaced_pod, name, namespace)
            return "not-a-version"

    async def scenario() -> None:
        kube = await Kube.connect(cluster.kubeconfig)
        views = ClusterViews(lambda kinds, ns, release: touched.append(release))
        pods = OutOfDate(kube, "/api/v1/pods", pod_entry, views.pod_changed, [namespace])
        task = asyncio.create_task(pods.run())
        try:
            await asyncio.wait_for(pods.listed.wait(), 60)
            assert len(pages) == 1
            await until(lambda: len(pages) == 2, 120, "a second listing after the failed watch")
            names = sorted(p.name for p in views.release_pods(namespace, "las-v"))
            assert names == [f"ours-{i}" for i in range(1, 5)]
            assert views.sgx_pods() == []
            assert "las-v" in touched
            make_pod(core, namespace, "ours-9", OURS)  # the watch follows from the new list
            await until(lambda: len(views.release_pods(namespace, "las-v")) == 5, 60, "ours-9 seen")
            assert set(pods.items) == {
                (namespace, n) for n in ("ours-1", "ours-2", "ours-3", "ours-4", "ours-9")
            }
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await kube.close()

    asyncio.run(scenario())


def test_every_node_is_listed_as_a_view(cluster: Any, api_client: client.ApiClient) -> None:
    listed = client.CoreV1Api(api_client).list_node().items
    names = sorted(str(n.metadata.name) for n in listed if n.metadata)

    async def scenario() -> list[str]:
        kube = await Kube.connect(cluster.kubeconfig)
        views = ClusterViews()
        nodes = ViewStream(kube, "/api/v1/nodes", node_view, views.node_changed)
        task = asyncio.create_task(nodes.run())
        try:
            await asyncio.wait_for(nodes.listed.wait(), 60)
            return sorted(n.name for n in views.nodes())
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await kube.close()

    assert asyncio.run(scenario()) == names
