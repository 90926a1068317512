"""The real node's kubelet pulls the project's image from the dev cluster's registry (TLS
trusted through containerd's hosts.toml, basic auth from the pull secret): the first *valid*
imagePullSecrets entry is the one the pods get, after a missing Secret and one of the wrong
type; a pull with wrong credentials shows in the resource's ImagePulled condition, naming the
Secret. Needs root and the real node (one at a time on a machine)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from enclave_operator.api.kinds import CAS, LAS
from enclave_operator.devcluster.nodeconf import NODE_NAME, REAL_NODE_LABEL
from tests.integration.crs import CRs
from tests.integration.registry_env import REPOSITORY, RegistryEnv, registry_env, wait_until


@pytest.fixture(scope="module")
def env() -> Iterator[RegistryEnv]:
    with registry_env(real_nodes=1) as e:
        yield e


@pytest.fixture
def ns(env: RegistryEnv) -> Iterator[str]:
    name = f"pull-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(env.api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def real_node_las(env: RegistryEnv, ns: str, port: int, secrets: list[str]) -> str:
    name = f"pull-{uuid.uuid4().hex[:6]}"
    spec = {
        "namespace": ns,
        "hostPort": port,
        "image": env.registry.image(REPOSITORY, "0.1.0"),
        "imagePullPolicy": "Always",  # the kubelet asks the registry, whatever it holds
        "imagePullSecrets": [{"name": s} for s in secrets],
        "nodeSelector": {REAL_NODE_LABEL: "true"},
    }
    CRs(env.api).create(LAS, name, spec)
    return name


def real_pod(env: RegistryEnv, ns: str, name: str) -> Any:
    pods = client.CoreV1Api(env.api).list_namespaced_pod(
        ns, label_selector=f"app.kubernetes.io/instance=las-{name}"
    )
    mine = [p for p in pods.items if p.spec and p.spec.node_name == NODE_NAME]
    return mine[0] if mine else None


def events_of(env: RegistryEnv, ns: str, pod: str) -> list[Any]:
    found = client.CoreV1Api(env.api).list_namespaced_event(
        ns, field_selector=f"involvedObject.name={pod}"
    )
    return list(found.items)


def test_kubelet_pulls_with_the_first_valid_pull_secret(env, ns):
    env.pull_secret(ns, "wrong-type", type_="Opaque")
    env.pull_secret(ns, "valid")
    name = real_node_las(env, ns, 19200, ["missing", "wrong-type", "valid"])
    pod = wait_until(lambda: real_pod(env, ns, name), 120, "the LAS pod on the real node")
    assert [s.name for s in pod.spec.image_pull_secrets] == ["valid"]
    image = env.registry.image(REPOSITORY, "0.1.0")
    pulled = wait_until(
        lambda: [e for e in events_of(env, ns, pod.metadata.name) if e.reason == "Pulled"],
        180,
        f"the kubelet's Pulled Event (events: {events_of(env, ns, pod.metadata.name)})",
    )
    assert f'Successfully pulled image "{image}"' in pulled[0].message
    running = wait_until(
        lambda: (p := real_pod(env, ns, name)) and p.status.container_statuses
        and p.status.container_statuses[0].state.running and p,
        180,
        "the LAS container running from the pulled image",
    )  # fmt: skip
    assert running.status.container_statuses[0].image == image
    cr = CRs(env.api).get(LAS, name)
    types = {c["type"] for c in cr["status"]["conditions"]}
    assert "ImagePulled" not in types, "no condition for pods that never failed to pull"
    CRs(env.api).delete(LAS, name)
    CRs(env.api).wait_gone(LAS, name, timeout=120)


def test_wrong_credentials_are_reported_naming_the_secret(env, ns):
    env.pull_secret(ns, "stale", password="not-the-password")
    name = real_node_las(env, ns, 19201, ["stale"])
    failed = wait_until(
        lambda: [
            c
            for c in (CRs(env.api).get(LAS, name).get("status") or {}).get("conditions") or []
            if c["type"] == "ImagePulled" and c["status"] == "False"
        ],
        180,
        "ImagePulled False on the LAS",
    )[0]
    assert failed["reason"] == "PullFailed"
    assert "with imagePullSecret stale" in failed["message"]
    assert env.registry.image(REPOSITORY, "0.1.0") in failed["message"]
    assert "401 Unauthorized" in failed["message"], failed["message"]

    # the Secret fixed: the next pull succeeds and the condition says so
    core = client.CoreV1Api(env.api)
    core.delete_namespaced_secret("stale", ns)
    env.pull_secret(ns, "stale")
    wait_until(
        lambda: [
            c
            for c in (CRs(env.api).get(LAS, name).get("status") or {}).get("conditions") or []
            if c["type"] == "ImagePulled" and c["status"] == "True"
        ],
        300,
        "ImagePulled True once the Secret is right",
    )
    CRs(env.api).delete(LAS, name)
    CRs(env.api).wait_gone(LAS, name, timeout=120)


def test_a_cas_that_cannot_pull_says_so(env, ns):
    env.pull_secret(ns, "stale", password="not-the-password")
    spec = {
        "image": env.registry.image(REPOSITORY, "0.1.0"),
        "imagePullPolicy": "Always",
        "imagePullSecrets": [{"name": "stale"}],
        "nodeSelector": {REAL_NODE_LABEL: "true"},
    }
    CRs(env.api).create(CAS, "pull", spec, ns=ns)
    failed = wait_until(
        lambda: [
            c
            for c in (CRs(env.api).get(CAS, "pull", ns).get("status") or {}).get("conditions") or []
            if c["type"] == "ImagePulled" and c["status"] == "False"
        ],
        180,
        "ImagePulled False on the CAS",
    )[0]
    assert "with imagePullSecret stale" in failed["message"]
    assert "401 Unauthorized" in failed["message"], failed["message"]
    CRs(env.api).delete(CAS, "pull", ns=ns)
    CRs(env.api).wait_gone(CAS, "pull", ns=ns, timeout=120)
