"""Two operator replicas on a cluster of their own (the session's operator would act too):
only the Lease holder reconciles and runs helm; SIGKILL it and the other takes over within
15 s and reconciles what came meanwhile; a clean stop hands the lease over at once."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from enclave_operator.api.kinds import CAS
from enclave_operator.controller.leader import LEASE_NAME
from enclave_operator.devcluster.processes import free_port
from tests.integration.conftest import Cluster
from tests.integration.crs import CRs, unique
from tests.integration.isolated import NS, isolated_cluster, probe, start_operator, stop_operator
from tests.integration.waiting import wait_for

TAKEOVER = 15.0


class Replica:
    """One operator process with leader election, in a process group of its own so that a
    SIGKILL takes its helm children too."""

    def __init__(self, kubeconfig: str, log: Path) -> None:
        self.port, self.log = free_port(), log
        self.proc = start_operator(
            kubeconfig, log, METRICS_PORT=str(self.port), LEADER_ELECTION="true"
        )

    def get(self, path: str) -> tuple[int, str]:
        return probe(self.port, path)

    def actions(self) -> float:
        """Actions this replica took, from its own metrics."""
        _, text = self.get("/metrics")
        found = re.findall(r"^enclave_reconcile_actions_total\{[^}]*\} (\S+)$", text, re.M)
        return sum(float(v) for v in found)

    def helm_children(self) -> int:
        """helm processes (or its helm server) this replica runs right now."""
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        pids = path.read_text().split() if path.exists() else []
        names = []
        for pid in pids:
            try:
                names.append(Path(f"/proc/{pid}/comm").read_text().strip())
            except OSError:
                continue
        return sum(name in ("helm", "helm-server") for name in names)

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        stop_operator(self.proc)


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, client.ApiClient]]:
    with isolated_cluster(tmp_path_factory, "ha") as (_, cluster):
        api: client.ApiClient = config.new_client_from_config(cluster.kubeconfig)  # type: ignore[no-untyped-call]
        yield cluster, api


def holder(api: client.ApiClient) -> str:
    try:
        lease: Any = client.CoordinationV1Api(api).read_namespaced_lease(LEASE_NAME, NS)
    except client.ApiException as e:
        if e.status == 404:
            return ""
        raise
    return str(lease.spec.holder_identity or "")


def leader_of(replicas: list[Replica]) -> Replica:
    """The replica whose /healthz says leader (each says its role)."""
    found = [r for r in replicas if "(leader)" in r.get("/healthz")[1]]
    assert len(found) == 1, [r.get("/healthz") for r in replicas]
    return found[0]


def test_one_leader_acts_and_the_other_takes_over_within_15s(
    ha: tuple[Cluster, client.ApiClient], tmp_path: Path
) -> None:
    _, api = ha
    crs = CRs(api)
    core = client.CoreV1Api(api)
    replicas = [Replica(ha[0].kubeconfig, tmp_path / f"replica-{i}.log") for i in range(2)]
    try:
        wait_for(lambda: holder(api), bool, 60, "a leader")
        wait_for(
            lambda: sorted(r.get("/healthz")[1].split("(")[-1] for r in replicas),
            lambda roles: roles == ["leader)\n", "standby)\n"],
            60,
            "one leader and one standby",
        )
        first = leader_of(replicas)
        standby = next(r for r in replicas if r is not first)
        assert standby.get("/readyz")[0] == 200  # the standby serves (the webhook) too

        namespaces = [unique("ha") for _ in range(3)]
        for ns in namespaces:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
            crs.create(CAS, "cas", {}, ns)
        standby_helm = 0
        deadline = time.monotonic() + 180
        while not all(
            ((crs.get(CAS, "cas", ns) or {}).get("status") or {}).get("state") == "HEALTHY"
            for ns in namespaces
        ):
            assert time.monotonic() < deadline, "the leader did not make the CAS HEALTHY"
            standby_helm = max(standby_helm, standby.helm_children())
            time.sleep(0.05)
        assert first.actions() > 0
        assert standby.actions() == 0
        assert standby_helm == 0
        assert first.helm_children() == 1  # the leader's helm server, started by its first action

        first.kill9()
        killed = time.monotonic()
        wait_for(
            lambda: "(leader)" in standby.get("/healthz")[1],
            bool,
            TAKEOVER + 30,
            "the standby to lead",
        )
        took = time.monotonic() - killed
        print(f"takeover after SIGKILL of the leader: {took:.1f}s")
        assert took <= TAKEOVER
        late = unique("ha")
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=late)))
        crs.create(CAS, "cas", {}, late)
        crs.wait_state(CAS, "cas", "HEALTHY", late, timeout=120)
        assert standby.actions() > 0

        # a clean stop releases the lease: a new replica leads without waiting for expiry
        successor = Replica(ha[0].kubeconfig, tmp_path / "replica-2.log")
        replicas.append(successor)
        wait_for(lambda: successor.get("/readyz")[0], lambda s: s == 200, 60, "successor up")
        stopped = time.monotonic()
        standby.stop()
        wait_for(lambda: "(leader)" in successor.get("/healthz")[1], bool, 30, "successor to lead")
        handed = time.monotonic() - stopped
        print(f"handover after a clean stop: {handed:.1f}s")
        assert handed < 10.0  # the lease's duration: released, not expired
    finally:
        for r in replicas:
            r.stop()
        for r in replicas:
            print(f"--- {r.log.name}\n" + "\n".join(r.log.read_text().splitlines()[-15:]))
