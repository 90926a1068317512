"""The real node's network: a network namespace of its own, joined to the host by one veth pair.

Everything the node's processes and pods do to the network (the CNI bridge, portmap's and
kube-proxy's iptables rules, ip_forward) happens inside that namespace, so the host's rules and
sysctls are never touched and deleting the namespace removes it all. The namespace has no
default route: pods reach the host end of the veth (where kube-apiserver listens) and each
other, nothing outside. The host routes only the node's pod range to it, for kubectl's and the
API server's connections to pods.
"""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

NETNS_DIR = Path("/run/netns")
LOCK = Path("/run/lock/enclave-dev-node.lock")
SLOTS = 200


class NetworkError(RuntimeError):
    """An `ip` command failed; the message carries its output."""


@dataclass(frozen=True)
class NodeNetwork:
    """Names and addresses of one real node, all derived from its slot number."""

    slot: int

    @property
    def netns(self) -> str:
        return f"enclave-node-{self.slot}"

    @property
    def host_link(self) -> str:
        return f"enc{self.slot}h"

    @property
    def node_link(self) -> str:
        return f"enc{self.slot}n"

    @property
    def host_ip(self) -> str:
        """The host end of the veth: kube-apiserver listens here, never on an outside address."""
        return f"10.200.{self.slot}.1"

    @property
    def node_ip(self) -> str:
        """The node's InternalIP: kubelet, kube-proxy's health port, CoreDNS and hostPorts."""
        return f"10.200.{self.slot}.2"

    @property
    def pod_cidr(self) -> str:
        return f"10.201.{self.slot}.0/24"

    @property
    def pod_gateway(self) -> str:
        return f"10.201.{self.slot}.1"

    @property
    def cni_network(self) -> str:
        return f"enclave-node-{self.slot}"

    def dump(self) -> dict[str, Any]:
        return asdict(self)

    def enter(self, argv: list[str]) -> list[str]:
        """argv run inside the namespace (network only: mounts stay shared with the host)."""
        return ["nsenter", f"--net={NETNS_DIR / self.netns}", "--", *argv]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def _link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """Two `up`s at once must not take the same slot."""
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def create() -> NodeNetwork:
    """Take the first free slot and build its namespace, veth pair, addresses and route."""
    with _locked():
        for slot in range(SLOTS):
            net = NodeNetwork(slot)
            if not (NETNS_DIR / net.netns).exists() and not _link_exists(net.host_link):
                break
        else:
            raise NetworkError(f"all {SLOTS} real-node slots are taken")
        _ip("netns", "add", net.netns)
    try:
        _ip(
            "link",
            "add",
            net.host_link,
            "type",
            "veth",
            "peer",
            "name",
            net.node_link,
            "netns",
            net.netns,
        )
        with contextlib.suppress(OSError):  # no router solicitations, no SLAAC on the pair
            Path(f"/proc/sys/net/ipv6/conf/{net.host_link}/disable_ipv6").write_text("1")
        _ip("addr", "add", f"{net.host_ip}/30", "dev", net.host_link)
        _ip("link", "set", net.host_link, "up")
        n = ("-n", net.netns)
        _ip(*n, "link", "set", "lo", "up")
        _ip(*n, "addr", "add", f"{net.node_ip}/30", "dev", net.node_link)
        _ip(*n, "link", "set", net.node_link, "up")
        _ip("route", "add", net.pod_cidr, "via", net.node_ip, "dev", net.host_link)
    except BaseException:
        delete(net)
        raise
    return net


def delete(net: NodeNetwork) -> None:
    """Remove the veth pair (its route goes with it) and the namespace; idempotent."""
    if _link_exists(net.host_link):
        _ip("link", "del", net.host_link, check=False)
    if (NETNS_DIR / net.netns).exists():
        _ip("netns", "del", net.netns, check=False)
