"""Where the pinned control-plane binaries live, and building them when they are missing."""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
    "helm",
    "helm-server",
)
KWOK_STAGES = "kwok-stages.yaml"
# The real node's: kubelet and kube-proxy from k8s.io/kubernetes, CoreDNS with the plugins it
# uses (tools/coredns), the pod sandbox's pause process (tools/pause).
NODE_BINARIES = ("kubelet", "kube-proxy", "coredns", "pause")
HELM_SERVER = "helm-server"  # the operator's (tools/helm-server), this checkout's build


class BinariesMissing(RuntimeError):
    """Raised when a binary is absent and cannot be built from this installation."""


@dataclass(frozen=True)
class Toolset:
    directory: Path

    def path(self, name: str) -> Path:
        if name == HELM_SERVER and (source := helm_server_source()) is not None:
            return self.directory / f"{HELM_SERVER}.{source_hash(source)}" / HELM_SERVER
        return self.directory / name

    def missing(self, node: bool = False) -> list[str]:
        wanted = (*BINARIES, KWOK_STAGES, *(NODE_BINARIES if node else ()))
        return [n for n in wanted if not self.path(n).exists()]


def pinned_versions() -> dict[str, str]:
    text = resources.files("enclave_operator.devcluster").joinpath("versions.env").read_text()
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#")
    return {k.strip(): v.strip() for k, v in pairs}


def cache_root() -> Path:
    default = Path.home() / ".cache" / "enclave-operator"
    return Path(os.environ.get("ENCLAVE_CACHE", default))


def toolset() -> Toolset:
    """The binaries for the pinned versions; ENCLAVE_BIN_DIR points elsewhere if set."""
    if override := os.environ.get("ENCLAVE_BIN_DIR"):
        return Toolset(Path(override))
    v = pinned_versions()
    tag = (
        f"k8s-{v['KUBERNETES_VERSION']}_etcd-{v['ETCD_VERSION']}"
        f"_kwok-{v['KWOK_VERSION']}_helm-{v['HELM_VERSION']}"
    )
    return Toolset(cache_root() / "bin" / tag)


def build_script() -> Path | None:
    """The build script of the source checkout this package was installed from, if any."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "scripts" / "build-tools.sh"
        if candidate.is_file():
            return candidate
    return None


def helm_server_source() -> Path | None:
    """tools/helm-server of the source checkout this package was installed from, if any."""
    script = build_script()
    source = script.parent.parent / "tools" / HELM_SERVER if script is not None else None
    return source if source is not None and (source / "go.mod").is_file() else None


def source_hash(source: Path) -> str:
    """What scripts/build-tools.sh names the helm server by: its Go files, go.mod and go.sum
    in name order, concatenated."""
    files = sorted(
        (p for p in source.iterdir() if p.suffix == ".go" or p.name in ("go.mod", "go.sum")),
        key=lambda p: p.name.encode(),
    )
    return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()[:16]


def ensure_built(node: bool = False) -> Toolset:
    """Build what is missing (printing progress); a no-op when every binary is cached.
    `node`: the real node's binaries too."""
    tools = toolset()
    if not tools.missing(node):
        return tools
    script = build_script()
    if script is None:
        raise BinariesMissing(
            f"missing {', '.join(tools.missing(node))} in {tools.directory}; "
            "build them with scripts/build-tools.sh from a source checkout"
        )
    subprocess.run(["bash", str(script)], check=True, stdout=subprocess.DEVNULL)
    if still := tools.missing(node):
        raise BinariesMissing(f"build finished but {', '.join(still)} is still missing")
    return tools
