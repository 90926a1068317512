"""The dev cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on
loopback, with free ports and all data in one directory that `down` removes."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from enclave_operator.devcluster import (
    binaries,
    fakepods,
    image,
    nodeseed,
    oci,
    processes,
    push,
    realnode,
    registry,
)
from enclave_operator.devcluster.nodeconf import PAUSE_IMAGE
from enclave_operator.devcluster.nodes import KWOK_SELECTOR, SGXFlavour
from enclave_operator.devcluster.pki import CertificateAuthority, service_account_keys
from enclave_operator.devcluster.plane import POD_CIDR, ControlPlane
from enclave_operator.devcluster.state import State

Say = Callable[[str], None]


def default_directory() -> Path:
    env = os.environ.get("ENCLAVE_DEV_CLUSTER_DIR")
    return Path(env) if env else Path(tempfile.gettempdir()) / f"enclave-dev-cluster-{os.getuid()}"


HOSTPATH_ROOT = Path("/tmp/hostpath_pv")  # fixed by kube-controller-manager's provisioner


def provisioned_volumes(kubeconfig: Path) -> list[Path]:
    """Directories the hostPath provisioner made for this cluster; down removes them."""
    from kubernetes import client, config

    try:
        api = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))  # type: ignore[no-untyped-call]
        pvs = api.list_persistent_volume(_request_timeout=5).items
    except Exception:  # a cluster that is half down has nothing we can ask
        return []
    paths = (pv.spec.host_path.path for pv in pvs if pv.spec and pv.spec.host_path)
    return [Path(p) for p in paths if Path(p).parent == HOSTPATH_ROOT]


class ClusterError(RuntimeError):
    """Something the user must act on; the message says what."""


class DevCluster:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or default_directory()

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"

    @property
    def _state_file(self) -> Path:
        return self.directory / "state.json"

    def state(self) -> State | None:
        try:
            return State.load(self._state_file.read_text())
        except FileNotFoundError:
            return None

    def running(self) -> bool:
        state = self.state()
        return state is not None and any(c.running() for c in state.components)

    def up(
        self,
        nodes: int = 3,
        sgx: SGXFlavour = SGXFlavour.INTEL,
        say: Say = print,
        real_nodes: int = 0,
    ) -> State:
        """Start the control plane, `nodes` kwok nodes and, with real_nodes=1, this machine."""
        if self.running():
            raise ClusterError(
                f"a dev cluster is already running in {self.directory} "
                "(`enclavectl dev-cluster down` stops it)"
            )
        self.down(say=lambda _: None)  # clear what a crashed run left
        t0 = time.monotonic()
        tools = binaries.ensure_built(node=real_nodes > 0)
        seed = self._images(tools, say) if real_nodes else None
        self.directory.mkdir(parents=True, mode=0o700)
        pki = self.directory / "pki"
        pki.mkdir()
        ca = CertificateAuthority(pki)
        state: State | None = None
        try:
            if not fakepods.hold(self.directory, POD_CIDR):
                say(f"not root: simulated pods' addresses ({POD_CIDR}) follow the default route")
            net = realnode.prepare(self.directory) if real_nodes else None
            plane = ControlPlane(
                self.directory,
                tools,
                ca,
                service_account_keys(pki),
                bind=net.host_ip if net else "127.0.0.1",
                real_node=net is not None,
            )
            state = State(
                server=plane.server,
                nodes=nodes,
                sgx=sgx.value,
                started=time.time(),
                real_nodes=real_nodes,
            )
            node = realnode.RealNode(self.directory, net, tools, ca) if net else None
            node_steps = node.start(plane.server, *seed, say) if node and seed else iter(())
            for component in itertools.chain(plane.start(say), node_steps):
                state.components.append(component)
                self._state_file.write_text(state.dump())
            plane.add_nodes(nodes, sgx, say)
            if node is not None:
                node.wait_ready(self.kubeconfig, say)
            reg = self._registry(ca, net.host_ip if net else "127.0.0.1", state, say)
            if reg is not None and node is not None and seed is not None:
                registry.trust_on_node(node.paths.root, reg)
                t1 = time.monotonic()
                pushed = push.push_layout(
                    reg,
                    seed[1].layout,
                    "enclave-operator",
                    "0.1.0",
                    storage=push.storage_of(self.directory),
                )
                say(f"pushed {pushed} in {time.monotonic() - t1:.1f}s")
        except BaseException:
            self.down(say=lambda _: None)
            raise
        real = f" + {real_nodes} real node" if real_nodes else ""
        say(
            f"dev cluster up in {time.monotonic() - t0:.1f}s: {nodes} nodes ({sgx.value} SGX){real}"
        )
        say(f"export KUBECONFIG={self.kubeconfig}")
        return state

    def _registry(
        self, ca: CertificateAuthority, bind: str, state: State, say: Say
    ) -> registry.Registry | None:
        """The OCI registry (`registry.json` says where and how to log in); left out, with
        a line saying so, when docker-registry is missing and cannot be installed."""
        if not registry.available() and os.geteuid() != 0:
            say("no registry: docker-registry is not installed (scripts/setup-registry.sh)")
            return None
        registry.ensure_installed(binaries.build_script())
        t0 = time.monotonic()
        reg, comp = registry.start(self.directory, ca, bind)
        state.components.append(comp)
        self._state_file.write_text(state.dump())
        say(f"registry ready at {reg.address} in {time.monotonic() - t0:.1f}s")
        return reg

    @staticmethod
    def _images(tools: binaries.Toolset, say: Say) -> tuple[Path, oci.Image]:
        """The real node's images (built when their inputs changed): a containerd root with
        all but the project's last layer, and the project's image."""
        script = binaries.build_script()
        if script is None:
            raise ClusterError("the real node's images are built from a source checkout")
        t0 = time.monotonic()
        realnode.ensure_host_packages()
        app, preload = image.build_all(tools, script.parent.parent, PAUSE_IMAGE)
        seed = nodeseed.template(preload)
        say(f"images ready in {time.monotonic() - t0:.1f}s")
        return seed, app

    def down(self, say: Say = print) -> bool:
        """Stop every process and remove the directory; False if there was nothing to stop."""
        state = self.state() if self.directory.exists() else None
        volumes = provisioned_volumes(self.kubeconfig) if state is not None else []
        realnode.teardown(self.directory, state.components if state else [], say)
        for pidfile in self.directory.glob("*.pid"):  # processes attached to the cluster
            processes.stop(int(pidfile.read_text().strip() or 0))
            say(f"stopped {pidfile.stem}")
        if state is not None:
            for comp in reversed(state.components):
                # with a real node kube-apiserver lingers ~10 s after shutting down (its
                # endpoint lease); its data is thrown away, so it gets no long grace
                grace = 2.0 if comp.name == "kube-apiserver" else 10.0
                processes.stop(comp.pid, comp.binary, grace=grace)
                say(f"stopped {comp.name}")
        for path in volumes:
            shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(OSError):
            HOSTPATH_ROOT.rmdir()  # only when no other cluster still uses it
        fakepods.release(self.directory, POD_CIDR)
        existed = self.directory.exists()
        shutil.rmtree(self.directory, ignore_errors=True)
        if existed:
            say(f"removed {self.directory}")
        return existed

    def status(self) -> dict[str, Any]:
        state = self.state()
        if state is None:
            return {"running": False, "directory": str(self.directory)}
        comps = {c.name: ("running" if c.running() else "stopped") for c in state.components}
        return {
            "running": any(v == "running" for v in comps.values()),
            "directory": str(self.directory),
            "server": state.server,
            "kubeconfig": str(self.kubeconfig),
            "nodes": state.nodes,
            "realNodes": state.real_nodes,
            "sgx": state.sgx,
            "components": comps,
            "nodeSelector": KWOK_SELECTOR,
            "registry": reg.address if (reg := registry.Registry.load(self.directory)) else None,
        }
