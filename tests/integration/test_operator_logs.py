"""The operator as `enclavectl install --local-operator` starts it, with LOG_FORMAT=json (the
`--log-format` option's variable): every line of its log is one JSON object, and every line of
a reconcile names its resource's kind, namespace and name. On the install tests' own cluster,
as this too installs and removes the cluster-wide CRDs."""

from __future__ import annotations

import json

import yaml

from tests.integration.install_env import ROOT, Env
from tests.integration.waiting import wait_for

NS = "enclave-logs"
RECONCILERS = ("enclave_operator.controller", "enclave_operator.policies")


def lines(own: Env, start: int) -> list[str]:
    log = own.dev.directory / "logs" / "operator.log"
    return log.read_bytes()[start:].decode().splitlines() if log.exists() else []


def test_json_logs_name_the_resource_on_every_reconcile_line(own: Env):
    log = own.dev.directory / "logs" / "operator.log"
    start = log.stat().st_size if log.exists() else 0
    install = own.ctl("install", "--simulation", "--local-operator", "-n", NS, LOG_FORMAT="json")
    try:
        assert install.returncode == 0, install.stderr
        # a policy whose CAS runs nowhere (kwok): the policy controller retries, and says so
        policy = yaml.safe_load(
            (ROOT / "config" / "samples" / "cas_v1beta1_signedpolicy.yaml").read_text()
        )
        policy["metadata"] = {"name": "logs", "namespace": NS}
        policy["spec"]["casAddress"] = f"cas-enclave.{NS}.svc:8081"
        own.cluster.kubectl("apply", "-f", "-", input=json.dumps(policy))
        wait_for(
            lambda: lines(own, start),
            lambda got: any('"kind": "SignedPolicy"' in line for line in got),
            what="a policy controller line",
        )
    finally:
        own.ctl("uninstall", "-n", NS)
    entries = []
    for line in lines(own, start):
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        assert {"time", "level", "logger", "message"} <= set(entry), line
        entries.append(entry)
    reconciles = [e for e in entries if e["logger"] in RECONCILERS]
    for entry in reconciles:
        assert entry.get("kind"), entry
        assert entry.get("name"), entry
        assert "namespace" in entry, entry
    seen = {(e["kind"], e["namespace"], e["name"]) for e in reconciles}
    assert {("CAS", NS, "enclave"), ("LAS", "", "enclave"), ("SGXPlugin", "", "enclave")} <= seen
    assert ("SignedPolicy", NS, "logs") in seen
