"""The chart's webhook pieces rendered by the real helm: the settings it writes are what the
operator parses, and its configuration is the one the operator builds for a local process."""

from __future__ import annotations

import pytest

from enclave_operator.webhook.configuration import webhook
from enclave_operator.webhook.settings import parse
from tests.unit.test_operator_chart import CHART, HELM, helm, render

pytestmark = pytest.mark.skipif(not HELM.exists(), reason=f"helm binary not built at {HELM}")

NAME = "enclave-operator-webhook"


def test_on_by_default_and_off_leaves_no_trace():
    assert ("MutatingWebhookConfiguration", NAME) in render()
    off = render(None, "webhook.enabled=false")
    assert not [k for k in off if "webhook" in k[1]]
    rules = off[("ClusterRole", "enclave-operator")]["rules"]
    assert not [
        r for r in rules if {"configmaps", "mutatingwebhookconfigurations"} & {*r["resources"]}
    ]
    deployment = off[("Deployment", "enclave-operator")]["spec"]["template"]
    assert "checksum/webhook" not in (deployment["metadata"].get("annotations") or {})


def test_in_cluster_pieces_and_settings_the_operator_reads():
    objs = render(
        None, "webhook.enabled=true", "sgx.resourceKey=kubernetes.azure.com/sgx_epc_mem_in_MiB"
    )
    assert {k for k in objs if "webhook" in k[1]} == {
        ("ConfigMap", NAME),
        ("Service", NAME),
        ("MutatingWebhookConfiguration", NAME),
    }
    settings = parse(objs[("ConfigMap", NAME)]["data"]["settings.json"])
    assert settings.plugin == "azure"
    assert settings.service == NAME
    assert settings.configuration == NAME
    assert settings.cas_address == "cas-enclave.ns1.svc:18765"
    assert (settings.cas_ca_secret, settings.cas_ca_namespace) == ("cas-enclave-tls", "ns1")
    hook = objs[("MutatingWebhookConfiguration", NAME)]["webhooks"][0]
    client = hook["clientConfig"]
    assert "caBundle" not in client, "the operator writes it; helm must not reset it"
    assert client["service"] == {"name": NAME, "namespace": "ns1", "path": "/mutate", "port": 443}
    assert hook == webhook(settings, "ns1", client), "chart and operator agree"
    deployment = objs[("Deployment", "enclave-operator")]["spec"]["template"]
    container = deployment["spec"]["containers"][0]
    assert {"name": "WEBHOOK_CONFIG", "value": NAME} in container["env"]
    assert {"name": "webhook", "containerPort": 9443, "protocol": "TCP"} in container["ports"]
    service = objs[("Service", NAME)]["spec"]
    assert service["ports"][0]["targetPort"] == "webhook"
    assert service["selector"] == deployment["metadata"]["labels"]
    # the operator's own role: its configuration by name (helm creates and deletes it), the
    # settings and the CAS CA copies
    rules = objs[("ClusterRole", "enclave-operator")]["rules"]
    assert [
        r for r in rules if {"configmaps", "mutatingwebhookconfigurations"} & {*r["resources"]}
    ] == [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["mutatingwebhookconfigurations"],
            "resourceNames": [NAME],
            "verbs": ["get", "patch"],
        },
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "update"]},
    ]


def test_settings_changes_restart_the_operator():
    def checksum(*sets: str) -> str:
        objs = render(None, "webhook.enabled=true", *sets)
        meta = objs[("Deployment", "enclave-operator")]["spec"]["template"]["metadata"]
        return str(meta["annotations"]["checksum/webhook"])

    assert checksum() != checksum("webhook.aesm=true")
    assert checksum() != checksum("simulation=true")


def test_local_operator_gets_settings_only():
    objs = render(None, "webhook.enabled=true", "operator.enabled=false", "simulation=true")
    assert [k for k in objs if "webhook" in k[1]] == [("ConfigMap", NAME)]
    settings = parse(objs[("ConfigMap", NAME)]["data"]["settings.json"])
    assert settings.service is None
    assert settings.simulation


def test_amounts_and_options_reach_the_settings():
    values = {
        "webhook": {
            "enabled": True,
            "plugin": "auto",
            "amounts": {"intel": {"sgx.intel.com/epc": "64Mi"}},
            "initContainers": True,
            "aesm": True,
            "failurePolicy": "Ignore",
            "timeoutSeconds": 3,
        }
    }
    objs = render(values)
    settings = parse(objs[("ConfigMap", NAME)]["data"]["settings.json"])
    assert settings.plugin == "auto"
    assert settings.amounts == {"intel": {"sgx.intel.com/epc": "64Mi"}}
    assert settings.init_containers
    assert settings.aesm
    hook = objs[("MutatingWebhookConfiguration", NAME)]["webhooks"][0]
    assert (hook["failurePolicy"], hook["timeoutSeconds"]) == ("Ignore", 3)


@pytest.mark.parametrize(
    "bad",
    [
        {"webhook": {"enabled": "yes"}},
        {"webhook": {"enabled": True, "plugin": "amd"}},
        {"webhook": {"enabled": True, "timeoutSeconds": 31}},
        {"webhook": {"enabled": True, "amounts": {"amd": {}}}},
        {"webhook": {"enabled": True, "failurePolicy": "Maybe"}},
        {"webhook": {"enabled": True, "colour": "blue"}},
    ],
)
def test_schema_refuses_bad_values(bad):
    proc = helm("template", "enclave", str(CHART), values=bad)
    assert proc.returncode != 0
    assert "webhook" in proc.stderr, proc.stderr
