"""The charts rendered by the real ``helm`` binary from ``values_for`` of CRs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from enclave_operator.api.kinds import CAS, LAS, SGXPLUGIN, Kind
from enclave_operator.charts import chart_path
from enclave_operator.charts.values import values_for
from enclave_operator.devcluster.binaries import toolset
from enclave_operator.kube import OWNED_KINDS

ROOT = Path(__file__).resolve().parents[2]
HELM = toolset().path("helm")
NS = "render-ns"

pytestmark = pytest.mark.skipif(
    not HELM.exists(), reason=f"helm binary not built at {HELM} (run scripts/build-tools.sh)"
)

SAMPLES = {
    CAS: "services_v1beta1_cas.yaml",
    LAS: "base_v1beta1_las.yaml",
    SGXPLUGIN: "base_v1beta1_sgxplugin.yaml",
}
APP_NAMES = {CAS: "cas", LAS: "las", SGXPLUGIN: "sgx-plugin"}


def sample(kind: Kind):
    return yaml.safe_load((ROOT / "config" / "samples" / SAMPLES[kind]).read_text())


def helm(*args: str, values: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HELM), *args, "--values", "-"],
        input=json.dumps(values),
        capture_output=True,
        text=True,
        timeout=60,
    )


def render(
    kind: Kind,
    spec: dict[str, Any],
    release: str = "rel",
    secret: str | None = None,
    namespace: str = NS,
):
    values = values_for(kind, {"spec": spec}, secret)
    proc = helm("template", release, str(chart_path(kind)), "--namespace", namespace, values=values)
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    return {d["kind"]: d for d in docs}, docs


def pod(objs, kind):
    return objs[kind]["spec"]["template"]["spec"]


def container(objs, kind):
    return pod(objs, kind)["containers"][0]


@pytest.mark.parametrize("kind", [CAS, LAS, SGXPLUGIN])
def test_lint_with_sample_values(kind):
    proc = helm(
        "lint", "--strict", str(chart_path(kind)), values=values_for(kind, sample(kind), "s")
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("kind", "kinds"),
    [
        (CAS, ["Service", "Deployment"]),
        (LAS, ["DaemonSet"]),
        (SGXPLUGIN, ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "DaemonSet"]),
    ],
)
def test_sample_objects_names_labels_namespace(kind, kinds):
    objs, docs = render(kind, sample(kind)["spec"], release="my-rel")
    assert [d["kind"] for d in docs] == kinds
    for doc in docs:
        meta = doc["metadata"]
        if doc["kind"].startswith("Cluster"):  # cluster-wide: the namespace is in the name
            assert meta["name"] == f"enclave-{NS}-my-rel"
            assert "namespace" not in meta
        else:
            assert meta["name"] == "my-rel"
            assert meta["namespace"] == NS
        assert "ownerReferences" not in meta
        labels = meta["labels"]
        assert labels["app.kubernetes.io/name"] == APP_NAMES[kind]
        assert labels["app.kubernetes.io/instance"] == "my-rel"
        assert labels["app.kubernetes.io/part-of"] == "enclave-operator"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        if "template" in doc.get("spec", {}):
            assert doc["spec"]["template"]["metadata"]["labels"] == labels
            selector = doc["spec"]["selector"]["matchLabels"]
            assert selector == {
                "app.kubernetes.io/name": APP_NAMES[kind],
                "app.kubernetes.io/instance": "my-rel",
            }
    for workload in ("Deployment", "DaemonSet"):
        if workload in objs:
            c = container(objs, workload)
            assert c["image"] == "enclave-operator:0.1.0"
            assert c["imagePullPolicy"] == "IfNotPresent"
            assert c["resources"] == sample(kind)["spec"]["resources"]
            assert c["command"][:3] == ["enclavectl", "service", APP_NAMES[kind]]
            assert "imagePullSecrets" not in pod(objs, workload)
            assert "nodeSelector" not in pod(objs, workload)
            assert "initContainers" not in pod(objs, workload)


def test_cas_sample_deployment_and_service():
    objs, _ = render(CAS, sample(CAS)["spec"])
    deployment = objs["Deployment"]["spec"]
    assert deployment["replicas"] == 1
    assert deployment["strategy"] == {"type": "Recreate"}
    c = container(objs, "Deployment")
    assert c["ports"] == [
        {"name": "client", "containerPort": 8081, "protocol": "TCP"},
        {"name": "enclave", "containerPort": 18765, "protocol": "TCP"},
    ]
    assert "--client-port=8081" in c["command"]
    assert "--enclave-port=18765" in c["command"]
    assert c["volumeMounts"] == [
        {"name": "db", "mountPath": "/etc/cas/db"},
        {"name": "client-tls", "mountPath": "/etc/cas/tls", "readOnly": True},
    ]
    assert "--tls-dir=/etc/cas/tls" in c["command"]
    assert pod(objs, "Deployment")["volumes"] == [
        # `<release>-tls`: the Secret `enclavectl install --domain` writes (install/tls.py)
        {"name": "client-tls", "secret": {"secretName": "rel-tls", "optional": True}},
        {"name": "db", "emptyDir": {}},
    ]
    service = objs["Service"]["spec"]
    assert service["type"] == "ClusterIP"
    assert "loadBalancerIP" not in service
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["ports"]] == [
        ("client", 8081, "client"),
        ("enclave", 18765, "enclave"),
    ]
    assert all("nodePort" not in p for p in service["ports"])
    assert "annotations" not in objs["Service"]["metadata"]


def ports_of(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    objs, _ = render(CAS, {"service": spec})
    return {p["name"]: p for p in objs["Service"]["spec"]["ports"]} | {"": objs["Service"]}


def test_cas_node_ports_only_with_node_port_and_when_set():
    both = ports_of({"type": "NodePort", "nodePorts": {"clientPort": 30001, "enclavePort": 30002}})
    assert both["client"]["nodePort"] == 30001
    assert both["enclave"]["nodePort"] == 30002
    one = ports_of({"type": "NodePort", "nodePorts": {"enclavePort": 30002}})
    assert "nodePort" not in one["client"]
    assert one["enclave"]["nodePort"] == 30002
    other = ports_of({"type": "LoadBalancer", "nodePorts": {"clientPort": 30001}})
    assert "nodePort" not in other["client"]


def test_cas_load_balancer_ip_only_with_load_balancer():
    lb = ports_of({"type": "LoadBalancer", "loadBalancerIP": "10.0.0.9"})[""]["spec"]
    assert lb["type"] == "LoadBalancer"
    assert lb["loadBalancerIP"] == "10.0.0.9"
    cluster_ip = ports_of({"type": "ClusterIP", "loadBalancerIP": "10.0.0.9"})[""]["spec"]
    assert "loadBalancerIP" not in cluster_ip


def test_cas_fully_specified():
    spec = {
        "image": "reg.example/cas:9",
        "imagePullPolicy": "Never",
        "nodeSelector": {"zone": "a"},
        "resources": {"limits": {"cpu": "2", "sgx.intel.com/epc": "10Mi"}},
        "service": {
            "type": "NodePort",
            "clientPort": 9001,
            "enclavePort": 9002,
            "annotations": {"example.com/x": "1", "b": "two words"},
        },
        "persistence": {
            "enabled": True,
            "mountPath": "/var/cas",
            "storageClass": "fast",
            "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
            "size": 1073741824,
        },
    }
    objs, docs = render(CAS, spec, release="cas-full", secret="regcred")
    assert sorted(d["kind"] for d in docs) == ["Deployment", "PersistentVolumeClaim", "Service"]
    p = pod(objs, "Deployment")
    assert p["imagePullSecrets"] == [{"name": "regcred"}]
    assert p["nodeSelector"] == {"zone": "a"}
    assert p["volumes"][1] == {"name": "db", "persistentVolumeClaim": {"claimName": "cas-full-db"}}
    c = p["containers"][0]
    assert c["image"] == "reg.example/cas:9"
    assert c["imagePullPolicy"] == "Never"
    assert c["resources"] == {"limits": {"cpu": "2", "sgx.intel.com/epc": "10Mi"}}
    assert [x["containerPort"] for x in c["ports"]] == [9001, 9002]
    assert c["volumeMounts"][0] == {"name": "db", "mountPath": "/var/cas"}
    assert objs["Service"]["metadata"]["annotations"] == {"example.com/x": "1", "b": "two words"}
    assert [x["port"] for x in objs["Service"]["spec"]["ports"]] == [9001, 9002]
    pvc = objs["PersistentVolumeClaim"]
    assert pvc["metadata"]["name"] == "cas-full-db"
    assert pvc["metadata"]["annotations"] == {
        "helm.sh/resource-policy": "keep"
    }  # never uninstalled
    assert pvc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "enclave-operator"
    assert pvc["spec"] == {
        "storageClassName": "fast",
        "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
        "resources": {"requests": {"storage": "1073741824"}},
    }


@pytest.mark.parametrize(
    ("storage_class", "expected"), [(None, "absent"), ("-", ""), ("standard", "standard")]
)
def test_cas_storage_class_rules(storage_class, expected):
    persistence = {"enabled": True, "storageClass": storage_class}
    objs, _ = render(CAS, {"persistence": persistence})
    assert objs["PersistentVolumeClaim"]["spec"].get("storageClassName", "absent") == expected
    assert objs["PersistentVolumeClaim"]["spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_las_host_port():
    objs, _ = render(LAS, {"hostPort": 4242, "nodeSelector": {"sgx": "yes"}}, secret="pull")
    c = container(objs, "DaemonSet")
    assert c["ports"] == [
        {"name": "attestation", "containerPort": 4242, "hostPort": 4242, "protocol": "TCP"}
    ]
    assert "--port=4242" in c["command"]
    assert pod(objs, "DaemonSet")["imagePullSecrets"] == [{"name": "pull"}]
    assert pod(objs, "DaemonSet")["nodeSelector"] == {"sgx": "yes"}


def test_cas_requires_las_certificates_only_when_asked():
    objs, _ = render(CAS, {})
    assert "env" not in container(objs, "Deployment")  # Any: CAS's own default
    objs, _ = render(CAS, {"lasEnrolment": "Certificate"})
    assert container(objs, "Deployment")["env"] == [
        {"name": "ENCLAVE_CAS_LAS_ENROLMENT", "value": "certificate"}
    ]


def test_las_shows_the_client_certificate_of_its_secret():
    objs, _ = render(LAS, {})
    c = container(objs, "DaemonSet")
    assert "--client-cert=/etc/las/client/tls.crt" in c["command"]
    assert "--client-key=/etc/las/client/tls.key" in c["command"]
    volumes = {v["name"]: v for v in pod(objs, "DaemonSet")["volumes"]}
    assert volumes["client"]["secret"]["secretName"] == "rel-client"
    assert volumes["client"]["secret"]["optional"] is True  # LAS starts without it


def test_sgxplugin_capacity_and_device_plugin_dir():
    objs, _ = render(SGXPLUGIN, {"capacitySGXPods": 42})
    c = container(objs, "DaemonSet")
    assert c["command"] == [
        "enclavectl",
        "service",
        "sgx-plugin",
        "--capacity-sgx-pods=42",
        "--dev-dir=/host/dev",
        "--ready-file=/run/sgx-plugin/registered",
    ]
    assert c["volumeMounts"] == [
        {"name": "device-plugins", "mountPath": "/var/lib/kubelet/device-plugins"},
        {"name": "dev", "mountPath": "/host/dev", "readOnly": True},
        {"name": "state", "mountPath": "/run/sgx-plugin"},
    ]
    volumes = {v["name"]: v for v in pod(objs, "DaemonSet")["volumes"]}
    assert volumes["device-plugins"]["hostPath"] == {
        "path": "/var/lib/kubelet/device-plugins",
        "type": "Directory",
    }
    assert volumes["dev"]["hostPath"] == {"path": "/dev", "type": "Directory"}
    assert volumes["state"]["emptyDir"]["medium"] == "Memory"
    # Ready only while registered with the kubelet (the file the plugin keeps)
    assert c["readinessProbe"]["exec"]["command"] == ["test", "-e", "/run/sgx-plugin/registered"]
    assert c["env"] == [
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
    ]
    # root for the kubelet's 0750 socket directory, but nothing more
    assert c["securityContext"]["runAsUser"] == 0
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["readOnlyRootFilesystem"] is True


def test_sgxplugin_without_capacity_leaves_it_to_the_node():
    objs, _ = render(SGXPLUGIN, {})
    command = container(objs, "DaemonSet")["command"]
    assert not [a for a in command if a.startswith("--capacity-sgx-pods")]
    assert command == [
        "enclavectl",
        "service",
        "sgx-plugin",
        "--dev-dir=/host/dev",
        "--ready-file=/run/sgx-plugin/registered",
    ]


def test_sgxplugin_pods_may_get_nodes_and_nothing_else():
    """The plugin reads its Node's allocatable pods as its own ServiceAccount."""
    objs, _ = render(SGXPLUGIN, {}, release="my-rel")
    assert pod(objs, "DaemonSet")["serviceAccountName"] == "my-rel"
    assert objs["ServiceAccount"]["metadata"]["name"] == "my-rel"
    role = objs["ClusterRole"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]
    binding = objs["ClusterRoleBinding"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "my-rel", "namespace": NS}]
    other, _ = render(SGXPLUGIN, {}, release="my-rel", namespace="other-ns")
    assert other["ClusterRole"]["metadata"]["name"] != role["metadata"]["name"]


@pytest.mark.parametrize("kind", [CAS, LAS, SGXPLUGIN])
def test_every_object_a_chart_makes_is_of_a_kind_the_operator_watches(kind):
    """Else its conditions stay Unknown (the caches cannot read it) and the CR PENDING."""
    spec = {"persistence": {"enabled": True}} if kind == CAS else {}
    _, docs = render(kind, spec)
    assert {(d["apiVersion"], d["kind"]) for d in docs} <= set(OWNED_KINDS)


@pytest.mark.parametrize(
    ("kind", "patch", "complaint"),
    [
        (CAS, {"service": {"clientPort": "abc"}}, "/service/clientPort"),
        (CAS, {"service": {"type": "External"}}, "/service/type"),
        (CAS, {"service": {"enclavePort": 70000}}, "/service/enclavePort"),
        (CAS, {"persistence": {"size": "lots"}}, "/persistence/size"),
        (CAS, {"persistence": {"accessModes": []}}, "/persistence/accessModes"),
        (CAS, {"persistence": {"mountPath": "relative"}}, "/persistence/mountPath"),
        (LAS, {"hostPort": 0}, "/hostPort"),
        (LAS, {"imagePullPolicy": "Sometimes"}, "/imagePullPolicy"),
        (SGXPLUGIN, {"capacitySGXPods": 10001}, "/capacitySGXPods"),
        (SGXPLUGIN, {"nodeSelector": {"a": 1}}, "/nodeSelector/a"),
        (SGXPLUGIN, {"typo": True}, "typo"),
    ],
)
def test_schema_rejects_wrong_values(kind, patch, complaint):
    values = values_for(kind, {}, None)
    for key, value in patch.items():
        values[key] = {**values[key], **value} if isinstance(value, dict) else value
    proc = helm("template", "r", str(chart_path(kind)), values=values)
    assert proc.returncode != 0
    assert "schema" in proc.stderr
    assert complaint in proc.stderr, proc.stderr


@pytest.mark.parametrize("kind", [CAS, LAS, SGXPLUGIN])
def test_every_object_is_owned_by_its_cr_from_the_install_on(kind: Kind) -> None:
    cr = {**sample(kind), "metadata": {"name": "x", "namespace": NS, "uid": "uid-1"}}
    spec = {**cr["spec"], **({"persistence": {"enabled": True}} if kind == CAS else {})}
    cr["spec"] = spec
    proc = helm(
        "template",
        "rel",
        str(chart_path(kind)),
        "--namespace",
        NS,
        values=values_for(kind, cr, None),
    )
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert docs
    for doc in docs:
        assert doc["metadata"]["ownerReferences"] == [
            {
                "apiVersion": kind.api_version,
                "kind": kind.kind,
                "name": "x",
                "uid": "uid-1",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ], doc["kind"]


def test_no_uid_no_owner_references() -> None:
    for doc in render(CAS, sample(CAS)["spec"])[1]:
        assert "ownerReferences" not in doc["metadata"]
