"""A dev cluster of the install tests' own (they delete cluster-wide CRDs, which the session's
operator and other tests use), and enclavectl run against it as a user runs it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enclave_operator.api.kinds import ALL_KINDS
from enclave_operator.devcluster.cluster import DevCluster

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "enclave-operator"
NS = "enclave-system"
WEBHOOK = "enclave-operator-webhook"
CRDS = [k.crd_name for k in ALL_KINDS]


@dataclass
class Env:
    dev: DevCluster
    cluster: Any  # conftest.Cluster (conftest imports this module)

    @property
    def server(self) -> str:
        state = self.dev.state()
        assert state is not None
        return state.server

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KUBECONFIG": self.cluster.kubeconfig,
            "ENCLAVE_DEV_CLUSTER_DIR": str(self.dev.directory),
        }

    def ctl(self, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
        """enclavectl as a separate process, output captured (not a terminal)."""
        return subprocess.run(
            [sys.executable, "-m", "enclave_operator.cli", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**self.env, **env},
        )

    def json(self, *args: str) -> Any:
        return json.loads(self.cluster.kubectl(*args, "-o", "json").stdout)

    def exists(self, *args: str) -> bool:
        got = self.cluster.kubectl("get", *args, "--ignore-not-found", "-o", "name", check=False)
        return bool(got.stdout.strip())

    def token_kubeconfig(self, path: Path, namespace: str, sa: str) -> Path:
        """A kubeconfig that acts as the ServiceAccount, as a pod of it would."""
        token = self.cluster.kubectl("create", "token", sa, "-n", namespace, "--duration=1h")
        server = self.server
        ca = self.dev.directory / "pki" / "ca.crt"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "c", "cluster": {"server": server, "certificate-authority": str(ca)}}
            ],
            "users": [{"name": "u", "user": {"token": token.stdout.strip()}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "c",
        }
        path.write_text(json.dumps(config))
        return path


_ROW = re.compile(r"^(\S+)\s+\[(.*?)\]\s+\[(.*?)\]\s+\[(.*?)\]\s*$")
_URL_ROW = re.compile(r"^\s+\[(.*?)\]\s+\[(.*?)\]\s+\[(.*?)\]\s*$")


def can_i_list(text: str) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """`kubectl auth can-i --list`: verbs per resource (``resource[name]`` for a rule limited
    to one name), and verbs per non-resource URL."""
    resources: dict[str, set[str]] = {}
    urls: dict[str, set[str]] = {}
    for line in text.splitlines()[1:]:
        if m := _ROW.match(line):
            name, _, names, verbs = m.groups()
            key = f"{name}[{names}]" if names else name
            resources.setdefault(key, set()).update(verbs.split())
        elif m := _URL_ROW.match(line):
            url, _, verbs = m.groups()
            urls.setdefault(url, set()).update(verbs.split())
        elif line.strip():
            raise AssertionError(f"unparsed line: {line!r}")
    return resources, urls


def one_line(proc: subprocess.CompletedProcess[str], starts: str) -> str:
    """The failure is one line on stderr, without a traceback, and exit 1."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(starts), lines[0]
    assert "Traceback" not in proc.stderr
    return lines[0]


def leftovers(own: Env, namespace: str = NS) -> dict[str, bool]:
    """Everything an installation makes, and whether it is still there."""
    found = {f"crd {name}": own.exists("crd", name) for name in CRDS}
    found[f"namespace {namespace}"] = own.exists("namespace", namespace)
    for kind in ("clusterrole", "clusterrolebinding"):
        found[f"{kind} enclave-operator"] = own.exists(kind, "enclave-operator")
    found["serviceaccount enclave-operator"] = own.exists(
        "serviceaccount", "enclave-operator", "-n", namespace
    )
    releases = json.loads(own.cluster.helm("list", "-A", "-o", "json").stdout)
    found["helm releases"] = bool(releases)
    part_of = "app.kubernetes.io/part-of=enclave-operator"
    charts_make = ("deployments", "daemonsets", "services", "pvc", "secrets", "serviceaccounts")
    for kind in (*charts_make, "clusterroles", "clusterrolebindings"):
        found[f"{kind} -l {part_of}"] = bool(own.json("get", kind, "-A", "-l", part_of)["items"])
    found["local operator pid file"] = (own.dev.directory / "operator.pid").exists()
    found[f"mutatingwebhookconfiguration {WEBHOOK}"] = own.exists(
        "mutatingwebhookconfiguration", WEBHOOK
    )
    return found
