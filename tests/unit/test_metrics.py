"""/metrics content, and the shipped alert rules against the metrics that really exist."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from enclave_operator.controller.metrics import OperatorMetrics

RULES = Path(__file__).resolve().parents[2] / "config" / "prometheus" / "alerts.yaml"


def samples(m: OperatorMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(m.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


SGX_STATUS = {
    "capacitySGXDevices": 40,
    "usedSGXDevices": 3,
    "availableSGXDevices": 37,
    "desiredReplicas": 2,
    "readyReplicas": 2,
    "sgxDeviceAlert": 0,
    "sgxReplicaAlert": 0,
    "capacitySGXDevicesPerNode": {"n1": 20, "n2": 20},
    "usedSGXDevicesPerNode": {"n1": 3, "n2": 0},
    "availableSGXDevicesPerNode": {"n1": 17, "n2": 20},
}


def test_every_figure_is_a_series_and_stale_nodes_disappear():
    m = OperatorMetrics()
    m.observe_cr("sgxplugin", "", "p", "HEALTHY", SGX_STATUS)
    got = samples(m)
    cr = (("name", "p"), ("namespace", ""))
    assert got[("enclave_sgxplugin_capacity_sgx_devices", cr)] == 40
    assert got[("enclave_sgxplugin_node_used_sgx_devices", (*cr, ("node", "n1")))] == 3
    assert got[("enclave_cr_state", (("kind", "sgxplugin"), *cr, ("state", "HEALTHY")))] == 1
    assert got[("enclave_cr_state", (("kind", "sgxplugin"), *cr, ("state", "UNHEALTHY")))] == 0

    smaller = {k: ({"n1": v["n1"]} if isinstance(v, dict) else v) for k, v in SGX_STATUS.items()}
    m.observe_cr("sgxplugin", "", "p", "UNHEALTHY", smaller)
    got = samples(m)
    assert ("enclave_sgxplugin_node_used_sgx_devices", (*cr, ("node", "n2"))) not in got
    m.forget("sgxplugin", "", "p")
    assert not [k for k in samples(m) if ("name", "p") in k[1]]


def test_las_nodes_and_version():
    m = OperatorMetrics()
    status = {
        "desiredNumberScheduled": 2,
        "numberAvailable": 1,
        "lasReplicaAlert": 1,
        "version": "1.2",
        "nodes": {"n1": {"ready": True}, "n2": {"ready": False}},
    }
    m.observe_cr("las", "", "l", "UNHEALTHY", status)
    got = samples(m)
    assert got[("enclave_las_las_replica_alert", (("name", "l"), ("namespace", "")))] == 1
    assert got[("enclave_las_node_ready", (("name", "l"), ("namespace", ""), ("node", "n2")))] == 0
    key = (
        "enclave_version_info",
        (("kind", "las"), ("name", "l"), ("namespace", ""), ("version", "1.2")),
    )
    assert got[key] == 1


def test_alert_rules_are_well_formed_and_use_real_metrics():
    """Every metric a rule names is one the operator serves (promtool checks the PromQL itself:
    tests/unit/test_alert_rules.py)."""
    m = OperatorMetrics()
    m.observe_cr("las", "", "l", "HEALTHY", {"lasReplicaAlert": 0, "nodes": {}})
    m.observe_cr("sgxplugin", "", "p", "HEALTHY", SGX_STATUS)
    m.observe_cr("cas", "ns", "c", "HEALTHY", {"certificateNotAfter": "2027-04-25T08:00:00Z"})
    names = {name for name, _ in samples(m)}
    doc = yaml.safe_load(RULES.read_text())
    assert doc["kind"] == "PrometheusRule"
    rules = [r for g in doc["spec"]["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} >= {
        "EnclaveLASReplicaMissing",
        "EnclaveSGXDeviceExhausted",
        "EnclaveSGXPluginReplicaMissing",
        "EnclaveResourceUnhealthy",
    }
    for rule in rules:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"])
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
        used = set(re.findall(r"\benclave_[a-z_]+", rule["expr"]))
        assert used, rule["alert"]
        assert used <= names, f"{rule['alert']} uses unknown metrics {used - names}"
        for text in (rule["annotations"]["summary"], rule["annotations"]["description"]):
            assert set(re.findall(r"\benclave_[a-z_]+", text)) <= names
