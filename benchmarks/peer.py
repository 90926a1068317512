"""benchmarks/peer: our operator beside operator-sdk's helm-operator (built from its Go module if
missing), a bare `helm install --wait` and the direct-apply floor, on one dev cluster, in one run.

    .venv/bin/python -m benchmarks.peer [--scenario p1,p2] [--rounds 10] [--count 100]
        [--idle-minutes 15] [--cluster-dir DIR]     # p3: idle cost; p5: memory (own cluster)

P1: one CAS, ≥10 rounds. P2: `--count` CAS in as many namespaces, created at once. The finish
line is the same for all: the operator says done (ours HEALTHY, helm-operator's Deployed=True)
and the Deployment is Available. A timeout fails the run. Ratios are within this run only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from kubernetes import config

from benchmarks import cpu, peer_idle
from benchmarks import peer_contestants as pc
from benchmarks.peer_setup import (
    OUR_WORKERS,
    PEER_GROUP,
    PEER_PLURAL,
    PEER_VERSION_API,
    Cluster,
    Operator,
    peer_binary,
    prepare,
    start_ours,
    start_peer,
)
from benchmarks.peer_watch import FinishLine, ours_done, peer_done
from enclave_operator.api.kinds import CAS
from enclave_operator.devcluster.cluster import DevCluster

Row = dict[str, list[float]]
WHO = ("helm", "floor", "ours", "peer")


def measure(
    line: FinishLine, c: pc.Contestant, names: list[str], timeout: float, cluster: Cluster
) -> list[float]:
    """Seconds from the first launch to each namespace's finish; the total is their max. With
    more than one name, also where the machine's CPU went meanwhile."""
    c.setup(names)
    ended: dict[str, float] = {}

    def launch(ns: str) -> None:
        if (at := c.launch(ns)) is not None:
            ended[ns] = at

    role = roles(cluster)
    before, t0 = cpu.snapshot(role), time.perf_counter()
    pc.pool(c.parallelism, launch, names)
    done = line.wait(names, timeout, c.with_cr, ended)
    if len(names) > 1:
        wall = max(done.values()) - t0
        print(
            f"    CPU (share of one core): {cpu.line(cpu.used(before, cpu.snapshot(role)), wall)}"
        )
    c.cleanup(names)
    return [done[ns] - t0 for ns in names]


def roles(cluster: Cluster) -> cpu.Role:
    """The benchmark, the operators and their helm server, and the dev cluster's processes by
    name. Bare helm's short-lived processes end between snapshots and are not counted."""
    here, directory = os.getpid(), str(cluster.directory)

    def role(pid: int, comm: str, cmdline: str) -> str | None:
        if pid == here:
            return "benchmark"
        if "enclave_operator.cli operator run" in cmdline:
            return "operator"
        if comm in ("helm-server", "helm-operator"):
            return comm
        return comm if directory in cmdline else None

    return role


@contextmanager
def operating(line: FinishLine, cluster: Cluster, who: str, conc: int | None) -> Iterator[Operator]:
    if who == "ours":
        op = start_ours(cluster)
        line.follow(CAS.group, CAS.version, CAS.plural, ours_done)
    else:
        op = start_peer(cluster, conc)
        line.follow(PEER_GROUP, PEER_VERSION_API, PEER_PLURAL, peer_done)
    try:
        yield op
    finally:
        op.stop()


def contestants(cluster: Cluster, parallelism: int) -> dict[str, pc.Contestant]:
    return {
        "ours": pc.ours(cluster),
        "peer": pc.peer(cluster),
        "helm": pc.bare_helm(cluster, parallelism),
        "floor": pc.direct_apply(cluster, parallelism),
    }


def scenario(
    line: FinishLine, cluster: Cluster, args: argparse.Namespace, tag: str,
    rounds: int, count: int, timeout: float, rss: dict[str, float],
) -> Row:  # fmt: skip
    """Each contestant in turn (one operator at a time), a warm-up round first, untimed."""
    row: Row = {}
    cs = contestants(cluster, parallelism=1 if count == 1 else OUR_WORKERS)

    def names(who: str, r: int) -> list[str]:
        return [f"{tag}-{who}-{r}-{i}" for i in range(count)]

    for who in args.who.split(","):
        c = cs[who]

        def go(c: pc.Contestant, who: str, op: Operator | None) -> None:
            measure(line, c, [f"{tag}-{who}-warm"], timeout, cluster)
            if op is not None:
                op.reset_peak()
            times: list[float] = []
            for r in range(rounds):
                got = measure(line, c, names(who, r), timeout, cluster)
                times.append(max(got) if count > 1 else got[0])
                if count > 1:
                    print(f"  {tag} {who}: per-CR median {statistics.median(got):.2f}s", flush=True)
            row[who] = times
            if op is not None:
                rss[f"{tag} {who}"] = op.peak_tree_rss / 2**20
            print(f"  {tag} {who}: {fmt(times)}", flush=True)

        if who in ("ours", "peer"):
            with operating(line, cluster, who, args.peer_concurrency) as op:
                time.sleep(2)
                go(c, who, op)
        else:
            go(c, who, None)
    return row


def fmt(xs: list[float]) -> str:
    return f"{min(xs):.2f} / {statistics.median(xs):.2f} / {max(xs):.2f} s"


def table(rows: dict[str, Row], rss: dict[str, float], peer_conc: int) -> str:
    cores = os.cpu_count()
    out = [
        f"cores: {cores}; ours: {OUR_WORKERS} workers; helm-operator: {peer_conc} "
        f"concurrent reconciles; bare helm and the floor: {OUR_WORKERS} at once (P2)",
        "",
        "| scenario | ours | helm-operator | bare helm --wait | direct apply | ours/peer "
        "| ours/helm | ours/floor |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        med = {k: statistics.median(v) for k, v in row.items()}
        out.append(
            f"| {name} (min / median / max) | {fmt(row['ours'])} | {fmt(row['peer'])} "
            f"| {fmt(row['helm'])} | {fmt(row['floor'])} | {med['ours'] / med['peer']:.2f} "
            f"| {med['ours'] / med['helm']:.2f} | {med['ours'] / med['floor']:.2f} |"
        )
    for name, mib in rss.items():
        out.append(f"peak RSS with helm children, {name}: {mib:.0f} MiB")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", default="p1,p2", help="any of p1,p2,p3,p5")
    parser.add_argument("--rounds", type=int, default=10, help="P1 rounds")
    parser.add_argument("--p2-rounds", type=int, default=1)
    parser.add_argument("--count", type=int, default=100, help="P2/P3 CRs")
    parser.add_argument("--idle-minutes", type=float, default=15)
    parser.add_argument("--nodes", type=int, default=1000, help="P5 kwok nodes")
    parser.add_argument("--pods", type=int, default=10000, help="P5 foreign pods")
    parser.add_argument("--peer-concurrency", type=int, default=None)
    parser.add_argument(
        "--who", default=",".join(WHO), help="contestants to run (the table needs all four)"
    )
    parser.add_argument("--cluster-dir", type=Path, help="a running dev cluster to use")
    args = parser.parse_args()
    chosen = set(args.scenario.split(","))
    peer_binary()  # build before any cluster exists, so its minutes are not in a measure
    peer_conc = args.peer_concurrency or os.cpu_count() or 1
    nodes = args.nodes if "p5" in chosen else 3
    with dev_cluster(args.cluster_dir, nodes) as cluster:
        prepare(cluster)
        line = FinishLine(cluster.api)
        rows: dict[str, Row] = {}
        rss: dict[str, float] = {}
        if "p1" in chosen:
            print("P1: one CR", flush=True)
            rows["P1: one CAS"] = scenario(line, cluster, args, "p1", args.rounds, 1, 180, rss)
        if "p2" in chosen:
            print(f"P2: {args.count} CRs at once", flush=True)
            name = f"P2: {args.count} CAS at once"
            rows[name] = scenario(line, cluster, args, "p2", args.p2_rounds, args.count, 900, rss)
        if rows and set(args.who.split(",")) >= set(WHO):
            print(table(rows, rss, peer_conc))

        def run_op(who: str) -> AbstractContextManager[Operator]:
            return operating(line, cluster, who, args.peer_concurrency)

        if "p3" in chosen:
            peer_idle.idle(cluster, line, run_op, args.count, args.idle_minutes)
        if "p5" in chosen:
            peer_idle.memory(cluster, line, run_op, args.count, args.pods)
    return 0


@contextmanager
def dev_cluster(directory: Path | None, nodes: int) -> Iterator[Cluster]:
    if directory is not None:
        api = config.new_client_from_config(str(directory / "kubeconfig"))  # type: ignore[no-untyped-call]
        yield Cluster(directory, api)
        return
    scratch = Path(tempfile.mkdtemp(prefix="enclave-peer-"))
    dev = DevCluster(scratch / "cluster")
    dev.up(nodes=nodes, say=lambda m: None)
    try:
        api = config.new_client_from_config(str(dev.kubeconfig))  # type: ignore[no-untyped-call]
        yield Cluster(dev.directory, api)
    finally:
        dev.down(say=lambda m: None)
        scratch.rmdir()


if __name__ == "__main__":
    sys.exit(main())
