"""Configuration files of the real node's processes: containerd, CNI, kubelet, kube-proxy and
CoreDNS. Every path they write to lies under the node's directory, so `down` finds it all."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from enclave_operator.devcluster.nodenet import NodeNetwork

NODE_NAME = "enclave-node"
REAL_NODE_LABEL = "enclave.dev/real-node"
PAUSE_IMAGE = "docker.io/library/enclave-pause:1"
CNI_BIN_DIR = "/usr/lib/cni"  # Debian's containernetworking-plugins
CLUSTER_DOMAIN = "cluster.local"
KUBELET_PORT = 10250  # the node has a network namespace of its own: fixed ports cannot clash
PROXY_HEALTH_PORT = 10256
DNS_HEALTH_PORT = 8080


@dataclass(frozen=True)
class NodePaths:
    """Where one real node keeps its state, inside the dev cluster's directory."""

    root: Path

    @property
    def containerd_config(self) -> Path:
        return self.root / "containerd.toml"

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd"

    @property
    def containerd_state(self) -> Path:
        return self.root / "containerd-state"

    @property
    def runc_root(self) -> Path:
        return self.root / "runc"

    @property
    def socket(self) -> Path:
        return self.root / "containerd.sock"

    @property
    def cni_conf(self) -> Path:
        return self.root / "cni"

    @property
    def ipam(self) -> Path:
        return self.root / "ipam"

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"

    def file(self, name: str) -> Path:
        return self.root / name


def cgroup_root(net: NodeNetwork) -> str:
    """The kubelet's cgroup root: kubepods and every pod's cgroups live below it."""
    return f"/enclave-node-{net.slot}"


def write_containerd(p: NodePaths) -> None:
    # restrict_oom_score_adj: this VM refuses a negative oom_score_adj even to root, and the
    # kubelet asks for -998 on sandboxes; without the clamp every sandbox fails in runc.
    p.containerd_config.write_text(f"""version = 2
root = "{p.containerd_root}"
state = "{p.containerd_state}"
[grpc]
  address = "{p.socket}"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_cdi = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{p.runc_root}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{p.root / "certs.d"}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{p.cni_conf}"
    max_conf_num = 1
[plugins."io.containerd.internal.v1.opt"]
  path = "{p.root / "opt"}"
""")


def write_cni(p: NodePaths, net: NodeNetwork) -> None:
    """A bridge with host-local addresses and portmap for hostPorts; IPAM state kept here."""
    p.cni_conf.mkdir(exist_ok=True)
    conf = {
        "cniVersion": "1.0.0",
        "name": net.cni_network,
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": net.pod_cidr, "gateway": net.pod_gateway}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(p.ipam),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    (p.cni_conf / "10-enclave.conflist").write_text(json.dumps(conf, indent=2))


def write_kubelet(p: NodePaths, net: NodeNetwork, ca: Path, serving: tuple[Path, Path]) -> Path:
    # Pods resolve through CoreDNS only; the host's resolvers are never handed to a pod.
    resolv = p.file("resolv.conf")
    resolv.write_text(f"nameserver {net.node_ip}\n")
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,  # this machine has the cgroup v1 hierarchy
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": cgroup_root(net),
        "containerRuntimeEndpoint": f"unix://{p.socket}",
        "address": net.node_ip,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": net.node_ip,
        "healthzPort": 10248,
        "tlsCertFile": str(serving[0]),
        "tlsPrivateKeyFile": str(serving[1]),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(ca)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "clusterDomain": CLUSTER_DOMAIN,
        "clusterDNS": [net.node_ip],
        "resolvConf": str(resolv),
        "podLogsDir": str(p.pod_logs),
        "failSwapOn": False,
        "serializeImagePulls": False,
        # the locally imported images cannot be pulled again: never garbage-collect them
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%"},
        "podCIDR": net.pod_cidr,
        "maxPods": 110,
        "syncFrequency": "10s",
        "fileCheckFrequency": "1h",
        "nodeStatusReportFrequency": "1m",
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "protectKernelDefaults": False,
        "shutdownGracePeriod": "0s",
    }
    path = p.file("kubelet.yaml")
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def write_kube_proxy(p: NodePaths, net: NodeNetwork, kubeconfig: Path) -> Path:
    # masqueradeAll: without br_netfilter in the namespace, a reply from a pod to another pod on
    # the same bridge would skip the reverse DNAT; masquerading sends it back through the node.
    # The masquerade happens only inside the node's namespace, towards its own bridge.
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "bindAddress": net.node_ip,
        "healthzBindAddress": f"{net.node_ip}:{PROXY_HEALTH_PORT}",
        "metricsBindAddress": f"{net.node_ip}:10249",
        "clusterCIDR": net.pod_cidr,
        "nodePortAddresses": [f"{net.node_ip}/32"],
        "iptables": {"masqueradeAll": True, "syncPeriod": "30s", "minSyncPeriod": "0s"},
        # leave every conntrack sysctl as it is
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
            "udpTimeout": "0s",
            "udpStreamTimeout": "0s",
        },
    }
    path = p.file("kube-proxy.yaml")
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def write_corefile(p: NodePaths, net: NodeNetwork, kubeconfig: Path) -> Path:
    """The cluster's zone only: no `forward`, so no query ever leaves the machine."""
    path = p.file("Corefile")
    path.write_text(f""".:53 {{
    bind {net.node_ip}
    errors
    health {net.node_ip}:{DNS_HEALTH_PORT}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} enclave-dev
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 5
}}
""")
    return path
