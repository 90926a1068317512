"""One real node in the dev cluster: this machine, with containerd, runc, the CNI plugins, the
kubelet, kube-proxy and CoreDNS, running the project's locally built image.

The node's processes run in a network namespace of their own (`nodenet`), with their state in
`<cluster dir>/node`; `teardown` works from that directory alone, so it also clears what a
crashed `up` left. Only one thing cannot be moved off the host's fixed paths: the kubelet's
device-plugin socket in /var/lib/kubelet/device-plugins, where SGX device plugins register.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from enclave_operator.devcluster import (
    hostclean,
    image,
    nodeconf,
    nodenet,
    nodeseed,
    oci,
    processes,
)
from enclave_operator.devcluster.binaries import Toolset, build_script
from enclave_operator.devcluster.nodeconf import NODE_NAME, REAL_NODE_LABEL, NodePaths
from enclave_operator.devcluster.nodenet import NodeNetwork
from enclave_operator.devcluster.pki import CertificateAuthority
from enclave_operator.devcluster.state import ComponentState

Say = Callable[[str], None]
READY_TIMEOUT = 60.0
DEVICE_PLUGINS = Path("/var/lib/kubelet/device-plugins")
# Host directories the kubelet, containerd and `ip netns` create on first use; `down` removes
# the ones that were absent before `up` once they are empty again.
HOST_DIRS = (
    DEVICE_PLUGINS,
    DEVICE_PLUGINS.parent,
    Path("/var/log/containers"),
    Path("/var/log/pods"),
    Path("/run/containerd/s"),
    Path("/run/containerd"),
    Path("/var/lib/cni"),
    Path("/run/netns"),
)
HOST_PACKAGES = {
    "containerd": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "iptables": "iptables",
    "mmdebstrap": "mmdebstrap",
    "/usr/lib/cni/bridge": "containernetworking-plugins",
}


ABSENT = nodenet.LOCK.with_name("enclave-dev-node.absent")


def _other_nodes() -> bool:
    return any(nodenet.NETNS_DIR.glob("enclave-node-*"))


class NodeError(RuntimeError):
    """The real node could not come up; the message says why."""


def record_file(directory: Path) -> Path:
    return directory / "node" / "node.json"


def ensure_host_packages() -> None:
    """Run the checkout's setup script (installs Debian packages) when something is missing."""
    missing = sorted({pkg for cmd, pkg in HOST_PACKAGES.items() if not shutil.which(cmd)})
    if not missing:
        return
    script = build_script()
    setup = script.parent / "setup-node.sh" if script else None
    if setup is None or not setup.exists():
        raise NodeError(f"missing Debian packages {', '.join(missing)}: apt-get install them")
    proc = subprocess.run(["bash", str(setup)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise NodeError(f"{setup} failed:\n{proc.stdout}{proc.stderr}")


def prepare(directory: Path) -> NodeNetwork:
    """The node's network namespace, before the control plane (which listens on its host end)."""
    if os.geteuid() != 0:
        raise NodeError("the real node needs root (`--real-nodes 0` runs the cluster without it)")
    ensure_host_packages()
    (directory / "node").mkdir(mode=0o755)
    record: dict[str, Any] = {
        "sysctls": hostclean.read_sysctls(),
    }
    if not _other_nodes():  # the first node remembers, for the last one, what was not there
        ABSENT.parent.mkdir(parents=True, exist_ok=True)
        ABSENT.write_text(json.dumps([str(d) for d in HOST_DIRS if not d.exists()]))
    record_file(directory).write_text(json.dumps(record))
    net = nodenet.create()
    record["network"] = net.dump()
    record_file(directory).write_text(json.dumps(record))
    return net


class RealNode:
    def __init__(
        self, directory: Path, net: NodeNetwork, tools: Toolset, ca: CertificateAuthority
    ) -> None:
        self.dir = directory
        self.net = net
        self.tools = tools
        self.ca = ca
        self.paths = NodePaths(directory / "node")

    def _spawn(self, name: str, argv: list[str], health: str) -> ComponentState:
        log = self.dir / "logs" / f"{name}.log"
        pid = processes.spawn(self.net.enter(argv), log)
        comp = ComponentState(name, pid, argv[0], health)
        # nsenter execs the binary: until then the pid does not run it, and would look dead
        deadline = time.monotonic() + 5
        while not comp.running() and processes.alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        return comp

    def _kubeconfig(self, name: str, cn: str, org: str | None, server: str) -> Path:
        from enclave_operator.devcluster.plane import write_kubeconfig

        pair = self.ca.issue(name, cn, org=org, client=True)
        path = self.dir / f"{name}.kubeconfig"
        write_kubeconfig(path, server, self.ca.pair.cert, pair)
        return path

    def start(self, server: str, seed: Path, app: oci.Image, say: Say) -> Iterator[ComponentState]:
        """containerd (its root cloned from `seed`, then `app` imported: only its last layer is
        new), the kubelet, kube-proxy and CoreDNS, each waited on."""
        p, net, bin_ = self.paths, self.net, self.tools.path
        t0 = time.monotonic()
        nodeseed.clone(seed, p.containerd_root)
        nodeconf.write_containerd(p)
        nodeconf.write_cni(p, net)
        hostclean.create_cgroup_root(nodeconf.cgroup_root(net))
        containerd = self._spawn(
            "containerd", ["/usr/bin/containerd", "--config", str(p.containerd_config)], ""
        )
        yield containerd
        self._wait(containerd, self._containerd_up)
        image.import_into(p.socket, [app])
        say(f"containerd ready, with the images, in {time.monotonic() - t0:.1f}s")

        t0 = time.monotonic()
        serving = self.ca.issue("kubelet", NODE_NAME, hosts=(net.node_ip, NODE_NAME))
        config = nodeconf.write_kubelet(p, net, self.ca.pair.cert, (serving.cert, serving.key))
        kubeconfig = self._kubeconfig("kubelet", f"system:node:{NODE_NAME}", "system:nodes", server)
        kubelet = self._spawn(
            "kubelet",
            [
                str(bin_("kubelet")),
                f"--config={config}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={p.kubelet_root}",
                f"--node-ip={net.node_ip}",
                f"--hostname-override={NODE_NAME}",
                f"--node-labels={REAL_NODE_LABEL}=true",
                "--v=1",
            ],
            f"http://{net.node_ip}:10248/healthz",
        )
        yield kubelet
        self._wait(kubelet, lambda: processes.healthy(kubelet.health))
        say(f"kubelet ready in {time.monotonic() - t0:.1f}s")

        proxy_kc = self._kubeconfig("kube-proxy", "system:kube-proxy", None, server)
        proxy = self._spawn(
            "kube-proxy",
            [str(bin_("kube-proxy")), f"--config={nodeconf.write_kube_proxy(p, net, proxy_kc)}"],
            f"http://{net.node_ip}:{nodeconf.PROXY_HEALTH_PORT}/healthz",
        )
        yield proxy
        dns_kc = self._kubeconfig("coredns", "coredns", "system:masters", server)
        dns = self._spawn(
            "coredns",
            [str(bin_("coredns")), "-conf", str(nodeconf.write_corefile(p, net, dns_kc))],
            f"http://{net.node_ip}:{nodeconf.DNS_HEALTH_PORT}/health",
        )
        yield dns
        for comp in (proxy, dns):
            self._wait(comp, lambda c=comp: processes.healthy(c.health))  # type: ignore[misc]

    def _containerd_up(self) -> bool:
        proc = subprocess.run(
            ["ctr", "-a", str(self.paths.socket), "version"], capture_output=True, check=False
        )
        return proc.returncode == 0

    def _wait(self, comp: ComponentState, ok: Callable[[], bool], timeout: float = 60) -> None:
        log = self.dir / "logs" / f"{comp.name}.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ok():
                return
            if not comp.running():
                raise NodeError(f"{comp.name} exited during start-up:\n{processes.tail(log)}")
            time.sleep(0.1)
        raise NodeError(f"{comp.name} not ready after {timeout:.0f}s:\n{processes.tail(log)}")

    def wait_ready(self, kubeconfig: Path, say: Say) -> None:
        from kubernetes import client, config

        api = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))  # type: ignore[no-untyped-call]
        deadline = time.monotonic() + READY_TIMEOUT
        t0 = time.monotonic()
        reason = "not registered"
        while time.monotonic() < deadline:
            try:
                node = api.read_node(NODE_NAME)
            except client.ApiException:
                time.sleep(0.2)
                continue
            conditions = node.status.conditions if node.status else None
            ready = [c for c in conditions or [] if c.type == "Ready"]
            if ready and ready[0].status == "True":
                say(f"real node {NODE_NAME} Ready in {time.monotonic() - t0:.1f}s")
                return
            reason = f"{ready[0].reason}: {ready[0].message}" if ready else "no Ready condition"
            time.sleep(0.2)
        log = processes.tail(self.dir / "logs" / "kubelet.log")
        raise NodeError(f"real node {NODE_NAME} not Ready after 60s ({reason}):\n{log}")


def teardown(directory: Path, components: list[ComponentState], say: Say) -> None:
    """Stop the node's processes and containers and remove all it made, on the host too."""
    try:
        record = json.loads(record_file(directory).read_text())
    except (OSError, ValueError):
        return
    paths = NodePaths(directory / "node")
    by_name = {c.name: c for c in components}
    t0 = time.monotonic()
    for name in ("coredns", "kube-proxy", "kubelet"):
        if comp := by_name.get(name):
            processes.stop(comp.pid, comp.binary)
            say(f"stopped {name} ({time.monotonic() - t0:.1f}s)")
    net = NodeNetwork(**record["network"]) if "network" in record else None
    if paths.socket.exists() and (c := by_name.get("containerd")) and c.running():
        _delete_tasks(paths.socket)
    if net is not None:
        hostclean.kill_cgroup_processes(nodeconf.cgroup_root(net))
    say(f"stopped the containers ({time.monotonic() - t0:.1f}s)")
    if comp := by_name.get("containerd"):
        processes.stop(comp.pid, comp.binary)
        say(f"stopped containerd ({time.monotonic() - t0:.1f}s)")
    hostclean.kill_matching(f"-address {paths.socket}")
    hostclean.unmount_under(paths.root)
    if net is not None:
        hostclean.remove_cni_results(net.cni_network)
        nodenet.delete(net)
        hostclean.remove_cgroup_root(nodeconf.cgroup_root(net))
    hostclean.remove_container_log_links(paths.pod_logs)
    hostclean.restore_sysctls(record.get("sysctls", {}))
    # the host directories (the device plugins' above all) are shared: the last node clears them
    if not _other_nodes():
        try:
            absent = json.loads(ABSENT.read_text())
        except (OSError, ValueError):
            absent = []
        for d in map(Path, absent):
            if d == DEVICE_PLUGINS:  # kubelet.sock, its checkpoint, plugins' sockets
                shutil.rmtree(d, ignore_errors=True)
            hostclean.remove_if_empty(d)
        ABSENT.unlink(missing_ok=True)
        nodenet.LOCK.unlink(missing_ok=True)
    say(f"removed the real node ({time.monotonic() - t0:.1f}s)")


def _delete_tasks(socket: Path) -> None:
    """Kill and delete every container through containerd, so its shims exit cleanly."""
    ctr = ["ctr", "-a", str(socket), "-n", "k8s.io"]
    listed = subprocess.run(
        [*ctr, "tasks", "ls", "-q"], capture_output=True, text=True, check=False, timeout=30
    )
    for task in listed.stdout.split():
        subprocess.run(
            [*ctr, "tasks", "rm", "-f", task], capture_output=True, check=False, timeout=30
        )
