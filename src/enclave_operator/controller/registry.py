"""kopf registrations: indexes (the caches) and event handlers that only enqueue keys.

Every watch feeds the same level-triggered reconcile of the CR it concerns; no handler
decides or acts, and none makes kopf write to the objects (no kopf progress annotations).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kopf

from enclave_operator.api.kinds import LAS, SGXPLUGIN, Kind
from enclave_operator.charts.values import release_name, release_namespace
from enclave_operator.controller.caches import (
    ALL,
    DAEMON_PODS_INDEX,
    NODES_INDEX,
    OWNERS_INDEX,
    RELEASES_INDEX,
    SERVICE_KINDS,
    SGX_PODS_INDEX,
    Caches,
    CRKey,
    ReleaseEntry,
    cr_index,
    owned_index,
)
from enclave_operator.figures.cluster import NodeView, PodView, sgx_requests
from enclave_operator.helm.releases import (
    OPERATOR_LABEL,
    SECRET_LABEL_SELECTOR,
    SECRET_TYPE,
    ReleaseDecodeError,
    from_secret,
)
from enclave_operator.kube import OWNED_KINDS

PART_OF_KEY, PART_OF_VALUE = "app.kubernetes.io/part-of", "enclave-operator"
PART_OF = f"{PART_OF_KEY}={PART_OF_VALUE}"
INSTANCE = "app.kubernetes.io/instance"
HELM_RELEASE = "meta.helm.sh/release-name"
HELM_NAMESPACE = "meta.helm.sh/release-namespace"

Enqueue = Callable[[CRKey], None]


def build_registry(
    caches: Caches, enqueue: Enqueue, operator_namespace: str, enqueue_soon: Enqueue | None = None
) -> kopf.OperatorRegistry:
    """`enqueue_soon` debounces the busy streams (nodes, pods) whose bursts move figures only."""
    registry = kopf.OperatorRegistry()
    for kind in SERVICE_KINDS:
        _register_cr(registry, kind, caches, enqueue, operator_namespace)
    _register_releases(registry, caches, enqueue)
    for (api_version, kind_name), (_, plural) in OWNED_KINDS.items():
        _register_owned(registry, api_version, kind_name, plural, caches, enqueue)
    _register_nodes_and_pods(registry, caches, enqueue_soon or enqueue)
    return registry


def label_selectors(settings: kopf.OperatorSettings) -> None:
    """Server-side filters: only Helm's records and objects our charts made are streamed."""
    settings.watching.label_selectors["v1", "secrets"] = SECRET_LABEL_SELECTOR  # ours only
    for (api_version, _), (_, plural) in OWNED_KINDS.items():
        group = api_version.split("/")[0] if "/" in api_version else ""
        settings.watching.label_selectors[group or "v1", plural] = PART_OF


def _register_cr(
    registry: kopf.OperatorRegistry, kind: Kind, caches: Caches, enqueue: Enqueue, op_ns: str
) -> None:
    def index_cr(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
        return {(namespace, name): dict(body)}

    def index_owner(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
        rel_ns = release_namespace(kind, body, op_ns)
        return {(rel_ns, release_name(kind, name)): CRKey(kind.plural, namespace, name)}

    async def on_cr(namespace: str | None, name: str, **kwargs: Any) -> None:
        caches.bind(kwargs)
        enqueue(CRKey(kind.plural, namespace, name))

    resource = (kind.group, kind.version, kind.plural)
    kopf.index(*resource, id=cr_index(kind), registry=registry)(index_cr)
    kopf.index(*resource, id=f"{OWNERS_INDEX}_{kind.plural}", registry=registry)(index_owner)
    kopf.on.event(*resource, id=f"event_{kind.plural}", registry=registry)(on_cr)


def _register_releases(registry: kopf.OperatorRegistry, caches: Caches, enqueue: Enqueue) -> None:
    def index_release(
        namespace: str | None, body: kopf.Body, labels: Any, **_: Any
    ) -> dict[Any, Any]:
        if body.get("type") != SECRET_TYPE or labels.get(OPERATOR_LABEL[0]) != OPERATOR_LABEL[1]:
            return {}  # not a release this operator made: never adopted
        key = (namespace, labels.get("name"))
        try:
            return {key: ReleaseEntry(from_secret(body))}
        except (ReleaseDecodeError, KeyError) as e:
            return {key: ReleaseEntry(None, f"Secret {body.metadata.name}: {e}")}

    async def on_release(namespace: str | None, labels: Any, **kwargs: Any) -> None:
        caches.bind(kwargs)
        if namespace and (owner := caches.owner_of_release(namespace, labels.get("name", ""))):
            enqueue(owner)

    kopf.index("v1", "secrets", id=RELEASES_INDEX, registry=registry)(index_release)
    kopf.on.event("v1", "secrets", id="event_releases", registry=registry)(on_release)


def _register_owned(
    registry: kopf.OperatorRegistry,
    api_version: str,
    kind_name: str,
    plural: str,
    caches: Caches,
    enqueue: Enqueue,
) -> None:
    group, _, version = api_version.rpartition("/")

    def index_owned(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
        return {(namespace, name): dict(body)}

    async def on_owned(annotations: Any, **kwargs: Any) -> None:
        caches.bind(kwargs)
        rel, rel_ns = annotations.get(HELM_RELEASE), annotations.get(HELM_NAMESPACE)
        if rel and rel_ns and (owner := caches.owner_of_release(rel_ns, rel)):
            enqueue(owner)

    resource = (group, version, plural) if group else (version, plural)
    kopf.index(*resource, id=owned_index(api_version, kind_name), registry=registry)(index_owned)
    kopf.on.event(*resource, id=f"event_{plural}", registry=registry)(on_owned)


def _register_nodes_and_pods(
    registry: kopf.OperatorRegistry, caches: Caches, enqueue: Enqueue
) -> None:
    """The figures' inputs. Any node change may move every daemon's figures; a pod change moves
    its own release's figures and, if it uses SGX, every SGXPlugin's device counts."""

    def index_node(body: kopf.Body, **_: Any) -> dict[Any, Any]:
        return {ALL: NodeView.of(body)}

    def index_daemon_pod(
        namespace: str | None, labels: Any, body: kopf.Body, **_: Any
    ) -> dict[Any, Any]:
        if labels.get(PART_OF_KEY) != PART_OF_VALUE or not labels.get(INSTANCE):
            return {}
        return {(namespace, labels[INSTANCE]): PodView.of(body)}

    def index_sgx_pod(body: kopf.Body, **_: Any) -> dict[Any, Any]:
        view = PodView.of(body)
        return {ALL: view} if view.sgx else {}

    async def on_node(**kwargs: Any) -> None:
        caches.bind(kwargs)
        for kind in (LAS, SGXPLUGIN):
            for key in caches.keys(kind):
                enqueue(key)

    async def on_pod(namespace: str | None, labels: Any, body: kopf.Body, **kwargs: Any) -> None:
        caches.bind(kwargs)
        instance = labels.get(INSTANCE)
        if namespace and instance and (owner := caches.owner_of_release(namespace, instance)):
            enqueue(owner)
        if sgx_requests(body.get("spec") or {}):
            for key in caches.keys(SGXPLUGIN):
                enqueue(key)

    kopf.index("v1", "nodes", id=NODES_INDEX, registry=registry)(index_node)
    kopf.on.event("v1", "nodes", id="event_nodes", registry=registry)(on_node)
    kopf.index("v1", "pods", id=DAEMON_PODS_INDEX, registry=registry)(index_daemon_pod)
    kopf.index("v1", "pods", id=SGX_PODS_INDEX, registry=registry)(index_sgx_pod)
    kopf.on.event("v1", "pods", id="event_pods", registry=registry)(on_pod)
