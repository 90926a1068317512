"""The chart and `enclavectl install | status | check | uninstall` against a dev cluster of
their own: installs, what the operator's ServiceAccount may do, failures that leave nothing."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from typing import Any

from cryptography import x509

from enclave_operator.api.kinds import ALL_KINDS
from enclave_operator.devcluster import processes
from enclave_operator.install.plugins import PLUGINS
from enclave_operator.webhook.requests import INJECTED
from enclave_operator.webhook.settings import INJECT_LABEL as INJECT
from tests.integration.install_env import CHART, NS, WEBHOOK, Env, can_i_list, leftovers
from tests.integration.waiting import wait_for

CRDS = [k.crd_name for k in ALL_KINDS]
CA_COPY = "enclave-cas-ca"  # the CAS CA the webhook copies into namespaces with injected pods
CRUD = {"get", "list", "watch", "create", "patch", "delete"}
EXPECTED_RULES: dict[str, set[str]] = {
    # every authenticated user's (system:basic-user)
    "selfsubjectreviews.authentication.k8s.io": {"create"},
    "selfsubjectaccessreviews.authorization.k8s.io": {"create"},
    "selfsubjectrulesreviews.authorization.k8s.io": {"create"},
    # the custom resources, their status and (for owner references) finalizers
    **{f"{k.plural}.{k.group}": {"list", "watch", "patch"} for k in ALL_KINDS},
    **{f"{k.plural}.{k.group}/status": {"patch"} for k in ALL_KINDS},
    **{f"{k.plural}.{k.group}/finalizers": {"update"} for k in ALL_KINDS},
    # helm's release records; the operator watches them and reads imagePullSecrets
    "secrets": {"get", "list", "watch", "create", "update", "delete"},
    # what the service charts create
    "deployments.apps": CRUD,
    "daemonsets.apps": CRUD,
    "statefulsets.apps": {"list", "watch"},  # watched; no chart of ours makes one
    "services": CRUD,
    "persistentvolumeclaims": CRUD,
    "ingresses.networking.k8s.io": CRUD,  # the CAS chart's optional Ingress
    # the SGXPlugin chart's: the plugin's ServiceAccount and its role to read Nodes
    "serviceaccounts": CRUD,
    "clusterroles.rbac.authorization.k8s.io": CRUD,
    "clusterrolebindings.rbac.authorization.k8s.io": CRUD,
    "events": {"create"},
    # status figures; kopf's resource scanning
    "nodes": {"get", "list", "watch"},  # get: the SGXPlugin chart's role grants it
    "pods": {"list", "watch"},
    "customresourcedefinitions.apiextensions.k8s.io": {"list", "watch"},
    # the injection webhook: caBundle of its own configuration; its settings, the CAS CA copies
    f"mutatingwebhookconfigurations.admissionregistration.k8s.io[{WEBHOOK}]": {"get", "patch"},
    "configmaps": {"get", "create", "update"},
}


def labelled_pod_injection(own: Env, namespace: str, dry_run: bool = True) -> Any:
    """What the webhook injected into a labelled pod (None: nothing); a dry run by default."""
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe", "namespace": namespace, "labels": {INJECT: "true"}},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
    }
    dry = ["--dry-run=server"] if dry_run else []
    got = own.cluster.kubectl(
        "create", *dry, "-o", "json", "-f", "-", input=json.dumps(body), check=False
    )
    if got.returncode != 0:
        return None
    notes = json.loads(got.stdout)["metadata"].get("annotations") or {}
    return json.loads(notes[INJECTED]) if INJECTED in notes else None


def states(own: Env) -> dict[str, str | None]:
    got = {}
    for plural in ("sgxplugins", "las", "cas"):
        for item in own.json("get", plural, "-A")["items"]:
            got[f"{plural}/{item['metadata']['name']}"] = (item.get("status") or {}).get("state")
    return got


def test_chart_lint_and_schema(own: Env):
    lint = own.cluster.helm("lint", str(CHART), "--set", "simulation=true", check=False)
    assert lint.returncode == 0, lint.stdout
    bad = own.cluster.helm(
        "install",
        "enclave",
        str(CHART),
        "-n",
        NS,
        "--create-namespace",
        "--set",
        "simulation=yes",
        check=False,
    )
    assert bad.returncode != 0
    assert "at '/simulation': got string, want boolean" in bad.stderr
    assert not own.exists("namespace", NS), "helm validates before creating anything"


def test_plain_helm_install_and_the_service_accounts_rights(own: Env, tmp_path):
    own.cluster.helm(
        "install", "enclave", str(CHART), "-n", NS, "--create-namespace", "--set", "simulation=true"
    )
    operator = None
    try:
        pods = wait_for(
            lambda: own.json("get", "pods", "-n", NS, "-l", "app.kubernetes.io/component=operator")[
                "items"
            ],
            lambda items: [p["status"].get("phase") for p in items] == ["Running"] * 2,
            what="the two operator replicas Running under kwok",
        )
        assert pods[0]["spec"]["serviceAccountName"] == "enclave-operator"
        can_i = own.cluster.kubectl(
            "auth", "can-i", "--list", f"--as=system:serviceaccount:{NS}:enclave-operator"
        )
        resources, urls = can_i_list(can_i.stdout)
        assert resources == EXPECTED_RULES
        assert all(verbs == {"get"} for verbs in urls.values()), urls  # discovery only
        assert not [r for r, verbs in resources.items() if "*" in r or "*" in verbs]

        # no container runs under kwok: run the operator as the ServiceAccount, locally. That
        # its rules are enough shows in HEALTHY services, and in their removal on deletion.
        kubeconfig = own.token_kubeconfig(tmp_path / "sa.kubeconfig", NS, "enclave-operator")
        log = tmp_path / "operator.log"
        env = {
            **own.env,
            "KUBECONFIG": str(kubeconfig),
            "OPERATOR_NAMESPACE": NS,
            "METRICS_PORT": "0",
            "WEBHOOK_PORT": str(processes.free_port()),  # not the chart's 9443 on this host
        }
        with log.open("wb") as out:
            operator = subprocess.Popen(
                [sys.executable, "-m", "enclave_operator.cli", "operator", "run"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(
            lambda: states(own),
            lambda s: len(s) == 3 and set(s.values()) == {"HEALTHY"},
            90,
            "HEALTHY as the ServiceAccount",
        )
        # in-cluster the chart owns the webhook's configuration; the operator writes caBundle
        wait_for(
            lambda: own.json("get", "mutatingwebhookconfiguration", WEBHOOK)["webhooks"][0][
                "clientConfig"
            ],
            lambda c: bool(c.get("caBundle")) and c["service"]["namespace"] == NS,
            60,
            "the operator's CA in the chart's webhook configuration",
        )
        own.cluster.kubectl("delete", "cas,las,sgxplugins", "--all", "-A", "--timeout=60s")
        assert not own.json(
            "get",
            "deployments,daemonsets,serviceaccounts,clusterroles,clusterrolebindings",
            "-A",
            "-l",
            "app.kubernetes.io/part-of=enclave-operator",
        )["items"]
        assert "forbidden" not in log.read_text().lower(), log.read_text()[-3000:]
    finally:
        if operator is not None:
            operator.terminate()
            operator.wait(30)
        own.cluster.helm("uninstall", "enclave", "-n", NS, "--ignore-not-found")
        own.cluster.kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=false")
        own.cluster.kubectl("delete", "crd", *CRDS, "--ignore-not-found")
        wait_for(lambda: own.exists("namespace", NS), lambda e: not e, 60, "namespace gone")


def test_install_status_check_uninstall(own: Env):
    ns = "enclave-test"
    install = own.ctl(
        "install",
        "--simulation",
        "--local-operator",
        "-n",
        ns,
        "--domain",
        "cas.example.com",
        "--domain",
        "10.0.0.5",
        "--timeout",
        "2m",
    )
    assert install.returncode == 0, install.stderr
    out = install.stderr
    assert re.search(r"\] 0/3 HEALTHY after \d+s", out), "progress from the start"
    assert re.search(r"\] 3/3 HEALTHY after \d+s", out)
    assert "no status yet" in out or "PENDING" in out, "progress names what is missing"
    assert "enclave-operator is installed" in out
    assert set(states(own).values()) == {"HEALTHY"}
    for kind in ("cas", "las"):
        spec = own.json("get", kind, "enclave", "-n", ns)["spec"]
        assert not any(p.resource in json.dumps(spec) for p in PLUGINS), "simulation: no SGX"

    secret = own.json("get", "secret", "cas-enclave-tls", "-n", ns)
    assert secret["type"] == "kubernetes.io/tls"
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [
        "cas.example.com",
        "localhost",
        "cas-enclave",
        f"cas-enclave.{ns}",
        f"cas-enclave.{ns}.svc",
        f"cas-enclave.{ns}.svc.cluster.local",
    ]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    assert not own.exists("deployment", "enclave-operator", "-n", ns), "operator runs locally"
    # its webhook, registered by URL on loopback, injects labelled pods
    assert "SGX injection webhook: for pods labelled enclave.dev/inject=true" in out
    hook = wait_for(
        lambda: labelled_pod_injection(own, "default"), bool, 60, "the local operator's webhook"
    )
    assert hook["mode"] == "simulation"
    client = own.json("get", "mutatingwebhookconfiguration", WEBHOOK)["webhooks"][0]
    assert client["clientConfig"]["url"].startswith("https://127.0.0.1:")
    # a pod really created (not a dry run) gets the CAS CA copied into its namespace
    assert labelled_pod_injection(own, "default", dry_run=False)["mode"] == "simulation"
    wait_for(lambda: own.exists("configmap", CA_COPY, "-n", "default"), bool, 60, "CA copy")
    own.cluster.kubectl("delete", "pod", "probe", "-n", "default", "--wait=false")
    pid = int((own.dev.directory / "operator.pid").read_text())
    assert (own.dev.directory / "logs" / "operator.log").exists()

    status = own.ctl("status", "-o", "json")
    assert status.returncode == 0, status.stderr
    rows = json.loads(status.stdout)
    assert [(r["kind"], r["name"], r["state"], r["ready"], r["unmetConditions"]) for r in rows] == [
        ("SGXPlugin", "enclave", "HEALTHY", True, []),
        ("LAS", "enclave", "HEALTHY", True, []),
        ("CAS", "enclave", "HEALTHY", True, []),
    ]
    assert "SGX devices" in own.ctl("status").stdout
    check = own.ctl("check", "--timeout", "10s")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "3/3 HEALTHY" in check.stdout, "check agrees with status"

    again = own.ctl("install", "--simulation", "--local-operator", "-n", ns)
    assert again.returncode == 0
    assert "already installed" in again.stderr

    uninstall = own.ctl("uninstall", "-n", ns)
    assert uninstall.returncode == 0, uninstall.stderr
    assert "is uninstalled" in uninstall.stderr
    left = leftovers(own, ns)
    assert not any(left.values()), {k: v for k, v in left.items() if v}
    assert len(left) == len(CRDS) + 15, sorted(left)  # what was looked for
    assert not own.exists("configmap", CA_COPY, "-n", "default"), "the webhook's CA copies too"
    assert not (own.dev.directory / "operator.pid").exists()
    assert not processes.alive(pid), "the local operator stopped"

    twice = own.ctl("uninstall", "-n", ns)
    assert twice.returncode == 0
    assert "nothing to uninstall" in twice.stderr
    none = own.ctl("check", "--timeout", "1s")
    assert none.returncode == 1
