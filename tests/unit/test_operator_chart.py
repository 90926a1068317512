"""charts/enclave-operator rendered by the real helm: SGX or simulation, operator on or off,
RBAC without wildcards, the schema, and the values enclavectl passes."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from enclave_operator.devcluster.binaries import toolset
from enclave_operator.install import plugins
from enclave_operator.install.options import Options, chart_values

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "enclave-operator"
HELM = toolset().path("helm")
SGX_KEYS = {
    "sgx.intel.com/epc",
    "sgx.intel.com/enclave",
    "sgx.intel.com/provision",
    "kubernetes.azure.com/sgx_epc_mem_in_MiB",
    "alibabacloud.com/sgx_epc_MiB",
    "sgx.k8s.io/sgx",
}

pytestmark = pytest.mark.skipif(not HELM.exists(), reason=f"helm binary not built at {HELM}")


def helm(*args: str, values: Any = None) -> subprocess.CompletedProcess[str]:
    extra = ["--values", "-"] if values is not None else []
    return subprocess.run(
        [str(HELM), *args, *extra],
        input=json.dumps(values) if values is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
    )


def render(values: Any = None, *sets: str) -> dict[tuple[str, str], dict[str, Any]]:
    args = ["template", "enclave", str(CHART), "--namespace", "ns1"]
    proc = helm(*args, *(a for s in sets for a in ("--set", s)), values=values)
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def sgx_in(spec: dict[str, Any]) -> set[str]:
    res = spec.get("resources") or {}
    return SGX_KEYS & {*(res.get("limits") or {}), *(res.get("requests") or {})}


def test_lint_passes_with_and_without_simulation():
    for extra in ([], ["--set", "simulation=true"], ["--set", "operator.enabled=false"]):
        proc = helm("lint", str(CHART), "--strict", *extra)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_default_render_has_every_object_once():
    objs = render()
    assert sorted(objs) == [
        ("CAS", "enclave"),
        ("ClusterRole", "enclave-operator"),
        ("ClusterRoleBinding", "enclave-operator"),
        ("ConfigMap", "enclave-operator-webhook"),
        ("Deployment", "enclave-operator"),
        ("LAS", "enclave"),
        ("MutatingWebhookConfiguration", "enclave-operator-webhook"),
        ("Role", "enclave-operator-leader"),
        ("RoleBinding", "enclave-operator-leader"),
        ("SGXPlugin", "enclave"),
        ("Secret", "cas-enclave-ca"),
        ("Secret", "cas-enclave-tls"),
        ("Secret", "enclave-operator-cas-client"),
        ("Service", "enclave-operator-metrics"),
        ("Service", "enclave-operator-webhook"),
        ("ServiceAccount", "enclave-operator"),
    ]


def test_the_operator_deployment():
    objs = render(None, "image.repository=reg.example/eo", "image.tag=1.2.3", "nodeSelector.a=b")
    pod = objs[("Deployment", "enclave-operator")]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"] == "reg.example/eo:1.2.3"
    assert [c["command"], c["args"]] == [["enclavectl"], ["operator", "run"]]
    env = {e["name"]: e for e in c["env"]}
    assert env["OPERATOR_NAMESPACE"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.namespace"}
    }
    assert env["METRICS_PORT"]["value"] == "8080"
    assert c["ports"] == [
        {"name": "metrics", "containerPort": 8080, "protocol": "TCP"},
        {"name": "webhook", "containerPort": 9443, "protocol": "TCP"},
    ]
    assert pod["serviceAccountName"] == "enclave-operator"
    assert pod["nodeSelector"] == {"a": "b"}
    # two replicas that elect a leader, probes that ask the process how it is
    assert objs[("Deployment", "enclave-operator")]["spec"]["replicas"] == 2
    assert env["LEADER_ELECTION"]["value"] == "true"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    role = objs[("Role", "enclave-operator-leader")]
    assert {"create"} in [set(r["verbs"]) for r in role["rules"]]
    named = next(r for r in role["rules"] if "resourceNames" in r)
    assert named["resourceNames"] == ["enclave-operator-leader"]
    assert named["verbs"] == ["get", "update"]
    svc = objs[("Service", "enclave-operator-metrics")]["spec"]
    assert svc["ports"][0]["port"] == 8080
    assert (
        svc["selector"].items()
        <= objs[("Deployment", "enclave-operator")]["spec"]["template"]["metadata"][
            "labels"
        ].items()
    )
    # services default to the operator's image
    assert objs[("CAS", "enclave")]["spec"]["image"] == "reg.example/eo:1.2.3"


def test_operator_disabled_keeps_everything_but_the_deployment_and_its_service():
    objs = render(None, "operator.enabled=false")
    kinds = {k for k, _ in objs}
    assert "Deployment" not in kinds
    assert ("Service", "enclave-operator-metrics") not in objs
    assert {
        "ClusterRole",
        "ClusterRoleBinding",
        "ServiceAccount",
        "CAS",
        "LAS",
        "SGXPlugin",
    } <= kinds


def test_rbac_has_no_wildcards_and_binds_the_service_account():
    objs = render()
    for rule in objs[("ClusterRole", "enclave-operator")]["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
    binding = objs[("ClusterRoleBinding", "enclave-operator")]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "enclave-operator", "namespace": "ns1"}
    ]


@pytest.mark.parametrize(
    ("key", "limits"),
    [
        (
            "sgx.intel.com/epc",
            {"sgx.intel.com/epc": "10Mi", "sgx.intel.com/enclave": 1, "sgx.intel.com/provision": 1},
        ),
        (
            "kubernetes.azure.com/sgx_epc_mem_in_MiB",
            {"kubernetes.azure.com/sgx_epc_mem_in_MiB": 10},
        ),
        ("alibabacloud.com/sgx_epc_MiB", {"alibabacloud.com/sgx_epc_MiB": 10}),
        ("sgx.k8s.io/sgx", {"sgx.k8s.io/sgx": 1}),
    ],
)
def test_with_sgx_cas_and_las_request_the_plugins_resource(key: str, limits: dict[str, Any]):
    objs = render(None, f"sgx.resourceKey={key}")
    for kind in ("CAS", "LAS"):
        assert objs[(kind, "enclave")]["spec"]["resources"]["limits"] == limits
    assert sgx_in(objs[("SGXPlugin", "enclave")]["spec"]) == set()


def test_simulation_requests_no_sgx_even_when_a_spec_asks():
    values = {
        "simulation": True,
        "sgx": {"resourceKey": "sgx.intel.com/epc", "nodeSelector": {"sgx": "yes"}},
        "services": {
            "cas": {
                "enabled": True,
                "name": "enclave",
                "spec": {"resources": {"limits": {"sgx.intel.com/epc": "5Mi", "memory": "1Gi"}}},
            },
            "las": {"enabled": True, "name": "enclave", "spec": {}},
            "sgxplugin": {"enabled": True, "name": "enclave", "spec": {}},
        },
    }
    objs = render(values)
    for kind in ("CAS", "LAS", "SGXPlugin"):
        spec = objs[(kind, "enclave")]["spec"]
        assert sgx_in(spec) == set(), kind
        assert "nodeSelector" not in spec
        assert "tolerations" not in spec
    assert objs[("CAS", "enclave")]["spec"]["resources"]["limits"] == {"memory": "1Gi"}


def test_services_can_be_left_out_and_renamed():
    objs = render(None, "services.las.enabled=false", "services.cas.name=main", "tls.create=false")
    assert ("LAS", "enclave") not in objs
    assert objs[("CAS", "main")]["metadata"]["namespace"] == "ns1"
    assert ("Secret", "cas-main-tls") not in objs
    assert objs[("SGXPlugin", "enclave")]["spec"]["namespace"] == "ns1"


@pytest.mark.parametrize(
    "bad",
    [
        "simulation=yes",
        "operator.enabled=1",
        "hostname=bad_name",
        "image.pullPolicy=Sometimes",
        "nope=1",
        "sgx.resourceKey=epc",
        "services.cas.name=Bad",
    ],
)
def test_the_schema_rejects_wrong_values(bad: str):
    proc = helm("template", "enclave", str(CHART), "--set", bad)
    assert proc.returncode != 0
    assert "schema" in proc.stderr


@pytest.mark.parametrize("simulation", [True, False])
def test_the_values_enclavectl_passes_are_valid(simulation: bool):
    opts = Options(
        namespace="ns1",
        domains=("cas.example.com",),
        simulation=simulation,
        local_operator=True,
        image="reg.example:5000/eo:9",
    )
    plugin = None if simulation else plugins.plugin_for("sgx.intel.com/epc")
    objs = render(chart_values(opts, plugin, {}))
    assert ("Deployment", "enclave-operator") not in objs
    assert ("Secret", "cas-enclave-tls") not in objs  # enclavectl writes it itself
    assert objs[("CAS", "enclave")]["spec"]["image"] == "reg.example:5000/eo:9"
    # enclavectl issues the LAS's client certificate, so its CAS requires one
    assert objs[("CAS", "enclave")]["spec"]["lasEnrolment"] == "Certificate"
    assert bool(sgx_in(objs[("LAS", "enclave")]["spec"])) is not simulation
    assert ("ConfigMap", "enclave-operator-webhook") in objs, "the local operator's settings"


def test_no_webhook_turns_off_even_a_chart_that_defaults_to_it():
    opts = Options(namespace="ns1", webhook=False)
    objs = render(chart_values(opts, plugins.plugin_for("sgx.intel.com/epc"), {}))
    assert not [k for k in objs if "webhook" in k[1].lower() or "Webhook" in k[0]]
    assert "webhook" not in json.dumps(objs[("ClusterRole", "enclave-operator")]["rules"])


def test_sgx_tolerations_once_for_enclaves_and_none_in_simulation():
    user = {"key": "sgx.intel.com/epc", "operator": "Exists", "effect": "NoExecute"}
    values = {
        "sgx": {"resourceKey": "sgx.intel.com/epc"},
        "services": {
            "cas": {"enabled": True, "name": "enclave", "spec": {"tolerations": [user]}},
            "las": {"enabled": True, "name": "enclave", "spec": {}},
            "sgxplugin": {"enabled": True, "name": "enclave", "spec": {}},
        },
    }
    objs = render(values)
    taint = {"key": "sgx.intel.com/epc", "operator": "Exists", "effect": "NoSchedule"}
    assert objs[("LAS", "enclave")]["spec"]["tolerations"] == [taint]
    assert objs[("CAS", "enclave")]["spec"]["tolerations"] == [user], "no duplicate key"
    assert "tolerations" not in objs[("SGXPlugin", "enclave")]["spec"]
    simulated = render({**values, "simulation": True})
    for kind in ("CAS", "LAS", "SGXPlugin"):
        assert "tolerations" not in simulated[(kind, "enclave")]["spec"]


def test_the_operator_client_certificate_is_signed_by_the_cas_ca():
    """The CAS verifies the operator's client certificate with the ca.crt of its own Secret."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    objs = render()
    cas = objs[("Secret", "cas-enclave-tls")]["data"]
    client = objs[("Secret", "enclave-operator-cas-client")]["data"]
    assert client["ca.crt"] == cas["ca.crt"]
    cert = x509.load_pem_x509_certificate(base64.b64decode(client["tls.crt"]))
    ca = x509.load_pem_x509_certificate(base64.b64decode(cas["ca.crt"]))
    cert.verify_directly_issued_by(ca)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "enclave-operator"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku


def test_namespaced_mode_grants_namespaced_kinds_by_roles_only():
    args = ["template", "enclave", str(CHART), "--namespace", "ns1"]
    proc = helm(*args, "--set", "operator.namespaces={team-a,team-b}")
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    (cluster_role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    cluster_wide = {r for rule in cluster_role["rules"] for r in rule["resources"]}
    assert not cluster_wide & {"secrets", "cas", "deployments", "pods", "configmaps"}
    assert {"las", "sgxplugins", "nodes", "namespaces"} <= cluster_wide
    roles = {
        (d["metadata"]["namespace"], d["metadata"]["name"]): d for d in docs if d["kind"] == "Role"
    }
    for ns in ("ns1", "team-a", "team-b"):
        granted = {
            r for rule in roles[(ns, "enclave-operator")]["rules"] for r in rule["resources"]
        }
        assert {"secrets", "cas", "deployments", "pods"} <= granted
    assert [r["resources"] for r in roles[("default", "enclave-operator-events")]["rules"]] == [
        ["events"]
    ]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["WATCH_NAMESPACES"] == "team-a team-b"
    bad = helm(*args, "--set", "operator.namespaces={Team_A}")
    assert bad.returncode != 0
    assert "operator.namespaces" in bad.stderr or "namespaces" in bad.stderr
