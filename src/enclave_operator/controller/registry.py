"""kopf registrations: indexes (the caches) and event handlers that only enqueue keys.

Every watch feeds the same level-triggered reconcile of the CR it concerns; no handler
decides or acts, and none makes kopf write to the objects (no kopf progress annotations).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kopf

from enclave_operator.api.kinds import Kind
from enclave_operator.charts.values import release_name, release_namespace
from enclave_operator.controller.caches import (
    OWNERS_INDEX,
    RELEASES_INDEX,
    SERVICE_KINDS,
    Caches,
    CRKey,
    ReleaseEntry,
    cached,
    cr_index,
    owned_index,
    secret_identity,
)
from enclave_operator.controller.views import PART_OF_KEY, PART_OF_VALUE
from enclave_operator.helm.releases import (
    OPERATOR_LABEL,
    SECRET_LABEL_SELECTOR,
    SECRET_TYPE,
    ReleaseDecodeError,
    from_secret,
)
from enclave_operator.kube import OWNED_KINDS

PART_OF = f"{PART_OF_KEY}={PART_OF_VALUE}"
HELM_RELEASE = "meta.helm.sh/release-name"
HELM_NAMESPACE = "meta.helm.sh/release-namespace"

Enqueue = Callable[[CRKey], None]


def build_registry(
    caches: Caches, enqueue: Enqueue, operator_namespace: str
) -> kopf.OperatorRegistry:
    """Nodes and pods are not kopf's: controller/clusterwatch.py streams the few they need."""
    registry = kopf.OperatorRegistry()
    for kind in SERVICE_KINDS:
        _register_cr(registry, kind, caches, enqueue, operator_namespace)
    _register_releases(registry, caches, enqueue)
    for (api_version, kind_name), (_, plural) in OWNED_KINDS.items():
        _register_owned(registry, api_version, kind_name, plural, caches, enqueue)
    return registry


def label_selectors(settings: kopf.OperatorSettings) -> None:
    """Server-side filters: only Helm's records and objects our charts made are streamed. kopf
    filters handlers' ``labels=`` itself, after receiving every object; these go to the API
    server. Pods: the pull reporter's pods, which are our charts' (the figures' pods come from
    controller/clusterwatch.py, not kopf)."""
    settings.watching.label_selectors["v1", "secrets"] = SECRET_LABEL_SELECTOR  # ours only
    settings.watching.label_selectors["v1", "pods"] = PART_OF
    for (api_version, _), (_, plural) in OWNED_KINDS.items():
        group = api_version.split("/")[0] if "/" in api_version else ""
        settings.watching.label_selectors[group or "v1", plural] = PART_OF


# Index functions are coroutines: kopf runs a plain function in a thread pool (a thread hop
# and a shielded future per event), a coroutine on the loop.


def _register_cr(
    registry: kopf.OperatorRegistry, kind: Kind, caches: Caches, enqueue: Enqueue, op_ns: str
) -> None:
    async def index_cr(
        namespace: str | None, name: str, body: kopf.Body, **_: Any
    ) -> dict[Any, Any]:
        return {(namespace, name): cached(body)}

    async def index_owner(
        namespace: str | None, name: str, body: kopf.Body, **_: Any
    ) -> dict[Any, Any]:
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
    async def index_release(
        namespace: str | None, body: kopf.Body, labels: Any, **_: Any
    ) -> dict[Any, Any]:
        if body.get("type") != SECRET_TYPE or labels.get(OPERATOR_LABEL[0]) != OPERATOR_LABEL[1]:
            return {}  # not a release this operator made: never adopted
        key = (namespace, labels.get("name"))
        try:
            return {key: ReleaseEntry(from_secret(body), secret=secret_identity(body))}
        except (ReleaseDecodeError, KeyError) as e:
            error = f"Secret {body.metadata.name}: {e}"
            return {key: ReleaseEntry(None, error, secret_identity(body))}

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

    async def index_owned(
        namespace: str | None, name: str, body: kopf.Body, **_: Any
    ) -> dict[Any, Any]:
        return {(namespace, name): cached(body)}

    async def on_owned(annotations: Any, **kwargs: Any) -> None:
        caches.bind(kwargs)
        rel, rel_ns = annotations.get(HELM_RELEASE), annotations.get(HELM_NAMESPACE)
        if rel and rel_ns and (owner := caches.owner_of_release(rel_ns, rel)):
            enqueue(owner)

    resource = (group, version, plural) if group else (version, plural)
    kopf.index(*resource, id=owned_index(api_version, kind_name), registry=registry)(index_owned)
    kopf.on.event(*resource, id=f"event_{plural}", registry=registry)(on_owned)
