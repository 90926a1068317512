"""The four ways to get one CAS running in a namespace: our operator, helm-operator, a bare
`helm install --wait`, and the physical floor (the rendered manifests server-side applied, no
helm). Each has an untimed setup, a timed launch and a cleanup."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import yaml
from kubernetes import client

from benchmarks.peer_setup import PEER_GROUP, PEER_PLURAL, PEER_VERSION_API, Cluster, wait_gone
from enclave_operator.api.kinds import CAS
from enclave_operator.charts import chart_path
from enclave_operator.charts.values import values_for
from enclave_operator.devcluster.binaries import toolset

RELEASE = "cas-x"  # ours names the release cas-<CR name>; the peer names it after the CR
VALUES = values_for(CAS, {"spec": {}}, None)  # what our operator passes for an empty spec


@dataclass
class Contestant:
    name: str
    with_cr: bool  # the finish line includes the CR's own "done"
    parallelism: int  # launches at once (creating CRs is cheap: many at once)
    launch: Callable[[str], float | None]  # timed; may return when it saw the end itself
    setup: Callable[[list[str]], None]
    cleanup: Callable[[list[str]], None]


def pool(n: int, fn: Callable[[str], Any], items: list[str]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=max(1, min(n, len(items)))) as pool:
        return list(pool.map(fn, items))


def namespaces(cluster: Cluster, names: list[str], create: bool) -> None:
    core = client.CoreV1Api(cluster.api)

    def one(ns: str) -> None:
        if create:
            core.create_namespace(client.V1Namespace.model_validate({"metadata": {"name": ns}}))
        else:
            core.delete_namespace(ns)

    pool(16, one, names)
    if create:
        return

    def left() -> list[str]:
        listed = {str(n.metadata.name) for n in core.list_namespace().items if n.metadata}
        return sorted(listed & set(names))

    # the namespace controller's cleanup is heavy: the next measure must not run beside it
    if not wait_gone(left, 900):
        raise TimeoutError(f"namespaces not deleted after 900s: {left()[:5]}")


def custom_resource(cluster: Cluster, group: str, version: str, plural: str, kind: str,
                    spec: dict[str, Any]) -> Contestant:  # fmt: skip
    crs = client.CustomObjectsApi(cluster.api)
    name = RELEASE if group == PEER_GROUP else "x"

    def launch(ns: str) -> None:
        body = {"apiVersion": f"{group}/{version}", "kind": kind, "metadata": {"name": name},
                "spec": spec}  # fmt: skip
        crs.create_namespaced_custom_object(group, version, ns, plural, body)

    def cleanup(names: list[str]) -> None:
        pool(16, lambda ns: crs.delete_namespaced_custom_object(group, version, ns, plural, name),
              names)  # fmt: skip

        def left() -> list[Any]:
            listed: Any = crs.list_cluster_custom_object(group, version, plural)
            items = listed["items"]
            return [i for i in items if i["metadata"]["namespace"] in names]

        if not wait_gone(left, 600):
            raise TimeoutError(f"{plural}.{group} not deleted after 600s")
        namespaces(cluster, names, create=False)

    return Contestant(group, True, 16, launch,
                      lambda names: namespaces(cluster, names, True), cleanup)  # fmt: skip


def ours(cluster: Cluster) -> Contestant:
    c = custom_resource(cluster, CAS.group, CAS.version, CAS.plural, CAS.kind, {})
    c.name = "ours"
    return c


def peer(cluster: Cluster) -> Contestant:
    c = custom_resource(cluster, PEER_GROUP, PEER_VERSION_API, PEER_PLURAL, "CAS", VALUES)
    c.name = "helm-operator"
    return c


def bare_helm(cluster: Cluster, parallelism: int) -> Contestant:
    helm = str(toolset().path("helm"))

    def launch(ns: str) -> float:
        subprocess.run(
            [helm, "install", RELEASE, str(chart_path(CAS)), "-n", ns, "--wait",
             "--timeout", "300s", "--values", "-"],
            input=json.dumps(VALUES), text=True, env=cluster.helm_env(), check=True,
            capture_output=True, timeout=330,
        )  # fmt: skip
        return time.perf_counter()

    def cleanup(names: list[str]) -> None:
        pool(parallelism, lambda ns: subprocess.run(
            [helm, "uninstall", RELEASE, "-n", ns], env=cluster.helm_env(), check=True,
            capture_output=True, timeout=300), names)  # fmt: skip
        namespaces(cluster, names, create=False)

    return Contestant("helm install --wait", False, parallelism, launch,
                      lambda names: namespaces(cluster, names, True), cleanup)  # fmt: skip


def direct_apply(cluster: Cluster, parallelism: int) -> Contestant:
    """The floor: every object of the rendered chart server-side applied, nothing else."""
    rendered: dict[str, list[dict[str, Any]]] = {}
    helm = str(toolset().path("helm"))
    host = cluster.api.configuration.host

    def render(ns: str) -> None:
        out = subprocess.run(
            [helm, "template", RELEASE, str(chart_path(CAS)), "-n", ns, "--values", "-"],
            input=json.dumps(VALUES), text=True, env=cluster.helm_env(), check=True,
            capture_output=True, timeout=120,
        ).stdout  # fmt: skip
        rendered[ns] = [d for d in yaml.safe_load_all(out) if d]

    def setup(names: list[str]) -> None:
        namespaces(cluster, names, True)
        pool(4, render, names)

    def launch(ns: str) -> None:
        for doc in rendered[ns]:
            group_version, kind = doc["apiVersion"], doc["kind"]
            base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
            path = f"{base}/namespaces/{ns}/{kind.lower()}s/{doc['metadata']['name']}"
            response = cluster.api.call_api(
                "PATCH", f"{host}{path}?fieldManager=floor&force=true",
                header_params={"Content-Type": "application/apply-patch+yaml",
                               "Accept": "application/json"},
                body=json.dumps(doc),
            )  # fmt: skip
            response.read()  # type: ignore[no-untyped-call]
            if response.status >= 300:
                raise RuntimeError(f"apply {path}: {response.status} {response.data!r}")

    return Contestant("direct apply", False, parallelism, launch, setup,
                      lambda names: namespaces(cluster, names, create=False))  # fmt: skip
