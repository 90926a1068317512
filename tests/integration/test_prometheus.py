"""A real Prometheus (Debian's package) scrapes the session's operator: every metric the README
lists is there with its help and type, the shipped LAS replica alert fires when a node goes
NotReady and resolves when it is back, and every Grafana panel's query returns data."""

from __future__ import annotations

import json
import math
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from enclave_operator.api.kinds import LAS, SGXPLUGIN
from tests.integration.crs import CRs, unique
from tests.integration.test_figures import advertise, set_ready
from tests.integration.test_reconcile import las_spec
from tests.integration.waiting import wait_for
from tests.prometheus.promtool import ROOT, rules, write_plain
from tests.prometheus.server import JOB, PrometheusServer

DASHBOARD = ROOT / "config" / "grafana" / "enclave-operator.json"
LAS_ALERT = "EnclaveLASReplicaMissing"
FOR = "2s"  # the shipped rules' `for` is minutes; nothing else of them is changed
GAUGES = (
    "enclave_cr_state",
    "enclave_version_info",
    "enclave_las_desired_number_scheduled",
    "enclave_las_number_available",
    "enclave_las_las_replica_alert",
    "enclave_las_node_ready",
    "enclave_sgxplugin_capacity_sgx_devices",
    "enclave_sgxplugin_used_sgx_devices",
    "enclave_sgxplugin_available_sgx_devices",
    "enclave_sgxplugin_desired_replicas",
    "enclave_sgxplugin_ready_replicas",
    "enclave_sgxplugin_sgx_device_alert",
    "enclave_sgxplugin_sgx_replica_alert",
    "enclave_sgxplugin_node_capacity_sgx_devices",
    "enclave_sgxplugin_node_used_sgx_devices",
    "enclave_sgxplugin_node_available_sgx_devices",
    "enclave_cas_certificate_not_after_seconds",
)
LISTED = {
    **dict.fromkeys(GAUGES, "gauge"),
    "enclave_reconcile_duration_seconds": "histogram",
    "enclave_reconcile_actions_total": "counter",
    "enclave_reconcile_errors_total": "counter",
}
# no sample on this cluster: kwok runs no LAS or CAS to report a version, nothing fails, and the
# workload has no CAS (whose certificate expiry the gauge carries)
UNSAMPLED = {
    "enclave_version_info",
    "enclave_reconcile_errors_total",
    "enclave_cas_certificate_not_after_seconds",
}


@pytest.fixture(scope="module")
def prometheus(operator, tmp_path_factory) -> Iterator[PrometheusServer]:
    directory: Path = tmp_path_factory.mktemp("prometheus")
    rule_file = write_plain(directory, for_=FOR)
    server = PrometheusServer(directory, f"127.0.0.1:{operator.metrics_port}", rule_file)
    server.start()
    yield server
    server.stop()
    print(f"prometheus log tail:\n{server.tail()}")


@pytest.fixture(scope="module")
def workload(api_client, prometheus) -> Iterator[tuple[str, str]]:
    """A LAS and an SGXPlugin, HEALTHY, created after Prometheus started scraping; one fake
    node advertises the plugin's devices, so that the per-node device series exist."""
    core, crs = client.CoreV1Api(api_client), CRs(api_client)
    namespace, las, sgx = unique("t"), unique("las"), unique("sgx")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    crs.create(LAS, las, las_spec(namespace))
    crs.create(SGXPLUGIN, sgx, {"namespace": namespace})
    fakes: Any = core.list_node(label_selector="type=kwok").items
    fake = sorted(n.metadata.name for n in fakes)[0]
    advertise(core, fake, 4)
    try:
        crs.wait_state(LAS, las, "HEALTHY")
        crs.wait_state(SGXPLUGIN, sgx, "HEALTHY")
        yield las, sgx
    finally:
        advertise(core, fake, None)
        crs.delete(LAS, las)
        crs.delete(SGXPLUGIN, sgx)
        crs.wait_gone(LAS, las)
        crs.wait_gone(SGXPLUGIN, sgx)
        core.delete_namespace(namespace)


def family_name(name: str) -> str:
    """A counter's family is named without `_total`."""
    return name.removesuffix("_total")


def stored(prometheus: PrometheusServer, expr: str) -> list[dict[str, Any]]:
    return wait_for(lambda: prometheus.query(expr), bool, what=f"{expr} in Prometheus")


def test_every_listed_metric_is_scraped_with_help_and_type(prometheus, operator, workload):
    las, _ = workload
    stored(prometheus, f'enclave_las_number_available{{name="{las}"}}')
    assert prometheus.query(f'up{{job="{JOB}"}}')[0]["value"][1] == "1"

    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics") as r:
        families = list(text_string_to_metric_families(r.read().decode()))
    series = Counter((s.name, frozenset(s.labels.items())) for f in families for s in f.samples)
    assert [k for k, n in series.items() if n > 1] == []
    # prometheus_client adds a `<name>_created` gauge per counter and histogram child
    ours = {
        f.name: f
        for f in families
        if f.name.startswith("enclave_") and not f.name.endswith("_created")
    }
    assert {family_name(n) for n in LISTED} == set(ours)
    for name, kind in LISTED.items():
        family = ours[family_name(name)]
        assert (family.type, bool(family.documentation)) == (kind, True), name

    # what Prometheus itself took from the scrape
    metadata = {
        m["metric"]: m
        for m in prometheus.get("/api/v1/targets/metadata", match_target=f'{{job="{JOB}"}}')
    }
    for name, kind in LISTED.items():
        entry = metadata[family_name(name)]  # it asks for OpenMetrics, which has families
        assert (entry["type"], entry["help"]) == (kind, ours[family_name(name)].documentation)
    names = {
        r["metric"]["__name__"]
        for r in prometheus.query(f'count by (__name__) ({{job="{JOB}", __name__=~"enclave_.+"}})')
    }
    for name in set(LISTED) - UNSAMPLED:
        wanted = f"{name}_count" if LISTED[name] == "histogram" else name
        assert wanted in names, name
    assert prometheus.own_metric("prometheus_target_scrapes_sample_duplicate_timestamp_total") == 0


def test_las_replica_alert_fires_in_prometheus_and_resolves(prometheus, api_client, workload):
    las, _ = workload
    assert LAS_ALERT in {r["alert"] for r in rules()}
    core = client.CoreV1Api(api_client)
    stored(prometheus, f'enclave_las_las_replica_alert{{name="{las}"}} == 0')
    assert prometheus.alerts(LAS_ALERT, name=las) == []
    victim = sorted(n.metadata.name for n in core.list_node(label_selector="type=kwok").items)[1]
    set_ready(core, victim, False)
    try:
        firing = wait_for(
            lambda: prometheus.alerts(LAS_ALERT, name=las),
            lambda alerts: [a["state"] for a in alerts] == ["firing"],
            timeout=120,
            what=f"{LAS_ALERT} for {las} firing in /api/v1/alerts",
        )[0]
        assert firing["labels"]["severity"] == "warning"
        assert firing["annotations"]["summary"] == (
            f"LAS {las} is not running on 1 node(s) where it should"
        )
        unhealthy = prometheus.alerts("EnclaveResourceUnhealthy", kind="las", name=las)
        assert [a["state"] for a in unhealthy] in (["pending"], ["firing"])
    finally:
        set_ready(core, victim, True)
    wait_for(
        lambda: prometheus.alerts(LAS_ALERT, name=las),
        lambda alerts: alerts == [],
        timeout=120,
        what=f"{LAS_ALERT} for {las} resolved",
    )
    rule = next(
        r
        for g in prometheus.get("/api/v1/rules", type="alert")["groups"]
        for r in g["rules"]
        if r["name"] == LAS_ALERT
    )
    assert rule["health"] == "ok"
    assert not [a for a in rule["alerts"] if a["labels"].get("name") == las]


def panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p["targets"]]


def test_every_dashboard_panel_returns_data(prometheus, workload):
    stored(prometheus, f'count(enclave_reconcile_duration_seconds_count{{job="{JOB}"}})')

    def finite(expr: str) -> list[float]:
        values = [float(r["value"][1]) for r in prometheus.query(expr)]
        return [v for v in values if not math.isnan(v)]

    for title, expr in panel_queries():
        wait_for(lambda e=expr: finite(e), bool, what=f"data for panel {title!r}: {expr}")
