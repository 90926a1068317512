"""Restarting one control-plane component with the arguments it runs with, for fault tests
(a kube-apiserver restart is how watches lose their place)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from enclave_operator.devcluster import processes
from enclave_operator.devcluster.cluster import DevCluster

RESTART_TIMEOUT = 60.0


def restart(cluster: DevCluster, name: str) -> int:
    """Stop component ``name``, start it again with the same command line; its new pid."""
    state = cluster.state()
    if state is None:
        raise RuntimeError(f"no dev cluster in {cluster.directory}")
    comp = next((c for c in state.components if c.name == name), None)
    if comp is None or not comp.running():
        raise RuntimeError(f"{name} is not running in {cluster.directory}")
    argv = [a.decode() for a in Path(f"/proc/{comp.pid}/cmdline").read_bytes().split(b"\0") if a]
    processes.stop(comp.pid, comp.binary)
    log = cluster.directory / "logs" / f"{name}.log"
    pid = processes.spawn(argv, log)
    state.components = [
        dataclasses.replace(c, pid=pid) if c.name == name else c for c in state.components
    ]
    (cluster.directory / "state.json").write_text(state.dump())
    cafile = cluster.directory / "pki" / "ca.crt" if name == "kube-apiserver" else None
    processes.wait_healthy(name, pid, comp.health, log, RESTART_TIMEOUT, cafile=cafile)
    return pid
