"""Removing enclave-operator, in the only order that leaves nothing behind: the resources
first, while the operator still runs and its finalizers uninstall their releases; then the
chart, the local operator, the CRDs, and the namespace when enclavectl created it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from enclave_operator.api.crds import LABELS
from enclave_operator.api.kinds import ALL_KINDS, CAS, LAS, SGXPLUGIN, Kind
from enclave_operator.charts.values import release_name, release_namespace
from enclave_operator.install.cluster import CLIError, Cluster
from enclave_operator.install.helmcli import Helm
from enclave_operator.install.local import LocalOperator
from enclave_operator.webhook.configuration import PATH_PREFIX as WEBHOOK_CONFIGS
from enclave_operator.webhook.runner import COPY
from enclave_operator.webhook.settings import DEFAULT_SETTINGS_NAME as WEBHOOK

OURS = {"app.kubernetes.io/managed-by": "enclavectl", **LABELS}
"""Labels of what enclavectl creates itself (the namespace, the CAS TLS Secret)."""
OURS_SELECTOR = ",".join(f"{k}={v}" for k, v in OURS.items())
Say = Callable[[str], None]
CLEANUP_TIMEOUT = 120.0
"""For namespaces, which the API server removes by itself (``--timeout`` is for the
operator's work); a namespace still there after it is stuck, and the error says why."""
CRD_TIMEOUT = 240.0
"""The API server's CRD cleanup retries with exponential backoff when deleting instances fails
(e.g. while their namespace terminates); a retry can come minutes after the first try."""
NUDGE_EVERY = 2.0
CLEANUP_NUDGE = "enclave.dev/cleanup-requested"


def cr_path(kind: Kind, body: dict[str, Any]) -> str:
    meta = body["metadata"]
    ns = f"/namespaces/{meta['namespace']}" if kind.namespaced else ""
    return f"/apis/{kind.group}/{kind.version}{ns}/{kind.plural}/{meta['name']}"


def crd_path(kind: Kind) -> str:
    return f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{kind.crd_name}"


@dataclass
class Found:
    """What of ours is on the cluster."""

    releases: list[tuple[str, str]] = field(default_factory=list)  # (name, namespace)
    crds: list[Kind] = field(default_factory=list)
    crs: list[tuple[Kind, dict[str, Any]]] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    secrets: list[tuple[str, str]] = field(default_factory=list)  # (namespace, name)
    webhook: bool = False  # the injection webhook's MutatingWebhookConfiguration
    operator_pid: int | None = None

    @property
    def empty(self) -> bool:
        found = self.releases or self.crds or self.crs or self.namespaces or self.secrets
        return not (found or self.webhook) and self.operator_pid is None


class Remover:
    def __init__(
        self,
        cluster: Cluster,
        helm: Helm,
        local: LocalOperator,
        say: Say,
        operator_namespace: str,
        timeout: float,
        force: bool,
    ) -> None:
        self.cluster, self.helm, self.local, self.say = cluster, helm, local, say
        self.operator_namespace = operator_namespace
        self.timeout, self.force = timeout, force

    def survey(self) -> Found:
        found = Found(operator_pid=self.local.pid())
        found.releases = [(r["name"], r["namespace"]) for r in self.helm.releases()]
        for kind in ALL_KINDS:
            if self.cluster.find(crd_path(kind)) is not None:
                found.crds.append(kind)
                found.crs += [(kind, body) for body in self.cluster.list_crs(kind)]
        query = [("labelSelector", OURS_SELECTOR)]
        namespaces = self.cluster.request("GET", "/api/v1/namespaces", query=query)
        found.namespaces = [n["metadata"]["name"] for n in namespaces.get("items") or []]
        secrets = self.cluster.request("GET", "/api/v1/secrets", query=query)
        found.secrets = [
            (s["metadata"]["namespace"], s["metadata"]["name"]) for s in secrets.get("items") or []
        ]
        found.webhook = self.cluster.find(f"{WEBHOOK_CONFIGS}/{WEBHOOK}") is not None
        return found

    def remove(self, found: Found) -> None:
        self.remove_crs(found.crs)
        for name, namespace in found.releases:
            self.helm.uninstall(name, namespace)
            self.say(f"uninstalled release {namespace}/{name}")
        stopping = self.local.request_stop()  # nothing left for it to do
        self.remove_crds(found.crds)
        for namespace, name in found.secrets:
            if namespace not in found.namespaces:
                self.cluster.delete(f"/api/v1/namespaces/{namespace}/secrets/{name}")
                self.say(f"deleted Secret {namespace}/{name}")
        self.remove_namespaces(found.namespaces)
        if (pid := self.local.stop() or stopping) is not None:
            self.say(f"stopped the local operator (pid {pid})")
        self.remove_webhook()

    def remove_webhook(self) -> None:
        """Last, once no operator can register it again. A local operator deletes its own on
        SIGTERM and helm the chart's, but one killed (-9) leaves it pointing at a dead port, and
        with failurePolicy Fail no labelled pod could be created any more."""
        if self.cluster.delete(f"{WEBHOOK_CONFIGS}/{WEBHOOK}"):
            self.say(f"deleted MutatingWebhookConfiguration {WEBHOOK}")
        selector = [("labelSelector", ",".join(f"{k}={v}" for k, v in COPY.items()))]
        copies = self.cluster.request("GET", "/api/v1/configmaps", query=selector)
        for item in copies.get("items") or []:
            meta = item["metadata"]
            self.cluster.delete(f"/api/v1/namespaces/{meta['namespace']}/configmaps/{meta['name']}")
            self.say(f"deleted the CAS CA copy ConfigMap {meta['namespace']}/{meta['name']}")

    def remove_crs(self, crs: Sequence[tuple[Kind, dict[str, Any]]]) -> None:
        """Delete, then wait for the operator's finalizers; --force finishes its work for it."""
        if not crs:
            return
        for kind, body in crs:
            self.cluster.delete(cr_path(kind, body))
        self.say(f"deleted {len(crs)} resources; waiting for the operator to remove their releases")
        left = self._wait_gone(crs, self.timeout)
        if not left:
            self.say("all resources are gone")
            return
        names = ", ".join(f"{k.kind} {b['metadata']['name']}" for k, b in left)
        if not self.force:
            raise CLIError(
                f"still present after {self.timeout:.0f}s: {names} (is the operator running? "
                "`enclavectl uninstall --force` removes their releases and finalizers itself)"
            )
        for kind, body in left:
            self._force(kind, body)
        if self._wait_gone(left, 30):
            raise CLIError(f"could not remove {names}")

    def _wait_gone(
        self, crs: Iterable[tuple[Kind, dict[str, Any]]], timeout: float
    ) -> list[tuple[Kind, dict[str, Any]]]:
        pending = list(crs)

        def gone() -> bool:
            pending[:] = [(k, b) for k, b in pending if self.cluster.find(cr_path(k, b))]
            return not pending

        self.cluster.wait(gone, timeout)
        return pending

    def _force(self, kind: Kind, body: dict[str, Any]) -> None:
        """What the operator's finalizer would have done: uninstall the release, let go."""
        if kind in (CAS, LAS, SGXPLUGIN):
            release = release_name(kind, body["metadata"]["name"])
            namespace = release_namespace(kind, body, self.operator_namespace)
            self.helm.uninstall(release, namespace)
            self.say(f"--force: uninstalled release {namespace}/{release}")
        try:
            self.cluster.merge_patch(cr_path(kind, body), {"metadata": {"finalizers": None}})
        except client.ApiException as e:
            if e.status != 404:
                raise
        self.say(f"--force: removed the finalizers of {kind.kind} {body['metadata']['name']}")

    def remove_crds(self, kinds: Sequence[Kind]) -> None:
        """Delete the CRDs and wait until the API server has finished them.

        The API server's CRD cleanup lists the remaining instances through the watch cache. A
        cache that is still (re)initializing, as it is right after a CRD was created or after
        a sibling CRD of the same group was deleted, answers 429, and the cleanup then backs
        off for up to minutes. Listing the kind ourselves starts that cache, and touching the
        CRD once its cache answers makes the cleanup retry at once instead of after its
        backoff."""
        for kind in kinds:
            self._warm(kind)
            self.cluster.delete(crd_path(kind))
        nudged: dict[str, float] = {}
        if kinds and not self.cluster.wait(lambda: self._crds_gone(kinds, nudged), CRD_TIMEOUT):
            raise CLIError(
                f"CRDs still present after {CRD_TIMEOUT:.0f}s: {self._why_present(kinds)}"
            )
        if kinds:
            self.say(f"deleted {len(kinds)} CRDs")

    def _crds_gone(self, kinds: Sequence[Kind], nudged: dict[str, float]) -> bool:
        left = [(k, crd) for k in kinds if (crd := self.cluster.find(crd_path(k))) is not None]
        for kind, crd in left:
            if cache_not_ready(crd) and self._warm(kind):
                last = nudged.get(kind.crd_name, 0.0)
                if time.monotonic() - last >= NUDGE_EVERY:
                    nudged[kind.crd_name] = time.monotonic()
                    self._nudge(kind)
        return not left

    def _warm(self, kind: Kind) -> bool:
        """List one instance of ``kind``; True when its storage answered."""
        try:
            self.cluster.request(
                "GET", f"/apis/{kind.group}/{kind.version}/{kind.plural}", query=[("limit", "1")]
            )
            return True
        except client.ApiException:
            return False

    def _nudge(self, kind: Kind) -> None:
        """An update event requeues the CRD in the API server's cleanup controller."""
        try:
            stamp = f"{time.time():.3f}"
            self.cluster.merge_patch(
                crd_path(kind), {"metadata": {"annotations": {CLEANUP_NUDGE: stamp}}}
            )
        except client.ApiException as e:
            if e.status not in (404, 409, 422):
                raise

    def _why_present(self, kinds: Sequence[Kind]) -> str:
        """Which CRDs are left and what their Terminating condition says (usually the custom
        resources that still carry a finalizer)."""
        reasons = []
        for kind in kinds:
            crd = self.cluster.find(crd_path(kind))
            if crd is None:
                continue
            why = terminating_message(crd)
            reasons.append(f"{crd['metadata']['name']} ({why or 'no Terminating condition'})")
        return "; ".join(reasons) or "none any more"

    def remove_namespaces(self, names: Sequence[str]) -> None:
        for name in names:
            self.cluster.delete(f"/api/v1/namespaces/{name}")
        for name in names:
            if not self.namespace_gone(name, CLEANUP_TIMEOUT):
                body = self.cluster.find(f"/api/v1/namespaces/{name}") or {}
                raise CLIError(stuck_namespace(name, body))
            self.say(f"deleted namespace {name}")

    def namespace_gone(self, name: str, timeout: float) -> bool:
        path = f"/api/v1/namespaces/{name}"
        return self.cluster.wait(lambda: not self.cluster.find(path), timeout)


def terminating_message(crd: dict[str, Any]) -> str:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return next((c.get("message", "") for c in conditions if c.get("type") == "Terminating"), "")


def cache_not_ready(crd: dict[str, Any]) -> bool:
    """The cleanup failed because the kind's watch cache was not ready (HTTP 429)."""
    return "initializing" in terminating_message(crd)


def stuck_namespace(name: str, body: dict[str, Any]) -> str:
    """Why a namespace is still Terminating, from the conditions the namespace controller sets."""
    conditions = (body.get("status") or {}).get("conditions") or []
    reasons = [c.get("message", "") for c in conditions if c.get("status") == "True"]
    why = "; ".join(r for r in reasons if r) or "its finalizers have not run yet"
    return f"namespace {name} is stuck Terminating: {why}"
