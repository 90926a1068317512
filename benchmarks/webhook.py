"""benchmarks/webhook: the SGX injection webhook while pods are created at 200/s.

    .venv/bin/python -m benchmarks.webhook [--rate 200] [--seconds 15]

A dev cluster of its own (kwok nodes, Intel SGX). Labelled pods are created at a fixed rate
twice in the same run: first with no webhook configuration (the baseline), then with the
operator serving the webhook as `enclavectl install --local-operator` runs it (the chart's
settings ConfigMap, registration by URL on loopback). Latencies are kube-apiserver's own,
scraped from its /metrics before and after each phase and differenced: the webhook call
(apiserver_admission_webhook_admission_duration_seconds) and the whole pod POST
(apiserver_request_duration_seconds). Goal: webhook p99 ≤ 5 ms, 0 errors. The pods name a
scheduler that does not exist, so that neither the scheduler nor kwok adds load: what is
measured is admission. Bounded (rate * seconds pods per phase); the cluster goes at the end.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config

from benchmarks import cpu, histogram
from benchmarks.harness import OPERATOR_NAMESPACE, ROOT, run
from enclave_operator.devcluster.binaries import toolset
from enclave_operator.devcluster.cluster import DevCluster
from enclave_operator.devcluster.nodes import SGXFlavour
from enclave_operator.webhook.requests import INJECTED
from enclave_operator.webhook.settings import DEFAULT_SETTINGS_NAME, INJECT_LABEL

WEBHOOK = "inject.enclave.dev"
WORKERS = 24  # enough in flight that a slow request does not hold back the rate
ADMISSION = "apiserver_admission_webhook_admission_duration_seconds"
REQUEST = "apiserver_request_duration_seconds"
JSON = {"Content-Type": "application/json"}
POD_POST = {"verb": "POST", "resource": "pods", "subresource": "", "dry_run": ""}


@dataclass
class Phase:
    name: str
    created: int
    errors: list[str]
    seconds: float
    admission: histogram.Buckets
    request: histogram.Buckets
    cpu: dict[str, float]


def pod(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"p-{i}", "labels": {INJECT_LABEL: "true"}},
        "spec": {
            "schedulerName": "benchmark-unscheduled",
            "containers": [{"name": "app", "image": "busybox"}],
        },
    }


def paced(rate: float, total: int, create: Callable[[int], None]) -> tuple[list[str], float]:
    """Call ``create(i)`` at ``rate`` per second, ``total`` times, from WORKERS threads; the
    errors and the seconds it took."""
    slots, lock, errors = itertools.count(), threading.Lock(), []
    start = time.monotonic() + 0.2

    def worker() -> None:
        while True:
            with lock:
                i = next(slots)
            if i >= total:
                return
            if (delay := start + i / rate - time.monotonic()) > 0:
                time.sleep(delay)
            try:
                create(i)
            except Exception as e:  # counted: any failure to create is an error
                errors.append(f"{type(e).__name__}: {str(e)[:300]}")

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors, time.monotonic() - start


class Bench:
    def __init__(self, cluster: DevCluster) -> None:
        self.cluster = cluster
        self.env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
        cfg = client.Configuration()
        config.load_kube_config(str(cluster.kubeconfig), client_configuration=cfg)  # type: ignore[no-untyped-call]
        cfg.connection_pool_maxsize = WORKERS
        self.core: Any = client.CoreV1Api(client.ApiClient(cfg))  # bodies as plain dicts
        self.host = cfg.host
        self.http = urllib3.PoolManager(
            maxsize=WORKERS,
            cert_file=cfg.cert_file,
            key_file=cfg.key_file,
            ca_certs=cfg.ssl_ca_cert,
        )
        self.operator_pid: int | None = None

    def role(self, pid: int, comm: str, cmdline: str) -> str | None:
        """Whose CPU: this process (the pod generator), the operator, its webhook process, or
        a process of this dev cluster (by name); other processes on the machine are ignored."""
        if pid == os.getpid():
            return "generator"
        if pid == self.operator_pid:
            return "operator"
        if "enclave_operator.webhook" in cmdline:
            return "webhook"
        return comm if str(self.cluster.directory) in cmdline else None

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return run(str(toolset().path("kubectl")), *args, env=self.env, input=input)

    def metrics(self) -> tuple[histogram.Buckets, histogram.Buckets]:
        text = self.kubectl("get", "--raw", "/metrics")
        return (
            histogram.buckets(text, ADMISSION, {"name": WEBHOOK}),
            histogram.buckets(text, REQUEST, POD_POST),
        )

    def phase(self, name: str, rate: float, seconds: float) -> Phase:
        ns = f"bench-{name}"
        self.kubectl("create", "namespace", ns)
        deadline = time.monotonic() + 30
        while True:  # pods need the namespace's default ServiceAccount
            try:
                self.core.read_namespaced_service_account("default", ns)
                break
            except client.ApiException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

        url = f"{self.host}/api/v1/namespaces/{ns}/pods"

        def create(i: int) -> None:  # plain urllib3: the generator should not eat the cores
            r = self.http.request(
                "POST", url, body=json.dumps(pod(i)).encode(), headers=JSON, timeout=10.0
            )
            if r.status >= 300:
                raise RuntimeError(f"HTTP {r.status}: {r.data[:300]!r}")

        before, cpu_before = self.metrics(), cpu.snapshot(self.role)
        errors, took = paced(rate, int(rate * seconds), create)
        after, cpu_after = self.metrics(), cpu.snapshot(self.role)
        return Phase(
            name,
            int(rate * seconds) - len(errors),
            errors,
            took,
            histogram.minus(after[0], before[0]),
            histogram.minus(after[1], before[1]),
            cpu.used(cpu_before, cpu_after),
        )

    def start_webhook(self, log: Path) -> subprocess.Popen[bytes]:
        """The chart's settings for a local operator, then the operator; returns once the API
        server calls the webhook (a dry-run pod comes back injected)."""
        self.kubectl("apply", "--server-side", "-f", str(ROOT / "config" / "crd"))
        self.kubectl("create", "namespace", OPERATOR_NAMESPACE)
        ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
        secret = {  # what the CAS CA copy reads (enclavectl install writes the real one)
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "cas-enclave-tls", "namespace": OPERATOR_NAMESPACE},
            "data": {"ca.crt": ca.decode()},
        }
        self.kubectl("apply", "-f", "-", input=json.dumps(secret))
        helm = str(toolset().path("helm"))
        sets = ["operator.enabled=false", "webhook.enabled=true", "webhook.plugin=intel"]
        rendered = run(
            helm,
            "template",
            "enclave",
            str(ROOT / "charts" / "enclave-operator"),
            "-n",
            OPERATOR_NAMESPACE,
            "--show-only",
            "templates/webhook.yaml",
            *(a for s in sets for a in ("--set", s)),
            env=self.env,
        )
        self.kubectl("apply", "-n", OPERATOR_NAMESPACE, "-f", "-", input=rendered)
        env = {
            **self.env,
            "KUBECONFIG": str(self.cluster.directory / "operator.kubeconfig"),
            "OPERATOR_NAMESPACE": OPERATOR_NAMESPACE,
            "METRICS_PORT": "0",
            "WEBHOOK_CONFIG": DEFAULT_SETTINGS_NAME,
        }
        with log.open("wb") as out:
            operator = subprocess.Popen(
                [sys.executable, "-m", "enclave_operator.cli", "operator", "run"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.operator_pid = operator.pid
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                probe = self.core.create_namespaced_pod("default", pod(0), dry_run="All")
                if INJECTED in (probe.metadata.annotations or {}):
                    return operator
            except client.ApiException:
                pass  # configuration not there yet, or not yet trusted
            time.sleep(0.5)
        operator.terminate()
        raise RuntimeError(f"the webhook was not called within 90s; see {log}")


def ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.1f} ms"


def figures(b: histogram.Buckets) -> str:
    p50, p99 = histogram.quantile(0.5, b), histogram.quantile(0.99, b)
    return f"{histogram.count(b):.0f}: p50 {ms(p50)} p99 {ms(p99)}"


def report(p: Phase, rate: float) -> None:
    within = histogram.share_within(0.005, p.admission)
    print(
        f"{p.name:8}  {p.created} pods in {p.seconds:.1f}s ({p.created / p.seconds:.0f}/s of"
        f" {rate:.0f}/s), {len(p.errors)} errors\n"
        f"          webhook calls {figures(p.admission)}"
        f" (≤ 5 ms: {'—' if within is None else f'{within:.2%}'})\n"
        f"          pod POST {figures(p.request)}\n"
        f"          CPU (share of one core): {cpu.line(p.cpu, p.seconds)}"
    )
    for e in sorted(set(p.errors))[:5]:
        print(f"          error: {e}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="enclave-bench-"))
    cluster = DevCluster(scratch / "cluster")
    operator = None
    try:
        cluster.up(nodes=3, sgx=SGXFlavour.INTEL, say=lambda m: None)
        bench = Bench(cluster)
        baseline = bench.phase("baseline", args.rate, args.seconds)
        operator = bench.start_webhook(cluster.directory / "logs" / "operator.log")
        webhook = bench.phase("webhook", args.rate, args.seconds)
        bounds = ", ".join(f"{le * 1000:g}" for le in sorted(webhook.admission)[:4])
        print("SGX injection webhook, labelled pods created at a fixed rate; kube-apiserver's")
        print(f"histograms (webhook buckets {bounds}, … ms: quantiles are linear within one)")
        for p in (baseline, webhook):
            report(p, args.rate)
        p99 = histogram.quantile(0.99, webhook.admission)
        ok = p99 is not None and p99 <= 0.005 and not webhook.errors and not baseline.errors
        print(f"goal p99 ≤ 5 ms, 0 errors: {'met' if ok else 'NOT met'}")
        return 0 if ok else 1
    finally:
        if operator is not None:
            operator.terminate()  # a local operator removes its configuration on the way out
            operator.wait(timeout=30)
        cluster.down(say=lambda m: None)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
