"""autoUpdate and pull secrets against the dev cluster's real registry (docker-registry with
TLS and basic auth), on kwok nodes: the DaemonSet's spec shows each move. The real node's
pulls are in test_registry_pull.py."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from enclave_operator.api.kinds import CAS, LAS, SGXPLUGIN
from enclave_operator.devcluster.push import push_bytes
from tests.integration.crs import CRs
from tests.integration.registry_env import (
    INTERVAL,
    REPOSITORY,
    RegistryEnv,
    registry_env,
    registry_processes,
    wait_until,
)

PORTS = itertools.count(19100)
SETTLE = 8 * INTERVAL  # several checks: long enough for a wrong move to have happened


@pytest.fixture(scope="module")
def env() -> Iterator[RegistryEnv]:
    with registry_env(real_nodes=0) as e:
        yield e
    # `dev-cluster down` left no registry process and no data
    assert not e.dev.directory.exists()
    assert registry_processes(e.dev.directory) == []


@pytest.fixture
def ns(env: RegistryEnv) -> Iterator[str]:
    name = f"au-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(env.api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def push(env: RegistryEnv, repository: str, *tags: str) -> None:
    for tag in tags:
        push_bytes(env.registry, repository, tag, f"{repository} {tag}".encode(), tag)


def las(env: RegistryEnv, ns: str, repository: str, tag: str, **spec: Any) -> str:
    name = f"au-{uuid.uuid4().hex[:6]}"
    body = {
        "namespace": ns,
        "hostPort": next(PORTS),
        "image": env.registry.image(repository, tag),
        "imagePullPolicy": "IfNotPresent",
        "autoUpdate": True,
        **spec,
    }
    CRs(env.api).create(LAS, name, body)
    return name


def daemonset_image(env: RegistryEnv, ns: str, name: str) -> str | None:
    try:
        ds = client.AppsV1Api(env.api).read_namespaced_daemon_set(f"las-{name}", ns)
    except client.ApiException:
        return None
    return str(ds.to_dict()["spec"]["template"]["spec"]["containers"][0]["image"])


def auto_update(env: RegistryEnv, name: str) -> dict[str, Any]:
    cr = CRs(env.api).get(LAS, name) or {}
    found = [
        c for c in (cr.get("status") or {}).get("conditions") or [] if c["type"] == "AutoUpdate"
    ]
    return found[0] if found else {}


def wait_condition(env: RegistryEnv, name: str, reason: str, timeout: float = 90) -> Any:
    return wait_until(
        lambda: (c := auto_update(env, name)).get("reason") == reason and c,
        timeout,
        f"AutoUpdate {reason} on LAS {name} (now {auto_update(env, name)})",
    )


def test_las_follows_new_patch_and_minor_versions_but_not_a_new_major(env, ns):
    repo = f"{REPOSITORY}-{ns}"
    push(env, repo, "0.1.0")
    env.pull_secret(ns, "regcred")
    name = las(env, ns, repo, "0.1.0", imagePullSecrets=[{"name": "regcred"}])
    up_to_date = wait_condition(env, name, "UpToDate")
    assert up_to_date["status"] == "True"
    assert up_to_date["message"] == "0.1.0 is the newest within 0.x"
    wait_until(
        lambda: daemonset_image(env, ns, name) == env.registry.image(repo, "0.1.0"),
        120,
        "the DaemonSet at 0.1.0",
    )

    push(env, repo, "0.1.1")
    wait_until(
        lambda: daemonset_image(env, ns, name) == env.registry.image(repo, "0.1.1"),
        30 * INTERVAL + 60,
        "the DaemonSet rolled to 0.1.1",
    )
    updated = auto_update(env, name)
    assert (updated["status"], updated["reason"]) == ("True", "Updated")
    assert updated["message"] == "from 0.1.0 to 0.1.1"
    events = wait_until(
        lambda: [e for e in env.events("default", name) if e.reason == "AutoUpdated"],
        30,
        "an AutoUpdated Event",
    )
    assert [e.message for e in events] == ["from 0.1.0 to 0.1.1"]

    push(env, repo, "1.0.0", "latest", "0.2.0-rc.1")
    cr_before = CRs(env.api).get(LAS, name)
    wait_until(lambda: len(env.operator.log.read_text()) > 0, 5, "operator log")
    import time

    time.sleep(SETTLE)
    cr_after = CRs(env.api).get(LAS, name)
    assert cr_after["spec"]["image"] == env.registry.image(repo, "0.1.1")
    assert cr_after["metadata"]["generation"] == cr_before["metadata"]["generation"]
    assert daemonset_image(env, ns, name) == env.registry.image(repo, "0.1.1")
    assert auto_update(env, name)["message"] == "from 0.1.0 to 0.1.1"

    # allowed by the spec: the next major version, and never `latest` or a pre-release
    CRs(env.api).patch(LAS, name, {"spec": {"autoUpdateScope": "Major"}})
    wait_until(
        lambda: daemonset_image(env, ns, name) == env.registry.image(repo, "1.0.0"),
        30 * INTERVAL + 60,
        "the DaemonSet rolled to 1.0.0 with autoUpdateScope Major",
    )
    assert auto_update(env, name)["message"] == "from 0.1.1 to 1.0.0"
    CRs(env.api).delete(LAS, name)


def test_sgxplugin_follows_a_new_version_too(env, ns):
    repo = f"{REPOSITORY}-{ns}"
    push(env, repo, "0.5.0")
    env.pull_secret(ns, "regcred")
    name = f"au-{uuid.uuid4().hex[:6]}"
    spec = {
        "namespace": ns,
        "image": env.registry.image(repo, "0.5.0"),
        "autoUpdate": True,
        "imagePullSecrets": [{"name": "regcred"}],
    }
    CRs(env.api).create(SGXPLUGIN, name, spec)
    apps = client.AppsV1Api(env.api)

    def image() -> str | None:
        try:
            ds = apps.read_namespaced_daemon_set(f"sgxplugin-{name}", ns)
        except client.ApiException:
            return None
        return str(ds.to_dict()["spec"]["template"]["spec"]["containers"][0]["image"])

    wait_until(lambda: image() == env.registry.image(repo, "0.5.0"), 120, "the plugin at 0.5.0")
    push(env, repo, "0.5.1")
    wait_until(
        lambda: image() == env.registry.image(repo, "0.5.1"),
        30 * INTERVAL + 60,
        "the plugin's DaemonSet rolled to 0.5.1",
    )
    events = wait_until(
        lambda: [e for e in env.events("default", name) if e.reason == "AutoUpdated"],
        30,
        "an AutoUpdated Event",
    )
    assert events[0].involved_object.kind == "SGXPlugin"
    assert events[0].message == "from 0.5.0 to 0.5.1"
    CRs(env.api).delete(SGXPLUGIN, name)


def test_condition_is_put_back_and_goes_with_auto_update(env, ns):
    repo = f"{REPOSITORY}-{ns}"
    push(env, repo, "0.7.0")
    env.pull_secret(ns, "regcred")
    name = las(env, ns, repo, "0.7.0", imagePullSecrets=[{"name": "regcred"}])
    wait_condition(env, name, "UpToDate")
    # another writer's stale copy of the status, without the condition
    crs = CRs(env.api)
    cr = crs.get(LAS, name)
    kept = [c for c in cr["status"]["conditions"] if c["type"] != "AutoUpdate"]
    dropped = crs.api.patch_cluster_custom_object_status(
        LAS.group, LAS.version, LAS.plural, name, {"status": {"conditions": kept}}
    )
    assert "AutoUpdate" not in {c["type"] for c in dropped["status"]["conditions"]}
    wait_condition(env, name, "UpToDate", timeout=30)
    crs.patch(LAS, name, {"spec": {"autoUpdate": False}})
    wait_until(lambda: auto_update(env, name) == {}, 30, "no AutoUpdate condition")
    crs.delete(LAS, name)


def test_first_valid_pull_secret_is_used_and_wrong_credentials_name_the_secret(env, ns):
    repo = f"{REPOSITORY}-{ns}"
    push(env, repo, "0.3.0", "0.3.4")
    env.pull_secret(ns, "wrong-type", type_="Opaque")
    env.pull_secret(ns, "valid")
    secrets = [{"name": "missing"}, {"name": "wrong-type"}, {"name": "valid"}]
    name = las(env, ns, repo, "0.3.0", imagePullSecrets=secrets, autoUpdateScope="Patch")
    wait_until(
        lambda: daemonset_image(env, ns, name) == env.registry.image(repo, "0.3.4"),
        120,
        "an update read with the third, first valid, Secret",
    )
    ds = client.AppsV1Api(env.api).read_namespaced_daemon_set(f"las-{name}", ns)
    assert [s.name for s in ds.spec.template.spec.image_pull_secrets] == ["valid"]

    env.pull_secret(ns, "stale", password="not-the-password")
    wrong = las(env, ns, repo, "0.3.0", imagePullSecrets=[{"name": "stale"}])
    refused = wait_condition(env, wrong, "CredentialsRefused")
    assert refused["status"] == "False"
    assert f"Secret {ns}/stale" in refused["message"]
    assert "refused the credentials (401)" in refused["message"]
    assert daemonset_image(env, ns, wrong) in (None, env.registry.image(repo, "0.3.0"))

    none = las(env, ns, repo, "0.3.0")
    needs = wait_condition(env, none, "CredentialsRefused")
    assert "needs credentials" in needs["message"]
    for n in (name, wrong, none):
        CRs(env.api).delete(LAS, n)


def test_cas_refuses_auto_update_at_admission(env, ns):
    with pytest.raises(client.ApiException) as caught:
        CRs(env.api).create(CAS, "cas-au", {"autoUpdate": True}, ns=ns)
    assert caught.value.status == 422
    message = json.loads(caught.value.body)["message"]
    assert "spec.autoUpdate: Invalid value" in message
    assert "autoUpdate is disabled for CAS" in message
    CRs(env.api).create(CAS, "cas-no-au", {"autoUpdate": False}, ns=ns)
    CRs(env.api).delete(CAS, "cas-no-au", ns=ns)


def test_cas_with_ingress_is_healthy_and_owns_its_passthrough_ingress(env, ns):
    """The operator watches the Ingress like the chart's other objects."""
    spec = {"ingress": {"enabled": True, "host": "cas.example.com"}}
    cas = CRs(env.api).create(CAS, "ing", spec, ns=ns)
    CRs(env.api).wait_state(CAS, "ing", "HEALTHY", ns=ns, timeout=120)
    net = client.NetworkingV1Api(env.api)
    ingress = net.read_namespaced_ingress("cas-ing", ns)
    annotations = ingress.metadata.annotations or {}
    assert annotations["nginx.ingress.kubernetes.io/ssl-passthrough"] == "true"
    assert [o.uid for o in ingress.metadata.owner_references or []] == [cas["metadata"]["uid"]]
    net.delete_namespaced_ingress("cas-ing", ns)  # repaired, as any owned object
    wait_until(
        lambda: [i for i in net.list_namespaced_ingress(ns).items if i.metadata.name == "cas-ing"],
        120,
        "the Ingress put back",
    )
    CRs(env.api).delete(CAS, "ing", ns=ns)
    CRs(env.api).wait_gone(CAS, "ing", ns=ns, timeout=120)
    assert net.list_namespaced_ingress(ns).items == []


def test_registry_stopped_sets_a_condition_and_changes_nothing_else(env, ns):
    """Last in this file: the registry stays down."""
    repo = f"{REPOSITORY}-{ns}"
    push(env, repo, "2.0.0")
    env.pull_secret(ns, "regcred")
    name = las(env, ns, repo, "2.0.0", imagePullSecrets=[{"name": "regcred"}])
    wait_condition(env, name, "UpToDate")
    wait_until(lambda: daemonset_image(env, ns, name), 120, "the DaemonSet")
    before = CRs(env.api).get(LAS, name)
    ds_before = client.AppsV1Api(env.api).read_namespaced_daemon_set(f"las-{name}", ns)

    env.stop_registry()
    down = wait_condition(env, name, "RegistryUnreachable", timeout=60)
    assert down["status"] == "False"
    assert env.registry.address in down["message"]
    assert "next check in" in down["message"]
    warnings = wait_until(
        lambda: [e for e in env.events("default", name) if e.reason == "RegistryUnreachable"],
        30,
        "a RegistryUnreachable Event",
    )
    assert [e.type for e in warnings] == ["Warning"]

    after = CRs(env.api).get(LAS, name)
    assert after["spec"] == before["spec"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    ds_after = client.AppsV1Api(env.api).read_namespaced_daemon_set(f"las-{name}", ns)
    assert ds_after.metadata.generation == ds_before.metadata.generation
    assert after["status"]["state"] == before["status"]["state"]
