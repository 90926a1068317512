"""Pull secrets come from a watch: a Secret created after the CR is used without any other
event, one deleted is dropped, and no pass reads a pull secret from the API server (the
audit log, which the dev cluster writes, shows every request)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from enclave_operator.api.kinds import LAS
from tests.integration.crs import CRs, condition, unique
from tests.integration.test_reconcile import las_spec
from tests.integration.waiting import wait_for

pytestmark = pytest.mark.integration
NAME = "regcred"


def audit_gets(kubeconfig: str, namespace: str, name: str) -> int:
    """GETs of one Secret by anyone: the tests never read it, so they are the operator's."""
    log = Path(kubeconfig).parent / "logs" / "audit.log"
    if not log.exists():
        pytest.skip("the cluster writes no audit log where the dev cluster keeps it")
    count = 0
    for line in log.read_text().splitlines():
        ref = json.loads(line).get("objectRef") or {}
        if (ref.get("resource"), ref.get("namespace"), ref.get("name")) == (
            "secrets",
            namespace,
            name,
        ) and json.loads(line).get("verb") == "get":
            count += 1
    return count


def pull_secret(name: str) -> dict[str, Any]:
    config = json.dumps({"auths": {"registry.example": {"auth": "dTpw"}}}).encode()
    return {
        "metadata": {"name": name},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(config).decode()},
    }


def daemonset_pull_secrets(apps: client.AppsV1Api, namespace: str, las: str) -> list[str]:
    try:
        ds: Any = apps.read_namespaced_daemon_set(f"las-{las}", namespace)
    except client.ApiException as e:
        if e.status == 404:
            return []
        raise
    return [s.name for s in ds.spec.template.spec.image_pull_secrets or []]


def test_pull_secrets_come_from_a_watch(api_client, operator, cluster, namespace):
    crs = CRs(api_client)
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    las = unique("las")
    crs.create(LAS, las, {**las_spec(namespace), "imagePullSecrets": [{"name": NAME}]})
    try:
        cr = crs.wait_state(LAS, las, "HEALTHY")
        assert f"ignored: {NAME} (" in condition(cr, "IsHealthy")["message"]
        assert daemonset_pull_secrets(apps, namespace, las) == []

        # created afterwards: picked up from the watch, with no change to the CR
        core.create_namespaced_secret(namespace, pull_secret(NAME))
        wait_for(
            lambda: daemonset_pull_secrets(apps, namespace, las),
            lambda names: names == [NAME],
            90,
            "the DaemonSet to use the pull secret created after the LAS",
        )
        cr = wait_for(
            lambda: crs.get(LAS, las),
            lambda c: "ignored" not in condition(c, "IsHealthy")["message"],
            90,
            "the note about the missing pull secret to go",
        )
        # another type by the same name is not a pull secret
        core.delete_namespaced_secret(NAME, namespace)
        wait_for(
            lambda: daemonset_pull_secrets(apps, namespace, las),
            lambda names: names == [],
            90,
            "the DaemonSet to drop the deleted pull secret",
        )
        opaque = {"metadata": {"name": NAME}, "type": "Opaque", "data": {"x": "eA=="}}
        core.create_namespaced_secret(namespace, opaque)
        crs.patch(LAS, las, {"metadata": {"labels": {"touched": "yes"}}})  # another pass
        cr = wait_for(
            lambda: crs.get(LAS, las),
            lambda c: f"ignored: {NAME} (" in condition(c, "IsHealthy")["message"],
            90,
            "the note about a Secret of another type",
        )
        assert daemonset_pull_secrets(apps, namespace, las) == []
        assert audit_gets(cluster.kubeconfig, namespace, NAME) == 0, "a pass read the Secret"
    finally:
        crs.delete(LAS, las)
        crs.wait_gone(LAS, las)
