"""A node deleted while the operator's watches are down leaves its figures.

The operator is frozen (SIGSTOP) across a kube-apiserver restart, and a node is deleted
meanwhile. Running again, its node stream cannot resume and lists again; the node is not in
that list, and no event says it is gone: the listing has to replace what was kept, or the LAS
keeps counting a node that no longer exists. A cluster of its own: the restart would disturb
the session's.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from kubernetes import client, config

from enclave_operator.api.kinds import LAS
from enclave_operator.devcluster.restart import restart
from tests.integration.crs import CRs, unique
from tests.integration.isolated import api_up, isolated_cluster, start_operator, stop_operator
from tests.integration.waiting import wait_for


def test_a_node_deleted_during_an_apiserver_restart_leaves_the_figures(
    tmp_path_factory: Any, tmp_path: Path
) -> None:
    with isolated_cluster(tmp_path_factory, "viewgap", nodes=2) as (dev, _):
        api: client.ApiClient = config.new_client_from_config(str(dev.kubeconfig))  # type: ignore[no-untyped-call]
        crs, core = CRs(api), client.CoreV1Api(api)
        ns = unique("gap")
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        nodes = sorted(
            str(n.metadata.name)
            for n in core.list_node(label_selector="type=kwok").items
            if n.metadata
        )
        assert len(nodes) == 2
        log = tmp_path / "operator.log"
        operator = start_operator(dev.kubeconfig, log)
        try:
            las = unique("las")
            crs.create(LAS, las, {"namespace": ns, "hostPort": 20001})
            cr = crs.wait_state(LAS, las, "HEALTHY", timeout=180)
            assert sorted(cr["status"]["nodes"]) == nodes
            victim = nodes[1]

            os.killpg(operator.pid, signal.SIGSTOP)
            try:
                restart(dev, "kube-apiserver")
                wait_for(lambda: api_up(api), bool, 60, "the API server back")
                core.delete_node(victim)
                wait_for(
                    lambda: [n.metadata and n.metadata.name for n in core.list_node().items],
                    lambda names: victim not in names,
                    60,
                    "the node gone",
                )
            finally:
                os.killpg(operator.pid, signal.SIGCONT)

            figures = wait_for(
                lambda: (crs.get(LAS, las) or {}).get("status") or {},
                lambda status: sorted(status.get("nodes") or {}) == nodes[:1],
                120,
                "the LAS figures without the deleted node",
            )
            assert figures["desiredNumberScheduled"] == 1
        finally:
            stop_operator(operator)
