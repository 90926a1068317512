"""benchmarks/scale: LAS and SGXPlugin on many kwok nodes (default 1000).

    .venv/bin/python -m benchmarks.scale [--nodes 1000]

Prints the time from the last daemon pod becoming Ready to both CRs' status showing every node
(goal ≤ 5 s), the size of each status object (goal ≤ 256 KiB) and the operator's peak RSS
(goal ≤ 150 MiB). The pod and CR times are taken by this process's own watches, on one clock.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from benchmarks.harness import OPERATOR_NAMESPACE, operated_cluster
from enclave_operator.api.kinds import LAS, SGXPLUGIN

NS = OPERATOR_NAMESPACE


def watch_pods(api: client.ApiClient, stop: threading.Event, last_ready: dict[str, float]) -> None:
    """Record when each daemon pod is first seen Ready."""
    core = client.CoreV1Api(api)
    w = watch.Watch()  # type: ignore[no-untyped-call]
    try:
        for event in w.stream(core.list_namespaced_pod, NS, timeout_seconds=900):  # type: ignore[no-untyped-call]
            pod: Any = event["object"]
            conditions = pod.status.conditions or []
            ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
            if ready and pod.metadata.name not in last_ready:
                last_ready[pod.metadata.name] = time.monotonic()
            if stop.is_set():
                w.stop()  # type: ignore[no-untyped-call]
    except Exception:
        if not stop.is_set():  # the cluster going away at the end is expected
            raise


def wait_converged(api: client.ApiClient, nodes: int) -> tuple[float, dict[str, Any]]:
    """Poll-free: watch both CRs until their status counts every node as ready."""
    crs = client.CustomObjectsApi(api)
    done: dict[str, dict[str, Any]] = {}
    fields = {LAS.plural: "numberAvailable", SGXPLUGIN.plural: "readyReplicas"}
    while len(done) < 2:
        for kind in (LAS, SGXPLUGIN):
            if kind.plural in done:
                continue
            w = watch.Watch()  # type: ignore[no-untyped-call]
            stream = w.stream(  # type: ignore[no-untyped-call]
                crs.list_cluster_custom_object,
                kind.group,
                kind.version,
                kind.plural,
                timeout_seconds=5,
            )
            for event in stream:
                obj = event["object"]
                status = obj.get("status") or {}
                if status.get(fields[kind.plural]) == nodes and status.get("state") == "HEALTHY":
                    done[kind.plural] = obj
                    w.stop()  # type: ignore[no-untyped-call]
    return time.monotonic(), done


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return -1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=1000)
    args = parser.parse_args()
    t0 = time.monotonic()
    with operated_cluster(nodes=args.nodes) as harness:
        cluster, operator = harness.cluster, harness.operator
        print(f"{args.nodes} nodes Ready and the operator started in {time.monotonic() - t0:.0f}s")
        api = config.new_client_from_config(str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
        last_ready: dict[str, float] = {}
        stop = threading.Event()
        watcher = threading.Thread(target=watch_pods, args=(api, stop, last_ready), daemon=True)
        watcher.start()
        time.sleep(3)
        crs = client.CustomObjectsApi(api)
        started = time.monotonic()
        for kind in (LAS, SGXPLUGIN):
            crs.create_cluster_custom_object(
                kind.group,
                kind.version,
                kind.plural,
                {
                    "apiVersion": kind.api_version,
                    "kind": kind.kind,
                    "metadata": {"name": f"scale-{kind.singular}"},
                    "spec": {},
                },
            )
        converged, objects = wait_converged(api, args.nodes)
        stop.set()
        last = max(last_ready.values())
        print(
            f"{len(last_ready)} daemon pods Ready; CRs HEALTHY on all nodes "
            f"{converged - started:.1f}s after creation"
        )
        print(f"last pod Ready → status converged: {converged - last:.2f}s (goal ≤ 5 s)")
        for plural, obj in objects.items():
            size = len(json.dumps(obj["status"]).encode()) / 1024
            print(f"{plural} status size: {size:.1f} KiB (goal ≤ 256 KiB)")
        print(f"operator peak RSS: {peak_rss_mib(operator.pid):.0f} MiB (goal ≤ 150 MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
