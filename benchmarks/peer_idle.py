"""The long scenarios of benchmarks/peer. P3: what `count` HEALTHY CRs cost each operator in API
requests while nothing changes (from kube-apiserver's audit log, by each one's own user), over a
window long enough to include watch re-establishment, with kwok posting node status. P5: each
operator's peak RSS, with its helm children, among many foreign nodes and pods."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from kubernetes import client

from benchmarks import peer_contestants as pc
from benchmarks.peer_setup import OUR_USER, PEER_USER, Cluster, Operator
from benchmarks.peer_watch import FinishLine

WRITES = {"create", "update", "patch", "delete", "deletecollection"}
RunOp = Callable[[str], AbstractContextManager[Operator]]
USERS = {"ours": OUR_USER, "peer": PEER_USER}


def audit_counts(cluster: Cluster, user: str, since: float, until: float) -> Counter[str]:
    """Requests by verb, each counted once (a watch logs ResponseStarted and ResponseComplete)."""
    seen: set[str] = set()
    counts: Counter[str] = Counter()
    logs = sorted((cluster.directory / "logs").glob("audit*.log"))
    needle = f'"username":"{user}"'
    for log in logs:
        with log.open() as f:
            for line in f:
                if needle not in line:
                    continue
                event = json.loads(line)
                if event.get("user", {}).get("username") != user or event["auditID"] in seen:
                    continue
                at = datetime.fromisoformat(event["requestReceivedTimestamp"]).timestamp()
                if since <= at <= until:
                    seen.add(event["auditID"])
                    counts[event["verb"]] += 1
    return counts


def _running(cluster: Cluster, line: FinishLine, who: str, count: int, tag: str) -> tuple[
    pc.Contestant, list[str]
]:  # fmt: skip
    c = pc.ours(cluster) if who == "ours" else pc.peer(cluster)
    names = [f"{tag}-{who}-{i}" for i in range(count)]
    c.setup(names)
    t0 = time.perf_counter()
    pc.pool(c.parallelism, c.launch, names)
    done = line.wait(names, 900, True, {})
    print(f"  {tag} {who}: {count} CRs done in {max(done.values()) - t0:.1f}s", flush=True)
    return c, names


def idle(cluster: Cluster, line: FinishLine, run_op: RunOp, count: int, minutes: float) -> None:
    print(f"P3: {count} HEALTHY CRs idle for {minutes:g} min, requests by verb", flush=True)
    for who in ("ours", "peer"):
        with run_op(who):
            time.sleep(2)
            c, names = _running(cluster, line, who, count, "p3")
            time.sleep(10)  # the last status writes and events settle
            since = time.time()
            time.sleep(minutes * 60)
            until = time.time()
            counts = audit_counts(cluster, USERS[who], since, until)
            c.cleanup(names)
        hours = (until - since) / 3600
        writes = sum(n for verb, n in counts.items() if verb in WRITES)
        print(
            f"  P3 {who}: {dict(sorted(counts.items()))} over {until - since:.0f}s; per idle CR "
            f"per hour: writes {writes / count / hours:.2f}, lists "
            f"{counts['list'] / count / hours:.2f} (goal 0 and 0)",
            flush=True,
        )


def foreign_pods(cluster: Cluster, pods: int) -> None:
    """Plain pods bound straight to the kwok nodes (no scheduler in the way), not ours."""
    core = client.CoreV1Api(cluster.api)
    nodes = [
        n.metadata.name for n in core.list_node(label_selector="type=kwok").items if n.metadata
    ]
    core.create_namespace(client.V1Namespace.model_validate({"metadata": {"name": "foreign"}}))
    deadline = time.monotonic() + 60  # admission refuses pods until the default account exists
    while not core.list_namespaced_service_account("foreign").items:
        if time.monotonic() > deadline:
            raise TimeoutError("no default ServiceAccount in namespace foreign after 60s")
        time.sleep(0.5)

    def one(i: str) -> None:
        body: dict[str, Any] = {
            "metadata": {"name": f"f-{i}", "labels": {"app": "foreign"}},
            "spec": {
                "nodeName": nodes[int(i) % len(nodes)],
                "containers": [{"name": "c", "image": "foreign:1"}],
            },
        }
        core.create_namespaced_pod("foreign", client.V1Pod.model_validate(body))

    t0 = time.monotonic()
    pc.pool(16, one, [str(i) for i in range(pods)])
    running = 0
    while time.monotonic() - t0 < 1800:
        running = _running_pods(core)
        if running >= pods:
            print(f"  {pods} foreign pods Running in {time.monotonic() - t0:.0f}s", flush=True)
            return
        time.sleep(10)
    raise TimeoutError(f"foreign pods: {running}/{pods} Running after 1800s")


def _running_pods(core: client.CoreV1Api) -> int:
    """Counted page by page: with a field selector the API server gives no remaining count."""
    count, token = 0, None
    while True:
        page = core.list_namespaced_pod(
            "foreign", field_selector="status.phase=Running", limit=1000, _continue=token
        )
        count += len(page.items)
        token = page.metadata.var_continue if page.metadata else None
        if not token:
            return count


def memory(cluster: Cluster, line: FinishLine, run_op: RunOp, count: int, pods: int) -> None:
    nodes = len(client.CoreV1Api(cluster.api).list_node().items)
    print(f"P5: peak RSS with {nodes} nodes, {pods} foreign pods and {count} CRs", flush=True)
    foreign_pods(cluster, pods)
    failed = []
    for who in ("ours", "peer"):
        with run_op(who) as op:
            time.sleep(15)  # the initial lists of nodes and pods
            try:
                c, names = _running(cluster, line, who, count, "p5")
                time.sleep(5)
                finished = "all done"
            except TimeoutError as e:  # a miss: reported with what was measured, never hidden
                failed.append(who)
                c, names, finished = None, [], f"NOT finished ({e})"
            peak, hwm = op.peak_tree_rss / 2**20, op.hwm_mib()
            if c is not None:  # after a miss the CRs stay: the cluster is thrown away
                c.cleanup(names)
        print(
            f"  P5 {who}: {finished}; peak RSS with helm children {peak:.0f} MiB, operator "
            f"process alone {hwm:.0f} MiB (goal ≤ 150 MiB and below the peer)",
            flush=True,
        )
    if failed:
        raise TimeoutError(f"P5: {', '.join(failed)} did not finish {count} CRs")
