"""The helm server's releases are real Helm releases: the helm binary reads them, continues
them, and the server continues the binary's; and an action of the server leaves the same
record and objects as the binary with the operator's flags (``CLI_FLAGS``)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from enclave_operator.api.kinds import LAS
from enclave_operator.charts import chart_path
from enclave_operator.devcluster.binaries import toolset
from enclave_operator.helm.releases import OPERATOR_LABEL, decode_payload
from enclave_operator.helm.runner import CLI_FLAGS, HelmResult, HelmRunner
from enclave_operator.reconcile.actions.install import NAME_IN_USE

CHART = chart_path(LAS)


class Server:
    """The runner and one event loop for the whole test, as in the operator."""

    def __init__(self, kubeconfig: str) -> None:
        self.runner = HelmRunner(toolset().path("helm-server"), kubeconfig)
        self.loop = asyncio.new_event_loop()

    def __call__(self, verb: str, *args: Any) -> HelmResult:
        result: HelmResult = self.loop.run_until_complete(getattr(self.runner, verb)(*args))
        return result


@pytest.fixture
def server(cluster) -> Iterator[Server]:
    s = Server(cluster.kubeconfig)
    yield s
    s.loop.run_until_complete(s.runner.close())
    s.loop.close()


def cli(cluster, verb: str, release: str, namespace: str, *args: str, values: Any = None):
    argv = [verb, release, *args, "--namespace", namespace, *CLI_FLAGS[verb]]
    if values is not None:
        argv += ["--values", "-"]
    return cluster.run(
        "helm", *argv, input=None if values is None else json.dumps(values), check=False
    )


def history(cluster, release: str, namespace: str) -> list[tuple[int, str, str]]:
    out = cluster.helm("history", release, "--namespace", namespace, "-o", "json").stdout
    return [(r["revision"], r["status"], r["description"]) for r in json.loads(out)]


def values(cluster, release: str, namespace: str) -> Any:
    out = cluster.helm("get", "values", release, "--namespace", namespace, "-o", "json").stdout
    return json.loads(out)


def records(api_client, release, namespace):
    """Revision -> (the record Secret's labels, the decoded release)."""
    secrets = client.CoreV1Api(api_client).list_namespaced_secret(
        namespace, label_selector=f"owner=helm,name={release}"
    )
    found = {}
    for s in secrets.items:
        rel = decode_payload(s.data["release"])
        found[rel["version"]] = (dict(s.metadata.labels), rel)
    return found


def test_binary_and_server_take_turns_on_one_release(cluster, server, namespace):
    name = "las-turns"
    assert server("install", name, namespace, CHART, {"hostPort": 18801}) == HelmResult(True, 1, "")
    assert history(cluster, name, namespace) == [(1, "deployed", "Install complete")]
    assert values(cluster, name, namespace) == {"hostPort": 18801}

    done = cli(cluster, "upgrade", name, namespace, str(CHART), values={"hostPort": 18802})
    assert done.returncode == 0, done.stderr
    # reset-values: the server's upgrade keeps nothing of the binary's values
    result = server("upgrade", name, namespace, CHART, {"imagePullPolicy": "IfNotPresent"})
    assert result == HelmResult(True, 3, "")
    assert values(cluster, name, namespace) == {"imagePullPolicy": "IfNotPresent"}

    assert server("rollback", name, namespace, 2).ok
    assert history(cluster, name, namespace) == [
        (1, "superseded", "Install complete"),
        (2, "superseded", "Upgrade complete"),
        (3, "superseded", "Upgrade complete"),
        (4, "deployed", "Rollback to 2"),
    ]
    assert values(cluster, name, namespace) == {"hostPort": 18802}

    done = cli(cluster, "upgrade", name, namespace, str(CHART), values={"hostPort": 18803})
    assert done.returncode == 0, done.stderr
    assert server("uninstall", name, namespace).ok
    gone = cluster.helm("status", name, "--namespace", namespace, check=False)
    assert gone.returncode != 0
    assert "not found" in gone.stderr


def test_server_and_binary_leave_the_same_record_and_objects(
    cluster, server, api_client, namespace
):
    given = {"hostPort": 18811, "nodeSelector": {"a": "b"}}
    by_server, by_binary = "las-s1", "las-b1"  # the CAS address in the manifest: cas-s1, cas-b1
    assert server("install", by_server, namespace, CHART, given).ok
    done = cli(cluster, "install", by_binary, namespace, str(CHART), values=given)
    assert done.returncode == 0, done.stderr
    assert server("upgrade", by_server, namespace, CHART, given).ok
    done = cli(cluster, "upgrade", by_binary, namespace, str(CHART), values=given)
    assert done.returncode == 0, done.stderr

    ours, theirs = (
        records(api_client, by_server, namespace),
        records(api_client, by_binary, namespace),
    )
    assert sorted(ours) == sorted(theirs) == [1, 2]
    for revision in (1, 2):
        (ours_labels, ours_rel), (their_labels, their_rel) = ours[revision], theirs[revision]
        for labels in (ours_labels, their_labels):
            labels.pop("modifiedAt", None)
            labels.pop("name")
        assert ours_labels == their_labels
        assert ours_labels[OPERATOR_LABEL[0]] == OPERATOR_LABEL[1]
        assert ours_rel["config"] == their_rel["config"] == given
        assert ours_rel["manifest"].replace("-s1", "-b1") == their_rel["manifest"]
        assert ours_rel["info"]["status"] == their_rel["info"]["status"]
        assert ours_rel["info"]["description"] == their_rel["info"]["description"]
        assert ours_rel.get("apply_method") == their_rel.get("apply_method")
        assert ours_rel["chart"]["metadata"] == their_rel["chart"]["metadata"]

    apps = client.AppsV1Api(api_client)
    for name in (by_server, by_binary):
        ds = apps.list_namespaced_daemon_set(
            namespace, label_selector=f"app.kubernetes.io/instance={name}"
        ).items
        assert len(ds) == 1
        managers = {(m.manager, m.operation) for m in ds[0].metadata.managed_fields}
        assert ("helm", "Update") in managers
        assert not any(op == "Apply" for _, op in managers)  # client-side, not server-side apply


def test_server_reports_helms_own_errors(cluster, server, namespace):
    assert server("install", "las-twice", namespace, CHART, {}).ok
    again = server("install", "las-twice", namespace, CHART, {})
    by_binary = cli(cluster, "install", "las-twice", namespace, str(CHART), values={})
    assert not again.ok
    assert NAME_IN_USE in again.error
    assert again.error == by_binary.stderr.strip().splitlines()[-1]

    missing = server("uninstall", "las-nothing", namespace)
    by_binary = cli(cluster, "uninstall", "las-nothing", namespace)
    assert missing == HelmResult(False, None, by_binary.stderr.strip())

    bad = server("upgrade", "las-twice", namespace, CHART, {"replicas": 2})
    assert not bad.ok
    assert bad.error.startswith("Error: UPGRADE FAILED: values don't meet the specifications")


def test_one_server_process_serves_many_releases_at_once(cluster, server, namespace):
    async def many() -> list[HelmResult]:
        return list(
            await asyncio.gather(
                *(server.runner.install(f"las-many-{i}", namespace, CHART, {}) for i in range(6))
            )
        )

    results = server.loop.run_until_complete(many())
    assert results == [HelmResult(True, 1, "")] * 6
    for i in range(6):
        assert history(cluster, f"las-many-{i}", namespace)[0][1] == "deployed"


def test_a_kind_defined_after_the_server_started_can_be_installed(
    cluster, server, namespace, tmp_path
):
    """The server caches discovery; a kind it does not know makes it ask again."""
    suffix = uuid.uuid4().hex[:6]
    kind, plural, group = f"Widget{suffix}", f"widget{suffix}s", "hs.test.enclave.dev"
    assert not server("uninstall", "nothing", namespace).ok  # discovery read and cached
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": plural[:-1]},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
    cluster.kubectl("create", "-f", "-", input=json.dumps(crd))
    try:
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{plural}.{group}")
        chart = tmp_path / "widget"
        (chart / "templates").mkdir(parents=True)
        (chart / "Chart.yaml").write_text("apiVersion: v2\nname: widget\nversion: 0.1.0\n")
        (chart / "templates" / "w.yaml").write_text(
            f"apiVersion: {group}/v1\nkind: {kind}\nmetadata:\n  name: w\n"
        )
        assert server("install", "widget", namespace, chart, {}) == HelmResult(True, 1, "")
        cluster.kubectl("get", f"{plural}.{group}", "w", "-n", namespace)
    finally:
        cluster.kubectl("delete", "crd", f"{plural}.{group}", "--wait=false", check=False)
