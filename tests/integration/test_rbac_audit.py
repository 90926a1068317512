"""The chart's RBAC against what the operator really calls.

The operator runs under the chart's own ServiceAccount, ClusterRole and leader-election Role
(rendered by helm, applied as they are) on a cluster of its own, through a full run: CAS with
persistence, LAS, SGXPlugin, a policy, a repaired deletion, and everything removed again. The
API server's audit log then says which (group, resource, verb) that identity used: nothing may
have been refused (the role is enough), and everything the role grants must have been used,
except the entries below, each with its reason (the role is no bigger than needed).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from enclave_operator.api.kinds import CAS, LAS, SGXPLUGIN, SIGNED_POLICY
from enclave_operator.devcluster.cluster import DevCluster
from enclave_operator.devcluster.processes import free_port
from tests.integration.conftest import ROOT, Cluster
from tests.integration.crs import CRs, unique
from tests.integration.isolated import NS, isolated_cluster, probe, start_operator, stop_operator
from tests.integration.waiting import wait_for

USER = f"system:serviceaccount:{NS}:enclave-operator"
Permission = tuple[str, str, str]  # (API group, resource[/subresource], verb)

NOT_EXERCISED: dict[Permission, str] = {
    **{
        (group, f"{plural}/finalizers", "update"): "only where OwnerReferencesPermissionEnforcement"
        " is on (the dev cluster does not enable it): blockOwnerDeletion owner references"
        for group, plural in (
            ("services.enclave.dev", "cas"),
            ("base.enclave.dev", "las"),
            ("base.enclave.dev", "sgxplugins"),
            ("cas.enclave.dev", "signedpolicies"),
            ("cas.enclave.dev", "encryptedpolicies"),
        )
    },
    ("cas.enclave.dev", "encryptedpolicies/status", "patch"): "the run has no EncryptedPolicy"
    " (needs a reachable CAS's key)",
    ("cas.enclave.dev", "encryptedpolicies", "patch"): "as above",
    ("networking.k8s.io", "ingresses", "create"): "the CAS Ingress is off by default",
    **{("networking.k8s.io", "ingresses", v): "as above" for v in ("get", "patch", "delete")},
    ("", "nodes", "get"): "not called: the API server lets the operator create the SGXPlugin"
    " chart's role (get nodes) only because the operator holds that permission itself",
    ("", "configmaps", "create"): "the CAS CA copies, made in namespaces with injected pods"
    " (none here; tests/integration/test_webhook_operator.py has them)",
    ("", "configmaps", "update"): "as above",
    ("", "persistentvolumeclaims", "delete"): "a CAS's PVC outlives its release unless the"
    " spec asks for its removal",
}


def granted(role: dict[str, Any]) -> set[Permission]:
    out = set()
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    out.add((group, resource, verb))
    return out


def used(audit_log: Path, since: float = 0.0) -> tuple[set[Permission], list[str]]:
    """What USER asked for (from ``since``, a time.time()), and which requests were refused."""
    seen, refused = set(), []
    for line in audit_log.read_text().splitlines():
        event = json.loads(line)
        if event.get("user", {}).get("username") != USER or "objectRef" not in event:
            continue
        when = dt.datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))
        if when.timestamp() < since:
            continue
        ref = event["objectRef"]
        resource = ref.get("resource", "")
        if ref.get("subresource"):
            resource += "/" + ref["subresource"]
        seen.add((ref.get("apiGroup", ""), resource, event["verb"]))
        if (event.get("responseStatus") or {}).get("code") == 403:
            refused.append(f"{event['verb']} {event['requestURI']}")
    return seen, refused


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevCluster, Cluster]]:
    with isolated_cluster(tmp_path_factory, "rbac") as both:
        yield both


def operator_kubeconfig(
    cluster: Cluster, directory: Path, *values: str
) -> tuple[Path, dict[str, Any]]:
    """The chart's RBAC and webhook objects applied as rendered (the webhook's Service has no
    endpoints, and no pod here opts in); a kubeconfig with its ServiceAccount's token."""
    rendered = cluster.helm(
        *values,
        "template",
        "enclave-operator",
        str(ROOT / "charts" / "enclave-operator"),
        "--namespace",
        NS,
        "--show-only",
        "templates/rbac.yaml",
        "--show-only",
        "templates/webhook.yaml",
        "--show-only",
        "templates/serviceaccount.yaml",
    ).stdout
    cluster.kubectl("apply", "-f", "-", input=rendered)
    role = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "ClusterRole")
    return token_kubeconfig(cluster, "enclave-operator", directory), role


def token_kubeconfig(cluster: Cluster, account: str, directory: Path) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount ``account`` of NS."""
    token = cluster.kubectl("create", "token", account, "-n", NS, "--duration", "2h").stdout
    kc = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    kc["users"] = [{"name": "operator", "user": {"token": token.strip()}}]
    for ctx in kc["contexts"]:
        ctx["context"]["user"] = "operator"
    path = directory / f"{account}.kubeconfig"
    path.write_text(yaml.safe_dump(kc))
    return path


def operate(kubeconfig: Path, log: Path, **env: str) -> subprocess.Popen[bytes]:
    return start_operator(
        kubeconfig,
        log,
        LEADER_ELECTION="true",
        WEBHOOK_CONFIG="enclave-operator-webhook",
        WEBHOOK_PORT=str(free_port()),
        **env,
    )


OWNED = "deployments,services,daemonsets,serviceaccounts,clusterroles,clusterrolebindings"


def disown_all(cluster: Cluster, ns: str) -> None:
    """The charts own their objects from the install on; owner references removed by hand
    are what makes the operator patch them back (its only patch of these kinds here)."""

    def ours() -> list[dict[str, Any]]:
        out = cluster.kubectl("get", OWNED, "-A", "-l", "app.kubernetes.io/part-of", "-o", "json")
        items = json.loads(out.stdout)["items"]
        return [i for i in items if i["metadata"].get("namespace") in (ns, None)]

    items = ours()
    assert {i["kind"] for i in items} >= {"Deployment", "Service", "DaemonSet", "ClusterRole"}
    for item in items:
        meta = item["metadata"]
        where = ["-n", meta["namespace"]] if meta.get("namespace") else []
        patch = json.dumps({"metadata": {"ownerReferences": None}})
        cluster.kubectl("patch", item["kind"], meta["name"], *where, "--type=merge", "-p", patch)
    wait_for(
        lambda: [i["metadata"]["name"] for i in ours() if not i["metadata"].get("ownerReferences")],
        lambda unowned: not unowned,
        120,
        "owner references set back",
    )


def test_the_cluster_role_is_what_a_full_run_uses(
    audited: tuple[DevCluster, Cluster], tmp_path: Path
) -> None:
    dev, cluster = audited
    kubeconfig, role = operator_kubeconfig(cluster, tmp_path)
    api: client.ApiClient = config.new_client_from_config(cluster.kubeconfig)  # type: ignore[no-untyped-call]
    crs, apps, core = CRs(api), client.AppsV1Api(api), client.CoreV1Api(api)
    ns = unique("rbac")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    log = tmp_path / "operator.log"
    operator = operate(kubeconfig, log)
    try:
        crs.create(CAS, "cas", {"persistence": {"enabled": True, "size": "1Gi"}}, ns)
        crs.create(LAS, "las", {"namespace": ns})
        crs.create(SGXPLUGIN, "sgx", {"namespace": ns})
        crs.create(
            SIGNED_POLICY,
            "policy",
            {
                "casAddress": "cas",
                "policy": "name: policy\n",
                "signatures": [{"signer": "c2lnbmVy", "signature": "c2lnbmF0dXJl"}],
            },
            ns,
        )
        crs.wait_state(CAS, "cas", "HEALTHY", ns, timeout=180)
        crs.wait_state(LAS, "las", "HEALTHY", timeout=180)
        crs.wait_state(SGXPLUGIN, "sgx", "HEALTHY", timeout=180)
        disown_all(cluster, ns)  # repaired: SET_OWNER patches each object
        apps.delete_namespaced_deployment("cas-cas", ns)  # repaired: helm upgrade
        wait_for(
            lambda: [d.metadata.name for d in apps.list_namespaced_deployment(ns).items],  # type: ignore[union-attr]
            lambda names: "cas-cas" in names,
            120,
            "the Deployment recreated",
        )
        services = ((CAS, "cas", ns), (LAS, "las", None), (SGXPLUGIN, "sgx", None))
        for kind, name, namespace in services:
            crs.delete(kind, name, namespace)
        for kind, name, namespace in services:
            crs.wait_gone(kind, name, namespace, timeout=120)
    finally:
        stop_operator(operator, timeout=30)
    seen, refused = used(dev.directory / "logs" / "audit.log")
    assert not refused, f"refused to the operator: {refused}\n{log.read_text()[-3000:]}"
    allowed = granted(role)
    unused = allowed - seen
    print("used by the operator:\n  " + "\n  ".join(map(str, sorted(seen))))
    print("granted, not used:\n  " + "\n  ".join(map(str, sorted(unused))))
    print(f"RBAC: {len(allowed)} granted, {len(allowed & seen)} used, {len(unused)} not used here")
    assert unused <= NOT_EXERCISED.keys(), sorted(unused - NOT_EXERCISED.keys())
    assert NOT_EXERCISED.keys() <= allowed, sorted(NOT_EXERCISED.keys() - allowed)


def test_namespaced_mode_works_with_roles_and_no_cluster_wide_secrets(
    audited: tuple[DevCluster, Cluster], tmp_path: Path
) -> None:
    """operator.namespaces: Roles in the listed namespaces and the operator's; the ClusterRole
    keeps only cluster-scoped kinds. Runs after the test above, on the same cluster: applying
    the namespaced rendering replaces the ClusterRole's rules."""
    dev, cluster = audited
    api: client.ApiClient = config.new_client_from_config(cluster.kubeconfig)  # type: ignore[no-untyped-call]
    crs, core = CRs(api), client.CoreV1Api(api)
    team, other = unique("team"), unique("other")
    for ns in (team, other):
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    kubeconfig, role = operator_kubeconfig(
        cluster, tmp_path, "--set", f"operator.namespaces={{{team}}}"
    )
    assert not {r for r in granted(role) if r[1] in ("secrets", "services.enclave.dev")}
    sa = f"--as={USER}"
    for where, expected in ((["-A"], "no"), (["-n", other], "no"), (["-n", team], "yes")):
        got = cluster.kubectl("auth", "can-i", "list", "secrets", *where, sa, check=False)
        assert got.stdout.strip() == expected, (where, got.stdout, got.stderr)
    log = tmp_path / "operator.log"
    started = time.time()
    operator = operate(kubeconfig, log, WATCH_NAMESPACES=team)
    try:
        crs.create(CAS, "cas", {}, team)
        crs.create(CAS, "cas", {}, other)
        crs.create(LAS, "team-las", {"namespace": team, "hostPort": 18999})
        crs.wait_state(CAS, "cas", "HEALTHY", team, timeout=180)
        crs.wait_state(LAS, "team-las", "HEALTHY", timeout=180)
        assert not (crs.get(CAS, "cas", other) or {}).get("status"), "a CAS outside was served"
        for kind, name, scope in ((CAS, "cas", team), (LAS, "team-las", None)):
            crs.delete(kind, name, scope)
            crs.wait_gone(kind, name, scope, timeout=120)
    finally:
        stop_operator(operator, timeout=30)
    refused = [
        r
        for r in used(dev.directory / "logs" / "audit.log", since=started)[1]
        if "/configmaps/" not in r  # the CAS CA copies: none in this run
    ]
    assert not refused, f"refused in namespaced mode: {refused}\n{log.read_text()[-3000:]}"


def test_a_listing_refused_for_ever_fails_the_liveness_probe_after_sync_within(
    audited: tuple[DevCluster, Cluster], tmp_path: Path
) -> None:
    """The chart's ClusterRole without nodes: the first listing of nodes is refused again and
    again, the workers wait behind it, and /healthz turns 503 once SYNC_WITHIN has passed
    (the kubelet then restarts the pod) instead of answering ok for ever."""
    _, cluster = audited
    _, role = operator_kubeconfig(cluster, tmp_path)
    rules = [{**r, "resources": [x for x in r["resources"] if x != "nodes"]} for r in role["rules"]]
    assert rules != role["rules"], "the chart's role lists nodes"
    name = "without-nodes"
    objects = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": NS}},
        {**role, "metadata": {"name": name}, "rules": [r for r in rules if r["resources"]]},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NS}],
        },
    ]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))
    port = free_port()
    log = tmp_path / "operator.log"
    operator = start_operator(
        token_kubeconfig(cluster, name, tmp_path), log, METRICS_PORT=str(port), SYNC_WITHIN="4"
    )

    def healthz() -> tuple[int, str]:
        return probe(port, "/healthz")

    try:
        started = time.monotonic()
        first = wait_for(healthz, lambda seen: seen[0] != 0, 30, "the probe server")
        late = wait_for(healthz, lambda seen: seen[0] == 503, 60, "/healthz failing")
        waited = time.monotonic() - started
        assert "nodes and pods listed" in late[1], late
        assert first[0] == 200 or "nodes and pods listed" in first[1], first
        assert waited >= 4, f"failed after {waited:.1f}s, before SYNC_WITHIN"
        assert "forbidden" in log.read_text(errors="replace").lower()
    finally:
        stop_operator(operator)
        cluster.kubectl("delete", "clusterrolebinding,clusterrole", name, "--ignore-not-found")
