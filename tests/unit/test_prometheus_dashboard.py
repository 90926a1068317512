"""The Grafana dashboard offline: valid PromQL (through promtool) on metrics the operator
serves. The integration test runs the same queries against a real Prometheus."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from prometheus_client import generate_latest

from enclave_operator.controller.metrics import OperatorMetrics
from tests.prometheus.promtool import ROOT, promtool

DASHBOARD = ROOT / "config" / "grafana" / "enclave-operator.json"
SUFFIXES = {"histogram": ("_bucket", "_count", "_sum"), "counter": ("",), "gauge": ("",)}


def panels() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(DASHBOARD.read_text())["panels"]
    return found


def served() -> set[str]:
    text = generate_latest(OperatorMetrics().registry).decode()
    types = re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M)
    return {name + suffix for name, kind in types for suffix in SUFFIXES.get(kind, ("",))}


def test_every_panel_queries_the_chosen_prometheus():
    ids = [p["id"] for p in panels()]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert "$" not in target["expr"], "queries run as they are in the integration test"


def test_every_query_is_promql_on_served_metrics(tmp_path):
    exprs = [t["expr"] for p in panels() for t in p["targets"]]
    names = served()
    for expr in exprs:
        used = set(re.findall(r"\benclave_\w+", expr))
        assert used, expr
        assert used <= names, f"{expr}: not served: {used - names}"
    rules = [{"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(exprs)]
    (tmp_path / "queries.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]})
    )
    done = promtool("check", "rules", "queries.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
