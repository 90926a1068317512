"""An owned object deleted while the operator's watches are down is recreated.

The operator is frozen (SIGSTOP) across a kube-apiserver restart, and the CAS's Deployment is
deleted meanwhile. When it runs again its watches cannot resume from where they were (the new
API server's watch cache starts after that point) and re-list: the Deployment is not in the
list, and nothing else says it is gone. On a cluster of its own: the restart would disturb
the other tests' operator."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from enclave_operator.api.kinds import CAS
from enclave_operator.devcluster.cluster import DevCluster
from enclave_operator.devcluster.restart import restart
from tests.integration.crs import CRs, unique
from tests.integration.isolated import isolated_cluster, start_operator, stop_operator
from tests.integration.waiting import wait_for


@pytest.fixture(scope="module")
def gap_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    with isolated_cluster(tmp_path_factory, "gaps", nodes=1) as (dev, _):
        yield dev


def uid(obj: Any) -> str:
    return str(obj.metadata.uid)


def name(obj: Any) -> str:
    return str(obj.metadata.name)


def api_up(api: client.ApiClient) -> bool:
    try:
        client.VersionApi(api).get_code()
        return True
    except Exception:
        return False


def test_an_owned_object_deleted_during_an_apiserver_restart_is_recreated(
    gap_cluster: DevCluster, tmp_path: Path
) -> None:
    api: client.ApiClient = config.new_client_from_config(str(gap_cluster.kubeconfig))  # type: ignore[no-untyped-call]
    crs, apps, core = CRs(api), client.AppsV1Api(api), client.CoreV1Api(api)
    ns = unique("gap")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    log = tmp_path / "operator.log"
    operator = start_operator(gap_cluster.kubeconfig, log)
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
    finally:
        stop_operator(operator)
        print("operator log tail:\n" + "\n".join(log.read_text().splitlines()[-25:]))
