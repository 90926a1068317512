"""The CRDs against a real API server: discovery, defaults, validation, immutability, samples.

Validation lives in the schemas, so only the API server can say whether a rule really rejects
what it should (and accepts what it should): these tests create objects and read the errors.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from enclave_operator.api import cas as cas_api
from enclave_operator.api.common import DEFAULT_IMAGE
from enclave_operator.api.kinds import (
    ALL_KINDS,
    CAS,
    ENCRYPTED_POLICY,
    LAS,
    SGXPLUGIN,
    SIGNED_POLICY,
    Kind,
)
from enclave_operator.api.policies import ENCRYPTED_IMMUTABLE_MESSAGE, SIGNED_IMMUTABLE_MESSAGE

pytestmark = pytest.mark.integration

SAMPLES = Path(__file__).resolve().parents[2] / "config" / "samples"

POLICY = "name: s\nversion: '0.3'\npredecessor: ~\n"
SIGNED_SPEC: dict[str, Any] = {
    "casAddress": "cas:8081",
    "policy": POLICY,
    "signatures": [{"signer": "c2lnbmVy", "signature": "c2lnbmF0dXJl"}],
}
ENCRYPTED_SPEC = {"casAddress": "cas:8081", "policy": "Y2lwaGVy", "encryptionKey": "a2V5"}


def unique(prefix: str) -> str:
    """A name no other test (or earlier run) uses, for cluster-scoped objects especially."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Objects:
    """Create, read, replace and delete custom objects of any of the five kinds."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.api = client.CustomObjectsApi(api_client)
        self.namespace = namespace

    def create(self, kind: Kind, name: str, spec: dict[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "apiVersion": kind.api_version,
            "kind": kind.kind,
            "metadata": {"name": name},
        }
        if spec is not None:
            body["spec"] = spec
        g, v, p = kind.group, kind.version, kind.plural
        if kind.namespaced:
            return as_dict(self.api.create_namespaced_custom_object(g, v, self.namespace, p, body))
        return as_dict(self.api.create_cluster_custom_object(g, v, p, body))

    def get(self, kind: Kind, name: str) -> dict[str, Any]:
        g, v, p = kind.group, kind.version, kind.plural
        if kind.namespaced:
            return as_dict(self.api.get_namespaced_custom_object(g, v, self.namespace, p, name))
        return as_dict(self.api.get_cluster_custom_object(g, v, p, name))

    def replace(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        """Retried on 409: the session's operator may have just written the object (the policy
        controller adds its finalizer); the intended spec and labels go onto the latest."""
        for _ in range(20):
            try:
                return self._replace(kind, obj)
            except ApiException as error:
                if error.status != 409:
                    raise
            latest = self.get(kind, obj["metadata"]["name"])
            meta = {**latest["metadata"]}
            if "labels" in obj["metadata"]:
                meta["labels"] = obj["metadata"]["labels"]
            obj = {**latest, "metadata": meta, **({"spec": obj["spec"]} if "spec" in obj else {})}
            time.sleep(0.1)
        return self._replace(kind, obj)

    def _replace(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        g, v, p, name = kind.group, kind.version, kind.plural, obj["metadata"]["name"]
        if kind.namespaced:
            ns = self.namespace
            return as_dict(self.api.replace_namespaced_custom_object(g, v, ns, p, name, obj))
        return as_dict(self.api.replace_cluster_custom_object(g, v, p, name, obj))

    def replace_status(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        g, v, p, name = kind.group, kind.version, kind.plural, obj["metadata"]["name"]
        if kind.namespaced:
            ns = self.namespace
            result = self.api.replace_namespaced_custom_object_status(g, v, ns, p, name, obj)
            return as_dict(result)
        return as_dict(self.api.replace_cluster_custom_object_status(g, v, p, name, obj))

    def delete(self, kind: Kind, name: str) -> None:
        """Delete if present (cleanup must not fail because creation was refused), and wait
        until it is gone: the operator's finalizers may hold it for a moment."""
        g, v, p = kind.group, kind.version, kind.plural
        try:
            if kind.namespaced:
                self.api.delete_namespaced_custom_object(g, v, self.namespace, p, name)
            else:
                self.api.delete_cluster_custom_object(g, v, p, name)
        except ApiException as error:
            if error.status != 404:
                raise
            return
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.get(kind, name)
            except ApiException as error:
                if error.status == 404:
                    return
                raise
            time.sleep(0.1)
        raise AssertionError(f"{kind.kind} {name} still present 60 s after deletion")


def as_dict(result: object) -> dict[str, Any]:
    """The custom objects API returns plain JSON objects, typed as ``object``."""
    assert isinstance(result, dict)
    return result


@pytest.fixture
def objects(crds, api_client, namespace) -> Objects:
    return Objects(api_client, namespace)


def rejection(error: ApiException) -> str:
    """The API server's message for a refused object."""
    assert error.status == 422, f"expected 422 Unprocessable Entity, got {error.status}"
    return str(json.loads(error.body or "{}").get("message", error.body))


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.kind)
def test_crd_is_established(crds, api_client, kind: Kind):
    crd = client.ApiextensionsV1Api(api_client).read_custom_resource_definition(kind.crd_name)
    assert crd.status is not None
    conditions = {c.type: c.status for c in crd.status.conditions or []}
    assert conditions.get("Established") == "True"
    assert conditions.get("NamesAccepted") == "True"
    names = crd.status.accepted_names
    assert names is not None
    assert names.categories == ["enclave"]
    assert (names.short_names or []) == list(kind.short_names)
    assert crd.spec.scope == kind.scope


@pytest.mark.parametrize(
    "resource",
    [
        *("cas", "las", "sgxplugins", "signedpolicies", "encryptedpolicies"),
        *("sgx", "spol", "epol", "enclave"),
    ],
)
def test_kubectl_get_knows_the_name(crds, cluster, resource: str):
    result = cluster.kubectl("get", resource, "--all-namespaces", check=False)
    assert result.returncode == 0, result.stderr


def test_kubectl_get_enclave_lists_every_kind(objects, cluster, namespace):
    objects.create(CAS, "listed", {})
    objects.create(SIGNED_POLICY, "listed", SIGNED_SPEC)
    out = cluster.kubectl("get", "enclave", "-n", namespace, "-o", "name").stdout
    assert f"cas.{CAS.group}/listed" in out
    assert f"signedpolicy.{SIGNED_POLICY.group}/listed" in out


def test_kubectl_explain_shows_the_description(crds, cluster):
    out = cluster.kubectl("explain", "cas.spec.service.type").stdout
    description = cas_api.service()["properties"]["type"]["description"]
    assert " ".join(description.split()) in " ".join(out.split())


CAS_DEFAULTS = {
    "autoUpdate": False,
    "image": DEFAULT_IMAGE,
    "imagePullPolicy": "Always",
    "nodeSelector": {},
    "tolerations": [],
    "resources": {},
    "service": {"type": "ClusterIP", "clientPort": 8081, "enclavePort": 18765, "annotations": {}},
    "persistence": {
        "enabled": False,
        "mountPath": "/etc/cas/db",
        "accessModes": ["ReadWriteOnce"],
        "size": "1Gi",
        "whenDeleted": "Retain",
    },
    "ingress": {"enabled": False, "annotations": {}},
    "lasEnrolment": "Any",
}


@pytest.mark.parametrize("spec", [{}, None], ids=["empty-spec", "no-spec"])
def test_cas_defaults(objects, spec):
    created = objects.create(CAS, unique("defaults"), spec)
    assert created["spec"] == CAS_DEFAULTS


def test_defaults_fill_a_partial_cas_spec(objects):
    spec = {"service": {"type": "NodePort", "nodePorts": {"clientPort": 30081}}}
    created = objects.create(CAS, "partial", spec)
    assert created["spec"]["service"] == {
        "type": "NodePort",
        "nodePorts": {"clientPort": 30081},
        "clientPort": 8081,
        "enclavePort": 18765,
        "annotations": {},
    }
    assert created["spec"]["persistence"] == CAS_DEFAULTS["persistence"]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [(LAS, {"hostPort": 18766}), (SGXPLUGIN, {})],
    ids=["LAS", "SGXPlugin"],
)
def test_cluster_scoped_defaults(objects, kind: Kind, expected: dict[str, int]):
    name = unique("defaults")
    try:
        spec = objects.create(kind, name, {})["spec"]
        assert spec.items() >= expected.items()
        # unset, each device plugin advertises its own node's allocatable pods
        assert "capacitySGXPods" not in spec
        assert spec["image"] == DEFAULT_IMAGE
        assert spec["imagePullPolicy"] == "Always"
        assert "namespace" not in spec, "no default: the operator's namespace applies"
    finally:
        objects.delete(kind, name)


def assert_contains(actual: Any, expected: Any, path: str = "spec") -> None:
    """``expected`` is kept in ``actual``; dicts may have gained defaulted keys."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: {actual!r} is not an object"
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} is missing"
            assert_contains(actual[key], value, f"{path}.{key}")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def cas_service(**fields: Any) -> dict[str, Any]:
    return {"service": fields}


def cas_persistence(**fields: Any) -> dict[str, Any]:
    return {"persistence": fields}


def without(spec: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k != key}


SIGNATURE_WITHOUT_SIGNER = {**SIGNED_SPEC, "signatures": [{"signature": "c2ln"}]}

INVALID: list[tuple[str, Kind, dict[str, Any] | None, str]] = [
    ("sgx-pods-0", SGXPLUGIN, {"capacitySGXPods": 0}, "spec.capacitySGXPods"),
    ("sgx-pods-10001", SGXPLUGIN, {"capacitySGXPods": 10001}, "spec.capacitySGXPods"),
    ("sgx-namespace", SGXPLUGIN, {"namespace": "Bad_NS"}, "spec.namespace"),
    ("service-type", CAS, cas_service(type="Foo"), "spec.service.type"),
    ("las-enrolment", CAS, {"lasEnrolment": "Sometimes"}, "spec.lasEnrolment"),
    ("client-port-70000", CAS, cas_service(clientPort=70000), "spec.service.clientPort"),
    ("enclave-port-0", CAS, cas_service(enclavePort=0), "spec.service.enclavePort"),
    ("size-lots", CAS, cas_persistence(size="lots"), "spec.persistence.size"),
    ("size-0", CAS, cas_persistence(size="0"), "spec.persistence.size"),
    ("size-int-0", CAS, cas_persistence(size=0), "spec.persistence.size"),
    ("size-negative", CAS, cas_persistence(size="-1Gi"), "spec.persistence.size"),
    (
        "access-mode",
        CAS,
        cas_persistence(accessModes=["Sometimes"]),
        "spec.persistence.accessModes[0]",
    ),
    ("no-access-mode", CAS, cas_persistence(accessModes=[]), "spec.persistence.accessModes"),
    (
        "rwop-combined",
        CAS,
        cas_persistence(accessModes=["ReadWriteOncePod", "ReadWriteOnce"]),
        "spec.persistence.accessModes",
    ),
    ("mount-path", CAS, cas_persistence(mountPath="relative/path"), "spec.persistence.mountPath"),
    (
        "storage-class",
        CAS,
        cas_persistence(storageClass="Fast SSD"),
        "spec.persistence.storageClass",
    ),
    ("pull-policy", CAS, {"imagePullPolicy": "Sometimes"}, "spec.imagePullPolicy"),
    (
        "toleration-operator",
        LAS,
        {"tolerations": [{"key": "k", "operator": "Sometimes"}]},
        "spec.tolerations[0].operator",
    ),
    ("pull-secret-name", CAS, {"imagePullSecrets": [{}]}, "spec.imagePullSecrets[0].name"),
    ("limit", CAS, {"resources": {"limits": {"cpu": "lots"}}}, "spec.resources.limits.cpu"),
    (
        "node-ports-cluster-ip",
        CAS,
        cas_service(type="ClusterIP", nodePorts={"clientPort": 30081}),
        "spec.service.nodePorts",
    ),
    (
        "lb-ip-cluster-ip",
        CAS,
        cas_service(type="ClusterIP", loadBalancerIP="10.0.0.10"),
        "spec.service.loadBalancerIP",
    ),
    (
        "lb-ip-not-an-ip",
        CAS,
        cas_service(type="LoadBalancer", loadBalancerIP="10.0.0"),
        "spec.service.loadBalancerIP",
    ),
    ("same-ports", CAS, cas_service(clientPort=9000, enclavePort=9000), "spec.service.enclavePort"),
    (
        "same-node-ports",
        CAS,
        cas_service(type="NodePort", nodePorts={"clientPort": 30080, "enclavePort": 30080}),
        "spec.service.nodePorts.enclavePort",
    ),
    ("las-host-port-0", LAS, {"hostPort": 0}, "spec.hostPort"),
    ("las-namespace", LAS, {"namespace": "Bad_NS"}, "spec.namespace"),
    ("no-signatures", SIGNED_POLICY, without(SIGNED_SPEC, "signatures"), "spec.signatures"),
    ("empty-signatures", SIGNED_POLICY, {**SIGNED_SPEC, "signatures": []}, "spec.signatures"),
    ("no-signer", SIGNED_POLICY, SIGNATURE_WITHOUT_SIGNER, "spec.signatures[0].signer"),
    ("empty-policy", SIGNED_POLICY, {**SIGNED_SPEC, "policy": ""}, "spec.policy"),
    ("signed-no-spec", SIGNED_POLICY, None, "spec"),
    ("no-key", ENCRYPTED_POLICY, without(ENCRYPTED_SPEC, "encryptionKey"), "spec.encryptionKey"),
    ("no-cas-address", ENCRYPTED_POLICY, without(ENCRYPTED_SPEC, "casAddress"), "spec.casAddress"),
]


@pytest.mark.parametrize(
    ("kind", "spec", "field"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_spec_is_rejected(objects, kind: Kind, spec, field: str):
    name = unique("invalid")
    try:
        with pytest.raises(ApiException) as caught:
            objects.create(kind, name, spec)
    finally:
        objects.delete(kind, name)  # in case it was wrongly accepted
    message = rejection(caught.value)
    assert f"{field}:" in message, message


VALID: list[tuple[str, Kind, dict[str, Any]]] = [
    ("node-ports", CAS, cas_service(type="NodePort", nodePorts={"enclavePort": 30765})),
    ("lb-ipv6", CAS, cas_service(type="LoadBalancer", loadBalancerIP="2001:db8::10")),
    ("storage-class-dash", CAS, cas_persistence(enabled=True, storageClass="-")),
    ("storage-class-null", CAS, cas_persistence(storageClass=None)),
    ("size-int", CAS, cas_persistence(size=1073741824, accessModes=["ReadWriteOncePod"])),
    ("sgx-pods-bounds", SGXPLUGIN, {"capacitySGXPods": 10000, "namespace": "sgx-system"}),
    ("las-full", LAS, {"hostPort": 65535, "nodeSelector": {"sgx.intel.com/capable": "true"}}),
]


@pytest.mark.parametrize(("kind", "spec"), [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_valid_spec_is_accepted(objects, kind: Kind, spec):
    name = unique("valid")
    try:
        created = objects.create(kind, name, spec)
    finally:
        objects.delete(kind, name)
    assert_contains(created["spec"], spec)


def test_signed_policy_is_immutable(objects):
    original = objects.create(SIGNED_POLICY, "signed", SIGNED_SPEC)
    changes: list[dict[str, Any]] = [
        {"policy": POLICY + "services: []\n"},
        {"signatures": [{"signer": "c2lnbmVy", "signature": "b3RoZXI="}]},
        {"casAddress": "other-cas:8081"},
    ]
    for change in changes:
        changed = {**original, "spec": {**original["spec"], **change}}
        with pytest.raises(ApiException) as caught:
            objects.replace(SIGNED_POLICY, changed)
        assert SIGNED_IMMUTABLE_MESSAGE in rejection(caught.value)
    labelled = objects.get(SIGNED_POLICY, "signed")
    labelled["metadata"]["labels"] = {"team": "a"}
    objects.replace(SIGNED_POLICY, labelled)  # metadata stays editable

    objects.delete(SIGNED_POLICY, "signed")
    resigned = {**SIGNED_SPEC, "policy": POLICY + "services: []\n"}
    recreated = objects.create(SIGNED_POLICY, "signed", resigned)
    assert recreated["spec"] == resigned


def test_encrypted_policy_is_immutable(objects):
    original = objects.create(ENCRYPTED_POLICY, "encrypted", ENCRYPTED_SPEC)
    changed = {**original, "spec": {**ENCRYPTED_SPEC, "policy": "bmV3IGNpcGhlcg=="}}
    with pytest.raises(ApiException) as caught:
        objects.replace(ENCRYPTED_POLICY, changed)
    assert ENCRYPTED_IMMUTABLE_MESSAGE in rejection(caught.value)

    objects.delete(ENCRYPTED_POLICY, "encrypted")
    recreated = objects.create(ENCRYPTED_POLICY, "encrypted", changed["spec"])
    assert recreated["spec"]["policy"] == "bmV3IGNpcGhlcg=="


def test_status_subresource_and_printer_columns(objects, cluster):
    name = unique("columns")
    try:
        las = objects.create(LAS, name, {})
        las["status"] = {
            "state": "UNHEALTHY",
            "desiredNumberScheduled": 3,
            "numberAvailable": -1,
            "lasReplicaAlert": 1,
            "nodes": {"node-1": {"ready": True, "pod": "las-abc", "hostIP": "10.0.0.1"}},
            "conditions": [{"type": "IsHealthy", "status": "False", "reason": "NotReady"}],
        }
        objects.replace_status(LAS, las)
        out = cluster.kubectl("get", "las", name).stdout.split("\n")
        assert out[0].split() == ["NAME", "STATE", "DESIRED", "AVAILABLE", "AGE"]
        assert out[1].split()[:4] == [name, "UNHEALTHY", "3", "-1"]

        stored = objects.get(LAS, name)
        stored["status"]["state"] = "GREAT"
        with pytest.raises(ApiException) as caught:
            objects.replace_status(LAS, stored)
        assert "status.state:" in rejection(caught.value)
    finally:
        objects.delete(LAS, name)


def test_sgxplugin_printer_columns(objects, cluster):
    name = unique("columns")
    try:
        plugin = objects.create(SGXPLUGIN, name, {})
        plugin["status"] = {"state": "HEALTHY", "desiredReplicas": 2, "readyReplicas": 2}
        plugin["status"] |= {"availableSGXDevices": 218, "usedSGXDevicesPerNode": {"n1": 2}}
        objects.replace_status(SGXPLUGIN, plugin)
        out = cluster.kubectl("get", "sgx", name).stdout.split("\n")
        assert out[0].split() == ["NAME", "STATE", "DESIRED", "READY", "AVAILABLE", "AGE"]
        assert out[1].split()[:5] == [name, "HEALTHY", "2", "2", "218"]
    finally:
        objects.delete(SGXPLUGIN, name)


SAMPLE_FILES = sorted(SAMPLES.glob("*.yaml"))


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=[p.name for p in SAMPLE_FILES])
def test_sample_applies(crds, cluster, namespace, path: Path):
    sample = yaml.safe_load(path.read_text(encoding="utf-8"))
    kind = next(k for k in ALL_KINDS if k.kind == sample["kind"])
    if kind.namespaced:
        cluster.kubectl("apply", "-n", namespace, "-f", str(path))
        cluster.kubectl("get", kind.plural, sample["metadata"]["name"], "-n", namespace)
        return
    # Cluster-scoped: check the file as it is without keeping it, then create a renamed copy.
    cluster.kubectl("apply", "--dry-run=server", "-f", str(path))
    sample["metadata"]["name"] = unique(sample["metadata"]["name"])
    try:
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(sample))
        cluster.kubectl("get", kind.plural, sample["metadata"]["name"])
    finally:
        cluster.kubectl("delete", kind.plural, sample["metadata"]["name"], check=False)
