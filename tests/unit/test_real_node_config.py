"""The real node's configuration keeps this machine's rules: nothing listens on or routes to an
outside address, DNS has no forwarder, and every path is under the node's directory."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import yaml

from enclave_operator.devcluster import nodeconf
from enclave_operator.devcluster.nodeconf import NodePaths
from enclave_operator.devcluster.nodenet import NodeNetwork


def test_addresses_of_a_slot_are_private_and_distinct():
    a, b = NodeNetwork(0), NodeNetwork(7)
    for net in (a, b):
        for ip in (net.host_ip, net.node_ip, net.pod_gateway):
            assert ipaddress.ip_address(ip).is_private
        assert ipaddress.ip_address(net.pod_gateway) in ipaddress.ip_network(net.pod_cidr)
        assert len(net.host_link) <= 15  # Linux interface names
    assert {a.netns, a.host_ip, a.pod_cidr}.isdisjoint({b.netns, b.host_ip, b.pod_cidr})
    assert a.enter(["kubelet"])[:2] == ["nsenter", "--net=/run/netns/enclave-node-0"]


def test_kubelet_config_for_cgroup_v1_and_own_paths(tmp_path: Path):
    p, net = NodePaths(tmp_path), NodeNetwork(3)
    config = yaml.safe_load(
        nodeconf.write_kubelet(p, net, tmp_path / "ca.crt", (tmp_path / "c", tmp_path / "k"))
        .read_text()
    )  # fmt: skip
    assert config["failCgroupV1"] is False
    assert config["cgroupDriver"] == "cgroupfs"
    assert config["cgroupRoot"] == "/enclave-node-3"
    assert config["address"] == net.node_ip
    assert config["readOnlyPort"] == 0
    assert config["podLogsDir"].startswith(str(tmp_path))
    assert config["authentication"]["anonymous"]["enabled"] is False
    # pods resolve only through the cluster's DNS
    assert Path(config["resolvConf"]).read_text() == f"nameserver {net.node_ip}\n"


def test_coredns_has_no_forwarder(tmp_path: Path):
    text = nodeconf.write_corefile(NodePaths(tmp_path), NodeNetwork(0), tmp_path / "kc").read_text()
    assert not [line for line in text.splitlines() if line.split()[:1] == ["forward"]]
    assert "bind 10.200.0.2" in text


def test_containerd_clamps_oom_score_and_keeps_state_here(tmp_path: Path):
    p = NodePaths(tmp_path)
    nodeconf.write_containerd(p)
    text = p.containerd_config.read_text()
    assert "restrict_oom_score_adj = true" in text
    assert f'sandbox_image = "{nodeconf.PAUSE_IMAGE}"' in text
    for line in text.splitlines():
        if line.strip().startswith(("root =", "state =", "address =", "Root =", "conf_dir")):
            value = line.split("=", 1)[1].strip().strip('"')
            assert value == "" or value.startswith(str(tmp_path)), line


def test_cni_bridge_without_masquerade(tmp_path: Path):
    p, net = NodePaths(tmp_path), NodeNetwork(1)
    nodeconf.write_cni(p, net)
    conf = json.loads((p.cni_conf / "10-enclave.conflist").read_text())
    bridge, portmap = conf["plugins"]
    assert bridge["ipMasq"] is False
    assert bridge["ipam"]["dataDir"] == str(p.ipam)
    assert bridge["ipam"]["ranges"][0][0]["subnet"] == net.pod_cidr
    assert portmap["type"] == "portmap"


def test_kube_proxy_leaves_conntrack_sysctls_alone(tmp_path: Path):
    p, net = NodePaths(tmp_path), NodeNetwork(0)
    config = yaml.safe_load(nodeconf.write_kube_proxy(p, net, tmp_path / "kc").read_text())
    assert config["mode"] == "iptables"
    assert config["conntrack"]["maxPerCore"] == 0
    assert config["nodePortAddresses"] == [f"{net.node_ip}/32"]
