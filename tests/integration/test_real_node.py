"""The dev cluster's real node: containers really run the project's image, Services, DNS and
hostPorts reach them, the operator runs in-cluster, and `down` leaves the host as it was.

The node is brought up once for this module, beside one kwok node. When it cannot come up, the
tests fail (not skip) with the reason.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from enclave_operator.devcluster import hostclean
from enclave_operator.devcluster.binaries import ensure_built
from enclave_operator.devcluster.cluster import DevCluster
from enclave_operator.devcluster.nodeconf import NODE_NAME, REAL_NODE_LABEL
from enclave_operator.devcluster.nodenet import NodeNetwork
from enclave_operator.devcluster.realnode import HOST_DIRS, record_file
from tests.integration.conftest import ROOT, Cluster
from tests.integration.waiting import wait_for

pytestmark = pytest.mark.real_node
IMAGE = "enclave-operator:0.1.0"
ON_NODE = {REAL_NODE_LABEL: "true"}


def host_snapshot() -> dict[str, list[str]]:
    """What `down` must give back unchanged: host iptables, links, mounts, netns, cgroups."""

    def out(*argv: str) -> list[str]:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        return proc.stdout.splitlines()

    rules = [r for r in out("iptables-save") if r and r[0] not in "#:"]
    links = [line.split(":")[1].strip().split("@")[0] for line in out("ip", "-o", "link")]
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    cgroups = sorted(str(p) for p in Path("/sys/fs/cgroup").glob("*/enclave-node-*"))
    netns = (
        sorted(p.name for p in Path("/run/netns").glob("*")) if Path("/run/netns").exists() else []
    )
    host_dirs = [str(d) for d in HOST_DIRS if d.exists()]
    sysctls = [f"{k}={v}" for k, v in hostclean.read_sysctls().items()]
    return {
        "host dirs": host_dirs,
        "sysctls": sysctls,
        "iptables": sorted(rules),
        "links": sorted(links),
        "mounts": sorted(mounts),
        "cgroups": cgroups,
        "netns": netns,
    }


@dataclass
class Node:
    dev: DevCluster
    cluster: Cluster
    net: NodeNetwork
    before: dict[str, list[str]]

    def apply(self, manifest: dict[str, Any]) -> None:
        self.cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))

    def pod(self, ns: str, name: str) -> dict[str, Any]:
        out = self.cluster.kubectl("get", "pod", name, "-n", ns, "-o", "json").stdout
        result: dict[str, Any] = json.loads(out)
        return result


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    before = host_snapshot()
    dev = DevCluster(tmp_path_factory.mktemp("real") / "dev")
    try:
        tools = ensure_built(node=True)
        dev.up(nodes=1, real_nodes=1, say=print)
    except Exception as e:  # the suite must fail, saying why, when the node cannot come up
        dev.down(say=lambda _: None)
        pytest.fail(f"the real node did not come up: {type(e).__name__}: {e}", pytrace=False)
    record = json.loads(record_file(dev.directory).read_text())
    try:
        yield Node(
            dev,
            Cluster(str(dev.kubeconfig), tools.directory),
            NodeNetwork(**record["network"]),
            before,
        )
    finally:
        dev.down(say=lambda _: None)


@pytest.fixture
def namespace(node: Node) -> Iterator[str]:
    """A fresh namespace on the real node's cluster, with its default ServiceAccount."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    node.cluster.kubectl("create", "namespace", name)
    wait_for(
        lambda: node.cluster.kubectl("get", "sa", "default", "-n", name, check=False).returncode,
        lambda rc: rc == 0,
        30,
        "the default ServiceAccount",
    )
    yield name
    node.cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def pod_manifest(ns: str, name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": IMAGE, "imagePullPolicy": "Never", "command": command}
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {
            "nodeSelector": ON_NODE,
            "restartPolicy": "Never",
            "containers": [container],
            **spec,
        },
    }


def phase(node: Node, ns: str, name: str, want: set[str], timeout: float = 90) -> str:
    def observe() -> str:
        status = node.pod(ns, name).get("status") or {}
        return str(status.get("phase"))

    return wait_for(observe, lambda p: p in want, timeout, f"pod {name} in {want}")


def test_node_is_ready_with_its_own_address(node: Node):
    got = json.loads(node.cluster.kubectl("get", "node", NODE_NAME, "-o", "json").stdout)
    addresses = {a["type"]: a["address"] for a in got["status"]["addresses"]}
    assert addresses["InternalIP"] == node.net.node_ip
    assert got["metadata"]["labels"][REAL_NODE_LABEL] == "true"
    ready = [c for c in got["status"]["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "True"


def test_container_really_runs_and_logs(node: Node, namespace: str):
    line = "hello from a real container"
    node.apply(pod_manifest(namespace, "hello", ["python3", "-c", f"print({line!r})"]))
    assert phase(node, namespace, "hello", {"Succeeded", "Failed"}) == "Succeeded"
    logs = node.cluster.kubectl("logs", "hello", "-n", namespace).stdout
    assert logs.strip() == line
    # a kwok pod never gets a container ID: this one ran in containerd
    status = node.pod(namespace, "hello")["status"]
    assert status["containerStatuses"][0]["containerID"].startswith("containerd://")


def _server(node: Node, ns: str, name: str, **spec: Any) -> None:
    node.apply(
        pod_manifest(
            ns,
            name,
            ["python3", "-m", "http.server", "8080"],
            container={
                "ports": [{"containerPort": 8080, **spec}],
                "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
            },
        )
    )
    node.cluster.kubectl("wait", "--for=condition=Ready", f"pod/{name}", "-n", ns, "--timeout=90s")


def test_service_and_dns_name_reach_a_pod(node: Node, namespace: str):
    _server(node, namespace, "web")
    node.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        }
    )
    ip = node.cluster.kubectl(
        "get", "svc", "web", "-n", namespace, "-o", "jsonpath={.spec.clusterIP}"
    ).stdout
    # kube-proxy programs a new Service within a moment: each URL gets 30 s
    script = f"""
import time, urllib.request as u
for url in ('http://{ip}/', 'http://web.{namespace}.svc.cluster.local/', 'http://web/'):
    for attempt in range(60):
        try:
            print(url, u.urlopen(url, timeout=5).status, flush=True)
            break
        except OSError as e:
            if attempt == 59:
                raise
            print(url, e, flush=True)
            time.sleep(0.5)
"""
    node.apply(pod_manifest(namespace, "client", ["python3", "-c", script]))
    result = phase(node, namespace, "client", {"Succeeded", "Failed"})
    logs = node.cluster.kubectl("logs", "client", "-n", namespace, check=False)
    assert result == "Succeeded", logs.stdout + logs.stderr
    assert logs.stdout.count(" 200") == 3, logs.stdout


def test_host_port_is_reached_at_the_node_address(node: Node, namespace: str):
    _server(node, namespace, "hostport", hostPort=18080)
    with urllib.request.urlopen(f"http://{node.net.node_ip}:18080/", timeout=10) as resp:
        assert resp.status == 200


def test_operator_runs_in_cluster_and_reconciles(node: Node):
    c = node.cluster
    c.kubectl("apply", "--server-side", "-f", str(ROOT / "config" / "crd"))
    c.helm(
        "install",
        "enclave",
        str(ROOT / "charts" / "enclave-operator"),
        "-n",
        "enclave-system",
        "--create-namespace",
        "--set",
        "simulation=true",
        "--set-string",
        f"nodeSelector.{REAL_NODE_LABEL.replace('.', chr(92) + '.')}=true",
        "--set",
        "services.cas.enabled=false",
        "--set",
        "services.las.enabled=false",
    )
    wait = c.kubectl(
        "rollout",
        "status",
        "deployment",
        "-n",
        "enclave-system",
        "--timeout=120s",
        "-l",
        "app.kubernetes.io/name=enclave-operator",
        check=False,
    )
    pods = c.kubectl("get", "pods", "-n", "enclave-system", "-o", "wide", check=False).stdout
    assert wait.returncode == 0, f"{wait.stdout}{wait.stderr}\n{pods}"
    assert NODE_NAME in pods

    # the in-cluster operator reconciles: the chart's SGXPlugin gets its finalizer and status
    def status() -> dict[str, Any]:
        items = json.loads(c.kubectl("get", "sgxplugins", "-o", "json").stdout)["items"]
        return items[0] if items else {}

    # the status is reported before the action that follows it: wait for both
    seen = wait_for(
        status,
        lambda s: (
            bool((s.get("status") or {}).get("conditions"))
            and bool(s.get("metadata", {}).get("finalizers"))
        ),
        120,
        "the operator to report the SGXPlugin's conditions and add its finalizer",
    )
    assert seen["metadata"]["finalizers"]


def test_down_gives_the_host_back(node: Node):
    directory, mine = node.dev.directory, node.net
    node.dev.down(say=lambda _: None)
    after = host_snapshot()
    assert not directory.exists()
    # what is certainly this node's
    assert mine.netns not in after["netns"]
    assert mine.host_link not in after["links"]
    assert not [c for c in after["cgroups"] if c.endswith(f"/enclave-node-{mine.slot}")]
    assert not [m for m in after["mounts"] if m.startswith(f"{directory}/")]
    # real nodes never write the host's iptables
    assert after["iptables"] == node.before["iptables"]
    # another real node (a parallel test run, a demo) shares the host: compare all only without
    others = [n for n in node.before["netns"] + after["netns"] if n.startswith("enclave-node-")]
    if not others:
        for key, value in node.before.items():
            assert after[key] == value, f"{key} differs after down"
