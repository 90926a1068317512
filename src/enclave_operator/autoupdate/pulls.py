"""Image pulls that fail on a node, in the resource's conditions: the ImagePulled condition
names the pod, the node, the image, the imagePullSecret the pod was given and the kubelet's
own message (a 401 from the registry, say). Event-driven on the pods the operator already
watches; written only for a resource whose pods fail to pull, then set True once they pull."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from enclave_operator.api.kinds import CAS, LAS, SGXPLUGIN, Kind
from enclave_operator.charts.values import release_name, release_namespace
from enclave_operator.kube import ApiException, Kube
from enclave_operator.reconcile.report import now_iso, post_event

log = logging.getLogger("enclave_operator.autoupdate")
CONDITION = "ImagePulled"
PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName")
INSTANCE = "app.kubernetes.io/instance"
PART_OF = {"app.kubernetes.io/part-of": "enclave-operator"}


def pull_failure(pod: Mapping[str, Any]) -> str | None:
    """Why this pod cannot pull its image, or None."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    for cs in [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") not in PULL_FAILURES:
            continue
        secrets = [s.get("name") for s in spec.get("imagePullSecrets") or []]
        given = f"imagePullSecret {', '.join(secrets)}" if secrets else "no imagePullSecret"
        meta = pod.get("metadata") or {}
        return (
            f"pod {meta.get('name')} on {spec.get('nodeName') or 'no node'} cannot pull"
            f" {cs.get('image')} with {given}: {waiting.get('reason')}:"
            f" {waiting.get('message') or 'no message'}"
        )  # fmt: skip
    return None


def verdict(failures: Mapping[str, str]) -> tuple[str, str, str]:
    """(status, reason, message) over a resource's failing pods (sorted: stable messages)."""
    if not failures:
        return "True", "Pulled", "every pod has its image"
    first = failures[min(failures)]
    more = f" (and {len(failures) - 1} more pods)" if len(failures) > 1 else ""
    return "False", "PullFailed", first + more


Release = tuple[str, str]  # (namespace, release name), as the pods' labels and namespace say
CRKey = tuple[Kind, str | None, str]  # (kind, namespace of a CAS, name)


class PullReporter:
    def __init__(self, kube: Kube, operator_namespace: str, _cas_exists: object = None) -> None:
        self.kube, self.operator_namespace = kube, operator_namespace
        self.crs: dict[Release, CRKey] = {}
        self.bodies: dict[CRKey, Mapping[str, Any]] = {}
        self.failures: dict[Release, dict[str, str]] = {}  # pod → why it cannot pull
        self._wake = asyncio.Event()
        self._dirty: set[Release] = set()

    def register(self, registry: kopf.OperatorRegistry) -> None:
        for kind in (CAS, LAS, SGXPLUGIN):

            async def on_cr(
                name: str,
                namespace: str | None,
                body: kopf.Body,
                type: str | None,
                kind: Kind = kind,
                **_: Any,
            ) -> None:
                key: CRKey = (kind, namespace, name)
                release = (
                    release_namespace(kind, body, self.operator_namespace),
                    release_name(kind, name),
                )
                if type == "DELETED":
                    self.crs.pop(release, None)
                    self.bodies.pop(key, None)
                    self.failures.pop(release, None)
                    return
                self.crs[release] = key
                self.bodies[key] = dict(body)

            resource = (kind.group, kind.version, kind.plural)
            kopf.on.event(*resource, id=f"pulls_{kind.plural}", registry=registry)(on_cr)

        async def on_pod(body: kopf.Body, type: str | None, **_: Any) -> None:
            meta = body.get("metadata", {})
            instance, pod = (meta.get("labels") or {}).get(INSTANCE), meta.get("name")
            if not instance or not pod:
                return
            release = (str(meta.get("namespace")), str(instance))
            why = None if type == "DELETED" else pull_failure(body)
            failing = self.failures.get(release) or {}
            if failing.get(pod) == why:
                return
            if why is None:
                failing.pop(pod, None)
            else:
                failing[pod] = why
            self.failures[release] = failing
            self._dirty.add(release)
            self._wake.set()

        kopf.on.event("v1", "pods", id="pulls_pods", labels=PART_OF, registry=registry)(on_pod)

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0.5)  # a rollout's pod events, folded into one write
            dirty, self._dirty = self._dirty, set()
            for release in dirty:
                try:
                    await self._report(release)
                except ApiException as e:
                    log.info("%s: status not written (%s); again soon", release, e.status)
                    self._dirty.add(release)
                    self._wake.set()
                    await asyncio.sleep(1.0)

    async def _report(self, release: Release) -> None:
        key = self.crs.get(release)
        cr = self.bodies.get(key) if key else None
        if key is None or cr is None:
            return
        kind, namespace, name = key
        status, reason, message = verdict(self.failures.get(release) or {})
        conditions = list((cr.get("status") or {}).get("conditions") or [])
        current = next((c for c in conditions if c.get("type") == CONDITION), None)
        if current is None and status == "True":
            return  # never failed: no condition at all
        if current is not None and (current.get("status"), current.get("message")) == (
            status,
            message,
        ):
            return
        conditions = [c for c in conditions if c.get("type") != CONDITION]
        changed = current is None or current.get("status") != status
        since = now_iso() if changed else (current or {}).get("lastTransitionTime") or now_iso()
        conditions.append(
            {"type": CONDITION, "status": status, "reason": reason, "message": message,
             "lastTransitionTime": since}
        )  # fmt: skip
        path = self.kube.custom_path(kind, namespace, name) + "/status"
        body = {"metadata": {"resourceVersion": cr["metadata"].get("resourceVersion")},
                "status": {"conditions": conditions}}  # fmt: skip
        await self.kube.merge_patch(path, body)
        if status == "False" and (current or {}).get("status") != "False":
            await post_event(self.kube, kind, cr, reason, message, warning=True)
