"""Fault injection against the operator process, and the checks that say a CR recovered:
converged, no orphan object, no duplicate or pending release record, no data lost."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from enclave_operator.api.kinds import LAS
from enclave_operator.helm.releases import decode_payload
from tests.integration.crs import CRs, unique
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_reconcile import las_spec
from tests.integration.waiting import wait_for

INSTANCE = "app.kubernetes.io/instance"
SLOW = 240  # a killed helm leaves a pending record: 30 s before it counts as abandoned


@dataclass
class Tally:
    """One line per fault, and the summary the acceptance asks for."""

    rows: list[tuple[str, bool, int, int, str]] = field(default_factory=list)

    def add(self, fault: str, converged: bool, orphans: int, lost: int, note: str = "") -> None:
        self.rows.append((fault, converged, orphans, lost, note))

    def summary(self) -> str:
        converged = sum(1 for r in self.rows if r[1])
        orphans = sum(r[2] for r in self.rows)
        lost = sum(r[3] for r in self.rows)
        lines = [
            f"  {fault}: {'converged' if ok else 'NOT converged'}, orphans {o}, data lost {d}"
            + (f" ({note})" if note else "")
            for fault, ok, o, d, note in self.rows
        ]
        head = (
            f"faults injected {len(self.rows)} / converged {converged} /"
            f" orphans left {orphans} / data lost {lost}"
        )
        return "\n".join([head, *lines])


class Killer:
    """SIGKILLs the operator's process group the moment its log says it starts an action
    (and, for Helm's actions, once helm is running), then starts a new operator."""

    def __init__(self, operator: OperatorProcess) -> None:
        self.operator = operator
        self.offset = 0

    def ensure_running(self) -> None:
        proc = self.operator.proc
        if proc is None or proc.poll() is not None:
            self.operator.start()

    def arm(self) -> None:
        """Only log lines written from now on count."""
        self.offset = self.operator.log.stat().st_size

    def _logged(self, name: str, action: str) -> bool:
        with self.operator.log.open("rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
        return any(
            f"name='{name}')" in line and f": {action} (" in line for line in text.splitlines()
        )

    def kill_at(
        self,
        name: str,
        action: str,
        helm: bool,
        ready: Callable[[], bool] | None = None,
        timeout: float = 180,
    ) -> str:
        """Returns how the kill landed: during helm, or at the action's log line. ``ready``:
        while helm runs, wait for this too (e.g. its pending record) before killing."""
        deadline = time.monotonic() + timeout
        while not self._logged(name, action):
            assert time.monotonic() < deadline, f"the operator never started {action} on {name}"
            time.sleep(0.005)
        landed = "at the action's first step"
        if helm:
            until = time.monotonic() + 5
            while time.monotonic() < until:
                if self.operator.children() and (ready is None or ready()):
                    landed = "while helm ran"
                    break
                time.sleep(0.002)
            else:
                landed = "after helm (not caught running)"
        self.operator.kill_group()
        return landed

    def restart(self) -> None:
        self.operator.start()


def release_records(core: client.CoreV1Api, ns: str, release: str) -> list[Any]:
    selector = f"owner=helm,name={release}"
    return core.list_namespaced_secret(ns, label_selector=selector).items


def record_trouble(core: client.CoreV1Api, ns: str, release: str, present: bool) -> list[str]:
    """A converged release has exactly one deployed record, the latest; a removed one has no
    record at all. (A rollback from an abandoned pending-upgrade leaves that older record
    pending: Helm only supersedes deployed ones. It is history, not a second release.)"""
    records = release_records(core, ns, release)
    statuses = [s.metadata.labels.get("status") for s in records]
    if not present:
        return [f"record left: {s}" for s in statuses]
    problems = []
    if statuses.count("deployed") != 1:
        problems.append(f"{statuses.count('deployed')} deployed records")
    latest = max(records, key=lambda s: int(s.metadata.labels["version"]), default=None)
    if latest is None or latest.metadata.labels.get("status") != "deployed":
        problems.append(f"latest record: {latest and latest.metadata.labels.get('status')}")
    return problems


def release_objects(api_client: client.ApiClient, ns: str, release: str) -> list[Any]:
    """What the charts make for one release, by its instance label."""
    selector = f"{INSTANCE}={release}"
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    found: list[Any] = []
    for lister in (
        apps.list_namespaced_deployment,
        apps.list_namespaced_daemon_set,
        apps.list_namespaced_stateful_set,
        core.list_namespaced_service,
        core.list_namespaced_persistent_volume_claim,
        core.list_namespaced_service_account,
    ):
        found += [o for o in lister(ns, label_selector=selector).items if not _deleting(o)]
    return found


def _deleting(obj: Any) -> bool:
    return obj.metadata.deletion_timestamp is not None


def orphans(
    api_client: client.ApiClient, ns: str, release: str, cr_uid: str | None, keep: tuple[str, ...]
) -> list[str]:
    """Objects of the release not owned by the CR alone (or left after the CR went), except
    the names in ``keep``, which are meant to outlive it (a retained CAS database claim)."""
    bad = []
    for obj in release_objects(api_client, ns, release):
        name = f"{obj.kind or type(obj).__name__}/{obj.metadata.name}"
        owners = [o.uid for o in obj.metadata.owner_references or []]
        if obj.metadata.name in keep:
            if cr_uid is None and owners:
                bad.append(f"{name} kept but still owned by {owners}")
            continue
        if cr_uid is None or owners != [cr_uid]:
            bad.append(f"{name} owners {owners}")
    return bad


def node_port_holder(core: client.CoreV1Api, ns: str) -> int:
    """A Service of someone else's holding a NodePort, so a CAS asking for it fails to apply."""
    for _ in range(20):
        port = random.randint(30000, 32767)
        body: Any = {
            "metadata": {"name": "port-holder"},
            "spec": {"type": "NodePort", "ports": [{"port": 1, "nodePort": port}]},
        }
        try:
            core.create_namespaced_service(ns, body)
            return port
        except client.ApiException as e:
            if e.status != 422:
                raise
    raise AssertionError("no free NodePort found")


def node_port_spec(port: int) -> dict[str, Any]:
    return {"service": {"type": "NodePort", "nodePorts": {"clientPort": port}}}


def has_record(core: client.CoreV1Api, ns: str, release: str, status: str) -> Callable[[], bool]:
    def check() -> bool:
        records = release_records(core, ns, release)
        return any(s.metadata.labels.get("status") == status for s in records)

    return check


def pvc_uid(core: client.CoreV1Api, ns: str, name: str) -> str | None:
    try:
        pvc = core.read_namespaced_persistent_volume_claim(name, ns)
    except client.ApiException as e:
        if e.status == 404:
            return None
        raise
    meta: Any = pvc.metadata
    return None if meta.deletion_timestamp else str(meta.uid)


def settle(
    crs: CRs,
    api_client: Any,
    kind: Any,
    name: str,
    ns: str,
    release: str,
    *,
    present: bool,
    cr_ns: str | None = None,
) -> tuple[bool, list[str]]:
    """Converged (HEALTHY with one deployed record, or gone with nothing left) and orphans."""
    core = client.CoreV1Api(api_client)
    try:
        if present:
            cr = crs.wait_state(kind, name, "HEALTHY", cr_ns, timeout=SLOW)
            wait_for(lambda: record_trouble(core, ns, release, True), lambda p: p == [], SLOW)
            uid: str | None = cr["metadata"]["uid"]
        else:
            crs.wait_gone(kind, name, cr_ns, timeout=SLOW)
            wait_for(lambda: record_trouble(core, ns, release, False), lambda p: p == [], SLOW)
            uid = None
    except AssertionError as e:
        return False, [str(e)]
    keep = (f"{release}-db",)
    with contextlib.suppress(AssertionError):  # the garbage collector may still be at work
        wait_for(lambda: orphans(api_client, ns, release, uid, keep), lambda o: o == [], 60)
    return True, orphans(api_client, ns, release, uid, keep)


def healthy_las(crs: CRs, ns: str) -> tuple[str, str, dict[str, Any]]:
    name = unique("las")
    crs.create(LAS, name, las_spec(ns))
    return name, f"las-{name}", crs.wait_state(LAS, name, "HEALTHY", timeout=SLOW)


def write_pending_upgrade(core: client.CoreV1Api, ns: str, release: str, age: float) -> None:
    """Revision 2 as helm writes it when it starts an upgrade (and then dies): a new Secret
    labelled createdAt, no modifiedAt, with the labels of the release it upgrades."""
    first = release_records(core, ns, release)[0]
    payload = decode_payload(first.data["release"])
    payload["version"] = 2
    payload["info"]["status"] = "pending-upgrade"
    inner = base64.b64encode(gzip.compress(json.dumps(payload).encode()))
    labels = {**first.metadata.labels, "status": "pending-upgrade", "version": "2"}
    labels.pop("modifiedAt", None)
    labels["createdAt"] = str(int(time.time() - age))
    body: Any = {
        "metadata": {"name": f"sh.helm.release.v1.{release}.v2", "labels": labels},
        "type": "helm.sh/release.v1",
        "data": {"release": base64.b64encode(inner).decode()},
    }
    core.create_namespaced_secret(ns, body)


class TrackedCRs(CRs):
    """CRs that the test's teardown deletes, whatever happened: a cluster-scoped LAS left
    behind would keep the operator busy for every later test of the session."""

    def __init__(self, api_client: client.ApiClient) -> None:
        super().__init__(api_client)
        self.made: list[tuple[Any, str, str | None]] = []

    def create(self, kind: Any, name: str, spec: dict[str, Any], ns: str | None = None) -> Any:
        self.made.append((kind, name, ns))
        return super().create(kind, name, spec, ns)

    def delete_all(self) -> None:
        for kind, name, ns in self.made:
            self.delete(kind, name, ns)
