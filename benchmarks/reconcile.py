"""benchmarks/reconcile: how fast the operator makes a CR HEALTHY, against a bare
`helm install --wait` of the same chart and values in the same run, and what an idle CR costs
in API requests (from kube-apiserver's audit log, by the operator's own user).

    .venv/bin/python -m benchmarks.reconcile [--rounds 5] [--idle-seconds 300]

Runs on its own dev cluster; prints ratios, not absolute times alone (these machines are noisy).
"""

from __future__ import annotations

import argparse
import calendar
import json
import statistics
import sys
import time
from collections import Counter
from typing import Any

import yaml
from kubernetes import client, config, watch

from benchmarks.harness import Harness, operated_cluster
from enclave_operator.api.kinds import LAS
from enclave_operator.charts import chart_path
from enclave_operator.charts.values import values_for

OPERATOR_USER = "enclave-operator"
WRITES = {"create", "update", "patch", "delete", "deletecollection"}


class Bench:
    def __init__(self, harness: Harness) -> None:
        self.h = harness
        self.cluster = harness.cluster
        api = config.new_client_from_config(str(self.cluster.kubeconfig))  # type: ignore[no-untyped-call]
        self.crs = client.CustomObjectsApi(api)

    def las(self, name: str, namespace: str, port: int) -> dict[str, Any]:
        return {
            "apiVersion": LAS.api_version,
            "kind": LAS.kind,
            "metadata": {"name": name},
            "spec": {"namespace": namespace, "hostPort": port},
        }

    def helm_round(self, i: int) -> float:
        ns = f"bench-helm-{i}"
        self.h.kubectl("create", "namespace", ns)
        values = values_for(LAS, self.las("x", ns, 30000 + i), None)
        t0 = time.perf_counter()
        self.h.helm(
            "install",
            f"las-x{i}",
            str(chart_path(LAS)),
            "-n",
            ns,
            "--wait",
            "--timeout",
            "120s",
            "--values",
            "-",
            input=json.dumps(values),
        )
        took = time.perf_counter() - t0
        self.h.helm("uninstall", f"las-x{i}", "-n", ns, "--wait")
        self.h.kubectl("delete", "namespace", ns, "--wait=false")
        return took

    def operator_round(self, i: int) -> float:
        """From the create request to the watch event saying HEALTHY (no kubectl in the way)."""
        ns = f"bench-op-{i}"
        self.h.kubectl("create", "namespace", ns)
        body = self.las(f"op{i}", ns, 31000 + i)
        g, v, plural = LAS.group, LAS.version, LAS.plural
        t0 = time.perf_counter()
        created: Any = self.crs.create_cluster_custom_object(g, v, plural, body)
        stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
            self.crs.list_cluster_custom_object,
            g,
            v,
            plural,
            field_selector=f"metadata.name=op{i}",
            resource_version=created["metadata"]["resourceVersion"],
            timeout_seconds=120,
        )
        for event in stream:
            if (event["object"].get("status") or {}).get("state") == "HEALTHY":
                break
        took = time.perf_counter() - t0
        self.h.kubectl("delete", f"las/op{i}", "--timeout=120s")
        self.h.kubectl("delete", "namespace", ns, "--wait=false")
        return took

    def audit_counts(self, since: float, until: float) -> Counter[str]:
        counts: Counter[str] = Counter()
        log = self.cluster.directory / "logs" / "audit.log"
        for line in log.read_text().splitlines():
            event = json.loads(line)
            if event.get("user", {}).get("username") != OPERATOR_USER:
                continue
            stamp = event["requestReceivedTimestamp"]
            at = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
            if since <= at <= until:
                counts[event["verb"]] += 1
        return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--idle-seconds", type=float, default=300)
    args = parser.parse_args()
    with operated_cluster(nodes=3) as harness:
        bench = Bench(harness)
        time.sleep(3)
        helm_times, op_times = [], []
        active_since = time.time()
        for i in range(args.rounds):  # alternate, so drift in machine load hits both alike
            helm_times.append(bench.helm_round(i))
            op_times.append(bench.operator_round(i))
        h, o = statistics.median(helm_times), statistics.median(op_times)
        print(f"helm install --wait (median of {args.rounds}): {h:.2f}s")
        print(f"operator CR → HEALTHY (median of {args.rounds}): {o:.2f}s")
        print(f"ratio operator / helm: {o / h:.2f}  (goal ≤ 1.15)")
        active = bench.audit_counts(active_since, time.time())
        print(f"operator requests during the {args.rounds} rounds, by verb: {dict(active)}")

        manifest = yaml.safe_dump(bench.las("idle", "enclave-system", 32000))
        harness.kubectl("create", "-f", "-", input=manifest)
        harness.kubectl(
            "wait",
            "las/idle",
            "--for=jsonpath={.status.state}=HEALTHY",
            "--timeout=120s",
        )
        time.sleep(5)  # let the last status write and events settle
        since = time.time()
        time.sleep(args.idle_seconds)
        counts = bench.audit_counts(since, time.time())
        writes = sum(n for verb, n in counts.items() if verb in WRITES)
        print(f"idle CR for {args.idle_seconds:.0f}s, operator requests by verb: {dict(counts)}")
        print(f"writes: {writes} (goal 0), lists: {counts['list']} (goal 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
